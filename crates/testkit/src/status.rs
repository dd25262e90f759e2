//! Reading the details of a refusal: which fields were wrong, which rules said no.

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The fields named by an INVALID_ARGUMENT status's field violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "expected INVALID_ARGUMENT, got {status:?}"
    );
    let details = status.get_error_details();
    let bad = details.bad_request().expect("a BadRequest detail");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

/// The kinds of a FAILED_PRECONDITION status's violations.
pub fn precondition_kinds(status: &Status) -> Vec<String> {
    preconditions(status)
        .into_iter()
        .map(|(kind, _)| kind)
        .collect()
}

/// The (type, subject) of each precondition violation in a FAILED_PRECONDITION status.
pub fn preconditions(status: &Status) -> Vec<(String, String)> {
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "expected FAILED_PRECONDITION, got {status:?}"
    );
    let details = status.get_error_details();
    let pf = details
        .precondition_failure()
        .expect("a PreconditionFailure detail");
    pf.violations
        .iter()
        .map(|v| (v.r#type.clone(), v.subject.clone()))
        .collect()
}

/// A field mask.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

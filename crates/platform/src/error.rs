//! The one place where errors become gRPC statuses. Every service returns [`ApiError`]; the exhaustive
//! `From<ApiError> for Status` below decides the code, the message and the rich details
//! (`google.rpc.BadRequest`, `PreconditionFailure`, `ErrorInfo`). Messages name fields and rules, never
//! a value a caller sent, a row, or an SQL error.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `google.rpc.ErrorInfo` domain of every landsby error.
pub const ERROR_DOMAIN: &str = "landsby.no";

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path in the request, e.g. `case.child.national_id`.
    pub field: String,
    /// What is wrong with it (never the value).
    pub description: String,
}

/// A rule of the domain that the request would break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// A stable, upper-case kind, e.g. `CASE_CLOSED` or `BOARD_SECRET_ADDRESS`.
    pub kind: String,
    /// What it is about, e.g. `cases/0190…`.
    pub subject: String,
    /// The rule, in words a caseworker understands.
    pub description: String,
}

/// Every error a landsby service returns to a caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: INVALID_ARGUMENT with one violation per field.
    #[error("invalid argument ({} field violations)", .0.len())]
    InvalidArgument(Vec<FieldViolation>),
    /// The request is well-formed but the domain's rules say no: FAILED_PRECONDITION.
    #[error("failed precondition ({} violations)", .0.len())]
    FailedPrecondition(Vec<PreconditionViolation>),
    /// No such resource for this caller's agency: NOT_FOUND (another agency's resources included, so
    /// their existence never leaks).
    #[error("{resource} not found")]
    NotFound {
        /// The kind of resource, e.g. `case`.
        resource: &'static str,
    },
    /// The etag sent is not the current one: ABORTED; read again and retry.
    #[error("stale etag for {resource}")]
    StaleEtag {
        /// The kind of resource.
        resource: &'static str,
    },
    /// The caller's roles do not allow this: PERMISSION_DENIED.
    #[error("permission denied")]
    PermissionDenied {
        /// Which roles would have been allowed, in words.
        reason: String,
    },
    /// No valid token: UNAUTHENTICATED.
    #[error("unauthenticated: {reason}")]
    Unauthenticated {
        /// Why the token was refused.
        reason: &'static str,
    },
    /// The service cannot answer now (database down, still starting): UNAVAILABLE; retry later.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: &'static str,
    },
    /// The service is at its concurrency limit: RESOURCE_EXHAUSTED; back off and retry.
    #[error("resource exhausted")]
    ResourceExhausted,
    /// The caller is over their rate limit: RESOURCE_EXHAUSTED; retry after the time given.
    #[error("rate limited")]
    RateLimited {
        /// How long until the next call is allowed.
        retry_after: std::time::Duration,
    },
    /// The request ran past its deadline: DEADLINE_EXCEEDED.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A bug or a broken invariant. Logged with a reference; the caller sees only the reference.
    #[error("internal error: {context}")]
    Internal {
        /// What went wrong, for the log (never personal data).
        context: String,
    },
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// One broken rule.
    pub fn precondition(
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self::FailedPrecondition(vec![PreconditionViolation {
            kind: kind.into(),
            subject: subject.into(),
            description: description.into(),
        }])
    }

    /// A broken invariant; `context` goes to the log only.
    pub fn internal(context: impl Into<String>) -> Self {
        Self::Internal {
            context: context.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::NotFound { .. } => Code::NotFound,
            Self::StaleEtag { .. } => Code::Aborted,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::Unavailable { .. } => Code::Unavailable,
            Self::ResourceExhausted | Self::RateLimited { .. } => Code::ResourceExhausted,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal { .. } => Code::Internal,
        }
    }
}

fn error_info(reason: &str) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    details
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        match err {
            ApiError::InvalidArgument(violations) => {
                let mut details = error_info("INVALID_ARGUMENT");
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                let message = format!("invalid request: check {}", fields.join(", "));
                details.set_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(code, message, details)
            }
            ApiError::FailedPrecondition(violations) => {
                let mut details = error_info("FAILED_PRECONDITION");
                let message = violations
                    .iter()
                    .map(|v| v.description.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                details.set_precondition_failure(
                    violations
                        .into_iter()
                        .map(|v| {
                            tonic_types::PreconditionViolation::new(
                                v.kind,
                                v.subject,
                                v.description,
                            )
                        })
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(code, message, details)
            }
            ApiError::NotFound { resource } => Status::with_error_details(
                code,
                format!("{resource} not found"),
                error_info("NOT_FOUND"),
            ),
            ApiError::StaleEtag { resource } => Status::with_error_details(
                code,
                format!("the {resource} has changed since it was read; read it again and retry"),
                error_info("STALE_ETAG"),
            ),
            ApiError::PermissionDenied { reason } => {
                Status::with_error_details(code, reason, error_info("PERMISSION_DENIED"))
            }
            ApiError::Unauthenticated { reason } => {
                Status::with_error_details(code, reason, error_info("UNAUTHENTICATED"))
            }
            ApiError::Unavailable { reason } => {
                let mut details = error_info("UNAVAILABLE");
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                Status::with_error_details(code, reason, details)
            }
            ApiError::RateLimited { retry_after } => {
                let mut details = error_info("RATE_LIMITED");
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(
                    code,
                    "too many calls from this caller; retry after the delay given",
                    details,
                )
            }
            ApiError::ResourceExhausted => {
                let mut details = error_info("OVERLOADED");
                details.set_retry_info(Some(std::time::Duration::from_millis(200)));
                Status::with_error_details(
                    code,
                    "the service is at its concurrency limit; retry with backoff",
                    details,
                )
            }
            ApiError::DeadlineExceeded => Status::with_error_details(
                code,
                "the request ran past its deadline",
                error_info("DEADLINE_EXCEEDED"),
            ),
            ApiError::Internal { context } => {
                let reference = uuid::Uuid::now_v7();
                tracing::error!(%reference, %context, "internal error");
                Status::with_error_details(
                    code,
                    format!("internal error (reference {reference})"),
                    error_info("INTERNAL"),
                )
            }
        }
    }
}

/// The canonical upper-case name of a gRPC code, as audit rows record outcomes.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_one_field_violation_per_field() {
        let status: Status = ApiError::InvalidArgument(vec![
            FieldViolation {
                field: "case.child.given_name".into(),
                description: "required".into(),
            },
            FieldViolation {
                field: "case.goal".into(),
                description: "unknown value".into(),
            },
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "case.child.given_name");
        assert_eq!(
            details.error_info().map(|i| i.domain.as_str()),
            Some(ERROR_DOMAIN)
        );
    }

    #[test]
    fn failed_precondition_carries_the_rules() {
        let status: Status =
            ApiError::precondition("CASE_CLOSED", "cases/x", "the case is closed").into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        let pf = details.precondition_failure().expect("PreconditionFailure");
        assert_eq!(pf.violations[0].r#type, "CASE_CLOSED");
        assert_eq!(status.message(), "the case is closed");
    }

    #[test]
    fn internal_errors_show_a_reference_and_not_the_context() {
        let status: Status = ApiError::internal("column child_national_id failed to decode").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("national_id"));
        assert!(status.message().contains("reference"));
    }

    #[test]
    fn stale_etag_is_aborted() {
        let status: Status = ApiError::StaleEtag { resource: "case" }.into();
        assert_eq!(status.code(), Code::Aborted);
    }
}

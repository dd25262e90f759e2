//! What can go wrong in a job, and what it means for the job: try again later (a service is away,
//! a deadline passed, a race lost) or never (the request is refused for good; retrying cannot
//! help). Reasons are codes and short texts, never a service's message or personal data.

use tonic::Code;

/// A job's failure.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt, after a backoff.
    #[error("retryable: {0}")]
    Retry(String),
    /// Not worth another attempt: the job is DEAD.
    #[error("permanent: {0}")]
    Permanent(String),
    /// What the job is about does not exist (for the agency): NOT_FOUND from a service. A job
    /// reading a case or a visit that is gone has nothing to do; elsewhere it is permanent.
    #[error("not found: {0}")]
    Gone(String),
    /// The idempotency key was used before for a request that differs (INVALID_ARGUMENT naming only
    /// the key). The worker's keys name what a notice tells whom (a plan version to a member), so
    /// for a notice it means: told before, when the case's details were different. Elsewhere it
    /// is permanent.
    #[error("key used before: {0}")]
    KeyUsed(String),
    /// The case closed while the job ran (FAILED_PRECONDITION `CASE_CLOSED`): a closed case's plans,
    /// reviews and visits do not change, so the job has nothing left to do.
    #[error("case closed: {0}")]
    CaseClosed(String),
}

impl JobError {
    /// What a status from `service` on `rpc` means for the job. The status's message never passes
    /// through: it can quote a value.
    pub fn from_status(status: &tonic::Status, service: &str, rpc: &str) -> Self {
        use tonic_types::StatusExt;
        let mut what = format!(
            "{service}.{rpc}: {}",
            landsby_platform::error::code_name(status.code())
        );
        // The fields a refusal names (names only: their descriptions can quote a value).
        let fields: Vec<String> = status
            .get_details_bad_request()
            .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        if !fields.is_empty() {
            what.push_str(&format!(" ({})", fields.join(", ")));
        }
        if status.code() == Code::InvalidArgument && fields == ["idempotency_key"] {
            return Self::KeyUsed(what);
        }
        let kinds: Vec<String> = status
            .get_details_precondition_failure()
            .map(|p| p.violations.into_iter().map(|v| v.r#type).collect())
            .unwrap_or_default();
        if status.code() == Code::FailedPrecondition && kinds == ["CASE_CLOSED"] {
            return Self::CaseClosed(what);
        }
        match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal => Self::Retry(what),
            Code::NotFound => Self::Gone(what),
            _ => Self::Permanent(what),
        }
    }

    /// A failure of the worker's database: retryable (the database may be back). Described as
    /// the platform describes database errors, never with the database's own message.
    pub fn store(err: sqlx::Error) -> Self {
        Self::Retry(format!(
            "worker database: {}",
            landsby_platform::db::classify(&err)
        ))
    }

    /// A failure of apalis's queue writing a job.
    pub fn queue<E: Into<QueueError>>(err: E) -> Self {
        match err.into() {
            QueueError::Sqlite(apalis_sqlite::Error::Database(e))
            | QueueError::Postgres(apalis_postgres::Error::Database(e)) => Self::store(e),
            _ => Self::Retry("the job queue could not be written".into()),
        }
    }
}

/// An error of either apalis backend.
#[derive(Debug)]
pub enum QueueError {
    /// apalis-sqlite.
    Sqlite(apalis_sqlite::Error),
    /// apalis-postgres.
    Postgres(apalis_postgres::Error),
}

impl From<apalis_sqlite::Error> for QueueError {
    fn from(e: apalis_sqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<apalis_postgres::Error> for QueueError {
    fn from(e: apalis_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

    fn refused(fields: &[&str]) -> tonic::Status {
        let details = ErrorDetails::with_bad_request(
            fields
                .iter()
                .map(|f| FieldViolation::new(*f, "a description that may quote 12345678901"))
                .collect::<Vec<_>>(),
        );
        tonic::Status::with_error_details(Code::InvalidArgument, "refused", details)
    }

    #[test]
    fn a_case_closed_meanwhile_is_told_apart_from_other_preconditions() {
        use tonic_types::{ErrorDetails, StatusExt};
        let precondition = |kind: &str| {
            let mut details = ErrorDetails::new();
            details.add_precondition_failure_violation(kind, "cases/x", "closed");
            tonic::Status::with_error_details(Code::FailedPrecondition, "no", details)
        };
        let closed = JobError::from_status(&precondition("CASE_CLOSED"), "visitation", "apply");
        assert!(matches!(closed, JobError::CaseClosed(_)), "{closed:?}");
        let other = JobError::from_status(&precondition("PLAN_FROZEN"), "visitation", "apply");
        assert!(matches!(other, JobError::Permanent(_)), "{other:?}");
    }

    #[test]
    fn a_refusal_naming_only_the_key_is_a_key_used_before() {
        let e = JobError::from_status(&refused(&["idempotency_key"]), "notification", "send");
        assert!(matches!(e, JobError::KeyUsed(_)), "{e:?}");
    }

    #[test]
    fn other_refusals_are_permanent_and_name_their_fields_without_descriptions() {
        let e = JobError::from_status(
            &refused(&["idempotency_key", "case_id"]),
            "notification",
            "send",
        );
        let JobError::Permanent(reason) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            reason,
            "notification.send: INVALID_ARGUMENT (idempotency_key, case_id)"
        );
        let away = tonic::Status::unavailable("connection refused");
        assert!(matches!(
            JobError::from_status(&away, "case", "get"),
            JobError::Retry(r) if r == "case.get: UNAVAILABLE"
        ));
    }
}

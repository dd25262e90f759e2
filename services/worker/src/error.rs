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
}

impl JobError {
    /// What a status from `service` on `rpc` means for the job. The status's message never passes
    /// through: it can quote a value.
    pub fn from_status(status: &tonic::Status, service: &str, rpc: &str) -> Self {
        let what = format!(
            "{service}.{rpc}: {}",
            landsby_platform::error::code_name(status.code())
        );
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

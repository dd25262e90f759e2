//! Request ids of creating calls, so that a retry returns the first result. A creating RPC takes an
//! optional `request_id`; the first request with an id claims it for the resource it creates, in the
//! same transaction. A retry (the same request) answers with that resource; another request with the
//! same id is refused.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

/// A creating call's request id, with what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The RPC, so one request id cannot collide across RPCs.
    pub operation: &'static str,
    /// The caller's request id.
    pub request_id: Uuid,
    /// A digest of the request without its request id: the same id with another request is refused.
    pub fingerprint: String,
}

impl Idempotency {
    /// The claim of `request_id` (if the caller gave one) by `operation` for `request`, whose
    /// request id the caller has cleared.
    pub fn of(
        operation: &'static str,
        request_id: Option<Uuid>,
        request: &impl prost::Message,
    ) -> Option<Self> {
        request_id.map(|request_id| Self {
            operation,
            request_id,
            fingerprint: crate::validate::fingerprint(request),
        })
    }
}

/// What a request id means to a creating call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// New: the caller creates the resource with the id it claimed for it.
    Ours,
    /// A retry of a request that created this resource: answer with it.
    Replay(Uuid),
}

/// A row of `idempotency_keys`.
#[derive(Debug, FromRow)]
pub struct ClaimRow {
    /// The digest of the request that claimed the id.
    pub fingerprint: String,
    /// What it created.
    pub resource_id: Uuid,
}

const CLAIM: &str = "INSERT INTO idempotency_keys \
    (agency, operation, request_id, fingerprint, resource_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (agency, operation, request_id) DO NOTHING RETURNING fingerprint, resource_id";
const CLAIMED: &str = "SELECT fingerprint, resource_id FROM idempotency_keys \
    WHERE agency = $1 AND operation = $2 AND request_id = $3";

/// Claims a request id for the resource `resource_id` about to be created, in the transaction that
/// creates it. On PostgreSQL a concurrent claim of the same id waits here until the other
/// transaction ends, then sees its row; on SQLite writers take turns. Either way only one request
/// creates.
pub async fn claim<DB>(
    conn: &mut DB::Connection,
    agency: &str,
    idempotency: &Idempotency,
    resource_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Claim, ApiError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> ClaimRow: FromRow<'r, DB::Row>,
{
    let inserted: Option<ClaimRow> = sqlx::query_as(CLAIM)
        .bind(agency.to_owned())
        .bind(idempotency.operation.to_owned())
        .bind(idempotency.request_id)
        .bind(idempotency.fingerprint.clone())
        .bind(resource_id)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await?;
    if inserted.is_some() {
        return Ok(Claim::Ours);
    }
    claimed::<DB>(conn, agency, idempotency)
        .await?
        .map(Claim::Replay)
        .ok_or_else(|| ApiError::internal("a claimed request id could not be read back"))
}

/// What an earlier request with this request id created, if there was one: lets a retry be answered
/// before the work a first request does (asking other services) is done again. The same id with
/// another request is refused (INVALID_ARGUMENT on `request_id`).
pub async fn claimed<DB>(
    conn: &mut DB::Connection,
    agency: &str,
    idempotency: &Idempotency,
) -> Result<Option<Uuid>, ApiError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'r> ClaimRow: FromRow<'r, DB::Row>,
{
    let row: Option<ClaimRow> = sqlx::query_as(CLAIMED)
        .bind(agency.to_owned())
        .bind(idempotency.operation.to_owned())
        .bind(idempotency.request_id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) if row.fingerprint == idempotency.fingerprint => Ok(Some(row.resource_id)),
        Some(_) => Err(ApiError::invalid(
            "request_id",
            "was already used for a different request; use a new request id for a new request",
        )),
        None => Ok(None),
    }
}

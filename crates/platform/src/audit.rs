//! The audit log: who (subject, agency, roles) did what (RPC, case, resource ids), when, and with
//! what outcome. Every service handles a call the same way through [`Auditor`]: [`Auditor::begin`]
//! checks the caller's roles and starts the row; a change writes the row in the same transaction as
//! the change ([`append`] on the transaction) and answers with [`Auditor::write`]; a read answers
//! with [`Auditor::read`], which stores the row before the data goes out; a refusal stores the row
//! with its code. A call the server drops before it answers (its deadline passed, the client went
//! away) still leaves a row, written by [`Call`]'s `Drop`. Rows are only ever inserted: the
//! migrations of every service add triggers that refuse UPDATE and DELETE on `audit_log`.

use crate::auth::Caller;
use crate::db::DbPool;
use crate::error::{ApiError, code_name};
use crate::server::Deadline;
use chrono::{DateTime, Utc};
use landsby_domain::Role;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use tonic::{Request, Status};
use uuid::Uuid;

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When the call was handled.
    pub at: DateTime<Utc>,
    /// The caller's subject.
    pub subject: String,
    /// The caller's agency.
    pub agency: String,
    /// The caller's roles, comma-separated.
    pub roles: String,
    /// The RPC, e.g. `landsby.case.v1.CaseService/GetCase`.
    pub rpc: &'static str,
    /// The case the call concerned, if any.
    pub case_id: Option<Uuid>,
    /// Other resources the call read or changed (members, decisions, or the cases a list returned).
    pub resource_ids: Vec<Uuid>,
    /// `OK` or the gRPC code name of the error returned.
    pub outcome: &'static str,
    /// The call was made under emergency access (break-glass) to the case.
    pub break_glass: bool,
}

impl AuditEntry {
    /// A row for `caller` calling `rpc`, outcome OK until said otherwise.
    pub fn new(caller: &Caller, rpc: &'static str, at: DateTime<Utc>) -> Self {
        Self {
            at,
            subject: caller.subject.clone(),
            agency: caller.agency.as_str().to_owned(),
            roles: caller
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            rpc,
            case_id: None,
            resource_ids: Vec::new(),
            outcome: "OK",
            break_glass: false,
        }
    }

    /// The same row for a call that ended in `err`.
    pub fn failed(mut self, err: &ApiError) -> Self {
        self.outcome = code_name(err.code());
        self
    }
}

/// The insert's column list; [`append_all`] adds one group of [`COLUMNS`] placeholders per row.
const INSERT: &str = "INSERT INTO audit_log \
    (occurred_at, actor_subject, actor_agency, actor_roles, rpc, case_id, resource_ids, outcome, \
    break_glass)";
const COLUMNS: usize = 9;

/// Appends `entry` on `conn`, which may be a transaction that also carries the change.
pub async fn append<'c, DB, E>(conn: E, entry: &AuditEntry) -> Result<(), ApiError>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    append_all(conn, std::slice::from_ref(entry)).await
}

/// Appends `entries` on `conn` in one statement (nothing when there are none).
pub async fn append_all<'c, DB, E>(conn: E, entries: &[AuditEntry]) -> Result<(), ApiError>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    if entries.is_empty() {
        return Ok(());
    }
    // One group of placeholders per row (numbers only: the values are bound).
    let groups: Vec<String> = (0..entries.len())
        .map(|row| format!("({})", crate::db::placeholders(row * COLUMNS + 1, COLUMNS)))
        .collect();
    let sql = format!("{INSERT} VALUES {}", groups.join(", "));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for entry in entries {
        query = query
            .bind(entry.at)
            .bind(entry.subject.clone())
            .bind(entry.agency.clone())
            .bind(entry.roles.clone())
            .bind(entry.rpc.to_owned())
            .bind(entry.case_id)
            .bind(Json(entry.resource_ids.clone()))
            .bind(entry.outcome.to_owned())
            .bind(entry.break_glass);
    }
    query.execute(conn).await?;
    Ok(())
}

/// One case a read touched, and the ids of what of it was read.
pub type CaseRead = (Uuid, Vec<Uuid>);

/// Starts, refuses and finishes audited calls for one service, over its database.
#[derive(Debug, Clone)]
pub struct Auditor {
    db: DbPool,
}

impl Auditor {
    /// The auditor of the service whose database is `db`.
    pub fn new(db: DbPool) -> Self {
        Self { db }
    }

    /// Appends one row on its own.
    pub async fn append(&self, entry: &AuditEntry) -> Result<(), ApiError> {
        match &self.db {
            DbPool::Postgres(pool) => append(pool, entry).await,
            DbPool::Sqlite(pool) => append(pool, entry).await,
        }
    }

    /// The caller (put in the request by the server's guard), if one of `allowed`; the call whose
    /// row records it. A caller without an allowed role is refused with PERMISSION_DENIED, recorded.
    pub async fn begin<T>(
        &self,
        request: &Request<T>,
        rpc: &'static str,
        allowed: &[Role],
    ) -> Result<(Caller, Call), Status> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::from(ApiError::Unauthenticated {
                    reason: "a bearer token is required",
                })
            })?;
        let call = Call {
            audit: AuditEntry::new(&caller, rpc, crate::validate::now()),
            auditor: self.clone(),
            deadline: request.extensions().get::<Deadline>().map(|d| d.0),
            armed: true,
        };
        if let Err(err) = caller.require(allowed) {
            return Err(self.refuse(call, err).await);
        }
        Ok((caller, call))
    }

    /// Records a call that failed, then turns the error into its status.
    async fn refuse(&self, mut call: Call, err: ApiError) -> Status {
        let entry = call.audit.clone().failed(&err);
        if let Err(audit_err) = self.append(&entry).await {
            // The call is refused either way; the missing row is logged for the operator.
            tracing::warn!(rpc = entry.rpc, error = %audit_err, "could not record a refused call in the audit log");
        }
        call.armed = false;
        err.into()
    }

    /// Answers a read with `result` and the ids it touched: the data goes out only after its row
    /// is stored.
    pub async fn read<T>(
        &self,
        mut call: Call,
        result: Result<(T, Vec<Uuid>), ApiError>,
    ) -> Result<T, Status> {
        match result {
            Ok((value, resources)) => {
                call.audit.resource_ids = resources;
                self.append(&call.audit).await.map_err(Status::from)?;
                call.armed = false;
                Ok(value)
            }
            Err(err) => Err(self.refuse(call, err).await),
        }
    }

    /// Answers a read of several cases with `result` and, per case read, the ids it touched: one
    /// row per case, all stored in one statement before the data goes out. A read that found none
    /// leaves one row without a case.
    pub async fn read_cases<T>(
        &self,
        mut call: Call,
        result: Result<(T, Vec<CaseRead>), ApiError>,
    ) -> Result<T, Status> {
        match result {
            Ok((value, cases)) => {
                let rows: Vec<AuditEntry> = if cases.is_empty() {
                    vec![call.audit.clone()]
                } else {
                    cases
                        .into_iter()
                        .map(|(case_id, resources)| AuditEntry {
                            case_id: Some(case_id),
                            resource_ids: resources,
                            ..call.audit.clone()
                        })
                        .collect()
                };
                let stored = match &self.db {
                    DbPool::Postgres(pool) => append_all(pool, &rows).await,
                    DbPool::Sqlite(pool) => append_all(pool, &rows).await,
                };
                stored.map_err(Status::from)?;
                call.armed = false;
                Ok(value)
            }
            Err(err) => Err(self.refuse(call, err).await),
        }
    }

    /// Answers a change, whose row the store wrote in the change's transaction.
    pub async fn write<T>(&self, mut call: Call, result: Result<T, ApiError>) -> Result<T, Status> {
        match result {
            Ok(value) => {
                call.armed = false;
                Ok(value)
            }
            Err(err) => Err(self.refuse(call, err).await),
        }
    }
}

/// One call being handled: its audit row so far. If the server drops the call before it answers,
/// the row is written with DEADLINE_EXCEEDED (the deadline had passed) or CANCELLED.
#[derive(Debug)]
pub struct Call {
    /// The row; handlers add the case and resources as they learn them.
    pub audit: AuditEntry,
    auditor: Auditor,
    deadline: Option<tokio::time::Instant>,
    armed: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let timed_out = self
            .deadline
            .is_some_and(|d| tokio::time::Instant::now() >= d);
        let mut entry = self.audit.clone();
        entry.outcome = if timed_out {
            "DEADLINE_EXCEEDED"
        } else {
            "CANCELLED"
        };
        let auditor = self.auditor.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = auditor.append(&entry).await {
                    tracing::warn!(rpc = entry.rpc, error = %e, "could not record an unanswered call in the audit log");
                }
            });
        }
    }
}

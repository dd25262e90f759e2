//! The audit log: who (subject, agency, roles) did what (RPC, case, resource ids), when, and with
//! what outcome. Every service handles a call the same way through [`Auditor`]: [`Auditor::begin`]
//! checks the caller's roles and starts the row; a change writes the row in the same transaction as
//! the change ([`append`] on the transaction) and answers with [`Auditor::write`]; a read answers
//! with [`Auditor::read`], which stores the row before the data goes out; a refusal stores the row
//! with its code. A call the server drops before it answers (its deadline passed, the client went
//! away) still leaves a row, written by [`Call`]'s `Drop`. Rows are only ever inserted: the
//! migrations of every service add triggers that refuse UPDATE and DELETE on `audit_log`.
//!
//! A row written on its own (a read's, a refusal's) goes through the auditor's group commit: one
//! writer task takes every row that arrived while its last commit ran and stores them in one
//! statement, and each call answers once the commit that holds its row has returned. An audited
//! read is a write; grouping makes 32 concurrent reads cost one commit (one fsync on SQLite)
//! instead of 32, and adds no wait when the service is idle (docs/performance.md).

use crate::auth::Caller;
use crate::db::DbPool;
use crate::error::{ApiError, code_name};
use crate::server::Deadline;
use chrono::{DateTime, Utc};
use landsby_domain::Role;
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Type};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
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
    let sql = format!(
        "{INSERT} VALUES {}",
        crate::db::value_rows(1, entries.len(), COLUMNS)
    );
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

/// The most rows in one INSERT: 9 bound values each stays well under SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT: usize = 1000;
/// The most calls whose rows share one commit.
const CALLS_PER_COMMIT: usize = 256;
/// Calls waiting for the writer; beyond this, callers wait to hand their rows over.
const WAITING_CALLS: usize = 1024;

/// One call's rows, and where its answer goes.
type Waiting = (Vec<AuditEntry>, oneshot::Sender<Result<(), ApiError>>);

/// Stores `rows` on `conn`: one statement, or one transaction of several when there are many.
async fn store<DB>(conn: &mut DB::Connection, rows: &[AuditEntry]) -> Result<(), ApiError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    if rows.len() <= ROWS_PER_STATEMENT {
        return append_all(&mut *conn, rows).await;
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        append_all(&mut *tx, chunk).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Stores `rows` on the writer's connection, taking one from the pool if it holds none. A
/// connection that failed is given back (the pool checks it).
async fn store_held<DB>(
    pool: &Pool<DB>,
    held: &mut Option<PoolConnection<DB>>,
    rows: &[AuditEntry],
) -> Result<(), ApiError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(pool.acquire().await?),
    };
    let stored = store::<DB>(&mut **conn, rows).await;
    if stored.is_err() {
        *held = None;
    }
    stored
}

/// The writer: takes every call waiting (up to [`CALLS_PER_COMMIT`]), stores their rows in one
/// commit and answers each. If the shared commit fails, each call's rows are tried on their own,
/// so that one call's bad row never fails another call. While calls keep coming it keeps its
/// connection (sqlx pings a connection each time it goes back to the pool); when none wait, it
/// gives it back, so that the pool can close.
async fn write_groups<DB>(pool: Pool<DB>, mut waiting: mpsc::Receiver<Waiting>)
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    let mut group: Vec<Waiting> = Vec::with_capacity(CALLS_PER_COMMIT);
    let mut held: Option<PoolConnection<DB>> = None;
    while waiting.recv_many(&mut group, CALLS_PER_COMMIT).await > 0 {
        // The rows move into one list; each call keeps how many of them are its own.
        let mut rows: Vec<AuditEntry> = Vec::with_capacity(group.len());
        let mut answers = Vec::with_capacity(group.len());
        for (own, answer) in group.drain(..) {
            answers.push((own.len(), answer));
            rows.extend(own);
        }
        match store_held(&pool, &mut held, &rows).await {
            Ok(()) => {
                for (_, answer) in answers {
                    let _ = answer.send(Ok(()));
                }
            }
            Err(err) if answers.len() == 1 => {
                if let Some((_, answer)) = answers.pop() {
                    let _ = answer.send(Err(err));
                }
            }
            Err(_) => {
                let mut from = 0;
                for (n, answer) in answers {
                    let own = &rows[from..from + n];
                    from += n;
                    let _ = answer.send(store_held(&pool, &mut held, own).await);
                }
            }
        }
        if waiting.is_empty() {
            held = None;
        }
    }
}

/// Starts, refuses and finishes audited calls for one service, over its database.
#[derive(Debug, Clone)]
pub struct Auditor {
    db: DbPool,
    /// The group commit's writer, started by the first row (inside the service's runtime).
    writer: Arc<OnceLock<mpsc::Sender<Waiting>>>,
}

impl Auditor {
    /// The auditor of the service whose database is `db`.
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            writer: Arc::new(OnceLock::new()),
        }
    }

    /// Appends one row on its own, in the next shared commit; returns once it is stored.
    pub async fn append(&self, entry: &AuditEntry) -> Result<(), ApiError> {
        self.store(vec![entry.clone()]).await
    }

    /// Stores `rows` (one call's) in the next shared commit; returns once they are stored. Should
    /// the writer be gone (its runtime shut down), the rows are stored directly.
    async fn store(&self, rows: Vec<AuditEntry>) -> Result<(), ApiError> {
        let writer = self.writer.get_or_init(|| {
            let (send, receive) = mpsc::channel(WAITING_CALLS);
            match &self.db {
                DbPool::Postgres(pool) => tokio::spawn(write_groups(pool.clone(), receive)),
                DbPool::Sqlite(pool) => tokio::spawn(write_groups(pool.clone(), receive)),
            };
            send
        });
        let (answer, answered) = oneshot::channel();
        match writer.send((rows, answer)).await {
            Ok(()) => match answered.await {
                Ok(stored) => stored,
                Err(_) => Err(ApiError::internal("the audit writer stopped")),
            },
            Err(mpsc::error::SendError((rows, _))) => match &self.db {
                DbPool::Postgres(pool) => store_held(pool, &mut None, &rows).await,
                DbPool::Sqlite(pool) => store_held(pool, &mut None, &rows).await,
            },
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
                self.store(rows).await.map_err(Status::from)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::secret::Secret;

    async fn sqlite(dir: &std::path::Path) -> (DbPool, sqlx::SqlitePool) {
        let url = format!("sqlite://{}", dir.join("audit.db").display());
        let db = DbPool::connect_lazy(&Secret::new(url), &DatabaseConfig::default(), "t").unwrap();
        let DbPool::Sqlite(pool) = db.clone() else {
            panic!("sqlite expected")
        };
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .unwrap();
        (db, pool)
    }

    fn entry(subject: &str) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            subject: subject.into(),
            agency: "0301".into(),
            roles: "caseworker".into(),
            rpc: "landsby.case.v1.CaseService/GetCase",
            case_id: Some(Uuid::now_v7()),
            resource_ids: vec![],
            outcome: "OK",
            break_glass: false,
        }
    }

    async fn subjects(pool: &sqlx::SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT actor_subject FROM audit_log ORDER BY actor_subject")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_row_of_concurrent_calls_is_stored_once_before_its_call_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let (db, pool) = sqlite(dir.path()).await;
        let auditor = Auditor::new(db);
        let calls: Vec<_> = (0..300)
            .map(|i| {
                let auditor = auditor.clone();
                let pool = pool.clone();
                tokio::spawn(async move {
                    let subject = format!("cw-{i:03}");
                    auditor.append(&entry(&subject)).await.unwrap();
                    // Answered: the row is there for anyone who reads.
                    let stored: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM audit_log WHERE actor_subject = $1",
                    )
                    .bind(&subject)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    assert_eq!(stored, 1, "{subject}");
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        let expected: Vec<String> = (0..300).map(|i| format!("cw-{i:03}")).collect();
        assert_eq!(subjects(&pool).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_the_database_refuses_fails_its_own_call_only() {
        let dir = tempfile::tempdir().unwrap();
        let (db, pool) = sqlite(dir.path()).await;
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON audit_log \
             WHEN NEW.actor_subject = 'bad' BEGIN SELECT RAISE(ABORT, 'bad row'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        let auditor = Auditor::new(db);
        let calls: Vec<_> = (0..100)
            .map(|i| {
                let auditor = auditor.clone();
                let subject = if i == 50 {
                    "bad".to_owned()
                } else {
                    format!("cw-{i:03}")
                };
                tokio::spawn(
                    async move { (subject.clone(), auditor.append(&entry(&subject)).await) },
                )
            })
            .collect();
        for call in calls {
            let (subject, stored) = call.await.unwrap();
            assert_eq!(stored.is_ok(), subject != "bad", "{subject}: {stored:?}");
        }
        assert_eq!(subjects(&pool).await.len(), 99);
        // Many rows from one call (a read of a long page of cases) share a transaction.
        let many: Vec<AuditEntry> = (0..ROWS_PER_STATEMENT * 2 + 1)
            .map(|i| entry(&format!("page-{i:04}")))
            .collect();
        auditor.store(many).await.unwrap();
        assert_eq!(subjects(&pool).await.len(), 99 + ROWS_PER_STATEMENT * 2 + 1);
    }
}

//! The audit log's hash chain. Rows are written as calls happen ([`crate::audit`]); a sealer in each
//! service then adds them, in id order, to a chain kept beside them in `audit_seals`: each sealed
//! row's hash is SHA-256 over the previous sealed row's hash and every field of the row. A row changed,
//! removed, reordered or slipped in among sealed rows no longer matches, which [`verify`] (and
//! `landsby audit verify`) reports by row id. The chain's head (last row id and hash) is what an
//! operator records elsewhere: rewriting the whole chain changes it.
//!
//! Sealing waits until a row is `database.audit_seal_after` old. Ids are taken when a row is
//! inserted and commits can come late, but a call lasts at most the request timeout, so once the
//! sealer sees a row older than twice that, every row with a lower id has committed or never will;
//! the sealer stops at the first row that is younger and seals only an unbroken prefix.

use crate::db::{DbPool, Dialect, value_rows};
use crate::error::ApiError;
use crate::server::Shutdown;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::types::Json;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Rows read or sealed per statement.
const BATCH: i64 = 500;

/// An audit row as the chain covers it: every column.
#[derive(Debug, Clone, FromRow)]
pub struct ChainRow {
    pub(crate) id: i64,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) actor_subject: String,
    pub(crate) actor_agency: String,
    pub(crate) actor_roles: String,
    pub(crate) rpc: String,
    pub(crate) case_id: Option<Uuid>,
    pub(crate) resource_ids: Json<Vec<Uuid>>,
    pub(crate) outcome: String,
    pub(crate) break_glass: bool,
}

const ROWS_AFTER: &str = "SELECT id, occurred_at, actor_subject, actor_agency, actor_roles, rpc, \
    case_id, resource_ids, outcome, break_glass FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2";
const SEALS_AFTER: &str =
    "SELECT row_id, chain_hash FROM audit_seals WHERE row_id > $1 ORDER BY row_id LIMIT $2";
const HEAD: &str = "SELECT row_id, chain_hash FROM audit_seals ORDER BY row_id DESC LIMIT 1";

/// The hash before the first row.
const GENESIS: [u8; 32] = [0; 32];

/// The chain's hash after `row`, given the hash before it.
pub fn link(previous: &[u8], row: &ChainRow) -> Vec<u8> {
    use aws_lc_rs::digest::{Context, SHA256};
    let mut ctx = Context::new(&SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        ctx.update(bytes);
    };
    field(previous);
    field(&row.id.to_be_bytes());
    field(
        row.occurred_at
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
            .as_bytes(),
    );
    field(row.actor_subject.as_bytes());
    field(row.actor_agency.as_bytes());
    field(row.actor_roles.as_bytes());
    field(row.rpc.as_bytes());
    field(row.case_id.as_ref().map_or(&[][..], |u| u.as_bytes()));
    let resources: Vec<u8> = row
        .resource_ids
        .0
        .iter()
        .flat_map(|u| *u.as_bytes())
        .collect();
    field(&resources);
    field(row.outcome.as_bytes());
    field(&[u8::from(row.break_glass)]);
    ctx.finish().as_ref().to_vec()
}

/// Seals the rows older than `older_than` that follow the chain's head, an unbroken run in id
/// order, up to a batch; how many it sealed.
pub async fn seal(db: &DbPool, older_than: DateTime<Utc>) -> Result<usize, ApiError> {
    match db {
        DbPool::Postgres(p) => seal_on(p, older_than).await,
        DbPool::Sqlite(p) => seal_on(p, older_than).await,
    }
}

async fn seal_on<DB>(pool: &Pool<DB>, older_than: DateTime<Utc>) -> Result<usize, ApiError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> ChainRow: FromRow<'r, DB::Row>,
    for<'r> (i64, Vec<u8>): FromRow<'r, DB::Row>,
{
    let mut tx = crate::db::begin(pool, DB::BEGIN_WRITE).await?;
    // One sealer at a time, whatever the number of replicas.
    crate::db::lock::<DB>(&mut tx, "audit_chain", "seal").await?;
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
    let (after, mut hash) = head.unwrap_or((0, GENESIS.to_vec()));
    let rows: Vec<ChainRow> = sqlx::query_as(ROWS_AFTER)
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
    let ready: Vec<&ChainRow> = rows
        .iter()
        .take_while(|r| r.occurred_at < older_than)
        .collect();
    if ready.is_empty() {
        return Ok(0);
    }
    let now = crate::validate::now();
    let sql = format!(
        "INSERT INTO audit_seals (row_id, chain_hash, sealed_at) VALUES {}",
        value_rows(1, ready.len(), 3)
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in &ready {
        hash = link(&hash, row);
        insert = insert.bind(row.id).bind(hash.clone()).bind(now);
    }
    insert.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(ready.len())
}

/// Seals what is old enough every `interval` until `shutdown`, once `ready` (migrations done):
/// each service runs one.
pub async fn run_sealer(
    db: DbPool,
    interval: Duration,
    after: Duration,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
) {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if !ready.load(Ordering::Acquire) {
            continue;
        }
        loop {
            match seal(&db, crate::validate::now() - after).await {
                Ok(n) if i64::try_from(n).ok() == Some(BATCH) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not seal audit rows; trying again later");
                    break;
                }
            }
        }
    }
}

/// What is wrong with one row of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The row no longer hashes to its seal: it was changed, or rows before it were reordered.
    Changed(i64),
    /// A sealed row is gone.
    Removed(i64),
    /// A row without a seal among sealed rows: slipped in after sealing.
    Unsealed(i64),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Changed(id) => write!(f, "row {id} was changed (or moved)"),
            Problem::Removed(id) => write!(f, "row {id} was removed"),
            Problem::Unsealed(id) => write!(f, "row {id} is not in the chain (slipped in)"),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows read.
    pub rows: u64,
    /// Rows that matched their seal.
    pub sealed: u64,
    /// Rows after the head, not sealed yet (newer than `audit_seal_after`).
    pub pending: u64,
    /// The chain's head: the last sealed row id and its hash (hex).
    pub head: Option<(i64, String)>,
    /// Everything wrong, in row order.
    pub problems: Vec<Problem>,
}

/// Walks the audit log and its seals in id order and checks every sealed row against the chain.
pub async fn verify(db: &DbPool) -> Result<Report, ApiError> {
    match db {
        DbPool::Postgres(p) => verify_on(p).await,
        DbPool::Sqlite(p) => verify_on(p).await,
    }
}

async fn verify_on<DB>(pool: &Pool<DB>) -> Result<Report, ApiError>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> ChainRow: FromRow<'r, DB::Row>,
    for<'r> (i64, Vec<u8>): FromRow<'r, DB::Row>,
{
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(HEAD).fetch_optional(pool).await?;
    let head_id = head.as_ref().map_or(0, |h| h.0);
    let mut report = Report {
        head: head.map(|(id, h)| (id, hex(&h))),
        ..Report::default()
    };
    let (mut rows, mut seals) = (VecDeque::new(), VecDeque::new());
    let (mut rows_after, mut seals_after) = (Some(i64::MIN), Some(i64::MIN));
    let mut hash = GENESIS.to_vec();
    loop {
        if rows.is_empty()
            && let Some(after) = rows_after
        {
            let page: Vec<ChainRow> = sqlx::query_as(ROWS_AFTER)
                .bind(after)
                .bind(BATCH)
                .fetch_all(pool)
                .await?;
            rows_after = (page.len() as i64 == BATCH).then(|| page.last().map_or(after, |r| r.id));
            rows.extend(page);
        }
        if seals.is_empty()
            && let Some(after) = seals_after
        {
            let page: Vec<(i64, Vec<u8>)> = sqlx::query_as(SEALS_AFTER)
                .bind(after)
                .bind(BATCH)
                .fetch_all(pool)
                .await?;
            seals_after = (page.len() as i64 == BATCH).then(|| page.last().map_or(after, |s| s.0));
            seals.extend(page);
        }
        let row_id = rows.front().map(|r: &ChainRow| r.id);
        let seal_id = seals.front().map(|s: &(i64, Vec<u8>)| s.0);
        match (row_id, seal_id) {
            (None, None) => break,
            (Some(r), Some(s)) if r == s => {
                let (Some(row), Some((_, sealed))) = (rows.pop_front(), seals.pop_front()) else {
                    break;
                };
                report.rows += 1;
                if link(&hash, &row) == sealed {
                    report.sealed += 1;
                } else {
                    report.problems.push(Problem::Changed(r));
                }
                // Go on from the seal, so that one bad row is one problem.
                hash = sealed;
            }
            (Some(r), s) if s.is_none_or(|s| r < s) => {
                rows.pop_front();
                report.rows += 1;
                if r < head_id {
                    report.problems.push(Problem::Unsealed(r));
                } else {
                    report.pending += 1;
                }
            }
            (_, Some(s)) => {
                if let Some((_, sealed)) = seals.pop_front() {
                    report.problems.push(Problem::Removed(s));
                    hash = sealed;
                }
            }
            (Some(_), None) => break,
        }
    }
    Ok(report)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, outcome: &str) -> ChainRow {
        ChainRow {
            id,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap_or_default(),
            actor_subject: "caseworker-1".into(),
            actor_agency: "0301".into(),
            actor_roles: "caseworker".into(),
            rpc: "landsby.case.v1.CaseService/GetCase".into(),
            case_id: Some(Uuid::nil()),
            resource_ids: Json(vec![Uuid::max()]),
            outcome: outcome.into(),
            break_glass: false,
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_link() {
        let base = link(&GENESIS, &row(1, "OK"));
        assert_eq!(base.len(), 32);
        assert_eq!(base, link(&GENESIS, &row(1, "OK")));
        assert_ne!(base, link(&GENESIS, &row(2, "OK")));
        assert_ne!(base, link(&GENESIS, &row(1, "NOT_FOUND")));
        assert_ne!(base, link(&base, &row(1, "OK")));
        let mut flagged = row(1, "OK");
        flagged.break_glass = true;
        assert_ne!(base, link(&GENESIS, &flagged));
        // Fields are framed: moving a character from one to the next is a different row.
        let mut a = row(1, "OK");
        a.actor_subject = "ab".into();
        a.actor_agency = "c".into();
        let mut b = row(1, "OK");
        b.actor_subject = "a".into();
        b.actor_agency = "bc".into();
        assert_ne!(link(&GENESIS, &a), link(&GENESIS, &b));
    }
}

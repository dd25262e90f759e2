//! The job queue: apalis's tables in the worker's database, and what the worker adds to apalis.
//!
//! Jobs are pushed with apalis's own insert (`push_tasks`), one job per statement, each with an
//! idempotency key: a key already queued is not queued again, so an event read twice makes one
//! job. A feed's cursor moves in the same transaction as the jobs its events made.
//!
//! The guards apalis lacks ([`Queue::guard`], run by every worker process):
//! - a job held by a process that stopped being seen (killed, or restarted under a new name) is
//!   taken up again with the attempt counted, and is DEAD once its attempts are spent (apalis's own
//!   re-enqueue of orphans ignores `max_attempts`, so a job that crashes its worker every time would
//!   loop for ever);
//! - a pending job whose attempts are spent is DEAD.
//!
//! Statuses as apalis writes them: `Pending`, `Queued` (taken), `Running`, `Done`, `Failed` (will
//! be tried again while attempts remain), `Killed` (DEAD). The admin API shows `Failed` without
//! attempts left as DEAD too.

use crate::error::JobError;
use crate::jobs::Job;
use apalis::prelude::TaskBuilder;
use chrono::{DateTime, TimeZone, Utc};
use landsby_platform::db::{DbPool, is_unique_violation};
use sqlx::{PgPool, SqlitePool};
use std::time::Duration;

/// The apalis queue (`job_type`) of every landsby job.
pub const QUEUE: &str = "landsby.worker";

/// The job queue, on the worker's database.
#[derive(Debug, Clone)]
pub enum Queue {
    /// apalis-postgres (schema `apalis`).
    Postgres(PgPool),
    /// apalis-sqlite (tables `Jobs`, `Workers`).
    Sqlite(SqlitePool),
}

/// One job as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// The job id (a ULID).
    pub id: String,
    /// The job.
    pub job: Option<Job>,
    /// apalis's status.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// When it runs (next).
    pub run_at: Option<DateTime<Utc>>,
    /// When its last attempt finished.
    pub done_at: Option<DateTime<Utc>>,
    /// The last result apalis recorded (our errors: codes and short reasons).
    pub last_result: Option<String>,
}

/// What else commits with the jobs pushed.
#[derive(Debug, Clone)]
pub enum Also<'a> {
    /// Nothing.
    Nothing,
    /// A feed's cursor moves (while the process still holds the feed's lease).
    Cursor(Advance<'a>),
    /// A sweep's batch is recorded.
    Batch {
        /// The sweep.
        sweep_id: uuid::Uuid,
        /// The batch's key (its job's idempotency key).
        key: &'a str,
        /// How many cases it has.
        cases: i64,
    },
}

/// A feed cursor to move together with the jobs its events made.
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    /// `case` or `visitation`.
    pub feed: &'a str,
    /// The agency.
    pub agency: &'a str,
    /// The last sequence handled.
    pub after_sequence: i64,
    /// The process that holds the feed's lease: the cursor moves only while it still does.
    pub owner: &'a str,
}

/// What a status filter of the admin API selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every job.
    Any,
    /// `Pending`.
    Pending,
    /// `Queued` or `Running`.
    Running,
    /// `Done`.
    Done,
    /// `Failed` with attempts left.
    Failed,
    /// `Killed`, or `Failed` without attempts left.
    Dead,
}

impl StatusFilter {
    fn sql(self) -> &'static str {
        match self {
            Self::Any => "TRUE",
            Self::Pending => "status = 'Pending'",
            Self::Running => "status IN ('Queued', 'Running')",
            Self::Done => "status = 'Done'",
            Self::Failed => "(status = 'Failed' AND attempts < max_attempts)",
            Self::Dead => "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))",
        }
    }
}

fn task(
    job: &Job,
    key: &str,
    max_attempts: u32,
) -> Result<apalis::prelude::Task<Vec<u8>>, JobError> {
    // Queued in the current trace, if any: the job's run continues it.
    let queued = crate::jobs::Queued {
        job: job.clone(),
        traceparent: landsby_platform::telemetry::traceparent(),
    };
    let bytes = serde_json::to_vec(&queued)
        .map_err(|_| JobError::Permanent("a job could not be encoded".into()))?;
    Ok(TaskBuilder::new(bytes)
        .idempotency_key(key)
        .max_attempts(max_attempts as usize)
        .build())
}

/// A job as both databases' listing selects it (times in seconds since the epoch).
#[derive(sqlx::FromRow)]
struct JobRecord {
    id: String,
    job: Option<String>,
    status: String,
    attempts: i64,
    max_attempts: i64,
    run_at: Option<i64>,
    done_at: Option<i64>,
    last_result: Option<String>,
}

async fn fetch_jobs<DB>(
    pool: &sqlx::Pool<DB>,
    sql: String,
    agency: &str,
    before: &str,
    limit: i64,
) -> Result<Vec<JobRow>, JobError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> JobRecord: sqlx::FromRow<'r, DB::Row>,
{
    let rows = sqlx::query_as::<DB, JobRecord>(sqlx::AssertSqlSafe(sql))
        .bind(QUEUE)
        .bind(agency)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(JobError::store)?;
    Ok(rows
        .into_iter()
        .map(|r| JobRow {
            id: r.id,
            job: r.job.and_then(|j| serde_json::from_str(&j).ok()),
            status: r.status,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: from_epoch(r.run_at),
            done_at: from_epoch(r.done_at),
            last_result: r.last_result,
        })
        .collect())
}

fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_epoch(s: Option<i64>) -> Option<DateTime<Utc>> {
    s.and_then(|s| Utc.timestamp_opt(s, 0).single())
}

const CURSOR_SQL: &str = "UPDATE feed_cursors SET after_sequence = $1, updated_at = $2 \
     WHERE feed = $3 AND agency = $4 AND owner = $5 AND after_sequence <= $1 \
     RETURNING after_sequence";
const BATCH_SQL: &str = "INSERT INTO sweep_batches (sweep_id, batch_key, cases) VALUES ($1, $2, $3) \
     ON CONFLICT (sweep_id, batch_key) DO NOTHING";

/// Does `also` in the transaction on `conn`; false when a cursor was to move but the lease is
/// not held.
async fn also_in<DB>(
    conn: &mut DB::Connection,
    also: &Also<'_>,
    now: DateTime<Utc>,
) -> Result<bool, JobError>
where
    DB: landsby_platform::db::Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> uuid::Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    match also {
        Also::Nothing => Ok(true),
        Also::Cursor(a) => {
            let moved = sqlx::query_as::<DB, (i64,)>(CURSOR_SQL)
                .bind(a.after_sequence)
                .bind(now)
                .bind(a.feed)
                .bind(a.agency)
                .bind(a.owner)
                .fetch_optional(&mut *conn)
                .await
                .map_err(JobError::store)?;
            Ok(moved.is_some())
        }
        Also::Batch {
            sweep_id,
            key,
            cases,
        } => {
            sqlx::query(BATCH_SQL)
                .bind(*sweep_id)
                .bind(*key)
                .bind(*cases)
                .execute(&mut *conn)
                .await
                .map_err(JobError::store)?;
            Ok(true)
        }
    }
}

impl Queue {
    /// The queue on `db`.
    pub fn new(db: &DbPool) -> Self {
        match db {
            DbPool::Postgres(pool) => Self::Postgres(pool.clone()),
            DbPool::Sqlite(pool) => Self::Sqlite(pool.clone()),
        }
    }

    /// Queues `jobs` (each with its idempotency key; a key already queued is skipped) and, in the
    /// same transaction, does `also`. Returns false, queuing nothing, when a cursor was to move but
    /// the process no longer holds the feed's lease.
    pub async fn push(
        &self,
        jobs: &[(Job, String)],
        max_attempts: u32,
        also: Also<'_>,
    ) -> Result<bool, JobError> {
        let tasks = jobs
            .iter()
            .map(|(job, key)| task(job, key, max_attempts))
            .collect::<Result<Vec<_>, _>>()?;
        let now = Utc::now();
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(JobError::store)?;
                if !also_in::<sqlx::Sqlite>(&mut tx, &also, now).await? {
                    return Ok(false);
                }
                for t in &tasks {
                    apalis_sqlite::queries::push_tasks(&mut *tx, QUEUE, std::slice::from_ref(t))
                        .await
                        .map_err(JobError::queue)?;
                }
                tx.commit().await.map_err(JobError::store)?;
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(JobError::store)?;
                if !also_in::<sqlx::Postgres>(&mut tx, &also, now).await? {
                    return Ok(false);
                }
                for t in tasks {
                    // apalis-postgres has no ON CONFLICT: a key already queued is a unique
                    // violation, absorbed by a savepoint so the rest of the transaction stands.
                    sqlx::query("SAVEPOINT push")
                        .execute(&mut *tx)
                        .await
                        .map_err(JobError::store)?;
                    match apalis_postgres::queries::push_tasks(&mut *tx, QUEUE, vec![t]).await {
                        Ok(()) => {}
                        Err(apalis_postgres::Error::Database(e)) if is_unique_violation(&e) => {
                            sqlx::query("ROLLBACK TO SAVEPOINT push")
                                .execute(&mut *tx)
                                .await
                                .map_err(JobError::store)?;
                        }
                        Err(e) => return Err(JobError::queue(e)),
                    }
                    sqlx::query("RELEASE SAVEPOINT push")
                        .execute(&mut *tx)
                        .await
                        .map_err(JobError::store)?;
                }
                tx.commit().await.map_err(JobError::store)?;
            }
        }
        Ok(true)
    }

    /// Makes job `id` wait `delay` before its next attempt (apalis would take a failed job again
    /// at once).
    pub async fn delay(&self, id: &str, delay: Duration) -> Result<(), JobError> {
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("UPDATE Jobs SET run_at = $1 WHERE id = $2")
                    .bind(epoch(at))
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(JobError::store)?;
            }
            Self::Postgres(pool) => {
                sqlx::query("UPDATE apalis.jobs SET run_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(JobError::store)?;
            }
        }
        Ok(())
    }

    /// The guards apalis lacks (see the module): jobs of processes unseen for `stale_after` are
    /// taken up again, or DEAD when their attempts are spent; pending jobs with their attempts
    /// spent are DEAD. Returns how many jobs were (taken up again, declared dead).
    pub async fn guard(&self, stale_after: Duration) -> Result<(u64, u64), JobError> {
        let stale = i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX);
        let lost = r#"{"Err":"the worker process running it was lost; attempts are spent"}"#;
        let spent = r#"{"Err":"attempts are spent"}"#;
        let requeued = r#"{"Err":"the worker process running it was lost; taken up again"}"#;
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(JobError::store)?;
                let orphans = "SELECT Jobs.id FROM Jobs JOIN Workers ON Jobs.lock_by = Workers.id \
                     WHERE Jobs.job_type = $1 AND Jobs.status IN ('Queued', 'Running') \
                     AND strftime('%s', 'now') - Workers.last_seen >= $2";
                let dead = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE Jobs SET status = 'Killed', attempts = attempts + 1, lock_by = NULL, \
                     done_at = strftime('%s', 'now'), last_result = $3 \
                     WHERE id IN ({orphans}) AND attempts + 1 >= max_attempts"
                )))
                .bind(QUEUE)
                .bind(stale)
                .bind(lost)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                let again = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE Jobs SET status = 'Pending', attempts = attempts + 1, lock_by = NULL, \
                     lock_at = NULL, done_at = NULL, last_result = $3 WHERE id IN ({orphans})"
                )))
                .bind(QUEUE)
                .bind(stale)
                .bind(requeued)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                let exhausted = sqlx::query(
                    "UPDATE Jobs SET status = 'Killed', lock_by = NULL, \
                     done_at = strftime('%s', 'now'), last_result = $2 \
                     WHERE job_type = $1 AND status = 'Pending' AND attempts >= max_attempts",
                )
                .bind(QUEUE)
                .bind(spent)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                tx.commit().await.map_err(JobError::store)?;
                Ok((again, dead + exhausted))
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(JobError::store)?;
                let orphans = "SELECT jobs.id FROM apalis.jobs AS jobs \
                     JOIN apalis.workers AS workers ON jobs.lock_by = workers.id \
                     WHERE jobs.job_type = $1 AND jobs.status IN ('Queued', 'Running') \
                     AND workers.last_seen <= NOW() - make_interval(secs => $2) \
                     FOR UPDATE OF jobs SKIP LOCKED";
                let dead = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE apalis.jobs SET status = 'Killed', attempts = attempts + 1, \
                     lock_by = NULL, done_at = NOW(), last_result = $3::jsonb \
                     WHERE id IN ({orphans}) AND attempts + 1 >= max_attempts"
                )))
                .bind(QUEUE)
                .bind(stale as f64)
                .bind(lost)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                let again = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE apalis.jobs SET status = 'Pending', attempts = attempts + 1, \
                     lock_by = NULL, lock_at = NULL, done_at = NULL, last_result = $3::jsonb \
                     WHERE id IN ({orphans})"
                )))
                .bind(QUEUE)
                .bind(stale as f64)
                .bind(requeued)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                let exhausted = sqlx::query(
                    "UPDATE apalis.jobs SET status = 'Killed', lock_by = NULL, done_at = NOW(), \
                     last_result = $2::jsonb \
                     WHERE job_type = $1 AND status = 'Pending' AND attempts >= max_attempts",
                )
                .bind(QUEUE)
                .bind(spent)
                .execute(&mut *tx)
                .await
                .map_err(JobError::store)?
                .rows_affected();
                tx.commit().await.map_err(JobError::store)?;
                Ok((again, dead + exhausted))
            }
        }
    }

    /// Retention: removes jobs done more than `done` ago and DEAD jobs (killed, or failed with their
    /// attempts spent) dead more than `dead` ago. Returns how many.
    pub async fn purge_finished(&self, done: Duration, dead: Duration) -> Result<u64, JobError> {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let dead_states = "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";
        let removed = match self {
            Self::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM Jobs WHERE job_type = $1 AND done_at IS NOT NULL AND \
                 ((status = 'Done' AND done_at <= strftime('%s', 'now') - $2) OR \
                 ({dead_states} AND done_at <= strftime('%s', 'now') - $3))"
            )))
            .bind(QUEUE)
            .bind(secs(done))
            .bind(secs(dead))
            .execute(pool)
            .await
            .map_err(JobError::store)?
            .rows_affected(),
            Self::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM apalis.jobs WHERE job_type = $1 AND done_at IS NOT NULL AND \
                 ((status = 'Done' AND done_at <= NOW() - make_interval(secs => $2)) OR \
                 ({dead_states} AND done_at <= NOW() - make_interval(secs => $3)))"
            )))
            .bind(QUEUE)
            .bind(secs(done) as f64)
            .bind(secs(dead) as f64)
            .execute(pool)
            .await
            .map_err(JobError::store)?
            .rows_affected(),
        };
        Ok(removed)
    }

    /// How many jobs wait (to run, to be retried, or running) and how many are DEAD.
    pub async fn depth(&self) -> Result<(u64, u64), JobError> {
        let dead_states = "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";
        let sql = |table: &str| {
            format!(
                "SELECT CAST(COALESCE(SUM(CASE WHEN status <> 'Done' AND NOT {dead_states} THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN {dead_states} THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM {table} WHERE job_type = $1"
            )
        };
        let (waiting, dead): (i64, i64) = match self {
            Self::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql("Jobs")))
                .bind(QUEUE)
                .fetch_one(pool)
                .await
                .map_err(JobError::store)?,
            Self::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql("apalis.jobs")))
                .bind(QUEUE)
                .fetch_one(pool)
                .await
                .map_err(JobError::store)?,
        };
        Ok((
            u64::try_from(waiting).unwrap_or(0),
            u64::try_from(dead).unwrap_or(0),
        ))
    }

    /// The agency's jobs in `filter`, newest first, after the job id `before` (a page token).
    pub async fn list(
        &self,
        agency: &str,
        filter: StatusFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRow>, JobError> {
        let limit = i64::from(limit);
        let before = before.unwrap_or("~");
        match self {
            Self::Sqlite(pool) => {
                let sql = format!(
                    "SELECT id, CAST(job AS TEXT) AS job, status, attempts, max_attempts, run_at, \
                     done_at, last_result FROM Jobs WHERE job_type = $1 \
                     AND json_extract(CAST(job AS TEXT), '$.agency') = $2 AND id < $3 AND {} \
                     ORDER BY id DESC LIMIT $4",
                    filter.sql()
                );
                fetch_jobs(pool, sql, agency, before, limit).await
            }
            Self::Postgres(pool) => {
                let sql = format!(
                    "SELECT id, convert_from(job, 'UTF8') AS job, status, \
                     attempts::BIGINT AS attempts, max_attempts::BIGINT AS max_attempts, \
                     EXTRACT(EPOCH FROM run_at)::BIGINT AS run_at, \
                     EXTRACT(EPOCH FROM done_at)::BIGINT AS done_at, \
                     last_result::TEXT AS last_result FROM apalis.jobs WHERE job_type = $1 \
                     AND convert_from(job, 'UTF8')::jsonb ->> 'agency' = $2 AND id < $3 AND {} \
                     ORDER BY id DESC LIMIT $4",
                    filter.sql()
                );
                fetch_jobs(pool, sql, agency, before, limit).await
            }
        }
    }

    /// One of the agency's jobs.
    pub async fn get(&self, agency: &str, id: &str) -> Result<Option<JobRow>, JobError> {
        // Ids are ULIDs (26 characters, digits and capitals): the largest id below `{id}~` is the
        // job itself when it exists.
        let next = format!("{id}~");
        let rows = self.list(agency, StatusFilter::Any, Some(&next), 1).await?;
        Ok(rows.into_iter().find(|r| r.id == id))
    }

    /// Makes the agency's DEAD or failed job `id` pending again with no attempts counted. Returns
    /// whether it was DEAD or failed (a job pending, running or done is left as it is).
    pub async fn retry(&self, agency: &str, id: &str) -> Result<bool, JobError> {
        let Some(row) = self.get(agency, id).await? else {
            return Ok(false);
        };
        if row.status != "Killed" && row.status != "Failed" {
            return Ok(false);
        }
        let changed = match self {
            Self::Sqlite(pool) => sqlx::query(
                "UPDATE Jobs SET status = 'Pending', attempts = 0, lock_by = NULL, \
                 lock_at = NULL, done_at = NULL, run_at = strftime('%s', 'now') \
                 WHERE id = $1 AND job_type = $2 AND status IN ('Killed', 'Failed')",
            )
            .bind(id)
            .bind(QUEUE)
            .execute(pool)
            .await
            .map_err(JobError::store)?
            .rows_affected(),
            Self::Postgres(pool) => sqlx::query(
                "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, lock_by = NULL, \
                 lock_at = NULL, done_at = NULL, run_at = NOW() \
                 WHERE id = $1 AND job_type = $2 AND status IN ('Killed', 'Failed')",
            )
            .bind(id)
            .bind(QUEUE)
            .execute(pool)
            .await
            .map_err(JobError::store)?
            .rows_affected(),
        };
        Ok(changed == 1)
    }
}

//! The worker's own tables, written once in SQL that PostgreSQL and SQLite both run: where it is in
//! each agency's feeds (with a lease, so one process follows a feed at a time) and the review
//! sweeps with their batches. The job queue itself is apalis's ([`crate::queue`]).
//!
//! The two `impl` blocks repeat one list of bounds: Rust does not carry a trait's where-clauses to
//! the places that use it. Keep the lists in step.

use chrono::{DateTime, NaiveDate, Utc};
use landsby_platform::ApiError;
use landsby_platform::db::{DbPool, Dialect, is_unique_violation};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What a batch of a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Cases recomputed.
    pub cases_done: i64,
    /// Cases whose recompute failed for good.
    pub cases_failed: i64,
    /// Reminders of reviews coming due.
    pub review_reminders: i64,
    /// Overdue reviews escalated.
    pub escalations: i64,
    /// Visit reminders.
    pub visit_reminders: i64,
    /// Cases behind on follow-up visits.
    pub follow_up_flags: i64,
}

/// A review sweep with what its batches did so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRecord {
    pub id: Uuid,
    pub agency: String,
    pub trigger: String,
    pub day: NaiveDate,
    /// Every open case is in a batch.
    pub planned: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cases_total: i64,
    pub batches_total: i64,
    pub batches_done: i64,
    pub counts: BatchCounts,
}

/// The worker's storage.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the worker's tables exist (its migrations have run).
    async fn migrated(&self) -> bool;

    /// Takes or renews `owner`'s lease on a feed for `ttl` and returns the cursor (the last
    /// sequence handled); None while another process holds an unexpired lease.
    async fn lease(
        &self,
        feed: &str,
        agency: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, ApiError>;

    /// Gives up `owner`'s lease on a feed (on shutdown), so another process can take over at once.
    async fn release(&self, feed: &str, agency: &str, owner: &str) -> Result<(), ApiError>;

    /// The last sequence of a feed handled (0 before any).
    async fn cursor(&self, feed: &str, agency: &str) -> Result<i64, ApiError>;

    /// Starts a sweep for `tick` unless the agency has one running or `tick` was swept already;
    /// returns the sweep (the new one, the running one, or the tick's) and whether it is new.
    async fn start_sweep(
        &self,
        agency: &str,
        tick: &str,
        trigger: &str,
        day: NaiveDate,
    ) -> Result<(SweepRecord, bool), ApiError>;

    /// A sweep of the agency; the latest when `id` is None.
    async fn sweep(&self, agency: &str, id: Option<Uuid>) -> Result<Option<SweepRecord>, ApiError>;

    /// Marks the sweep planned (every open case is in a batch) and finishes it if every batch is
    /// done.
    async fn planned(&self, sweep_id: Uuid) -> Result<(), ApiError>;

    /// Records a batch as done with what it did (once: a batch run again changes nothing) and
    /// finishes the sweep when it was the last.
    async fn finish_batch(
        &self,
        sweep_id: Uuid,
        batch_key: &str,
        counts: BatchCounts,
    ) -> Result<(), ApiError>;
}

/// The store on the worker's database.
pub fn open(db: DbPool) -> Arc<dyn Store> {
    match db {
        DbPool::Postgres(pool) => Arc::new(SqlStore { pool }),
        DbPool::Sqlite(pool) => Arc::new(SqlStore { pool }),
    }
}

struct SqlStore<DB: sqlx::Database> {
    pool: Pool<DB>,
}

#[derive(FromRow)]
struct SweepRow {
    id: Uuid,
    agency: String,
    trigger: String,
    day: NaiveDate,
    planned: bool,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    cases_total: i64,
    batches_total: i64,
    batches_done: i64,
    cases_done: i64,
    cases_failed: i64,
    review_reminders: i64,
    escalations: i64,
    visit_reminders: i64,
    follow_up_flags: i64,
}

impl From<SweepRow> for SweepRecord {
    fn from(r: SweepRow) -> Self {
        Self {
            id: r.id,
            agency: r.agency,
            trigger: r.trigger,
            day: r.day,
            planned: r.planned,
            started_at: r.started_at,
            finished_at: r.finished_at,
            cases_total: r.cases_total,
            batches_total: r.batches_total,
            batches_done: r.batches_done,
            counts: BatchCounts {
                cases_done: r.cases_done,
                cases_failed: r.cases_failed,
                review_reminders: r.review_reminders,
                escalations: r.escalations,
                visit_reminders: r.visit_reminders,
                follow_up_flags: r.follow_up_flags,
            },
        }
    }
}

/// A sweep with its batches summed; `{where}` selects the sweeps.
const SWEEP_SELECT: &str = "SELECT s.id, s.agency, s.trigger, s.day, s.planned, s.started_at, \
     s.finished_at, \
     CAST(COALESCE(SUM(b.cases), 0) AS BIGINT) AS cases_total, \
     CAST(COUNT(b.batch_key) AS BIGINT) AS batches_total, \
     CAST(COALESCE(SUM(CASE WHEN b.done THEN 1 ELSE 0 END), 0) AS BIGINT) AS batches_done, \
     CAST(COALESCE(SUM(b.cases_done), 0) AS BIGINT) AS cases_done, \
     CAST(COALESCE(SUM(b.cases_failed), 0) AS BIGINT) AS cases_failed, \
     CAST(COALESCE(SUM(b.review_reminders), 0) AS BIGINT) AS review_reminders, \
     CAST(COALESCE(SUM(b.escalations), 0) AS BIGINT) AS escalations, \
     CAST(COALESCE(SUM(b.visit_reminders), 0) AS BIGINT) AS visit_reminders, \
     CAST(COALESCE(SUM(b.follow_up_flags), 0) AS BIGINT) AS follow_up_flags \
     FROM sweeps s LEFT JOIN sweep_batches b ON b.sweep_id = s.id";

/// Locks a sweep's row for the rest of the transaction: whoever may finish the sweep (a batch done,
/// the planner done) takes it first, so the last of them sees what the others committed.
const LOCK_SWEEP: &str = "SELECT id FROM sweeps WHERE id = $1";
/// Finishes a planned sweep whose batches are all done. Run after [`LOCK_SWEEP`].
const FINISH_SWEEP: &str = "UPDATE sweeps SET finished_at = $2 WHERE id = $1 AND planned \
     AND finished_at IS NULL \
     AND NOT EXISTS (SELECT 1 FROM sweep_batches WHERE sweep_id = $1 AND NOT done)";

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> SweepRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    /// Takes the sweep's row lock ([`LOCK_SWEEP`]) in the transaction on `conn` (SQLite's
    /// transactions that write are one at a time already).
    async fn lock_sweep(conn: &mut DB::Connection, sweep_id: Uuid) -> Result<(), ApiError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{LOCK_SWEEP}{}",
            DB::FOR_UPDATE
        )))
        .bind(sweep_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(())
    }

    /// In one transaction: the sweep's row lock, `change` (the plan done, or a batch), then the
    /// sweep finished if it is planned and every batch is done.
    async fn change_and_finish(
        &self,
        sweep_id: Uuid,
        change: sqlx::query::Query<'_, DB, DB::Arguments>,
    ) -> Result<(), ApiError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query(DB::BEGIN_WRITE).execute(&mut *conn).await?;
        let result = async {
            Self::lock_sweep(&mut conn, sweep_id).await?;
            change.execute(&mut *conn).await?;
            sqlx::query(FINISH_SWEEP)
                .bind(sweep_id)
                .bind(Utc::now())
                .execute(&mut *conn)
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut *conn).await?;
        result
    }

    async fn sweep_where(
        conn: &mut DB::Connection,
        condition: &str,
        agency: &str,
        id: Option<Uuid>,
        tick: Option<&str>,
    ) -> Result<Option<SweepRecord>, ApiError> {
        let sql = format!(
            "{SWEEP_SELECT} WHERE s.agency = $1 AND {condition} GROUP BY s.id, s.agency, \
             s.trigger, s.day, s.planned, s.started_at, s.finished_at \
             ORDER BY s.started_at DESC LIMIT 1"
        );
        let mut q =
            sqlx::query_as::<DB, SweepRow>(sqlx::AssertSqlSafe(sql)).bind(agency.to_owned());
        if let Some(id) = id {
            q = q.bind(id);
        }
        if let Some(tick) = tick {
            q = q.bind(tick.to_owned());
        }
        Ok(q.fetch_optional(&mut *conn).await?.map(SweepRecord::from))
    }
}

#[async_trait::async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> SweepRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    async fn migrated(&self) -> bool {
        let Ok(mut conn) = self.pool.acquire().await else {
            return false;
        };
        sqlx::query_as::<DB, (i64,)>("SELECT CAST(COUNT(*) AS BIGINT) FROM sweep_batches")
            .fetch_one(&mut *conn)
            .await
            .is_ok()
    }

    async fn lease(
        &self,
        feed: &str,
        agency: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, ApiError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let mut conn = self.pool.acquire().await?;
        sqlx::query(DB::BEGIN_WRITE).execute(&mut *conn).await?;
        let result = async {
            sqlx::query(
                "INSERT INTO feed_cursors (feed, agency, after_sequence, updated_at) \
                 VALUES ($1, $2, 0, $3) ON CONFLICT (feed, agency) DO NOTHING",
            )
            .bind(feed.to_owned())
            .bind(agency.to_owned())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            let row = sqlx::query_as::<DB, (i64,)>(
                "UPDATE feed_cursors SET owner = $3, lease_until = $4 \
                 WHERE feed = $1 AND agency = $2 \
                 AND (owner = $3 OR owner IS NULL OR lease_until IS NULL OR lease_until < $5) \
                 RETURNING after_sequence",
            )
            .bind(feed.to_owned())
            .bind(agency.to_owned())
            .bind(owner.to_owned())
            .bind(until)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            Ok::<_, ApiError>(row.map(|r| r.0))
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end).execute(&mut *conn).await?;
        result
    }

    async fn release(&self, feed: &str, agency: &str, owner: &str) -> Result<(), ApiError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "UPDATE feed_cursors SET owner = NULL, lease_until = NULL \
             WHERE feed = $1 AND agency = $2 AND owner = $3",
        )
        .bind(feed.to_owned())
        .bind(agency.to_owned())
        .bind(owner.to_owned())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn cursor(&self, feed: &str, agency: &str) -> Result<i64, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query_as::<DB, (i64,)>(
            "SELECT after_sequence FROM feed_cursors WHERE feed = $1 AND agency = $2",
        )
        .bind(feed.to_owned())
        .bind(agency.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    async fn start_sweep(
        &self,
        agency: &str,
        tick: &str,
        trigger: &str,
        day: NaiveDate,
    ) -> Result<(SweepRecord, bool), ApiError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query(DB::BEGIN_WRITE).execute(&mut *conn).await?;
        let result = async {
            if let Some(swept) =
                Self::sweep_where(&mut conn, "s.tick = $2", agency, None, Some(tick))
                    .await
                    .map_err(Failed)?
            {
                return Ok((swept, false));
            }
            if let Some(running) =
                Self::sweep_where(&mut conn, "s.finished_at IS NULL", agency, None, None)
                    .await
                    .map_err(Failed)?
            {
                return Ok((running, false));
            }
            let id = Uuid::now_v7();
            let inserted = sqlx::query(
                "INSERT INTO sweeps (id, agency, tick, trigger, day, started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(agency.to_owned())
            .bind(tick.to_owned())
            .bind(trigger.to_owned())
            .bind(day)
            .bind(Utc::now())
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => {}
                // Another replica started one at the same moment (PostgreSQL: the unique index on
                // running sweeps, or the tick): theirs is the sweep.
                Err(e) if is_unique_violation(&e) => return Err(Raced),
                Err(e) => return Err(Failed(e.into())),
            }
            let created = Self::sweep_where(&mut conn, "s.id = $2", agency, Some(id), None)
                .await
                .map_err(Failed)?
                .ok_or_else(|| Failed(ApiError::internal("a sweep just written is not there")))?;
            Ok((created, true))
        }
        .await;
        match result {
            Ok(found) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(found)
            }
            Err(Raced) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
                let theirs =
                    match Self::sweep_where(&mut conn, "s.tick = $2", agency, None, Some(tick))
                        .await?
                    {
                        Some(s) => Some(s),
                        None => {
                            Self::sweep_where(
                                &mut conn,
                                "s.finished_at IS NULL",
                                agency,
                                None,
                                None,
                            )
                            .await?
                        }
                    };
                theirs.map(|s| (s, false)).ok_or(ApiError::Unavailable {
                    reason: "another sweep started at the same moment; retry",
                })
            }
            Err(Failed(e)) => {
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
                Err(e)
            }
        }
    }

    async fn sweep(&self, agency: &str, id: Option<Uuid>) -> Result<Option<SweepRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        match id {
            Some(id) => Self::sweep_where(&mut conn, "s.id = $2", agency, Some(id), None).await,
            None => Self::sweep_where(&mut conn, "TRUE", agency, None, None).await,
        }
    }

    async fn planned(&self, sweep_id: Uuid) -> Result<(), ApiError> {
        let change = sqlx::query("UPDATE sweeps SET planned = TRUE WHERE id = $1").bind(sweep_id);
        self.change_and_finish(sweep_id, change).await
    }

    async fn finish_batch(
        &self,
        sweep_id: Uuid,
        batch_key: &str,
        counts: BatchCounts,
    ) -> Result<(), ApiError> {
        let change = sqlx::query(
            "UPDATE sweep_batches SET done = TRUE, cases_done = $3, cases_failed = $4, \
             review_reminders = $5, escalations = $6, visit_reminders = $7, \
             follow_up_flags = $8 WHERE sweep_id = $1 AND batch_key = $2 AND NOT done",
        )
        .bind(sweep_id)
        .bind(batch_key.to_owned())
        .bind(counts.cases_done)
        .bind(counts.cases_failed)
        .bind(counts.review_reminders)
        .bind(counts.escalations)
        .bind(counts.visit_reminders)
        .bind(counts.follow_up_flags);
        self.change_and_finish(sweep_id, change).await
    }
}

/// Why starting a sweep did not commit.
enum StartFailed {
    /// Another process's sweep won.
    Raced,
    /// Anything else.
    Failed(ApiError),
}
use StartFailed::{Failed, Raced};

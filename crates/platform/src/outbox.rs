//! Every service's event feed: a transactional outbox. A change writes its event (a protobuf
//! message, ids and what changed, never personal data) with [`append`] in the transaction that makes
//! the change; [`Feed::watch`] streams an agency's events after a sequence number, the backlog and
//! then new ones as they commit, until the client goes or the server shuts down.
//!
//! PostgreSQL hands out sequence numbers before commit, so event 11 could commit before 10 and a
//! reader that saw 11 would skip 10 for good. [`append`] therefore takes a lock per agency (see
//! [`crate::db::lock`]) just before it takes a number, held to commit: an agency's events commit in
//! sequence order, and a consumer that resumes after the last sequence it handled misses nothing.
//! Keep the append the last write of its transaction, so the lock is held briefly.
//!
//! Each event message carries the `traceparent` of the call that wrote it, so the work a consumer
//! does for it joins the trace (crates/platform/src/telemetry.rs).

use crate::db::{DbPool, Dialect};
use crate::error::ApiError;
use crate::server::Shutdown;
use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, IntoArguments, Type};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tonic::Status;
use uuid::Uuid;

/// Events read at a time.
const BATCH: usize = 200;
/// How often a watcher looks for events it was not woken for (other replicas' commits).
const POLL: Duration = Duration::from_millis(250);

/// One event to append.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Unique to the event.
    pub event_id: Uuid,
    /// The agency whose feed carries it.
    pub agency: &'a str,
    /// The case it is about.
    pub case_id: Uuid,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Its kind, stored beside it for operators (`visit_completed`).
    pub kind: &'static str,
    /// The encoded event; its `sequence` field is filled in when it is read.
    pub payload: Vec<u8>,
}

const INSERT: &str =
    "INSERT INTO events (event_id, agency, case_id, occurred_at, kind, payload) VALUES ";
/// The columns of [`INSERT`], one placeholder each per event.
const COLUMNS: usize = 6;
/// Events written by one statement (well under either database's parameter limit).
const INSERT_CHUNK: usize = 500;
const AFTER: &str = "SELECT sequence, payload FROM events WHERE agency = $1 AND sequence > $2 \
    ORDER BY sequence LIMIT $3";

/// Appends `events` in the transaction on `conn`, in their order: the feed of each agency locked
/// once (agencies in name order), then [`INSERT_CHUNK`] events a statement.
async fn append_all<DB>(conn: &mut DB::Connection, events: Vec<Event<'_>>) -> Result<(), ApiError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    let agencies: std::collections::BTreeSet<&str> = events.iter().map(|e| e.agency).collect();
    for agency in agencies {
        crate::db::lock::<DB>(conn, "outbox", agency).await?;
    }
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Event<'_>> = events.by_ref().take(INSERT_CHUNK).collect();
        let sql = format!("{INSERT}{}", crate::db::value_rows(1, chunk.len(), COLUMNS));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            query = query
                .bind(event.event_id)
                .bind(event.agency.to_owned())
                .bind(event.case_id)
                .bind(event.at)
                .bind(event.kind.to_owned())
                .bind(event.payload);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Ends a change's transaction: its audit rows (one statement; one row, or one per case of a batch),
/// then its events (the last writes, so the feed's lock is held briefly), then the commit; wakes
/// `feed`'s watchers when there were events. Every service's store ends its changes here.
pub async fn commit<DB>(
    mut tx: sqlx::Transaction<'static, DB>,
    audit: &[crate::audit::AuditEntry],
    events: Vec<Event<'_>>,
    feed: &Feed,
) -> Result<(), ApiError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> sqlx::types::Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    crate::audit::append_all(&mut *tx, audit).await?;
    let emitted = !events.is_empty();
    append_all::<DB>(&mut tx, events).await?;
    tx.commit().await?;
    if emitted {
        feed.committed();
    }
    Ok(())
}

/// A service's feed: read from its database, woken by its own commits.
#[derive(Debug, Clone)]
pub struct Feed {
    db: DbPool,
    committed: Arc<Notify>,
}

impl Feed {
    /// The feed in `db`.
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            committed: Arc::new(Notify::new()),
        }
    }

    /// Tells this process's watchers that events committed; call it after the commit.
    pub fn committed(&self) {
        self.committed.notify_waiters();
    }

    /// Up to `n` of `agency`'s events after `after`, in sequence order, as (sequence, payload).
    pub async fn after(
        &self,
        agency: &str,
        after: i64,
        n: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, ApiError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Vec<u8>)> = match &self.db {
            DbPool::Postgres(pool) => {
                sqlx::query_as(AFTER)
                    .bind(agency)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            DbPool::Sqlite(pool) => {
                sqlx::query_as(AFTER)
                    .bind(agency)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Streams `agency`'s events after `after`: the backlog, then new ones as they commit, each
    /// turned into the stream's item by `item` (given its sequence and payload). Ends when the client
    /// goes; on `shutdown` it ends with UNAVAILABLE, and the client resumes elsewhere from the last
    /// sequence it handled.
    pub fn watch<T, F>(
        &self,
        agency: String,
        after: i64,
        shutdown: Shutdown,
        item: F,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<T, Status>>
    where
        T: Send + 'static,
        F: Fn(i64, &[u8]) -> Result<T, ApiError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(BATCH);
        let feed = self.clone();
        tokio::spawn(async move {
            let mut cursor = after;
            loop {
                // Register for the wake-up before reading, so a commit in between is not missed.
                let woken = feed.committed.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let batch = match feed.after(&agency, cursor, BATCH).await {
                    Ok(batch) => batch,
                    Err(err) => {
                        deliver(&tx, Err(Status::from(err)), &shutdown).await;
                        return;
                    }
                };
                let empty = batch.is_empty();
                for (sequence, payload) in batch {
                    let next = item(sequence, &payload).map_err(Status::from);
                    let failed = next.is_err();
                    if !deliver(&tx, next, &shutdown).await || failed {
                        return; // the client went away, the server is stopping, or a bad event
                    }
                    cursor = sequence;
                }
                if empty {
                    tokio::select! {
                        () = &mut woken => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = tx.closed() => return,
                        () = shutdown.wait() => {
                            let _ = tx.try_send(Err(stopping()));
                            return;
                        }
                    }
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

impl Feed {
    /// Like [`Feed::watch`], for events encoded as the protobuf message `E`: each is decoded and
    /// turned into the stream's item by `wrap` (given the event and its sequence). An event that
    /// does not decode ends the stream with INTERNAL.
    pub fn watch_messages<E, T, F>(
        &self,
        agency: String,
        after: i64,
        shutdown: Shutdown,
        wrap: F,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<T, Status>>
    where
        E: prost::Message + Default,
        T: Send + 'static,
        F: Fn(E, i64) -> T + Send + 'static,
    {
        self.watch(agency, after, shutdown, move |sequence, payload| {
            E::decode(payload)
                .map(|event| wrap(event, sequence))
                .map_err(|_| ApiError::internal(format!("event {sequence} could not be read")))
        })
    }
}

/// The check of a WatchEvents request's `after_sequence`, as audited reads take it.
pub fn check_after(after: i64) -> Result<((), Vec<Uuid>), ApiError> {
    if after < 0 {
        Err(ApiError::invalid("after_sequence", "must not be negative"))
    } else {
        Ok(((), Vec::new()))
    }
}

fn stopping() -> Status {
    Status::unavailable("the server is shutting down; reconnect")
}

/// Sends one item to the client, unless the server stops first: a client that reads slowly must
/// not keep the stream's task alive past shutdown. Then the client is told, if there is room. False
/// when the item was not delivered.
async fn deliver<T>(
    tx: &mpsc::Sender<Result<T, Status>>,
    item: Result<T, Status>,
    shutdown: &Shutdown,
) -> bool {
    tokio::select! {
        sent = tx.send(item) => sent.is_ok(),
        () = shutdown.wait() => {
            let _ = tx.try_send(Err(stopping()));
            false
        }
    }
}

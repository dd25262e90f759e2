//! The notification service's storage, written once in SQL that PostgreSQL and SQLite both run, with
//! one migration folder per database. Everything callers reach is scoped to their agency; the
//! delivery queue ([`Store::claim`] and what follows) serves every agency.
//!
//! The queue is the `deliveries` table, not a job library: a notification and its deliveries commit
//! in one transaction (nothing accepted is unqueued, nothing queued is unaccepted), and the queue's
//! rules are ours to see and test. A sender *leases* a delivery and counts the attempt when it takes
//! it, so a sender killed mid-send uses up an attempt and the delivery is taken up again when the
//! lease ends: at-least-once, bounded by `delivery.max_attempts`, never stuck behind a dead sender.
//!
//! The two `impl` blocks repeat one list of bounds: Rust does not carry a trait's where-clauses to
//! the places that use it. Keep the lists in step.

use crate::model::{
    AttemptRecord, Channel, DeliveryRecord, DeliveryStatus, InboxEntry, NotificationRecord,
    NotificationStatus, Preferences, RecipientRecord, status_of,
};
use chrono::{DateTime, NaiveTime, Utc};
use landsby_domain::{AgencyId, Language};
use landsby_platform::ApiError;
use landsby_platform::audit::{self, AuditEntry};
use landsby_platform::db::{DbPool, Dialect, Doc, doc, from_doc, placeholders};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Writes a notification's subject and text given the case's protection (secret, protected
/// values): the template, then redaction for a parent-side recipient. Returns the subject, the
/// text, and whether anything was withheld.
pub type Writer =
    Box<dyn FnOnce(bool, &[String]) -> Result<(String, String, bool), ApiError> + Send>;

/// One notification for [`Store::accept_all`]: as it would be made (its subject and text left to
/// `write`), with the case's protection as the request gave it (secret, values).
pub struct Accepting {
    pub notification: NotificationRecord,
    pub protection: (bool, Vec<String>),
    pub write: Writer,
}

/// What became of one notification given to [`Store::accept_all`].
#[derive(Debug, Clone)]
pub enum Accepted {
    /// Made now, its deliveries queued.
    Made(NotificationRecord),
    /// Made before under the same key, for the same request: nothing new.
    Before(NotificationRecord),
    /// The key was used before for a different notification: nothing made.
    KeyUsed,
}

/// Where a listing continues: after this creation time and id (newest first).
pub type Cursor = (DateTime<Utc>, Uuid);

/// Filters of ListNotifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub case_id: Option<Uuid>,
    pub recipient_id: Option<String>,
    pub status: Option<NotificationStatus>,
}

/// A delivery a sender has taken, with what it needs to send it.
#[derive(Clone)]
pub struct Claimed {
    pub delivery_id: Uuid,
    pub channel: Channel,
    pub address: String,
    /// This attempt's number (attempts are counted when taken).
    pub attempt: i64,
    pub notification: NotificationRecord,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the channel.
    Delivered,
    /// Failed; tried again at `retry_at`, or given up (DEAD) when None.
    Failed {
        error: String,
        permanent: bool,
        retry_at: Option<DateTime<Utc>>,
    },
    /// Not attempted: held until `until` (quiet hours). The attempt is not counted.
    Deferred { until: DateTime<Utc> },
}

/// The notification service's storage.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Accepts notifications with their deliveries, in one transaction. A key found answers with
    /// the notification it made for the same request ([`Accepted::Before`]), or
    /// [`Accepted::KeyUsed`] for another request. Otherwise the case's protection is locked,
    /// `protection` added to what is remembered (secret once secret, values never dropped), and
    /// `write` writes the message with the result, so two requests for one case never write with
    /// less than both gave; a concurrent request with the same key gets the first notification.
    /// Answers in the order of `items`, with one audit row (`audit` with the case and the
    /// notification) for each made or found; a key used for another request has none (the caller
    /// records that refusal).
    async fn accept_all(
        &self,
        agency: &AgencyId,
        items: Vec<Accepting>,
        audit: AuditEntry,
    ) -> Result<Vec<Accepted>, ApiError>;

    /// One notification with its deliveries and attempts.
    async fn get(
        &self,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<Option<NotificationRecord>, ApiError>;

    /// Notifications newest first, up to `limit`, after `after`.
    async fn list(
        &self,
        agency: &AgencyId,
        filter: &Filter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, ApiError>;

    /// A recipient's inbox, newest first.
    async fn inbox(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
        unread_only: bool,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, ApiError>;

    /// Marks entries read; how many were unread.
    async fn mark_read(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
        ids: &[Uuid],
        audit: AuditEntry,
    ) -> Result<u64, ApiError>;

    /// The preferences of those of these recipients who have set them.
    async fn preferences(
        &self,
        agency: &AgencyId,
        recipient_ids: &[&str],
    ) -> Result<Vec<Preferences>, ApiError>;

    /// Sets preferences at `expected_version` (0: not set yet).
    async fn set_preferences(
        &self,
        agency: &AgencyId,
        preferences: Preferences,
        expected_version: i64,
        audit: AuditEntry,
    ) -> Result<Preferences, ApiError>;

    /// Takes up to `limit` deliveries due at `now` that no sender holds, holding them until
    /// `lease_until` and counting an attempt on each.
    /// A delivery whose `max_attempts` attempts are used up already (its last sender died holding
    /// it) is given up instead (DEAD), and so is one whose stored notification cannot be read.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<Claimed>, ApiError>;

    /// Records how a taken delivery's attempt ended, at `at` — if this sender still holds it (the
    /// same attempt, leased): a sender whose lease ran out and whose delivery another took up
    /// records nothing.
    async fn finish(
        &self,
        claimed: &Claimed,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError>;

    /// The quiet hours and channels a recipient chose (for the sender).
    async fn quiet_hours(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
    ) -> Result<Option<(NaiveTime, NaiveTime)>, ApiError>;

    /// Retention: removes up to `limit` of the agency's notifications created before `before`
    /// whose deliveries have all ended, oldest first, with their deliveries, attempts and inbox
    /// entries. Returns how many were removed and whether more are due.
    async fn purge(
        &self,
        agency: &AgencyId,
        before: DateTime<Utc>,
        limit: usize,
        audit: AuditEntry,
    ) -> Result<(u64, bool), ApiError>;
}

/// The store for a service database.
pub fn open(db: DbPool) -> Arc<dyn Store> {
    match db {
        DbPool::Postgres(pool) => Arc::new(SqlStore { pool }),
        DbPool::Sqlite(pool) => Arc::new(SqlStore { pool }),
    }
}

/// The store over a pool of either database.
struct SqlStore<DB: sqlx::Database> {
    pool: Pool<DB>,
}

#[derive(FromRow)]
struct NotificationRow {
    id: Uuid,
    agency: String,
    case_id: Uuid,
    idempotency_key: String,
    fingerprint: String,
    recipient: Doc,
    kind: String,
    language: String,
    subject: String,
    body: String,
    redacted: bool,
    status: String,
    created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct DeliveryRow {
    id: Uuid,
    notification_id: Uuid,
    channel: String,
    address: String,
    status: String,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    dead_reason: String,
    delivered_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct AttemptRow {
    delivery_id: Uuid,
    n: i64,
    attempted_at: DateTime<Utc>,
    ok: bool,
    error: String,
    permanent: bool,
}

#[derive(FromRow)]
struct InboxRow {
    notification_id: Uuid,
    case_id: Uuid,
    kind: String,
    subject: String,
    body: String,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct PreferencesRow {
    recipient_id: String,
    channels: Doc,
    language: Option<String>,
    quiet_from: String,
    quiet_until: String,
    version: i64,
}

#[derive(FromRow)]
struct ProtectionRow {
    secret_address: bool,
    protected_values: Doc,
}

fn code<T>(parse: impl Fn(&str) -> Option<T>, raw: &str, what: &str) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| ApiError::internal(format!("unknown {what} code in the database")))
}

fn clock(raw: &str) -> Result<NaiveTime, ApiError> {
    landsby_domain::time::clock_time(raw)
        .ok_or_else(|| ApiError::internal("a stored time of day could not be read"))
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

impl NotificationRow {
    fn into_record(self, deliveries: Vec<DeliveryRecord>) -> Result<NotificationRecord, ApiError> {
        Ok(NotificationRecord {
            id: self.id,
            agency: AgencyId::parse(&self.agency)
                .ok_or_else(|| ApiError::internal("a stored agency could not be read"))?,
            case_id: self.case_id,
            idempotency_key: self.idempotency_key,
            fingerprint: self.fingerprint,
            recipient: from_doc::<RecipientRecord>(self.recipient, "recipient")?,
            kind: self.kind,
            language: code(Language::parse, &self.language, "language")?,
            subject: self.subject,
            body: self.body,
            redacted: self.redacted,
            status: code(NotificationStatus::parse, &self.status, "status")?,
            created_at: self.created_at,
            deliveries,
        })
    }
}

impl PreferencesRow {
    fn into_record(self) -> Result<Preferences, ApiError> {
        let channels: Vec<String> = from_doc(self.channels, "channel list")?;
        Ok(Preferences {
            recipient_id: self.recipient_id,
            channels: channels
                .iter()
                .map(|c| code(Channel::parse, c, "channel"))
                .collect::<Result<_, _>>()?,
            language: self
                .language
                .map(|l| code(Language::parse, &l, "language"))
                .transpose()?,
            quiet_from: clock(&self.quiet_from)?,
            quiet_until: clock(&self.quiet_until)?,
            version: self.version,
        })
    }
}

const NOTIFICATION_COLUMNS: &str = "id, agency, case_id, idempotency_key, fingerprint, recipient, \
    kind, language, subject, body, redacted, status, created_at";
/// One notification by its id alone: the caller compares the agency. With `agency = $1` in the
/// statement too, PostgreSQL may plan it, on tables it has no statistics of yet, over an index that
/// leads with the agency, and keep that plan: every read would walk the agency's notifications.
fn get_sql() -> String {
    format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1")
}
const DELIVERY_COLUMNS: &str = "id, notification_id, channel, address, status, attempts, \
    next_attempt_at, dead_reason, delivered_at";

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What a key found made answers: the notification for the same request, KeyUsed for another.
fn replayed(first: NotificationRecord, fingerprint: &str) -> Accepted {
    if first.fingerprint == fingerprint {
        Accepted::Before(first)
    } else {
        Accepted::KeyUsed
    }
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Doc: Encode<'q, DB> + Type<DB>,
    for<'q> sqlx::types::Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> NotificationRow: FromRow<'r, DB::Row>,
    for<'r> DeliveryRow: FromRow<'r, DB::Row>,
    for<'r> AttemptRow: FromRow<'r, DB::Row>,
    for<'r> InboxRow: FromRow<'r, DB::Row>,
    for<'r> PreferencesRow: FromRow<'r, DB::Row>,
    for<'r> ProtectionRow: FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    /// The notifications of `rows` with their deliveries and attempts, in the rows' order.
    async fn with_deliveries(
        conn: &mut DB::Connection,
        rows: Vec<NotificationRow>,
    ) -> Result<Vec<NotificationRecord>, ApiError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id IN ({}) ORDER BY channel",
            placeholders(1, ids.len())
        );
        let mut q = sqlx::query_as::<DB, DeliveryRow>(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(*id);
        }
        let deliveries = q.fetch_all(&mut *conn).await?;
        let attempts: Vec<AttemptRow> = if deliveries.is_empty() {
            Vec::new()
        } else {
            let sql = format!(
                "SELECT delivery_id, n, attempted_at, ok, error, permanent FROM delivery_attempts \
                 WHERE delivery_id IN ({}) ORDER BY n",
                placeholders(1, deliveries.len())
            );
            let mut q = sqlx::query_as::<DB, AttemptRow>(sqlx::AssertSqlSafe(sql));
            for d in &deliveries {
                q = q.bind(d.id);
            }
            q.fetch_all(&mut *conn).await?
        };
        rows.into_iter()
            .map(|row| {
                let mine = deliveries
                    .iter()
                    .filter(|d| d.notification_id == row.id)
                    .map(|d| {
                        Ok(DeliveryRecord {
                            id: d.id,
                            channel: code(Channel::parse, &d.channel, "channel")?,
                            address: d.address.clone(),
                            status: code(DeliveryStatus::parse, &d.status, "delivery status")?,
                            attempts: attempts
                                .iter()
                                .filter(|a| a.delivery_id == d.id)
                                .map(|a| AttemptRecord {
                                    n: a.n,
                                    at: a.attempted_at,
                                    ok: a.ok,
                                    error: a.error.clone(),
                                    permanent: a.permanent,
                                })
                                .collect(),
                            next_attempt_at: d.next_attempt_at,
                            dead_reason: d.dead_reason.clone(),
                            delivered_at: d.delivered_at,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                row.into_record(mine)
            })
            .collect()
    }

    /// The notifications of these keys that exist, by key, with their deliveries.
    async fn by_keys(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        keys: &[&str],
    ) -> Result<HashMap<String, NotificationRecord>, ApiError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE agency = $1 \
             AND idempotency_key IN ({})",
            placeholders(2, keys.len())
        );
        let mut q = sqlx::query_as::<DB, NotificationRow>(sqlx::AssertSqlSafe(sql))
            .bind(agency.as_str().to_owned());
        for key in keys {
            q = q.bind((*key).to_owned());
        }
        let rows = q.fetch_all(&mut *conn).await?;
        Ok(Self::with_deliveries(conn, rows)
            .await?
            .into_iter()
            .map(|n| (n.idempotency_key.clone(), n))
            .collect())
    }

    /// Accepts one notification whose key was not found, in `tx`: the case's protection locked
    /// and added to, the message written, the notification and its deliveries stored. A concurrent
    /// request that took the key first answers instead.
    async fn accept_in(tx: &mut DB::Connection, item: Accepting) -> Result<Accepted, ApiError> {
        let Accepting {
            notification: mut n,
            protection: (secret, values),
            write,
        } = item;
        // The case's protection, locked for the rest of the transaction.
        sqlx::query(
            "INSERT INTO case_protections (agency, case_id, secret_address, protected_values, \
             updated_at) VALUES ($1, $2, FALSE, $3, $4) ON CONFLICT (agency, case_id) DO NOTHING",
        )
        .bind(n.agency.as_str().to_owned())
        .bind(n.case_id)
        .bind(doc(&Vec::<String>::new())?)
        .bind(n.created_at)
        .execute(&mut *tx)
        .await?;
        let (was_secret, mut remembered) =
            Self::protection_in(&mut *tx, &n.agency, n.case_id, true).await?;
        let before = remembered.len();
        for v in values {
            if !remembered.contains(&v) {
                remembered.push(v);
            }
        }
        let secret = secret || was_secret;
        if secret != was_secret || remembered.len() != before {
            sqlx::query(
                "UPDATE case_protections SET secret_address = $3, protected_values = $4, \
                 updated_at = $5 WHERE agency = $1 AND case_id = $2",
            )
            .bind(n.agency.as_str().to_owned())
            .bind(n.case_id)
            .bind(secret)
            .bind(doc(&remembered)?)
            .bind(n.created_at)
            .execute(&mut *tx)
            .await?;
        }
        (n.subject, n.body, n.redacted) = write(secret, &remembered)?;
        let inserted: Option<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO notifications ({NOTIFICATION_COLUMNS}, recipient_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (agency, idempotency_key) DO NOTHING RETURNING id"
        )))
        .bind(n.id)
        .bind(n.agency.as_str().to_owned())
        .bind(n.case_id)
        .bind(n.idempotency_key.clone())
        .bind(n.fingerprint.clone())
        .bind(doc(&n.recipient)?)
        .bind(n.kind.clone())
        .bind(n.language.as_str().to_owned())
        .bind(n.subject.clone())
        .bind(n.body.clone())
        .bind(n.redacted)
        .bind(n.status.as_str().to_owned())
        .bind(n.created_at)
        .bind(n.recipient.id())
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // A concurrent request with the same key got there first.
            let first = Self::by_keys(&mut *tx, &n.agency, &[n.idempotency_key.as_str()])
                .await?
                .remove(&n.idempotency_key)
                .ok_or_else(|| ApiError::internal("a claimed key could not be read back"))?;
            return Ok(replayed(first, &n.fingerprint));
        }
        for d in &n.deliveries {
            sqlx::query(
                "INSERT INTO deliveries (id, notification_id, agency, channel, address, status, \
                 attempts, next_attempt_at, lease_until, dead_reason, delivered_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, NULL, '', NULL)",
            )
            .bind(d.id)
            .bind(n.id)
            .bind(n.agency.as_str().to_owned())
            .bind(d.channel.as_str().to_owned())
            .bind(d.address.clone())
            .bind(d.status.as_str().to_owned())
            .bind(d.next_attempt_at)
            .execute(&mut *tx)
            .await?;
        }
        Ok(Accepted::Made(n))
    }

    /// Gives a delivery up (DEAD) with `reason`.
    async fn give_up(conn: &mut DB::Connection, id: Uuid, reason: &str) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE deliveries SET status = 'dead', lease_until = NULL, dead_reason = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason.to_owned())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Sets a notification's status from its deliveries'.
    async fn refresh_status(conn: &mut DB::Connection, id: Uuid) -> Result<(), ApiError> {
        let statuses: Vec<(String,)> =
            sqlx::query_as("SELECT status FROM deliveries WHERE notification_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        let statuses = statuses
            .iter()
            .map(|(s,)| code(DeliveryStatus::parse, s, "delivery status"))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query("UPDATE notifications SET status = $2 WHERE id = $1")
            .bind(id)
            .bind(status_of(&statuses).as_str().to_owned())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn protection_in(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        case_id: Uuid,
        for_update: bool,
    ) -> Result<(bool, Vec<String>), ApiError> {
        let sql = format!(
            "SELECT secret_address, protected_values FROM case_protections \
             WHERE agency = $1 AND case_id = $2{}",
            if for_update { DB::FOR_UPDATE } else { "" }
        );
        let row: Option<ProtectionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(agency.as_str().to_owned())
            .bind(case_id)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            None => Ok((false, Vec::new())),
            Some(r) => Ok((
                r.secret_address,
                from_doc(r.protected_values, "protected values")?,
            )),
        }
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
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Doc: Encode<'q, DB> + Type<DB>,
    for<'q> sqlx::types::Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> NotificationRow: FromRow<'r, DB::Row>,
    for<'r> DeliveryRow: FromRow<'r, DB::Row>,
    for<'r> AttemptRow: FromRow<'r, DB::Row>,
    for<'r> InboxRow: FromRow<'r, DB::Row>,
    for<'r> PreferencesRow: FromRow<'r, DB::Row>,
    for<'r> ProtectionRow: FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn accept_all(
        &self,
        agency: &AgencyId,
        items: Vec<Accepting>,
        audit: AuditEntry,
    ) -> Result<Vec<Accepted>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let keys: Vec<&str> = items
            .iter()
            .map(|i| i.notification.idempotency_key.as_str())
            .collect();
        let mut known = Self::by_keys(&mut tx, agency, &keys).await?;
        let mut out: Vec<Option<Accepted>> = (0..items.len()).map(|_| None).collect();
        let mut audits = Vec::with_capacity(items.len());
        // The cases' protections are locked in case order, so two calls never wait on each other
        // in a circle.
        let mut order: Vec<(usize, Accepting)> = items.into_iter().enumerate().collect();
        order.sort_by_key(|(_, item)| item.notification.case_id);
        for (index, item) in order {
            let accepted = match known.get(&item.notification.idempotency_key) {
                Some(first) => replayed(first.clone(), &item.notification.fingerprint),
                None => Self::accept_in(&mut tx, item).await?,
            };
            if let Accepted::Made(n) | Accepted::Before(n) = &accepted {
                known.insert(n.idempotency_key.clone(), n.clone());
                audits.push(AuditEntry {
                    case_id: Some(n.case_id),
                    resource_ids: vec![n.id],
                    ..audit.clone()
                });
            }
            out[index] = Some(accepted);
        }
        audit::append_all(&mut *tx, &audits).await?;
        tx.commit().await?;
        Ok(out.into_iter().flatten().collect())
    }

    async fn get(
        &self,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<Option<NotificationRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(get_sql()))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let row = row.filter(|r| r.agency == agency.as_str());
        Ok(Self::with_deliveries(&mut conn, row.into_iter().collect())
            .await?
            .pop())
    }

    async fn list(
        &self,
        agency: &AgencyId,
        f: &Filter,
        after: Option<Cursor>,
        n: usize,
    ) -> Result<Vec<NotificationRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE agency = $1 \
             AND ($2 IS NULL OR case_id = $2) AND ($3 IS NULL OR recipient_id = $3) \
             AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        );
        let rows: Vec<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(agency.as_str().to_owned())
            .bind(f.case_id)
            .bind(f.recipient_id.clone())
            .bind(f.status.map(|s| s.as_str().to_owned()))
            .bind(after.map(|(at, _)| at))
            .bind(after.map(|(_, id)| id))
            .bind(limit(n))
            .fetch_all(&mut *conn)
            .await?;
        Self::with_deliveries(&mut conn, rows).await
    }

    async fn inbox(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
        unread_only: bool,
        after: Option<Cursor>,
        n: usize,
    ) -> Result<Vec<InboxEntry>, ApiError> {
        let rows: Vec<InboxRow> = sqlx::query_as(
            "SELECT i.notification_id, n.case_id, n.kind, n.subject, n.body, i.created_at, i.read_at \
             FROM inbox i JOIN notifications n ON n.id = i.notification_id \
             WHERE i.agency = $1 AND i.recipient_id = $2 AND ($3 = FALSE OR i.read_at IS NULL) \
             AND ($4 IS NULL OR i.created_at < $4 OR (i.created_at = $4 AND i.notification_id < $5)) \
             ORDER BY i.created_at DESC, i.notification_id DESC LIMIT $6",
        )
        .bind(agency.as_str().to_owned())
        .bind(recipient_id.to_owned())
        .bind(unread_only)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(limit(n))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| InboxEntry {
                notification_id: r.notification_id,
                case_id: r.case_id,
                kind: r.kind,
                subject: r.subject,
                body: r.body,
                created_at: r.created_at,
                read_at: r.read_at,
            })
            .collect())
    }

    async fn mark_read(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
        ids: &[Uuid],
        mut audit: AuditEntry,
    ) -> Result<u64, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let sql = format!(
            "UPDATE inbox SET read_at = $1 WHERE agency = $2 AND recipient_id = $3 \
             AND read_at IS NULL AND notification_id IN ({}) RETURNING notification_id",
            placeholders(4, ids.len())
        );
        let mut q = sqlx::query_as::<DB, (Uuid,)>(sqlx::AssertSqlSafe(sql))
            .bind(audit.at)
            .bind(agency.as_str().to_owned())
            .bind(recipient_id.to_owned());
        for id in ids {
            q = q.bind(*id);
        }
        let marked = q.fetch_all(&mut *tx).await?.len() as u64;
        audit.resource_ids = ids.to_vec();
        audit::append(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(marked)
    }

    async fn preferences(
        &self,
        agency: &AgencyId,
        recipient_ids: &[&str],
    ) -> Result<Vec<Preferences>, ApiError> {
        if recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT recipient_id, channels, language, quiet_from, quiet_until, version \
             FROM preferences WHERE agency = $1 AND recipient_id IN ({})",
            placeholders(2, recipient_ids.len())
        );
        let mut q = sqlx::query_as::<DB, PreferencesRow>(sqlx::AssertSqlSafe(sql))
            .bind(agency.as_str().to_owned());
        for id in recipient_ids {
            q = q.bind((*id).to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.into_iter().map(PreferencesRow::into_record).collect()
    }

    async fn set_preferences(
        &self,
        agency: &AgencyId,
        mut p: Preferences,
        expected_version: i64,
        audit: AuditEntry,
    ) -> Result<Preferences, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let channels: Vec<&str> = p.channels.iter().map(|c| c.as_str()).collect();
        let changed: Option<(i64,)> = if expected_version == 0 {
            sqlx::query_as(
                "INSERT INTO preferences (agency, recipient_id, channels, language, quiet_from, \
                 quiet_until, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
                 ON CONFLICT (agency, recipient_id) DO NOTHING RETURNING version",
            )
            .bind(agency.as_str().to_owned())
            .bind(p.recipient_id.clone())
            .bind(doc(&channels)?)
            .bind(p.language.map(|l| l.as_str().to_owned()))
            .bind(hhmm(p.quiet_from))
            .bind(hhmm(p.quiet_until))
            .bind(audit.at)
            .fetch_optional(&mut *tx)
            .await?
        } else {
            sqlx::query_as(
                "UPDATE preferences SET channels = $3, language = $4, quiet_from = $5, \
                 quiet_until = $6, version = version + 1, updated_at = $7 \
                 WHERE agency = $1 AND recipient_id = $2 AND version = $8 RETURNING version",
            )
            .bind(agency.as_str().to_owned())
            .bind(p.recipient_id.clone())
            .bind(doc(&channels)?)
            .bind(p.language.map(|l| l.as_str().to_owned()))
            .bind(hhmm(p.quiet_from))
            .bind(hhmm(p.quiet_until))
            .bind(audit.at)
            .bind(expected_version)
            .fetch_optional(&mut *tx)
            .await?
        };
        if changed.is_none() {
            return Err(ApiError::StaleEtag {
                resource: "preferences",
            });
        }
        audit::append(&mut *tx, &audit).await?;
        tx.commit().await?;
        p.version = expected_version + 1;
        Ok(p)
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        n: usize,
        max_attempts: u32,
    ) -> Result<Vec<Claimed>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let due = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE status IN ('pending', 'deferred', 'retrying') AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY next_attempt_at LIMIT $2{}",
            DB::SKIP_LOCKED
        );
        let taken: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(due))
            .bind(now)
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(taken.len());
        let mut given_up = Vec::new();
        for d in taken {
            if d.attempts >= i64::from(max_attempts) {
                let reason = format!(
                    "gave up after {} attempts: the last one never ended (its sender stopped)",
                    d.attempts
                );
                Self::give_up(&mut tx, d.id, &reason).await?;
                given_up.push(d.notification_id);
                continue;
            }
            let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1");
            let row: Option<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(d.notification_id)
                .fetch_optional(&mut *tx)
                .await?;
            let readable = row
                .map(|r| r.into_record(Vec::new()))
                .transpose()
                .ok()
                .flatten()
                .zip(Channel::parse(&d.channel));
            let Some((notification, channel)) = readable else {
                // One unreadable row must not hold up the queue behind it.
                Self::give_up(&mut tx, d.id, "the stored notification could not be read").await?;
                given_up.push(d.notification_id);
                continue;
            };
            sqlx::query(
                "UPDATE deliveries SET lease_until = $2, attempts = attempts + 1 WHERE id = $1",
            )
            .bind(d.id)
            .bind(lease_until)
            .execute(&mut *tx)
            .await?;
            out.push(Claimed {
                delivery_id: d.id,
                channel,
                address: d.address,
                attempt: d.attempts + 1,
                notification,
            });
        }
        for id in given_up {
            Self::refresh_status(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn finish(
        &self,
        c: &Claimed,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // The notification's row first: its deliveries finish one at a time, so each sees the
        // others' outcomes when it works out the notification's status.
        let lock = format!(
            "SELECT id FROM notifications WHERE id = $1{}",
            DB::FOR_UPDATE
        );
        let _: Option<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(lock))
            .bind(c.notification.id)
            .fetch_optional(&mut *tx)
            .await?;
        // Only while this sender still holds the delivery: this attempt, leased.
        const HELD: &str =
            " WHERE id = $1 AND attempts = $2 AND lease_until IS NOT NULL RETURNING id";
        let held: Option<(Uuid,)> = match &outcome {
            Outcome::Deferred { until } => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE deliveries SET status = 'deferred', next_attempt_at = $3, \
                     lease_until = NULL, attempts = attempts - 1{HELD}"
                )))
                .bind(c.delivery_id)
                .bind(c.attempt)
                .bind(*until)
                .fetch_optional(&mut *tx)
                .await?
            }
            Outcome::Delivered | Outcome::Failed { .. } => {
                let (status, next, reason, delivered) = match &outcome {
                    Outcome::Delivered => ("delivered", at, String::new(), Some(at)),
                    Outcome::Failed {
                        retry_at: Some(when),
                        ..
                    } => ("retrying", *when, String::new(), None),
                    Outcome::Failed {
                        error, permanent, ..
                    } => (
                        "dead",
                        at,
                        if *permanent {
                            error.clone()
                        } else {
                            format!("gave up after {} attempts: {error}", c.attempt)
                        },
                        None,
                    ),
                    Outcome::Deferred { .. } => ("deferred", at, String::new(), None),
                };
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE deliveries SET status = $3, next_attempt_at = $4, lease_until = NULL, \
                     dead_reason = $5, delivered_at = $6{HELD}"
                )))
                .bind(c.delivery_id)
                .bind(c.attempt)
                .bind(status.to_owned())
                .bind(next)
                .bind(reason)
                .bind(delivered)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        if held.is_none() {
            // Another sender took the delivery up after this one's lease ran out: its word stands.
            tx.rollback().await?;
            return Ok(());
        }
        if let Outcome::Delivered | Outcome::Failed { .. } = &outcome {
            let (ok, error, permanent) = match &outcome {
                Outcome::Failed {
                    error, permanent, ..
                } => (false, error.clone(), *permanent),
                _ => (true, String::new(), false),
            };
            sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, n, attempted_at, ok, error, \
                 permanent) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, n) DO NOTHING",
            )
            .bind(c.delivery_id)
            .bind(c.attempt)
            .bind(at)
            .bind(ok)
            .bind(error)
            .bind(permanent)
            .execute(&mut *tx)
            .await?;
            if ok && c.channel == Channel::Inbox {
                sqlx::query(
                    "INSERT INTO inbox (notification_id, agency, recipient_id, created_at, \
                     read_at) VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (notification_id) DO NOTHING",
                )
                .bind(c.notification.id)
                .bind(c.notification.agency.as_str().to_owned())
                .bind(c.notification.recipient.id())
                .bind(c.notification.created_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Self::refresh_status(&mut tx, c.notification.id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn quiet_hours(
        &self,
        agency: &AgencyId,
        recipient_id: &str,
    ) -> Result<Option<(NaiveTime, NaiveTime)>, ApiError> {
        Ok(self
            .preferences(agency, &[recipient_id])
            .await?
            .pop()
            .map(|p| (p.quiet_from, p.quiet_until)))
    }

    async fn purge(
        &self,
        agency: &AgencyId,
        before: DateTime<Utc>,
        limit: usize,
        audit: AuditEntry,
    ) -> Result<(u64, bool), ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // One more than the limit tells whether more are due.
        let due: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM notifications WHERE agency = $1 AND created_at < $2 \
             AND status IN ('delivered', 'failed') AND NOT EXISTS (SELECT 1 FROM deliveries \
             WHERE deliveries.notification_id = notifications.id \
             AND deliveries.status IN ('pending', 'deferred', 'retrying')) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(agency.as_str().to_owned())
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
        .fetch_all(&mut *tx)
        .await?;
        let more = due.len() > limit;
        let ids: Vec<Uuid> = due.into_iter().take(limit).map(|(id,)| id).collect();
        if !ids.is_empty() {
            let list = placeholders(1, ids.len());
            for sql in [
                format!(
                    "DELETE FROM delivery_attempts WHERE delivery_id IN \
                     (SELECT id FROM deliveries WHERE notification_id IN ({list}))"
                ),
                format!("DELETE FROM deliveries WHERE notification_id IN ({list})"),
                format!("DELETE FROM inbox WHERE notification_id IN ({list})"),
                format!("DELETE FROM notifications WHERE id IN ({list})"),
            ] {
                let mut q = sqlx::query::<DB>(sqlx::AssertSqlSafe(sql));
                for id in &ids {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
        }
        // The audit row names no notification: their ids go with them.
        audit::append(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok((ids.len() as u64, more))
    }
}

#[cfg(test)]
mod tests {
    use landsby_testkit::{assert_by_primary_key, cold_plan};

    /// A notification is read by its id through the primary key even before PostgreSQL has
    /// statistics.
    #[tokio::test]
    async fn a_read_by_id_uses_the_primary_key_on_a_cold_database() {
        let plan = cold_plan(&crate::MIGRATIONS, &super::get_sql()).await;
        assert_by_primary_key(&plan, "notifications");
    }
}

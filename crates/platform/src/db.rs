//! Database connection and migration for every service: the URL picks PostgreSQL or SQLite, the pool
//! connects lazily (so a server can start and report NOT_SERVING while the database is away), and
//! migrations run from the service's own migration folders. Also the one mapping of database errors to
//! [`ApiError`], which never carries a database message (it may quote a value) to a caller or a log.

use crate::config::{ConfigError, DatabaseConfig};
use crate::error::ApiError;
use crate::secret::Secret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;

/// A service's migrations, one folder per database kind.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// For PostgreSQL.
    pub postgres: &'static Migrator,
    /// For SQLite.
    pub sqlite: &'static Migrator,
    /// A library's own migrations that the service's database also needs (the worker's job
    /// queue), tracked in a table of their own so that they and ours never clash.
    pub library: Option<LibraryMigrations>,
}

/// A library's migrations, run before the service's own.
#[derive(Debug, Clone, Copy)]
pub struct LibraryMigrations {
    /// The table that tracks them (not `_sqlx_migrations`, which the service's own use).
    pub table: &'static str,
    /// For PostgreSQL.
    pub postgres: fn() -> Migrator,
    /// For SQLite.
    pub sqlite: fn() -> Migrator,
}

impl LibraryMigrations {
    fn tracked(&self, migrator: Migrator) -> Migrator {
        let mut migrator = migrator;
        migrator.dangerous_set_table_name(self.table);
        migrator
    }
}

/// A connection pool to a service's own database.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// PostgreSQL, for production.
    Postgres(PgPool),
    /// SQLite, embedded, for a laptop, a demo and tests.
    Sqlite(SqlitePool),
}

/// A JSON document as both databases store it (JSONB on PostgreSQL, TEXT on SQLite): the parts of a
/// record a service reads whole.
pub type Doc = sqlx::types::Json<serde_json::Value>;

/// A value as a stored document.
pub fn doc<T: serde::Serialize>(value: &T) -> Result<Doc, ApiError> {
    serde_json::to_value(value)
        .map(sqlx::types::Json)
        .map_err(|_| ApiError::internal("a record could not be stored"))
}

/// A stored document as the value it holds; one that does not parse is a broken invariant
/// (INTERNAL naming `what`), never a panic.
pub fn from_doc<T: serde::de::DeserializeOwned>(doc: Doc, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(doc.0)
        .map_err(|_| ApiError::internal(format!("a stored {what} could not be read")))
}

/// What differs between the two databases in SQL the stores share. The stores are written once,
/// generic over the database; both databases accept `$1`-style parameters.
pub trait Dialect: sqlx::Database {
    /// Opens a transaction that will write. SQLite takes the write lock up front so that two writers
    /// never deadlock upgrading a read lock; PostgreSQL locks rows as it goes.
    const BEGIN_WRITE: &'static str;
    /// Opens a transaction that only reads, on one snapshot, so that the rows of several statements
    /// belong together.
    const BEGIN_READ: &'static str;
    /// Appended to a SELECT that reads a row about to be changed.
    const FOR_UPDATE: &'static str;
    /// Appended to a SELECT that takes queued rows: rows another transaction holds are passed over
    /// rather than waited for (SQLite has one writer at a time).
    const SKIP_LOCKED: &'static str;
    /// Takes a lock held to the end of the transaction on the name (`$1`, a space such as `outbox`)
    /// and key (`$2`) bound to it; `None` where writers already take turns (SQLite has one writer
    /// at a time). See [`lock`].
    const XACT_LOCK: Option<&'static str>;
    /// Sent with a transaction's BEGIN inside a request, followed by ` = <milliseconds>`: the
    /// database cancels any statement of the transaction still running at the request's deadline.
    /// `None` where statements cannot be cut short (SQLite's run to their end on their thread;
    /// `database.sqlite_busy_timeout` bounds how long one waits for the write lock).
    const STATEMENT_TIMEOUT: Option<&'static str>;
    /// A condition: the JSON array of ids `resource_ids` holds the id bound as text to `$10`.
    const JSON_ARRAY_HAS_10: &'static str;
}

impl Dialect for sqlx::Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const BEGIN_READ: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // Two hashes make the lock's two 32-bit keys; a collision only makes two writers take turns.
    const XACT_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))");
    const STATEMENT_TIMEOUT: Option<&'static str> = Some("SET LOCAL statement_timeout");
    const JSON_ARRAY_HAS_10: &'static str = "resource_ids ? $10";
}

impl Dialect for sqlx::Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // In WAL mode a deferred transaction reads one snapshot from its first read to its end.
    const BEGIN_READ: &'static str = "BEGIN";
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const XACT_LOCK: Option<&'static str> = None;
    const STATEMENT_TIMEOUT: Option<&'static str> = None;
    const JSON_ARRAY_HAS_10: &'static str =
        "EXISTS (SELECT 1 FROM json_each(resource_ids) WHERE value = $10)";
}

/// Makes the writers of (`space`, `key`) take turns until the end of their transactions: two
/// schedulers of one child's visits, or two writers of one agency's events. On SQLite writers
/// already take turns (`BEGIN IMMEDIATE`).
pub async fn lock<DB>(conn: &mut DB::Connection, space: &str, key: &str) -> Result<(), ApiError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if let Some(sql) = DB::XACT_LOCK {
        sqlx::query(sql)
            .bind(space.to_owned())
            .bind(key.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

static SHARED_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static SHARED_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The tables every service keeps (audit log, request ids, page-token key, event feed), tracked in a
/// table of their own so that they and the service's own migrations number apart.
fn shared(migrations: &Migrator) -> Migrator {
    let mut shared = Migrator::with_migrations(migrations.iter().cloned().collect());
    shared.dangerous_set_table_name("_landsby_shared_migrations");
    shared
}

impl DbPool {
    /// A pool for `url` that connects on first use. `service` names the connections in PostgreSQL.
    pub fn connect_lazy(
        url: &Secret,
        config: &DatabaseConfig,
        service: &str,
    ) -> Result<Self, ConfigError> {
        let url = url.expose();
        let invalid = |problem: String| ConfigError::Invalid {
            setting: "database_url",
            problem,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| invalid("not a valid postgres:// URL".into()))?
                .application_name(&format!("landsby-{service}"));
            // No ping on every checkout (sqlx's default): it cost a round trip per statement
            // (docs/performance.md). A connection the server closed fails its next statement,
            // which the pool then drops; the caller sees UNAVAILABLE and retries.
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout)
                .test_before_acquire(false)
                .connect_lazy_with(options);
            Ok(Self::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(invalid(
                    "in-memory SQLite is not supported: each pooled connection would get its own \
                     empty database; use a file"
                        .into(),
                ));
            }
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| invalid("not a valid sqlite:// URL".into()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(config.sqlite_busy_timeout);
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    invalid(format!(
                        "cannot create the directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout)
                .test_before_acquire(false)
                .connect_lazy_with(options);
            Ok(Self::Sqlite(pool))
        } else {
            Err(invalid("must start with postgres:// or sqlite://".into()))
        }
    }

    /// Where the pool points, without credentials, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(pool) => {
                let o = pool.connect_options();
                format!(
                    "postgres://{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                )
            }
            Self::Sqlite(pool) => {
                format!(
                    "sqlite://{}",
                    pool.connect_options().get_filename().display()
                )
            }
        }
    }

    /// Applies the migrations this database has not had yet: the shared tables first, then the
    /// service's own.
    pub async fn migrate(
        &self,
        migrations: &Migrations,
    ) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Postgres(pool) => {
                shared(&SHARED_POSTGRES).run(pool).await?;
                if let Some(library) = &migrations.library {
                    library.tracked((library.postgres)()).run(pool).await?;
                }
                migrations.postgres.run(pool).await
            }
            Self::Sqlite(pool) => {
                shared(&SHARED_SQLITE).run(pool).await?;
                if let Some(library) = &migrations.library {
                    library.tracked((library.sqlite)()).run(pool).await?;
                }
                migrations.sqlite.run(pool).await
            }
        }
    }

    /// Answers whether the database answers.
    pub async fn ping(&self) -> Result<(), ApiError> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// `n` numbered placeholders from `$first` on, comma-separated (`$3, $4, $5`), for an `IN (…)`
/// list or a multi-row `VALUES`: only numbers go into the statement's text; the values are bound.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` groups of `width` numbered placeholders from `$first` on (`($1, $2), ($3, $4)`), for a
/// multi-row `VALUES`: only numbers go into the statement's text; the values are bound row by row.
pub fn value_rows(first: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(first + row * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A migration error, without anything a database might quote.
pub fn describe_migrate_error(err: &sqlx::migrate::MigrateError) -> String {
    use sqlx::migrate::MigrateError;
    match err {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => classify(e).to_string(),
        other => other.to_string(),
    }
}

/// Whether an error is a unique-constraint violation (a concurrent insert of the same key).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Which database an error came from, for reading its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Postgres,
    Sqlite,
}

/// What a database error code means for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The server or the file is away, busy or out of room, or chose this transaction as a victim:
    /// try again later.
    Transient,
    /// A statement ran out of time.
    TimedOut,
    /// Anything else: a bug or a broken invariant.
    Fault,
}

fn verdict(origin: Origin, code: &str) -> Verdict {
    match origin {
        // SQLSTATE classes and codes.
        Origin::Postgres => {
            if code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources
                || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "25006")
            {
                Verdict::Transient
            } else if code == "57014" {
                Verdict::TimedOut
            } else {
                Verdict::Fault
            }
        }
        // Result codes; the low byte of an extended code is its primary code.
        Origin::Sqlite => match code.parse::<u32>().map(|c| c & 0xff) {
            // BUSY, LOCKED, IOERR, FULL, CANTOPEN
            Ok(5 | 6 | 10 | 13 | 14) => Verdict::Transient,
            _ => Verdict::Fault,
        },
    }
}

tokio::task_local! {
    /// The deadline of the request being handled, set by the server's guard around its handler.
    static REQUEST_DEADLINE: tokio::time::Instant;
}

/// Runs `work`, a request's handling, with `deadline` as the deadline of the transactions it opens
/// with [`begin`].
pub async fn within_deadline<F: std::future::Future>(
    deadline: tokio::time::Instant,
    work: F,
) -> F::Output {
    REQUEST_DEADLINE.scope(deadline, work).await
}

/// Opens a transaction on `pool` with `statement` (a [`Dialect`]'s `BEGIN_*`). Inside a request on
/// PostgreSQL, the database cancels any statement of it still running when the request's deadline
/// passes (DEADLINE_EXCEEDED, the transaction rolled back): the setting goes with the BEGIN, so it
/// costs no round trip. A handler dropped at its deadline (a cancelled call too) stops waiting at
/// once; this makes the database stop as well, rather than finish a statement nobody waits for.
pub async fn begin<DB: Dialect>(
    pool: &sqlx::Pool<DB>,
    statement: &'static str,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    let left = REQUEST_DEADLINE
        .try_with(|d| d.saturating_duration_since(tokio::time::Instant::now()))
        .ok();
    let pool = pool.clone();
    let opening = async move {
        match (DB::STATEMENT_TIMEOUT, left) {
            (Some(setting), Some(left)) => {
                // At least a millisecond: zero would mean no limit at all.
                let ms = left.as_millis().clamp(1, i32::MAX as u128);
                pool.begin_with(sqlx::AssertSqlSafe(format!(
                    "{statement}; {setting} = {ms}"
                )))
                .await
            }
            _ => pool.begin_with(statement).await,
        }
    };
    Finish {
        rest: Some(Box::pin(opening)),
    }
    .await
}

/// A future that, dropped before its end, is run to its end on the runtime rather than abandoned
/// half-way.
///
/// sqlx's PostgreSQL driver counts a transaction as open only once the server has answered its
/// BEGIN: a request dropped after sending the BEGIN and before the answer (its deadline passed, its
/// caller went away) gave the connection back to the pool inside a transaction that sqlx did not
/// know of, so it never rolled it back. Every later use of that connection ran inside it, with its
/// statement timeout, and once a statement failed there every one after it was refused (SQLSTATE
/// 25P02) until the process restarted; the fault soak found it. Finished here instead, the opened
/// transaction is dropped at once, which rolls it back before the connection is used again.
struct Finish<T: Send + 'static> {
    rest: Option<futures::future::BoxFuture<'static, T>>,
}

impl<T: Send + 'static> std::future::Future for Finish<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let Some(rest) = self.rest.as_mut() else {
            return std::task::Poll::Pending;
        };
        let out = std::task::ready!(rest.as_mut().poll(cx));
        self.rest = None;
        std::task::Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for Finish<T> {
    fn drop(&mut self) {
        if let (Some(rest), Ok(runtime)) = (self.rest.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(rest);
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        classify(&err)
    }
}

/// What a database error means for a caller: UNAVAILABLE when the database is away or busy,
/// DEADLINE_EXCEEDED when a statement ran out of time, INTERNAL (with only the error code and the
/// constraint name) otherwise.
pub fn classify(err: &sqlx::Error) -> ApiError {
    const AWAY: &str = "the database is unavailable; retry later";
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ApiError::Unavailable { reason: AWAY },
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let origin = if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                Origin::Postgres
            } else {
                Origin::Sqlite
            };
            match verdict(origin, &code) {
                Verdict::Transient => ApiError::Unavailable { reason: AWAY },
                Verdict::TimedOut => ApiError::DeadlineExceeded,
                // The code and the constraint name only: the message may quote a value.
                Verdict::Fault => ApiError::internal(format!(
                    "database error code {code} (constraint {})",
                    db.constraint().unwrap_or("-")
                )),
            }
        }
        sqlx::Error::ColumnDecode { index, .. } => ApiError::internal(format!(
            "a stored value in column {index} could not be read"
        )),
        other => ApiError::internal(format!("database error: {}", kind(other))),
    }
}

/// The kind of a database error, without its message.
fn kind(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::Configuration(_) => "configuration",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::TypeNotFound { .. } => "type not found",
        sqlx::Error::ColumnIndexOutOfBounds { .. } => "column index out of bounds",
        sqlx::Error::ColumnNotFound(_) => "column not found",
        sqlx::Error::Decode(_) => "decode",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::Migrate(_) => "migration",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_from_the_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(value_rows(2, 2, 3), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(value_rows(1, 0, 3), "");
    }

    #[test]
    fn codes_are_read_as_their_own_database_means_them() {
        use Origin::{Postgres, Sqlite};
        for code in [
            "08006", "57P01", "40001", "40P01", "53300", "53100", "25006",
        ] {
            assert_eq!(verdict(Postgres, code), Verdict::Transient, "{code}");
        }
        assert_eq!(verdict(Postgres, "57014"), Verdict::TimedOut);
        // SQLSTATEs that happen to end in a SQLite BUSY byte are not busy.
        for code in ["23505", "42P01", "42501", "22021", "22022"] {
            assert_eq!(verdict(Postgres, code), Verdict::Fault, "{code}");
        }
        for code in ["5", "517", "6", "262", "10", "13", "14"] {
            assert_eq!(verdict(Sqlite, code), Verdict::Transient, "{code}");
        }
        for code in ["19", "2067", "1", "787"] {
            assert_eq!(verdict(Sqlite, code), Verdict::Fault, "{code}");
        }
    }

    #[test]
    fn unknown_url_schemes_and_memory_databases_are_refused() {
        let c = DatabaseConfig::default();
        for url in [
            "mysql://x",
            "",
            "sqlite::memory:",
            "sqlite://file?mode=memory",
        ] {
            assert!(
                DbPool::connect_lazy(&Secret::new(url.into()), &c, "t").is_err(),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/dir/x.db").display());
        let pool =
            DbPool::connect_lazy(&Secret::new(url), &DatabaseConfig::default(), "t").unwrap();
        let DbPool::Sqlite(pool) = pool else {
            panic!("sqlite expected")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fks, 1);
    }

    #[tokio::test]
    async fn describe_never_shows_the_password() {
        let c = DatabaseConfig::default();
        let pool = DbPool::connect_lazy(
            &Secret::new("postgres://user:hunter2@db.example:5433/case".into()),
            &c,
            "case",
        )
        .expect("valid url");
        assert_eq!(pool.describe(), "postgres://db.example:5433/case");
    }
}

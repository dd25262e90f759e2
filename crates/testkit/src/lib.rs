//! What landsby's tests share: a fresh database per test on either backend, signing keys and tokens,
//! services started in-process on port 0 exactly as their binaries start them, and a TCP proxy that
//! can cut a connection. For tests only.
//!
//! PostgreSQL comes from `LANDSBY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets its own database, dropped after.
//! When no server answers, the test fails and says how to start one: it never skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

pub mod audit;
pub mod case;
pub mod cluster;
pub mod flow;
pub mod http;
pub mod pki;
pub mod process;
mod proxy;
pub mod status;

pub use proxy::TcpProxy;

use landsby_domain::Role;
use landsby_platform::Secret;
use landsby_platform::auth::{Claims, SigningKey, Verifier, generate_p256_pem};
use landsby_platform::config::Config;
use landsby_platform::db::DbPool;
use landsby_platform::server::{Running, ServiceDef, Shutdown, start};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::transport::Channel;
pub use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The issuer test tokens carry.
pub const TEST_ISSUER: &str = "https://idp.test.landsby.no";
/// The audience test tokens carry.
pub const TEST_AUDIENCE: &str = "landsby";
/// An agency (Oslo).
pub const AGENCY: &str = "0301";
/// Another agency (Bergen).
pub const OTHER_AGENCY: &str = "4601";
/// The team of the tests' cases; test tokens belong to it, so their team leads may open them.
pub const TEAM: &str = "team-1";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Runs each named `async fn(Backend)` of the calling module as two tests, one per backend:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database for one test, removed when dropped.
pub struct TestDb {
    backend: Backend,
    url: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>, // (admin url, database name)
}

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("LANDSBY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    backend,
                    url,
                    dir,
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("landsby_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = connect_admin(&admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
                let url = replace_database(&admin, &name);
                Self {
                    backend,
                    url,
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A directory that lives as long as the database (a data directory for the service).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A pool to the database.
    pub fn pool(&self) -> DbPool {
        DbPool::connect_lazy(
            &Secret::new(self.url.clone()),
            &Config::default().database,
            "test",
        )
        .expect("pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop cannot await; a short-lived runtime on its own thread removes the database.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut conn) =
                            <sqlx::PgConnection as sqlx::Connection>::connect(admin.as_str()).await
                        {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// The plan PostgreSQL keeps for the statement `sql` on a fresh database of `migrations` whose
/// tables were never analysed: the generic plan a prepared statement gets before autovacuum's first
/// round (or for ever, with autovacuum off). A read by id that is planned here over an index that
/// leads with the agency walks every row of the agency once the table has grown; one planned over
/// the primary key does not. `EXPLAIN` text, one line per node.
pub async fn cold_plan(migrations: &landsby_platform::db::Migrations, sql: &str) -> String {
    let db = TestDb::new(Backend::Postgres).await;
    db.pool().migrate(migrations).await.expect("migrations");
    let mut conn = connect_admin(db.url()).await;
    // The most `$n` in the statement: that many NULLs for EXECUTE.
    let params = sql
        .split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .max()
        .unwrap_or(0);
    for statement in [
        "SET plan_cache_mode = force_generic_plan".to_owned(),
        format!("PREPARE cold AS {sql}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .expect("PREPARE");
    }
    let args = if params == 0 {
        String::new()
    } else {
        format!("({})", vec!["NULL"; params].join(", "))
    };
    let lines: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE cold{args}")))
            .fetch_all(&mut conn)
            .await
            .expect("EXPLAIN");
    lines.join("\n")
}

/// Panics unless every scan of `table` in `plan` ([`cold_plan`]) goes through its primary key.
pub fn assert_by_primary_key(plan: &str, table: &str) {
    let scans: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains(&format!(" on {table} ")) || l.ends_with(&format!(" on {table}")))
        .collect();
    assert!(!scans.is_empty(), "no scan of {table} in\n{plan}");
    for scan in scans {
        assert!(
            scan.contains(&format!("using {table}_pkey on {table}")),
            "{table} is not read by its primary key on a cold database:\n{plan}"
        );
    }
}

async fn connect_admin(admin: &str) -> sqlx::PgConnection {
    match <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "No PostgreSQL server answers at {admin} ({e}).\n\
             The PostgreSQL tests need one. Start the local server with\n\
             \tpg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             or point LANDSBY_TEST_DATABASE_URL at a server where this user may CREATE DATABASE."
        ),
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The signing key of the test issuer, and the PEM file with its public key.
pub struct TestKeys {
    signing: SigningKey,
    public_key_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// The test issuer's keys, made once per test binary.
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (private, public) = generate_p256_pem().expect("key pair");
        let dir = tempfile::tempdir().expect("temporary directory");
        let public_key_file = dir.path().join("issuer.pem");
        std::fs::write(&public_key_file, public).expect("write public key");
        TestKeys {
            signing: SigningKey::from_pem(private.as_bytes(), Some("test".into()))
                .expect("signing key"),
            public_key_file,
            _dir: dir,
        }
    })
}

impl TestKeys {
    /// A token for `subject` in `agency` with `roles`, valid for an hour, member of [`TEAM`].
    pub fn token(&self, subject: &str, agency: &str, roles: &[Role]) -> String {
        self.token_in(subject, agency, roles, &[TEAM])
    }

    /// A token for `subject` in `agency` with `roles`, member of `teams`, valid for an hour.
    pub fn token_in(&self, subject: &str, agency: &str, roles: &[Role], teams: &[&str]) -> String {
        self.sign(&Claims {
            teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            ..Claims::new(
                subject,
                agency,
                roles,
                TEST_ISSUER,
                TEST_AUDIENCE,
                Duration::from_secs(3600),
            )
        })
    }

    /// Signs arbitrary claims (for expired, foreign and malformed tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        self.signing.sign(claims).expect("sign")
    }

    /// The PEM file with the issuer's public key.
    pub fn public_key_file(&self) -> &std::path::Path {
        &self.public_key_file
    }
}

/// A caseworker's token in [`AGENCY`].
pub fn caseworker() -> String {
    keys().token("caseworker-1", AGENCY, &[Role::Caseworker])
}

/// A configuration for tests: production-mode tokens from the test issuer, quick health checks,
/// a short drain, everything else default.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        dev_mode: false,
        ..Config::default()
    };
    config.auth.issuer = TEST_ISSUER.into();
    config.auth.audience = TEST_AUDIENCE.into();
    config.auth.public_key_files = vec![keys().public_key_file.clone()];
    let (key, hash) = personal_data_keys();
    config.personal_data.key_files = vec![key.to_path_buf()];
    config.personal_data.hash_key_file = hash.to_path_buf();
    config.database.health_interval = Duration::from_millis(100);
    config.server.shutdown_grace = Duration::from_secs(5);
    // Mutual TLS as in production: the tests' own identity until a server takes its own.
    pki::configure(&mut config, pki::TEST_PLATFORM);
    config
}

/// The identity-number keys every test of this process uses (one sealing key, one hash key), as
/// `personal_data.key_files` and `personal_data.hash_key_file` name them.
pub fn personal_data_keys() -> (&'static std::path::Path, &'static std::path::Path) {
    static KEYS: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    let (_, key, hash) = KEYS.get_or_init(|| {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("temporary directory");
        let (key, hash) = (dir.path().join("nin-key"), dir.path().join("nin-hash-key"));
        let encode = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        std::fs::write(&key, encode(7)).expect("write key");
        std::fs::write(&hash, encode(11)).expect("write hash key");
        (dir, key, hash)
    });
    (key, hash)
}

/// The environment that gives a service process the tests' identity-number keys.
pub fn personal_data_env() -> [(&'static str, String); 2] {
    let (key, hash) = personal_data_keys();
    [
        (
            "LANDSBY_PERSONAL_DATA__KEY_FILES",
            format!("[\"{}\"]", key.display()),
        ),
        (
            "LANDSBY_PERSONAL_DATA__HASH_KEY_FILE",
            hash.display().to_string(),
        ),
    ]
}

/// Installs the tests' identity-number keys as the process's (for store tests that use a store
/// without a server; a server installs them at start).
pub fn install_personal_data_keys() {
    let config = test_config(std::path::Path::new("."));
    landsby_platform::pii::install(
        landsby_platform::pii::NinProtector::from_config(&config).expect("the test keys"),
    );
}

/// A service running in this process, as its binary runs it, on a port of its own.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database.
    pub db: TestDb,
    shutdown: Shutdown,
    running: Option<Running>,
}

impl TestServer {
    /// Starts `def` on a fresh database of `backend` and waits until health says SERVING.
    pub async fn start(def: ServiceDef, backend: Backend) -> Self {
        let server = Self::start_with(def, TestDb::new(backend).await, |_| {}).await;
        server.wait_for(ServingStatus::Serving).await;
        server
    }

    /// Starts `def` on `db` with a configuration `tweak` may change; returns at once.
    pub async fn start_with(def: ServiceDef, db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let log = landsby_platform::config::LogConfig {
                format: landsby_platform::config::LogFormat::Text,
                level,
            };
            landsby_platform::telemetry::install(
                &log,
                &landsby_platform::telemetry::SdkTracerProvider::builder().build(),
            );
        }
        let mut config = test_config(&db.dir());
        pki::configure(&mut config, &format!("landsby/{}", def.name));
        set_database_url(&mut config, def, db.url());
        tweak(&mut config);
        let verifier = Arc::new(Verifier::from_config(&config).expect("verifier"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let shutdown = Shutdown::new();
        let running = start(&def, Arc::new(config), verifier, listener, shutdown.clone())
            .await
            .expect("start");
        Self {
            addr: running.addr,
            db,
            shutdown,
            running: Some(running),
        }
    }

    /// A channel to the server.
    pub fn channel(&self) -> Channel {
        channel(self.addr)
    }

    /// The health of the whole server ("").
    pub async fn health(&self) -> Option<ServingStatus> {
        health(&self.channel()).await
    }

    /// Waits (up to 30 s) until health reports `status`; panics otherwise.
    pub async fn wait_for(&self, status: ServingStatus) {
        wait_for_health(&self.channel(), status).await;
    }

    /// Stops the server: drain, then wait for it.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(running) = self.running.take() {
            running.stopped().await.expect("clean stop");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A channel to a server at `addr` (in this process or another), over mutual TLS as the tests'
/// platform ([`pki::TEST_PLATFORM`]).
pub fn channel(addr: SocketAddr) -> Channel {
    pki::tls_channel(addr, Some(pki::test_platform()))
}

/// A plain-text channel to a dev-mode server without TLS (`landsby up`).
pub fn plain_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy()
}

/// The health of the whole server ("") behind `channel`, if it answers.
pub async fn health(channel: &Channel) -> Option<ServingStatus> {
    health_of(channel, "").await
}

/// The health of `service` behind `channel` (`""`: the whole server; `liveness`), if it answers.
pub async fn health_of(channel: &Channel, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let response = client.check(request).await.ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

/// Waits (up to 30 s) until the server behind `channel` reports `status`; panics otherwise.
pub async fn wait_for_health(channel: &Channel, status: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if health(channel).await == Some(status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never became {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Points the service's own database setting at `url`.
pub fn set_database_url(config: &mut Config, def: ServiceDef, url: &str) {
    config
        .service_mut(def.name)
        .unwrap_or_else(|| panic!("no config section for service {}", def.name))
        .database_url = Secret::new(url.to_owned());
}

/// A request with a bearer token.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_parameters_kept() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}

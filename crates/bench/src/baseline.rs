//! The baselines, built by the same harness: a bare tonic server (the same TLS as the services)
//! whose `grpc.health.v1.Health/Check` answers at once for the service `""` (the gRPC ceiling) and,
//! for a case id, after one primary-key SELECT of that case through sqlx on the case service's own
//! database (one gRPC call, one indexed read); and pgbench on the same PostgreSQL.

use crate::load::{Client, Rng};
use sqlx::Row;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The baseline's pool: about twice the cores, and no ping before each checkout (what did best in a
/// bare test on this machine; see docs/performance.md).
const POOL: u32 = 4;

enum Pool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

struct Reader {
    db: Pool,
}

#[tonic::async_trait]
impl Health for Reader {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !service.is_empty() {
            let id = uuid::Uuid::parse_str(&service)
                .map_err(|_| Status::invalid_argument("not a case id"))?;
            let found = match &self.db {
                Pool::Postgres(p) => sqlx::query("SELECT * FROM cases WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await
                    .map(|row| row.map(|r| r.len())),
                Pool::Sqlite(p) => sqlx::query("SELECT * FROM cases WHERE id = ?")
                    .bind(id)
                    .fetch_optional(p)
                    .await
                    .map(|row| row.map(|r| r.len())),
            };
            match found {
                Ok(Some(_)) => {}
                Ok(None) => return Err(Status::not_found("no such case")),
                Err(e) => return Err(Status::unavailable(e.to_string())),
            }
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("the baseline only checks"))
    }
}

/// `landsby-bench baseline`: serves until killed, on `listen`, with the TLS settings of the
/// environment (`LANDSBY_TLS__*`, as the services), reading `database_url`.
pub async fn serve(listen: SocketAddr, database_url: &str) -> Result<(), String> {
    let config = landsby_platform::Config::load(None).map_err(|e| e.to_string())?;
    let db = if database_url.starts_with("postgres") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(POOL)
            .test_before_acquire(false)
            .connect(database_url)
            .await
            .map_err(|e| e.to_string())?;
        Pool::Postgres(pool)
    } else {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
            .map_err(|e| e.to_string())?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(POOL)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| e.to_string())?;
        Pool::Sqlite(pool)
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = Server::builder();
    if let Some(tls) =
        landsby_platform::tls::Tls::from_config(&config).map_err(|e| e.to_string())?
    {
        server = server.tls_config(tls.server()).map_err(|e| e.to_string())?;
    }
    #[allow(clippy::print_stdout)]
    {
        println!("listening {addr}");
    }
    server
        .add_service(HealthServer::new(Reader { db }))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| e.to_string())
}

/// A client of the baseline: the empty check, or a read of a random case of `ids`.
pub struct Baseline {
    client: HealthClient<Channel>,
    ids: Option<Arc<Vec<String>>>,
    rng: Rng,
}

impl Baseline {
    pub fn empty(channel: Channel) -> Self {
        Self {
            client: HealthClient::new(channel),
            ids: None,
            rng: Rng::new(0),
        }
    }

    pub fn read(channel: Channel, ids: Arc<Vec<String>>, seed: u64) -> Self {
        Self {
            client: HealthClient::new(channel),
            ids: Some(ids),
            rng: Rng::new(seed),
        }
    }
}

impl Client for Baseline {
    async fn call(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (rpc, service) = match &self.ids {
            None => ("tonic: empty RPC", String::new()),
            Some(ids) => (
                "tonic+sqlx: one PK read",
                ids[self.rng.below(ids.len())].clone(),
            ),
        };
        let result = self
            .client
            .check(HealthCheckRequest { service })
            .await
            .map(|_| ())
            .map_err(|s| s.code());
        (rpc, result)
    }
}

/// pgbench on the PostgreSQL of `admin_url`, in a database of its own.
pub struct Pgbench {
    host: String,
    port: u16,
    user: String,
    database: String,
    script: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Pgbench {
    /// A fresh database `landsby_bench_pgbench`, initialised at `scale`, with a table for the
    /// one-insert script.
    pub async fn prepare(admin_url: &str, scale: u32) -> Result<Self, String> {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let options =
            sqlx::postgres::PgConnectOptions::from_str(admin_url).map_err(|e| e.to_string())?;
        let database = "landsby_bench_pgbench".to_owned();
        let mut admin = options.connect().await.map_err(|e| e.to_string())?;
        for statement in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let script = dir.path().join("insert.sql");
        std::fs::write(
            &script,
            "INSERT INTO bench_insert (case_id, payload) VALUES (gen_random_uuid(), 'a visit');\n",
        )
        .map_err(|e| e.to_string())?;
        let bench = Self {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            user: options.get_username().to_owned(),
            database,
            script,
            _dir: dir,
        };
        bench.pgbench(&["-i", "-q", "-s", &scale.to_string()])?;
        let mut db = options
            .database(&bench.database)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(
            "CREATE TABLE bench_insert (id BIGSERIAL PRIMARY KEY, case_id UUID NOT NULL, \
             payload TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .execute(&mut db)
        .await
        .map_err(|e| e.to_string())?;
        Ok(bench)
    }

    fn pgbench(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new("pgbench")
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ])
            .args(args)
            .arg(&self.database)
            .output()
            .map_err(|e| format!("pgbench: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "pgbench {args:?}: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text)
    }

    /// `pgbench -S` (one primary-key SELECT per transaction): transactions per second.
    pub fn select_only(&self, clients: usize, seconds: u64) -> Result<f64, String> {
        self.run(&["-S"], clients, seconds)
    }

    /// One INSERT per transaction: transactions per second.
    pub fn one_insert(&self, clients: usize, seconds: u64) -> Result<f64, String> {
        let script = self.script.display().to_string();
        self.run(&["-f", &script], clients, seconds)
    }

    fn run(&self, what: &[&str], clients: usize, seconds: u64) -> Result<f64, String> {
        let (c, t) = (clients.to_string(), seconds.to_string());
        let mut args = vec!["-n", "-M", "prepared", "-j", "2", "-c", &c, "-T", &t];
        args.extend_from_slice(what);
        let text = self.pgbench(&args)?;
        tps(&text).ok_or_else(|| format!("no tps in pgbench's output: {text}"))
    }
}

/// `tps = 1234.5 (without initial connection time)`.
fn tps(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rate_is_read_from_pgbench_s_report() {
        let text = "latency average = 2.5 ms\ninitial connection time = 12.3 ms\n\
                    tps = 12801.497 (without initial connection time)\n";
        assert_eq!(super::tps(text), Some(12801.497));
        assert_eq!(super::tps("no figures"), None);
    }
}

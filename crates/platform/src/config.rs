//! The one configuration system: built-in defaults, then an optional TOML file (`--config` or
//! `LANDSBY_CONFIG`), then `LANDSBY_*` environment variables (`__` separates sections:
//! `LANDSBY_SERVER__REQUEST_TIMEOUT=5s`). Every setting, its variable and its default is listed by
//! [`settings_table`], which the README carries and a test keeps in step with this file.

use crate::secret::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most clock skew a token check may allow.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Environment variables with the `LANDSBY_` prefix that are not settings.
const NOT_SETTINGS: &[&str] = &["config", "test_database_url", "test_log"];

/// The whole configuration of a landsby process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where SQLite databases and the dev signing key live.
    pub data_dir: PathBuf,
    /// Development mode: tokens are signed with a key generated in the data directory.
    pub dev_mode: bool,
    /// A staircase policy file (TOML, docs/policy.md); empty: the built-in policy.
    pub policy_file: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// gRPC server limits, shared by every service.
    pub server: ServerConfig,
    /// Database pools, shared by every service.
    pub database: DatabaseConfig,
    /// Token validation.
    pub auth: AuthConfig,
    /// The case service.
    pub case: ServiceConfig,
    /// The visitation service.
    pub visitation: ServiceConfig,
    /// The notification service.
    pub notification: ServiceConfig,
    /// How the notification service delivers: retries, quiet hours, and its channels.
    pub delivery: DeliveryConfig,
    /// The scheduling worker (its admin API and its own database: job queue, feed cursors, sweeps).
    pub worker: ServiceConfig,
    /// What the worker does: which agencies it follows, its jobs' attempts and backoff, the sweep.
    pub jobs: JobsConfig,
    /// Where the services reach each other.
    pub endpoints: EndpointsConfig,
    /// Keys for personal data at rest (national identity numbers).
    pub personal_data: PersonalDataConfig,
    /// Mutual TLS: this process's certificate and the CA its peers' certificates must chain to.
    pub tls: TlsConfig,
    /// How long operational copies are kept; the worker removes older ones.
    pub retention: RetentionConfig,
    /// Traces and metrics over OTLP.
    pub telemetry: TelemetryConfig,
}

/// Where traces and metrics go (crates/platform/src/telemetry.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OpenTelemetry collector's OTLP/gRPC endpoint (`http://collector:4317`); empty: none.
    pub otlp_endpoint: String,
    /// How often metrics are sent.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            metrics_interval: Duration::from_secs(30),
        }
    }
}

/// How long operational copies of personal data are kept (the worker enforces it,
/// services/worker/src/retention.rs). The audit log is not an operational copy and is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Finished (done) jobs in the worker's queue, counted from when they finished.
    #[serde(with = "humantime_serde")]
    pub jobs: Duration,
    /// DEAD jobs, counted from when they died.
    #[serde(with = "humantime_serde")]
    pub dead_jobs: Duration,
    /// Notifications whose deliveries have all ended, with their deliveries, attempts and inbox
    /// entries, counted from when they were accepted.
    #[serde(with = "humantime_serde")]
    pub notifications: Duration,
    /// How often the worker removes what is older.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        // A month as the settings write it (humantime's: 30.44 days), so the defaults read "3months".
        const MONTH: u64 = 2_630_016;
        Self {
            jobs: Duration::from_secs(30 * DAY),
            dead_jobs: Duration::from_secs(3 * MONTH),
            notifications: Duration::from_secs(6 * MONTH),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Mutual TLS (crates/platform/src/tls.rs). All three files or none; none only in dev mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// This process's certificate chain (PEM): served to callers and shown to the services it calls.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// The CA certificates (PEM) that callers' and called services' certificates must chain to.
    pub ca_file: PathBuf,
    /// The SPIFFE trust domain of the identities in certificates (`spiffe://<domain>/…`).
    pub trust_domain: String,
    /// How long a TLS handshake may take.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            trust_domain: "landsby".into(),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

impl TlsConfig {
    /// Whether any of the three files is set (then all must be).
    pub fn is_on(&self) -> bool {
        [&self.cert_file, &self.key_file, &self.ca_file]
            .iter()
            .any(|p| !p.as_os_str().is_empty())
    }
}

/// Keys for national identity numbers at rest (crates/platform/src/pii.rs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonalDataConfig {
    /// Files with 32-byte AES-256-GCM keys (base64): the first seals, all open.
    pub key_files: Vec<PathBuf>,
    /// A file with the key (32 bytes or more, base64) of the hash that finds a number.
    pub hash_key_file: PathBuf,
}

/// Where one service reaches another, as `http://host:port`. Empty: the other service's `listen`
/// address in this configuration (one host, as `landsby up` runs them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    /// The case service.
    pub case: String,
    /// The visitation service.
    pub visitation: String,
    /// The notification service.
    pub notification: String,
}

/// What the scheduling worker does. Its jobs run on apalis in the worker's own database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// The agencies (municipality numbers) whose feeds the worker follows and whose cases it sweeps.
    pub agencies: Vec<String>,
    /// The worker's bearer token for an agency: a file path in which `{agency}` is replaced by the
    /// municipality number (re-read when it changes, e.g. a projected Kubernetes secret). Empty: in
    /// dev mode, a token signed with the data directory's dev key; outside dev mode, required.
    pub token_file: String,
    /// Jobs run at once by one worker process.
    pub concurrency: u32,
    /// Attempts a job may have before it is DEAD (also counts attempts a crash cut short).
    pub max_attempts: u32,
    /// The wait after a job's first retryable failure (a service UNAVAILABLE); doubles each time.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between a job's attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How often the queue is polled for jobs.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a worker process may go unseen before its running jobs are taken up again.
    #[serde(with = "humantime_serde")]
    pub stale_after: Duration,
    /// How long one job may run before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    /// When the review sweep runs: a cron expression with seconds (`sec min hour day month weekday`),
    /// in Europe/Oslo time. Empty: no scheduled sweep (a CronJob runs `landsby-worker sweep --once`).
    pub sweep_schedule: String,
    /// Open cases per sweep batch job.
    pub sweep_batch_size: u32,
    /// Who is told of overdue reviews, per agency: `agency:subject` (the team lead's `sub`). An
    /// agency without one: the case's caseworker.
    pub team_leads: Vec<String>,
}

impl JobsConfig {
    /// The team lead of `agency`, if one is configured.
    pub fn team_lead(&self, agency: &str) -> Option<&str> {
        self.team_leads.iter().find_map(|entry| {
            let (a, subject) = entry.split_once(':')?;
            (a == agency && !subject.is_empty()).then_some(subject)
        })
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            agencies: vec!["0301".into()],
            token_file: String::new(),
            concurrency: 4,
            max_attempts: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            poll_interval: Duration::from_millis(200),
            stale_after: Duration::from_secs(30),
            job_timeout: Duration::from_secs(120),
            sweep_schedule: "0 0 2 * * *".into(),
            sweep_batch_size: 100,
            team_leads: Vec::new(),
        }
    }
}

/// How the notification service delivers. A channel whose address (`smtp.host`, `sms.url`,
/// `webhook.url`) is empty is off: no delivery is queued on it (one queued while it was on fails as a
/// transient error until it is on again or its attempts run out).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts per delivery before it is DEAD.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles each time, with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How long one attempt may take; a crashed sender's delivery is taken up again after it.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// How often the queue is looked at when nothing woke it.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Deliveries taken from the queue at a time.
    pub batch_size: u32,
    /// No SMS from this time of day (Europe/Oslo, `HH:MM`) unless the recipient's preferences say
    /// otherwise...
    pub quiet_from: String,
    /// ...until this time.
    pub quiet_until: String,
    /// E-mail.
    pub smtp: SmtpConfig,
    /// SMS through an HTTP gateway.
    pub sms: SmsConfig,
    /// Signed webhooks to the agency's platform.
    pub webhook: WebhookConfig,
}

/// E-mail over SMTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The SMTP server; empty: no e-mail.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    /// The user to log in as; empty: no login.
    pub username: String,
    /// The password.
    pub password: Secret,
    /// The sender address.
    pub from: String,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain (a relay on the same host or network only).
    None,
    /// Upgraded with STARTTLS, required.
    Starttls,
    /// TLS from the start (port 465).
    Tls,
}

/// SMS through an HTTP gateway: a JSON POST of `{"to", "from", "message", "reference"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway's URL; empty: no SMS.
    pub url: String,
    /// Sent as `Authorization: Bearer …`.
    pub token: Secret,
    /// The sender name or number.
    pub sender: String,
}

/// Webhooks: a JSON POST to the agency's platform, signed with HMAC-SHA256 (docs/notifications.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST; empty: no webhooks.
    pub url: String,
    /// The signing key shared with the platform.
    pub secret: Secret,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            attempt_timeout: Duration::from_secs(15),
            poll_interval: Duration::from_millis(500),
            batch_size: 50,
            quiet_from: "21:00".into(),
            quiet_until: "08:00".into(),
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "landsby@localhost".into(),
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            token: Secret::default(),
            sender: "Barnevernet".into(),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `info,landsby_case=debug`.
    pub level: String,
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Limits of every gRPC server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The longest a request may run; a shorter client deadline (`grpc-timeout`) wins.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests of the agencies' platforms handled at once per service; more are refused at once
    /// with RESOURCE_EXHAUSTED. Requests of landsby's own processes (mutual TLS identities
    /// `landsby/<name>`) are counted apart, up to four times as many (what the other processes can
    /// have let in), so that a flood from the platforms does not fail work already let in elsewhere.
    pub concurrency_limit: usize,
    /// Calls a second one caller (agency and subject) may make to one service; 0 turns the limit
    /// off. Callers with the role `service` are not limited.
    pub caller_rate: u32,
    /// Calls one caller may make at once before `caller_rate` applies.
    pub caller_burst: u32,
    /// The largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// The largest HTTP/2 header list, in bytes.
    pub max_header_list_bytes: u32,
    /// Streams a client may reset before being accepted (HTTP/2 rapid-reset protection).
    pub max_pending_accept_reset_streams: usize,
    /// How often idle connections are pinged.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// After SIGTERM or SIGINT, how long health says NOT_SERVING while the server still takes new
    /// requests, so that load balancers stop sending before it stops accepting.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// After the delay, how long in-flight requests may take before the process exits.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// Database pool settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connections per service pool.
    pub max_connections: u32,
    /// How long a request waits for a free connection before UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How often the database is checked for health.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// How long SQLite waits for a lock before giving up.
    #[serde(with = "humantime_serde")]
    pub sqlite_busy_timeout: Duration,
    /// How often each service adds its new audit rows to the audit log's hash chain.
    #[serde(with = "humantime_serde")]
    pub audit_seal_interval: Duration,
    /// An audit row joins the chain once it is this old: longer than any call lasts, so that a row
    /// that commits late is never passed over.
    #[serde(with = "humantime_serde")]
    pub audit_seal_after: Duration,
}

/// Token validation outside dev mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The `iss` every token must carry. Required outside dev mode.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// The issuer's OpenID Connect discovery document
    /// (`https://…/.well-known/openid-configuration`); its key set verifies tokens. Outside dev mode
    /// this or `public_key_files` is required.
    pub discovery_url: String,
    /// PEM files with the issuer's public keys (RSA for RS256, P-256 for ES256), instead of
    /// `discovery_url`.
    pub public_key_files: Vec<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// A token with an unknown key id fetches the issuer's keys again, at most this often.
    #[serde(with = "humantime_serde")]
    pub jwks_refetch_min: Duration,
    /// The issuer's keys are fetched again in the background when they are this old.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// How long a grant of emergency access (break-glass) to a case lasts.
    #[serde(with = "humantime_serde")]
    pub break_glass_ttl: Duration,
}

/// Where one service listens and which database it owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…`; empty means a SQLite file in the data directory.
    pub database_url: Secret,
    /// A second, plain-text port that serves only `grpc.health.v1` (for Kubernetes' gRPC probes,
    /// which speak no TLS); empty: none.
    #[serde(default)]
    pub health_listen: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./landsby-data"),
            dev_mode: false,
            policy_file: PathBuf::new(),
            log: LogConfig::default(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            case: ServiceConfig::on_port(50051),
            visitation: ServiceConfig::on_port(50052),
            notification: ServiceConfig::on_port(50053),
            delivery: DeliveryConfig::default(),
            worker: ServiceConfig::on_port(50054),
            jobs: JobsConfig::default(),
            endpoints: EndpointsConfig::default(),
            personal_data: PersonalDataConfig::default(),
            tls: TlsConfig::default(),
            telemetry: TelemetryConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 64,
            caller_rate: 100,
            caller_burst: 200,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 200,
            max_header_list_bytes: 16 * 1024,
            max_pending_accept_reset_streams: 50,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            health_interval: Duration::from_secs(2),
            sqlite_busy_timeout: Duration::from_secs(5),
            audit_seal_interval: Duration::from_secs(10),
            audit_seal_after: Duration::from_secs(120),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "landsby".into(),
            discovery_url: String::new(),
            public_key_files: Vec::new(),
            leeway: Duration::from_secs(30),
            jwks_refetch_min: Duration::from_secs(30),
            jwks_refresh: Duration::from_secs(600),
            break_glass_ttl: Duration::from_secs(4 * 3600),
        }
    }
}

impl ServiceConfig {
    fn on_port(port: u16) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: Secret::default(),
            health_listen: String::new(),
        }
    }

    /// Where the plain-text health port listens, if anywhere.
    pub fn health_address(&self) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
        let listen = self.health_listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some)
    }

    /// The database URL, or the SQLite file `<data_dir>/<name>.db` when none is set.
    pub fn database_url(&self, data_dir: &Path, name: &str) -> Secret {
        if self.database_url.expose().is_empty() {
            Secret::new(format!(
                "sqlite://{}",
                data_dir.join(format!("{name}.db")).display()
            ))
        } else {
            self.database_url.clone()
        }
    }
}

/// The configured endpoint, or one on the listen address (an unspecified address means this host).
fn endpoint(configured: &str, listen: SocketAddr, tls: bool) -> String {
    let configured = configured.trim();
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = if listen.ip().is_unspecified() {
        // Listening everywhere: reach it on this host, over the loopback of the same family.
        let loopback = match listen.ip() {
            std::net::IpAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(loopback, listen.port())
    } else {
        listen
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A configuration that cannot be used; the message says which setting and why, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment did not parse.
    #[error("configuration: {0}")]
    Parse(String),
    /// A setting has a value the process cannot run with.
    #[error("configuration: {setting}: {problem}")]
    Invalid {
        /// The setting, as in the settings table.
        setting: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The parts of landsby an operator runs, each with the settings it cannot start without.
pub const PARTS: &[&str] = &[
    "case",
    "visitation",
    "notification",
    "worker",
    "sweep",
    "migrate",
];

impl Config {
    /// The settings `part` (one of [`PARTS`]: a service, `sweep` for `landsby-worker sweep --once`,
    /// `migrate` for `landsby migrate`) cannot start without that are not set. Dev mode needs none
    /// (it makes keys in the data directory and speaks plain text). Every part checks this at start,
    /// and `landsby config check` and the deployment test ask it; the checks of each setting's value
    /// (a file that cannot be read, a bad key) come after, where the setting is used.
    pub fn missing_for(&self, part: &str) -> Result<Vec<&'static str>, ConfigError> {
        if !PARTS.contains(&part) {
            return Err(ConfigError::Invalid {
                setting: "part",
                problem: format!("`{part}` is not one of {}", PARTS.join(", ")),
            });
        }
        if self.dev_mode {
            return Ok(Vec::new());
        }
        let mut missing = Vec::new();
        let serves = part != "sweep" && part != "migrate";
        let calls = part != "case" && part != "migrate";
        if serves || calls {
            for (setting, path) in [
                ("tls.cert_file", &self.tls.cert_file),
                ("tls.key_file", &self.tls.key_file),
                ("tls.ca_file", &self.tls.ca_file),
            ] {
                if path.as_os_str().is_empty() {
                    missing.push(setting);
                }
            }
        }
        if serves {
            if self.auth.issuer.trim().is_empty() {
                missing.push("auth.issuer");
            }
            if self.auth.discovery_url.trim().is_empty() && self.auth.public_key_files.is_empty() {
                missing.push("auth.discovery_url or auth.public_key_files");
            }
        }
        if part == "case" {
            if self.personal_data.key_files.is_empty() {
                missing.push("personal_data.key_files");
            }
            if self.personal_data.hash_key_file.as_os_str().is_empty() {
                missing.push("personal_data.hash_key_file");
            }
        }
        if (part == "worker" || part == "sweep") && self.jobs.token_file.trim().is_empty() {
            missing.push("jobs.token_file");
        }
        Ok(missing)
    }

    /// [`Config::missing_for`] as the error a part refuses to start with.
    pub fn require_for(&self, part: &str) -> Result<(), ConfigError> {
        let missing = self.missing_for(part)?;
        if missing.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            setting: "dev_mode",
            problem: format!(
                "outside dev mode {part} needs {} (or LANDSBY_DEV_MODE=true on a laptop)",
                missing.join(", ")
            ),
        })
    }

    /// Loads defaults, then `file` (or the file named by `LANDSBY_CONFIG`), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, |_| {})
    }

    /// Like [`Config::load`], with `adjust` applied (command-line flags) before validation.
    pub fn load_with(
        file: Option<&Path>,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self, ConfigError> {
        let from_env = std::env::var_os("LANDSBY_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(from_env);
        let mut config = Self::figment(file.as_deref())
            .extract::<Config>()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        adjust(&mut config);
        config.validated()
    }

    fn figment(file: Option<&Path>) -> Figment {
        // Defaults go in serialized, so a file or variable can set one field of a section. Secrets
        // serialize redacted, which is why no secret may have a non-empty default.
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment.merge(Env::prefixed("LANDSBY_").split("__").ignore(NOT_SETTINGS))
    }

    /// The staircase policy: the file named by `policy_file`, or the built-in one.
    pub fn policy(&self) -> Result<landsby_domain::Policy, ConfigError> {
        if self.policy_file.as_os_str().is_empty() {
            return Ok(landsby_domain::Policy::default());
        }
        let invalid = |problem: String| ConfigError::Invalid {
            setting: "policy_file",
            problem,
        };
        let text = std::fs::read_to_string(&self.policy_file)
            .map_err(|e| invalid(format!("cannot read {}: {e}", self.policy_file.display())))?;
        landsby_domain::Policy::parse(&text).map_err(|e| invalid(e.to_string()))
    }

    /// The section of the service called `name` (`case`, `visitation`, `notification`).
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        match name {
            "case" => Some(&self.case),
            "visitation" => Some(&self.visitation),
            "notification" => Some(&self.notification),
            "worker" => Some(&self.worker),
            _ => None,
        }
    }

    /// The section of the service called `name`, to change.
    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceConfig> {
        match name {
            "case" => Some(&mut self.case),
            "visitation" => Some(&mut self.visitation),
            "notification" => Some(&mut self.notification),
            "worker" => Some(&mut self.worker),
            _ => None,
        }
    }

    /// Where the case service is reached: `endpoints.case`, or its `listen` address.
    pub fn case_endpoint(&self) -> String {
        endpoint(&self.endpoints.case, self.case.listen, self.tls.is_on())
    }

    /// Where the visitation service is reached: `endpoints.visitation`, or its `listen` address.
    pub fn visitation_endpoint(&self) -> String {
        endpoint(
            &self.endpoints.visitation,
            self.visitation.listen,
            self.tls.is_on(),
        )
    }

    /// Where the notification service is reached: `endpoints.notification`, or its `listen` address.
    pub fn notification_endpoint(&self) -> String {
        endpoint(
            &self.endpoints.notification,
            self.notification.listen,
            self.tls.is_on(),
        )
    }

    /// Checks the values the types cannot.
    pub fn validated(self) -> Result<Self, ConfigError> {
        let invalid = |setting, problem: &str| ConfigError::Invalid {
            setting,
            problem: problem.into(),
        };
        if self.server.caller_rate > 0 && self.server.caller_burst == 0 {
            return Err(invalid(
                "server.caller_burst",
                "must be at least 1 while server.caller_rate is on",
            ));
        }
        if self.server.concurrency_limit == 0 {
            return Err(invalid("server.concurrency_limit", "must be at least 1"));
        }
        if self.server.max_message_bytes < 1024 {
            return Err(invalid("server.max_message_bytes", "must be at least 1024"));
        }
        let otlp = self.telemetry.otlp_endpoint.trim();
        if !(otlp.is_empty() || otlp.starts_with("http://") || otlp.starts_with("https://")) {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                "must be empty or an http:// or https:// URL (OTLP over gRPC, e.g. http://collector:4317)",
            ));
        }
        if self.telemetry.metrics_interval < Duration::from_secs(1) {
            return Err(invalid("telemetry.metrics_interval", "must be at least 1s"));
        }
        if self.server.shutdown_delay > Duration::from_secs(60) {
            return Err(invalid("server.shutdown_delay", "must be at most 1m"));
        }
        for (setting, service) in [
            ("case.health_listen", &self.case),
            ("visitation.health_listen", &self.visitation),
            ("notification.health_listen", &self.notification),
            ("worker.health_listen", &self.worker),
        ] {
            if service.health_address().is_err() {
                return Err(invalid(
                    setting,
                    "must be empty or an address to listen on, e.g. `0.0.0.0:8081`",
                ));
            }
        }
        if self.server.request_timeout.is_zero() {
            return Err(invalid("server.request_timeout", "must be more than zero"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.database.acquire_timeout.is_zero() {
            return Err(invalid(
                "database.acquire_timeout",
                "must be more than zero",
            ));
        }
        if self.database.health_interval < Duration::from_millis(10) {
            return Err(invalid("database.health_interval", "must be at least 10ms"));
        }
        if self.database.audit_seal_interval < Duration::from_millis(10) {
            return Err(invalid(
                "database.audit_seal_interval",
                "must be at least 10ms",
            ));
        }
        if self.database.audit_seal_after <= self.server.request_timeout * 2 {
            return Err(invalid(
                "database.audit_seal_after",
                "must exceed twice server.request_timeout, so that no late row is passed over",
            ));
        }
        if self.auth.audience.trim().is_empty() {
            return Err(invalid("auth.audience", "must not be empty"));
        }
        if self.auth.leeway > MAX_LEEWAY {
            return Err(invalid(
                "auth.leeway",
                "must be at most 5m: leeway extends every token's life",
            ));
        }
        let discovery = self.auth.discovery_url.trim();
        if !discovery.is_empty() {
            if !(discovery.starts_with("https://") || discovery.starts_with("http://")) {
                return Err(invalid("auth.discovery_url", "must be an http(s) URL"));
            }
            if !self.auth.public_key_files.is_empty() {
                return Err(invalid(
                    "auth.discovery_url",
                    "cannot be set together with auth.public_key_files; choose one",
                ));
            }
        }
        if self.auth.jwks_refetch_min < Duration::from_secs(1) {
            return Err(invalid("auth.jwks_refetch_min", "must be at least 1s"));
        }
        if self.auth.jwks_refresh < self.auth.jwks_refetch_min {
            return Err(invalid(
                "auth.jwks_refresh",
                "must be at least auth.jwks_refetch_min",
            ));
        }
        if self.auth.break_glass_ttl < Duration::from_secs(60)
            || self.auth.break_glass_ttl > Duration::from_secs(24 * 3600)
        {
            return Err(invalid("auth.break_glass_ttl", "must be 1m-24h"));
        }
        let d = &self.delivery;
        if d.max_attempts == 0 || d.max_attempts > 100 {
            return Err(invalid("delivery.max_attempts", "must be 1-100"));
        }
        if d.backoff_base.is_zero() || d.backoff_base > d.backoff_max {
            return Err(invalid(
                "delivery.backoff_base",
                "must be more than zero and at most delivery.backoff_max",
            ));
        }
        if d.attempt_timeout.is_zero() || d.attempt_timeout > Duration::from_secs(600) {
            return Err(invalid(
                "delivery.attempt_timeout",
                "must be more than zero and at most 10m",
            ));
        }
        if d.backoff_max > Duration::from_secs(86_400) {
            return Err(invalid("delivery.backoff_max", "must be at most 1 day"));
        }
        if d.poll_interval < Duration::from_millis(10) {
            return Err(invalid("delivery.poll_interval", "must be at least 10ms"));
        }
        if d.batch_size == 0 || d.batch_size > 1000 {
            return Err(invalid("delivery.batch_size", "must be 1-1000"));
        }
        if landsby_domain::time::clock_time(&d.quiet_from).is_none() {
            return Err(invalid(
                "delivery.quiet_from",
                "must be a time of day, HH:MM",
            ));
        }
        if landsby_domain::time::clock_time(&d.quiet_until).is_none() {
            return Err(invalid(
                "delivery.quiet_until",
                "must be a time of day, HH:MM",
            ));
        }
        for (setting, url) in [
            ("delivery.sms.url", &d.sms.url),
            ("delivery.webhook.url", &d.webhook.url),
        ] {
            let url = url.trim();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    setting,
                    "must be empty or an http:// or https:// URL",
                ));
            }
        }
        if !d.webhook.url.trim().is_empty() && d.webhook.secret.expose().len() < 32 {
            return Err(invalid(
                "delivery.webhook.secret",
                "must be at least 32 characters when webhooks are on",
            ));
        }
        for (setting, url) in [
            ("endpoints.case", &self.endpoints.case),
            ("endpoints.visitation", &self.endpoints.visitation),
            ("endpoints.notification", &self.endpoints.notification),
        ] {
            let url = url.trim();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    setting,
                    "must be empty or an http:// or https:// URL",
                ));
            }
            if self.tls.is_on() && url.starts_with("http://") {
                return Err(invalid(
                    setting,
                    "must be an https:// URL while tls is on (calls between services are mutual TLS)",
                ));
            }
        }
        let t = &self.tls;
        if t.is_on()
            && [&t.cert_file, &t.key_file, &t.ca_file]
                .iter()
                .any(|p| p.as_os_str().is_empty())
        {
            return Err(invalid(
                "tls",
                "tls.cert_file, tls.key_file and tls.ca_file are set together or not at all",
            ));
        }
        if t.trust_domain.is_empty()
            || t.trust_domain.len() > 255
            || !t
                .trust_domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c))
        {
            return Err(invalid(
                "tls.trust_domain",
                "must be 1-255 characters of lower-case letters, digits, `-`, `.` and `_`",
            ));
        }
        let r = &self.retention;
        if r.jobs < Duration::from_secs(3600) || r.dead_jobs < Duration::from_secs(3600) {
            return Err(invalid(
                "retention.jobs",
                "retention.jobs and retention.dead_jobs must be at least 1h",
            ));
        }
        if r.notifications < Duration::from_secs(24 * 3600) {
            return Err(invalid("retention.notifications", "must be at least 1d"));
        }
        if r.interval < Duration::from_secs(1) || r.interval > Duration::from_secs(24 * 3600) {
            return Err(invalid("retention.interval", "must be 1s-24h"));
        }
        if t.handshake_timeout < Duration::from_millis(100)
            || t.handshake_timeout > Duration::from_secs(60)
        {
            return Err(invalid("tls.handshake_timeout", "must be 100ms-60s"));
        }
        let j = &self.jobs;
        if j.agencies.is_empty()
            || j.agencies
                .iter()
                .any(|a| landsby_domain::AgencyId::parse(a).is_none())
        {
            return Err(invalid(
                "jobs.agencies",
                "must list at least one 4-digit municipality number",
            ));
        }
        if !j.token_file.is_empty() && !j.token_file.contains("{agency}") && j.agencies.len() > 1 {
            return Err(invalid(
                "jobs.token_file",
                "must contain {agency} when the worker follows more than one agency",
            ));
        }
        if j.concurrency == 0 || j.concurrency > 256 {
            return Err(invalid("jobs.concurrency", "must be 1-256"));
        }
        if j.max_attempts == 0 || j.max_attempts > 100 {
            return Err(invalid("jobs.max_attempts", "must be 1-100"));
        }
        if j.backoff_base.is_zero() || j.backoff_base > j.backoff_max {
            return Err(invalid(
                "jobs.backoff_base",
                "must be more than zero and at most jobs.backoff_max",
            ));
        }
        if j.poll_interval < Duration::from_millis(10) {
            return Err(invalid("jobs.poll_interval", "must be at least 10ms"));
        }
        if j.stale_after < Duration::from_secs(2) {
            return Err(invalid("jobs.stale_after", "must be at least 2s"));
        }
        if j.job_timeout.is_zero() {
            return Err(invalid("jobs.job_timeout", "must be more than zero"));
        }
        if !j.sweep_schedule.trim().is_empty()
            && <cron::Schedule as std::str::FromStr>::from_str(j.sweep_schedule.trim()).is_err()
        {
            return Err(invalid(
                "jobs.sweep_schedule",
                "must be empty or a cron expression with seconds, e.g. `0 0 2 * * *`",
            ));
        }
        if j.sweep_batch_size == 0 || j.sweep_batch_size > 1000 {
            return Err(invalid("jobs.sweep_batch_size", "must be 1-1000"));
        }
        if j.team_leads.iter().any(|entry| {
            entry.split_once(':').is_none_or(|(agency, subject)| {
                landsby_domain::AgencyId::parse(agency).is_none() || subject.trim().is_empty()
            })
        }) {
            return Err(invalid(
                "jobs.team_leads",
                "each entry must be `agency:subject`, e.g. `0301:team-lead-sub`",
            ));
        }
        if self.dev_mode
            && (!self.auth.issuer.is_empty()
                || !self.auth.public_key_files.is_empty()
                || !self.auth.discovery_url.is_empty())
        {
            return Err(invalid(
                "dev_mode",
                "cannot be on together with auth.issuer, auth.discovery_url or \
                 auth.public_key_files: dev mode would silently ignore them; choose one",
            ));
        }
        Ok(self)
    }
}

/// One row of the settings table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The dotted key, as in the TOML file.
    pub key: String,
    /// The environment variable.
    pub env: String,
    /// The default, as TOML would write it.
    pub default: String,
    /// What it does.
    pub description: &'static str,
}

/// What each setting does. A test checks that this list and [`Config`] name the same settings.
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "telemetry.otlp_endpoint",
        "The OpenTelemetry collector's OTLP/gRPC endpoint for traces and metrics, e.g. `http://otel-collector:4317`; empty: none (trace context still flows between services and into the logs).",
    ),
    (
        "telemetry.metrics_interval",
        "How often metrics are sent to the collector.",
    ),
    (
        "data_dir",
        "Where SQLite databases and the dev signing key live.",
    ),
    (
        "dev_mode",
        "Development mode: tokens signed with a key generated in the data directory are accepted. Never in production.",
    ),
    (
        "policy_file",
        "A staircase policy file (TOML; see docs/policy.md). Empty: the built-in policy.",
    ),
    (
        "log.format",
        "`text` for people, `json` for log collectors.",
    ),
    (
        "log.level",
        "Tracing filter, e.g. `info` or `info,landsby_case=debug`.",
    ),
    (
        "server.request_timeout",
        "The longest a request may run; a shorter client deadline wins. Then DEADLINE_EXCEEDED.",
    ),
    (
        "server.concurrency_limit",
        "Requests of the platforms handled at once per service; more are refused at once with \
         RESOURCE_EXHAUSTED. Requests of landsby's own processes are counted apart, up to four \
         times as many. With `server.max_message_bytes`, it bounds the memory requests can hold.",
    ),
    (
        "server.caller_rate",
        "Calls a second one caller (agency and subject) may make to one service, then RESOURCE_EXHAUSTED with the time to wait; 0 turns it off. The role `service` is not limited.",
    ),
    (
        "server.caller_burst",
        "Calls one caller may make at once before `server.caller_rate` applies.",
    ),
    (
        "server.max_message_bytes",
        "The largest request or response message, in bytes.",
    ),
    (
        "server.max_concurrent_streams",
        "HTTP/2 streams one connection may have open at once.",
    ),
    (
        "server.max_header_list_bytes",
        "The largest HTTP/2 header list, in bytes.",
    ),
    (
        "server.max_pending_accept_reset_streams",
        "Streams a client may reset before they are accepted (HTTP/2 rapid-reset protection).",
    ),
    (
        "server.keepalive_interval",
        "How often idle connections are pinged.",
    ),
    (
        "server.keepalive_timeout",
        "How long a ping may go unanswered before the connection is closed.",
    ),
    (
        "server.shutdown_delay",
        "After SIGTERM or SIGINT, how long health answers NOT_SERVING while new requests are still taken, so that load balancers stop sending first (Kubernetes: a few seconds; at most 1m).",
    ),
    (
        "server.shutdown_grace",
        "After `server.shutdown_delay`, how long in-flight requests may take before the process exits. The two together must fit in the pod's `terminationGracePeriodSeconds`.",
    ),
    ("database.max_connections", "Connections per service pool."),
    (
        "database.acquire_timeout",
        "How long a request waits for a free connection before UNAVAILABLE.",
    ),
    (
        "database.health_interval",
        "How often the database is checked; health follows it.",
    ),
    (
        "database.sqlite_busy_timeout",
        "How long SQLite waits for a lock before giving up.",
    ),
    (
        "database.audit_seal_interval",
        "How often each service adds its new audit rows to the audit log's hash chain (docs/security.md).",
    ),
    (
        "database.audit_seal_after",
        "An audit row joins the hash chain once it is this old; must exceed twice `server.request_timeout`.",
    ),
    (
        "auth.issuer",
        "The `iss` every token must carry. Required outside dev mode.",
    ),
    ("auth.audience", "The `aud` every token must carry."),
    (
        "auth.discovery_url",
        "The issuer's OpenID Connect discovery document; its key set (`jwks_uri`) verifies tokens. Outside dev mode this or `auth.public_key_files` is required.",
    ),
    (
        "auth.public_key_files",
        "PEM files with the issuer's public keys (RSA: RS256, P-256: ES256), instead of `auth.discovery_url`.",
    ),
    ("auth.leeway", "Clock skew allowed on `exp` and `nbf`."),
    (
        "auth.jwks_refetch_min",
        "A token with an unknown key id fetches the issuer's keys again, at most this often.",
    ),
    (
        "auth.jwks_refresh",
        "The issuer's keys are fetched again in the background when they are this old.",
    ),
    (
        "auth.break_glass_ttl",
        "How long a grant of emergency access (break-glass) to a case lasts (1m-24h).",
    ),
    (
        "case.health_listen",
        "A plain-text port of the case service that answers only `grpc.health.v1` (Kubernetes gRPC probes speak no TLS), e.g. `0.0.0.0:8081`; empty: none.",
    ),
    ("case.listen", "Where the case service listens."),
    (
        "case.database_url",
        "The case service's database: `postgres://…` or `sqlite://…`; empty: `<data_dir>/case.db`. Secret.",
    ),
    (
        "visitation.health_listen",
        "A plain-text port of the visitation service that answers only `grpc.health.v1` (Kubernetes gRPC probes speak no TLS), e.g. `0.0.0.0:8081`; empty: none.",
    ),
    ("visitation.listen", "Where the visitation service listens."),
    (
        "visitation.database_url",
        "The visitation service's database: `postgres://…` or `sqlite://…`; empty: `<data_dir>/visitation.db`. Secret.",
    ),
    (
        "notification.health_listen",
        "A plain-text port of the notification service that answers only `grpc.health.v1` (Kubernetes gRPC probes speak no TLS), e.g. `0.0.0.0:8081`; empty: none.",
    ),
    (
        "notification.listen",
        "Where the notification service listens.",
    ),
    (
        "notification.database_url",
        "The notification service's database: `postgres://…` or `sqlite://…`; empty: `<data_dir>/notification.db`. Secret.",
    ),
    (
        "delivery.max_attempts",
        "Attempts per delivery before it is DEAD (1-100).",
    ),
    (
        "delivery.backoff_base",
        "The wait after a first failed attempt; it doubles each time (with jitter) up to `delivery.backoff_max`.",
    ),
    ("delivery.backoff_max", "The longest wait between attempts."),
    (
        "delivery.attempt_timeout",
        "How long one attempt may take; a crashed sender's delivery is taken up again after it.",
    ),
    (
        "delivery.poll_interval",
        "How often the delivery queue is looked at when nothing woke it.",
    ),
    (
        "delivery.batch_size",
        "Deliveries taken from the queue at a time.",
    ),
    (
        "delivery.quiet_from",
        "No SMS from this time of day (Europe/Oslo, `HH:MM`) unless the recipient's preferences say otherwise…",
    ),
    (
        "delivery.quiet_until",
        "…until this time: deferred, not dropped.",
    ),
    (
        "delivery.smtp.host",
        "The SMTP server for e-mail; empty: no e-mail.",
    ),
    ("delivery.smtp.port", "The SMTP server's port."),
    (
        "delivery.smtp.tls",
        "`none` (a local relay only), `starttls` (required) or `tls` (port 465).",
    ),
    ("delivery.smtp.username", "The SMTP login; empty: none."),
    ("delivery.smtp.password", "The SMTP password. Secret."),
    ("delivery.smtp.from", "The sender address of e-mail."),
    (
        "delivery.sms.url",
        "The SMS gateway (a JSON POST); empty: no SMS.",
    ),
    (
        "delivery.sms.token",
        "Sent to the SMS gateway as `Authorization: Bearer …`. Secret.",
    ),
    ("delivery.sms.sender", "The SMS sender name or number."),
    (
        "delivery.webhook.url",
        "Where webhooks are POSTed (the agency's platform); empty: no webhooks.",
    ),
    (
        "delivery.webhook.secret",
        "The HMAC-SHA256 key webhooks are signed with (at least 32 characters). Secret.",
    ),
    (
        "worker.health_listen",
        "A plain-text port of the worker that answers only `grpc.health.v1` (Kubernetes gRPC probes speak no TLS), e.g. `0.0.0.0:8081`; empty: none.",
    ),
    (
        "worker.listen",
        "Where the worker's admin API and health listen.",
    ),
    (
        "worker.database_url",
        "The worker's database (job queue, feed cursors, sweeps): `postgres://…` or `sqlite://…`; empty: `<data_dir>/worker.db`. Secret.",
    ),
    (
        "jobs.agencies",
        "The agencies (municipality numbers) whose feeds the worker follows and whose cases it sweeps.",
    ),
    (
        "jobs.token_file",
        "The worker's bearer token per agency: a file, `{agency}` replaced by the municipality number, re-read when it changes. Empty: a dev-key token (dev mode only).",
    ),
    ("jobs.concurrency", "Jobs one worker process runs at once."),
    (
        "jobs.max_attempts",
        "Attempts a job may have, crashes included, before it is DEAD (1-100).",
    ),
    (
        "jobs.backoff_base",
        "The wait after a job's first retryable failure (a service UNAVAILABLE); doubles up to `jobs.backoff_max`.",
    ),
    (
        "jobs.backoff_max",
        "The longest wait between a job's attempts.",
    ),
    ("jobs.poll_interval", "How often the job queue is polled."),
    (
        "jobs.stale_after",
        "How long a worker process may go unseen before its running jobs are taken up again.",
    ),
    (
        "jobs.job_timeout",
        "How long one job may run before the attempt counts as failed.",
    ),
    (
        "jobs.sweep_schedule",
        "When the review sweep runs: cron with seconds, Europe/Oslo time. Empty: none (use `landsby-worker sweep --once`).",
    ),
    (
        "jobs.sweep_batch_size",
        "Open cases per sweep batch job (1-1000).",
    ),
    (
        "jobs.team_leads",
        "Who is told of reviews overdue, per agency: `agency:subject` entries. An agency without one: the case's caseworker.",
    ),
    (
        "endpoints.visitation",
        "Where the worker reaches the visitation service; empty: `visitation.listen` on this host.",
    ),
    (
        "endpoints.notification",
        "Where the worker reaches the notification service; empty: `notification.listen` on this host.",
    ),
    (
        "endpoints.case",
        "Where the other services reach the case service (`https://host:port`, or `http://` in dev mode without TLS); empty: `case.listen` on this host.",
    ),
    (
        "personal_data.key_files",
        "Files with 32-byte AES-256-GCM keys (base64) for national identity numbers at rest: the first seals, all open. Required outside dev mode (dev: `<data_dir>/nin-key`). Secret.",
    ),
    (
        "personal_data.hash_key_file",
        "A file with the key (base64, 32 bytes or more) of the keyed hash that finds an identity number. Required outside dev mode (dev: `<data_dir>/nin-hash-key`). Secret.",
    ),
    (
        "retention.jobs",
        "How long the worker keeps a finished (done) job in its queue (at least 1h). Jobs carry ids only.",
    ),
    (
        "retention.dead_jobs",
        "How long the worker keeps a DEAD job, for operators to look at and retry (at least 1h).",
    ),
    (
        "retention.notifications",
        "How long a notification whose deliveries have all ended is kept, with its deliveries (the addresses it went to), attempts and inbox entry (at least 1d). The worker removes older ones through `NotificationService/PurgeNotifications`.",
    ),
    (
        "retention.interval",
        "How often the worker removes what retention no longer keeps (1s-24h).",
    ),
    (
        "tls.cert_file",
        "This process's certificate chain (PEM), with its identity `spiffe://<trust_domain>/landsby/<process>` as a URI subjectAltName and the DNS names it is reached by: served to callers and shown to the services it calls. Required outside dev mode.",
    ),
    (
        "tls.key_file",
        "The private key of `tls.cert_file` (PEM). Required outside dev mode. Secret.",
    ),
    (
        "tls.ca_file",
        "The CA certificates (PEM) that every caller's certificate and every called service's certificate must chain to. Required outside dev mode.",
    ),
    (
        "tls.trust_domain",
        "The SPIFFE trust domain of the identities in certificates: `spiffe://<trust_domain>/landsby/worker` is the worker.",
    ),
    (
        "tls.handshake_timeout",
        "How long a caller may take over its TLS handshake.",
    ),
];

/// Every setting with its environment variable, default and description, sorted by key.
pub fn settings() -> Vec<Setting> {
    let mut out = Vec::new();
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    flatten("", &defaults, &mut out);
    out
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<Setting>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            let description = DESCRIPTIONS
                .iter()
                .find(|(k, _)| *k == prefix)
                .map_or("", |(_, d)| *d);
            out.push(Setting {
                key: prefix.to_owned(),
                env: format!("LANDSBY_{}", prefix.replace('.', "__").to_uppercase()),
                default: match other {
                    serde_json::Value::String(s) => format!("`\"{s}\"`"),
                    v => format!("`{v}`"),
                },
                description,
            });
        }
    }
}

/// The settings as a Markdown table, as the README carries it.
pub fn settings_table() -> String {
    let mut s = String::from("| setting | environment variable | default | what it does |\n");
    s.push_str("|---|---|---|---|\n");
    for row in settings() {
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            row.key, row.env, row.default, row.description
        ));
    }
    s
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail returns its own large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn every_setting_has_a_description_and_every_description_a_setting() {
        let keys: Vec<String> = settings().into_iter().map(|s| s.key).collect();
        for key in &keys {
            assert!(
                DESCRIPTIONS.iter().any(|(k, _)| k == key),
                "{key} has no description"
            );
        }
        for (k, _) in DESCRIPTIONS {
            assert!(
                keys.iter().any(|key| key == k),
                "description for unknown setting {k}"
            );
        }
    }

    #[test]
    fn the_readme_carries_the_settings_table_as_the_code_defines_it() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        assert!(
            readme.contains(&settings_table()),
            "README.md's settings table is out of date; replace it with the output of \
             `cargo run -p landsby -- config table`"
        );
    }

    #[test]
    fn the_case_endpoint_is_configured_or_the_case_services_listen_address() {
        let mut c = Config::default();
        assert_eq!(c.case_endpoint(), "http://127.0.0.1:50051");
        c.case.listen = SocketAddr::from(([0, 0, 0, 0], 6000));
        assert_eq!(c.case_endpoint(), "http://127.0.0.1:6000", "this host");
        c.case.listen = "[::]:6000".parse().unwrap();
        assert_eq!(
            c.case_endpoint(),
            "http://[::1]:6000",
            "this host, over IPv6"
        );
        c.endpoints.case = "http://landsby-case:50051".into();
        assert_eq!(c.case_endpoint(), "http://landsby-case:50051");
        c.endpoints.case = "landsby-case:50051".into();
        assert!(matches!(
            c.validated(),
            Err(ConfigError::Invalid {
                setting: "endpoints.case",
                ..
            })
        ));
    }

    #[test]
    fn with_tls_on_endpoints_are_https_and_the_three_files_come_together() {
        let refused = |c: &Config| match c.clone().validated() {
            Err(ConfigError::Invalid { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        let mut c = Config::default();
        c.tls.cert_file = "cert.pem".into();
        assert_eq!(refused(&c), "tls");
        c.tls.key_file = "key.pem".into();
        c.tls.ca_file = "ca.pem".into();
        assert!(c.clone().validated().is_ok());
        assert_eq!(c.case_endpoint(), "https://127.0.0.1:50051");
        c.endpoints.visitation = "http://landsby-visitation:50052".into();
        assert_eq!(refused(&c), "endpoints.visitation");
        c.endpoints.visitation = "https://landsby-visitation:50052".into();
        for bad in ["", "Landsby", "a/b", "spiffe://x"] {
            c.tls.trust_domain = bad.into();
            assert_eq!(refused(&c), "tls.trust_domain", "{bad:?}");
        }
        c.tls.trust_domain = "landsby.kommune.no".into();
        c.tls.handshake_timeout = Duration::from_millis(10);
        assert_eq!(refused(&c), "tls.handshake_timeout");
    }

    #[test]
    fn defaults_round_trip_through_the_loader() {
        Jail::expect_with(|jail| {
            jail.set_env("LANDSBY_DEV_MODE", "true");
            let loaded = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.server.request_timeout, Duration::from_secs(10));
            assert_eq!(loaded.case.listen.port(), 50051);
            assert_eq!(loaded.data_dir, PathBuf::from("./landsby-data"));
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "landsby.toml",
                "dev_mode = true\n[server]\nrequest_timeout = \"3s\"\nconcurrency_limit = 7\n",
            )?;
            jail.set_env("LANDSBY_SERVER__CONCURRENCY_LIMIT", "9");
            jail.set_env("LANDSBY_CASE__DATABASE_URL", "postgres://u:pw@db/landsby");
            let c = Config::load(Some(Path::new("landsby.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.server.request_timeout, Duration::from_secs(3));
            assert_eq!(c.server.concurrency_limit, 9);
            assert_eq!(c.case.database_url.expose(), "postgres://u:pw@db/landsby");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_an_error_not_silently_ignored() {
        Jail::expect_with(|jail| {
            jail.set_env("LANDSBY_DEV_MODE", "true");
            jail.set_env("LANDSBY_SERVER__REQUST_TIMEOUT", "5s");
            let err = Config::load(None).expect_err("typo must fail");
            assert!(err.to_string().contains("requst_timeout"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn settings_that_would_weaken_token_checks_are_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("LANDSBY_AUTH__LEEWAY", "1d");
            let err = Config::load(None).expect_err("a day of leeway");
            assert!(err.to_string().contains("auth.leeway"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("LANDSBY_DEV_MODE", "true");
            jail.set_env("LANDSBY_AUTH__ISSUER", "https://idp.example");
            let err = Config::load(None).expect_err("dev mode and a real issuer");
            assert!(err.to_string().contains("dev_mode"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("LANDSBY_DATABASE__HEALTH_INTERVAL", "0s");
            let err = Config::load(None).expect_err("zero interval");
            assert!(
                err.to_string().contains("database.health_interval"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_policy_is_the_built_in_one_unless_a_file_is_named() {
        let mut c = Config::default();
        assert_eq!(
            c.policy().unwrap().version,
            landsby_domain::Policy::default().version
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        let text = landsby_domain::policy::DEFAULT_POLICY
            .replace("version = \"2026.1\"", "version = \"oslo-7\"");
        std::fs::write(&file, text).unwrap();
        c.policy_file = file.clone();
        assert_eq!(c.policy().unwrap().version, "oslo-7");
        std::fs::write(&file, "version = \"broken\"").unwrap();
        assert!(c.policy().unwrap_err().to_string().contains("policy_file"));
    }

    #[test]
    fn flags_apply_before_validation() {
        Jail::expect_with(|_jail| {
            let err =
                Config::load_with(None, |c| c.server.concurrency_limit = 0).expect_err("invalid");
            assert!(
                err.to_string().contains("server.concurrency_limit"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_never_appear_in_debug_or_serialized_config() {
        let mut c = Config::default();
        c.case.database_url = Secret::new("postgres://user:hunter2@db/landsby".into());
        let debug = format!("{c:?}");
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!json.contains("hunter2"), "{json}");
    }

    #[test]
    fn an_empty_database_url_means_sqlite_in_the_data_directory() {
        let c = Config::default();
        let url = c.case.database_url(&c.data_dir, "case");
        assert_eq!(url.expose(), "sqlite://./landsby-data/case.db");
    }

    #[test]
    fn each_part_names_what_it_cannot_start_without_outside_dev_mode() {
        let bare = Config::default();
        let tls = ["tls.cert_file", "tls.key_file", "tls.ca_file"];
        let auth = ["auth.issuer", "auth.discovery_url or auth.public_key_files"];
        let expect = |extra: &[&'static str], with_auth: bool| {
            let mut v: Vec<&str> = tls.to_vec();
            if with_auth {
                v.extend(auth);
            }
            v.extend(extra);
            v
        };
        assert_eq!(
            bare.missing_for("case").unwrap(),
            expect(
                &["personal_data.key_files", "personal_data.hash_key_file"],
                true
            )
        );
        assert_eq!(bare.missing_for("visitation").unwrap(), expect(&[], true));
        assert_eq!(bare.missing_for("notification").unwrap(), expect(&[], true));
        assert_eq!(
            bare.missing_for("worker").unwrap(),
            expect(&["jobs.token_file"], true)
        );
        assert_eq!(
            bare.missing_for("sweep").unwrap(),
            expect(&["jobs.token_file"], false)
        );
        assert!(bare.missing_for("migrate").unwrap().is_empty());
        assert!(bare.missing_for("admin").is_err());
        let err = bare.require_for("worker").unwrap_err().to_string();
        assert!(
            err.contains("jobs.token_file") && err.contains("auth.issuer"),
            "{err}"
        );

        let dev = Config {
            dev_mode: true,
            ..Config::default()
        };
        for part in PARTS {
            assert!(dev.missing_for(part).unwrap().is_empty(), "{part}");
        }
        let mut complete = Config::default();
        complete.tls.cert_file = "c".into();
        complete.tls.key_file = "k".into();
        complete.tls.ca_file = "ca".into();
        complete.auth.issuer = "https://idp".into();
        complete.auth.public_key_files = vec!["k.pem".into()];
        complete.personal_data.key_files = vec!["n".into()];
        complete.personal_data.hash_key_file = "h".into();
        complete.jobs.token_file = "t".into();
        for part in PARTS {
            assert!(complete.require_for(part).is_ok(), "{part}");
        }
    }
}

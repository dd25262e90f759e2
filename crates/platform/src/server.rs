//! The one way a landsby gRPC server starts and stops.
//!
//! [`start`] serves a [`ServiceDef`] on a bound listener with `grpc.health.v1`, server reflection (v1
//! and v1alpha), the server limits of the configuration and the [`Guard`] in front of the service. A
//! background task migrates the database and then watches it: health stays NOT_SERVING until the
//! migrations have run and whenever the database stops answering. The service `liveness` answers
//! SERVING for as long as the process runs. With `<service>.health_listen` set, a second port
//! answers the same health in plain text, for probes that speak no TLS. On shutdown, health turns
//! NOT_SERVING at once, the server goes on taking requests for `server.shutdown_delay` (so that load
//! balancers stop sending first), then stops accepting; in-flight requests finish, and after
//! `server.shutdown_grace` more the server stops regardless.

use crate::auth::Verifier;
use crate::config::{Config, ServiceConfig};
use crate::db::{DbPool, Migrations};
use crate::error::ApiError;
use crate::ratelimit::RateLimits;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::service::Routes;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::{Layer, Service};

/// What a service contributes; everything else about serving it is the same for every service.
#[derive(Clone, Copy)]
pub struct ServiceDef {
    /// Short name: `case`. Names the SQLite file and the PostgreSQL application.
    pub name: &'static str,
    /// The fully qualified gRPC service, for health: `landsby.case.v1.CaseService`.
    pub grpc_service: &'static str,
    /// The service's own section of the configuration.
    pub config: fn(&Config) -> &ServiceConfig,
    /// The service's migrations.
    pub migrations: Migrations,
    /// The service's routes, given its database and the configuration; fails when the
    /// configuration cannot serve them (an endpoint of another service that is not a URL).
    pub routes: fn(ServiceContext) -> Result<Routes, crate::config::ConfigError>,
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a service's routes are built from.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// The service's database.
    pub db: DbPool,
    /// The whole configuration.
    pub config: Arc<Config>,
    /// The staircase policy in force.
    pub policy: Arc<landsby_domain::Policy>,
    /// Given when the server begins to shut down: long-lived streams end on it.
    pub shutdown: Shutdown,
    /// This process's TLS material for the services it calls (`None`: plain text, dev mode only).
    pub tls: Option<crate::tls::Tls>,
}

/// Tells servers to stop. Cloned handles all observe the same signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet given.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Gives the signal.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal was given.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the signal is given.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means every sender is gone, which cannot happen while `self` holds one.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A server that has started.
#[derive(Debug)]
pub struct Running {
    /// The service's short name.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its plain-text health port listens, if it has one.
    pub health_addr: Option<SocketAddr>,
    /// Where its database is, without credentials.
    pub database: String,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    /// Waits for the server to stop (after the shutdown signal and the drain).
    pub async fn stopped(self) -> Result<(), String> {
        self.task
            .await
            .map_err(|e| format!("the {} server task failed: {e}", self.name))?
    }
}

/// Errors before a server runs.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listener or the reflection service could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// Starts `def` on `listener`. Returns once the server is accepting connections.
pub async fn start(
    def: &ServiceDef,
    config: Arc<Config>,
    verifier: Arc<Verifier>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<Running, StartError> {
    let service_config = (def.config)(&config);
    let url = service_config.database_url(&config.data_dir, def.name);
    let db = DbPool::connect_lazy(&url, &config.database, def.name)?;
    // Health has a connection of its own, so a busy request pool never reads as a database that is
    // away.
    let health_db = DbPool::connect_lazy(
        &url,
        &crate::config::DatabaseConfig {
            max_connections: 1,
            acquire_timeout: config.database.health_interval,
            ..config.database.clone()
        },
        def.name,
    )?;
    let database = db.describe();
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Setup(e.to_string()))?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING before anything runs that could report SERVING.
    set_health(&reporter, def.grpc_service, ServingStatus::NotServing).await;
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let health_listener =
        match service_config.health_address() {
            Ok(None) => None,
            Ok(Some(at)) => Some(TcpListener::bind(at).await.map_err(|e| {
                StartError::Setup(format!("cannot listen for health on {at}: {e}"))
            })?),
            Err(e) => return Err(StartError::Setup(format!("health_listen: {e}"))),
        };
    let health_addr = match &health_listener {
        Some(l) => Some(
            l.local_addr()
                .map_err(|e| StartError::Setup(e.to_string()))?,
        ),
        None => None,
    };
    let plain_health = health_service.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let server_cfg = &config.server;

    // Reflection names the services this server serves, not every service in the contracts.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(landsby_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(def.grpc_service)
        .with_service_name("landsby.audit.v1.AuditService")
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(|e| StartError::Setup(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(landsby_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(def.grpc_service)
        .with_service_name("landsby.audit.v1.AuditService")
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .map_err(|e| StartError::Setup(format!("reflection: {e}")))?;

    let tls = crate::tls::Tls::from_config(&config)?;
    if tls.is_none() {
        tracing::warn!(
            service = def.name,
            "PLAIN TEXT: dev mode without tls.cert_file; calls to and from this service are neither \
             encrypted nor authenticated by certificate. Never in production"
        );
    }
    let guard = Guard {
        identities: tls
            .as_ref()
            .map(|t| Arc::new(crate::tls::Identities::new(t.trust_domain()))),
        permits: Arc::new(Semaphore::new(server_cfg.concurrency_limit)),
        // What the other processes together can have let in and be working on.
        process_permits: Arc::new(Semaphore::new(
            server_cfg.concurrency_limit.saturating_mul(4),
        )),
        limits: Arc::new(RateLimits::new(
            server_cfg.caller_rate,
            server_cfg.caller_burst,
        )),
        verifier,
        ready: ready.clone(),
        request_timeout: server_cfg.request_timeout,
    };
    let policy = Arc::new(config.policy()?);
    let routes = (def.routes)(ServiceContext {
        db: db.clone(),
        config: config.clone(),
        policy,
        shutdown: shutdown.clone(),
        tls: tls.clone(),
    })?
    .add_service(health_service)
    .add_service(
        landsby_proto::audit::audit_service_server::AuditServiceServer::new(
            crate::audit_api::AuditApi::new(db.clone()),
        ),
    )
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha);

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder
            .tls_config(tls.server())
            .map_err(|e| StartError::Setup(format!("tls: {e}")))?;
    }
    let router = builder
        .layer(guard)
        .max_concurrent_streams(server_cfg.max_concurrent_streams)
        .http2_max_header_list_size(server_cfg.max_header_list_bytes)
        .http2_max_pending_accept_reset_streams(Some(server_cfg.max_pending_accept_reset_streams))
        .http2_keepalive_interval(Some(server_cfg.keepalive_interval))
        .http2_keepalive_timeout(Some(server_cfg.keepalive_timeout))
        .accept_http1(false)
        .add_routes(routes);

    let name = def.name;
    let grpc_service = def.grpc_service;
    let grace = server_cfg.shutdown_grace;
    let delay = server_cfg.shutdown_delay;
    // The plain-text health port lives until the server has drained, answering NOT_SERVING meanwhile.
    let (health_stop, health_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = health_listener {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(async move {
            let stop = async {
                let _ = health_stopped.await;
            };
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(plain_health)
                .serve_with_incoming_shutdown(incoming, stop)
                .await
            {
                tracing::error!(service = name, error = %e, "the health port failed");
            }
        });
    }
    // TCP_NODELAY on every accepted connection: the builder's `tcp_nodelay` applies only to a
    // listener tonic binds itself, and without it a response written in two segments waits for
    // the caller's delayed ACK (~40 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));

    let sealer_ready = ready.clone();
    let mut supervisor = tokio::spawn(supervise_database(
        db.clone(),
        health_db,
        def.migrations,
        ready,
        reporter.clone(),
        grpc_service,
        config.database.health_interval,
    ));
    let stop_supervisor = supervisor.abort_handle();
    tokio::spawn(crate::audit_chain::run_sealer(
        db.clone(),
        config.database.audit_seal_interval,
        config.database.audit_seal_after,
        sealer_ready,
        shutdown.clone(),
    ));

    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            stop.wait().await;
            // The supervisor is the only other writer of health: stop it before saying NOT_SERVING,
            // so it cannot say SERVING again while the server drains.
            supervisor.abort();
            let _ = (&mut supervisor).await;
            set_health(&reporter, grpc_service, ServingStatus::NotServing).await;
            if !delay.is_zero() {
                tracing::info!(
                    service = name,
                    ?delay,
                    "shutting down: NOT_SERVING, still taking requests"
                );
                tokio::time::sleep(delay).await;
            }
            tracing::info!(service = name, "shutting down: draining in-flight requests");
        };
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(serve);
        let outcome = tokio::select! {
            result = &mut serve => {
                // Drained: every request has finished, so the pool can close cleanly.
                db.close().await;
                result.map_err(|e| format!("the {name} server failed: {e}"))
            }
            () = async { shutdown.wait().await; tokio::time::sleep(delay + grace).await } => {
                // Requests still hold connections; waiting for them is what the bound forbids.
                tracing::warn!(service = name, ?grace, "drain bound reached; stopping with requests in flight");
                Ok(())
            }
        };
        stop_supervisor.abort();
        let _ = health_stop.send(());
        tracing::info!(service = name, "stopped");
        outcome
    });

    Ok(Running {
        name,
        addr,
        health_addr,
        database,
        task,
    })
}

/// The health service that answers SERVING for as long as the process runs (a liveness probe's).
pub const LIVENESS: &str = "liveness";

async fn set_health(reporter: &HealthReporter, service: &str, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(service, status).await;
}

/// Migrates, then watches the database on its own connection; health follows. The server aborts
/// it when shutdown begins; until then it is the only writer of health.
async fn supervise_database(
    db: DbPool,
    health_db: DbPool,
    migrations: Migrations,
    ready: Arc<AtomicBool>,
    reporter: HealthReporter,
    service: &'static str,
    interval: Duration,
) {
    let location = db.describe();
    loop {
        match db.migrate(&migrations).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(service, database = %location, error = %crate::db::describe_migrate_error(&e), "migrations could not run; retrying");
                tokio::time::sleep(interval).await;
            }
        }
    }
    ready.store(true, Ordering::Release);
    tracing::info!(service, database = %location, "migrations done");
    let mut serving = None;
    loop {
        let ok = tokio::time::timeout(interval, health_db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        if serving != Some(ok) {
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_health(&reporter, service, status).await;
            if ok {
                tracing::info!(service, "database answers: SERVING");
            } else {
                tracing::warn!(service, "database does not answer: NOT_SERVING");
            }
            serving = Some(ok);
        }
        tokio::time::sleep(interval).await;
    }
}

/// RPCs outside authentication and limits: health checks and reflection.
fn is_infrastructure(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// In front of every service: the concurrency limit (refusing at once with RESOURCE_EXHAUSTED rather
/// than queueing), authentication, the readiness gate (UNAVAILABLE until migrations have run) and the
/// request deadline (the shorter of `server.request_timeout` and the client's `grpc-timeout`).
/// When the deadline passes, the handler is dropped, so its work stops and its transaction rolls
/// back.
#[derive(Clone)]
pub struct Guard {
    /// With TLS on: the identities the callers' certificates name in the trust domain, which decide
    /// which RPCs they may call (crates/platform/src/tls.rs), each certificate parsed once.
    identities: Option<Arc<crate::tls::Identities>>,
    /// The requests of the agencies' platforms handled at once.
    permits: Arc<Semaphore>,
    /// The requests of landsby's own processes handled at once, counted apart: they are the work of
    /// requests another service has already let in (visitation asking for need to know, the
    /// worker's jobs), so a flood of new requests from the platforms does not make that work fail
    /// half-way.
    process_permits: Arc<Semaphore>,
    limits: Arc<RateLimits>,
    verifier: Arc<Verifier>,
    ready: Arc<AtomicBool>,
    request_timeout: Duration,
}

impl<S> Layer<S> for Guard {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            guard: self.clone(),
            inner,
        }
    }
}

/// A service behind the [`Guard`].
#[derive(Clone)]
pub struct Guarded<S> {
    guard: Guard,
    inner: S,
}

type HttpRequest = http::Request<tonic::body::Body>;

fn refuse<B, E>(err: ApiError) -> BoxFuture<'static, Result<http::Response<B>, E>>
where
    B: Default + Send + 'static,
    E: Send + 'static,
{
    let response = Status::from(err).into_http::<B>();
    Box::pin(std::future::ready(Ok(response)))
}

impl<S, B> Service<HttpRequest> for Guarded<S>
where
    S: Service<HttpRequest, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Default + Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        // The clone that was polled ready handles this request; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_infrastructure(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        // Each request in its span (a child of the caller's trace), timed and counted by its code.
        let path = req.uri().path().to_owned();
        let span = crate::telemetry::server_span(req.headers(), &path);
        let started = std::time::Instant::now();
        let work = span.in_scope(|| self.guarded(inner, req));
        let in_span = span.clone();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let result = work.await;
                if let Ok(response) = &result {
                    // An error answered at once is in the headers (trailers-only); an answer, or
                    // an error after a stream's first message, is in the trailers: counted as OK.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    in_span.record("rpc.grpc.status_code", code);
                    // Unknown, deadline exceeded, unimplemented, internal, unavailable, data loss:
                    // the server's trouble, not the caller's.
                    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
                        crate::telemetry::record_error(&in_span);
                    }
                    crate::telemetry::Metrics::get().rpc(path, code, started.elapsed());
                }
                result
            },
            span,
        ))
    }
}

impl<S, B> Guarded<S>
where
    S: Service<HttpRequest, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Default + Send + 'static,
{
    /// The guard's checks, then the service.
    fn guarded(
        &self,
        mut inner: S,
        mut req: HttpRequest,
    ) -> BoxFuture<'static, Result<http::Response<B>, S::Error>> {
        let mut own = false;
        if let Some(identities) = &self.guard.identities {
            let certs = req
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs);
            match identities.admit(certs.as_deref().map(Vec::as_slice), req.uri().path()) {
                Ok(peer) => {
                    own = matches!(peer, crate::tls::Peer::Process(_));
                    req.extensions_mut().insert(peer);
                }
                Err(err) => {
                    tracing::warn!(method = req.uri().path(), error = %err, "refused by the caller's certificate");
                    return refuse(err);
                }
            }
        }
        let permits = if own {
            &self.guard.process_permits
        } else {
            &self.guard.permits
        };
        let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
            return refuse(ApiError::ResourceExhausted);
        };
        if !self.guard.ready.load(Ordering::Acquire) {
            return refuse(ApiError::Unavailable {
                reason: "the service is starting: its database has not been migrated yet",
            });
        }
        // The client's deadline, less a margin so the answer reaches the client in time and tonic's
        // own timer (which would answer CANCELLED) never fires first; handlers see it as an
        // extension, to pass it on to the database.
        let deadline = grpc_timeout(req.headers()).map_or(self.guard.request_timeout, |t| {
            let margin = (t / 10).clamp(Duration::from_millis(1), Duration::from_millis(20));
            t.saturating_sub(margin).min(self.guard.request_timeout)
        });
        let at = tokio::time::Instant::now() + deadline;
        req.extensions_mut().insert(Deadline(at));
        let verifier = Arc::clone(&self.guard.verifier);
        let limits = Arc::clone(&self.guard.limits);
        Box::pin(async move {
            let _permit = permit;
            // Verifying may fetch the issuer's keys (a key id not seen yet): within the deadline.
            let work = async move {
                let caller = match verifier.authenticate(req.headers()).await {
                    Ok(caller) => caller,
                    Err(err) => return Ok(Status::from(err).into_http::<B>()),
                };
                if let Err(err) = limits.check(&caller) {
                    return Ok(Status::from(err).into_http::<B>());
                }
                req.extensions_mut().insert(caller);
                inner.call(req).await
            };
            // The handler's transactions get the deadline too (crate::db::begin).
            let work = crate::db::within_deadline(at, work);
            match tokio::time::timeout(deadline, work).await {
                Ok(result) => result,
                Err(_) => Ok(Status::from(ApiError::DeadlineExceeded).into_http::<B>()),
            }
        })
    }
}

/// When the request must be answered by: the shorter of the server's request timeout and the
/// client's deadline. In the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub tokio::time::Instant);

/// The client's deadline from the `grpc-timeout` header (`<up to 8 digits><H|M|S|m|u|n>`).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Binds every service, tells `on_ready` where they listen, serves them until SIGTERM or SIGINT,
/// then drains and returns. Used by each service's own binary and by `landsby up`.
pub async fn run(
    config: Config,
    defs: &[ServiceDef],
    on_ready: impl FnOnce(&[Running]),
) -> Result<(), String> {
    // Bind every listener first, and let the configuration say where each service really listens
    // (port 0 picks one), so the services in this process reach each other there.
    for def in defs {
        config.require_for(def.name).map_err(|e| e.to_string())?;
    }
    let mut config = config;
    let mut listeners = Vec::new();
    for def in defs {
        let listen = (def.config)(&config).listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("{}: cannot listen on {listen}: {e}", def.name))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("{}: {e}", def.name))?;
        if let Some(section) = config.service_mut(def.name) {
            section.listen = bound;
        }
        listeners.push(listener);
    }
    let config = Arc::new(config);
    if config.dev_mode {
        tracing::warn!(
            "DEV MODE: tokens signed with the key in {} are accepted; never run this in production",
            config.data_dir.display()
        );
    }
    let verifier = Arc::new(Verifier::from_config(&config).map_err(|e| e.to_string())?);
    let shutdown = Shutdown::new();
    let mut running = Vec::new();
    for (def, listener) in defs.iter().zip(listeners) {
        let server = start(
            def,
            config.clone(),
            verifier.clone(),
            listener,
            shutdown.clone(),
        )
        .await
        .map_err(|e| format!("{}: {e}", def.name))?;
        match server.health_addr {
            Some(health) => {
                tracing::info!(service = server.name, addr = %server.addr, %health, database = %server.database, "listening")
            }
            None => {
                tracing::info!(service = server.name, addr = %server.addr, database = %server.database, "listening")
            }
        }
        running.push(server);
    }
    on_ready(&running);
    shutdown_signal().await;
    tracing::info!("signal received; shutting down");
    shutdown.trigger();
    let mut result = Ok(());
    for server in running {
        if let Err(e) = server.stopped().await {
            tracing::error!(error = %e, "server stopped with an error");
            result = Err(e);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let mut h = http::HeaderMap::new();
        for (v, d) in [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ] {
            h.insert("grpc-timeout", v.parse().unwrap());
            assert_eq!(grpc_timeout(&h), Some(d), "{v}");
        }
        for bad in ["", "S", "1x", "123456789S", "-1S"] {
            h.insert("grpc-timeout", bad.parse().unwrap());
            assert_eq!(grpc_timeout(&h), None, "{bad}");
        }
    }

    #[test]
    fn health_and_reflection_bypass_the_guard_and_nothing_else_does() {
        assert!(is_infrastructure("/grpc.health.v1.Health/Check"));
        assert!(is_infrastructure(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(is_infrastructure(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_infrastructure("/landsby.case.v1.CaseService/GetCase"));
        assert!(!is_infrastructure("/grpc.health.v2.Health/Check"));
    }
}

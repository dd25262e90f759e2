//! The scheduling worker: follows the case and visitation event feeds, and does by itself
//! everything that follows from what people record. A step change recomputes each parent's
//! visitation scope and the case's due reviews and tells the village; a visit that is scheduled,
//! moved or cancelled is told to its participants; a concern after a visit is told to the
//! caseworker; and a nightly review sweep recomputes every open case, reminds, escalates and flags.
//!
//! Jobs run on apalis, in the worker's own database (apalis-sqlite or apalis-postgres), with the
//! guards apalis lacks: unique worker names per process, a bounded number of attempts that also
//! counts attempts a crash cut short, backoff for a service that is away, and recovery of jobs a
//! dead process held. The admin API (`landsby.worker.v1.WorkerAdminService`) lists jobs, runs a
//! dead one again, and starts and shows review sweeps.

#[macro_use]
pub mod clients;
pub mod api;
pub mod error;
pub mod follow;
pub mod jobs;
pub mod notify;
pub mod queue;
pub mod recompute;
pub mod retention;
pub mod store;
pub mod sweep;

use landsby_platform::config::{Config, ConfigError};
use landsby_platform::db::{LibraryMigrations, Migrations};
use landsby_platform::server::{ServiceContext, ServiceDef};
use landsby_proto::worker::worker_admin_service_server::WorkerAdminServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::service::Routes;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The worker's migrations: apalis's job queue (tracked in `_apalis_migrations`), then its own.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
    library: Some(LibraryMigrations {
        table: "_apalis_migrations",
        postgres: apalis_postgres::PostgresStorage::<()>::migrations,
        sqlite: apalis_sqlite::SqliteStorage::<()>::migrations,
    }),
};

/// What every job and the admin API share.
pub struct Ctx {
    /// Clients of the other services.
    pub services: clients::Services,
    /// The worker's tokens.
    pub tokens: clients::Tokens,
    /// The staircase policy in force.
    pub policy: Arc<landsby_domain::Policy>,
    /// The job queue.
    pub queue: queue::Queue,
    /// The worker's own tables.
    pub store: Arc<dyn store::Store>,
    /// What the worker does.
    pub config: landsby_platform::config::JobsConfig,
    /// How long operational copies are kept.
    pub retention: landsby_platform::config::RetentionConfig,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

impl Ctx {
    /// Everything from the service's context.
    pub fn new(ctx: &ServiceContext) -> Result<Self, ConfigError> {
        Self::from_parts(&ctx.config, ctx.db.clone(), ctx.policy.clone())
    }

    /// Everything from a configuration, a database and a policy.
    pub fn from_parts(
        config: &Config,
        db: landsby_platform::db::DbPool,
        policy: Arc<landsby_domain::Policy>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            services: clients::Services::from_config(config)?,
            tokens: clients::Tokens::from_config(config)?,
            policy,
            queue: queue::Queue::new(&db),
            store: store::open(db),
            config: config.jobs.clone(),
            retention: config.retention.clone(),
        })
    }
}

fn routes(ctx: ServiceContext) -> Result<Routes, ConfigError> {
    let limit = ctx.config.server.max_message_bytes;
    let shared = Arc::new(Ctx::new(&ctx)?);
    jobs::spawn(shared.clone(), ctx.shutdown.clone(), jobs::Mode::Serve);
    let api = api::AdminApi::new(
        shared,
        landsby_platform::pagination::PageTokens::new(ctx.db.clone()),
        landsby_platform::audit::Auditor::new(ctx.db),
    );
    Ok(Routes::new(
        WorkerAdminServiceServer::new(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    ))
}

/// How the platform serves the worker: its admin API and health, and its jobs beside them.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "worker",
    grpc_service: "landsby.worker.v1.WorkerAdminService",
    config: |c| &c.worker,
    migrations: MIGRATIONS,
    routes,
};

//! The case service: cases, the child, placement, the village, and the county board's decisions on
//! visitation. It talks to nobody; other services read it over gRPC.

pub mod api;
pub mod model;
pub mod store;

use landsby_platform::db::Migrations;
use landsby_platform::server::{ServiceContext, ServiceDef};
use landsby_proto::case::case_service_server::CaseServiceServer;
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The case service's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
    library: None,
};

fn routes(ctx: ServiceContext) -> Result<Routes, landsby_platform::config::ConfigError> {
    landsby_platform::pii::install(landsby_platform::pii::NinProtector::from_config(
        &ctx.config,
    )?);
    let limit = ctx.config.server.max_message_bytes;
    let tokens = landsby_platform::pagination::PageTokens::new(ctx.db.clone());
    let auditor = landsby_platform::audit::Auditor::new(ctx.db.clone());
    let feed = landsby_platform::outbox::Feed::new(ctx.db.clone());
    let api = api::CaseApi::new(
        store::open(ctx.db, feed.clone()),
        tokens,
        auditor,
        feed,
        ctx.policy,
        ctx.shutdown,
        ctx.config.auth.break_glass_ttl,
    );
    Ok(Routes::new(
        CaseServiceServer::new(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    ))
}

/// How the platform serves the case service.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "case",
    grpc_service: "landsby.case.v1.CaseService",
    config: |c| &c.case,
    migrations: MIGRATIONS,
    routes,
};

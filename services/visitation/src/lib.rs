//! The visitation service: a visitation plan per parent (the scope in force, computed by the
//! staircase engine with the caseworker's adjustments on top, every value explained), the visits
//! themselves with their frame and the report after each, and proposed schedules. It reads the case
//! service (the board's floor and conditions, the village) on behalf of its callers.

pub mod api;
pub mod case_client;
pub mod model;
pub mod store;

use landsby_platform::db::Migrations;
use landsby_platform::server::{ServiceContext, ServiceDef};
use landsby_proto::visitation::visitation_service_server::VisitationServiceServer;
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The visitation service's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
    library: None,
};

fn routes(ctx: ServiceContext) -> Result<Routes, landsby_platform::config::ConfigError> {
    let limit = ctx.config.server.max_message_bytes;
    let tokens = landsby_platform::pagination::PageTokens::new(ctx.db.clone());
    let auditor = landsby_platform::audit::Auditor::new(ctx.db.clone());
    let feed = landsby_platform::outbox::Feed::new(ctx.db.clone());
    let case = case_client::CaseClient::new(landsby_platform::client::channel(
        &ctx.config.case_endpoint(),
        ctx.tls.as_ref(),
    )?);
    let api = api::VisitationApi::new(
        store::open(ctx.db, feed.clone()),
        tokens,
        auditor,
        feed,
        case,
        ctx.shutdown,
    );
    Ok(Routes::new(
        VisitationServiceServer::new(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    ))
}

/// How the platform serves the visitation service.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "visitation",
    grpc_service: "landsby.visitation.v1.VisitationService",
    config: |c| &c.visitation,
    migrations: MIGRATIONS,
    routes,
};

//! The notification service: one notification per recipient, written from a template in the
//! recipient's language, delivered on their channels (e-mail, SMS, signed webhooks, the in-app inbox)
//! from a persisted queue with retries, and never carrying the foster home's address or the foster
//! parents' contact details to a parent-side recipient when the address is secret.

pub mod api;
pub mod channels;
pub mod delivery;
pub mod model;
pub mod store;

use channels::{EmailSender, SmsSender, WebhookSender};
use landsby_platform::config::{Config, ConfigError};
use landsby_platform::db::Migrations;
use landsby_platform::server::{ServiceContext, ServiceDef};
use landsby_proto::notification::notification_service_server::NotificationServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::service::Routes;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The notification service's migrations.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES_MIGRATIONS,
    sqlite: &SQLITE_MIGRATIONS,
    library: None,
};

fn invalid(setting: &'static str, problem: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.to_string(),
    }
}

/// The senders of the channels the configuration turns on.
fn senders(config: &Config) -> Result<delivery::Senders, ConfigError> {
    let d = &config.delivery;
    let timeout = d.attempt_timeout;
    let mut senders = delivery::Senders::default();
    if !d.smtp.host.trim().is_empty() {
        let email = EmailSender::new(&d.smtp, timeout).map_err(|e| invalid("delivery.smtp", e))?;
        senders.email = Some(Arc::new(email));
    }
    if !d.sms.url.trim().is_empty() {
        let sms = SmsSender::new(&d.sms, timeout).map_err(|e| invalid("delivery.sms", e))?;
        senders.sms = Some(Arc::new(sms));
    }
    if !d.webhook.url.trim().is_empty() {
        let webhook =
            WebhookSender::new(&d.webhook, timeout).map_err(|e| invalid("delivery.webhook", e))?;
        senders.webhook = Some(Arc::new(webhook));
    }
    Ok(senders)
}

fn routes(ctx: ServiceContext) -> Result<Routes, ConfigError> {
    channels::install_crypto();
    let config = &ctx.config;
    let limit = config.server.max_message_bytes;
    let quiet = |setting, raw: &str| {
        landsby_domain::time::clock_time(raw).ok_or_else(|| invalid(setting, "must be HH:MM"))
    };
    let quiet_from = quiet("delivery.quiet_from", &config.delivery.quiet_from)?;
    let quiet_until = quiet("delivery.quiet_until", &config.delivery.quiet_until)?;
    let senders = senders(config)?;
    let store = store::open(ctx.db.clone());
    let wake = Arc::new(tokio::sync::Notify::new());
    let channels = api::Channels {
        email: senders.email.is_some(),
        sms: senders.sms.is_some(),
        webhook: senders.webhook.is_some(),
        quiet_from,
        quiet_until,
    };
    let dispatcher = delivery::Dispatcher::new(
        store.clone(),
        senders,
        config.delivery.clone(),
        (quiet_from, quiet_until),
        wake.clone(),
    );
    tokio::spawn(dispatcher.supervise(ctx.shutdown.clone()));
    let access = landsby_platform::client::CaseAccess::new(landsby_platform::client::channel(
        &config.case_endpoint(),
        ctx.tls.as_ref(),
    )?);
    let api = api::NotificationApi::new(
        store,
        landsby_platform::pagination::PageTokens::new(ctx.db.clone()),
        landsby_platform::audit::Auditor::new(ctx.db.clone()),
        channels,
        wake,
        access,
    );
    Ok(Routes::new(
        NotificationServiceServer::new(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    ))
}

/// How the platform serves the notification service.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "notification",
    grpc_service: "landsby.notification.v1.NotificationService",
    config: |c| &c.notification,
    migrations: MIGRATIONS,
    routes,
};

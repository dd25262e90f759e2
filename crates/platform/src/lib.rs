//! What every landsby service shares, so that every service is assembled the same way: the
//! configuration, the server (health, reflection, limits, authentication, graceful shutdown), the
//! database (connect, migrate, error mapping), the audit log, errors and their gRPC statuses, request
//! validation, page tokens and logging.

pub mod audit;
pub mod audit_api;
pub mod audit_chain;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod jwks;
pub mod outbox;
pub mod pagination;
pub mod pii;
pub mod ratelimit;
pub mod retry;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod validate;
pub mod vocab;

pub use auth::Caller;
pub use config::Config;
pub use error::ApiError;
pub use secret::Secret;
pub use server::ServiceDef;

//! The case service's tests: the store conformance suite, the gRPC API, and the process's life
//! (health, overload, deadlines, shutdown). One test binary; each test runs on SQLite and on
//! PostgreSQL where a database is involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod api;
mod chain;
mod h2;
mod lifecycle;
mod mtls;
mod staircase;
mod store;
mod support;

pub use landsby_testkit::audit::{audit_rows, audit_rows_of, try_to_change_audit_log};

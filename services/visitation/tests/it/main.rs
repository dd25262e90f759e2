//! The visitation service's tests, one binary: the store on both databases, and the service through
//! its gRPC API on both databases, next to a real case service.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod plans;
mod store;
mod support;
mod visits;

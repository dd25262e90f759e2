//! The notification service's tests, one binary: its channels against real servers on loopback,
//! the gRPC API on both databases, and delivery through the queue to real endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod api;
mod channels;
mod delivery;
mod retention;
mod store;
mod support;

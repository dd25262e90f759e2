//! The worker's tests, one binary: its queue and tables on both databases, and the worker running
//! beside real case, visitation and notification services over loopback gRPC — the heart flow, the
//! notices, the review sweep, failures, its admin API, and one trace across the four of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod flow;
mod queue;
mod retention;
mod support;
mod sweep;
mod trace;

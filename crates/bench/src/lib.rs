//! The load generator's parts, shared by the `landsby-bench` binary (docs/performance.md) and the
//! overload test (`tests/tests/e2e/overload.rs`): the suite's processes started as in production,
//! a caseworker platform's calls as load, closed-loop driving with latency and code tallies, and the
//! baselines.

pub mod baseline;
pub mod load;
pub mod suite;
pub mod workloads;

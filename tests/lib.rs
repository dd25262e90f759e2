//! End-to-end tests across landsby's real processes live in `tests/e2e.rs`; this crate has no code
//! of its own. The binaries under test are the ones `cargo test --workspace` builds.

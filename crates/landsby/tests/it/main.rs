//! The `landsby` command and the deployment, tested from outside: one test binary for the crate.

mod cli;
mod deploy;
mod restore;

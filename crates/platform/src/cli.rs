//! The entry point of each service's own binary: `landsby-case [--config FILE]`.

use crate::config::Config;
use crate::server::{ServiceDef, run};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options every service binary takes.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A landsby service. Settings come from the file, then LANDSBY_* variables."
)]
struct ServiceArgs {
    /// A TOML configuration file (also LANDSBY_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs one service until SIGTERM or SIGINT. Exit code 0 after a clean drain, 1 on any error, 2 on
/// bad arguments.
pub fn service_main(def: ServiceDef) -> ExitCode {
    let args = ServiceArgs::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("landsby-{}: {e}", def.name);
            return ExitCode::FAILURE;
        }
    };
    block_on(config, &[def], |_| {})
}

/// Starts the runtime and serves `defs` with `config` (shared with `landsby up`); `on_ready` hears
/// where they listen.
pub fn block_on(
    config: Config,
    defs: &[ServiceDef],
    on_ready: impl FnOnce(&[crate::server::Running]),
) -> ExitCode {
    crate::telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, defs, on_ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

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
    // One service: `landsby-case`; several in one process: `landsby`.
    let name = match defs {
        [one] => format!("landsby-{}", one.name),
        _ => "landsby".to_owned(),
    };
    with_telemetry(&config, &name, run(config.clone(), defs, on_ready))
}

/// Runs `work` on a new runtime with telemetry installed for the process `name`, then sends what
/// telemetry still holds. Every landsby binary runs its work through here.
pub fn with_telemetry(
    config: &Config,
    name: &str,
    work: impl std::future::Future<Output = Result<(), String>>,
) -> ExitCode {
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
    let outcome = runtime.block_on(async {
        let telemetry = crate::telemetry::init(&config.log, &config.telemetry, name)
            .map_err(|e| e.to_string())?;
        let outcome = work.await;
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

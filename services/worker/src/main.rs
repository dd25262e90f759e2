//! `landsby-worker`: the scheduling worker on its own.
//!
//! - `landsby-worker [--config FILE]` serves the admin API and health on `worker.listen` and runs
//!   the feeds, the jobs and the sweep schedule until SIGTERM or SIGINT.
//! - `landsby-worker sweep --once [--config FILE]` runs one review sweep of every agency in
//!   `jobs.agencies` to its end and exits (for a Kubernetes CronJob): 0 when every batch is done.

#![allow(clippy::print_stdout)] // printing is what a command line does

use clap::{Parser, Subcommand};
use landsby_platform::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "landsby-worker",
    version,
    about = "The landsby scheduling worker. Settings come from the file, then LANDSBY_* variables."
)]
struct Args {
    /// A TOML configuration file (also LANDSBY_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one review sweep of every agency to its end, then exits.
    Sweep {
        /// Required: one sweep, then exit (the schedule is the CronJob's).
        #[arg(long)]
        once: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("landsby-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.command {
        None => landsby_platform::cli::block_on(config, &[landsby_worker::SERVICE], |_| {}),
        Some(Command::Sweep { once: false }) => {
            eprintln!(
                "landsby-worker sweep: give --once (the worker itself sweeps on jobs.sweep_schedule)"
            );
            ExitCode::from(2)
        }
        Some(Command::Sweep { once: true }) => {
            let work = async {
                let sweeps = landsby_worker::sweep::once(config.clone())
                    .await
                    .map_err(|e| format!("landsby-worker sweep: {e}"))?;
                for s in sweeps {
                    println!(
                        "agency {}: sweep {} done: {} cases ({} failed) in {} batches; {} review reminders, {} escalations, {} visit reminders, {} behind on follow-up visits",
                        s.agency,
                        s.id,
                        s.cases_total,
                        s.counts.cases_failed,
                        s.batches_total,
                        s.counts.review_reminders,
                        s.counts.escalations,
                        s.counts.visit_reminders,
                        s.counts.follow_up_flags
                    );
                }
                Ok(())
            };
            landsby_platform::cli::with_telemetry(&config, "landsby-sweep", work)
        }
    }
}

//! `landsby`: the all-in-one and the command line.
//!
//! - `landsby up` runs every service in one process, on SQLite in a data directory, in dev mode.
//! - `landsby token` prints a dev token signed with the data directory's dev key.
//! - `landsby demo` drives a sample case through the staircase against a running `landsby up` and
//!   prints what the system did by itself at each step.
//! - `landsby migrate` brings every service's database to the current schema and exits.
//! - `landsby config table|show` prints the settings table, or the effective settings.

#![allow(clippy::print_stdout)] // printing is what a command line does

mod demo;

use clap::{Parser, Subcommand};
use landsby_domain::Role;
use landsby_platform::auth::{Claims, DEV_ISSUER, dev_signing_key};
use landsby_platform::config::{Config, settings_table};
use landsby_platform::db::DbPool;
use landsby_platform::server::ServiceDef;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Every service there is, in the order they start.
const SERVICES: &[ServiceDef] = &[
    landsby_case::SERVICE,
    landsby_visitation::SERVICE,
    landsby_notification::SERVICE,
    landsby_worker::SERVICE,
];

#[derive(Debug, Parser)]
#[command(
    name = "landsby",
    version,
    about = "Visitation and safe reunification for child welfare services."
)]
struct Cli {
    /// A TOML configuration file (also LANDSBY_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every service in one process on SQLite, in dev mode, until Ctrl-C.
    Up {
        /// Where the databases and the dev signing key live.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Prints a dev token signed with the data directory's dev key (the token alone on the last line).
    Token {
        /// The data directory whose dev key signs.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The agency's municipality number.
        #[arg(long, default_value = "0301")]
        agency: String,
        /// A role; repeat for more.
        #[arg(long = "role", default_value = "caseworker")]
        roles: Vec<String>,
        /// The subject.
        #[arg(long, default_value = "dev-caseworker")]
        subject: String,
        /// A team the subject belongs to (a team lead works its cases); repeat for more.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// How long the token is valid.
        #[arg(long, default_value = "8h", value_parser = humantime_serde::re::humantime::parse_duration)]
        ttl: Duration,
    },
    /// Drives a sample case through the staircase against a running `landsby up` (same settings
    /// and data directory) and prints what the system did by itself at each step.
    Demo {
        /// The data directory whose dev key signs the demo's tokens.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The agency's municipality number.
        #[arg(long, default_value = "0301")]
        agency: String,
    },
    /// Applies every service's migrations to its database, then exits.
    Migrate,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Prints settings.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Checks every service's audit log against its hash chain: prints each chain's head (record it
    /// elsewhere) and every row changed, removed, reordered or slipped in; fails if there is one.
    Verify {
        /// Only this service (case, visitation, notification, worker).
        #[arg(long)]
        service: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// The table of every setting, its variable and its default (as in the README).
    Table,
    /// The settings in effect, with secrets redacted, as JSON.
    Show,
    /// Checks the settings in effect for one part (case, visitation, notification, worker, sweep,
    /// migrate): they parse, their values are valid, and nothing the part needs is missing.
    Check {
        /// The part: case, visitation, notification, worker, sweep or migrate.
        #[arg(long)]
        part: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = cli.config.as_deref();
    let result = match cli.command {
        Command::Up { data_dir } => return up(file, data_dir),
        Command::Token {
            data_dir,
            agency,
            roles,
            subject,
            teams,
            ttl,
        } => token(file, data_dir, &agency, &roles, &subject, &teams, ttl),
        Command::Demo { data_dir, agency } => demo(file, data_dir, &agency),
        Command::Migrate => migrate(file),
        Command::Audit {
            what: AuditCommand::Verify { service },
        } => verify_audit(file, service.as_deref()),
        Command::Config {
            what: ConfigCommand::Table,
        } => {
            print!("{}", settings_table());
            Ok(())
        }
        Command::Config {
            what: ConfigCommand::Check { part },
        } => Config::load(file)
            .and_then(|c| c.require_for(&part))
            .map_err(|e| e.to_string())
            .map(|()| println!("{part}: the settings are complete and valid")),
        Command::Config {
            what: ConfigCommand::Show,
        } => Config::load(file)
            .map_err(|e| e.to_string())
            .and_then(|c| serde_json::to_string_pretty(&c).map_err(|e| e.to_string()))
            .map(|json| println!("{json}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("landsby: {e}");
            ExitCode::FAILURE
        }
    }
}

fn up(file: Option<&std::path::Path>, data_dir: Option<PathBuf>) -> ExitCode {
    let config = match dev_config(file, data_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("landsby up: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = config.data_dir.clone();
    landsby_platform::cli::block_on(config, SERVICES, |running| {
        println!("landsby is up (dev mode; data in {}):", data_dir.display());
        for server in running {
            println!(
                "  {:<14} {}   database {}",
                server.name, server.addr, server.database
            );
        }
        println!(
            "Get a token:   landsby token --data-dir {} --role caseworker",
            data_dir.display()
        );
        println!("Stop with Ctrl-C.");
    })
}

/// The settings `landsby up` runs with: dev mode, and the data directory if one is given.
fn dev_config(file: Option<&std::path::Path>, data_dir: Option<PathBuf>) -> Result<Config, String> {
    Config::load_with(file, |c| {
        c.dev_mode = true;
        if let Some(dir) = data_dir {
            c.data_dir = dir;
        }
    })
    .map_err(|e| e.to_string())
}

/// A token signed with the data directory's dev key.
fn dev_token(
    config: &Config,
    agency: &str,
    roles: &[Role],
    subject: &str,
    teams: &[String],
    ttl: Duration,
) -> Result<(String, Claims), String> {
    if landsby_domain::AgencyId::parse(agency).is_none() {
        return Err("--agency must be a 4-digit municipality number".into());
    }
    let (key, _) = dev_signing_key(&config.data_dir).map_err(|e| e.to_string())?;
    let claims = Claims::new(
        subject,
        agency,
        roles,
        DEV_ISSUER,
        &config.auth.audience,
        ttl,
    );
    let claims = Claims {
        teams: teams.to_vec(),
        ..claims
    };
    Ok((key.sign(&claims)?, claims))
}

fn token(
    file: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
    agency: &str,
    roles: &[String],
    subject: &str,
    teams: &[String],
    ttl: Duration,
) -> Result<(), String> {
    let config = dev_config(file, data_dir)?;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {r:?}; roles are {}", known.join(", "))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (token, claims) = dev_token(&config, agency, &roles, subject, teams, ttl)?;
    eprintln!(
        "A dev token for {subject} ({}) in agency {agency}, valid {}, signed with {}:",
        claims.roles.join(", "),
        humantime_serde::re::humantime::format_duration(ttl),
        config
            .data_dir
            .join(landsby_platform::auth::DEV_KEY_FILE)
            .display()
    );
    println!("{token}");
    Ok(())
}

/// Runs the demo against the services `landsby up` started with the same settings.
fn demo(
    file: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
    agency: &str,
) -> Result<(), String> {
    let config = dev_config(file, data_dir)?;
    let hour = Duration::from_secs(3600);
    let teams = [demo::TEAM.to_owned()];
    let token = |subject: &str, role: Role| {
        dev_token(&config, agency, &[role], subject, &teams, hour).map(|(t, _)| t)
    };
    let tokens = demo::Tokens {
        caseworker: token("demo-caseworker", Role::Caseworker)?,
        caseworker_subject: "demo-caseworker".into(),
        team_lead: token("demo-team-lead", Role::TeamLead)?,
        admin: token("demo-admin", Role::AgencyAdmin)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let tls = landsby_platform::tls::Tls::from_config(&config).map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let channel = |def: &ServiceDef| {
            let mut addr = (def.config)(&config).listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            landsby_platform::client::channel(&format!("{scheme}://{addr}"), tls.as_ref())
                .map_err(|e| e.to_string())
        };
        let channels = demo::Channels {
            case: channel(&landsby_case::SERVICE)?,
            visitation: channel(&landsby_visitation::SERVICE)?,
            notification: channel(&landsby_notification::SERVICE)?,
            worker: channel(&landsby_worker::SERVICE)?,
        };
        // `landsby up` listens before its databases are migrated: start once all four serve.
        for (name, ch) in [
            ("case", &channels.case),
            ("visitation", &channels.visitation),
            ("notification", &channels.notification),
            ("worker", &channels.worker),
        ] {
            landsby_platform::client::wait_serving(ch, Duration::from_secs(60))
                .await
                .map_err(|e| format!("the {name} service is {e}"))?;
        }
        demo::run(channels, tokens).await
    })
}

fn verify_audit(file: Option<&std::path::Path>, only: Option<&str>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    if let Some(name) = only
        && !SERVICES.iter().any(|d| d.name == name)
    {
        return Err(format!("unknown service {name:?}"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut problems = 0;
        for def in SERVICES.iter().filter(|d| only.is_none_or(|n| n == d.name)) {
            let url = (def.config)(&config).database_url(&config.data_dir, def.name);
            let db = DbPool::connect_lazy(&url, &config.database, def.name)
                .map_err(|e| e.to_string())?;
            let report = landsby_platform::audit_chain::verify(&db)
                .await
                .map_err(|e| format!("{}: {e}", def.name))?;
            db.close().await;
            let head = report
                .head
                .as_ref()
                .map_or("none".to_owned(), |(id, hash)| format!("row {id} {hash}"));
            println!(
                "{}: {} rows, {} sealed, {} not sealed yet; head {head}",
                def.name, report.rows, report.sealed, report.pending
            );
            for problem in &report.problems {
                println!("{}: {problem}", def.name);
            }
            problems += report.problems.len();
        }
        if problems == 0 {
            println!("the audit chains hold");
            Ok(())
        } else {
            Err(format!("{problems} audit rows do not match their chain"))
        }
    })
}

fn migrate(file: Option<&std::path::Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        for def in SERVICES {
            let url = (def.config)(&config).database_url(&config.data_dir, def.name);
            let db = DbPool::connect_lazy(&url, &config.database, def.name)
                .map_err(|e| e.to_string())?;
            db.migrate(&def.migrations).await.map_err(|e| {
                format!(
                    "{}: migrations failed on {}: {}",
                    def.name,
                    db.describe(),
                    landsby_platform::db::describe_migrate_error(&e)
                )
            })?;
            println!("{}: {} is up to date", def.name, db.describe());
            db.close().await;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use landsby_domain::Role;
    use landsby_platform::tls::Process;

    /// The role `service` may call exactly what the worker calls (its certificate's list) and what
    /// the visitation service reads from the case service on its behalf when it puts a computed scope
    /// in force: checked against every service's role table.
    #[test]
    fn the_service_role_grants_exactly_the_calls_the_worker_makes() {
        let mut granted: Vec<&str> = Vec::new();
        let mut take = |rpcs: &mut dyn Iterator<Item = (&'static str, &'static [Role])>| {
            granted.extend(
                rpcs.filter(|(_, roles)| roles.contains(&Role::Service))
                    .map(|(method, _)| method),
            );
        };
        take(
            &mut landsby_case::api::Rpc::ALL
                .iter()
                .map(|r| (r.method(), r.allowed())),
        );
        take(
            &mut landsby_visitation::api::Rpc::ALL
                .iter()
                .map(|r| (r.method(), r.allowed())),
        );
        take(
            &mut landsby_notification::api::Rpc::ALL
                .iter()
                .map(|r| (r.method(), r.allowed())),
        );
        take(
            &mut landsby_worker::api::Rpc::ALL
                .iter()
                .map(|r| (r.method(), r.allowed())),
        );
        granted.sort_unstable();
        let mut calls = Process::Worker.calls().to_vec();
        calls.extend(Process::Visitation.calls());
        calls.sort_unstable();
        // The visitation service reads snapshots on the worker's behalf, as the worker does.
        calls.dedup();
        assert_eq!(granted, calls);
    }
}

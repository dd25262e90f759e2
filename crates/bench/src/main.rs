//! `landsby-bench`: how close the suite comes to what this machine can do, measured side by side.
//!
//! `landsby-bench compare` starts the four processes on fresh databases (SQLite, PostgreSQL or
//! both), seeds cases through the real API, and then, in each of several rounds, drives the same
//! number of concurrent clients against the baselines and the product in turn:
//!
//! - *tonic: empty RPC* — a bare tonic server with the same TLS, answering at once (the gRPC
//!   ceiling);
//! - *tonic+sqlx: one PK read* — the same server reading one case by primary key through sqlx from
//!   the case service's own database (one gRPC call, one indexed read);
//! - *pgbench -S* and *pgbench: one INSERT per transaction* — the database's own limits
//!   (PostgreSQL only);
//! - *GetCase* (token verified, need to know checked, a durable audit row), *ScheduleVisit* (the
//!   case read at the case service, the visit, its event and its audit row in one transaction),
//!   and *the mix* a caseworker platform makes.
//!
//! Each figure is the median of the rounds, and each product figure is given as a ratio of its
//! baseline from the same run. Also measured: each process's memory idle and at its peak, and
//! `landsby up`'s cold start to all four SERVING. See docs/performance.md.

#![allow(clippy::print_stdout, reason = "a report for people, on stdout")]

use clap::{Parser, Subcommand};
use landsby_bench::load::{Figures, Outcome};
use landsby_bench::workloads::{Kind, Platform, Seeded};
use landsby_bench::{baseline, load, suite};
use landsby_testkit::Backend;
use landsby_testkit::process::Spawned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "landsby-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Baselines and product side by side, on each database; prints the tables.
    Compare {
        /// `sqlite`, `postgres` or both (comma-separated).
        #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
        backends: Vec<String>,
        /// Concurrent clients of every workload.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// The measured window of each workload in each round.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Calls before the window, not counted.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        warmup: Duration,
        /// Rounds; each figure is their median.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Cases seeded.
        #[arg(long, default_value_t = 200)]
        cases: usize,
        /// Workloads, of: empty, read, get-case, schedule-visit, mix, pgbench.
        #[arg(
            long,
            default_value = "empty,read,get-case,schedule-visit,mix,pgbench",
            value_delimiter = ','
        )]
        workloads: Vec<String>,
        /// Cold starts of `landsby up` (0: none).
        #[arg(long, default_value_t = 5)]
        cold_starts: usize,
    },
    /// The baseline server (started by `compare`).
    Baseline {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        database_url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("landsby-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Baseline {
                listen,
                database_url,
            } => baseline::serve(listen, &database_url).await,
            Command::Compare {
                backends,
                clients,
                duration,
                warmup,
                rounds,
                cases,
                workloads,
                cold_starts,
            } => {
                let plan = Plan {
                    clients,
                    duration,
                    warmup,
                    rounds: rounds.max(1),
                    cases: cases.max(1),
                    workloads,
                };
                compare(&backends, &plan, cold_starts).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("landsby-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Plan {
    clients: usize,
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    cases: usize,
    workloads: Vec<String>,
}

impl Plan {
    fn has(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }
}

async fn compare(backends: &[String], plan: &Plan, cold_starts: usize) -> Result<(), String> {
    landsby_platform::client::install_crypto();
    println!(
        "landsby-bench compare: {} clients, {} s windows after {} s warm-up, median of {} rounds, \
         {} cases; {} cores",
        plan.clients,
        plan.duration.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        plan.rounds,
        plan.cases,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if cold_starts > 0 {
        let mut times = Vec::new();
        let mut memory = Vec::new();
        for _ in 0..cold_starts {
            let (took, m) = suite::cold_start().await?;
            times.push(took);
            memory.push(m.now);
        }
        times.sort();
        memory.sort_by(f64::total_cmp);
        println!(
            "\n`landsby up` cold start to all four SERVING (fresh SQLite data directory): median \
             {} ms over {} starts (min {} ms, max {} ms); RSS then {:.1} MiB (the four services in \
             one process)",
            times[times.len() / 2].as_millis(),
            times.len(),
            times[0].as_millis(),
            times[times.len() - 1].as_millis(),
            memory[memory.len() / 2],
        );
    }
    for name in backends {
        let backend = match name.as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => return Err(format!("unknown backend {other:?}: sqlite or postgres")),
        };
        one_backend(name, backend, plan).await?;
    }
    Ok(())
}

/// The rows of one backend's table, each the runs of one workload.
#[derive(Default)]
struct Table {
    rows: BTreeMap<String, Vec<Figures>>,
    order: Vec<String>,
}

impl Table {
    fn add(&mut self, name: &str, f: Figures) {
        if !self.rows.contains_key(name) {
            self.order.push(name.to_owned());
        }
        self.rows.entry(name.to_owned()).or_default().push(f);
    }

    fn add_outcome(&mut self, workload: &str, o: &Outcome) {
        let figures = o.figures();
        if figures.len() == 1 {
            self.add(workload, o.total());
            return;
        }
        self.add(&format!("{workload}: all"), o.total());
        for (rpc, f) in figures {
            self.add(&format!("{workload}: {rpc}"), f);
        }
    }

    fn median(&self, name: &str) -> Option<Figures> {
        self.rows.get(name).map(|runs| Figures::median(runs))
    }
}

async fn one_backend(name: &str, backend: Backend, plan: &Plan) -> Result<(), String> {
    eprintln!("[{name}] starting the four processes");
    let running = suite::Running::start(backend).await?;
    let fresh = running.memory();
    eprintln!("[{name}] seeding {} cases", plan.cases);
    let seeded_at = std::time::Instant::now();
    let families = running.seed(plan.cases, 8).await;
    if families.is_empty() {
        return Err("no case could be seeded".into());
    }
    let seeding = seeded_at.elapsed();
    // Let the worker finish what the seeding started before "idle".
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = running.memory();
    let seeded = Seeded::new(families);

    let mut base = Spawned::start({
        let mut cmd = landsby_testkit::process::command("landsby-bench");
        cmd.arg("baseline")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database-url")
            .arg(&running.case_db_url)
            .envs(suite::Running::case_tls_env());
        cmd
    });
    let base_addr: SocketAddr = base.wait_for(Duration::from_secs(30), |line| {
        line.strip_prefix("listening ")?.trim().parse().ok()
    });
    let pgbench = if backend == Backend::Postgres && plan.has("pgbench") {
        eprintln!("[{name}] preparing pgbench");
        Some(baseline::Pgbench::prepare(&landsby_testkit::postgres_admin_url(), 10).await?)
    } else {
        None
    };

    let channels = |n: usize, addr_of: &dyn Fn() -> tonic::transport::Channel| {
        (0..n).map(|_| addr_of()).collect::<Vec<_>>()
    };
    let mut table = Table::default();
    let ids = Arc::new(seeded.case_ids());
    let token = running.caseworker_token();
    let (w, d) = (plan.warmup, plan.duration);
    for round in 1..=plan.rounds {
        eprintln!("[{name}] round {round} of {}", plan.rounds);
        if plan.has("empty") {
            let clients = channels(plan.clients, &|| landsby_testkit::channel(base_addr))
                .into_iter()
                .map(baseline::Baseline::empty)
                .collect();
            table.add_outcome("tonic: empty RPC", &load::drive(clients, w, d).await);
        }
        if plan.has("read") {
            let clients = channels(plan.clients, &|| landsby_testkit::channel(base_addr))
                .into_iter()
                .enumerate()
                .map(|(i, ch)| baseline::Baseline::read(ch, ids.clone(), i as u64))
                .collect();
            table.add_outcome("tonic+sqlx: one PK read", &load::drive(clients, w, d).await);
        }
        if plan.has("get-case") {
            let outcome = product(&running, &seeded, &token, Kind::GetCase, plan).await;
            table.add_outcome("GetCase", &outcome);
        }
        if let Some(pg) = &pgbench {
            let (c, secs) = (plan.clients, d.as_secs().max(1));
            let tps = tokio::task::block_in_place(|| pg.select_only(c, secs))?;
            table.add(
                "pgbench -S",
                Figures {
                    per_second: tps,
                    ..Figures::default()
                },
            );
            let tps = tokio::task::block_in_place(|| pg.one_insert(c, secs))?;
            table.add(
                "pgbench: one INSERT per transaction",
                Figures {
                    per_second: tps,
                    ..Figures::default()
                },
            );
        }
        if plan.has("schedule-visit") {
            let outcome = product(&running, &seeded, &token, Kind::ScheduleVisit, plan).await;
            table.add_outcome("ScheduleVisit", &outcome);
        }
        if plan.has("mix") {
            let outcome = product(&running, &seeded, &token, Kind::Mix, plan).await;
            table.add_outcome("mix", &outcome);
        }
    }
    let loaded = running.memory();
    base.signal("KILL");
    let _ = base.wait_exit(Duration::from_secs(10));

    print_table(name, plan, &table);
    println!(
        "\nSeeding: {} cases in {:.1} s ({:.0} cases/s, each with its first plan made by the worker).",
        seeded.families.len(),
        seeding.as_secs_f64(),
        seeded.families.len() as f64 / seeding.as_secs_f64()
    );
    println!(
        "\n| process | RSS fresh (MiB) | RSS idle after seeding | RSS after the load | peak |"
    );
    println!("|---|---|---|---|---|");
    for (((process, f), (_, i)), (_, l)) in fresh.iter().zip(&idle).zip(&loaded) {
        println!(
            "| {process} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f.now, i.now, l.now, l.peak
        );
    }
    Ok(())
}

/// The product under one workload: `plan.clients` caseworker platforms, each with its own
/// connections to the case and visitation services.
async fn product(
    running: &suite::Running,
    seeded: &Arc<Seeded>,
    token: &str,
    kind: Kind,
    plan: &Plan,
) -> Outcome {
    let clients = (0..plan.clients)
        .map(|i| {
            Platform::new(
                kind,
                token.to_owned(),
                landsby_testkit::channel(running.case_addr),
                landsby_testkit::channel(running.visitation_addr),
                seeded.clone(),
                i as u64 + 1,
            )
        })
        .collect();
    load::drive(clients, plan.warmup, plan.duration).await
}

/// Which baseline a product row is measured against.
fn baseline_of(row: &str) -> Option<&'static str> {
    if row.starts_with("GetCase") {
        Some("tonic+sqlx: one PK read")
    } else if row.starts_with("ScheduleVisit") {
        Some("pgbench: one INSERT per transaction")
    } else if row.starts_with("tonic+sqlx") {
        Some("tonic: empty RPC")
    } else {
        None
    }
}

fn print_table(name: &str, plan: &Plan, table: &Table) {
    println!(
        "\n### {name}: {} clients, median of {} rounds\n",
        plan.clients, plan.rounds
    );
    println!("| workload | calls/s | p50 ms | p95 ms | p99 ms | ratio to baseline | codes |");
    println!("|---|---|---|---|---|---|---|");
    let ms = |d: Duration| {
        if d.is_zero() {
            "–".to_owned()
        } else {
            format!("{:.2}", d.as_secs_f64() * 1000.0)
        }
    };
    for row in &table.order {
        let Some(f) = table.median(row) else { continue };
        let ratio = baseline_of(row)
            .and_then(|b| table.median(b))
            .filter(|b| b.per_second > 0.0)
            .map_or("".to_owned(), |b| {
                format!(
                    "{:.2}× {}",
                    f.per_second / b.per_second,
                    baseline_of(row).unwrap_or_default()
                )
            });
        println!(
            "| {row} | {:.0} | {} | {} | {} | {ratio} | {} |",
            f.per_second,
            ms(f.p50),
            ms(f.p95),
            ms(f.p99),
            f.codes_text()
        );
    }
}

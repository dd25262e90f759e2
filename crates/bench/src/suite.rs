//! The suite under load, as it runs in production: the case, visitation and notification services
//! and the worker as four processes, each on a fresh database of its own (SQLite files or
//! PostgreSQL databases), mutual TLS between everything, tokens of an issuer they trust; and
//! `landsby up` for the cold start.

use crate::workloads::Family;
use landsby_domain::Role;
use landsby_testkit::flow::{Suite, TestIssuer};
use landsby_testkit::process::{Spawned, command, service};
use landsby_testkit::{AGENCY, Backend, ServingStatus, TestDb, keys};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The four processes and their databases; they stop when this is dropped.
pub struct Running {
    pub suite: Suite,
    pub case_addr: SocketAddr,
    pub visitation_addr: SocketAddr,
    pub case_db_url: String,
    processes: Vec<(&'static str, Spawned)>,
    _dbs: Vec<TestDb>,
}

impl Running {
    pub async fn start(backend: Backend) -> Result<Self, String> {
        let dbs = [
            TestDb::new(backend).await,
            TestDb::new(backend).await,
            TestDb::new(backend).await,
            TestDb::new(backend).await,
        ];
        let url = |a: SocketAddr| format!("https://{a}");
        let (case, case_addr) = service("case", &dbs[0], &[]);
        let (visitation, visitation_addr) = service(
            "visitation",
            &dbs[1],
            &[("LANDSBY_ENDPOINTS__CASE", url(case_addr))],
        );
        let (notification, notification_addr) = service(
            "notification",
            &dbs[2],
            &[("LANDSBY_ENDPOINTS__CASE", url(case_addr))],
        );
        let token = keys().token("landsby-worker", AGENCY, &[Role::Service]);
        let dir = dbs[3].dir();
        std::fs::write(dir.join(format!("{AGENCY}.jwt")), token).map_err(|e| e.to_string())?;
        let (worker, worker_addr) = service(
            "worker",
            &dbs[3],
            &[
                ("LANDSBY_ENDPOINTS__CASE", url(case_addr)),
                ("LANDSBY_ENDPOINTS__VISITATION", url(visitation_addr)),
                ("LANDSBY_ENDPOINTS__NOTIFICATION", url(notification_addr)),
                (
                    "LANDSBY_JOBS__TOKEN_FILE",
                    dir.join("{agency}.jwt").display().to_string(),
                ),
                ("LANDSBY_JOBS__SWEEP_SCHEDULE", String::new()),
            ],
        );
        let mut channels = Vec::new();
        for addr in [case_addr, visitation_addr, notification_addr, worker_addr] {
            let channel = landsby_testkit::channel(addr);
            landsby_platform::client::wait_serving(&channel, Duration::from_secs(60)).await?;
            channels.push(channel);
        }
        let [case_ch, visitation_ch, notification_ch, worker_ch] =
            <[_; 4]>::try_from(channels).map_err(|_| "four channels".to_owned())?;
        Ok(Self {
            suite: Suite {
                case: case_ch,
                visitation: visitation_ch,
                notification: notification_ch,
                worker: worker_ch,
                issuer: Arc::new(TestIssuer),
            },
            case_addr,
            visitation_addr,
            case_db_url: dbs[0].url().to_owned(),
            processes: vec![
                ("case", case),
                ("visitation", visitation),
                ("notification", notification),
                ("worker", worker),
            ],
            _dbs: dbs.into_iter().collect(),
        })
    }

    /// Each process's resident memory now and at its peak, in MiB.
    pub fn memory(&self) -> Vec<(&'static str, Memory)> {
        self.processes
            .iter()
            .map(|(name, p)| (*name, Memory::of(p.id())))
            .collect()
    }

    /// Each process's CPU time so far (user and system), in seconds.
    pub fn cpu(&self) -> Vec<(&'static str, f64)> {
        self.processes
            .iter()
            .map(|(name, p)| (*name, cpu_seconds(p.id())))
            .collect()
    }

    /// Seeds `n` cases (a child in foster care, the mother with visitation rights, a foster parent
    /// and the school), `at_once` at a time, each once the worker has made the mother's first plan.
    pub async fn seed(&self, n: usize, at_once: usize) -> Vec<Family> {
        let mut families = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let wave = left.min(at_once);
            let mut tasks = Vec::new();
            for _ in 0..wave {
                let suite = self.suite.clone();
                tasks.push(tokio::spawn(async move {
                    let f = suite.family(false).await;
                    Family {
                        case_id: f.case.id,
                        mother_id: f.mother_id,
                    }
                }));
            }
            for t in tasks {
                if let Ok(f) = t.await {
                    families.push(f);
                }
            }
            left -= wave;
        }
        families
    }

    /// A caseworker's token (the caseworker of every seeded case).
    pub fn caseworker_token(&self) -> String {
        keys().token("caseworker-1", AGENCY, &[Role::Caseworker])
    }

    /// The identity-proving TLS settings of the case service, for a baseline server beside it.
    pub fn case_tls_env() -> [(&'static str, String); 4] {
        landsby_testkit::pki::tls_env("landsby/case")
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// VmRSS, MiB.
    pub now: f64,
    /// VmHWM (the peak), MiB.
    pub peak: f64,
}

impl Memory {
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Self {
            now: field("VmRSS:"),
            peak: field("VmHWM:"),
        }
    }
}

/// The CPU time (user and system) a process has used, in seconds, from `/proc/<pid>/stat`; zero
/// when it cannot be read.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// `landsby up` on a fresh data directory, from the spawn until all four services answer SERVING;
/// and its resident memory then.
pub async fn cold_start() -> Result<(Duration, Memory), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cmd = command("landsby");
    cmd.arg("up").arg("--data-dir").arg(dir.path());
    for name in ["CASE", "VISITATION", "NOTIFICATION", "WORKER"] {
        cmd.env(format!("LANDSBY_{name}__LISTEN"), "127.0.0.1:0");
    }
    let began = Instant::now();
    let mut up = Spawned::start(cmd);
    let mut addrs = Vec::new();
    for name in ["case", "visitation", "notification", "worker"] {
        addrs.push(up.wait_for(Duration::from_secs(30), |line| {
            let mut words = line.split_whitespace();
            (words.next()? == name)
                .then(|| words.next()?.parse::<SocketAddr>().ok())
                .flatten()
        }));
    }
    let mut waiting: Vec<_> = addrs
        .into_iter()
        .map(landsby_testkit::plain_channel)
        .collect();
    let limit = began + Duration::from_secs(30);
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for ch in waiting {
            if landsby_testkit::health(&ch).await != Some(ServingStatus::Serving) {
                still.push(ch);
            }
        }
        waiting = still;
        if Instant::now() > limit {
            return Err("landsby up did not serve within 30 s".into());
        }
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let took = began.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let memory = Memory::of(up.id());
    up.signal("INT");
    let _ = up.wait_exit(Duration::from_secs(30));
    Ok((took, memory))
}

//! The review sweep and the event-to-notification latency, with every part real and in-process:
//! the case, visitation and notification services on fresh databases, the worker's jobs on its own.
//!
//! - *sweep*: seeds open cases (a child, a mother with visitation rights) through the case
//!   service's gRPC API, analyses the PostgreSQL tables as autovacuum would have (see [`analyze`];
//!   every minute after, and after each sweep once the notices it queued are delivered), then runs `landsby-worker sweep --once` (`sweep::once`) over them and
//!   reports cases recomputed per second (each: visits read and synced, the scope computed and
//!   applied, the due reviews computed and synced, reminders looked for, the first plan told).
//! - *latency*: the worker serving; for each of a number of cases, a step change is approved and the
//!   times are taken until the step 2 scope is in force at the visitation service and until the
//!   mother's step_changed notice is queued at the notification service; p50 and p95.
//!
//! `cargo bench -p landsby-worker --bench sweep` (PostgreSQL at 127.0.0.1:5432, or
//! `LANDSBY_TEST_DATABASE_URL`). `BENCH_CASES` (default 100000) sets the sweep's cases,
//! `BENCH_STEPS` (default 40) the latency's step changes, `BENCH_BACKENDS` (default
//! `sqlite,postgres`) the databases, `BENCH_PARTS` (default `sweep,latency`) what runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use landsby_domain::Role;
use landsby_proto::case as cpb;
use landsby_testkit::flow::{Suite, TestIssuer};
use landsby_testkit::{AGENCY, Backend, ServingStatus, TestDb, TestServer, keys};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Callers seeding at once.
const SEEDERS: usize = 8;

struct Services {
    case: TestServer,
    visitation: TestServer,
    notification: TestServer,
}

async fn services(backend: Backend) -> Services {
    // Seeding is hundreds of calls a second by one caseworker: no per-caller limit here.
    let case = TestServer::start_with(landsby_case::SERVICE, TestDb::new(backend).await, |c| {
        c.server.caller_rate = 0
    })
    .await;
    case.wait_for(ServingStatus::Serving).await;
    let url = format!("https://{}", case.addr);
    let visitation = TestServer::start_with(
        landsby_visitation::SERVICE,
        TestDb::new(backend).await,
        |c| c.endpoints.case = url,
    )
    .await;
    visitation.wait_for(ServingStatus::Serving).await;
    let notification = TestServer::start(landsby_notification::SERVICE, backend).await;
    Services {
        case,
        visitation,
        notification,
    }
}

/// The worker's settings for these services, its database and its token.
fn worker_config(s: &Services, db: &TestDb) -> landsby_platform::config::Config {
    let dir = db.dir();
    let token = keys().token("landsby-worker", AGENCY, &[Role::Service]);
    std::fs::write(dir.join(format!("{AGENCY}.jwt")), token).unwrap();
    let mut c = landsby_testkit::test_config(&dir);
    landsby_testkit::pki::configure(&mut c, "landsby/worker");
    landsby_testkit::set_database_url(&mut c, landsby_worker::SERVICE, db.url());
    c.endpoints.case = format!("https://{}", s.case.addr);
    c.endpoints.visitation = format!("https://{}", s.visitation.addr);
    c.endpoints.notification = format!("https://{}", s.notification.addr);
    c.jobs.token_file = dir.join("{agency}.jwt").display().to_string();
    c.jobs.agencies = vec![AGENCY.into()];
    c.jobs.poll_interval = Duration::from_millis(20);
    c.jobs.concurrency = 8;
    c.jobs.sweep_batch_size = 100;
    c.jobs.sweep_schedule = String::new();
    c
}

/// What autovacuum does in a deployment: statistics on every table of these PostgreSQL databases
/// (SQLite plans without them). This machine's PostgreSQL runs with `autovacuum = off` (its CI
/// configuration), so nothing would ever analyse the tables the bench grows from nothing; a plan
/// prepared on an almost empty table (a sequential scan) would then be kept for the whole run.
async fn analyze(urls: &[String]) {
    for url in urls {
        if url.starts_with("postgres") {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();
        }
    }
}

/// [`analyze`] every minute, autovacuum's default round, until dropped.
struct Autovacuum(tokio::task::JoinHandle<()>);

impl Autovacuum {
    fn start(urls: Vec<String>) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                analyze(&urls).await;
            }
        }))
    }
}

impl Drop for Autovacuum {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until the notification service has tried every notice queued so far (at most two
/// minutes): in a deployment the first night's notices are long delivered before the next night, so
/// a sweep measured while thousands are still going out would measure the deliveries too.
async fn delivered(notification: &TestDb) {
    const PENDING: &str = "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'";
    let pool = notification.pool();
    let start = Instant::now();
    loop {
        let pending: i64 = match &pool {
            landsby_platform::db::DbPool::Postgres(p) => {
                sqlx::query_scalar(PENDING).fetch_one(p).await.unwrap()
            }
            landsby_platform::db::DbPool::Sqlite(p) => {
                sqlx::query_scalar(PENDING).fetch_one(p).await.unwrap()
            }
        };
        if pending == 0 || start.elapsed() > Duration::from_secs(120) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn suite(s: &Services, worker: Option<&TestServer>) -> Suite {
    Suite {
        case: s.case.channel(),
        visitation: s.visitation.channel(),
        notification: s.notification.channel(),
        worker: worker.map_or_else(|| s.notification.channel(), TestServer::channel),
        issuer: Arc::new(TestIssuer),
    }
}

async fn seed(suite: &Suite, n: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for part in 0..SEEDERS {
        let suite = suite.clone();
        tasks.push(tokio::spawn(async move {
            let mut cases = suite.caseworker();
            for _ in (part..n).step_by(SEEDERS) {
                let case = cases
                    .create(landsby_testkit::case::new_case())
                    .await
                    .unwrap();
                cases
                    .add_member(&case.id, landsby_testkit::case::mother())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn sweep(backend: Backend, n: usize) {
    let s = services(backend).await;
    let db = TestDb::new(backend).await;
    let urls: Vec<String> = [&s.case.db, &s.visitation.db, &s.notification.db, &db]
        .iter()
        .map(|d| d.url().to_owned())
        .collect();
    let _autovacuum = Autovacuum::start(urls.clone());
    let seeded = seed(&suite(&s, None), n).await;
    println!("{backend:?}: seeded {n} cases at {seeded:.0}/s");
    // Tables analysed as a deployment's would be by the night of a sweep.
    analyze(&urls).await;
    // The first sweep computes every case for the first time (its first plan made and told); the
    // second is a night when nothing changed.
    for night in [
        "first sweep (every plan new)",
        "second sweep (nothing changed)",
    ] {
        let config = worker_config(&s, &db);
        let start = Instant::now();
        let done = landsby_worker::sweep::once(config).await.unwrap();
        let took = start.elapsed();
        let sweep = &done[0];
        assert_eq!(sweep.cases_total as usize, n);
        assert_eq!(sweep.counts.cases_done as usize, n);
        println!(
            "{backend:?}: {night}: {n} cases in {:.1} s: {:.0} cases/s ({} batches, {} failed)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            sweep.batches_total,
            sweep.counts.cases_failed
        );
        delivered(&s.notification.db).await;
        analyze(&urls).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(backend: Backend, steps: usize) {
    let s = services(backend).await;
    let db = TestDb::new(backend).await;
    let config = worker_config(&s, &db);
    let worker = TestServer::start_with(landsby_worker::SERVICE, db, |c| {
        c.endpoints = config.endpoints.clone();
        c.jobs = config.jobs.clone();
    })
    .await;
    worker.wait_for(ServingStatus::Serving).await;
    let suite = suite(&s, Some(&worker));
    let mut applied = Vec::new();
    let mut queued = Vec::new();
    for _ in 0..steps {
        let mut f = suite.family(false).await;
        suite.admin().settled().await;
        suite.seed_readiness(&f).await;
        // Committed: the approval answers once the step change is in the case service.
        let case = suite.advance(&mut f).await;
        let committed = Instant::now();
        let mut visits = suite.visits();
        let mut notices = suite.notices();
        let (mut scope_at, mut notice_at) = (None, None);
        while scope_at.is_none() || notice_at.is_none() {
            if scope_at.is_none()
                && visits.plans(&f.case.id).await.iter().any(|p| {
                    p.computed_from.as_ref().is_some_and(|c| {
                        c.step() == cpb::Step::Involvement && c.case_version >= case.version
                    })
                })
            {
                scope_at = Some(committed.elapsed());
            }
            if notice_at.is_none()
                && notices
                    .summary(&f.case.id)
                    .await
                    .contains(&(f.mother_id.clone(), "step_changed".to_owned()))
            {
                notice_at = Some(committed.elapsed());
            }
            assert!(committed.elapsed() < Duration::from_secs(60), "no reaction");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        applied.push(scope_at.unwrap());
        queued.push(notice_at.unwrap());
    }
    applied.sort();
    queued.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{backend:?}: {steps} step changes: scope applied p50 {:.0} ms p95 {:.0} ms; notification queued p50 {:.0} ms p95 {:.0} ms",
        ms(percentile(&applied, 0.5)),
        ms(percentile(&applied, 0.95)),
        ms(percentile(&queued, 0.5)),
        ms(percentile(&queued, 0.95)),
    );
}

fn main() {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let cases: usize = var("BENCH_CASES", "100000").parse().expect("BENCH_CASES");
    let steps: usize = var("BENCH_STEPS", "40").parse().expect("BENCH_STEPS");
    let backends = var("BENCH_BACKENDS", "sqlite,postgres");
    let parts = var("BENCH_PARTS", "sweep,latency");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for backend in backends.split(',') {
            let backend = match backend.trim() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            if parts.contains("sweep") {
                sweep(backend, cases).await;
            }
            if parts.contains("latency") {
                latency(backend, steps).await;
            }
        }
    });
}

//! The worker across real processes: the heart flow with the three services and the worker as
//! four processes on PostgreSQL, the same flow through `landsby up` on SQLite, and a review sweep
//! over 1,000 cases whose worker is killed with SIGKILL and restarted under the same pod name.

use super::{service, serving, serving_plain};
use landsby_domain::Role;
use landsby_proto::case as cpb;
use landsby_proto::worker as wpb;
use landsby_testkit::flow::{DevIssuer, Family, Suite, TestIssuer};
use landsby_testkit::process::{Spawned, command};
use landsby_testkit::{AGENCY, Backend, TestDb, eventually, keys};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

/// The worker's token for [`AGENCY`] in `dir`, and the setting that points at it.
fn token_file(dir: &std::path::Path) -> (&'static str, String) {
    let token = keys().token("landsby-worker", AGENCY, &[Role::Service]);
    std::fs::write(dir.join(format!("{AGENCY}.jwt")), token).unwrap();
    (
        "LANDSBY_JOBS__TOKEN_FILE",
        dir.join("{agency}.jwt").display().to_string(),
    )
}

/// The case, visitation and notification services as three processes, each on its own PostgreSQL
/// database; they stop when this is dropped.
struct Services {
    case: SocketAddr,
    visitation: SocketAddr,
    notification: SocketAddr,
    running: Vec<(Spawned, TestDb)>,
}

/// Our crates' debug lines too, so that the canary has more to be missing from.
const DEBUG: (&str, &str) = (
    "LANDSBY_LOG__LEVEL",
    "info,landsby_platform=debug,landsby_case=debug,landsby_visitation=debug,\
     landsby_notification=debug,landsby_worker=debug,apalis=debug",
);

impl Services {
    async fn start() -> Self {
        let debug = (DEBUG.0, DEBUG.1.to_owned());
        let case_db = TestDb::new(Backend::Postgres).await;
        let (case_process, case) = service("case", &case_db, std::slice::from_ref(&debug));
        let visitation_db = TestDb::new(Backend::Postgres).await;
        let (visitation_process, visitation) = service(
            "visitation",
            &visitation_db,
            &[("LANDSBY_ENDPOINTS__CASE", url(case)), debug.clone()],
        );
        let notification_db = TestDb::new(Backend::Postgres).await;
        let (notification_process, notification) = service(
            "notification",
            &notification_db,
            &[("LANDSBY_ENDPOINTS__CASE", url(case)), debug],
        );
        Self {
            case,
            visitation,
            notification,
            running: vec![
                (case_process, case_db),
                (visitation_process, visitation_db),
                (notification_process, notification_db),
            ],
        }
    }
}

/// What each member of the family should have heard after a step change: the plan made at
/// creation and the step 2 plan, the step change; the caseworker the step change; the school
/// contact nothing.
fn heard_after_the_step_change(f: &Family) -> Vec<(String, String)> {
    let mut want = vec![
        (f.mother_id.clone(), "plan_changed".to_owned()),
        (f.mother_id.clone(), "plan_changed".to_owned()),
        (f.mother_id.clone(), "step_changed".to_owned()),
        (f.foster_id.clone(), "plan_changed".to_owned()),
        (f.foster_id.clone(), "plan_changed".to_owned()),
        (f.foster_id.clone(), "step_changed".to_owned()),
        ("caseworker-1".to_owned(), "step_changed".to_owned()),
    ];
    want.sort();
    want
}

/// A review advances the case from step 1 to 2; within a bound, the plan's scope is step 2's, a
/// step 2 review is due, and each member of the village has exactly what their role should hear.
/// Returns how long the worker took from the approval to the last notice.
async fn the_heart_flow(suite: &Suite, secret: bool) -> Duration {
    let mut f = suite.family(secret).await;
    let mut admin = suite.admin();
    admin.settled().await;
    suite.seed_readiness(&f).await;
    let approved = Instant::now();
    let case = suite.advance(&mut f).await;
    let mut visits = suite.visits();
    eventually!("the step 2 scope in force", {
        visits.plans(&f.case.id).await.into_iter().find(|p| {
            p.computed_from.as_ref().is_some_and(|c| {
                c.step() == cpb::Step::Involvement && c.case_version >= case.version
            })
        })
    });
    let mut cases = suite.caseworker();
    eventually!("a step 2 review due", {
        let reviews = cases
            .reviews(&f.case.id, cpb::ReviewStatus::Scheduled)
            .await;
        reviews
            .iter()
            .any(|r| r.computed_key.starts_with("step_review/involvement"))
            .then_some(())
    });
    let want = heard_after_the_step_change(&f);
    let mut notices = suite.notices();
    eventually!("each member's notices", {
        (notices.summary(&f.case.id).await == want).then_some(())
    });
    let took = approved.elapsed();
    admin.settled().await;
    assert_eq!(notices.summary(&f.case.id).await, want, "nothing more came");
    assert!(admin.jobs(wpb::JobStatus::Dead).await.is_empty());
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heart_flow_across_four_processes_on_postgres() {
    let _machine = super::MACHINE.read().await;
    let services = Services::start().await;
    let (case_addr, visitation_addr, notification_addr) =
        (services.case, services.visitation, services.notification);
    let worker_db = TestDb::new(Backend::Postgres).await;
    let (mut worker, worker_addr) = service(
        "worker",
        &worker_db,
        &[
            ("LANDSBY_ENDPOINTS__CASE", url(case_addr)),
            ("LANDSBY_ENDPOINTS__VISITATION", url(visitation_addr)),
            ("LANDSBY_ENDPOINTS__NOTIFICATION", url(notification_addr)),
            token_file(&worker_db.dir()),
            ("LANDSBY_JOBS__POLL_INTERVAL", "50ms".to_owned()),
            ("LANDSBY_JOBS__SWEEP_SCHEDULE", String::new()),
            (DEBUG.0, DEBUG.1.to_owned()),
        ],
    );
    let suite = Suite {
        case: serving(case_addr).await,
        visitation: serving(visitation_addr).await,
        notification: serving(notification_addr).await,
        worker: serving(worker_addr).await,
        issuer: Arc::new(TestIssuer),
    };
    let took = the_heart_flow(&suite, true).await;
    assert!(took < Duration::from_secs(30), "{took:?}");

    // The canary: the child's identity number and name and the secret foster home's address went
    // through every process; none of them is in any log line or job payload, and a refused request
    // does not repeat them.
    let case = landsby_testkit::case::new_case();
    let child = case.child.clone().unwrap();
    let home = case.placement.clone().unwrap().foster_home.unwrap();
    let street = home.address.clone().unwrap().street;
    let canaries = [
        child.national_id.clone(),
        child.given_name.clone(),
        child.family_name.clone(),
        street.clone(),
        home.name.clone(),
        "kari@example.no".to_owned(),
        "98765432".to_owned(),
    ];
    let mut cases = suite.caseworker();
    let mut wrong = case.clone();
    wrong.child.as_mut().unwrap().birth_date = Some(landsby_testkit::case::date(2019, 1, 1));
    let refused = cases.create(wrong).await.unwrap_err();
    let told = format!("{} {:?}", refused.message(), refused.details());
    let mut lines: Vec<String> = vec![told];
    let mut services = services;
    for (process, _) in &mut services.running {
        lines.extend(process.output());
    }
    lines.extend(worker.output());
    let payloads: Vec<String> = match worker_db.pool() {
        landsby_platform::db::DbPool::Postgres(p) => {
            sqlx::query_scalar("SELECT convert_from(job, 'UTF8') FROM apalis.jobs")
                .fetch_all(&p)
                .await
                .unwrap()
        }
        landsby_platform::db::DbPool::Sqlite(_) => unreachable!("PostgreSQL"),
    };
    assert!(payloads.len() > 3, "{} job payloads", payloads.len());
    assert!(lines.len() > 20, "{} log lines", lines.len());
    for canary in &canaries {
        assert!(!canary.is_empty());
        for line in lines.iter().chain(&payloads) {
            assert!(!line.contains(canary.as_str()), "{canary:?} in {line}");
        }
    }
}

/// `landsby up` prints where each service listens: `  <name>  <addr>   database …`.
fn up_address(line: &str, name: &str) -> Option<SocketAddr> {
    let mut words = line.split_whitespace();
    (words.next()? == name)
        .then(|| words.next()?.parse().ok())
        .flatten()
}

/// `landsby up` in `dir` on free ports, once every service listens, and the four addresses (case,
/// visitation, notification, worker).
fn landsby_up(dir: &std::path::Path) -> (Spawned, Vec<SocketAddr>) {
    let mut cmd = command("landsby");
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir)
        .env("LANDSBY_CASE__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_VISITATION__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_NOTIFICATION__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_WORKER__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_JOBS__POLL_INTERVAL", "50ms");
    let mut up = Spawned::start(cmd);
    let mut addrs = Vec::new();
    for name in ["case", "visitation", "notification", "worker"] {
        addrs.push(up.wait_for(Duration::from_secs(60), |line| up_address(line, name)));
    }
    (up, addrs)
}

fn stop(mut up: Spawned) {
    up.signal("INT");
    let (status, _) = up.wait_exit(Duration::from_secs(30)).expect("stopped");
    assert!(status.success(), "{:?}", up.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heart_flow_on_sqlite_through_landsby_up() {
    let _machine = super::MACHINE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let (up, addrs) = landsby_up(dir.path());
    let (key, _) = landsby_platform::auth::dev_signing_key(dir.path()).unwrap();
    let suite = Suite {
        case: serving_plain(addrs[0]).await,
        visitation: serving_plain(addrs[1]).await,
        notification: serving_plain(addrs[2]).await,
        worker: serving_plain(addrs[3]).await,
        issuer: Arc::new(DevIssuer(key)),
    };
    let took = the_heart_flow(&suite, false).await;
    assert!(took < Duration::from_secs(30), "{took:?}");
    stop(up);
}

/// `landsby demo` against `landsby up`: the sample case goes through steps 1 → 2 → 3 and the
/// care-task transfer, and the timeline shows what the worker did at each step. The demo starts
/// first: it waits until all four services serve (they listen before their databases are migrated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landsby_demo_drives_a_case_up_the_staircase_and_prints_the_timeline() {
    let _machine = super::MACHINE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<std::net::TcpListener> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs: Vec<SocketAddr> = ports.iter().map(|l| l.local_addr().unwrap()).collect();
    drop(ports);
    let listen = |cmd: &mut std::process::Command| {
        for (name, addr) in ["CASE", "VISITATION", "NOTIFICATION", "WORKER"]
            .iter()
            .zip(&addrs)
        {
            cmd.env(format!("LANDSBY_{name}__LISTEN"), addr.to_string());
        }
    };
    let mut cmd = command("landsby");
    cmd.arg("demo").arg("--data-dir").arg(dir.path());
    listen(&mut cmd);
    let mut demo = Spawned::start(cmd);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cmd = command("landsby");
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir.path())
        .env("LANDSBY_JOBS__POLL_INTERVAL", "50ms");
    listen(&mut cmd);
    let up = Spawned::start(cmd);
    let (status, _) = demo
        .wait_exit(Duration::from_secs(300))
        .expect("the demo ends");
    let out = demo.output().join("\n");
    assert!(status.success(), "{out}");
    for expected in [
        // The first plans, each value with the rule that decided it.
        "made the visitation plan of Kari Demo (mother)",
        "why: board:floor: the county board's decision gives at least 120 minutes a visit",
        "The team lead approved: the case is in step 2 (involvement).",
        // Step 2 gives the father (no board decision) support from the foster parents.
        "supervision          agency supervised  ->  supported by foster parents",
        "[x] family_group_conference",
        "The team lead approved: the case is in step 3 (responsibility).",
        // Step 3 opens the parents' home, never the secret foster home.
        "why: secret_address: the foster home's address is secret: no visits there",
        "care tasks: 0 with the foster parents, 0 shared, 3 with the parents",
        "Kari Demo (mother)                12: plan_changed x3, step_changed x2, visit_scheduled x7",
        "demo-caseworker (caseworker)       2: step_changed x2",
        "nothing for: Mormor Demo (grandparent), Kontaktlærer (school)",
        "is in step 3 (responsibility) with the care moved to the parents.",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    stop(up);
}

/// How many of the sweep's batches are done, read from the worker's own database.
async fn batches_done(db: &landsby_platform::db::DbPool) -> i64 {
    match db {
        landsby_platform::db::DbPool::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sweep_batches WHERE done")
                .fetch_one(p)
                .await
                .unwrap_or(0)
        }
        landsby_platform::db::DbPool::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

/// Jobs by apalis status, read from the worker's own database.
async fn jobs_by_status(db: &landsby_platform::db::DbPool) -> Vec<(String, i64)> {
    match db {
        landsby_platform::db::DbPool::Postgres(p) => sqlx::query_as(
            "SELECT status, COUNT(*) FROM apalis.jobs GROUP BY status ORDER BY status",
        )
        .fetch_all(p)
        .await
        .unwrap(),
        landsby_platform::db::DbPool::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_over_1000_cases_killed_mid_way_finishes_after_a_restart_under_the_same_pod_name() {
    let _machine = super::MACHINE.write().await;
    const CASES: usize = 1000;
    let mut services = Services::start().await;
    let (case_addr, visitation_addr, notification_addr) =
        (services.case, services.visitation, services.notification);
    let suite = Suite {
        case: serving(case_addr).await,
        visitation: serving(visitation_addr).await,
        notification: serving(notification_addr).await,
        worker: serving(notification_addr).await,
        issuer: Arc::new(TestIssuer),
    };
    // 1,000 open cases with a mother; every tenth has a review due tomorrow.
    let tomorrow = landsby_domain::time::oslo_date(chrono::Utc::now()) + chrono::Duration::days(1);
    let mut tasks = Vec::new();
    for part in 0..4 {
        let suite = suite.clone();
        tasks.push(tokio::spawn(async move {
            let mut cases = suite.caseworker();
            let mut reminded = Vec::new();
            for i in (part..CASES).step_by(4) {
                let case = cases
                    .create(landsby_testkit::case::new_case())
                    .await
                    .unwrap();
                cases
                    .add_member(&case.id, landsby_testkit::case::mother())
                    .await
                    .unwrap();
                if i % 10 == 0 {
                    let review = cpb::Review {
                        kind: cpb::ReviewKind::PlanEvaluation.into(),
                        due_date: Some(landsby_platform::validate::date_to_proto(tomorrow)),
                        note: "look at the plan".into(),
                        ..Default::default()
                    };
                    cases.schedule(&case.id, review).await.unwrap();
                    reminded.push(case.id);
                }
            }
            reminded
        }));
    }
    let mut reminded = Vec::new();
    for t in tasks {
        reminded.extend(t.await.unwrap());
    }
    assert_eq!(reminded.len(), CASES / 10);

    // `landsby-worker sweep --once` as a Kubernetes CronJob would run it, in pod `sweep-pod-1`.
    let worker_db = TestDb::new(Backend::Postgres).await;
    let token = token_file(&worker_db.dir());
    let sweep_once = || {
        let mut cmd = command("landsby-worker");
        cmd.args(["sweep", "--once"])
            .env("HOSTNAME", "sweep-pod-1")
            .env("LANDSBY_WORKER__DATABASE_URL", worker_db.url())
            .env("LANDSBY_DATA_DIR", worker_db.dir())
            .env("LANDSBY_ENDPOINTS__CASE", url(case_addr))
            .env("LANDSBY_ENDPOINTS__VISITATION", url(visitation_addr))
            .env("LANDSBY_ENDPOINTS__NOTIFICATION", url(notification_addr))
            .envs(landsby_testkit::pki::tls_env("landsby/worker"))
            .env(token.0, &token.1)
            .env("LANDSBY_JOBS__POLL_INTERVAL", "50ms")
            .env("LANDSBY_JOBS__STALE_AFTER", "3s")
            .env("LANDSBY_JOBS__SWEEP_BATCH_SIZE", "25")
            .env("LANDSBY_LOG__FORMAT", "json");
        Spawned::start(cmd)
    };
    let pool = worker_db.pool();
    let mut first = sweep_once();
    let started = Instant::now();
    // Killed once some batches are done and others are not.
    loop {
        let done = batches_done(&pool).await;
        if done >= 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no batch done: {:?}",
            first.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    let at_kill = batches_done(&pool).await;
    assert!(
        at_kill < (CASES / 25) as i64,
        "killed mid-way: {at_kill} batches done"
    );

    // Restarted under the same pod name: it finds the sweep running, takes up the dead process's
    // jobs once they are stale, and finishes it.
    let mut second = sweep_once();
    let Some((status, _)) = second.wait_exit(Duration::from_secs(300)) else {
        let jobs = jobs_by_status(&pool).await;
        let output = second.output();
        let tail = &output[output.len().saturating_sub(40)..];
        // What the services said of their internal errors (contexts only, never request data).
        let internal: Vec<String> = services
            .running
            .iter_mut()
            .flat_map(|(process, _)| {
                let lines: Vec<String> = process
                    .output()
                    .into_iter()
                    .filter(|l| l.contains("internal error") || l.contains("\"ERROR\""))
                    .collect();
                lines.into_iter().rev().take(10).collect::<Vec<_>>()
            })
            .collect();
        panic!(
            "the second run did not finish: jobs {jobs:?}; its last lines: {tail:#?}; \
             the services' internal errors: {internal:#?}"
        );
    };
    let output = second.output();
    assert!(status.success(), "{output:?}");
    let summary = output
        .iter()
        .find(|l| l.starts_with(&format!("agency {AGENCY}: sweep")))
        .unwrap_or_else(|| panic!("{output:?}"));
    assert!(
        summary.contains(&format!("{CASES} cases (0 failed)")),
        "{summary}"
    );
    assert_eq!(batches_done(&pool).await, (CASES / 25) as i64);
    // Nothing stuck, nothing dead, nothing left to run.
    let statuses = jobs_by_status(&pool).await;
    assert!(statuses.iter().all(|(s, _)| s == "Done"), "{statuses:?}");
    // Every case recomputed: its mother has a plan. Every reminder sent once.
    let mut visits = suite.visits();
    let mut notices = suite.notices();
    let mut cases = suite.caseworker();
    let listed = cases
        .list(cpb::ListCasesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    for c in listed.cases.iter().take(50) {
        assert_eq!(visits.plans(&c.id).await.len(), 1, "case {}", c.id);
    }
    for id in &reminded {
        let due: Vec<_> = notices
            .summary(id)
            .await
            .into_iter()
            .filter(|(_, kind)| kind == "review_due")
            .collect();
        assert_eq!(due.len(), 1, "case {id}: {due:?}");
    }
}

/// One job as the worker's database has it.
#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: String,
    status: String,
    attempts: i32,
    last_result: Option<String>,
    lock_by: Option<String>,
}

/// Every job in the worker's database (none before the worker's first migration).
async fn every_job(db: &landsby_platform::db::DbPool) -> Vec<JobRow> {
    match db {
        landsby_platform::db::DbPool::Postgres(p) => sqlx::query_as(
            "SELECT id, status, attempts, last_result::text AS last_result, lock_by \
             FROM apalis.jobs ORDER BY id",
        )
        .fetch_all(p)
        .await
        .unwrap_or_default(),
        landsby_platform::db::DbPool::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

/// A job during which its worker process dies every time (here: kill -9 while the job waits on a
/// visitation service that hangs) is taken up again after each restart of the pod with its attempt
/// counted, and is DEAD once its attempts are spent, instead of looping for ever; nothing is left
/// running or pending; RetryJob brings it back and it completes once the service answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_dies_every_time_is_dead_after_its_attempts_and_retry_revives_it() {
    let _machine = super::MACHINE.read().await;
    const MAX_ATTEMPTS: i32 = 3;
    let services = Services::start().await;
    let (case_addr, visitation_addr, notification_addr) =
        (services.case, services.visitation, services.notification);
    // The worker reaches the visitation service only through a proxy that hangs.
    let proxy = landsby_testkit::TcpProxy::start(visitation_addr).await;
    proxy.hold();
    let worker_db = TestDb::new(Backend::Postgres).await;
    let token = token_file(&worker_db.dir());
    let worker = || {
        service(
            "worker",
            &worker_db,
            &[
                ("HOSTNAME", "worker-pod-1".to_owned()),
                ("LANDSBY_ENDPOINTS__CASE", url(case_addr)),
                ("LANDSBY_ENDPOINTS__VISITATION", url(proxy.addr)),
                ("LANDSBY_ENDPOINTS__NOTIFICATION", url(notification_addr)),
                (token.0, token.1.clone()),
                ("LANDSBY_JOBS__POLL_INTERVAL", "50ms".to_owned()),
                ("LANDSBY_JOBS__STALE_AFTER", "2s".to_owned()),
                ("LANDSBY_JOBS__MAX_ATTEMPTS", MAX_ATTEMPTS.to_string()),
                ("LANDSBY_JOBS__SWEEP_SCHEDULE", String::new()),
            ],
        )
    };
    let suite = Suite {
        case: serving(case_addr).await,
        visitation: serving(visitation_addr).await,
        notification: serving(notification_addr).await,
        worker: serving(notification_addr).await,
        issuer: Arc::new(TestIssuer),
    };
    let mut cases = suite.caseworker();
    let case = cases
        .create(landsby_testkit::case::new_case())
        .await
        .unwrap();
    cases
        .add_member(&case.id, landsby_testkit::case::mother())
        .await
        .unwrap();

    // Each round: the pod starts, takes up a job that hangs on the visitation service, and dies.
    let pool = worker_db.pool();
    let mut dead_pods: Vec<String> = Vec::new();
    let dead = loop {
        let (mut pod, _) = worker();
        let deadline = Instant::now() + Duration::from_secs(60);
        let settled = loop {
            let jobs = every_job(&pool).await;
            if !jobs.is_empty() && jobs.iter().all(|j| j.status == "Killed") {
                break Some(jobs);
            }
            let taken_up = jobs.iter().find_map(|j| {
                j.lock_by
                    .clone()
                    .filter(|by| j.status == "Running" && !dead_pods.contains(by))
            });
            if let Some(by) = taken_up {
                dead_pods.push(by);
                break None;
            }
            assert!(Instant::now() < deadline, "no job was taken up: {jobs:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(jobs) = settled {
            drop(pod);
            break jobs;
        }
        pod.signal("KILL");
        pod.wait_exit(Duration::from_secs(10)).expect("killed");
        let jobs = every_job(&pool).await;
        assert!(
            dead_pods.len() <= jobs.len() * MAX_ATTEMPTS as usize,
            "the jobs keep running after {} kills: {jobs:?}",
            dead_pods.len()
        );
    };
    assert!(
        dead_pods.len() >= MAX_ATTEMPTS as usize,
        "{} kills",
        dead_pods.len()
    );
    for job in &dead {
        assert_eq!(
            (job.status.as_str(), job.attempts),
            ("Killed", MAX_ATTEMPTS)
        );
        assert!(
            job.last_result
                .as_deref()
                .unwrap_or("")
                .contains("attempts are spent"),
            "{job:?}"
        );
    }

    // The service answers again; an administrator retries the dead jobs through the admin API.
    proxy.restore();
    let (_pod, worker_addr) = worker();
    let mut admin = Suite {
        worker: serving(worker_addr).await,
        ..suite.clone()
    }
    .admin();
    let listed = admin.jobs(wpb::JobStatus::Dead).await;
    let mut listed_ids: Vec<&str> = listed.iter().map(|j| j.id.as_str()).collect();
    listed_ids.sort_unstable();
    let dead_ids: Vec<&str> = dead.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(listed_ids, dead_ids, "ListJobs shows the dead jobs");
    for job in &listed {
        let req = admin.req(wpb::RetryJobRequest {
            job_id: job.id.clone(),
        });
        admin.inner.retry_job(req).await.unwrap();
    }
    admin.settled().await;
    let jobs = every_job(&pool).await;
    assert!(jobs.iter().all(|j| j.status == "Done"), "{jobs:?}");
    let mut visits = suite.visits();
    eventually!("the mother's plan", {
        (!visits.plans(&case.id).await.is_empty()).then_some(())
    });
}

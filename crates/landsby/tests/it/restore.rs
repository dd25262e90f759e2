//! A backup of a service's PostgreSQL database, as docs/operations.md says to take it
//! (`pg_dump --format=custom`), restores into an empty database (`pg_restore`) with every row of
//! every table, and `landsby audit verify` finds the restored audit chain whole, and finds a row
//! changed after the restore.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use landsby_testkit::case::Client as CaseClient;
use landsby_testkit::cluster::{Cluster, run};
use landsby_testkit::{Backend, TestDb, TestServer};
use sqlx::Connection;
use std::process::Command;
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;

/// Row counts of every table of the database at `url`, by table.
async fn counts(url: &str) -> Vec<(String, i64)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM \"{table}\""
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        out.push((table, n));
    }
    out
}

/// `landsby audit verify --service case` on the database at `url`: (succeeded, what it printed).
fn verify(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_landsby"))
        .env_clear()
        .env("LANDSBY_CASE__DATABASE_URL", url)
        .args(["audit", "verify", "--service", "case"])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The ids `sql` selects (as text) from the database at `url`.
async fn ids(url: &str, sql: &'static str) -> std::collections::HashSet<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar::<_, String>(sql)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_an_empty_database_with_every_row_and_the_audit_chain_whole() {
    let server = TestServer::start_with(
        landsby_case::SERVICE,
        TestDb::new(Backend::Postgres).await,
        |c| {
            c.server.request_timeout = Duration::from_secs(1);
            c.database.audit_seal_after = Duration::from_secs(3);
            c.database.audit_seal_interval = Duration::from_millis(100);
        },
    )
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let mut cases = CaseClient::caseworker(&server);
    for _ in 0..20 {
        let case = cases
            .create(landsby_testkit::case::new_case())
            .await
            .unwrap();
        cases.get(&case.id).await.unwrap();
    }
    let source = server.db.url().to_owned();
    // Every audit row sealed into the chain before the backup.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, said) = verify(&source);
        assert!(ok, "{said}");
        if said.contains(" 0 not sealed yet") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rows were never sealed: {said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("case.dump");
    let started = Instant::now();
    run(Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(&source));
    let dumped = started.elapsed();
    let target = TestDb::new(Backend::Postgres).await;
    let started = Instant::now();
    run(Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(target.url())
        .arg(&dump));
    let restored = started.elapsed();

    let before = counts(&source).await;
    let after = counts(target.url()).await;
    assert_eq!(before, after, "every table, every row");
    let audit_rows = after
        .iter()
        .find(|(t, _)| t == "audit_log")
        .map(|(_, n)| *n)
        .unwrap();
    assert!(audit_rows >= 40, "{after:?}");
    let (ok, said) = verify(target.url());
    assert!(ok && said.contains("the audit chains hold"), "{said}");

    // The check can fail: a row changed behind the append-only trigger's back is found.
    let mut conn = sqlx::PgConnection::connect(target.url()).await.unwrap();
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        "UPDATE audit_log SET actor_subject = 'someone-else' WHERE id = (SELECT MIN(id) + 3 FROM audit_log)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let (ok, said) = verify(target.url());
    assert!(!ok, "a changed row must fail the check: {said}");
    eprintln!(
        "backup and restore of {} tables, {} rows ({audit_rows} audit rows): pg_dump {dumped:?}, pg_restore {restored:?}",
        after.len(),
        after.iter().map(|(_, n)| n).sum::<i64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_new_cluster_with_every_write_acknowledged_before_it()
 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let cases_before: usize = std::env::var("LANDSBY_DRILL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let server = TestServer::start_with(
        landsby_case::SERVICE,
        TestDb::new(Backend::Postgres).await,
        |c| c.server.caller_rate = 0,
    )
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let source = server.db.url().to_owned();

    // Writers keep creating cases before, during and after the backup; each remembers when its
    // case was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let mut cw = CaseClient::caseworker(&server);
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let case = cw
                    .create(landsby_testkit::case::new_case())
                    .await
                    .expect("a create under load");
                acked.push((case.id, Instant::now()));
            }
            acked
        }));
    }
    let counted = || async {
        let mut conn = sqlx::PgConnection::connect(&source).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cases")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    while usize::try_from(counted().await).unwrap() < cases_before {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("case.dump");
    let dump_started = Instant::now();
    run(Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(&source));
    let dumped = dump_started.elapsed();
    // Writes went on during the backup.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    let cluster = Cluster::start();
    let restored_db = cluster.database("restored");
    let target = restored_db.url().to_owned();
    let started = Instant::now();
    run(Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&target)
        .arg(&dump));
    let restored = started.elapsed();

    // Every case acknowledged before the backup began is there, each with its audit row; nothing is
    // there that the source does not have; the audit chain holds.
    let there = ids(&target, "SELECT id::TEXT FROM cases").await;
    let audited = ids(
        &target,
        "SELECT case_id::TEXT FROM audit_log WHERE rpc LIKE '%/CreateCase' AND outcome = 'OK'",
    )
    .await;
    let before: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at < dump_started)
        .map(|(id, _)| id)
        .collect();
    let during = acked.len() - before.len();
    assert!(
        before.len() >= cases_before.min(acked.len()) / 2,
        "{}",
        before.len()
    );
    assert!(during > 0, "writes went on while the backup ran");
    for id in &before {
        assert!(
            there.contains(*id),
            "case {id} acknowledged before the backup is missing"
        );
    }
    assert_eq!(
        there, audited,
        "every restored case has its CreateCase row, and only they"
    );
    let source_ids = ids(&source, "SELECT id::TEXT FROM cases").await;
    assert!(there.is_subset(&source_ids));
    let (ok, said) = verify(&target);
    assert!(ok && said.contains("the audit chains hold"), "{said}");
    let rows = counts(&target).await;
    eprintln!(
        "backup under load: {} cases in the backup ({} acknowledged before it began, {during} during or after), {} rows in {} tables; pg_dump {dumped:?}, pg_restore into a new cluster {restored:?}",
        there.len(),
        before.len(),
        rows.iter().map(|(_, n)| n).sum::<i64>(),
        rows.len(),
    );
}

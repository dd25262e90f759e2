//! A backup of a service's PostgreSQL database, as docs/operations.md says to take it
//! (`pg_dump --format=custom`), restores into an empty database (`pg_restore`) with every row of
//! every table, and `landsby audit verify` finds the restored audit chain whole, and finds a row
//! changed after the restore.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use landsby_testkit::case::Client as CaseClient;
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

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

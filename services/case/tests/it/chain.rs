//! The audit log's hash chain on SQLite and PostgreSQL: rows made by real calls are sealed in id
//! order, and a row changed, removed, moved or slipped in is found by its id.

use crate::support::*;
use landsby_platform::audit_chain::{Problem, seal, verify};
use landsby_platform::db::DbPool;
use landsby_testkit::{Backend, TestServer};

landsby_testkit::on_both_backends!(the_chain_finds_a_changed_removed_moved_or_slipped_in_row);

async fn exec(server: &TestServer, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match server.db.pool() {
        DbPool::Postgres(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
        DbPool::Sqlite(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
    }
}

/// Gives row `from` the id `to`, as someone with the owner's rights could.
async fn move_row(server: &TestServer, backend: Backend, from: i64, to: i64) {
    match backend {
        Backend::Postgres => {
            let columns = "occurred_at, actor_subject, actor_agency, actor_roles, rpc, case_id, \
                resource_ids, outcome, break_glass";
            exec(
                server,
                &format!(
                    "INSERT INTO audit_log (id, {columns}) OVERRIDING SYSTEM VALUE \
                     SELECT {to}, {columns} FROM audit_log WHERE id = {from}"
                ),
            )
            .await;
            exec(server, &format!("DELETE FROM audit_log WHERE id = {from}")).await;
        }
        Backend::Sqlite => {
            exec(
                server,
                &format!("UPDATE audit_log SET id = {to} WHERE id = {from}"),
            )
            .await;
        }
    }
}

async fn the_chain_finds_a_changed_removed_moved_or_slipped_in_row(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    for _ in 0..6 {
        cw.get(&case.id).await.unwrap();
    }
    let db = server.db.pool();
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);

    // Nothing sealed yet: every row is waiting, none is wrong.
    let report = verify(&db).await.unwrap();
    assert_eq!((report.rows, report.sealed, report.pending), (7, 0, 7));
    assert!(report.problems.is_empty() && report.head.is_none());
    // Rows younger than the cut are left for later; then all are sealed, once.
    assert_eq!(
        seal(&db, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(seal(&db, later).await.unwrap(), 7);
    assert_eq!(seal(&db, later).await.unwrap(), 0);
    let sealed = verify(&db).await.unwrap();
    assert_eq!((sealed.rows, sealed.sealed, sealed.pending), (7, 7, 0));
    assert!(sealed.problems.is_empty());
    let (head_id, head_hash) = sealed.head.clone().unwrap();
    assert_eq!(head_hash.len(), 64);
    // A new row waits for the next seal and is not a problem meanwhile.
    cw.get(&case.id).await.unwrap();
    assert_eq!(verify(&db).await.unwrap().pending, 1);

    // The log and its seals refuse changes; someone with the database's owner rights lifts that.
    assert!(
        landsby_testkit::audit::try_to_change_audit_log(&server)
            .await
            .is_err()
    );
    for sql in [
        "UPDATE audit_seals SET row_id = row_id + 1000",
        "DELETE FROM audit_seals",
    ] {
        let refused = match server.db.pool() {
            DbPool::Postgres(p) => sqlx::query(sql).execute(&p).await.is_err(),
            DbPool::Sqlite(p) => sqlx::query(sql).execute(&p).await.is_err(),
        };
        assert!(refused, "{sql}");
    }
    match backend {
        Backend::Postgres => exec(&server, "ALTER TABLE audit_log DISABLE TRIGGER USER").await,
        Backend::Sqlite => {
            exec(&server, "DROP TRIGGER audit_log_no_update").await;
            exec(&server, "DROP TRIGGER audit_log_no_delete").await;
        }
    }
    let first = head_id - 6;
    // Changed: an outcome rewritten.
    exec(
        &server,
        &format!(
            "UPDATE audit_log SET outcome = 'NOT_FOUND' WHERE id = {}",
            first + 2
        ),
    )
    .await;
    // Removed.
    exec(
        &server,
        &format!("DELETE FROM audit_log WHERE id = {}", first + 4),
    )
    .await;
    // Moved: a sealed row put in the removed one's place.
    move_row(&server, backend, first + 5, first + 4).await;
    // Slipped in: the row made after sealing, given an id before the chain's first.
    move_row(&server, backend, head_id + 1, 0).await;
    let report = verify(&db).await.unwrap();
    assert_eq!(
        report.problems,
        [
            Problem::Unsealed(0),
            Problem::Changed(first + 2),
            Problem::Changed(first + 4),
            Problem::Removed(first + 5),
        ],
        "{report:?}"
    );
    assert_eq!(report.head, sealed.head, "the head itself is unchanged");
    assert!(report.problems.iter().all(|p| !p.to_string().is_empty()));
}

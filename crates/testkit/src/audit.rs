//! Reading a service's audit log and event outbox as tests check them.

#![allow(missing_docs)]

use crate::TestServer;
use landsby_platform::db::DbPool;
use uuid::Uuid;

/// An audit row as a test reads it.
#[derive(Debug)]
pub struct AuditRow {
    pub subject: String,
    pub agency: String,
    pub rpc: String,
    pub case_id: Option<Uuid>,
    pub resource_ids: Vec<Uuid>,
    pub outcome: String,
    /// Made under emergency access.
    pub break_glass: bool,
}

const AUDIT_ROWS: &str = "SELECT actor_subject, actor_agency, rpc, case_id, resource_ids, outcome, break_glass FROM audit_log ORDER BY id";

/// Every audit row of the server's database, oldest first.
pub async fn audit_rows(server: &TestServer) -> Vec<AuditRow> {
    audit_rows_of(&server.db.pool()).await
}

/// Every audit row of a database, oldest first.
pub async fn audit_rows_of(pool: &DbPool) -> Vec<AuditRow> {
    type Raw = (
        String,
        String,
        String,
        Option<Uuid>,
        sqlx::types::Json<Vec<Uuid>>,
        String,
        bool,
    );
    let raw: Vec<Raw> = match pool {
        DbPool::Postgres(p) => sqlx::query_as(AUDIT_ROWS).fetch_all(p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_as(AUDIT_ROWS).fetch_all(p).await.unwrap(),
    };
    raw.into_iter()
        .map(
            |(subject, agency, rpc, case_id, resource_ids, outcome, break_glass)| AuditRow {
                subject,
                agency,
                rpc,
                case_id,
                resource_ids: resource_ids.0,
                outcome,
                break_glass,
            },
        )
        .collect()
}

/// Tries to rewrite and to delete audit rows; the database must refuse both.
pub async fn try_to_change_audit_log(server: &TestServer) -> Result<(), String> {
    let pool = server.db.pool();
    for sql in [
        "UPDATE audit_log SET outcome = 'OK'",
        "DELETE FROM audit_log",
    ] {
        let result = match &pool {
            DbPool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            DbPool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        };
        if result.is_ok() {
            return Ok(());
        }
    }
    Err("refused".into())
}

/// The kinds of every event in a database's outbox, in sequence order.
pub async fn event_kinds_of(pool: &DbPool) -> Vec<String> {
    const KINDS: &str = "SELECT kind FROM events ORDER BY sequence";
    match pool {
        DbPool::Postgres(p) => sqlx::query_scalar(KINDS).fetch_all(p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_scalar(KINDS).fetch_all(p).await.unwrap(),
    }
}

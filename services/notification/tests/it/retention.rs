//! Retention through the gRPC API on both databases: `PurgeNotifications` removes old notifications
//! whose deliveries have all ended — with their deliveries, attempts and inbox entries — a bounded
//! batch at a time, and nothing younger or still being delivered; bad input and other roles change
//! nothing.

use crate::support::*;
use landsby_domain::Role;
use landsby_platform::db::DbPool;
use landsby_platform::validate::timestamp_to_proto;
use landsby_proto::notification as pb;
use landsby_testkit::audit::audit_rows;
use landsby_testkit::{AGENCY, Backend, TestServer};
use std::time::Duration;
use tonic::Code;
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    old_notifications_whose_deliveries_ended_are_purged_in_batches_and_nothing_else,
);

async fn exec(pool: &DbPool, sql: &'static str, at: chrono::DateTime<chrono::Utc>, id: &str) {
    let id = Uuid::parse_str(id).unwrap();
    let changed = match pool {
        DbPool::Postgres(p) => sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        DbPool::Sqlite(p) => sqlx::query(sql)
            .bind(at)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
    }
    .unwrap();
    assert!(changed > 0, "{sql}");
}

/// Rows of `table` that belong to notification `id`.
async fn rows_of(pool: &DbPool, table: &str, id: &str) -> i64 {
    let id = Uuid::parse_str(id).unwrap();
    let sql = match table {
        "notifications" => "SELECT COUNT(*) FROM notifications WHERE id = $1",
        "deliveries" => "SELECT COUNT(*) FROM deliveries WHERE notification_id = $1",
        "delivery_attempts" => {
            "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE notification_id = $1)"
        }
        "inbox" => "SELECT COUNT(*) FROM inbox WHERE notification_id = $1",
        other => panic!("{other}"),
    };
    match pool {
        DbPool::Postgres(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await,
        DbPool::Sqlite(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await,
    }
    .unwrap()
}

async fn purge(
    client: &mut Client,
    before: Option<chrono::DateTime<chrono::Utc>>,
    limit: i32,
) -> Result<pb::PurgeNotificationsResponse, tonic::Status> {
    let req = client.req(pb::PurgeNotificationsRequest {
        created_before: before.map(timestamp_to_proto),
        limit,
    });
    Ok(client.inner.purge_notifications(req).await?.into_inner())
}

async fn old_notifications_whose_deliveries_ended_are_purged_in_batches_and_nothing_else(
    backend: Backend,
) {
    let server: TestServer = server(backend, |_| {}).await;
    let pool = server.db.pool();
    let mut cw = Client::worker(&server);
    let mut ids = Vec::new();
    for key in ["old-1", "old-2", "old-unfinished", "recent"] {
        let n = cw.send(visit_scheduled(key, mother())).await.unwrap();
        let settled = cw.settled(&n.id, Duration::from_secs(10)).await;
        assert_eq!(settled.status(), pb::NotificationStatus::Delivered);
        ids.push(n.id);
    }
    let [old_1, old_2, unfinished, recent] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let long_ago = chrono::Utc::now() - chrono::TimeDelta::days(200);
    for id in [old_1, old_2, unfinished] {
        exec(
            &pool,
            "UPDATE notifications SET created_at = $1 WHERE id = $2",
            long_ago,
            id,
        )
        .await;
    }
    // One old notification is still being delivered (a retry is due).
    exec(
        &pool,
        "UPDATE deliveries SET status = 'retrying', next_attempt_at = $1 WHERE notification_id = $2",
        chrono::Utc::now() + chrono::TimeDelta::days(1),
        unfinished,
    )
    .await;
    exec(
        &pool,
        "UPDATE notifications SET status = 'pending', created_at = $1 WHERE id = $2",
        long_ago,
        unfinished,
    )
    .await;
    let before = chrono::Utc::now() - chrono::TimeDelta::days(180);
    let mut worker = Client::as_role(&server, "landsby-worker", AGENCY, &[Role::Service]);
    let audited = audit_rows(&server).await.len();

    // Bad input and other roles: refused with the field named, nothing removed.
    let err = purge(&mut worker, None, 0).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["created_before"]);
    let too_recent = chrono::Utc::now() - chrono::TimeDelta::hours(23);
    let err = purge(&mut worker, Some(too_recent), 0).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["created_before"]);
    for limit in [-1, 1001] {
        let err = purge(&mut worker, Some(before), limit).await.unwrap_err();
        assert_eq!(violated_fields(&err), ["limit"], "{limit}");
    }
    for role in [
        Role::Caseworker,
        Role::TeamLead,
        Role::AgencyAdmin,
        Role::Auditor,
    ] {
        let mut other = Client::as_role(&server, "someone", AGENCY, &[role]);
        let err = purge(&mut other, Some(before), 0).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }
    for id in &ids {
        assert_eq!(rows_of(&pool, "notifications", id).await, 1);
    }

    // A batch of one, then the rest.
    let first = purge(&mut worker, Some(before), 1).await.unwrap();
    assert_eq!((first.purged, first.more), (1, true));
    let rest = purge(&mut worker, Some(before), 0).await.unwrap();
    assert_eq!((rest.purged, rest.more), (1, false));
    let again = purge(&mut worker, Some(before), 0).await.unwrap();
    assert_eq!((again.purged, again.more), (0, false));

    for id in [old_1, old_2] {
        for table in ["notifications", "deliveries", "delivery_attempts", "inbox"] {
            assert_eq!(rows_of(&pool, table, id).await, 0, "{table}");
        }
        assert_eq!(cw.get(id).await.unwrap_err().code(), Code::NotFound);
    }
    for id in [unfinished, recent] {
        assert_eq!(rows_of(&pool, "notifications", id).await, 1);
        assert_eq!(rows_of(&pool, "deliveries", id).await, 1);
    }
    let inbox: Vec<String> = cw
        .inbox(MOTHER)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.notification_id)
        .collect();
    assert!(
        !inbox.contains(old_1) && !inbox.contains(old_2),
        "{inbox:?}"
    );
    assert!(inbox.contains(recent));

    // Every call left its audit row (4 bad input, 4 roles, 3 purges, 2 reads above).
    let rows = audit_rows(&server).await;
    let purges = rows[audited..]
        .iter()
        .filter(|r| r.rpc.ends_with("/PurgeNotifications"))
        .count();
    assert_eq!(purges, 4 + 4 + 3);
}

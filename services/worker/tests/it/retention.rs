//! Retention enforced by the running worker, on both databases: once the notifications of a case
//! and the worker's finished jobs are older than `retention.*`, the worker removes them — its own
//! jobs in its database, the notifications through `NotificationService/PurgeNotifications` with its
//! own certificate and token — and leaves what is younger.

use crate::support::*;
use landsby_platform::db::DbPool;
use landsby_proto::notification as npb;
use landsby_proto::worker as wpb;
use landsby_testkit::Backend;
use std::time::Duration;

landsby_testkit::on_both_backends!(the_running_worker_removes_what_retention_no_longer_keeps);

async fn exec(pool: &DbPool, sql: &'static str) {
    match pool {
        DbPool::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
        DbPool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
    }
    .unwrap();
}

async fn the_running_worker_removes_what_retention_no_longer_keeps(backend: Backend) {
    let env = env_with(backend, |c| c.retention.interval = Duration::from_secs(1)).await;
    let family = env.suite.family(false).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    let mut notices = env.suite.notices();
    let delivered = eventually!("the case's notifications to be delivered", {
        let all = notices.of_case(&family.case.id).await;
        (!all.is_empty()
            && all
                .iter()
                .all(|n| n.status() == npb::NotificationStatus::Delivered))
        .then_some(all)
    });
    let done = admin.jobs(wpb::JobStatus::Done).await.len();
    assert!(done > 0);
    // Younger than retention: the worker has run and kept them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        notices.of_case(&family.case.id).await.len(),
        delivered.len()
    );
    assert_eq!(admin.jobs(wpb::JobStatus::Done).await.len(), done);

    // Now they are old.
    match backend {
        Backend::Postgres => {
            exec(
                &env._notification.db.pool(),
                "UPDATE notifications SET created_at = created_at - INTERVAL '200 days'",
            )
            .await;
            exec(
                &env.worker.db.pool(),
                "UPDATE apalis.jobs SET done_at = done_at - INTERVAL '40 days' WHERE status = 'Done'",
            )
            .await;
        }
        Backend::Sqlite => {
            exec(
                &env._notification.db.pool(),
                "UPDATE notifications SET created_at = '2020-01-01T00:00:00Z'",
            )
            .await;
            exec(
                &env.worker.db.pool(),
                "UPDATE Jobs SET done_at = done_at - 40 * 86400 WHERE status = 'Done'",
            )
            .await;
        }
    }
    eventually!("the worker to remove the old notifications and jobs", {
        (notices.of_case(&family.case.id).await.is_empty()
            && admin.jobs(wpb::JobStatus::Done).await.is_empty())
        .then_some(())
    });
}

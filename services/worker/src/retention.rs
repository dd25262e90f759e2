//! Retention of operational copies (`retention.*`): every `retention.interval` the worker removes
//! its own finished jobs older than `retention.jobs` and DEAD ones older than `retention.dead_jobs`,
//! and asks the notification service to remove, agency by agency, notifications whose deliveries
//! have all ended and that are older than `retention.notifications` (with the addresses they went
//! to, their attempts and inbox entries; `NotificationService/PurgeNotifications`, a bounded batch a
//! call). Every replica may run it: removing what is gone already removes nothing.
//!
//! Telemetry is not kept by landsby: logs go to standard output and traces to the collector, whose
//! own retention applies; neither carries personal data (the canary test).

use crate::Ctx;
use crate::error::JobError;
use landsby_platform::server::Shutdown;
use landsby_proto::notification as npb;
use std::sync::Arc;
use std::time::Duration;

/// The most batches of notifications removed for one agency in one run; the next run goes on.
const MAX_BATCHES: usize = 100;

/// What one run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Jobs (done and DEAD).
    pub jobs: u64,
    /// Notifications.
    pub notifications: u64,
}

/// One run: the worker's old jobs, then every agency's old notifications. An agency whose purge
/// fails is logged and left for the next run; the others go on.
pub async fn run_once(ctx: &Ctx) -> Result<Removed, JobError> {
    let retention = &ctx.retention;
    let jobs = ctx
        .queue
        .purge_finished(retention.jobs, retention.dead_jobs)
        .await?;
    let before = chrono::Utc::now()
        - chrono::TimeDelta::from_std(retention.notifications).unwrap_or(chrono::TimeDelta::MAX);
    let mut notifications = 0;
    let mut failed = None;
    for agency in &ctx.config.agencies {
        for _ in 0..MAX_BATCHES {
            let answer = call!(
                ctx,
                agency,
                notification.purge_notifications(npb::PurgeNotificationsRequest {
                    created_before: Some(landsby_platform::validate::timestamp_to_proto(before)),
                    limit: 0,
                })
            );
            match answer {
                Ok(page) => {
                    notifications += u64::try_from(page.purged).unwrap_or(0);
                    if !page.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(agency = %agency, error = %e, "old notifications could not be removed; next run");
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    let removed = Removed {
        jobs,
        notifications,
    };
    match failed {
        Some(e) if removed == Removed::default() => Err(e),
        _ => Ok(removed),
    }
}

/// Runs [`run_once`] at start and every `retention.interval` until `shutdown`.
pub async fn schedule(ctx: Arc<Ctx>, shutdown: Shutdown) {
    loop {
        match run_once(&ctx).await {
            Ok(Removed {
                jobs: 0,
                notifications: 0,
            }) => {}
            Ok(removed) => tracing::info!(
                jobs = removed.jobs,
                notifications = removed.notifications,
                "retention: removed what is kept no longer"
            ),
            Err(e) => tracing::warn!(error = %e, "retention could not run; next run"),
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(ctx.retention.interval.max(Duration::from_secs(1))) => {}
        }
    }
}

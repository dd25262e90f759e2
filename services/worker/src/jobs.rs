//! The jobs and the worker processes that run them.
//!
//! Every job carries ids only (never a name, an address or a report text) and is idempotent: run
//! twice, it changes nothing more than once. A job's first step is the attempts guard: an attempt
//! past `jobs.max_attempts` (apalis counts attempts a crash cut short when it takes a job up again,
//! but then ignores the bound) ends the job DEAD instead of running it.

use crate::Ctx;
use crate::error::JobError;
use apalis::prelude::BackendExt;
use apalis::prelude::{
    AbortError, Attempt, BoxDynError, Data, Monitor, TaskId, WorkerBuilder, WorkerBuilderExt,
};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_platform::server::Shutdown;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What a visit notice tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitChange {
    /// The visit was scheduled.
    Scheduled,
    /// The visit moved.
    Rescheduled,
    /// The visit was cancelled.
    Cancelled,
}

/// A step change to tell the village about, from a StepChanged event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepNotice {
    /// The event.
    pub event_id: String,
    /// The new step's code (`involvement`).
    pub step: String,
    /// The day it took effect (Europe/Oslo).
    pub effective: NaiveDate,
}

/// A job. Serialized as JSON with a `kind` tag; the agency is always at the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Recompute one case: visit facts, each parent's scope, the due reviews; then tell the village.
    RecomputeCase {
        /// The agency.
        agency: String,
        /// The case.
        case_id: Uuid,
        /// A step change to tell, if the job comes from one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<StepNotice>,
    },
    /// Tell a visit's participants that it was scheduled, moved or cancelled.
    VisitNotice {
        /// The agency.
        agency: String,
        /// The case.
        case_id: Uuid,
        /// The visit.
        visit_id: Uuid,
        /// The event.
        event_id: String,
        /// What happened.
        change: VisitChange,
        /// Where it was to start, for a move.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_start: Option<DateTime<Utc>>,
    },
    /// Tell the caseworker that a completed visit raised a concern.
    ConcernNotice {
        /// The agency.
        agency: String,
        /// The case.
        case_id: Uuid,
        /// The visit.
        visit_id: Uuid,
        /// The event.
        event_id: String,
    },
    /// List the agency's open cases for a review sweep and queue them in batches.
    Sweep {
        /// The agency.
        agency: String,
        /// The sweep.
        sweep_id: Uuid,
    },
    /// Recompute, remind and flag for one batch of a sweep's cases.
    SweepBatch {
        /// The agency.
        agency: String,
        /// The sweep.
        sweep_id: Uuid,
        /// The batch number (from 0).
        batch: u32,
        /// The batch's key (its idempotency key).
        key: String,
        /// The cases.
        case_ids: Vec<Uuid>,
    },
}

impl Job {
    /// The agency the job is for.
    pub fn agency(&self) -> &str {
        match self {
            Self::RecomputeCase { agency, .. }
            | Self::VisitNotice { agency, .. }
            | Self::ConcernNotice { agency, .. }
            | Self::Sweep { agency, .. }
            | Self::SweepBatch { agency, .. } => agency,
        }
    }

    /// The kind, as the admin API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RecomputeCase { .. } => "recompute_case",
            Self::VisitNotice { .. } => "visit_notice",
            Self::ConcernNotice { .. } => "concern_notice",
            Self::Sweep { .. } => "sweep",
            Self::SweepBatch { .. } => "sweep_batch",
        }
    }

    /// The case it is about, if one.
    pub fn case_id(&self) -> Option<Uuid> {
        match self {
            Self::RecomputeCase { case_id, .. }
            | Self::VisitNotice { case_id, .. }
            | Self::ConcernNotice { case_id, .. } => Some(*case_id),
            Self::Sweep { .. } | Self::SweepBatch { .. } => None,
        }
    }

    /// The sweep it belongs to, if any.
    pub fn sweep_id(&self) -> Option<Uuid> {
        match self {
            Self::Sweep { sweep_id, .. } | Self::SweepBatch { sweep_id, .. } => Some(*sweep_id),
            _ => None,
        }
    }
}

/// A job as it is queued: the job, and the trace it was queued in (the W3C `traceparent` of the
/// change or call that caused it), so that running it continues that trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// The trace it was queued in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The backoff before the attempt after `attempt` failed ones (see `landsby_platform::retry`).
pub fn backoff(base: Duration, max: Duration, attempt: usize) -> Duration {
    landsby_platform::retry::backoff_std(u32::try_from(attempt).unwrap_or(u32::MAX), base, max)
}

/// Runs one job: the attempts guard, then the job under `jobs.job_timeout`; a retryable failure
/// waits its backoff before the next attempt, a permanent one ends the job DEAD.
async fn handle(
    queued: Queued,
    ctx: Data<Arc<Ctx>>,
    attempt: Attempt,
    id: TaskId,
) -> Result<(), BoxDynError> {
    let span = landsby_platform::telemetry::job_span(
        queued.job.kind(),
        &id.to_string(),
        queued.traceparent.as_deref(),
    );
    let kind = queued.job.kind();
    let started = std::time::Instant::now();
    let outcome =
        tracing::Instrument::instrument(attempt_job(queued.job, ctx, attempt, id), span.clone())
            .await;
    let label = match &outcome {
        Ok(()) => "done",
        Err(e) if e.downcast_ref::<AbortError>().is_some() => {
            landsby_platform::telemetry::record_error(&span);
            "dead"
        }
        Err(_) => "retry",
    };
    landsby_platform::telemetry::Metrics::get().job(kind, label, started.elapsed());
    outcome
}

/// One attempt of a job, in its span.
async fn attempt_job(
    job: Job,
    ctx: Data<Arc<Ctx>>,
    attempt: Attempt,
    id: TaskId,
) -> Result<(), BoxDynError> {
    let attempt = attempt.current();
    let max = ctx.config.max_attempts as usize;
    let kind = job.kind();
    if attempt > max {
        tracing::warn!(job = %id, kind, attempt, "attempts are spent: the job is DEAD");
        return Err(AbortError::new(JobError::Permanent("attempts are spent".into())).into());
    }
    let outcome = match tokio::time::timeout(ctx.config.job_timeout, run(&ctx, &job, attempt)).await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(JobError::Retry("the job ran out of time".into())),
    };
    match outcome {
        Ok(()) => {
            tracing::debug!(job = %id, kind, attempt, "job done");
            Ok(())
        }
        Err(JobError::CaseClosed(reason)) => {
            tracing::info!(job = %id, kind, attempt, %reason, "the case closed meanwhile: nothing to do");
            Ok(())
        }
        Err(JobError::Retry(reason)) if attempt < max => {
            let wait = backoff(ctx.config.backoff_base, ctx.config.backoff_max, attempt);
            tracing::info!(job = %id, kind, attempt, %reason, ?wait, "job failed; will retry");
            if let Err(e) = ctx.queue.delay(&id.to_string(), wait).await {
                tracing::warn!(job = %id, error = %e, "could not delay the retry");
            }
            Err(JobError::Retry(reason).into())
        }
        Err(e) => {
            tracing::warn!(job = %id, kind, attempt, error = %e, "job is DEAD");
            Err(AbortError::new(e).into())
        }
    }
}

/// The work of one job.
async fn run(ctx: &Ctx, job: &Job, attempt: usize) -> Result<(), JobError> {
    match job {
        Job::RecomputeCase {
            agency,
            case_id,
            step,
        } => crate::recompute::recompute(ctx, agency, *case_id, step.as_ref(), attempt > 1)
            .await
            .map(drop),
        Job::VisitNotice {
            agency,
            case_id,
            visit_id,
            event_id,
            change,
            previous_start,
        } => {
            crate::notify::visit_notice(
                ctx,
                agency,
                *case_id,
                *visit_id,
                event_id,
                *change,
                *previous_start,
            )
            .await
        }
        Job::ConcernNotice {
            agency,
            case_id,
            visit_id,
            event_id,
        } => crate::notify::concern_notice(ctx, agency, *case_id, *visit_id, event_id).await,
        Job::Sweep { agency, sweep_id } => crate::sweep::plan(ctx, agency, *sweep_id).await,
        Job::SweepBatch {
            agency,
            sweep_id,
            key,
            case_ids,
            ..
        } => crate::sweep::batch(ctx, agency, *sweep_id, key, case_ids, attempt > 1).await,
    }
}

/// A name no other process has: apalis keys a worker's heartbeat and its jobs' locks by name, and a
/// process restarted under the same name (a pod that keeps its name) must not inherit a dead
/// process's locks or be refused as a duplicate.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    format!(
        "landsby-worker-{host}-{}-{}",
        std::process::id(),
        Uuid::now_v7().simple()
    )
}

/// What a worker process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything: feeds, jobs, the queue guard, the sweep schedule, retention.
    Serve,
    /// Jobs and the queue guard only (`landsby-worker sweep --once`).
    JobsOnly,
}

/// Starts everything the worker does beside its admin API, once its database is migrated: the
/// apalis workers, the feed followers, the queue guard and the sweep schedule. All stop on
/// `shutdown`; the handle ends when the job monitor has stopped.
pub fn spawn(ctx: Arc<Ctx>, shutdown: Shutdown, mode: Mode) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !wait_for_migrations(&ctx, &shutdown).await {
            return;
        }
        let name = worker_name();
        tracing::info!(worker = %name, "worker starting");
        let agencies = if mode == Mode::Serve {
            ctx.config.agencies.clone()
        } else {
            Vec::new()
        };
        for agency in agencies {
            for feed in [crate::follow::Feed::Case, crate::follow::Feed::Visitation] {
                tokio::spawn(crate::follow::follow(
                    ctx.clone(),
                    feed,
                    agency.clone(),
                    name.clone(),
                    shutdown.clone(),
                ));
            }
        }
        tokio::spawn(guard(ctx.clone(), shutdown.clone()));
        if mode == Mode::Serve {
            tokio::spawn(crate::sweep::schedule(ctx.clone(), shutdown.clone()));
            tokio::spawn(crate::retention::schedule(ctx.clone(), shutdown.clone()));
            tokio::spawn(watch_queue(ctx.clone(), shutdown.clone()));
        }
        // A worker that ends with an error (its database away too long, say) is started again
        // under a new name after a backoff, until shutdown: jobs never silently stop running.
        let mut failures = 0usize;
        let mut name = name;
        loop {
            match monitor(ctx.clone(), name, shutdown.clone()).await {
                Ok(()) if shutdown.is_triggered() => return,
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "the job monitor stopped with an error; starting it again");
                }
            }
            let wait = backoff(
                Duration::from_millis(500),
                Duration::from_secs(30),
                failures.max(1),
            );
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(wait) => {}
            }
            name = worker_name();
        }
    })
}

async fn wait_for_migrations(ctx: &Ctx, shutdown: &Shutdown) -> bool {
    loop {
        if ctx.store.migrated().await {
            return true;
        }
        tokio::select! {
            () = shutdown.wait() => return false,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The queue guard, every half `jobs.stale_after`.
/// Counts the queue's waiting and DEAD jobs every few seconds for the metrics
/// `landsby.queue.depth` and `landsby.jobs.dead`.
async fn watch_queue(ctx: Arc<Ctx>, shutdown: Shutdown) {
    let gauges = landsby_platform::telemetry::QueueGauges::register();
    loop {
        match ctx.queue.depth().await {
            Ok((waiting, dead)) => gauges.set(waiting, dead),
            Err(e) => tracing::warn!(error = %e, "the queue could not be counted"),
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

async fn guard(ctx: Arc<Ctx>, shutdown: Shutdown) {
    let every = ctx.config.stale_after / 2;
    loop {
        match ctx.queue.guard(ctx.config.stale_after).await {
            Ok((0, 0)) => {}
            Ok((again, dead)) => {
                tracing::warn!(
                    again,
                    dead,
                    "jobs of lost worker processes taken up again or DEAD"
                );
            }
            Err(e) => tracing::warn!(error = %e, "the queue guard could not run"),
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The apalis monitor with one worker on the configured backend, until `shutdown`.
async fn monitor(ctx: Arc<Ctx>, name: String, shutdown: Shutdown) -> Result<(), BoxDynError> {
    let concurrency = ctx.config.concurrency as usize;
    let poll = ctx.config.poll_interval;
    // A worker is seen several times within `stale_after`, so the guard never takes a live
    // worker's jobs.
    let heartbeat = (ctx.config.stale_after / 4).max(Duration::from_millis(500));
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.wait().await;
            Ok(())
        }
    };
    let grace = ctx.config.job_timeout.min(Duration::from_secs(30));
    let monitor = Monitor::new().shutdown_timeout(grace);
    let monitor = match &ctx.queue {
        crate::queue::Queue::Sqlite(pool) => {
            let pool = pool.clone();
            let ctx = ctx.clone();
            monitor.register(move |restart| {
                let config = apalis_sqlite::Config::default()
                    .queue(crate::queue::QUEUE)
                    .heartbeat_interval(heartbeat)
                    .batch_size(concurrency);
                let backend = apalis_sqlite::SqliteStorage::<Queued>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(poll);
                WorkerBuilder::new(format!("{name}-{restart}"))
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(concurrency)
                    .build(handle)
            })
        }
        crate::queue::Queue::Postgres(pool) => {
            let pool = pool.clone();
            let ctx = ctx.clone();
            monitor.register(move |restart| {
                let config = apalis_postgres::Config::default()
                    .queue(crate::queue::QUEUE)
                    .heartbeat_interval(heartbeat)
                    .batch_size(concurrency);
                let backend = apalis_postgres::PostgresStorage::<Queued>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(poll);
                WorkerBuilder::new(format!("{name}-{restart}"))
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(concurrency)
                    .build(handle)
            })
        }
    };
    monitor.run_with_signal(signal).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_carry_ids_and_a_kind_tag() {
        let job = Job::ConcernNotice {
            agency: "0301".into(),
            case_id: Uuid::nil(),
            visit_id: Uuid::nil(),
            event_id: "e".into(),
        };
        let json = serde_json::to_value(&job).unwrap_or_default();
        assert_eq!(json["kind"], "concern_notice");
        assert_eq!(json["agency"], "0301");
        let back: Job = serde_json::from_value(json).unwrap_or_else(|_| job.clone());
        assert_eq!(back, job);
    }

    #[test]
    fn worker_names_differ_between_calls() {
        assert_ne!(worker_name(), worker_name());
    }
}

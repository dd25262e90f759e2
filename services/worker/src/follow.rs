//! Following an agency's event feeds (`WatchEvents` of the case and visitation services) and
//! turning events into jobs.
//!
//! The cursor (the last sequence handled) is kept in the worker's database and moves in the same
//! transaction as the jobs an event made, so a restart resumes where it stopped and loses nothing.
//! Every job has an idempotency key made from what the event is about (the case version, the event
//! id), so an event read twice makes no second job. One process follows a feed at a time: it
//! holds a lease on the cursor's row and renews it; when it dies, another takes over once the lease
//! has run out.

use crate::Ctx;
use crate::clients::streaming;
use crate::jobs::{Job, StepNotice, VisitChange};
use crate::queue::{Advance, Also};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use landsby_platform::server::Shutdown;
use landsby_platform::validate::timestamp_from_proto;
use landsby_platform::vocab::step_from;
use landsby_proto::case as cpb;
use landsby_proto::visitation as vpb;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The case service's.
    Case,
    /// The visitation service's.
    Visitation,
}

impl Feed {
    /// Its name in the cursor table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Case => "case",
            Self::Visitation => "visitation",
        }
    }
}

fn uuid(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn recompute(agency: &str, case_id: Uuid, key: String) -> (Job, String) {
    (
        Job::RecomputeCase {
            agency: agency.to_owned(),
            case_id,
            step: None,
        },
        key,
    )
}

/// The jobs a case event makes, each with its idempotency key.
pub fn case_jobs(agency: &str, event: &cpb::CaseEvent) -> Vec<(Job, String)> {
    use cpb::case_event::Change;
    let Some(case_id) = uuid(&event.case_id) else {
        return Vec::new();
    };
    // Events of one change share the case version: one recompute for them all.
    let key = format!("recompute/{case_id}/v{}", event.case_version);
    match &event.change {
        Some(Change::StepChanged(change)) => {
            let step = cpb::Step::try_from(change.to)
                .ok()
                .and_then(step_from)
                .map(|s| s.as_str().to_owned());
            let effective = timestamp_from_proto(event.occur_time.as_ref())
                .map(landsby_domain::time::oslo_date);
            match (step, effective) {
                (Some(step), Some(effective)) => vec![(
                    Job::RecomputeCase {
                        agency: agency.to_owned(),
                        case_id,
                        step: Some(StepNotice {
                            event_id: event.event_id.clone(),
                            step,
                            effective,
                        }),
                    },
                    format!("{key}/step/{}", event.event_id),
                )],
                _ => vec![recompute(agency, case_id, key)],
            }
        }
        // Derived data the worker itself wrote: nothing follows from it that the job that wrote
        // it did not already do.
        Some(Change::ReviewsChanged(_)) => Vec::new(),
        Some(Change::CaseUpdated(u)) if u.paths.iter().all(|p| p == "visit_facts") => Vec::new(),
        Some(Change::CaseClosed(_)) | None => Vec::new(),
        Some(_) => vec![recompute(agency, case_id, key)],
    }
}

/// The jobs a visitation event makes, each with its idempotency key.
pub fn visitation_jobs(agency: &str, event: &vpb::VisitationEvent) -> Vec<(Job, String)> {
    use vpb::visitation_event::Change;
    let Some(case_id) = uuid(&event.case_id) else {
        return Vec::new();
    };
    let id = &event.event_id;
    // The case service learns of the visit through the recompute (BatchSyncVisitFacts).
    let facts = recompute(agency, case_id, format!("recompute/{case_id}/visits/{id}"));
    let notice = |visit_id: &str, change: VisitChange, previous: Option<DateTime<Utc>>| {
        uuid(visit_id).map(|visit_id| {
            (
                Job::VisitNotice {
                    agency: agency.to_owned(),
                    case_id,
                    visit_id,
                    event_id: id.clone(),
                    change,
                    previous_start: previous,
                },
                format!("visit_notice/{id}"),
            )
        })
    };
    match &event.change {
        Some(Change::VisitScheduled(v)) => {
            let mut jobs = vec![facts];
            jobs.extend(notice(&v.visit_id, VisitChange::Scheduled, None));
            jobs
        }
        Some(Change::VisitRescheduled(v)) => {
            let mut jobs = vec![facts];
            jobs.extend(notice(
                &v.visit_id,
                VisitChange::Rescheduled,
                timestamp_from_proto(v.previous_start_time.as_ref()),
            ));
            jobs
        }
        Some(Change::VisitCancelled(v)) => {
            let mut jobs = vec![facts];
            jobs.extend(notice(&v.visit_id, VisitChange::Cancelled, None));
            jobs
        }
        Some(Change::VisitCompleted(v)) => {
            let mut jobs = vec![facts];
            if v.concern
                && let Some(visit_id) = uuid(&v.visit_id)
            {
                jobs.push((
                    Job::ConcernNotice {
                        agency: agency.to_owned(),
                        case_id,
                        visit_id,
                        event_id: id.clone(),
                    },
                    format!("concern_notice/{id}"),
                ));
            }
            jobs
        }
        Some(Change::VisitUpdated(_) | Change::VisitConfirmed(_) | Change::VisitNoShow(_)) => {
            vec![facts]
        }
        // The worker's own BatchApplyComputedScopes, or a caseworker's adjustment: nothing to recompute.
        Some(Change::PlanChanged(_)) | None => Vec::new(),
    }
}

/// Follows one feed of one agency until `shutdown`: takes the feed's lease (waiting while another
/// process holds it), streams events from the cursor, queues their jobs and moves the cursor, and
/// starts again from the cursor after any error.
pub async fn follow(ctx: Arc<Ctx>, feed: Feed, agency: String, owner: String, shutdown: Shutdown) {
    let ttl = ctx.config.stale_after;
    let renew_every = ttl / 3;
    let mut failures = 0usize;
    loop {
        if shutdown.is_triggered() {
            break;
        }
        let outcome = follow_once(&ctx, feed, &agency, &owner, &shutdown, renew_every).await;
        let wait = match outcome {
            Ok(()) => {
                failures = 0;
                renew_every
            }
            Err(reason) => {
                failures += 1;
                tracing::info!(feed = feed.name(), agency = %agency, %reason, "feed interrupted; resuming from the cursor");
                crate::jobs::backoff(
                    Duration::from_millis(200),
                    ctx.config.backoff_max.min(Duration::from_secs(10)),
                    failures,
                )
            }
        };
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    if let Err(e) = ctx.store.release(feed.name(), &agency, &owner).await {
        tracing::warn!(feed = feed.name(), error = %e, "could not release the feed's lease");
    }
}

/// One stretch of following: Ok when the lease is held by another process (or was lost), Err
/// with a reason when the stream or the database failed.
async fn follow_once(
    ctx: &Ctx,
    feed: Feed,
    agency: &str,
    owner: &str,
    shutdown: &Shutdown,
    renew_every: Duration,
) -> Result<(), String> {
    let ttl = ctx.config.stale_after;
    let Some(after) = ctx
        .store
        .lease(feed.name(), agency, owner, ttl)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let mut events = open(ctx, feed, agency, after).await?;
    let mut renew = tokio::time::interval(renew_every);
    renew.tick().await;
    loop {
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            _ = renew.tick() => {
                let held = ctx.store.lease(feed.name(), agency, owner, ttl).await.map_err(|e| e.to_string())?;
                if held.is_none() {
                    return Ok(());
                }
            }
            next = events.next() => {
                let Some(next) = next else { return Err("the feed ended".into()) };
                let read = next?;
                if let Some(at) = read.committed.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)) {
                    let lag = (chrono::Utc::now() - at).to_std().unwrap_or_default();
                    landsby_platform::telemetry::Metrics::get().feed(feed.name(), lag);
                }
                let advance = Advance { feed: feed.name(), agency, after_sequence: read.sequence, owner };
                // The jobs are queued in the change's trace, so each carries it on.
                let span = landsby_platform::telemetry::event_span(feed.name(), read.sequence, &read.traceparent);
                let held = tracing::Instrument::instrument(
                    ctx.queue.push(&read.jobs, ctx.config.max_attempts, Also::Cursor(advance)),
                    span,
                )
                .await
                .map_err(|e| e.to_string())?;
                if !held {
                    return Ok(());
                }
            }
        }
    }
}

/// One event read from a feed: its jobs, and what ties them to the change that wrote it.
struct Read {
    sequence: i64,
    jobs: Vec<(Job, String)>,
    traceparent: String,
    committed: Option<prost_types::Timestamp>,
}

type Events = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Read, String>> + Send>>;

async fn open(ctx: &Ctx, feed: Feed, agency: &str, after: i64) -> Result<Events, String> {
    let tokens = &ctx.tokens;
    let agency_owned = agency.to_owned();
    match feed {
        Feed::Case => {
            let request = streaming(
                tokens,
                agency,
                cpb::WatchEventsRequest {
                    after_sequence: after,
                },
            )
            .map_err(|e| e.to_string())?;
            let stream = ctx
                .services
                .case
                .clone()
                .watch_events(request)
                .await
                .map_err(|s| {
                    format!(
                        "case.WatchEvents: {}",
                        landsby_platform::error::code_name(s.code())
                    )
                })?
                .into_inner();
            Ok(Box::pin(stream.map(move |item| {
                let event = item
                    .map_err(|s| {
                        format!(
                            "case feed: {}",
                            landsby_platform::error::code_name(s.code())
                        )
                    })?
                    .event
                    .ok_or("case feed: an empty event")?;
                Ok(Read {
                    sequence: event.sequence,
                    jobs: case_jobs(&agency_owned, &event),
                    traceparent: event.traceparent,
                    committed: event.occur_time,
                })
            })))
        }
        Feed::Visitation => {
            let request = streaming(
                tokens,
                agency,
                vpb::WatchEventsRequest {
                    after_sequence: after,
                },
            )
            .map_err(|e| e.to_string())?;
            let stream = ctx
                .services
                .visitation
                .clone()
                .watch_events(request)
                .await
                .map_err(|s| {
                    format!(
                        "visitation.WatchEvents: {}",
                        landsby_platform::error::code_name(s.code())
                    )
                })?
                .into_inner();
            Ok(Box::pin(stream.map(move |item| {
                let event = item
                    .map_err(|s| {
                        format!(
                            "visitation feed: {}",
                            landsby_platform::error::code_name(s.code())
                        )
                    })?
                    .event
                    .ok_or("visitation feed: an empty event")?;
                Ok(Read {
                    sequence: event.sequence,
                    jobs: visitation_jobs(&agency_owned, &event),
                    traceparent: event.traceparent,
                    committed: event.occur_time,
                })
            })))
        }
    }
}

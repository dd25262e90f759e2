//! The review sweep: every open case of an agency recomputed in batches, reminders of reviews
//! coming due to the caseworker, escalation of overdue reviews to the team lead, reminders to a
//! visit's participants the day before, and a flag on cases behind on the caseworker's follow-up
//! visits.
//!
//! A sweep starts on the cron schedule (`jobs.sweep_schedule`, Europe/Oslo), from `TriggerSweep`,
//! or from `landsby-worker sweep --once`. Every replica sees every cron tick, but a tick is swept
//! once (the sweeps table is unique per agency and tick) and an agency has one sweep running at a
//! time. The sweep's planner is a job that lists the open cases and queues them as batch jobs,
//! which any replica takes. A batch is recorded when it is queued and marked done once, so a sweep
//! interrupted by a crash goes on with the batches not done; every notice has an idempotency key
//! from what it is about (the review and its due date, the visit and its start), so no reminder is
//! sent twice.

use crate::Ctx;
use crate::error::JobError;
use crate::jobs::Job;
use crate::notify::{self, Notice};
use crate::queue::Also;
use crate::store::{BatchCounts, SweepRecord};
use chrono::{Duration as Days, Utc};
use chrono_tz::Europe::Oslo;
use landsby_domain::notice::Kind;
use landsby_domain::time::oslo_date;
use landsby_platform::server::Shutdown;
use landsby_platform::validate::{date_from_proto, timestamp_from_proto};
use landsby_proto::case as cpb;
use landsby_proto::visitation as vpb;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// Cases listed per page while planning.
const PAGE: i32 = 500;

/// Starts a sweep of `agency` for `tick` (unless the tick was swept or a sweep runs) and makes
/// sure its planner is queued. Returns the sweep and whether this call started it.
pub async fn start(
    ctx: &Ctx,
    agency: &str,
    trigger: &str,
    tick: &str,
) -> Result<(SweepRecord, bool), JobError> {
    let day = oslo_date(Utc::now());
    let (sweep, started) = ctx
        .store
        .start_sweep(agency, tick, trigger, day)
        .await
        .map_err(|e| JobError::Retry(format!("worker database: {e}")))?;
    if sweep.finished_at.is_none() && !sweep.planned {
        // Queued again for a sweep that is not planned yet: a planner lost between the sweep's
        // row and its job is queued now (the key keeps one).
        let job = Job::Sweep {
            agency: agency.to_owned(),
            sweep_id: sweep.id,
        };
        ctx.queue
            .push(
                &[(job, format!("sweep/{}", sweep.id))],
                ctx.config.max_attempts,
                Also::Nothing,
            )
            .await?;
    }
    Ok((sweep, started))
}

/// Follows the cron schedule until `shutdown`, starting a sweep of each agency at each tick.
pub async fn schedule(ctx: Arc<Ctx>, shutdown: Shutdown) {
    use futures::StreamExt;
    let expression = ctx.config.sweep_schedule.trim().to_owned();
    if expression.is_empty() {
        return;
    }
    let Ok(schedule) = cron::Schedule::from_str(&expression) else {
        tracing::error!("jobs.sweep_schedule does not parse; no scheduled sweeps");
        return;
    };
    let ticks = apalis_cron::CronScheduler::new(schedule)
        .with_timezone(Oslo)
        .into_stream();
    tokio::pin!(ticks);
    loop {
        let tick = tokio::select! {
            () = shutdown.wait() => return,
            tick = ticks.next() => tick,
        };
        let Some(Ok(tick)) = tick else {
            tracing::error!("the sweep schedule ended");
            return;
        };
        let name = format!("cron:{}", tick.get_timestamp());
        for agency in &ctx.config.agencies {
            match start(&ctx, agency, "cron", &name).await {
                Ok((sweep, true)) => {
                    tracing::info!(agency = %agency, sweep = %sweep.id, "scheduled review sweep started");
                }
                Ok((_, false)) => {}
                Err(e) => {
                    tracing::warn!(agency = %agency, error = %e, "a scheduled sweep could not start")
                }
            }
        }
    }
}

/// The planner: lists the agency's open cases and queues them as batch jobs, each recorded with
/// the sweep. Run again, it queues only batches not queued yet.
pub async fn plan(ctx: &Ctx, agency: &str, sweep_id: Uuid) -> Result<(), JobError> {
    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = call!(
            ctx,
            agency,
            case.list_cases(cpb::ListCasesRequest {
                page_size: PAGE,
                page_token,
                status: cpb::CaseStatus::Open as i32,
                ..Default::default()
            })
        )?;
        ids.extend(
            page.cases
                .iter()
                .filter_map(|c| Uuid::parse_str(&c.id).ok()),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    ids.sort();
    ids.dedup();
    let size = ctx.config.sweep_batch_size as usize;
    for (n, chunk) in ids.chunks(size.max(1)).enumerate() {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        // The key is the batch's content: a planner run again over a changed list queues the
        // batches that differ (a case twice at worst, never none).
        let key = format!("sweep/{sweep_id}/{first}..{last}/{}", chunk.len());
        let job = Job::SweepBatch {
            agency: agency.to_owned(),
            sweep_id,
            batch: u32::try_from(n).unwrap_or(u32::MAX),
            key: key.clone(),
            case_ids: chunk.to_vec(),
        };
        ctx.queue
            .push(
                &[(job, key.clone())],
                ctx.config.max_attempts,
                Also::Batch {
                    sweep_id,
                    key: &key,
                    cases: i64::try_from(chunk.len()).unwrap_or(i64::MAX),
                },
            )
            .await?;
    }
    ctx.store
        .planned(sweep_id)
        .await
        .map_err(|e| JobError::Retry(format!("worker database: {e}")))?;
    tracing::info!(agency = %agency, sweep = %sweep_id, cases = ids.len(), "review sweep planned");
    Ok(())
}

/// One batch: each case recomputed, reminded and flagged; then the batch is recorded as done. A
/// case that fails for good is counted and the batch goes on; a service that is away fails the
/// batch, to be run again (what it already did changes nothing the second time).
pub async fn batch(
    ctx: &Ctx,
    agency: &str,
    sweep_id: Uuid,
    key: &str,
    case_ids: &[Uuid],
    retry: bool,
) -> Result<(), JobError> {
    let mut counts = BatchCounts::default();
    // The whole batch read and written in a few calls; each case's scopes and notices on its own.
    let (as_of, read) = crate::recompute::read(ctx, agency, case_ids).await?;
    let mut done = crate::recompute::recompute_all(ctx, agency, as_of, read, None, retry).await?;
    let mut reminders = Vec::new();
    for &case_id in case_ids {
        match done.remove(&case_id) {
            // Gone since it was planned, or not open: nothing to do.
            None | Some(Ok(None)) => counts.cases_done += 1,
            Some(Ok(Some(r))) => {
                counts.cases_done += 1;
                reminders.extend(remind(ctx, agency, case_id, &r, &mut counts));
            }
            Some(Err(e)) => {
                counts.cases_failed += 1;
                tracing::warn!(sweep = %sweep_id, case = %case_id, reason = %e, "a case could not be recomputed");
            }
        }
    }
    // Every case's reminders in a few calls.
    let (counters, notices): (Vec<Reminder>, Vec<Notice>) = reminders.into_iter().unzip();
    for (counter, sent) in counters
        .into_iter()
        .zip(notify::send_all(ctx, agency, notices).await?)
    {
        let new = i64::from(sent?);
        match counter {
            Reminder::ReviewDue => counts.review_reminders += new,
            Reminder::ReviewOverdue => counts.escalations += new,
            Reminder::Visit => counts.visit_reminders += new,
        }
    }
    ctx.store
        .finish_batch(sweep_id, key, counts)
        .await
        .map_err(|e| JobError::Retry(format!("worker database: {e}")))
}

/// What a review is, in words for a reminder: its kind (the note can carry names).
fn review_text(r: &cpb::Review) -> &'static str {
    match cpb::ReviewKind::try_from(r.kind) {
        Ok(cpb::ReviewKind::StepReview) => "Evaluering av trinn",
        Ok(cpb::ReviewKind::PlanEvaluation) => "Evaluering av oppfølgingsplanen",
        Ok(cpb::ReviewKind::FollowUpVisit) => "Oppfølgingsbesøk i fosterhjemmet",
        Ok(cpb::ReviewKind::ConferenceFollowUp) => "Oppfølging av familieråd",
        Ok(cpb::ReviewKind::EarlyReview) => "Tidlig gjennomgang etter bekymring",
        Ok(cpb::ReviewKind::SecretAddressRenewal) => "Fornyelse av sperret adresse",
        _ => "Gjennomgang",
    }
}

/// What a reminder counts as in a batch's counts.
enum Reminder {
    ReviewDue,
    ReviewOverdue,
    Visit,
}

/// The reminders of one case, to send with the batch's others; its flags counted.
fn remind(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    r: &crate::recompute::Recomputed,
    counts: &mut BatchCounts,
) -> Vec<(Reminder, Notice)> {
    let mut out = Vec::new();
    let now = Utc::now();
    let today = oslo_date(now);
    let policy = &ctx.policy.reviews;
    let remind_until = today + Days::days(i64::from(policy.remind_days_before));
    let escalate_from = today - Days::days(i64::from(policy.escalate_days_after));
    // Every scheduled review (the computed ones and the caseworker's own), as the recompute left
    // them.
    let caseworker = r.case.assigned_caseworker.as_str();
    let mut behind = false;
    for review in &r.reviews {
        let Some(due) = date_from_proto(review.due_date.as_ref()) else {
            continue;
        };
        let mut params = BTreeMap::new();
        params.insert("due".to_owned(), due.to_string());
        params.insert("review".to_owned(), review_text(review).to_owned());
        if cpb::ReviewKind::try_from(review.kind).ok() == Some(cpb::ReviewKind::FollowUpVisit)
            && due < today
        {
            behind = true;
        }
        if due >= today && due <= remind_until && !caseworker.is_empty() {
            out.push((
                Reminder::ReviewDue,
                Notice {
                    case_id,
                    about: format!("review_due/{}/{due}", review.id),
                    recipient: notify::staff(caseworker),
                    kind: Kind::ReviewDue,
                    params,
                    protection: r.protection.clone(),
                },
            ));
        } else if due <= escalate_from {
            let Some(lead) = ctx
                .config
                .team_lead(agency)
                .or(Some(caseworker).filter(|c| !c.is_empty()))
            else {
                continue;
            };
            out.push((
                Reminder::ReviewOverdue,
                Notice {
                    case_id,
                    about: format!("review_overdue/{}/{due}", review.id),
                    recipient: notify::staff(lead),
                    kind: Kind::ReviewOverdue,
                    params,
                    protection: r.protection.clone(),
                },
            ));
        }
    }
    if behind {
        counts.follow_up_flags += 1;
    }
    // Visits in the next 24 hours, to their parent and participants (the recompute read the
    // case's visits, future ones included).
    let tomorrow = now + Days::hours(24);
    for v in r.visits.iter().filter(|v| {
        matches!(
            vpb::VisitStatus::try_from(v.status),
            Ok(vpb::VisitStatus::Scheduled | vpb::VisitStatus::Confirmed)
        )
    }) {
        let Some(start) = timestamp_from_proto(v.start_time.as_ref()) else {
            continue;
        };
        if start <= now || start > tomorrow {
            continue;
        }
        let mut params = BTreeMap::new();
        params.insert("start".to_owned(), notify::rfc3339(start));
        params.insert("place".to_owned(), notify::place_text(v.frame.as_ref()));
        let about = format!("visit_reminder/{}/{}", v.id, start.timestamp());
        for m in notify::visit_recipients(v, &r.members) {
            out.push((
                Reminder::Visit,
                Notice {
                    case_id,
                    about: about.clone(),
                    recipient: notify::member(m),
                    kind: Kind::VisitReminder,
                    params: params.clone(),
                    protection: r.protection.clone(),
                },
            ));
        }
    }
    out
}

/// `landsby-worker sweep --once`: migrates the worker's database, starts a sweep of every agency,
/// runs jobs (no feeds, no schedule) until every sweep is done, and returns them. SIGTERM or SIGINT
/// stops it early with an error; what was not done is finished by the worker or the next run.
pub async fn once(config: landsby_platform::config::Config) -> Result<Vec<SweepRecord>, String> {
    use landsby_platform::db::DbPool;
    config.require_for("sweep").map_err(|e| e.to_string())?;
    let url = config.worker.database_url(&config.data_dir, "worker");
    let db = DbPool::connect_lazy(&url, &config.database, "worker").map_err(|e| e.to_string())?;
    db.migrate(&crate::MIGRATIONS).await.map_err(|e| {
        format!(
            "migrations failed on {}: {}",
            db.describe(),
            landsby_platform::db::describe_migrate_error(&e)
        )
    })?;
    let policy = Arc::new(config.policy().map_err(|e| e.to_string())?);
    let ctx = Arc::new(Ctx::from_parts(&config, db, policy).map_err(|e| e.to_string())?);
    let shutdown = Shutdown::new();
    let jobs = crate::jobs::spawn(ctx.clone(), shutdown.clone(), crate::jobs::Mode::JobsOnly);
    let mut sweeps = Vec::new();
    for agency in &ctx.config.agencies {
        let tick = format!("once:{}", Uuid::now_v7());
        let (sweep, _) = start(&ctx, agency, "manual", &tick)
            .await
            .map_err(|e| format!("agency {agency}: the sweep could not start: {e}"))?;
        sweeps.push((agency.clone(), sweep.id));
    }
    let signal = landsby_platform::server::shutdown_signal();
    tokio::pin!(signal);
    let outcome = loop {
        let mut done = Vec::new();
        for (agency, id) in &sweeps {
            match ctx.store.sweep(agency, Some(*id)).await {
                Ok(Some(s)) if s.finished_at.is_some() => done.push(s),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read a sweep's state"),
            }
        }
        if done.len() == sweeps.len() {
            break Ok(done);
        }
        tokio::select! {
            () = &mut signal => break Err("stopped by a signal before the sweep was done; the worker finishes it".to_owned()),
            () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
        }
    };
    shutdown.trigger();
    let _ = jobs.await;
    outcome
}

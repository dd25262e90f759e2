//! RecomputeCase: what follows from a change to a case, done by the worker.
//!
//! 1. Read the case, its village and its visits of the last year; tell the case service what it
//!    needs to know of the visits (BatchSyncVisitFacts, as of the visitation feed's cursor).
//! 2. For each parent with visitation rights, compute the scope with the policy in
//!    `crates/domain` and put it in force (BatchApplyComputedScopes), stamped with the case version, the
//!    policy version and the day (Europe/Oslo) it was computed from: a stale or repeated stamp
//!    changes nothing, while the same case and policy on a later day (an older child, a new year, a
//!    reduction run out) replaces.
//! 3. Compute the due reviews and replace the case's computed ones (BatchSyncDueReviews), stamped the
//!    same way.
//! 4. Tell the village: a step change to the family and the caseworker; a scope whose values
//!    changed to its parent and the foster parents.
//!
//! Every read is the worker's (role `service`); every write is idempotent, so a job that crashed
//! half-way is run again from the start.

use crate::Ctx;
use crate::error::JobError;
use crate::jobs::StepNotice;
use crate::notify;
use chrono::{NaiveDate, Utc};
use landsby_domain::due::{
    self, ConcernFact, ConferenceFact, DueInput, Reduction, SecretAddressFact,
};
use landsby_domain::notice::Kind;
use landsby_domain::scope::{
    self, CancelledBy, OutcomeKind, ScopeInput, ScopeValues, VisitOutcome,
};
use landsby_domain::time::oslo_date;
use landsby_domain::{Goal, Step, VisitationFloor};
use landsby_platform::validate::{
    Violations, date_from_proto, date_to_proto, timestamp_from_proto,
};
use landsby_platform::vocab::{floor_from, goal_from, goal_to, step_from, step_to};
use landsby_proto::case as cpb;
use landsby_proto::visitation as vpb;
use landsby_visitation::api::convert::{scope_from, scope_to};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The most visits, reviews or goals a case is computed from.
const MAX_ITEMS: usize = 1000;
/// How far back visits are read: a year, as BatchSyncVisitFacts takes them.
const VISITS_DAYS: i64 = 365;

/// What a recompute did.
#[derive(Debug, Clone, Default)]
pub struct Recomputed {
    /// The case as computed from.
    pub case: cpb::Case,
    /// Its village.
    pub members: Vec<cpb::VillageMember>,
    /// What parent-side recipients must not be sent.
    pub protection: landsby_proto::notification::CaseProtection,
    /// The case version it computed from.
    pub case_version: i64,
    /// Parents whose scope was computed.
    pub parents: usize,
    /// Scopes put in force by this run.
    pub scopes_applied: usize,
    /// Whether the due reviews were replaced by this run.
    pub reviews_applied: bool,
    /// The case's scheduled reviews after the run: the computed ones as synced, and those a
    /// caseworker scheduled.
    pub reviews: Vec<cpb::Review>,
    /// The case's visits from a year ago on (future ones included).
    pub visits: Vec<vpb::Visit>,
    /// New notices sent (one sent before, by an earlier attempt, is not counted).
    pub notices: usize,
}

fn uuid(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

/// What a recompute computes a case from: its snapshot from the case service, its plans and its
/// visits of the last year (future ones included) from the visitation service.
#[derive(Debug, Clone)]
pub struct CaseRead {
    /// The case, its village, goals, reviews, conferences and board decisions.
    pub snapshot: cpb::CaseSnapshot,
    /// Its plans.
    pub plans: Vec<vpb::VisitationPlan>,
    /// Its visits from a year ago on.
    pub visits: Vec<vpb::Visit>,
    /// It has more visits than were read.
    pub more_visits: bool,
}

/// The most cases read per call: a year of weekly visits with their frames and reports is some
/// tens of kilobytes a case, and an answer must stay under `server.max_message_bytes` (4 MiB).
pub(crate) const READ_CHUNK: usize = 25;

/// The most cases written per call (the case service takes up to 200), so a sweep batch of 100
/// writes each kind of fact in one call and one transaction…
const WRITE_CHUNK: usize = 100;
/// …unless their encoded size passes this first (a year of visits for many cases), well under
/// `server.max_message_bytes` (4 MiB).
const WRITE_BYTES: usize = 1024 * 1024;

/// `items` cut into calls of at most [`WRITE_CHUNK`] items and, past the first item of each,
/// [`WRITE_BYTES`] by `size`.
fn write_chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        for item in rest.iter().take(WRITE_CHUNK) {
            bytes += size(item);
            if n > 0 && bytes > WRITE_BYTES {
                break;
            }
            n += 1;
        }
        let (chunk, after) = rest.split_at(n);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// Reads what the cases `ids` are computed from, a few calls for all of them: the visitation
/// feed's position first (the visits read are at least that new), then the cases' snapshots and
/// their plans and visits. A case the agency does not have is not in the map.
pub async fn read(
    ctx: &Ctx,
    agency: &str,
    ids: &[Uuid],
) -> Result<(i64, HashMap<Uuid, CaseRead>), JobError> {
    let as_of = ctx
        .store
        .cursor("visitation", agency)
        .await
        .map_err(|e| JobError::Retry(format!("worker database: {e}")))?;
    let since = Utc::now() - chrono::Duration::days(VISITS_DAYS);
    let since = prost_types::Timestamp {
        seconds: since.timestamp(),
        nanos: 0,
    };
    let mut out = HashMap::new();
    for chunk in ids.chunks(READ_CHUNK) {
        let case_ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
        let snapshots = call!(
            ctx,
            agency,
            case.batch_get_case_snapshots(cpb::BatchGetCaseSnapshotsRequest {
                case_ids: case_ids.clone(),
            })
        )?
        .snapshots;
        let mut visitation: HashMap<String, vpb::CaseVisitation> = call!(
            ctx,
            agency,
            visitation.batch_get_case_visitation(vpb::BatchGetCaseVisitationRequest {
                case_ids,
                visits_start_after: Some(since),
            })
        )?
        .cases
        .into_iter()
        .map(|c| (c.case_id.clone(), c))
        .collect();
        for snapshot in snapshots {
            let Some(id) = snapshot.case.as_ref().and_then(|c| uuid(&c.id)) else {
                continue;
            };
            let v = visitation.remove(&id.to_string()).unwrap_or_default();
            out.insert(
                id,
                CaseRead {
                    snapshot,
                    plans: v.plans,
                    visits: v.visits,
                    more_visits: v.more_visits,
                },
            );
        }
    }
    Ok((as_of, out))
}

/// How a visit went, for scope; None for a visit still to come.
fn outcome(v: &vpb::Visit) -> Option<VisitOutcome> {
    let on = oslo_date(timestamp_from_proto(v.start_time.as_ref())?);
    let kind = match vpb::VisitStatus::try_from(v.status).ok()? {
        vpb::VisitStatus::Completed => OutcomeKind::Completed {
            concern: v.report.as_ref().is_some_and(|r| r.concern),
        },
        vpb::VisitStatus::NoShow => OutcomeKind::NoShow,
        vpb::VisitStatus::Cancelled => OutcomeKind::Cancelled {
            by: match v
                .cancellation
                .as_ref()
                .and_then(|c| vpb::CancelledBy::try_from(c.cancelled_by).ok())
            {
                Some(vpb::CancelledBy::Parent) => CancelledBy::Parent,
                Some(vpb::CancelledBy::Agency) => CancelledBy::Agency,
                Some(vpb::CancelledBy::FosterParents) => CancelledBy::FosterParents,
                Some(vpb::CancelledBy::ChildIllness) => CancelledBy::ChildIllness,
                _ => CancelledBy::Other,
            },
        },
        _ => return None,
    };
    Some(VisitOutcome { on, kind })
}

/// A visit as the case service keeps it; None for a visit still to come.
fn fact(v: &vpb::Visit) -> Option<cpb::VisitFact> {
    let outcome = match vpb::VisitStatus::try_from(v.status).ok()? {
        vpb::VisitStatus::Completed => cpb::VisitFactOutcome::Completed,
        vpb::VisitStatus::NoShow => cpb::VisitFactOutcome::NoShow,
        vpb::VisitStatus::Cancelled => {
            match v
                .cancellation
                .as_ref()
                .and_then(|c| vpb::CancelledBy::try_from(c.cancelled_by).ok())
            {
                Some(vpb::CancelledBy::Parent) => cpb::VisitFactOutcome::CancelledByParent,
                _ => cpb::VisitFactOutcome::CancelledByOthers,
            }
        }
        _ => return None,
    };
    let report = v.report.as_ref();
    Some(cpb::VisitFact {
        visit_id: v.id.clone(),
        parent_id: v.parent_id.clone(),
        start_time: v.start_time,
        outcome: outcome as i32,
        concern: report.is_some_and(|r| r.concern),
        foster_parents_involved: report
            .and_then(|r| r.foster_parents.as_ref())
            .is_some_and(|f| f.before || f.during || f.after),
    })
}

/// The day a completed review was decided.
fn completed_on(r: &cpb::Review) -> Option<NaiveDate> {
    if cpb::ReviewStatus::try_from(r.status).ok()? != cpb::ReviewStatus::Completed {
        return None;
    }
    timestamp_from_proto(r.outcome.as_ref()?.decide_time.as_ref()).map(oslo_date)
}

fn kind_of(r: &cpb::Review) -> Option<cpb::ReviewKind> {
    cpb::ReviewKind::try_from(r.kind).ok()
}

/// The due reviews of the case today.
#[allow(clippy::too_many_arguments)]
fn due_reviews(
    ctx: &Ctx,
    case: &cpb::Case,
    step: Step,
    today: NaiveDate,
    reviews: &[cpb::Review],
    goals: &[cpb::FollowUpGoal],
    conferences: &[cpb::FamilyGroupConference],
    decisions: &[cpb::BoardDecision],
    visits: &[vpb::Visit],
) -> Vec<due::DueReview> {
    let step_since = date_from_proto(case.step_since.as_ref()).unwrap_or(today);
    let completed = |kind: cpb::ReviewKind| {
        reviews
            .iter()
            .filter(move |r| kind_of(r) == Some(kind))
            .filter_map(|r| completed_on(r).map(|d| (r, d)))
    };
    let key_done = |kind: cpb::ReviewKind, prefix: &str| {
        completed(kind).any(|(r, _)| r.computed_key.starts_with(prefix))
    };
    let last_step_review = completed(cpb::ReviewKind::StepReview)
        .map(|(_, d)| d)
        .filter(|d| *d >= step_since)
        .max();
    let plan_established = goals
        .iter()
        .filter_map(|g| timestamp_from_proto(g.create_time.as_ref()).map(oslo_date))
        .min();
    let last_plan_evaluation = completed(cpb::ReviewKind::PlanEvaluation)
        .map(|(_, d)| d)
        .max();
    let follow_up_visits: Vec<NaiveDate> = completed(cpb::ReviewKind::FollowUpVisit)
        .map(|(_, d)| d)
        .collect();
    let reduction = case.follow_up_reduction.as_ref().and_then(|r| {
        Some(Reduction {
            decided_on: date_from_proto(r.decided_on.as_ref())?,
            expires: date_from_proto(r.expires_on.as_ref())?,
        })
    });
    let conference_facts: Vec<ConferenceFact> = conferences
        .iter()
        .filter_map(|c| {
            let id = uuid(&c.id)?;
            Some(ConferenceFact {
                id,
                held_on: date_from_proto(c.held_on.as_ref()),
                follow_up_done: key_done(
                    cpb::ReviewKind::ConferenceFollowUp,
                    &format!("conference_follow_up/{id}"),
                ),
            })
        })
        .collect();
    let concerns: Vec<ConcernFact> = visits
        .iter()
        .filter(|v| v.report.as_ref().is_some_and(|r| r.concern))
        .filter_map(|v| {
            let visit_id = uuid(&v.id)?;
            Some(ConcernFact {
                visit_id,
                on: oslo_date(timestamp_from_proto(v.start_time.as_ref())?),
                reviewed: key_done(
                    cpb::ReviewKind::EarlyReview,
                    &format!("early_review/{visit_id}"),
                ),
            })
        })
        .collect();
    let secret: Vec<SecretAddressFact> = decisions
        .iter()
        .filter(|d| d.secret_address)
        .filter_map(|d| {
            let decision_id = uuid(&d.id)?;
            let prefix = format!("secret_address_renewal/{decision_id}");
            Some(SecretAddressFact {
                decision_id,
                valid_from: date_from_proto(d.valid_from.as_ref())?,
                valid_to: date_from_proto(d.valid_to.as_ref()),
                last_renewed: completed(cpb::ReviewKind::SecretAddressRenewal)
                    .filter(|(r, _)| r.computed_key.starts_with(&prefix))
                    .map(|(_, d)| d)
                    .max(),
            })
        })
        .collect();
    due::due_reviews(
        &DueInput {
            today,
            step,
            step_since,
            last_step_review,
            plan_established,
            last_plan_evaluation,
            placed_since: case
                .placement
                .as_ref()
                .and_then(|p| date_from_proto(p.start_date.as_ref())),
            follow_up_visits: &follow_up_visits,
            follow_up_reduction: reduction,
            conferences: &conference_facts,
            concerns: &concerns,
            secret_address_decisions: &secret,
        },
        &ctx.policy.reviews,
    )
}

fn review_kind_to(k: due::ReviewKind) -> cpb::ReviewKind {
    match k {
        due::ReviewKind::StepReview => cpb::ReviewKind::StepReview,
        due::ReviewKind::PlanEvaluation => cpb::ReviewKind::PlanEvaluation,
        due::ReviewKind::FollowUpVisit => cpb::ReviewKind::FollowUpVisit,
        due::ReviewKind::ConferenceFollowUp => cpb::ReviewKind::ConferenceFollowUp,
        due::ReviewKind::EarlyReview => cpb::ReviewKind::EarlyReview,
        due::ReviewKind::SecretAddressRenewal => cpb::ReviewKind::SecretAddressRenewal,
    }
}

fn values_of(plan: &vpb::VisitationPlan) -> Option<ScopeValues> {
    let mut v = Violations::new();
    scope_from(&mut v, "scope", plan.scope.as_ref()).map(|s| s.values())
}

/// A scope's values in words for a plan_changed notice: numbers and codes only.
fn summary(values: &ScopeValues) -> String {
    let period = |p: landsby_domain::VisitPeriod| match p {
        landsby_domain::VisitPeriod::Week => "uke",
        landsby_domain::VisitPeriod::Month => "måned",
        landsby_domain::VisitPeriod::Year => "år",
    };
    let mut s = format!(
        "{} samvær per {}, {} minutter",
        values.frequency.count,
        period(values.frequency.period),
        values.duration_minutes
    );
    if values.overnights.count > 0 {
        s.push_str(&format!(
            ", {} overnatting(er) per {}",
            values.overnights.count,
            period(values.overnights.period)
        ));
    }
    s
}

/// Recomputes the case (see the module). None when the case does not exist for the agency or is
/// closed. `retry` says an earlier attempt may have put a scope in force before it stopped: its
/// notices are sent again (the notification service keeps one per key).
pub async fn recompute(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    step_notice: Option<&StepNotice>,
    retry: bool,
) -> Result<Option<Recomputed>, JobError> {
    let (as_of, read) = read(ctx, agency, &[case_id]).await?;
    let mut done = recompute_all(ctx, agency, as_of, read, step_notice, retry).await?;
    match done.remove(&case_id) {
        Some(result) => result,
        None => Ok(None),
    }
}

/// What became of one case of [`recompute_all`]: what the recompute did (None: nothing to do, the
/// case is not open), or why it failed for good.
pub type CaseOutcome = Result<Option<Recomputed>, JobError>;

/// Whether `e` is a failure of one case (counted, the others go on) rather than of the whole run (a
/// service away: the run is tried again).
fn of_one_case(e: &JobError) -> bool {
    matches!(e, JobError::Permanent(_) | JobError::KeyUsed(_))
}

/// One case of [`recompute_all`] between its steps.
struct Working {
    read: CaseRead,
    case: cpb::Case,
    /// Set once the case is done with (failed for good, or nothing to do).
    outcome: Option<CaseOutcome>,
    /// After the scopes: what the rest of the steps need.
    computed: Option<Computed>,
}

/// A case whose scopes are in force, waiting for its due reviews and its notices.
struct Computed {
    out: Recomputed,
    changed_plans: Vec<(cpb::VillageMember, vpb::VisitationPlan)>,
    due: Vec<due::DueReview>,
    today: NaiveDate,
}

/// Recomputes the cases `reads` read as of the visitation feed's position `as_of` (see
/// [`recompute`]), all at once: the visit facts of every case in one call per chunk, then each
/// case's scopes, then the due reviews of every case in one call per chunk, then the notices. A
/// case that fails for good has its error in the map and the others go on; a service that is away
/// fails the whole run (every write is idempotent: a run again changes nothing twice).
pub async fn recompute_all(
    ctx: &Ctx,
    agency: &str,
    as_of: i64,
    reads: HashMap<Uuid, CaseRead>,
    step_notice: Option<&StepNotice>,
    retry: bool,
) -> Result<HashMap<Uuid, CaseOutcome>, JobError> {
    let mut work: BTreeMap<Uuid, Working> = BTreeMap::new();
    for (case_id, read) in reads {
        let Some(case) = read.snapshot.case.clone() else {
            continue;
        };
        let outcome = if cpb::CaseStatus::try_from(case.status).ok() != Some(cpb::CaseStatus::Open)
        {
            Some(Ok(None))
        } else if read.more_visits {
            Some(Err(JobError::Permanent(format!(
                "a case with more than {MAX_ITEMS} visits in a year"
            ))))
        } else {
            None
        };
        work.insert(
            case_id,
            Working {
                read,
                case,
                outcome,
                computed: None,
            },
        );
    }

    // 1. What the case service knows of the visits, as of `as_of`.
    let items: Vec<cpb::VisitFactsItem> = work
        .iter()
        .filter(|(_, w)| w.outcome.is_none())
        .map(|(case_id, w)| cpb::VisitFactsItem {
            case_id: case_id.to_string(),
            as_of_sequence: as_of,
            frame_complete: w.read.visits.iter().any(|v| {
                v.frame_complete
                    && vpb::VisitStatus::try_from(v.status).ok()
                        != Some(vpb::VisitStatus::Cancelled)
            }),
            visits: w.read.visits.iter().filter_map(fact).collect(),
        })
        .collect();
    let mut moved = Vec::new();
    for chunk in write_chunks(&items, prost::Message::encoded_len) {
        let ids: Vec<Uuid> = chunk.iter().filter_map(|i| uuid(&i.case_id)).collect();
        let synced = call!(
            ctx,
            agency,
            case.batch_sync_visit_facts(cpb::BatchSyncVisitFactsRequest {
                items: chunk.to_vec(),
            })
        );
        match synced {
            Ok(synced) => moved.extend(
                ids.iter()
                    .zip(synced.results)
                    .filter(|(_, r)| r.applied)
                    .map(|(id, _)| *id),
            ),
            Err(e) if of_one_case(&e) => fail_all(&mut work, &ids, &e),
            Err(e) => return Err(e),
        }
    }
    // The facts moved these cases' versions: compute from the cases as they are now.
    if !moved.is_empty() {
        let mut now = notify::snapshots(ctx, agency, &moved).await?;
        for id in moved {
            let Some(w) = work.get_mut(&id) else { continue };
            match now.remove(&id).and_then(|s| s.case) {
                Some(case) => w.case = case,
                None => w.outcome = Some(Ok(None)),
            }
        }
    }

    // 2. Each case's scopes computed; those not in force from this very stamp put in force, all
    // cases' in a few calls.
    let mut pending = Vec::new();
    for (case_id, w) in work.iter_mut().filter(|(_, w)| w.outcome.is_none()) {
        match scopes(ctx, w, retry) {
            Ok((computed, asks)) => {
                w.computed = Some(computed);
                pending.extend(asks.into_iter().map(|a| (*case_id, a)));
            }
            Err(e) => w.outcome = Some(Err(e)),
        }
    }
    // A chunk refused for good is tried again item by item, so that one case's refusal (a parent
    // whose rights were taken away meanwhile) fails that case only.
    let mut chunks: Vec<&[(Uuid, Ask)]> = pending.chunks(SCOPES_CHUNK).rev().collect();
    while let Some(chunk) = chunks.pop() {
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        let applied = call!(
            ctx,
            agency,
            visitation.batch_apply_computed_scopes(vpb::BatchApplyComputedScopesRequest {
                items: chunk.iter().map(|(_, a)| a.item.clone()).collect(),
            })
        );
        let results = match applied {
            Ok(applied) => applied.results,
            Err(e) if of_one_case(&e) && chunk.len() > 1 => {
                chunks.extend(chunk.chunks(1).rev());
                continue;
            }
            Err(e) if of_one_case(&e) => {
                fail_all(&mut work, &ids, &e);
                continue;
            }
            Err(e) => return Err(e),
        };
        for ((case_id, ask), result) in chunk.iter().zip(results) {
            let Some(w) = work.get_mut(case_id) else {
                continue;
            };
            let version = w.case.version;
            let Some(c) = w.computed.as_mut() else {
                continue;
            };
            if result.applied {
                c.out.scopes_applied += 1;
            }
            let Some(after) = result.plan else { continue };
            let ours = in_force_from(&after, version, &ctx.policy.version, c.today);
            // A new scope version is news; a stamp moved on the version in force is not. A retry
            // tells again what an earlier attempt may have put in force (the keys keep one).
            let new_version = ask.had != Some(after.scope_version);
            if (result.applied && new_version) || (retry && ours) {
                c.changed_plans.push((ask.parent.clone(), after));
            }
        }
    }

    // 3. The due reviews of every case.
    let items: Vec<(Uuid, cpb::DueReviewsItem)> = work
        .iter()
        .filter(|(_, w)| w.outcome.is_none())
        .filter_map(|(id, w)| {
            let c = w.computed.as_ref()?;
            Some((
                *id,
                cpb::DueReviewsItem {
                    case_id: id.to_string(),
                    case_version: w.case.version,
                    policy_version: ctx.policy.version.clone(),
                    computed_on: Some(date_to_proto(c.today)),
                    reviews: c
                        .due
                        .iter()
                        .map(|r| cpb::Review {
                            kind: review_kind_to(r.kind) as i32,
                            due_date: Some(date_to_proto(r.due)),
                            note: r.reason.clone(),
                            computed_key: r.key.clone(),
                            ..Default::default()
                        })
                        .collect(),
                },
            ))
        })
        .collect();
    for chunk in write_chunks(&items, |(_, item)| prost::Message::encoded_len(item)) {
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        let synced = call!(
            ctx,
            agency,
            case.batch_sync_due_reviews(cpb::BatchSyncDueReviewsRequest {
                items: chunk.iter().map(|(_, i)| i.clone()).collect(),
            })
        );
        match synced {
            Ok(synced) => {
                for (id, r) in ids.iter().zip(synced.results) {
                    let Some(c) = work.get_mut(id).and_then(|w| w.computed.as_mut()) else {
                        continue;
                    };
                    c.out.reviews_applied = r.applied;
                    c.out.reviews = r.reviews;
                }
            }
            Err(e) if of_one_case(&e) => fail_all(&mut work, &ids, &e),
            Err(e) => return Err(e),
        }
    }

    // 4. Tell the village: every case's notices in a few calls.
    let mut done = HashMap::new();
    let mut told: Vec<(Uuid, notify::Notice)> = Vec::new();
    for (case_id, w) in work {
        let outcome = match (w.outcome, w.computed) {
            (Some(outcome), _) => outcome,
            (None, None) => Ok(None),
            (None, Some(c)) => {
                match tell(ctx, agency, case_id, w.case, w.read, c, step_notice).await {
                    Ok((out, notices)) => {
                        told.extend(notices.into_iter().map(|n| (case_id, n)));
                        Ok(Some(out))
                    }
                    Err(e) if of_one_case(&e) => Err(e),
                    Err(e) => return Err(e),
                }
            }
        };
        done.insert(case_id, outcome);
    }
    let (cases, notices): (Vec<Uuid>, Vec<notify::Notice>) = told.into_iter().unzip();
    let sent = notify::send_all(ctx, agency, notices).await?;
    for (case_id, sent) in cases.into_iter().zip(sent) {
        match (done.get_mut(&case_id), sent) {
            (Some(Ok(Some(out))), Ok(new)) => out.notices += usize::from(new),
            (Some(outcome), Err(e)) => *outcome = Err(e),
            _ => {}
        }
    }
    Ok(done)
}

/// Marks the cases `ids` failed with (a copy of) `e`.
fn fail_all(work: &mut BTreeMap<Uuid, Working>, ids: &[Uuid], e: &JobError) {
    for id in ids {
        if let Some(w) = work.get_mut(id) {
            w.outcome = Some(Err(match e {
                JobError::KeyUsed(r) => JobError::KeyUsed(r.clone()),
                other => JobError::Permanent(other.to_string()),
            }));
        }
    }
}

/// A computed scope to put in force, and what the worker read of its plan.
struct Ask {
    parent: cpb::VillageMember,
    /// The scope version of the parent's plan as read; None for a parent without a plan yet.
    had: Option<i64>,
    item: vpb::ComputedScopeItem,
}

/// Items of BatchApplyComputedScopes per call (a case has one or two parents with rights).
const SCOPES_CHUNK: usize = 50;

/// Step 2 of [`recompute_all`] for one case: each parent's scope computed, and those not in force
/// from this very stamp to be put in force; the due reviews computed.
fn scopes(ctx: &Ctx, w: &Working, retry: bool) -> Result<(Computed, Vec<Ask>), JobError> {
    let case = &w.case;
    let CaseRead {
        snapshot,
        plans,
        visits,
        ..
    } = &w.read;
    let case_id = uuid(&case.id).ok_or_else(|| JobError::Permanent("the case has no id".into()))?;
    let now = Utc::now();
    let today = oslo_date(now);
    let (Some(step), Some(goal)) = (
        cpb::Step::try_from(case.step).ok().and_then(step_from),
        cpb::Goal::try_from(case.goal).ok().and_then(goal_from),
    ) else {
        return Err(JobError::Permanent("the case has no step or goal".into()));
    };
    let members = &snapshot.members;
    let protection = notify::protection(case, members);
    let floors: HashMap<Uuid, VisitationFloor> = case
        .board_decision
        .as_ref()
        .map(|d| {
            d.floors
                .iter()
                .filter_map(floor_from)
                .map(|f| (f.parent_id, f))
                .collect()
        })
        .unwrap_or_default();
    let goals = &snapshot.follow_up_goals;
    let parenting_goals: Vec<String> = goals
        .iter()
        .filter(|g| {
            cpb::FollowUpGoalStatus::try_from(g.status).ok()
                == Some(cpb::FollowUpGoalStatus::Active)
        })
        .map(|g| g.description.clone())
        .collect();
    let birth = case
        .child
        .as_ref()
        .and_then(|c| date_from_proto(c.birth_date.as_ref()))
        .ok_or_else(|| JobError::Permanent("the case has no child's birth date".into()))?;
    let mut out = Recomputed {
        case_version: case.version,
        ..Recomputed::default()
    };
    let computed_from = |step: Step, goal: Goal| vpb::ComputedFrom {
        case_version: case.version,
        policy_version: ctx.policy.version.clone(),
        step: step_to(step) as i32,
        goal: goal_to(goal) as i32,
        computed_on: Some(date_to_proto(today)),
    };
    let mut asks = Vec::new();
    for parent in members.iter().filter(|m| {
        m.has_visitation_rights
            && notify::role(m).is_some_and(landsby_domain::VillageRole::is_parent)
    }) {
        let Some(parent_id) = uuid(&parent.id) else {
            continue;
        };
        let plan = plans.iter().find(|p| p.parent_id == parent.id);
        let current = plan.and_then(values_of);
        let recent: Vec<VisitOutcome> = visits
            .iter()
            .filter(|v| v.parent_id == parent.id)
            .filter_map(outcome)
            .collect();
        let computed = scope::compute(
            &ScopeInput {
                step,
                goal,
                floor: floors.get(&parent_id),
                secret_address: protection.secret_address,
                child_birth_date: birth,
                today,
                recent_visits: &recent,
                current: current.as_ref(),
                parenting_goals: &parenting_goals,
            },
            &ctx.policy,
        );
        out.parents += 1;
        // Already in force from this very stamp (this day included), with the floor and the
        // secret address it was checked against: the visitation service would change nothing (an
        // equal stamp applies again only when those changed). Not asked again, unless a retry has
        // notices to finish.
        let floor = floors
            .get(&parent_id)
            .map(landsby_platform::vocab::floor_to);
        let unchanged = plan.is_some_and(|p| {
            nothing_to_apply(
                p,
                (case.version, &ctx.policy.version, today),
                floor.as_ref(),
                protection.secret_address,
            )
        });
        if unchanged && !retry {
            continue;
        }
        asks.push(Ask {
            parent: parent.clone(),
            had: plan.map(|p| p.scope_version),
            item: vpb::ComputedScopeItem {
                case_id: case_id.to_string(),
                parent_id: parent.id.clone(),
                computed_from: Some(computed_from(step, goal)),
                scope: Some(scope_to(&computed)),
            },
        });
    }
    let due = due_reviews(
        ctx,
        case,
        step,
        today,
        &snapshot.reviews,
        goals,
        &snapshot.conferences,
        &snapshot.board_decisions,
        visits,
    );
    out.protection = protection;
    let computed = Computed {
        out,
        changed_plans: Vec::new(),
        due,
        today,
    };
    Ok((computed, asks))
}

/// Step 4 of [`recompute_all`] for one case: what to tell whom (sent with the other cases'), a
/// step change to the family and the caseworker, a scope whose values changed to its parent and the
/// foster parents.
async fn tell(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    case: cpb::Case,
    read: CaseRead,
    computed: Computed,
    step_notice: Option<&StepNotice>,
) -> Result<(Recomputed, Vec<notify::Notice>), JobError> {
    let mut notices = Vec::new();
    let Computed {
        mut out,
        changed_plans,
        today,
        ..
    } = computed;
    let CaseRead {
        snapshot, visits, ..
    } = read;
    let members = snapshot.members;
    let protection = out.protection.clone();
    out.reviews.extend(snapshot.reviews.into_iter().filter(|r| {
        r.computed_key.is_empty()
            && cpb::ReviewStatus::try_from(r.status).ok() == Some(cpb::ReviewStatus::Scheduled)
    }));
    if let Some(notice) = step_notice {
        let mut params = BTreeMap::new();
        params.insert("step".to_owned(), notice.step.clone());
        params.insert("effective".to_owned(), notice.effective.to_string());
        let mut recipients: Vec<_> = notify::family(&members).map(notify::member).collect();
        if !case.assigned_caseworker.is_empty() {
            recipients.push(notify::staff(&case.assigned_caseworker));
        }
        notices.extend(recipients.into_iter().map(|r| notify::Notice {
            case_id,
            about: notice.event_id.clone(),
            recipient: r,
            kind: Kind::StepChanged,
            params: params.clone(),
            protection: protection.clone(),
        }));
    }
    for (parent, plan) in &changed_plans {
        let Some(values) = values_of(plan) else {
            continue;
        };
        // Compared with the version before it (not with what this run read first, which a retry
        // reads after its own change): a new stamp with the same values tells nobody anything.
        if previous_values(ctx, agency, plan).await?.as_ref() == Some(&values) {
            continue;
        }
        let effective = timestamp_from_proto(plan.update_time.as_ref()).map_or(today, oslo_date);
        let mut params = BTreeMap::new();
        params.insert("effective".to_owned(), effective.to_string());
        params.insert("summary".to_owned(), summary(&values));
        let about = format!("plan/{}/v{}", plan.id, plan.scope_version);
        let recipients = std::iter::once(parent).chain(notify::foster_parents(&members));
        notices.extend(recipients.map(|m| notify::Notice {
            case_id,
            about: about.clone(),
            recipient: notify::member(m),
            kind: Kind::PlanChanged,
            params: params.clone(),
            protection: protection.clone(),
        }));
    }
    out.case = case;
    out.members = members;
    out.visits = visits;
    Ok((out, notices))
}

/// Whether the plan's computed scope is in force from this very stamp: the case version, the policy
/// version and the day (Europe/Oslo) it was computed on. A plan from another day is not: the
/// computation depends on the day (the child's age, the calendar year, a reduction that runs out).
fn in_force_from(
    plan: &vpb::VisitationPlan,
    case_version: i64,
    policy_version: &str,
    today: NaiveDate,
) -> bool {
    plan.computed_from.as_ref().is_some_and(|c| {
        c.case_version == case_version
            && c.policy_version == policy_version
            && date_from_proto(c.computed_on.as_ref()) == Some(today)
    })
}

/// Whether BatchApplyComputedScopes would change nothing for the plan: it is in force from this very
/// `stamp` (see [`in_force_from`]) and was checked against the same floor and secret address. A
/// replay on the same day is skipped; the nightly sweep on a later day is not.
fn nothing_to_apply(
    plan: &vpb::VisitationPlan,
    (case_version, policy_version, today): (i64, &str, NaiveDate),
    floor: Option<&cpb::VisitationFloor>,
    secret_address: bool,
) -> bool {
    in_force_from(plan, case_version, policy_version, today)
        && plan.floor.as_ref() == floor
        && plan.secret_address == secret_address
}

/// The values of the plan's scope version before `plan.scope_version`; None for a new plan.
/// Newer versions may exist by now (another job applied a newer stamp meanwhile): the listing is
/// read until the version below this one.
async fn previous_values(
    ctx: &Ctx,
    agency: &str,
    plan: &vpb::VisitationPlan,
) -> Result<Option<ScopeValues>, JobError> {
    if plan.scope_version <= 1 {
        // The plan's first version: nothing before it to ask for.
        return Ok(None);
    }
    let mut page_token = String::new();
    let mut read = 0usize;
    loop {
        let page = call!(
            ctx,
            agency,
            visitation.list_scope_versions(vpb::ListScopeVersionsRequest {
                plan_id: plan.id.clone(),
                page_size: 50,
                page_token,
            })
        )?;
        read += page.versions.len();
        if let Some(v) = page
            .versions
            .iter()
            .find(|v| v.version < plan.scope_version)
        {
            let mut violations = Violations::new();
            return Ok(scope_from(&mut violations, "scope", v.scope.as_ref()).map(|s| s.values()));
        }
        if page.next_page_token.is_empty() || read >= MAX_ITEMS {
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_a_hundred_cases_a_call_or_fewer_when_large() {
        let small = vec![10_usize; 250];
        let sizes: Vec<usize> = write_chunks(&small, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        // Large items: as many as fit in WRITE_BYTES, and one alone even when it alone is larger.
        let large = vec![
            WRITE_BYTES / 3,
            WRITE_BYTES / 3,
            WRITE_BYTES / 3,
            WRITE_BYTES / 3,
            2 * WRITE_BYTES,
            1,
        ];
        let sizes: Vec<usize> = write_chunks(&large, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [3, 1, 1, 1]);
        assert!(write_chunks(&Vec::<usize>::new(), |n| *n).is_empty());
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default()
    }

    fn plan(case_version: i64, policy: &str, on: Option<NaiveDate>) -> vpb::VisitationPlan {
        vpb::VisitationPlan {
            computed_from: Some(vpb::ComputedFrom {
                case_version,
                policy_version: policy.into(),
                step: cpb::Step::Safety.into(),
                goal: cpb::Goal::Reunification.into(),
                computed_on: on.map(date_to_proto),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_replay_on_the_same_day_is_skipped() {
        let p = plan(3, "2026.1", Some(day(23)));
        assert!(nothing_to_apply(&p, (3, "2026.1", day(23)), None, false));
    }

    #[test]
    fn a_later_day_or_another_stamp_is_applied() {
        let p = plan(3, "2026.1", Some(day(23)));
        assert!(
            !nothing_to_apply(&p, (3, "2026.1", day(24)), None, false),
            "the nightly sweep on a later day"
        );
        assert!(!nothing_to_apply(&p, (4, "2026.1", day(23)), None, false));
        assert!(!nothing_to_apply(&p, (3, "2026.2", day(23)), None, false));
        let undated = plan(3, "2026.1", None);
        assert!(
            !nothing_to_apply(&undated, (3, "2026.1", day(23)), None, false),
            "a plan computed before days were stamped"
        );
        assert!(!nothing_to_apply(
            &vpb::VisitationPlan::default(),
            (3, "2026.1", day(23)),
            None,
            false
        ));
    }

    #[test]
    fn a_changed_floor_or_secret_address_is_applied_on_the_same_day() {
        let p = plan(3, "2026.1", Some(day(23)));
        let floor = cpb::VisitationFloor {
            min_visits: 2,
            ..Default::default()
        };
        assert!(!nothing_to_apply(
            &p,
            (3, "2026.1", day(23)),
            Some(&floor),
            false
        ));
        assert!(!nothing_to_apply(&p, (3, "2026.1", day(23)), None, true));
    }
}

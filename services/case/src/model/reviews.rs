//! Reviews and the decisions made at them: what a completed review records, and the rules that
//! decide what a decision does to the case (the staircase's moves, readiness for an advance, and
//! approval by a team lead who is not the decider).

use super::CaseRecord;
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::due::ReviewKind;
use landsby_domain::policy::Policy;
use landsby_domain::readiness::{self, Assessment, ConferenceState, Facts};
use landsby_domain::staircase::{self, Decision, Position};
use landsby_platform::ApiError;
use landsby_platform::error::PreconditionViolation;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a review is still to be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStatus {
    /// Not yet done.
    Scheduled,
    /// Done.
    Completed,
    /// A computed review a later computation no longer asks for.
    Replaced,
}

impl ReviewStatus {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Completed => "completed",
            Self::Replaced => "replaced",
        }
    }

    /// The status for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "scheduled" => Some(Self::Scheduled),
            "completed" => Some(Self::Completed),
            "replaced" => Some(Self::Replaced),
            _ => None,
        }
    }
}

/// Where a decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionStatus {
    /// It changed nothing (hold) or took effect.
    Applied,
    /// It waits for a team lead.
    PendingApproval,
    /// A team lead rejected it.
    Rejected,
}

impl DecisionStatus {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::PendingApproval => "pending_approval",
            Self::Rejected => "rejected",
        }
    }

    /// The status for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "applied" => Some(Self::Applied),
            "pending_approval" => Some(Self::PendingApproval),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// The child's view at a review, or why it could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildView {
    /// What the child said or showed.
    View(String),
    /// Why it could not be obtained.
    NotObtained(String),
}

/// What a completed review recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewOutcome {
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub rationale: String,
    /// The child's view.
    pub child_view: ChildView,
    /// Who decided.
    pub decided_by: String,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// Where the case stood when it was decided.
    pub from: Position,
    /// Who approved or rejected it.
    pub reviewed_by: Option<String>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// When it was approved or rejected.
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: ReviewKind,
    pub due_date: NaiveDate,
    pub status: ReviewStatus,
    pub note: String,
    /// The stable key of a computed review.
    pub computed_key: Option<String>,
    pub outcome: Option<ReviewOutcome>,
    pub decision_status: Option<DecisionStatus>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A review to schedule (by a caseworker, or computed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub kind: ReviewKind,
    pub due_date: NaiveDate,
    pub note: String,
    pub computed_key: Option<String>,
}

/// Filters of ListReviews.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    pub due_before: Option<NaiveDate>,
    pub status: Option<ReviewStatus>,
}

/// What a review's decision does, decided inside the store's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The review's outcome, as it is to be stored.
    pub outcome: ReviewOutcome,
    /// Where the decision stands.
    pub status: DecisionStatus,
    /// The position the case moves to now, if it moves.
    pub apply: Option<Position>,
}

/// What a review's decision is settled against, read by the store in one transaction.
#[derive(Debug)]
pub struct Standing<'a> {
    /// The case.
    pub case: &'a CaseRecord,
    /// The review being completed, approved or rejected.
    pub review: &'a ReviewRecord,
    /// The case's readiness facts.
    pub facts: &'a Facts,
    /// Another review of the case whose decision waits for a team lead, if one does.
    pub other_pending: Option<Uuid>,
}

/// Decides what completing a review (or approving or rejecting its decision) does.
pub type Settle = Box<dyn FnOnce(&Standing<'_>) -> Result<Settlement, ApiError> + Send>;

fn subject(case: &CaseRecord) -> String {
    format!("cases/{}", case.id)
}

/// The move a decision makes, refused with the rule when the staircase has no such move, and an
/// advance refused with every unmet readiness condition.
fn checked_move(
    case: &CaseRecord,
    decision: Decision,
    facts: &Facts,
    policy: &Policy,
) -> Result<Position, ApiError> {
    let from = case.position();
    // Readiness first: it names the staircase's own refusals of an advance (the top step, step 3
    // without a reunification goal) among every other unmet condition, so the caller sees them all.
    if decision == Decision::Advance {
        let assessment = readiness::assess(from.step, from.goal, facts, &policy.readiness);
        if !assessment.ready() {
            return Err(not_ready(case, &assessment));
        }
    }
    staircase::apply(from, decision)
        .map_err(|e| ApiError::precondition("STAIRCASE_MOVE", subject(case), e.to_string()))
}

/// FAILED_PRECONDITION naming each unmet readiness condition.
pub fn not_ready(case: &CaseRecord, assessment: &Assessment) -> ApiError {
    ApiError::FailedPrecondition(
        assessment
            .unmet()
            .map(|c| PreconditionViolation {
                kind: format!("READINESS_{}", c.key.to_uppercase()),
                subject: subject(case),
                description: c.reason.clone(),
            })
            .collect(),
    )
}

/// Completing a review: the decision's move is checked (readiness for an advance, with the child's
/// view recorded now), then it takes effect at once, or waits for a team lead when the policy says so
/// and the case would move.
pub fn complete(
    decision: Decision,
    rationale: String,
    child_view: ChildView,
    decided_by: String,
    at: DateTime<Utc>,
    policy: std::sync::Arc<Policy>,
) -> Settle {
    Box::new(move |standing| {
        let Standing {
            case,
            review,
            facts,
            other_pending,
        } = *standing;
        if review.status != ReviewStatus::Scheduled {
            return Err(ApiError::precondition(
                "REVIEW_NOT_SCHEDULED",
                format!("{}/reviews/{}", subject(case), review.id),
                "the review is not scheduled: it was completed or replaced",
            ));
        }
        // The child's view is recorded with this very decision.
        let facts = Facts {
            child_view_recorded: true,
            ..facts.clone()
        };
        let to = checked_move(case, decision, &facts, &policy)?;
        let moves = to != case.position();
        if let Some(pending) = other_pending.filter(|_| moves) {
            // Two step or goal decisions waiting at once would each be approved against a case the
            // other may have moved.
            return Err(ApiError::precondition(
                "DECISION_PENDING",
                format!("{}/reviews/{pending}", subject(case)),
                "another step or goal decision waits for a team lead; approve or reject it first",
            ));
        }
        let needs_approval = moves && policy.approval.step_and_goal_decisions_need_team_lead;
        let outcome = ReviewOutcome {
            decision,
            rationale,
            child_view,
            decided_by,
            decided_at: at,
            from: case.position(),
            reviewed_by: None,
            rejection_reason: None,
            reviewed_at: None,
        };
        Ok(if needs_approval {
            Settlement {
                outcome,
                status: DecisionStatus::PendingApproval,
                apply: None,
            }
        } else {
            Settlement {
                outcome,
                status: DecisionStatus::Applied,
                apply: moves.then_some(to),
            }
        })
    })
}

fn pending(case: &CaseRecord, review: &ReviewRecord) -> Result<ReviewOutcome, ApiError> {
    match (&review.outcome, review.decision_status) {
        (Some(outcome), Some(DecisionStatus::PendingApproval)) => Ok(outcome.clone()),
        _ => Err(ApiError::precondition(
            "DECISION_NOT_PENDING",
            format!("{}/reviews/{}", subject(case), review.id),
            "the review has no decision waiting for approval",
        )),
    }
}

/// Approving a pending decision: by someone other than the decider, on a case that has not moved
/// since the decision; an advance must still be ready.
pub fn approve(approver: String, at: DateTime<Utc>, policy: std::sync::Arc<Policy>) -> Settle {
    Box::new(move |standing| {
        let Standing {
            case,
            review,
            facts,
            ..
        } = *standing;
        let mut outcome = pending(case, review)?;
        if outcome.decided_by == approver {
            return Err(ApiError::precondition(
                "APPROVER_IS_DECIDER",
                format!("{}/reviews/{}", subject(case), review.id),
                "a decision is approved by a team lead other than the one who made it",
            ));
        }
        if outcome.from != case.position() {
            return Err(ApiError::precondition(
                "CASE_MOVED",
                subject(case),
                "the case has changed step or goal since the decision was made; make a new decision",
            ));
        }
        let facts = Facts {
            child_view_recorded: true,
            ..facts.clone()
        };
        let to = checked_move(case, outcome.decision, &facts, &policy)?;
        outcome.reviewed_by = Some(approver);
        outcome.reviewed_at = Some(at);
        Ok(Settlement {
            outcome,
            status: DecisionStatus::Applied,
            apply: Some(to),
        })
    })
}

/// Rejecting a pending decision: the case does not change.
pub fn reject(reviewer: String, reason: String, at: DateTime<Utc>) -> Settle {
    Box::new(move |standing| {
        let Standing { case, review, .. } = *standing;
        let mut outcome = pending(case, review)?;
        outcome.reviewed_by = Some(reviewer);
        outcome.rejection_reason = Some(reason);
        outcome.reviewed_at = Some(at);
        Ok(Settlement {
            outcome,
            status: DecisionStatus::Rejected,
            apply: None,
        })
    })
}

/// The readiness facts of a case from what the case service holds: its visit facts, follow-up goals,
/// conferences, care tasks and completed reviews. Only visits that started from the moment the case
/// entered its step count, and only a child's view heard after it (the view heard with the decision
/// that moved the case belongs to the step before).
pub fn readiness_facts(
    case: &CaseRecord,
    visits: &[super::VisitFact],
    active_goals: u32,
    conference_held: bool,
    care_tasks: u32,
    completed_reviews: &[ReviewRecord],
) -> Facts {
    let in_step: Vec<&super::VisitFact> = visits
        .iter()
        .filter(|v| v.start >= case.step_since)
        .collect();
    let completed = |v: &&&super::VisitFact| v.outcome == super::VisitFactOutcome::Completed;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Facts {
        frame_complete: case.frame_complete,
        completed_visits_without_concerns: count(
            in_step
                .iter()
                .filter(completed)
                .filter(|v| !v.concern)
                .count(),
        ),
        visits_with_foster_parent_involvement: count(
            in_step
                .iter()
                .filter(completed)
                .filter(|v| v.foster_parents_involved)
                .count(),
        ),
        active_parenting_goals: active_goals,
        conference: if conference_held {
            ConferenceState::Held
        } else if case.conference_waiver_reason.is_some() {
            ConferenceState::Waived
        } else {
            ConferenceState::None
        },
        reunification_plan_tasks: care_tasks,
        child_view_recorded: completed_reviews.iter().any(|r| {
            r.outcome
                .as_ref()
                .is_some_and(|o| o.decided_at > case.step_since)
        }),
    }
}

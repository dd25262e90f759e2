//! Visitation plans: the computed scope, the caseworker's adjustments on top, and the scope in force.

use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::board::VisitationFloor;
use landsby_domain::policy::{newer_stamp, version_order};
use landsby_domain::scope::{self, Manual, Scope};
use landsby_domain::{AgencyId, Goal, Step};
use landsby_platform::ApiError;
use landsby_platform::error::PreconditionViolation;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a computed scope was computed from: the worker's stamp, and the case's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputedFrom {
    /// The case version.
    pub case_version: i64,
    /// The policy version.
    pub policy_version: String,
    /// The case's step.
    pub step: Step,
    /// The case's goal.
    pub goal: Goal,
    /// The day (Europe/Oslo) it was computed on; None in plans computed before days were stamped
    /// (older than any day). Always present in what the worker sends now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_on: Option<NaiveDate>,
}

impl ComputedFrom {
    /// The stamp as [`newer_stamp`] takes it.
    fn stamp(&self) -> (i64, &str, Option<NaiveDate>) {
        (self.case_version, &self.policy_version, self.computed_on)
    }
}

/// A caseworker's change to one value of the computed scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// The value.
    pub manual: Manual,
    /// Why.
    pub rationale: String,
    /// Who (`sub`).
    pub adjusted_by: String,
    /// When.
    pub adjusted_at: DateTime<Utc>,
    /// The step and goal it was made in: it holds while the case stays there.
    pub step: Step,
    /// See `step`.
    pub goal: Goal,
}

/// How a scope came into force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeSource {
    /// Computed by the staircase engine.
    Computed,
    /// Adjusted by a caseworker.
    Adjusted,
}

impl ScopeSource {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Computed => "computed",
            Self::Adjusted => "adjusted",
        }
    }

    /// The source for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "computed" => Some(Self::Computed),
            "adjusted" => Some(Self::Adjusted),
            _ => None,
        }
    }
}

/// A plan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: Uuid,
    pub agency: AgencyId,
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub computed: Scope,
    pub computed_from: ComputedFrom,
    pub adjustments: Vec<Adjustment>,
    /// The scope in force: `computed` with `adjustments` applied.
    pub scope: Scope,
    pub scope_version: i64,
    pub floor: Option<VisitationFloor>,
    pub secret_address: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One scope a plan had in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeVersionRecord {
    pub plan_id: Uuid,
    pub version: i64,
    pub scope: Scope,
    pub source: ScopeSource,
    pub changed_by: String,
    pub rationale: String,
    pub computed_from: ComputedFrom,
    pub created_at: DateTime<Utc>,
}

impl PlanRecord {
    /// The version row for the scope now in force.
    pub fn current_version(
        &self,
        source: ScopeSource,
        changed_by: &str,
        rationale: &str,
    ) -> ScopeVersionRecord {
        ScopeVersionRecord {
            plan_id: self.id,
            version: self.scope_version,
            scope: self.scope.clone(),
            source,
            changed_by: changed_by.to_owned(),
            rationale: rationale.to_owned(),
            computed_from: self.computed_from.clone(),
            created_at: self.updated_at,
        }
    }
}

/// The scope in force: the computed scope with each adjustment on top, explained. The explanation
/// names who adjusted and points to the adjustment; the rationale (free text) stays in the
/// adjustment, out of the explanations that travel further.
pub fn in_force(computed: &Scope, adjustments: &[Adjustment]) -> Scope {
    let mut scope = computed.clone();
    for a in adjustments {
        let why = format!(
            "adjusted by {} on {} (the plan's adjustments say why)",
            a.adjusted_by,
            landsby_domain::time::oslo_date(a.adjusted_at)
        );
        a.manual.apply(&mut scope, &why);
    }
    scope
}

/// A computed scope for one parent, as the worker sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComputed {
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub computed_from: ComputedFrom,
    pub scope: Scope,
    pub floor: Option<VisitationFloor>,
    pub secret_address: bool,
}

/// What putting a computed scope in force did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The plan after it (unchanged when not applied).
    pub plan: PlanRecord,
    /// Whether the stamp was newer and the scope put in force.
    pub applied: bool,
    /// Whether the plan changed beyond its stamp: a new scope version. False when the stamp moved
    /// but the computed scope, the floor, the secret address and the adjustments are as they were
    /// (the nightly recompute of an unchanged case on a new day): the plan keeps its version and
    /// etag, no scope version and no event are written.
    pub changed: bool,
    /// Adjustments that no longer hold: made in another step or goal, or now past the floor or a
    /// condition.
    pub dropped: Vec<Adjustment>,
}

/// FAILED_PRECONDITION for a computed scope that breaches the law it was computed under (a bug in
/// the caller; the engine never produces one).
fn computed_breach(breaches: &[scope::Breach]) -> ApiError {
    ApiError::FailedPrecondition(
        breaches
            .iter()
            .map(|b| PreconditionViolation {
                kind: "COMPUTED_SCOPE_BREACHES_THE_LAW".into(),
                subject: format!("scope.{}", b.field),
                description: b.text.clone(),
            })
            .collect(),
    )
}

/// Whether a computed scope replaces the plan's: its stamp (case version, policy version, the day
/// it was computed on) is newer, or the same stamp was computed under law that has changed since
/// without a new case version (a board decision that came into force on a date, or ended), as the
/// case service says now.
fn supersedes(plan: &PlanRecord, new: &NewComputed) -> bool {
    let (stamp, applied) = (&new.computed_from, &plan.computed_from);
    let same_stamp = stamp.case_version == applied.case_version
        && version_order(&stamp.policy_version, &applied.policy_version).is_eq()
        && stamp.computed_on == applied.computed_on;
    let (case_version, policy_version, computed_on) = stamp.stamp();
    newer_stamp(
        case_version,
        policy_version,
        computed_on,
        Some(applied.stamp()),
    ) || (same_stamp && (new.floor != plan.floor || new.secret_address != plan.secret_address))
}

/// Puts a computed scope in force for a plan (a new one when `existing` is None), if it supersedes
/// the one in force (see [`supersedes`]); otherwise nothing changes, whatever the scope says.
/// Adjustments made in the same step and goal stay on top unless they now break the law.
pub fn apply_computed(
    existing: Option<PlanRecord>,
    new: NewComputed,
    agency: &AgencyId,
    at: DateTime<Utc>,
) -> Result<Applied, ApiError> {
    if let Some(plan) = existing.as_ref().filter(|p| !supersedes(p, &new)) {
        return Ok(Applied {
            plan: plan.clone(),
            applied: false,
            changed: false,
            dropped: Vec::new(),
        });
    }
    let breaches = scope::check(&new.scope.values(), new.floor.as_ref(), new.secret_address);
    if !breaches.is_empty() {
        return Err(computed_breach(&breaches));
    }
    let Some(mut plan) = existing else {
        let scope = new.scope.clone();
        return Ok(Applied {
            plan: PlanRecord {
                id: Uuid::now_v7(),
                agency: agency.clone(),
                case_id: new.case_id,
                parent_id: new.parent_id,
                computed: new.scope,
                computed_from: new.computed_from,
                adjustments: Vec::new(),
                scope,
                scope_version: 1,
                floor: new.floor,
                secret_address: new.secret_address,
                version: 1,
                created_at: at,
                updated_at: at,
            },
            applied: true,
            changed: true,
            dropped: Vec::new(),
        });
    };
    let stamp = &new.computed_from;
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for a in std::mem::take(&mut plan.adjustments) {
        let same_position = a.step == stamp.step && a.goal == stamp.goal;
        let mut trial = in_force(&new.scope, &kept);
        a.manual.apply(&mut trial, "");
        let lawful =
            scope::check(&trial.values(), new.floor.as_ref(), new.secret_address).is_empty();
        if same_position && lawful {
            kept.push(a);
        } else {
            dropped.push(a);
        }
    }
    if dropped.is_empty()
        && new.scope == plan.computed
        && new.floor == plan.floor
        && new.secret_address == plan.secret_address
    {
        // Only the stamp moves.
        plan.adjustments = kept;
        plan.computed_from = new.computed_from;
        return Ok(Applied {
            plan,
            applied: true,
            changed: false,
            dropped,
        });
    }
    plan.scope = in_force(&new.scope, &kept);
    plan.adjustments = kept;
    plan.computed = new.scope;
    plan.computed_from = new.computed_from;
    plan.floor = new.floor;
    plan.secret_address = new.secret_address;
    plan.scope_version += 1;
    plan.version += 1;
    plan.updated_at = at;
    Ok(Applied {
        plan,
        applied: true,
        changed: true,
        dropped,
    })
}

/// The precondition type for a breached rule.
fn breach_kind(rule: &str) -> &'static str {
    match rule {
        "board:floor" => "BOARD_FLOOR",
        "board:supervision" => "BOARD_SUPERVISION",
        "scope:overnights" => "OVERNIGHTS_SUPERVISED",
        _ => "SECRET_ADDRESS",
    }
}

/// A caseworker's adjustment of a plan: each value replaces the one in force (and an earlier
/// adjustment of the same value), checked against the board's floor and conditions and a secret
/// address as the case service has them now. A breach is FAILED_PRECONDITION naming each rule.
#[allow(clippy::too_many_arguments)]
pub fn adjust(
    plan: &mut PlanRecord,
    values: Vec<Manual>,
    rationale: &str,
    adjusted_by: &str,
    at: DateTime<Utc>,
    floor: Option<&VisitationFloor>,
    secret_address: bool,
) -> Result<(), ApiError> {
    let mut adjustments: Vec<Adjustment> = plan
        .adjustments
        .iter()
        .filter(|a| values.iter().all(|v| v.field() != a.manual.field()))
        .cloned()
        .collect();
    for manual in values {
        adjustments.push(Adjustment {
            manual,
            rationale: rationale.to_owned(),
            adjusted_by: adjusted_by.to_owned(),
            adjusted_at: at,
            step: plan.computed_from.step,
            goal: plan.computed_from.goal,
        });
    }
    let scope = in_force(&plan.computed, &adjustments);
    let breaches = scope::check(&scope.values(), floor, secret_address);
    if !breaches.is_empty() {
        return Err(ApiError::FailedPrecondition(
            breaches
                .iter()
                .map(|b| PreconditionViolation {
                    kind: breach_kind(b.rule).into(),
                    subject: format!("plans/{}/scope.{}", plan.id, b.field),
                    description: b.text.clone(),
                })
                .collect(),
        ));
    }
    plan.adjustments = adjustments;
    plan.scope = scope;
    plan.floor = floor.cloned();
    plan.secret_address = secret_address;
    plan.scope_version += 1;
    plan.version += 1;
    plan.updated_at = at;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use landsby_domain::scope::ScopeInput;

    fn day(d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, 11, d)
    }

    fn new(case_version: i64, computed_on: Option<NaiveDate>) -> NewComputed {
        let scope = scope::compute(
            &ScopeInput {
                step: Step::Safety,
                goal: Goal::Reunification,
                floor: None,
                secret_address: false,
                child_birth_date: NaiveDate::from_ymd_opt(2018, 5, 14).unwrap_or_default(),
                today: day(23).unwrap_or_default(),
                recent_visits: &[],
                current: None,
                parenting_goals: &[],
            },
            &landsby_domain::Policy::default(),
        );
        NewComputed {
            case_id: Uuid::nil(),
            parent_id: Uuid::nil(),
            computed_from: ComputedFrom {
                case_version,
                policy_version: "2026.1".into(),
                step: Step::Safety,
                goal: Goal::Reunification,
                computed_on,
            },
            scope,
            floor: None,
            secret_address: false,
        }
    }

    fn plan(case_version: i64, computed_on: Option<NaiveDate>) -> PlanRecord {
        let agency = AgencyId::parse("0301").expect("an agency");
        apply_computed(None, new(case_version, computed_on), &agency, Utc::now())
            .expect("a lawful scope")
            .plan
    }

    #[test]
    fn a_stamp_stored_before_days_were_stamped_still_reads_and_has_no_day() {
        let old = serde_json::json!({
            "case_version": 3,
            "policy_version": "2026.1",
            "step": "safety",
            "goal": "reunification",
        });
        let read: ComputedFrom = serde_json::from_value(old).expect("an old stamp reads");
        assert_eq!(read.computed_on, None);
        let stamped = ComputedFrom {
            computed_on: day(23),
            ..read
        };
        let json = serde_json::to_value(&stamped).expect("a stamp writes");
        assert_eq!(json["computed_on"], "2026-11-23");
        let back: ComputedFrom = serde_json::from_value(json).expect("a stamp reads");
        assert_eq!(back, stamped);
    }

    #[test]
    fn a_later_day_supersedes_the_same_case_and_policy_and_the_same_day_does_not() {
        let p = plan(3, day(23));
        assert!(supersedes(&p, &new(3, day(24))));
        assert!(!supersedes(&p, &new(3, day(23))), "a replay");
        assert!(!supersedes(&p, &new(3, day(22))), "an earlier day");
        assert!(supersedes(&p, &new(4, day(1))), "a later case version");
        assert!(!supersedes(&p, &new(2, day(30))), "an older case version");
        assert!(
            supersedes(&plan(3, None), &new(3, day(1))),
            "a plan computed before days were stamped"
        );
    }

    #[test]
    fn the_same_stamp_supersedes_when_the_law_changed_but_an_earlier_day_does_not() {
        let p = plan(3, day(23));
        let mut secret = new(3, day(23));
        secret.secret_address = true;
        assert!(supersedes(&p, &secret));
        secret.computed_from.computed_on = day(22);
        assert!(!supersedes(&p, &secret));
    }

    #[test]
    fn the_same_scope_under_a_newer_stamp_moves_only_the_stamp() {
        let agency = AgencyId::parse("0301").expect("an agency");
        let p = plan(3, day(23));
        let next =
            apply_computed(Some(p.clone()), new(3, day(24)), &agency, Utc::now()).expect("lawful");
        assert!(next.applied && !next.changed);
        assert_eq!(next.plan.computed_from.computed_on, day(24));
        assert_eq!(
            (next.plan.version, next.plan.scope_version),
            (p.version, p.scope_version),
            "the same version and etag"
        );
        let mut secret = new(3, day(25));
        secret.secret_address = true;
        let next = apply_computed(Some(next.plan), secret, &agency, Utc::now()).expect("lawful");
        assert!(next.applied && next.changed);
        assert_eq!(next.plan.scope_version, p.scope_version + 1);
    }
}

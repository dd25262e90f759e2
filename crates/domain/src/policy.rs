//! The staircase policy: the numbers an agency chooses (thresholds, scopes per step, review cadences),
//! in a versioned TOML file. Agency policy, not law: the county board's floor and conditions always
//! win over it. Every setting is explained in `docs/policy.md`; the built-in default is
//! `crates/domain/policy/default.toml`. Parsing takes text, never a path: reading the file is the
//! caller's I/O.

use crate::vocabulary::{Goal, Place, Step, Supervision, VisitPeriod};
use chrono::NaiveDate;
use serde::Deserialize;

/// The built-in default policy, as text.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Stamped on everything computed from this policy; change it with every change of a value.
    pub version: String,
    /// Who must approve decisions.
    pub approval: Approval,
    /// What a case needs before it may advance.
    pub readiness: Readiness,
    /// The scope of visitation per goal and step.
    pub scope: ScopePolicy,
    /// When reviews fall due.
    pub reviews: ReviewPolicy,
}

/// Approval of decisions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// A step or goal decision takes effect only when a team lead other than the decider approves it.
    pub step_and_goal_decisions_need_team_lead: bool,
}

/// Readiness thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// Step 1 → 2.
    pub safety_to_involvement: SafetyToInvolvement,
    /// Step 2 → 3.
    pub involvement_to_responsibility: InvolvementToResponsibility,
}

/// What step 1 → 2 needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyToInvolvement {
    /// Completed visits without concerns, in step 1.
    pub completed_visits_without_concerns: u32,
    /// The frame (where, who, what, roles) must be complete.
    pub frame_must_be_complete: bool,
}

/// What step 2 → 3 needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvolvementToResponsibility {
    /// Completed visits without concerns, in step 2.
    pub completed_visits_without_concerns: u32,
    /// Active parenting goals in the follow-up plan.
    pub parenting_goals: u32,
    /// Visits in step 2 where the foster parents were involved before, during or after.
    pub visits_with_foster_parent_involvement: u32,
    /// A family group conference held, or waived with a reason.
    pub family_group_conference: bool,
    /// A reunification plan with at least one care task.
    pub reunification_plan: bool,
}

/// Scopes per goal and step, and the rules that adjust them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopePolicy {
    /// With a reunification goal: steps 1-3.
    pub reunification: ReunificationScopes,
    /// With long-term placement: step 1, and step 2 as the maintenance scope.
    pub long_term: LongTermScopes,
    /// Young children: shorter, more frequent visits.
    pub young_children: YoungChildren,
    /// What holds the scope where it is.
    pub hold: Hold,
}

/// Scopes with a reunification goal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReunificationScopes {
    /// Step 1.
    pub safety: StepScope,
    /// Step 2.
    pub involvement: StepScope,
    /// Step 3.
    pub responsibility: StepScope,
}

/// Scopes with long-term placement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongTermScopes {
    /// Step 1.
    pub safety: StepScope,
    /// Step 2: the maintenance scope.
    pub involvement: StepScope,
}

/// The scope of one step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepScope {
    /// Visits per period.
    pub visits: u32,
    /// The period.
    pub period: VisitPeriod,
    /// Minutes per visit.
    pub duration_minutes: u32,
    /// How visits are supervised.
    pub supervision: Supervision,
    /// Where visits can take place.
    pub places: Vec<Place>,
    /// Overnight stays per period; 0 means none.
    pub overnights: u32,
    /// What visits are for, in words for the village.
    pub activities: Vec<String>,
    /// What the foster parents do.
    pub foster_parents_role: String,
}

/// Young children.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YoungChildren {
    /// Children younger than this many years count as young.
    pub below_age_years: u32,
    /// Their visits last this percentage of the step's duration.
    pub duration_percent: u32,
    /// They get this percentage of the step's visits.
    pub frequency_percent: u32,
    /// But never shorter than this.
    pub min_duration_minutes: u32,
}

/// What holds the scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// How far back visits count, in days.
    pub window_days: u32,
    /// This many visits with concerns in the window hold the scope.
    pub concerns: u32,
    /// This many visits cancelled by the parent in the window hold the scope.
    pub parent_cancellations: u32,
}

/// Review cadences.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewPolicy {
    /// Weeks between step reviews in step 1.
    pub step_review_weeks_safety: u32,
    /// Weeks between step reviews in step 2.
    pub step_review_weeks_involvement: u32,
    /// Weeks between step reviews in step 3.
    pub step_review_weeks_responsibility: u32,
    /// Months between evaluations of the follow-up plan.
    pub plan_evaluation_months: u32,
    /// The caseworker's follow-up visits to the child in the foster home per year.
    pub follow_up_visits_per_year: u32,
    /// The same, while a recorded decision reduces them.
    pub reduced_follow_up_visits_per_year: u32,
    /// Weeks from a family group conference to its follow-up.
    pub conference_follow_up_weeks: u32,
    /// Days from a visit with a concern to an early review.
    pub early_review_after_concern_days: u32,
    /// Months between renewals of a secret-address decision.
    pub secret_address_renewal_months: u32,
    /// Days before a review is due that the caseworker is reminded.
    pub remind_days_before: u32,
    /// Days after a review was due that the team lead is told.
    pub escalate_days_after: u32,
}

/// Why a policy cannot be used. The message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML, or a setting missing, unknown or of the wrong type.
    #[error("policy: {0}")]
    Parse(String),
    /// A value the rules cannot work with.
    #[error("policy: {setting}: {problem}")]
    Invalid {
        /// The setting, as a dotted path.
        setting: String,
        /// What is wrong.
        problem: String,
    },
}

impl Default for Policy {
    fn default() -> Self {
        // The built-in file is checked by a test; a broken build could not pass it.
        Self::parse(DEFAULT_POLICY).unwrap_or_else(|_| Self::fallback())
    }
}

impl ReviewPolicy {
    /// Weeks between step reviews in `step`.
    pub fn step_review_weeks(&self, step: Step) -> u32 {
        match step {
            Step::Safety => self.step_review_weeks_safety,
            Step::Involvement => self.step_review_weeks_involvement,
            Step::Responsibility => self.step_review_weeks_responsibility,
        }
    }
}

impl ScopePolicy {
    /// The scope the policy gives `step` with `goal`. Long-term placement has no step 3; a case there
    /// gets the maintenance scope (long-term step 2).
    pub fn for_step(&self, goal: Goal, step: Step) -> (&StepScope, &'static str) {
        match (goal, step) {
            (Goal::Reunification, Step::Safety) => {
                (&self.reunification.safety, "scope.reunification.safety")
            }
            (Goal::Reunification, Step::Involvement) => (
                &self.reunification.involvement,
                "scope.reunification.involvement",
            ),
            (Goal::Reunification, Step::Responsibility) => (
                &self.reunification.responsibility,
                "scope.reunification.responsibility",
            ),
            (Goal::LongTermPlacement, Step::Safety) => {
                (&self.long_term.safety, "scope.long_term.safety")
            }
            (Goal::LongTermPlacement, Step::Involvement | Step::Responsibility) => {
                (&self.long_term.involvement, "scope.long_term.involvement")
            }
        }
    }
}

/// The order of two policy versions: part by part (split on `.` and `-`), numerically where both parts
/// are numbers, as text otherwise; `2026.10` comes after `2026.9`. A stamp with an older policy
/// version is older.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |v: &str| v.split(['.', '-']).map(str::to_owned).collect::<Vec<_>>();
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(&pb) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Whether something computed from (`case_version`, `policy_version`) on the day `computed_on`
/// (Europe/Oslo) is newer than what was computed from `applied`, the three ordered one after the
/// other: a later case version; at the same case version, a later policy; at the same case version
/// and policy, a later day (the computation depends on the day: the child's age, the calendar year,
/// a reduction that expires, due dates). A stamp without a day (stored before days were stamped) is
/// older than any day. Equal is not newer, so a replay changes nothing.
pub fn newer_stamp(
    case_version: i64,
    policy_version: &str,
    computed_on: Option<NaiveDate>,
    applied: Option<(i64, &str, Option<NaiveDate>)>,
) -> bool {
    match applied {
        None => true,
        Some((version, policy, on)) => case_version
            .cmp(&version)
            .then_with(|| version_order(policy_version, policy))
            .then_with(|| computed_on.cmp(&on))
            .is_gt(),
    }
}

/// Whether `computed_on`, the day of a stamp, is still to come at `now` in Europe/Oslo: later than
/// tomorrow. Such a stamp (a clock gone wrong) would hold back every later computation until the
/// day came; the day of slack keeps a clock a little ahead at midnight harmless.
pub fn stamp_day_to_come(computed_on: NaiveDate, now: chrono::DateTime<chrono::Utc>) -> bool {
    crate::time::oslo_date(now)
        .succ_opt()
        .is_some_and(|tomorrow| computed_on > tomorrow)
}

/// The most of any count in a policy (visits in a period, visits a readiness condition asks for):
/// far above any real policy, low enough that no computation with it can overflow.
const MAX_COUNT: u32 = 400;

/// Visits per year of a frequency: comparable across periods.
pub fn yearly_rate(visits: u32, period: VisitPeriod) -> u64 {
    u64::from(visits) * u64::from(period.per_year())
}

impl Policy {
    /// Parses and validates a policy.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |setting: &str, problem: &str| PolicyError::Invalid {
            setting: setting.to_owned(),
            problem: problem.to_owned(),
        };
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        let scopes = [
            (
                "scope.reunification.safety",
                &self.scope.reunification.safety,
            ),
            (
                "scope.reunification.involvement",
                &self.scope.reunification.involvement,
            ),
            (
                "scope.reunification.responsibility",
                &self.scope.reunification.responsibility,
            ),
            ("scope.long_term.safety", &self.scope.long_term.safety),
            (
                "scope.long_term.involvement",
                &self.scope.long_term.involvement,
            ),
        ];
        for (name, s) in scopes {
            if !(1..=MAX_COUNT).contains(&s.visits) {
                return Err(invalid(&format!("{name}.visits"), "must be 1-400"));
            }
            if !(15..=24 * 60).contains(&s.duration_minutes) {
                return Err(invalid(
                    &format!("{name}.duration_minutes"),
                    "must be 15-1440",
                ));
            }
            if s.places.is_empty() {
                return Err(invalid(
                    &format!("{name}.places"),
                    "must name at least one place",
                ));
            }
            if s.overnights > s.visits {
                return Err(invalid(
                    &format!("{name}.overnights"),
                    "cannot exceed visits",
                ));
            }
            if s.overnights > 0 && s.supervision == Supervision::AgencySupervised {
                return Err(invalid(
                    &format!("{name}.overnights"),
                    "overnight stays cannot be agency-supervised",
                ));
            }
        }
        // A higher step never gives less than a lower one on the same track.
        let tracks: [&[(&str, &StepScope)]; 2] = [&scopes[0..3], &scopes[3..5]];
        for track in tracks {
            for pair in track.windows(2) {
                let ((lo_name, lo), (hi_name, hi)) = (pair[0], pair[1]);
                let less = |what: &str| {
                    invalid(
                        hi_name,
                        &format!(
                            "gives less {what} than {lo_name}; a higher step never gives less"
                        ),
                    )
                };
                if yearly_rate(hi.visits, hi.period) < yearly_rate(lo.visits, lo.period) {
                    return Err(less("frequent visits"));
                }
                if hi.duration_minutes < lo.duration_minutes {
                    return Err(less("time"));
                }
                if hi.supervision.leniency() < lo.supervision.leniency() {
                    return Err(less("freedom (stricter supervision)"));
                }
                if !lo.places.iter().all(|p| hi.places.contains(p)) {
                    return Err(less("places"));
                }
                if yearly_rate(hi.overnights, hi.period) < yearly_rate(lo.overnights, lo.period) {
                    return Err(less("overnight stays"));
                }
            }
        }
        let y = &self.scope.young_children;
        if !(1..=100).contains(&y.duration_percent) {
            return Err(invalid(
                "scope.young_children.duration_percent",
                "must be 1-100",
            ));
        }
        if !(100..=400).contains(&y.frequency_percent) {
            return Err(invalid(
                "scope.young_children.frequency_percent",
                "must be 100-400",
            ));
        }
        if !(15..=24 * 60).contains(&y.min_duration_minutes) {
            return Err(invalid(
                "scope.young_children.min_duration_minutes",
                "must be 15-1440",
            ));
        }
        if y.below_age_years > 18 {
            return Err(invalid(
                "scope.young_children.below_age_years",
                "must be 0-18",
            ));
        }
        if self.scope.hold.window_days == 0 || self.scope.hold.window_days > 366 {
            return Err(invalid("scope.hold.window_days", "must be 1-366"));
        }
        let hold = &self.scope.hold;
        let a = &self.readiness.safety_to_involvement;
        let b = &self.readiness.involvement_to_responsibility;
        for (name, value) in [
            ("scope.hold.concerns", hold.concerns),
            ("scope.hold.parent_cancellations", hold.parent_cancellations),
            (
                "readiness.safety_to_involvement.completed_visits_without_concerns",
                a.completed_visits_without_concerns,
            ),
            (
                "readiness.involvement_to_responsibility.completed_visits_without_concerns",
                b.completed_visits_without_concerns,
            ),
            (
                "readiness.involvement_to_responsibility.parenting_goals",
                b.parenting_goals,
            ),
            (
                "readiness.involvement_to_responsibility.visits_with_foster_parent_involvement",
                b.visits_with_foster_parent_involvement,
            ),
        ] {
            if value > MAX_COUNT {
                return Err(invalid(name, "must be at most 400"));
            }
        }
        let r = &self.reviews;
        // Upper bounds: two years of weeks, five years of months, a year of days, a visit a week.
        let (weeks, months, days, visits) = (104, 60, 365, 52);
        for (name, value, most) in [
            (
                "reviews.step_review_weeks_safety",
                r.step_review_weeks_safety,
                weeks,
            ),
            (
                "reviews.step_review_weeks_involvement",
                r.step_review_weeks_involvement,
                weeks,
            ),
            (
                "reviews.step_review_weeks_responsibility",
                r.step_review_weeks_responsibility,
                weeks,
            ),
            (
                "reviews.plan_evaluation_months",
                r.plan_evaluation_months,
                months,
            ),
            (
                "reviews.follow_up_visits_per_year",
                r.follow_up_visits_per_year,
                visits,
            ),
            (
                "reviews.reduced_follow_up_visits_per_year",
                r.reduced_follow_up_visits_per_year,
                visits,
            ),
            (
                "reviews.conference_follow_up_weeks",
                r.conference_follow_up_weeks,
                weeks,
            ),
            (
                "reviews.early_review_after_concern_days",
                r.early_review_after_concern_days,
                days,
            ),
            (
                "reviews.secret_address_renewal_months",
                r.secret_address_renewal_months,
                months,
            ),
        ] {
            if !(1..=most).contains(&value) {
                return Err(invalid(name, &format!("must be 1-{most}")));
            }
        }
        if r.step_review_weeks_responsibility > r.step_review_weeks_involvement {
            return Err(invalid(
                "reviews.step_review_weeks_responsibility",
                "step 3 is reviewed at least as often as step 2",
            ));
        }
        if r.reduced_follow_up_visits_per_year > r.follow_up_visits_per_year {
            return Err(invalid(
                "reviews.reduced_follow_up_visits_per_year",
                "cannot exceed follow_up_visits_per_year",
            ));
        }
        Ok(())
    }

    /// A minimal, safe policy used only if the built-in file could not be read (a broken build).
    fn fallback() -> Self {
        let scope = |visits, period, minutes, supervision, places: &[Place]| StepScope {
            visits,
            period,
            duration_minutes: minutes,
            supervision,
            places: places.to_vec(),
            overnights: 0,
            activities: Vec::new(),
            foster_parents_role: String::new(),
        };
        let strict = scope(
            1,
            VisitPeriod::Month,
            60,
            Supervision::AgencySupervised,
            &[Place::AgencyPremises],
        );
        Self {
            version: "fallback".into(),
            approval: Approval {
                step_and_goal_decisions_need_team_lead: true,
            },
            readiness: Readiness {
                safety_to_involvement: SafetyToInvolvement {
                    completed_visits_without_concerns: MAX_COUNT,
                    frame_must_be_complete: true,
                },
                involvement_to_responsibility: InvolvementToResponsibility {
                    completed_visits_without_concerns: MAX_COUNT,
                    parenting_goals: 1,
                    visits_with_foster_parent_involvement: MAX_COUNT,
                    family_group_conference: true,
                    reunification_plan: true,
                },
            },
            scope: ScopePolicy {
                reunification: ReunificationScopes {
                    safety: strict.clone(),
                    involvement: strict.clone(),
                    responsibility: strict.clone(),
                },
                long_term: LongTermScopes {
                    safety: strict.clone(),
                    involvement: strict,
                },
                young_children: YoungChildren {
                    below_age_years: 0,
                    duration_percent: 100,
                    frequency_percent: 100,
                    min_duration_minutes: 60,
                },
                hold: Hold {
                    window_days: 60,
                    concerns: 1,
                    parent_cancellations: 1,
                },
            },
            reviews: ReviewPolicy {
                step_review_weeks_safety: 4,
                step_review_weeks_involvement: 4,
                step_review_weeks_responsibility: 4,
                plan_evaluation_months: 6,
                follow_up_visits_per_year: 4,
                reduced_follow_up_visits_per_year: 2,
                conference_follow_up_weeks: 8,
                early_review_after_concern_days: 7,
                secret_address_renewal_months: 12,
                remind_days_before: 7,
                escalate_days_after: 7,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_parses_and_validates() {
        let p = Policy::parse(DEFAULT_POLICY).unwrap();
        assert_eq!(p.version, "2026.1");
        assert_eq!(Policy::default(), p);
        assert!(p.approval.step_and_goal_decisions_need_team_lead);
        assert_eq!(
            p.reviews.follow_up_visits_per_year, 4,
            "four follow-up visits a year by default"
        );
        assert_eq!(p.reviews.reduced_follow_up_visits_per_year, 2);
    }

    #[test]
    fn policy_versions_order_part_by_part_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("2026.10", "2026.9"), Greater);
        assert_eq!(version_order("2026.1", "2026.1"), Equal);
        assert_eq!(version_order("2026.1", "2026.1.1"), Less);
        assert_eq!(version_order("2027.1", "2026.12"), Greater);
        assert_eq!(version_order("oslo-2", "oslo-10"), Less);
    }

    #[test]
    fn a_stamp_is_newer_by_case_version_then_policy_version_then_day() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d);
        let applied = Some((5, "2026.2", day(10)));
        assert!(newer_stamp(6, "2026.1", day(1), applied));
        assert!(newer_stamp(5, "2026.10", day(1), applied));
        assert!(newer_stamp(5, "2026.2", day(11), applied), "a later day");
        assert!(
            !newer_stamp(5, "2026.2", day(10), applied),
            "equal changes nothing"
        );
        assert!(!newer_stamp(5, "2026.2", day(9), applied), "an earlier day");
        assert!(
            !newer_stamp(5, "2026.1", day(30), applied),
            "an older policy, whatever the day"
        );
        assert!(
            !newer_stamp(4, "2027.1", day(30), applied),
            "an older case version, whatever the policy and the day"
        );
        assert!(newer_stamp(1, "x", day(1), None));
        assert!(newer_stamp(1, "x", None, None));
    }

    #[test]
    fn a_stamp_without_a_day_is_older_than_any_day() {
        let day = NaiveDate::from_ymd_opt(1900, 1, 1);
        assert!(newer_stamp(5, "2026.2", day, Some((5, "2026.2", None))));
        assert!(!newer_stamp(5, "2026.2", None, Some((5, "2026.2", day))));
        assert!(
            !newer_stamp(5, "2026.2", None, Some((5, "2026.2", None))),
            "equal changes nothing"
        );
        assert!(newer_stamp(6, "2026.2", None, Some((5, "2026.2", day))));
    }

    #[test]
    fn the_fallback_is_a_valid_policy() {
        Policy::fallback().validate().unwrap();
    }

    #[test]
    fn an_unknown_or_missing_setting_is_an_error_that_names_it() {
        let typo = DEFAULT_POLICY.replace("remind_days_before", "remind_days_befor");
        let err = Policy::parse(&typo).unwrap_err().to_string();
        assert!(err.contains("remind_days_befor"), "{err}");
        let missing = DEFAULT_POLICY.replace("version = \"2026.1\"", "");
        assert!(
            Policy::parse(&missing)
                .unwrap_err()
                .to_string()
                .contains("version")
        );
    }

    #[test]
    fn a_higher_step_that_gives_less_is_refused() {
        let less = DEFAULT_POLICY.replacen("duration_minutes = 360", "duration_minutes = 60", 1);
        let err = Policy::parse(&less).unwrap_err().to_string();
        assert!(err.contains("scope.reunification.responsibility"), "{err}");
        let fewer_places = DEFAULT_POLICY.replacen(
            "places = [\"agency_premises\", \"community\", \"foster_home\", \"parents_home\"]",
            "places = [\"parents_home\"]",
            1,
        );
        assert!(Policy::parse(&fewer_places).is_err());
    }

    #[test]
    fn supervised_overnights_and_zero_cadences_are_refused() {
        let bad =
            DEFAULT_POLICY.replace("plan_evaluation_months = 6", "plan_evaluation_months = 0");
        assert!(
            Policy::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("plan_evaluation_months")
        );
        let bad = DEFAULT_POLICY.replacen("overnights = 0", "overnights = 1", 1);
        assert!(
            Policy::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("overnight")
        );
    }

    #[test]
    fn counts_and_cadences_past_their_upper_bound_are_refused() {
        for (from, to, setting) in [
            (
                "plan_evaluation_months = 6",
                "plan_evaluation_months = 61",
                "plan_evaluation_months",
            ),
            (
                "follow_up_visits_per_year = 4",
                "follow_up_visits_per_year = 53",
                "follow_up_visits_per_year",
            ),
            (
                "early_review_after_concern_days = ",
                "early_review_after_concern_days = 366 #",
                "early_review_after_concern_days",
            ),
            ("visits = ", "visits = 401 #", ".visits"),
            (
                "parenting_goals = ",
                "parenting_goals = 401 #",
                "parenting_goals",
            ),
        ] {
            let bad = DEFAULT_POLICY.replacen(from, to, 1);
            assert_ne!(bad, DEFAULT_POLICY, "{from} is in the default policy");
            let err = Policy::parse(&bad).unwrap_err().to_string();
            assert!(err.contains(setting), "{setting}: {err}");
        }
    }

    #[test]
    fn long_term_placement_has_no_step_three_and_gets_the_maintenance_scope() {
        let p = Policy::default();
        let (scope, rule) = p
            .scope
            .for_step(Goal::LongTermPlacement, Step::Responsibility);
        assert_eq!(rule, "scope.long_term.involvement");
        assert_eq!(scope, &p.scope.long_term.involvement);
    }

    #[test]
    fn docs_policy_md_explains_every_setting() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md"))
                .expect("docs/policy.md");
        let table: toml::Table = toml::from_str(DEFAULT_POLICY).unwrap();
        let mut keys = Vec::new();
        fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Table(inner) => walk(&key, inner, out),
                    _ => out.push(key),
                }
            }
        }
        walk("", &table, &mut keys);
        for key in keys {
            // Scope settings are documented once per field for all five scopes.
            let documented = if let Some(field) = key
                .strip_prefix("scope.reunification.")
                .or(key.strip_prefix("scope.long_term."))
            {
                let field = field.split('.').nth(1).unwrap_or(field);
                doc.contains(&format!("`scope.<track>.<step>.{field}`"))
            } else {
                doc.contains(&format!("`{key}`"))
            };
            assert!(documented, "docs/policy.md does not explain `{key}`");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// An operator's policy file is input: whatever it holds, parsing answers with a policy or
        /// an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused_never_panics(text in "\\PC{0,400}") {
            let _ = Policy::parse(&text);
        }

        /// The default file with one line dropped, or one line's value replaced by any text,
        /// parses or is refused, never a panic; what parses has passed validation.
        #[test]
        fn the_default_policy_with_a_line_broken_parses_or_is_refused(
            line in 0usize..400,
            drop in proptest::bool::ANY,
            value in "\\PC{0,24}",
        ) {
            let lines: Vec<&str> = DEFAULT_POLICY.lines().collect();
            let line = line % lines.len();
            let mut broken: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            if drop {
                broken.remove(line);
            } else if let Some((key, _)) = lines[line].split_once('=') {
                broken[line] = format!("{key}= {value}");
            }
            if let Ok(policy) = Policy::parse(&broken.join("\n")) {
                proptest::prop_assert!(!policy.version.trim().is_empty());
            }
        }
    }
}

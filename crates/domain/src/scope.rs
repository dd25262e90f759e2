//! The scope of one parent's visitation (*samværsomfang*), computed from the case: the step and goal
//! give the policy's scope; young children get shorter, more frequent visits; recent concerns and
//! cancellations by the parent hold the scope where it is; then the law: the county board's floor
//! raises what is below it, its conditions (supervision) bind, and a secret address keeps visits out of
//! the foster home. Every value carries its explanation: each rule that set or changed it, in order,
//! the last one deciding.

use crate::board::VisitationFloor;
use crate::policy::{Policy, StepScope, yearly_rate};
use crate::vocabulary::{Goal, Place, Step, Supervision, VisitPeriod};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// How a recent visit went, as scope looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitOutcome {
    /// The day of the visit.
    pub on: NaiveDate,
    /// What happened.
    pub kind: OutcomeKind,
}

/// What happened to a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// It took place; `concern` when the report after it raised one.
    Completed {
        /// The report raised a concern.
        concern: bool,
    },
    /// It was cancelled.
    Cancelled {
        /// Who cancelled.
        by: CancelledBy,
    },
    /// The parent did not come.
    NoShow,
}

/// Who cancelled a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    /// The parent.
    Parent,
    /// The agency.
    Agency,
    /// The foster home.
    FosterParents,
    /// The child was ill.
    ChildIllness,
    /// Someone or something else.
    Other,
}

/// A number of something per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frequency {
    /// How many.
    pub count: u32,
    /// Per what.
    pub period: VisitPeriod,
}

impl Frequency {
    /// How many a year, for comparing frequencies with different periods.
    pub fn per_year(self) -> u64 {
        yearly_rate(self.count, self.period)
    }
}

/// One reason a value is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule: `policy:<setting>`, `policy:scope.young_children`, `policy:scope.hold`,
    /// `board:floor`, `board:supervision`, `secret_address`, `follow_up_plan`.
    pub rule: String,
    /// The rule applied to this case, in words.
    pub text: String,
}

/// A value with its explanation, oldest reason first; the last reason decided the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained<T> {
    /// The value.
    pub value: T,
    /// Why.
    pub because: Vec<Reason>,
}

impl<T> Explained<T> {
    fn new(value: T, rule: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            value,
            because: vec![Reason {
                rule: rule.into(),
                text: text.into(),
            }],
        }
    }

    /// Sets the value, with the rule that set it as the last reason.
    pub fn set(&mut self, value: T, rule: impl Into<String>, text: impl Into<String>) {
        self.value = value;
        self.because.push(Reason {
            rule: rule.into(),
            text: text.into(),
        });
    }
}

/// The plain values of a scope: what is in force, for holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeValues {
    /// Visits per period.
    pub frequency: Frequency,
    /// Minutes per visit.
    pub duration_minutes: u32,
    /// Supervision.
    pub supervision: Supervision,
    /// Places.
    pub places: Vec<Place>,
    /// Overnight stays per period.
    pub overnights: Frequency,
}

/// A computed scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Visits per period.
    pub frequency: Explained<Frequency>,
    /// Minutes per visit.
    pub duration_minutes: Explained<u32>,
    /// How visits are supervised.
    pub supervision: Explained<Supervision>,
    /// Where visits can take place.
    pub places: Explained<Vec<Place>>,
    /// Overnight stays per period (count 0: none).
    pub overnights: Explained<Frequency>,
    /// What the visits are for.
    pub activities: Explained<Vec<String>>,
    /// The parenting tasks parents practise during visits.
    pub parenting_tasks: Explained<Vec<String>>,
    /// What the foster parents do.
    pub foster_parents_role: Explained<String>,
    /// The version of the policy it was computed with.
    pub policy_version: String,
}

impl Scope {
    /// The plain values.
    pub fn values(&self) -> ScopeValues {
        ScopeValues {
            frequency: self.frequency.value,
            duration_minutes: self.duration_minutes.value,
            supervision: self.supervision.value,
            places: self.places.value.clone(),
            overnights: self.overnights.value,
        }
    }
}

/// What scope is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInput<'a> {
    /// The case's step.
    pub step: Step,
    /// The case's goal.
    pub goal: Goal,
    /// The county board's floor and conditions for this parent, from the decision in force.
    pub floor: Option<&'a VisitationFloor>,
    /// The foster home's address is secret.
    pub secret_address: bool,
    /// The child's date of birth.
    pub child_birth_date: NaiveDate,
    /// Today (Europe/Oslo).
    pub today: NaiveDate,
    /// This parent's recent visits.
    pub recent_visits: &'a [VisitOutcome],
    /// The scope in force now, if any: what a hold keeps.
    pub current: Option<&'a ScopeValues>,
    /// The parenting goals of the follow-up plan.
    pub parenting_goals: &'a [String],
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Safety => "step 1 (safety)",
        Step::Involvement => "step 2 (involvement)",
        Step::Responsibility => "step 3 (responsibility)",
    }
}

fn goal_name(goal: Goal) -> &'static str {
    match goal {
        Goal::Reunification => "a reunification goal",
        Goal::LongTermPlacement => "long-term placement",
    }
}

fn period_name(period: VisitPeriod) -> &'static str {
    match period {
        VisitPeriod::Week => "a week",
        VisitPeriod::Month => "a month",
        VisitPeriod::Year => "a year",
    }
}

fn describe(f: Frequency) -> String {
    format!("{} {}", f.count, period_name(f.period))
}

/// Whole years from `birth` to `today`.
fn age_in_years(birth: NaiveDate, today: NaiveDate) -> u32 {
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// The scope for one parent.
pub fn compute(input: &ScopeInput<'_>, policy: &Policy) -> Scope {
    let (base, rule) = policy.scope.for_step(input.goal, input.step);
    let mut scope = from_policy(base, rule, input);
    young_children(&mut scope, input, policy);
    hold(&mut scope, input, policy);
    board(&mut scope, input.floor);
    no_supervised_overnights(&mut scope);
    secret_address(&mut scope, input.secret_address);
    scope.policy_version = policy.version.clone();
    scope
}

fn from_policy(base: &StepScope, rule: &str, input: &ScopeInput<'_>) -> Scope {
    let context = format!("{} with {}", step_name(input.step), goal_name(input.goal));
    let frequency = Frequency {
        count: base.visits,
        period: base.period,
    };
    let overnights = Frequency {
        count: base.overnights,
        period: base.period,
    };
    let maintenance = input.goal == Goal::LongTermPlacement && input.step != Step::Safety;
    let parenting_tasks = match (input.step, maintenance) {
        (Step::Safety, _) => Explained::new(
            Vec::new(),
            "method:step_1",
            "step 1 builds safety; parenting tasks are practised from step 2",
        ),
        (_, true) => Explained::new(
            Vec::new(),
            "method:long_term",
            "with long-term placement visits maintain and develop the relation",
        ),
        _ => Explained::new(
            input.parenting_goals.to_vec(),
            "follow_up_plan",
            "the parenting goals of the follow-up plan",
        ),
    };
    Scope {
        frequency: Explained::new(
            frequency,
            format!("policy:{rule}.visits"),
            format!("{context}: {} visits", describe(frequency)),
        ),
        duration_minutes: Explained::new(
            base.duration_minutes,
            format!("policy:{rule}.duration_minutes"),
            format!("{context}: {} minutes", base.duration_minutes),
        ),
        supervision: Explained::new(
            base.supervision,
            format!("policy:{rule}.supervision"),
            format!("{context}: {}", base.supervision),
        ),
        places: Explained::new(
            base.places.clone(),
            format!("policy:{rule}.places"),
            format!("{context}: the step's places"),
        ),
        overnights: Explained::new(
            overnights,
            format!("policy:{rule}.overnights"),
            if overnights.count == 0 {
                format!("{context}: no overnight stays")
            } else {
                format!("{context}: {} overnight stays", describe(overnights))
            },
        ),
        activities: Explained::new(
            base.activities.clone(),
            format!("policy:{rule}.activities"),
            context.clone(),
        ),
        parenting_tasks,
        foster_parents_role: Explained::new(
            base.foster_parents_role.clone(),
            format!("policy:{rule}.foster_parents_role"),
            context,
        ),
        policy_version: String::new(),
    }
}

fn young_children(scope: &mut Scope, input: &ScopeInput<'_>, policy: &Policy) {
    let young = &policy.scope.young_children;
    let age = age_in_years(input.child_birth_date, input.today);
    if age >= young.below_age_years {
        return;
    }
    let why = format!(
        "the child is {age} years old, younger than {}",
        young.below_age_years
    );
    let shorter = (scope
        .duration_minutes
        .value
        .saturating_mul(young.duration_percent)
        / 100)
        .max(young.min_duration_minutes)
        .min(scope.duration_minutes.value);
    if shorter != scope.duration_minutes.value {
        scope.duration_minutes.set(
            shorter,
            "policy:scope.young_children",
            format!("{why}: shorter visits, {shorter} minutes"),
        );
    }
    let f = scope.frequency.value;
    let more = Frequency {
        count: f
            .count
            .saturating_mul(young.frequency_percent)
            .div_ceil(100),
        period: f.period,
    };
    if more != f {
        scope.frequency.set(
            more,
            "policy:scope.young_children",
            format!("{why}: more frequent visits, {}", describe(more)),
        );
    }
}

fn hold(scope: &mut Scope, input: &ScopeInput<'_>, policy: &Policy) {
    let rules = &policy.scope.hold;
    let since = input
        .today
        .checked_sub_days(chrono::Days::new(u64::from(rules.window_days)))
        .unwrap_or(NaiveDate::MIN);
    let recent = input
        .recent_visits
        .iter()
        .filter(|v| v.on >= since && v.on <= input.today);
    let (mut concerns, mut cancelled) = (0u32, 0u32);
    for visit in recent {
        match visit.kind {
            OutcomeKind::Completed { concern: true } => concerns += 1,
            OutcomeKind::Cancelled {
                by: CancelledBy::Parent,
            }
            | OutcomeKind::NoShow => cancelled += 1,
            _ => {}
        }
    }
    let why = if rules.concerns > 0 && concerns >= rules.concerns {
        format!("{concerns} recent visit(s) raised a concern: the scope is held")
    } else if rules.parent_cancellations > 0 && cancelled >= rules.parent_cancellations {
        format!("the parent cancelled or missed {cancelled} recent visit(s): the scope is held")
    } else {
        return;
    };
    let Some(current) = input.current else {
        // Nothing in force yet to hold to: the step's scope stands, and the reason is on record.
        scope.frequency.because.push(Reason {
            rule: "policy:scope.hold".into(),
            text: format!("{why}, but no scope is in force yet"),
        });
        return;
    };
    const RULE: &str = "policy:scope.hold";
    if scope.frequency.value.per_year() > current.frequency.per_year() {
        scope.frequency.set(
            current.frequency,
            RULE,
            format!("{why} at {}", describe(current.frequency)),
        );
    }
    if scope.duration_minutes.value > current.duration_minutes {
        scope.duration_minutes.set(
            current.duration_minutes,
            RULE,
            format!("{why} at {} minutes", current.duration_minutes),
        );
    }
    if scope.supervision.value.leniency() > current.supervision.leniency() {
        scope.supervision.set(
            current.supervision,
            RULE,
            format!("{why} at {}", current.supervision),
        );
    }
    let kept: Vec<Place> = scope
        .places
        .value
        .iter()
        .copied()
        .filter(|p| current.places.contains(p))
        .collect();
    if kept.is_empty() {
        // None of the step's places is in force: the case stepped back (or its goal changed) to a
        // narrower step. Holding to the places in force would widen that step, so its places stand.
        scope.places.because.push(Reason {
            rule: RULE.into(),
            text: format!("{why}, but no place in force belongs to this step: its places stand"),
        });
    } else if kept != scope.places.value {
        scope
            .places
            .set(kept, RULE, format!("{why}: no new places"));
    }
    if scope.overnights.value.per_year() > current.overnights.per_year() {
        scope.overnights.set(
            current.overnights,
            RULE,
            format!("{why}: no more overnight stays"),
        );
    }
}

fn board(scope: &mut Scope, floor: Option<&VisitationFloor>) {
    let Some(floor) = floor else { return };
    let minimum = Frequency {
        count: floor.min_visits,
        period: floor.period,
    };
    // A floor counted per week is not kept by "5 a month" (all five could fall in one week): the
    // scope is counted over the floor's period, rounded up so it never gives fewer visits a year.
    let current = scope.frequency.value;
    if floor.period.per_year() > current.period.per_year() {
        let count = current
            .per_year()
            .div_ceil(u64::from(floor.period.per_year()));
        let expressed = Frequency {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            period: floor.period,
        };
        scope.frequency.set(
            expressed,
            "board:floor",
            format!(
                "counted {} as the county board's decision counts: {}",
                period_name(floor.period),
                describe(expressed)
            ),
        );
    }
    if scope.frequency.value.per_year() < minimum.per_year() {
        scope.frequency.set(
            minimum,
            "board:floor",
            format!(
                "the county board's decision gives at least {} visits",
                describe(minimum)
            ),
        );
    }
    if scope.duration_minutes.value < floor.min_duration_minutes {
        scope.duration_minutes.set(
            floor.min_duration_minutes,
            "board:floor",
            format!(
                "the county board's decision gives at least {} minutes a visit",
                floor.min_duration_minutes
            ),
        );
    }
    if floor.supervision_required {
        if scope.supervision.value != Supervision::AgencySupervised {
            scope.supervision.set(
                Supervision::AgencySupervised,
                "board:supervision",
                "the county board's decision requires supervised visits",
            );
        }
        if scope.overnights.value.count > 0 {
            let none = Frequency {
                count: 0,
                period: scope.overnights.value.period,
            };
            scope.overnights.set(
                none,
                "board:supervision",
                "supervised visits rule out overnight stays",
            );
        }
    }
}

/// Overnight stays cannot be agency-supervised, whatever held the supervision there (a concern
/// holding a stricter supervision in force, say).
fn no_supervised_overnights(scope: &mut Scope) {
    if scope.supervision.value == Supervision::AgencySupervised && scope.overnights.value.count > 0
    {
        let none = Frequency {
            count: 0,
            period: scope.overnights.value.period,
        };
        scope.overnights.set(
            none,
            "scope:overnights",
            "agency-supervised visits rule out overnight stays",
        );
    }
}

/// A value a person sets in place of the computed one (a caseworker's adjustment of a plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum Manual {
    /// Visits per period.
    Frequency(Frequency),
    /// Minutes per visit.
    DurationMinutes(u32),
    /// How visits are supervised.
    Supervision(Supervision),
    /// Where visits can take place.
    Places(Vec<Place>),
    /// Overnight stays per period.
    Overnights(Frequency),
    /// What the visits are for.
    Activities(Vec<String>),
}

impl Manual {
    /// The scope field it sets.
    pub fn field(&self) -> &'static str {
        match self {
            Manual::Frequency(_) => "frequency",
            Manual::DurationMinutes(_) => "duration_minutes",
            Manual::Supervision(_) => "supervision",
            Manual::Places(_) => "places",
            Manual::Overnights(_) => "overnights",
            Manual::Activities(_) => "activities",
        }
    }

    /// Puts the value in `scope`, explained (rule `manual`) by `why`.
    pub fn apply(&self, scope: &mut Scope, why: &str) {
        const RULE: &str = "manual";
        match self.clone() {
            Manual::Frequency(v) => scope.frequency.set(v, RULE, why),
            Manual::DurationMinutes(v) => scope.duration_minutes.set(v, RULE, why),
            Manual::Supervision(v) => scope.supervision.set(v, RULE, why),
            Manual::Places(v) => scope.places.set(v, RULE, why),
            Manual::Overnights(v) => scope.overnights.set(v, RULE, why),
            Manual::Activities(v) => scope.activities.set(v, RULE, why),
        }
    }
}

/// A value a person chose that the law does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The rule: `board:floor`, `board:supervision`, `scope:overnights` (agency-supervised overnight
    /// stays, which no one can give) or `secret_address`.
    pub rule: &'static str,
    /// The scope value: `frequency`, `duration_minutes`, `supervision`, `overnights`, `places`.
    pub field: &'static str,
    /// What the rule demands, in words.
    pub text: String,
}

/// Checks scope values a person chose (a manual adjustment) against the county board's floor and
/// conditions and a secret address: what [`compute`] never produces, no person may set either.
/// Empty when nothing is breached.
pub fn check(values: &ScopeValues, floor: Option<&VisitationFloor>, secret: bool) -> Vec<Breach> {
    let mut breaches = Vec::new();
    if let Some(floor) = floor {
        let minimum = Frequency {
            count: floor.min_visits,
            period: floor.period,
        };
        // Counted over a longer period than the floor's, the floor is not kept in every period.
        if values.frequency.per_year() < minimum.per_year()
            || values.frequency.period.per_year() < floor.period.per_year()
        {
            breaches.push(Breach {
                rule: "board:floor",
                field: "frequency",
                text: format!(
                    "the county board's decision gives at least {} visits, counted {}",
                    describe(minimum),
                    period_name(floor.period)
                ),
            });
        }
        if values.duration_minutes < floor.min_duration_minutes {
            breaches.push(Breach {
                rule: "board:floor",
                field: "duration_minutes",
                text: format!(
                    "the county board's decision gives at least {} minutes a visit",
                    floor.min_duration_minutes
                ),
            });
        }
        if floor.supervision_required {
            if values.supervision != Supervision::AgencySupervised {
                breaches.push(Breach {
                    rule: "board:supervision",
                    field: "supervision",
                    text: "the county board's decision requires supervised visits".into(),
                });
            }
            if values.overnights.count > 0 {
                breaches.push(Breach {
                    rule: "board:supervision",
                    field: "overnights",
                    text: "supervised visits rule out overnight stays".into(),
                });
            }
        }
    }
    // Under a supervision condition the board's rule above already names the overnight stays.
    let board_supervises = floor.is_some_and(|f| f.supervision_required);
    if !board_supervises
        && values.supervision == Supervision::AgencySupervised
        && values.overnights.count > 0
    {
        breaches.push(Breach {
            rule: "scope:overnights",
            field: "overnights",
            text: "overnight stays cannot be agency-supervised".into(),
        });
    }
    if secret && values.places.contains(&Place::FosterHome) {
        breaches.push(Breach {
            rule: "secret_address",
            field: "places",
            text: "the foster home's address is secret: no visits there".into(),
        });
    }
    breaches
}

fn secret_address(scope: &mut Scope, secret: bool) {
    if !secret || !scope.places.value.contains(&Place::FosterHome) {
        return;
    }
    let mut places: Vec<Place> = scope
        .places
        .value
        .iter()
        .copied()
        .filter(|p| *p != Place::FosterHome)
        .collect();
    let text = if places.is_empty() {
        places.push(Place::AgencyPremises);
        "the foster home's address is secret: no visits there; the agency's premises instead"
    } else {
        "the foster home's address is secret: no visits there"
    };
    scope.places.set(places, "secret_address", text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn input<'a>(step: Step, goal: Goal) -> ScopeInput<'a> {
        ScopeInput {
            step,
            goal,
            floor: None,
            secret_address: false,
            child_birth_date: day(2016, 4, 1),
            today: day(2026, 11, 23),
            recent_visits: &[],
            current: None,
            parenting_goals: &[],
        }
    }

    fn floor(
        min_visits: u32,
        period: VisitPeriod,
        minutes: u32,
        supervised: bool,
    ) -> VisitationFloor {
        VisitationFloor {
            parent_id: Uuid::nil(),
            min_visits,
            period,
            min_duration_minutes: minutes,
            supervision_required: supervised,
        }
    }

    #[test]
    fn each_step_gives_the_policys_scope_with_its_rule() {
        let p = Policy::default();
        let s = compute(&input(Step::Involvement, Goal::Reunification), &p);
        assert_eq!(
            s.frequency.value,
            Frequency {
                count: 4,
                period: VisitPeriod::Month
            }
        );
        assert_eq!(
            s.frequency.because[0].rule,
            "policy:scope.reunification.involvement.visits"
        );
        assert_eq!(s.duration_minutes.value, 150);
        assert_eq!(s.supervision.value, Supervision::SupportedByFosterParents);
        assert_eq!(s.policy_version, "2026.1");
    }

    #[test]
    fn long_term_placement_in_step_two_gets_the_maintenance_scope() {
        let p = Policy::default();
        let s = compute(&input(Step::Involvement, Goal::LongTermPlacement), &p);
        assert_eq!(
            s.frequency.value,
            Frequency {
                count: 6,
                period: VisitPeriod::Year
            }
        );
        assert!(s.parenting_tasks.value.is_empty());
        assert_eq!(s.parenting_tasks.because[0].rule, "method:long_term");
    }

    #[test]
    fn parenting_tasks_come_from_the_follow_up_plan_from_step_two() {
        let p = Policy::default();
        let goals = vec!["bedtime routines".to_owned()];
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.parenting_goals = &goals;
        assert_eq!(compute(&i, &p).parenting_tasks.value, goals);
        i.step = Step::Safety;
        assert!(compute(&i, &p).parenting_tasks.value.is_empty());
    }

    #[test]
    fn young_children_get_shorter_and_more_frequent_visits() {
        let p = Policy::default();
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.child_birth_date = day(2025, 1, 1);
        let s = compute(&i, &p);
        assert_eq!(s.duration_minutes.value, 90, "60 % of 150");
        assert_eq!(s.frequency.value.count, 8, "200 % of 4");
        assert_eq!(
            s.duration_minutes.because.last().unwrap().rule,
            "policy:scope.young_children"
        );
    }

    #[test]
    fn a_young_childs_visit_is_never_shorter_than_the_minimum() {
        let p = Policy::default();
        let mut i = input(Step::Safety, Goal::Reunification);
        i.child_birth_date = day(2026, 1, 1);
        assert_eq!(
            compute(&i, &p).duration_minutes.value,
            60,
            "60 % of 90 is 54, the minimum is 60"
        );
    }

    #[test]
    fn the_board_floor_raises_frequency_and_duration() {
        let p = Policy::default();
        let f = floor(2, VisitPeriod::Week, 180, false);
        let mut i = input(Step::Safety, Goal::Reunification);
        i.floor = Some(&f);
        let s = compute(&i, &p);
        assert_eq!(
            s.frequency.value,
            Frequency {
                count: 2,
                period: VisitPeriod::Week
            }
        );
        assert_eq!(s.frequency.because.last().unwrap().rule, "board:floor");
        assert_eq!(s.duration_minutes.value, 180);
    }

    #[test]
    fn a_weekly_floor_counts_a_monthly_scope_per_week_rounded_up() {
        let p = Policy::default();
        let f = floor(1, VisitPeriod::Week, 60, false);
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.floor = Some(&f);
        let s = compute(&i, &p);
        // 4 a month (48 a year) is not "at least 1 every week"; counted per week it is 1.
        assert_eq!(
            s.frequency.value,
            Frequency {
                count: 1,
                period: VisitPeriod::Week
            }
        );
        let last = s.frequency.because.last().unwrap();
        assert_eq!(last.rule, "board:floor");
        assert!(last.text.contains("counted a week"), "{}", last.text);
        // 8 a month (a young child) is 96 a year: 2 a week, never fewer visits than before.
        i.child_birth_date = day(2025, 1, 1);
        let young = compute(&i, &p);
        assert_eq!(young.frequency.value.count, 2);
        assert_eq!(young.frequency.value.period, VisitPeriod::Week);
    }

    #[test]
    fn a_floor_below_the_policy_changes_nothing() {
        let p = Policy::default();
        let f = floor(4, VisitPeriod::Year, 60, false);
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.floor = Some(&f);
        let s = compute(&i, &p);
        assert_eq!(s.frequency.because.len(), 1);
        assert_eq!(s.duration_minutes.value, 150);
    }

    #[test]
    fn a_supervision_condition_binds_even_in_step_three_and_rules_out_overnights() {
        let p = Policy::default();
        let f = floor(1, VisitPeriod::Month, 60, true);
        let mut i = input(Step::Responsibility, Goal::Reunification);
        i.floor = Some(&f);
        let s = compute(&i, &p);
        assert_eq!(s.supervision.value, Supervision::AgencySupervised);
        assert_eq!(
            s.supervision.because.last().unwrap().rule,
            "board:supervision"
        );
        assert_eq!(s.overnights.value.count, 0);
    }

    #[test]
    fn a_secret_address_keeps_visits_out_of_the_foster_home() {
        let p = Policy::default();
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.secret_address = true;
        let s = compute(&i, &p);
        assert!(!s.places.value.contains(&Place::FosterHome));
        assert_eq!(s.places.because.last().unwrap().rule, "secret_address");
    }

    #[test]
    fn a_recent_concern_holds_the_scope_in_force() {
        let p = Policy::default();
        let current = ScopeValues {
            frequency: Frequency {
                count: 2,
                period: VisitPeriod::Month,
            },
            duration_minutes: 90,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::AgencyPremises, Place::Community],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Month,
            },
        };
        let visits = [VisitOutcome {
            on: day(2026, 11, 1),
            kind: OutcomeKind::Completed { concern: true },
        }];
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.current = Some(&current);
        i.recent_visits = &visits;
        let s = compute(&i, &p);
        assert_eq!(s.values(), current);
        assert_eq!(
            s.frequency.because.last().unwrap().rule,
            "policy:scope.hold"
        );
    }

    #[test]
    fn old_concerns_and_cancellations_by_others_do_not_hold() {
        let p = Policy::default();
        let current = ScopeValues {
            frequency: Frequency {
                count: 2,
                period: VisitPeriod::Month,
            },
            duration_minutes: 90,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::AgencyPremises],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Month,
            },
        };
        let visits = [
            VisitOutcome {
                on: day(2026, 1, 1),
                kind: OutcomeKind::Completed { concern: true },
            },
            VisitOutcome {
                on: day(2026, 11, 1),
                kind: OutcomeKind::Cancelled {
                    by: CancelledBy::Agency,
                },
            },
            VisitOutcome {
                on: day(2026, 11, 8),
                kind: OutcomeKind::Cancelled {
                    by: CancelledBy::ChildIllness,
                },
            },
        ];
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.current = Some(&current);
        i.recent_visits = &visits;
        assert_eq!(compute(&i, &p).frequency.value.count, 4);
    }

    #[test]
    fn cancellations_and_no_shows_by_the_parent_hold() {
        let p = Policy::default();
        let current = ScopeValues {
            frequency: Frequency {
                count: 2,
                period: VisitPeriod::Month,
            },
            duration_minutes: 90,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::AgencyPremises],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Month,
            },
        };
        let visits = [
            VisitOutcome {
                on: day(2026, 11, 1),
                kind: OutcomeKind::Cancelled {
                    by: CancelledBy::Parent,
                },
            },
            VisitOutcome {
                on: day(2026, 11, 8),
                kind: OutcomeKind::NoShow,
            },
        ];
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.current = Some(&current);
        i.recent_visits = &visits;
        assert_eq!(compute(&i, &p).frequency.value.count, 2);
    }

    #[test]
    fn a_hold_never_widens_a_step_with_no_place_in_force() {
        let p = Policy::default();
        let current = ScopeValues {
            frequency: Frequency {
                count: 2,
                period: VisitPeriod::Month,
            },
            duration_minutes: 90,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::ParentsHome, Place::FosterHome],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Month,
            },
        };
        let visits = [VisitOutcome {
            on: day(2026, 11, 1),
            kind: OutcomeKind::Completed { concern: true },
        }];
        // Stepped back to step 1, which offers the agency's premises and the community; neither
        // is in force, and the parents' home stays out.
        let mut i = input(Step::Safety, Goal::Reunification);
        i.current = Some(&current);
        i.recent_visits = &visits;
        let s = compute(&i, &p);
        assert_eq!(s.places.value, [Place::AgencyPremises, Place::Community]);
        let last = s.places.because.last().unwrap();
        assert_eq!(last.rule, "policy:scope.hold");
        assert!(last.text.contains("its places stand"), "{}", last.text);
    }

    #[test]
    fn the_floor_wins_over_a_hold() {
        let p = Policy::default();
        let current = ScopeValues {
            frequency: Frequency {
                count: 1,
                period: VisitPeriod::Month,
            },
            duration_minutes: 60,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::AgencyPremises],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Month,
            },
        };
        let visits = [VisitOutcome {
            on: day(2026, 11, 1),
            kind: OutcomeKind::Completed { concern: true },
        }];
        let f = floor(3, VisitPeriod::Month, 90, false);
        let mut i = input(Step::Involvement, Goal::Reunification);
        i.current = Some(&current);
        i.recent_visits = &visits;
        i.floor = Some(&f);
        let s = compute(&i, &p);
        assert_eq!(s.frequency.value.count, 3);
        assert_eq!(s.duration_minutes.value, 90);
    }

    #[test]
    fn a_manual_value_replaces_the_computed_one_and_says_why() {
        let mut s = compute(
            &input(Step::Involvement, Goal::Reunification),
            &Policy::default(),
        );
        Manual::DurationMinutes(120).apply(&mut s, "the child asked for shorter visits");
        assert_eq!(s.duration_minutes.value, 120);
        let last = s.duration_minutes.because.last().unwrap();
        assert_eq!(
            (last.rule.as_str(), last.text.as_str()),
            ("manual", "the child asked for shorter visits")
        );
        let stored = serde_json::to_string(&Manual::Places(vec![Place::Community])).unwrap();
        assert_eq!(stored, r#"{"field":"places","value":["community"]}"#);
    }

    #[test]
    fn manual_values_below_the_floor_or_past_a_condition_are_named() {
        let f = floor(1, VisitPeriod::Week, 90, true);
        let values = ScopeValues {
            frequency: Frequency {
                count: 5,
                period: VisitPeriod::Month,
            },
            duration_minutes: 60,
            supervision: Supervision::SupportedByFosterParents,
            places: vec![Place::FosterHome, Place::Community],
            overnights: Frequency {
                count: 1,
                period: VisitPeriod::Month,
            },
        };
        let breaches = check(&values, Some(&f), true);
        let named: Vec<(&str, &str)> = breaches.iter().map(|b| (b.rule, b.field)).collect();
        assert_eq!(
            named,
            [
                ("board:floor", "frequency"),
                ("board:floor", "duration_minutes"),
                ("board:supervision", "supervision"),
                ("board:supervision", "overnights"),
                ("secret_address", "places"),
            ]
        );
        let within = ScopeValues {
            frequency: Frequency {
                count: 2,
                period: VisitPeriod::Week,
            },
            duration_minutes: 90,
            supervision: Supervision::AgencySupervised,
            places: vec![Place::Community],
            overnights: Frequency {
                count: 0,
                period: VisitPeriod::Week,
            },
        };
        assert!(check(&within, Some(&f), true).is_empty());
        assert!(
            check(&values, None, false).is_empty(),
            "no floor, no secret"
        );
        let supervised_overnight = ScopeValues {
            supervision: Supervision::AgencySupervised,
            overnights: Frequency {
                count: 1,
                period: VisitPeriod::Month,
            },
            ..within.clone()
        };
        let named: Vec<(&str, &str)> = check(&supervised_overnight, None, false)
            .iter()
            .map(|b| (b.rule, b.field))
            .collect();
        assert_eq!(
            named,
            [("scope:overnights", "overnights")],
            "without a floor"
        );
        let named: Vec<(&str, &str)> = check(&supervised_overnight, Some(&f), false)
            .iter()
            .map(|b| (b.rule, b.field))
            .collect();
        assert_eq!(
            named,
            [("board:supervision", "overnights")],
            "the board's condition names it once"
        );
    }

    #[test]
    fn every_value_has_an_explanation() {
        let p = Policy::default();
        let s = compute(&input(Step::Responsibility, Goal::Reunification), &p);
        assert!(!s.frequency.because.is_empty());
        assert!(!s.duration_minutes.because.is_empty());
        assert!(!s.supervision.because.is_empty());
        assert!(!s.places.because.is_empty());
        assert!(!s.overnights.because.is_empty());
        assert!(!s.activities.because.is_empty());
        assert!(!s.parenting_tasks.because.is_empty());
        assert!(!s.foster_parents_role.because.is_empty());
    }

    // ---- properties ---------------------------------------------------------------------------

    fn any_period() -> impl Strategy<Value = VisitPeriod> {
        prop::sample::select(VisitPeriod::ALL.to_vec())
    }

    fn any_floor() -> impl Strategy<Value = Option<VisitationFloor>> {
        prop::option::of((0u32..60, any_period(), 0u32..600, any::<bool>()).prop_map(
            |(visits, period, minutes, supervised)| floor(visits, period, minutes, supervised),
        ))
    }

    fn any_outcome() -> impl Strategy<Value = VisitOutcome> {
        let kind = prop_oneof![
            any::<bool>().prop_map(|concern| OutcomeKind::Completed { concern }),
            prop::sample::select(vec![
                CancelledBy::Parent,
                CancelledBy::Agency,
                CancelledBy::FosterParents,
                CancelledBy::ChildIllness,
                CancelledBy::Other
            ])
            .prop_map(|by| OutcomeKind::Cancelled { by }),
            Just(OutcomeKind::NoShow),
        ];
        (0u64..120, kind).prop_map(|(ago, kind)| VisitOutcome {
            on: day(2026, 11, 23)
                .checked_sub_days(chrono::Days::new(ago))
                .unwrap(),
            kind,
        })
    }

    fn any_current() -> impl Strategy<Value = Option<ScopeValues>> {
        prop::option::of(
            (
                1u32..20,
                any_period(),
                15u32..600,
                prop::sample::select(Supervision::ALL.to_vec()),
                prop::sample::subsequence(Place::ALL.to_vec(), 1..=4),
                0u32..4,
            )
                .prop_map(|(visits, period, minutes, supervision, places, nights)| {
                    ScopeValues {
                        frequency: Frequency {
                            count: visits,
                            period,
                        },
                        duration_minutes: minutes,
                        supervision,
                        places,
                        overnights: Frequency {
                            count: nights,
                            period,
                        },
                    }
                }),
        )
    }

    #[derive(Debug, Clone)]
    struct Case {
        goal: Goal,
        floor: Option<VisitationFloor>,
        secret: bool,
        birth: NaiveDate,
        visits: Vec<VisitOutcome>,
        current: Option<ScopeValues>,
    }

    fn any_case() -> impl Strategy<Value = Case> {
        (
            prop::sample::select(Goal::ALL.to_vec()),
            any_floor(),
            any::<bool>(),
            0i64..(18 * 365),
            prop::collection::vec(any_outcome(), 0..8),
            any_current(),
        )
            .prop_map(|(goal, floor, secret, age_days, visits, current)| Case {
                goal,
                floor,
                secret,
                birth: day(2026, 11, 23) - chrono::Duration::days(age_days),
                visits,
                current,
            })
    }

    fn run(case: &Case, step: Step) -> Scope {
        let i = ScopeInput {
            step,
            goal: case.goal,
            floor: case.floor.as_ref(),
            secret_address: case.secret,
            child_birth_date: case.birth,
            today: day(2026, 11, 23),
            recent_visits: &case.visits,
            current: case.current.as_ref(),
            parenting_goals: &[],
        };
        compute(&i, &Policy::default())
    }

    fn steps_of(goal: Goal) -> Vec<Step> {
        Step::ALL
            .iter()
            .copied()
            .filter(|s| s.allowed_with(goal))
            .collect()
    }

    proptest! {
        #[test]
        fn computed_scope_never_goes_below_the_floor_nor_past_a_condition(case in any_case()) {
            for step in steps_of(case.goal) {
                let s = run(&case, step);
                if let Some(f) = &case.floor {
                    let minimum = Frequency { count: f.min_visits, period: f.period };
                    prop_assert!(s.frequency.value.per_year() >= minimum.per_year());
                    // Counted over the floor's period or a shorter one, so every period keeps it.
                    prop_assert!(s.frequency.value.period.per_year() >= f.period.per_year());
                    prop_assert!(s.duration_minutes.value >= f.min_duration_minutes);
                    if f.supervision_required {
                        prop_assert_eq!(s.supervision.value, Supervision::AgencySupervised);
                        prop_assert_eq!(s.overnights.value.count, 0);
                    }
                }
                if case.secret {
                    prop_assert!(!s.places.value.contains(&Place::FosterHome));
                }
                prop_assert!(!s.places.value.is_empty());
            }
        }

        #[test]
        fn a_higher_step_never_gives_less_than_a_lower_one(case in any_case()) {
            let steps = steps_of(case.goal);
            for pair in steps.windows(2) {
                let (lo, hi) = (run(&case, pair[0]), run(&case, pair[1]));
                prop_assert!(hi.frequency.value.per_year() >= lo.frequency.value.per_year());
                prop_assert!(hi.duration_minutes.value >= lo.duration_minutes.value);
                prop_assert!(hi.supervision.value.leniency() >= lo.supervision.value.leniency());
                prop_assert!(hi.overnights.value.per_year() >= lo.overnights.value.per_year());
                let held = hi.places.because.iter().chain(&lo.places.because).any(|r| r.rule == "policy:scope.hold");
                if !held {
                    prop_assert!(lo.places.value.iter().all(|p| hi.places.value.contains(p)));
                }
            }
        }

        #[test]
        fn a_computed_scope_passes_the_check_of_manual_values(case in any_case()) {
            for step in steps_of(case.goal) {
                let s = run(&case, step);
                prop_assert_eq!(check(&s.values(), case.floor.as_ref(), case.secret), vec![]);
            }
        }

        #[test]
        fn computing_twice_gives_the_same_scope(case in any_case()) {
            for step in steps_of(case.goal) {
                prop_assert_eq!(run(&case, step), run(&case, step));
            }
        }
    }
}

//! Due reviews: which reviews a case owes, and by when. This module owns the review kinds, the facts
//! a case brings to the computation, and the rule [`due_reviews`] that turns them into dated reviews
//! with stable keys. Reminding and escalating are the caller's business; they read `due` against the
//! policy's `remind_days_before` and `escalate_days_after`.

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::policy::ReviewPolicy;
use crate::vocabulary::Step;

/// What kind of review is due. Each has a stable text code used in storage and in review keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// A review of the case's step on the staircase.
    StepReview,
    /// An evaluation of the follow-up plan (oppfølgingsplan).
    PlanEvaluation,
    /// A caseworker's follow-up visit to the child in the foster home.
    FollowUpVisit,
    /// The follow-up of a family group conference's plan.
    ConferenceFollowUp,
    /// A review brought forward by a visit that raised a concern.
    EarlyReview,
    /// The renewal of a secret-address decision.
    SecretAddressRenewal,
}

impl ReviewKind {
    /// Every value, in declaration order.
    pub const ALL: &'static [ReviewKind] = &[
        ReviewKind::StepReview,
        ReviewKind::PlanEvaluation,
        ReviewKind::FollowUpVisit,
        ReviewKind::ConferenceFollowUp,
        ReviewKind::EarlyReview,
        ReviewKind::SecretAddressRenewal,
    ];

    /// The stable text code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::StepReview => "step_review",
            ReviewKind::PlanEvaluation => "plan_evaluation",
            ReviewKind::FollowUpVisit => "follow_up_visit",
            ReviewKind::ConferenceFollowUp => "conference_follow_up",
            ReviewKind::EarlyReview => "early_review",
            ReviewKind::SecretAddressRenewal => "secret_address_renewal",
        }
    }

    /// The value for a text code, if there is one.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "step_review" => Some(ReviewKind::StepReview),
            "plan_evaluation" => Some(ReviewKind::PlanEvaluation),
            "follow_up_visit" => Some(ReviewKind::FollowUpVisit),
            "conference_follow_up" => Some(ReviewKind::ConferenceFollowUp),
            "early_review" => Some(ReviewKind::EarlyReview),
            "secret_address_renewal" => Some(ReviewKind::SecretAddressRenewal),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReviewKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded decision to reduce the caseworker's follow-up visits to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reduction {
    /// The day the decision was made; it is in force from then.
    pub decided_on: NaiveDate,
    /// The last day the decision is in force.
    pub expires: NaiveDate,
}

impl Reduction {
    /// Whether the reduction is in force on `day` (both ends included).
    pub fn in_force_on(&self, day: NaiveDate) -> bool {
        self.decided_on <= day && day <= self.expires
    }
}

/// A family group conference (familieråd), as far as its follow-up is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConferenceFact {
    /// The conference.
    pub id: Uuid,
    /// The day it was held; `None` while it is only planned.
    pub held_on: Option<NaiveDate>,
    /// Whether the follow-up meeting on the conference's plan has taken place.
    pub follow_up_done: bool,
}

/// A visit that raised a concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcernFact {
    /// The visit.
    pub visit_id: Uuid,
    /// The day of the visit.
    pub on: NaiveDate,
    /// Whether the early review the concern called for has been held.
    pub reviewed: bool,
}

/// A secret-address decision: the parents must not learn where the child lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretAddressFact {
    /// The decision.
    pub decision_id: Uuid,
    /// The first day the decision applies.
    pub valid_from: NaiveDate,
    /// The last day it applies; `None` until further notice.
    pub valid_to: Option<NaiveDate>,
    /// The day it was last renewed (a completed renewal review), if ever.
    pub last_renewed: Option<NaiveDate>,
}

/// Everything about one case that decides which reviews are due. `today` is the date in Norway the
/// computation is for; nothing here reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueInput<'a> {
    /// The date the reviews are computed for.
    pub today: NaiveDate,
    /// The case's current step.
    pub step: Step,
    /// The day the current step began.
    pub step_since: NaiveDate,
    /// The last completed step review in this step.
    pub last_step_review: Option<NaiveDate>,
    /// The day the follow-up plan was established; `None` while there is no plan.
    pub plan_established: Option<NaiveDate>,
    /// The last evaluation of the follow-up plan.
    pub last_plan_evaluation: Option<NaiveDate>,
    /// The day the child was placed (the placement's start); the follow-up visits are owed from it.
    /// `None` when unknown: owed for the whole year.
    pub placed_since: Option<NaiveDate>,
    /// The days of the caseworker's follow-up visits to the child in the foster home.
    pub follow_up_visits: &'a [NaiveDate],
    /// A recorded decision to reduce the follow-up visits, if any.
    pub follow_up_reduction: Option<Reduction>,
    /// The case's family group conferences.
    pub conferences: &'a [ConferenceFact],
    /// The visits that raised concerns.
    pub concerns: &'a [ConcernFact],
    /// The case's secret-address decisions.
    pub secret_address_decisions: &'a [SecretAddressFact],
}

/// A review that is due. `key` identifies the review across computations: the same obligation gets
/// the same key every time, so a caller can tell a new review from one it already knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DueReview {
    /// Stable identity, starting with the kind's code, e.g. `early_review/<visit id>`.
    pub key: String,
    /// What kind of review.
    pub kind: ReviewKind,
    /// The day it is due; in the past when it is overdue.
    pub due: NaiveDate,
    /// Why it is due, for the caseworker. Dates, counts and policy settings only: no personal data.
    pub reason: String,
}

/// The reviews due for a case, sorted by due date and then key, without duplicate keys.
///
/// Overdue reviews keep their past due date: whether a review is late is for the caller to see,
/// not for this rule to hide by moving the date.
pub fn due_reviews(input: &DueInput<'_>, policy: &ReviewPolicy) -> Vec<DueReview> {
    let mut reviews = Vec::new();
    reviews.push(step_review(input, policy));
    reviews.extend(plan_evaluation(input, policy));
    reviews.extend(follow_up_visit(input, policy));
    reviews.extend(conference_follow_ups(input, policy));
    reviews.extend(early_reviews(input, policy));
    reviews.extend(secret_address_renewals(input, policy));

    // The same fact given twice (e.g. a concern listed twice) must not give two reviews. Keeping the
    // earliest due date, then the smallest reason, makes the choice independent of input order.
    let mut by_key: BTreeMap<String, DueReview> = BTreeMap::new();
    for review in reviews {
        match by_key.get(&review.key) {
            Some(kept) if (kept.due, &kept.reason) <= (review.due, &review.reason) => {}
            _ => {
                by_key.insert(review.key.clone(), review);
            }
        }
    }
    let mut out: Vec<DueReview> = by_key.into_values().collect();
    out.sort_by(|a, b| (a.due, &a.key).cmp(&(b.due, &b.key)));
    out
}

/// Step review: a fixed cadence per step, counted from the later of the step's start and the last
/// step review, so a step change restarts the clock.
fn step_review(input: &DueInput<'_>, policy: &ReviewPolicy) -> DueReview {
    let anchor = match input.last_step_review {
        Some(last) => last.max(input.step_since),
        None => input.step_since,
    };
    let weeks = policy.step_review_weeks(input.step);
    let due = add_days(anchor, u64::from(weeks) * 7);
    let since = if input
        .last_step_review
        .is_some_and(|last| last >= input.step_since)
    {
        "the last step review"
    } else {
        "the start of the step"
    };
    DueReview {
        key: format!("step_review/{}/{}", input.step.as_str(), anchor),
        kind: ReviewKind::StepReview,
        due,
        reason: format!(
            "step {} ({}) is reviewed every {weeks} weeks; {anchor} was {since}",
            input.step.number(),
            input.step.as_str(),
        ),
    }
}

/// Plan evaluation: only once a follow-up plan exists, counted from its last evaluation. A plan
/// established after the last evaluation (a new plan) restarts the count.
fn plan_evaluation(input: &DueInput<'_>, policy: &ReviewPolicy) -> Option<DueReview> {
    let established = input.plan_established?;
    let anchor = match input.last_plan_evaluation {
        Some(last) => last.max(established),
        None => established,
    };
    let months = policy.plan_evaluation_months;
    let since = if input
        .last_plan_evaluation
        .is_some_and(|last| last >= established)
    {
        "the last evaluation"
    } else {
        "the day the plan was established"
    };
    Some(DueReview {
        key: format!("plan_evaluation/{anchor}"),
        kind: ReviewKind::PlanEvaluation,
        due: add_months(anchor, u64::from(months)),
        reason: format!(
            "the follow-up plan is evaluated every {months} months; {anchor} was {since}"
        ),
    })
}

/// Follow-up visits to the child (barnevernloven: a minimum number a year, lower while a recorded
/// reduction is in force). At most one is due: the next visit of the year, by the end of its share
/// of the year, so the visits spread over the year instead of piling up in December. In the year the
/// child was placed, the shares that ended before the placement are not owed: a child placed in May
/// owes no visit for the first quarter, so a new case does not start with one overdue.
fn follow_up_visit(input: &DueInput<'_>, policy: &ReviewPolicy) -> Option<DueReview> {
    let today = input.today;
    let year = today.year();
    let reduced = input.follow_up_reduction.filter(|r| r.in_force_on(today));
    let required = match reduced {
        Some(_) => policy.reduced_follow_up_visits_per_year,
        None => policy.follow_up_visits_per_year,
    };
    // Shares of this year that ended before the child was placed.
    let before_placement = match input.placed_since {
        Some(placed) if placed.year() > year => required,
        Some(placed) if placed.year() == year => (1..=required)
            .take_while(|k| slice_end(year, *k, required) < placed)
            .count()
            .try_into()
            .unwrap_or(required),
        _ => 0,
    };
    let owed = required - before_placement;
    // A visit dated after today has not taken place yet; it cannot count towards the minimum.
    let done = input
        .follow_up_visits
        .iter()
        .filter(|d| d.year() == year && **d <= today)
        .count();
    let done = u32::try_from(done).unwrap_or(u32::MAX);
    if done >= owed {
        return None;
    }
    let k = before_placement + done + 1;
    let due = slice_end(year, k, required);
    let rule = match reduced {
        Some(r) => format!(
            "{required} a year while the reduction decided on {} is in force (until {})",
            r.decided_on, r.expires
        ),
        None => format!("at least {required} a year"),
    };
    let since = match input.placed_since {
        Some(placed) if before_placement > 0 => format!(", {owed} since the placement on {placed}"),
        _ => String::new(),
    };
    Some(DueReview {
        key: format!("follow_up_visit/{year}/{k}"),
        kind: ReviewKind::FollowUpVisit,
        due,
        reason: format!(
            "{done} of {owed} follow-up visits to the child in {year} done ({rule}{since}); \
             the next is due by the end of its share of the year"
        ),
    })
}

/// Conference follow-up: a held family group conference's plan is followed up at a later meeting.
fn conference_follow_ups(input: &DueInput<'_>, policy: &ReviewPolicy) -> Vec<DueReview> {
    let weeks = policy.conference_follow_up_weeks;
    input
        .conferences
        .iter()
        .filter(|c| !c.follow_up_done)
        .filter_map(|c| {
            let held_on = c.held_on?;
            Some(DueReview {
                key: format!("conference_follow_up/{}", c.id),
                kind: ReviewKind::ConferenceFollowUp,
                due: add_days(held_on, u64::from(weeks) * 7),
                reason: format!(
                    "the family group conference held on {held_on} is followed up within {weeks} weeks"
                ),
            })
        })
        .collect()
}

/// Early review: a visit that raised a concern brings a review forward until it has been held.
fn early_reviews(input: &DueInput<'_>, policy: &ReviewPolicy) -> Vec<DueReview> {
    let days = policy.early_review_after_concern_days;
    input
        .concerns
        .iter()
        .filter(|c| !c.reviewed)
        .map(|c| DueReview {
            key: format!("early_review/{}", c.visit_id),
            kind: ReviewKind::EarlyReview,
            due: add_days(c.on, u64::from(days)),
            reason: format!(
                "the visit on {} raised a concern; it is reviewed within {days} days",
                c.on
            ),
        })
        .collect()
}

/// Secret-address renewal: a decision that still applies is renewed every period, counted from
/// its last renewal (or the day it began to apply). A renewal not done stays due, and overdue, until
/// it is; a decision that ends before its next renewal needs none.
fn secret_address_renewals(input: &DueInput<'_>, policy: &ReviewPolicy) -> Vec<DueReview> {
    let months = policy.secret_address_renewal_months;
    input
        .secret_address_decisions
        .iter()
        .filter(|d| d.valid_to.is_none_or(|end| end >= input.today))
        .filter_map(|d| {
            let anchor = d.last_renewed.map_or(d.valid_from, |r| r.max(d.valid_from));
            let due = add_months(anchor, u64::from(months));
            if d.valid_to.is_some_and(|end| end < due) {
                return None;
            }
            Some(DueReview {
                key: format!("secret_address_renewal/{}/{anchor}", d.decision_id),
                kind: ReviewKind::SecretAddressRenewal,
                due,
                reason: format!(
                    "the secret-address decision valid from {} is renewed every {months} months",
                    d.valid_from
                ),
            })
        })
        .collect()
}

/// The last day of the `k`-th of `slices` equal shares of `year` (1-based). Shares are measured in
/// months so that the usual counts fall on month ends (four: March, June, September, December); a
/// share boundary inside a month falls on the matching fraction of that month's days.
fn slice_end(year: i32, k: u32, slices: u32) -> NaiveDate {
    let year_end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX);
    if slices == 0 || k >= slices {
        return year_end;
    }
    let twelfths = u64::from(k) * 12;
    let whole_months = twelfths / u64::from(slices); // 0..=11 since k < slices
    let remainder = twelfths % u64::from(slices);
    let Some(next_month_start) = u32::try_from(whole_months + 1)
        .ok()
        .and_then(|m| NaiveDate::from_ymd_opt(year, m, 1))
    else {
        return year_end;
    };
    let month_days = add_months(next_month_start, 1)
        .signed_duration_since(next_month_start)
        .num_days();
    let month_days = u64::try_from(month_days).unwrap_or(0);
    // The boundary is `remainder / slices` into the month; the share ends the day before it.
    let boundary = add_days(next_month_start, remainder * month_days / u64::from(slices));
    boundary.pred_opt().unwrap_or(boundary)
}

/// `date` plus `days`. Past the last date chrono can represent it stays on that date: a review that
/// far away must still be listed, not dropped.
fn add_days(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days))
        .unwrap_or(NaiveDate::MAX)
}

/// `date` plus `months` calendar months, clamped to the month's end (31 January + 1 month is the
/// last day of February). Saturates like [`add_days`].
fn add_months(date: NaiveDate, months: u64) -> NaiveDate {
    u32::try_from(months)
        .ok()
        .and_then(|m| date.checked_add_months(Months::new(m)))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn policy() -> ReviewPolicy {
        Policy::default().reviews
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// A case in step 1 since 2026-01-05 with nothing else recorded, seen on 2026-02-01.
    fn base() -> DueInput<'static> {
        DueInput {
            today: d(2026, 2, 1),
            step: Step::Safety,
            step_since: d(2026, 1, 5),
            last_step_review: None,
            plan_established: None,
            last_plan_evaluation: None,
            placed_since: None,
            follow_up_visits: &[],
            follow_up_reduction: None,
            conferences: &[],
            concerns: &[],
            secret_address_decisions: &[],
        }
    }

    fn of_kind(reviews: &[DueReview], kind: ReviewKind) -> Vec<DueReview> {
        reviews.iter().filter(|r| r.kind == kind).cloned().collect()
    }

    fn one(reviews: &[DueReview], kind: ReviewKind) -> DueReview {
        let found = of_kind(reviews, kind);
        assert_eq!(found.len(), 1, "exactly one {kind} in {reviews:?}");
        found[0].clone()
    }

    #[test]
    fn review_kind_codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in ReviewKind::ALL {
            assert_eq!(ReviewKind::parse(kind.as_str()), Some(*kind));
            assert_eq!(kind.to_string(), kind.as_str());
            assert!(seen.insert(kind.as_str()));
            let code = serde_code(*kind);
            assert_eq!(code, kind.as_str(), "serde uses the same code");
        }
        assert_eq!(ReviewKind::parse("nope"), None);
    }

    /// The serde name of a kind, via a TOML round trip (serde_json is not a dependency here).
    fn serde_code(kind: ReviewKind) -> String {
        #[derive(Serialize)]
        struct W {
            k: ReviewKind,
        }
        let text = toml::to_string(&W { k: kind }).unwrap();
        text.trim()
            .trim_start_matches("k = ")
            .trim_matches('"')
            .to_owned()
    }

    #[test]
    fn a_step_review_is_due_the_policy_weeks_after_the_step_began() {
        let reviews = due_reviews(&base(), &policy());
        let r = one(&reviews, ReviewKind::StepReview);
        assert_eq!(r.due, d(2026, 3, 2), "8 weeks after 2026-01-05");
        assert_eq!(r.key, "step_review/safety/2026-01-05");
    }

    #[test]
    fn a_step_review_counts_from_the_last_step_review_in_the_step() {
        let input = DueInput {
            last_step_review: Some(d(2026, 3, 1)),
            today: d(2026, 3, 10),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::StepReview);
        assert_eq!(r.due, d(2026, 4, 26));
        assert_eq!(r.key, "step_review/safety/2026-03-01");
        // A review from before the step began does not count: the step change restarted the clock.
        let input = DueInput {
            last_step_review: Some(d(2025, 12, 1)),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::StepReview);
        assert_eq!(r.key, "step_review/safety/2026-01-05");
    }

    #[test]
    fn step_three_is_reviewed_more_often_than_step_one() {
        let step1 = one(&due_reviews(&base(), &policy()), ReviewKind::StepReview);
        let input = DueInput {
            step: Step::Responsibility,
            ..base()
        };
        let step3 = one(&due_reviews(&input, &policy()), ReviewKind::StepReview);
        assert!(step3.due < step1.due);
        assert_eq!(step3.due, d(2026, 2, 2), "4 weeks after 2026-01-05");
        assert_eq!(step3.key, "step_review/responsibility/2026-01-05");
    }

    #[test]
    fn no_plan_evaluation_is_due_before_a_plan_exists() {
        let reviews = due_reviews(&base(), &policy());
        assert!(of_kind(&reviews, ReviewKind::PlanEvaluation).is_empty());
    }

    #[test]
    fn a_plan_evaluation_is_due_the_policy_months_after_the_plan_or_its_last_evaluation() {
        let input = DueInput {
            plan_established: Some(d(2025, 8, 31)),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::PlanEvaluation);
        assert_eq!(
            r.due,
            d(2026, 2, 28),
            "six months, clamped to the end of February"
        );
        assert_eq!(r.key, "plan_evaluation/2025-08-31");
        let input = DueInput {
            plan_established: Some(d(2025, 8, 31)),
            last_plan_evaluation: Some(d(2026, 1, 20)),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::PlanEvaluation);
        assert_eq!(r.due, d(2026, 7, 20));
        assert_eq!(r.key, "plan_evaluation/2026-01-20");
    }

    #[test]
    fn four_follow_up_visits_a_year_fall_due_at_the_end_of_each_quarter() {
        let r = one(&due_reviews(&base(), &policy()), ReviewKind::FollowUpVisit);
        assert_eq!(r.due, d(2026, 3, 31));
        assert_eq!(r.key, "follow_up_visit/2026/1");
        assert!(r.reason.contains("0 of 4"), "{}", r.reason);
        let ends: Vec<NaiveDate> = (1..=4).map(|k| slice_end(2026, k, 4)).collect();
        assert_eq!(
            ends,
            [
                d(2026, 3, 31),
                d(2026, 6, 30),
                d(2026, 9, 30),
                d(2026, 12, 31)
            ]
        );
        assert_eq!(slice_end(2026, 1, 2), d(2026, 6, 30));
        assert_eq!(slice_end(2028, 1, 24), d(2028, 1, 15), "half of January");
    }

    #[test]
    fn follow_up_visits_already_done_make_the_next_one_due_later() {
        let visits = [
            d(2026, 1, 10),
            d(2026, 3, 2),
            d(2025, 11, 1),
            d(2026, 12, 1),
        ];
        let input = DueInput {
            today: d(2026, 5, 1),
            follow_up_visits: &visits,
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit);
        // Last year's visit and the one planned for December do not count: two done this year.
        assert_eq!(r.key, "follow_up_visit/2026/3");
        assert_eq!(r.due, d(2026, 9, 30));
        assert!(r.reason.contains("2 of 4"), "{}", r.reason);
    }

    #[test]
    fn no_follow_up_visit_is_due_once_the_years_visits_are_done() {
        let visits = [d(2026, 1, 10), d(2026, 3, 2), d(2026, 4, 2), d(2026, 5, 2)];
        let input = DueInput {
            today: d(2026, 6, 1),
            follow_up_visits: &visits,
            ..base()
        };
        let reviews = due_reviews(&input, &policy());
        assert!(of_kind(&reviews, ReviewKind::FollowUpVisit).is_empty());
    }

    #[test]
    fn a_reduction_lowers_the_follow_up_visits_only_while_it_is_in_force() {
        let visits = [d(2026, 2, 10), d(2026, 8, 10)];
        let reduction = Reduction {
            decided_on: d(2026, 1, 15),
            expires: d(2026, 10, 31),
        };
        let at = |today| DueInput {
            today,
            follow_up_visits: &visits,
            follow_up_reduction: Some(reduction),
            ..base()
        };
        // Before the decision: four a year.
        let r = one(
            &due_reviews(&at(d(2026, 1, 14)), &policy()),
            ReviewKind::FollowUpVisit,
        );
        assert_eq!(
            (r.key.as_str(), r.due),
            ("follow_up_visit/2026/1", d(2026, 3, 31))
        );
        // In force: two a year; the first is done, the second is due by the end of the year.
        let r = one(
            &due_reviews(&at(d(2026, 3, 1)), &policy()),
            ReviewKind::FollowUpVisit,
        );
        assert_eq!(
            (r.key.as_str(), r.due),
            ("follow_up_visit/2026/2", d(2026, 12, 31))
        );
        assert!(r.reason.contains("1 of 2"), "{}", r.reason);
        // On its last day it still applies, and two done is enough.
        let reviews = due_reviews(&at(d(2026, 10, 31)), &policy());
        assert!(of_kind(&reviews, ReviewKind::FollowUpVisit).is_empty());
        // The day after it expires, four a year again: the third visit is already overdue.
        let r = one(
            &due_reviews(&at(d(2026, 11, 1)), &policy()),
            ReviewKind::FollowUpVisit,
        );
        assert_eq!(
            (r.key.as_str(), r.due),
            ("follow_up_visit/2026/3", d(2026, 9, 30))
        );
        assert!(r.reason.contains("2 of 4"), "{}", r.reason);
    }

    #[test]
    fn a_held_conference_brings_a_follow_up_within_the_policy_weeks() {
        let conferences = [
            ConferenceFact {
                id: id(7),
                held_on: Some(d(2026, 1, 20)),
                follow_up_done: false,
            },
            ConferenceFact {
                id: id(8),
                held_on: None,
                follow_up_done: false,
            },
        ];
        let input = DueInput {
            conferences: &conferences,
            ..base()
        };
        let r = one(
            &due_reviews(&input, &policy()),
            ReviewKind::ConferenceFollowUp,
        );
        assert_eq!(r.due, d(2026, 3, 17), "8 weeks after 2026-01-20");
        assert_eq!(r.key, format!("conference_follow_up/{}", id(7)));
    }

    #[test]
    fn a_completed_follow_up_removes_the_conference_review() {
        let conferences = [ConferenceFact {
            id: id(7),
            held_on: Some(d(2026, 1, 20)),
            follow_up_done: true,
        }];
        let input = DueInput {
            conferences: &conferences,
            ..base()
        };
        let reviews = due_reviews(&input, &policy());
        assert!(of_kind(&reviews, ReviewKind::ConferenceFollowUp).is_empty());
    }

    #[test]
    fn a_concern_brings_an_early_review_within_the_policy_days() {
        let concerns = [ConcernFact {
            visit_id: id(3),
            on: d(2026, 1, 28),
            reviewed: false,
        }];
        let input = DueInput {
            concerns: &concerns,
            ..base()
        };
        let reviews = due_reviews(&input, &policy());
        let r = one(&reviews, ReviewKind::EarlyReview);
        assert_eq!(r.due, d(2026, 2, 4));
        assert_eq!(r.key, format!("early_review/{}", id(3)));
        assert!(
            r.due < one(&reviews, ReviewKind::StepReview).due,
            "brought forward"
        );
    }

    #[test]
    fn a_reviewed_concern_brings_no_early_review() {
        let concerns = [ConcernFact {
            visit_id: id(3),
            on: d(2026, 1, 28),
            reviewed: true,
        }];
        let input = DueInput {
            concerns: &concerns,
            ..base()
        };
        assert!(of_kind(&due_reviews(&input, &policy()), ReviewKind::EarlyReview).is_empty());
    }

    #[test]
    fn a_secret_address_decision_is_renewed_a_period_after_it_began_or_was_last_renewed() {
        let mut decisions = [SecretAddressFact {
            decision_id: id(9),
            valid_from: d(2024, 2, 29),
            valid_to: None,
            last_renewed: None,
        }];
        let at = |today, decisions: &[SecretAddressFact]| {
            let input = DueInput {
                today,
                secret_address_decisions: decisions,
                ..base()
            };
            one(
                &due_reviews(&input, &policy()),
                ReviewKind::SecretAddressRenewal,
            )
        };
        let r = at(d(2024, 6, 1), &decisions);
        assert_eq!(
            (r.key.clone(), r.due),
            (
                format!("secret_address_renewal/{}/2024-02-29", id(9)),
                d(2025, 2, 28)
            )
        );
        // Not renewed: it stays due, and is overdue later.
        assert_eq!(at(d(2025, 6, 1), &decisions).due, d(2025, 2, 28));
        // Renewed: the next renewal counts from then.
        decisions[0].last_renewed = Some(d(2025, 3, 10));
        let r = at(d(2025, 6, 1), &decisions);
        assert_eq!(
            (r.key.clone(), r.due),
            (
                format!("secret_address_renewal/{}/2025-03-10", id(9)),
                d(2026, 3, 10)
            )
        );
    }

    #[test]
    fn a_secret_address_decision_that_ended_or_ends_before_its_renewal_brings_none() {
        let decisions = [
            SecretAddressFact {
                decision_id: id(9),
                valid_from: d(2024, 1, 1),
                valid_to: Some(d(2026, 1, 31)),
                last_renewed: Some(d(2025, 1, 1)),
            },
            SecretAddressFact {
                decision_id: id(10),
                valid_from: d(2025, 6, 1),
                valid_to: Some(d(2026, 3, 1)),
                last_renewed: None,
            },
            SecretAddressFact {
                decision_id: id(11),
                valid_from: d(2025, 6, 1),
                valid_to: Some(d(2026, 6, 1)),
                last_renewed: None,
            },
        ];
        let input = DueInput {
            secret_address_decisions: &decisions,
            ..base()
        };
        let r = one(
            &due_reviews(&input, &policy()),
            ReviewKind::SecretAddressRenewal,
        );
        assert_eq!(
            r.key,
            format!("secret_address_renewal/{}/2025-06-01", id(11)),
            "ends on its renewal day"
        );
    }

    #[test]
    fn overdue_reviews_keep_their_past_due_date() {
        let concerns = [ConcernFact {
            visit_id: id(3),
            on: d(2025, 6, 1),
            reviewed: false,
        }];
        let input = DueInput {
            today: d(2026, 8, 1),
            step_since: d(2025, 1, 1),
            plan_established: Some(d(2025, 1, 1)),
            concerns: &concerns,
            ..base()
        };
        let reviews = due_reviews(&input, &policy());
        assert_eq!(one(&reviews, ReviewKind::StepReview).due, d(2025, 2, 26));
        assert_eq!(one(&reviews, ReviewKind::PlanEvaluation).due, d(2025, 7, 1));
        assert_eq!(one(&reviews, ReviewKind::EarlyReview).due, d(2025, 6, 8));
        assert_eq!(one(&reviews, ReviewKind::FollowUpVisit).due, d(2026, 3, 31));
    }

    #[test]
    fn reviews_are_sorted_by_due_date_then_key_and_a_repeated_fact_gives_one_review() {
        let concerns = [
            ConcernFact {
                visit_id: id(3),
                on: d(2026, 1, 28),
                reviewed: false,
            },
            ConcernFact {
                visit_id: id(3),
                on: d(2026, 1, 27),
                reviewed: false,
            },
            ConcernFact {
                visit_id: id(2),
                on: d(2026, 1, 28),
                reviewed: false,
            },
        ];
        let input = DueInput {
            concerns: &concerns,
            ..base()
        };
        let reviews = due_reviews(&input, &policy());
        let early = of_kind(&reviews, ReviewKind::EarlyReview);
        assert_eq!(early.len(), 2);
        assert_eq!(
            early[0].due,
            d(2026, 2, 3),
            "the earliest of the repeated fact"
        );
        assert_eq!(early[1].key, format!("early_review/{}", id(2)));
        for pair in reviews.windows(2) {
            assert!((pair[0].due, &pair[0].key) < (pair[1].due, &pair[1].key));
        }
    }

    // ---- property tests ----

    #[derive(Debug, Clone)]
    struct Case {
        today: NaiveDate,
        step: Step,
        step_since: NaiveDate,
        last_step_review: Option<NaiveDate>,
        plan_established: Option<NaiveDate>,
        last_plan_evaluation: Option<NaiveDate>,
        placed_since: Option<NaiveDate>,
        follow_up_visits: Vec<NaiveDate>,
        follow_up_reduction: Option<Reduction>,
        conferences: Vec<ConferenceFact>,
        concerns: Vec<ConcernFact>,
        secret_address_decisions: Vec<SecretAddressFact>,
    }

    impl Case {
        fn input(&self) -> DueInput<'_> {
            DueInput {
                today: self.today,
                step: self.step,
                step_since: self.step_since,
                last_step_review: self.last_step_review,
                plan_established: self.plan_established,
                last_plan_evaluation: self.last_plan_evaluation,
                placed_since: self.placed_since,
                follow_up_visits: &self.follow_up_visits,
                follow_up_reduction: self.follow_up_reduction,
                conferences: &self.conferences,
                concerns: &self.concerns,
                secret_address_decisions: &self.secret_address_decisions,
            }
        }
    }

    /// A date between 2020 and 2030 (month ends and leap days included).
    fn date() -> impl Strategy<Value = NaiveDate> {
        (0u64..4000).prop_map(|n| d(2020, 1, 1) + Days::new(n))
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Safety),
            Just(Step::Involvement),
            Just(Step::Responsibility)
        ]
    }

    fn case() -> impl Strategy<Value = Case> {
        let conference = (0u128..6, proptest::option::of(date()), any::<bool>()).prop_map(
            |(n, held_on, follow_up_done)| ConferenceFact {
                id: id(n),
                held_on,
                follow_up_done,
            },
        );
        let concern = (0u128..6, date(), any::<bool>()).prop_map(|(n, on, reviewed)| ConcernFact {
            visit_id: id(n),
            on,
            reviewed,
        });
        let secret = (0u128..6, date(), proptest::option::of(date())).prop_map(
            |(n, valid_from, valid_to)| SecretAddressFact {
                decision_id: id(n),
                valid_from,
                valid_to,
                last_renewed: None,
            },
        );
        let reduction = proptest::option::of((date(), date()).prop_map(|(a, b)| Reduction {
            decided_on: a.min(b),
            expires: a.max(b),
        }));
        (
            (date(), step(), date(), proptest::option::of(date())),
            (
                proptest::option::of(date()),
                proptest::option::of(date()),
                proptest::option::of(date()),
            ),
            (proptest::collection::vec(date(), 0..8), reduction),
            proptest::collection::vec(conference, 0..4),
            proptest::collection::vec(concern, 0..4),
            proptest::collection::vec(secret, 0..4),
        )
            .prop_map(
                |(
                    (today, step, step_since, last_step_review),
                    (plan_established, last_plan_evaluation, placed_since),
                    (follow_up_visits, follow_up_reduction),
                    conferences,
                    concerns,
                    secret_address_decisions,
                )| Case {
                    today,
                    step,
                    step_since,
                    last_step_review,
                    plan_established,
                    last_plan_evaluation,
                    placed_since,
                    follow_up_visits,
                    follow_up_reduction,
                    conferences,
                    concerns,
                    secret_address_decisions,
                },
            )
    }

    fn by_key(reviews: &[DueReview]) -> BTreeMap<String, DueReview> {
        reviews.iter().map(|r| (r.key.clone(), r.clone())).collect()
    }

    proptest! {
        #[test]
        fn no_follow_up_visit_is_due_for_a_time_before_the_placement(case in case()) {
            let reviews = due_reviews(&case.input(), &policy());
            if let Some(placed) = case.placed_since {
                for r in reviews.iter().filter(|r| r.kind == ReviewKind::FollowUpVisit) {
                    prop_assert!(r.due >= placed, "{:?} before the placement {}", r, placed);
                }
            }
        }

        #[test]
        fn the_same_input_gives_the_same_reviews(case in case()) {
            let p = policy();
            prop_assert_eq!(due_reviews(&case.input(), &p), due_reviews(&case.input(), &p));
        }

        #[test]
        fn review_keys_are_unique_and_the_output_is_sorted(case in case()) {
            let reviews = due_reviews(&case.input(), &policy());
            prop_assert_eq!(by_key(&reviews).len(), reviews.len());
            for pair in reviews.windows(2) {
                prop_assert!((pair[0].due, &pair[0].key) < (pair[1].due, &pair[1].key));
            }
            for r in &reviews {
                let prefix = format!("{}/", r.kind.as_str());
                prop_assert!(r.key.starts_with(&prefix), "{:?}", r);
            }
        }

        #[test]
        fn adding_an_unrelated_fact_leaves_every_other_review_unchanged(
            case in case(),
            on in date(),
            held_on in date(),
            valid_from in date(),
        ) {
            let p = policy();
            let before = by_key(&due_reviews(&case.input(), &p));
            // Ids outside the generated range: new facts, not repeats of existing ones.
            let mut more = case.clone();
            more.concerns.push(ConcernFact { visit_id: id(100), on, reviewed: false });
            more.conferences.push(ConferenceFact { id: id(101), held_on: Some(held_on), follow_up_done: false });
            more.secret_address_decisions.push(SecretAddressFact { decision_id: id(102), valid_from, valid_to: None, last_renewed: None });
            let after = by_key(&due_reviews(&more.input(), &p));
            for (key, review) in &before {
                prop_assert_eq!(after.get(key), Some(review));
            }
            prop_assert_eq!(after.len(), before.len() + 3);
        }

        #[test]
        fn due_dates_are_never_before_their_anchor(case in case()) {
            let input = case.input();
            for r in due_reviews(&input, &policy()) {
                let anchor = match r.kind {
                    ReviewKind::StepReview => input.last_step_review.map_or(input.step_since, |l| l.max(input.step_since)),
                    ReviewKind::PlanEvaluation => {
                        let est = input.plan_established.unwrap();
                        input.last_plan_evaluation.map_or(est, |l| l.max(est))
                    }
                    ReviewKind::FollowUpVisit => d(input.today.year(), 1, 1),
                    ReviewKind::ConferenceFollowUp => input
                        .conferences
                        .iter()
                        .filter(|c| r.key.ends_with(&c.id.to_string()))
                        .filter_map(|c| c.held_on)
                        .min()
                        .unwrap(),
                    ReviewKind::EarlyReview => input
                        .concerns
                        .iter()
                        .filter(|c| r.key.ends_with(&c.visit_id.to_string()))
                        .map(|c| c.on)
                        .min()
                        .unwrap(),
                    ReviewKind::SecretAddressRenewal => {
                        input
                            .secret_address_decisions
                            .iter()
                            .filter(|s| r.key.contains(&s.decision_id.to_string()))
                            .map(|s| s.valid_from)
                            .min()
                            .unwrap()
                    }
                };
                prop_assert!(r.due >= anchor, "{:?} before {}", r, anchor);
                if r.kind == ReviewKind::FollowUpVisit {
                    prop_assert_eq!(r.due.year(), input.today.year());
                }
            }
        }
    }

    #[test]
    fn follow_up_visits_are_owed_from_the_placement_in_the_year_it_began() {
        // Placed on 17 May: the first quarter is not owed; the second quarter's visit is next.
        let input = DueInput {
            today: d(2026, 5, 20),
            placed_since: Some(d(2026, 5, 17)),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit);
        assert_eq!(r.key, "follow_up_visit/2026/2");
        assert_eq!(r.due, d(2026, 6, 30));
        assert!(r.reason.contains("0 of 3"), "{}", r.reason);
        assert!(
            r.reason.contains("since the placement on 2026-05-17"),
            "{}",
            r.reason
        );
        // Three visits since: nothing more is owed this year.
        let visits = [d(2026, 6, 1), d(2026, 8, 1), d(2026, 11, 1)];
        let input = DueInput {
            today: d(2026, 11, 20),
            follow_up_visits: &visits,
            ..input
        };
        assert!(of_kind(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit).is_empty());
        // The next year owes all four again.
        let input = DueInput {
            today: d(2027, 1, 5),
            ..input
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit);
        assert_eq!(r.key, "follow_up_visit/2027/1");
        // A placement on the last day of a share owes that share; one still to come owes nothing.
        let input = DueInput {
            today: d(2026, 3, 31),
            placed_since: Some(d(2026, 3, 31)),
            ..base()
        };
        let r = one(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit);
        assert_eq!(r.due, d(2026, 3, 31));
        let input = DueInput {
            placed_since: Some(d(2027, 2, 1)),
            ..input
        };
        assert!(of_kind(&due_reviews(&input, &policy()), ReviewKind::FollowUpVisit).is_empty());
    }
}

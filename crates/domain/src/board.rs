//! Decisions of the county board (barneverns- og helsenemnda) on visitation: the legal floor and the
//! conditions, and which decision is in force on a given day.

use crate::vocabulary::VisitPeriod;
use chrono::NaiveDate;
use uuid::Uuid;

/// The longest visit, in minutes: a week (a holiday with overnight stays). Floors, scopes and visits
/// are all held to it.
pub const MAX_VISIT_MINUTES: u32 = 7 * 24 * 60;

/// The most visits a floor may demand in one period.
pub const MAX_FLOOR_VISITS: u32 = 366;

/// The board's floor and conditions for one parent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VisitationFloor {
    /// The village member (a parent) the floor applies to.
    pub parent_id: Uuid,
    /// The minimum number of visits per period.
    pub min_visits: u32,
    /// The period the minimum counts over.
    pub period: VisitPeriod,
    /// The minimum length of each visit, in minutes.
    pub min_duration_minutes: u32,
    /// Visits must be supervised.
    pub supervision_required: bool,
}

/// A board decision as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardDecision {
    /// The decision id.
    pub id: Uuid,
    /// The first day it applies.
    pub valid_from: NaiveDate,
    /// The last day it applies, if it ends.
    pub valid_to: Option<NaiveDate>,
    /// The foster home's address is secret.
    pub secret_address: bool,
    /// The floor per parent.
    pub floors: Vec<VisitationFloor>,
}

impl BoardDecision {
    /// Whether the decision's own dates cover `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

/// The decision in force on `day`: a newer decision replaces an older one from its first day, so it
/// is the one with the latest `valid_from` not after `day`, provided it has not ended. Ties (two
/// decisions from the same day) go to the later-recorded one, which callers list last.
pub fn in_force(decisions: &[BoardDecision], day: NaiveDate) -> Option<&BoardDecision> {
    decisions
        .iter()
        .filter(|d| d.valid_from <= day)
        .max_by_key(|d| d.valid_from)
        .filter(|d| d.covers(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn decision(from: NaiveDate, to: Option<NaiveDate>) -> BoardDecision {
        BoardDecision {
            id: Uuid::now_v7(),
            valid_from: from,
            valid_to: to,
            secret_address: false,
            floors: vec![],
        }
    }

    #[test]
    fn no_decision_is_in_force_before_the_first_one_starts() {
        let ds = [decision(date(2026, 3, 1), None)];
        assert!(in_force(&ds, date(2026, 2, 28)).is_none());
        assert_eq!(in_force(&ds, date(2026, 3, 1)), Some(&ds[0]));
    }

    #[test]
    fn a_newer_decision_replaces_the_older_from_its_first_day() {
        let ds = [
            decision(date(2025, 1, 1), None),
            decision(date(2026, 6, 1), None),
        ];
        assert_eq!(in_force(&ds, date(2026, 5, 31)), Some(&ds[0]));
        assert_eq!(in_force(&ds, date(2026, 6, 1)), Some(&ds[1]));
    }

    #[test]
    fn a_decision_that_has_ended_is_not_in_force_and_does_not_revive_an_older_one() {
        let ds = [
            decision(date(2025, 1, 1), None),
            decision(date(2026, 1, 1), Some(date(2026, 6, 30))),
        ];
        assert_eq!(in_force(&ds, date(2026, 6, 30)), Some(&ds[1]));
        assert!(in_force(&ds, date(2026, 7, 1)).is_none());
    }

    #[test]
    fn ties_go_to_the_decision_listed_last() {
        let ds = [
            decision(date(2026, 1, 1), None),
            decision(date(2026, 1, 1), None),
        ];
        assert_eq!(
            in_force(&ds, date(2026, 2, 1)).map(|d| d.id),
            Some(ds[1].id)
        );
    }
}

//! For the fuzz target `fuzz/fuzz_targets/policy.rs` and the replay of its corpus in the tests: any
//! text as a policy file. Parsing must never panic, and a policy that parses must not make the
//! engine panic either.

use crate::board::VisitationFloor;
use crate::due::{DueInput, due_reviews};
use crate::readiness::{Facts, assess};
use crate::scope::{self, ScopeInput};
use crate::{Goal, Policy, Step, VisitPeriod};
use chrono::NaiveDate;

/// Parses `text` as a policy; one that parses computes every step's and goal's scope (with and
/// without a board floor and a secret address), readiness and the due reviews.
pub fn policy_text(text: &str) {
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    let (Some(birth), Some(today), Some(since)) = (
        NaiveDate::from_ymd_opt(2018, 5, 14),
        NaiveDate::from_ymd_opt(2026, 11, 23),
        NaiveDate::from_ymd_opt(2026, 5, 4),
    ) else {
        return;
    };
    let floor = VisitationFloor {
        parent_id: uuid::Uuid::nil(),
        min_visits: 2,
        period: VisitPeriod::Month,
        min_duration_minutes: 120,
        supervision_required: true,
    };
    for &step in Step::ALL {
        for &goal in Goal::ALL {
            for (floor, secret_address) in [(None, false), (Some(&floor), true)] {
                let computed = scope::compute(
                    &ScopeInput {
                        step,
                        goal,
                        floor,
                        secret_address,
                        child_birth_date: birth,
                        today,
                        recent_visits: &[],
                        current: None,
                        parenting_goals: &[],
                    },
                    &policy,
                );
                let _ = scope::check(&computed.values(), floor, secret_address);
            }
            let _ = assess(step, goal, &Facts::default(), &policy.readiness);
        }
        let _ = due_reviews(
            &DueInput {
                today,
                step,
                step_since: since,
                last_step_review: None,
                plan_established: Some(since),
                last_plan_evaluation: None,
                placed_since: Some(since),
                follow_up_visits: &[],
                follow_up_reduction: None,
                conferences: &[],
                concerns: &[],
                secret_address_decisions: &[],
            },
            &policy.reviews,
        );
    }
}

#[cfg(test)]
mod tests {
    /// Every input in the fuzz corpus (`fuzz/corpus/policy`), replayed on every test run.
    #[test]
    fn the_fuzz_corpus_of_the_policy_file_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus") {
            let bytes = std::fs::read(entry.expect("an entry").path()).expect("a file");
            if let Ok(text) = std::str::from_utf8(&bytes) {
                super::policy_text(text);
            }
            n += 1;
        }
        assert!(n > 0, "an empty corpus in {}", dir.display());
    }
}

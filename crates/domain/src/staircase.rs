//! The staircase's legal moves: a review decision takes a case from one position (step and goal) to
//! the next. One step up at a time; back down at any time, to any lower step; step 3 only with a
//! reunification goal; a goal change to long-term placement takes a case in step 3 back to step 2,
//! whose scope is then the maintenance scope. Whether a case is *ready* to move up is
//! [`crate::readiness`]; this module only says which moves exist.

use crate::vocabulary::{Goal, Step};
use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The step.
    pub step: Step,
    /// The goal.
    pub goal: Goal,
}

/// What a review decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// One step up.
    Advance,
    /// Stay where the case is.
    Hold,
    /// Back down to a lower step.
    StepBack {
        /// The step to go back to.
        to: Step,
    },
    /// A new goal.
    ChangeGoal {
        /// The goal from now on.
        to: Goal,
    },
}

impl Decision {
    /// The stable text code of the decision's kind.
    pub fn kind(self) -> &'static str {
        match self {
            Decision::Advance => "advance",
            Decision::Hold => "hold",
            Decision::StepBack { .. } => "step_back",
            Decision::ChangeGoal { .. } => "change_goal",
        }
    }
}

/// A move the staircase does not have. Messages are for caseworkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// Advance from step 3.
    #[error("the case is already in step 3, the top of the staircase")]
    AlreadyAtTop,
    /// Advance to step 3 without a reunification goal.
    #[error("step 3 (responsibility) needs a reunification goal")]
    StepThreeNeedsReunification,
    /// A step back to the same or a higher step.
    #[error("a step back must go to a lower step than the case is in")]
    NotLower,
    /// A goal change to the goal the case already has.
    #[error("the case already has this goal")]
    SameGoal,
}

/// Where `decision` takes a case at `from`.
pub fn apply(from: Position, decision: Decision) -> Result<Position, MoveError> {
    match decision {
        Decision::Hold => Ok(from),
        Decision::Advance => {
            let step = match from.step {
                Step::Safety => Step::Involvement,
                Step::Involvement => Step::Responsibility,
                Step::Responsibility => return Err(MoveError::AlreadyAtTop),
            };
            if !step.allowed_with(from.goal) {
                return Err(MoveError::StepThreeNeedsReunification);
            }
            Ok(Position {
                step,
                goal: from.goal,
            })
        }
        Decision::StepBack { to } => {
            if to.number() >= from.step.number() {
                return Err(MoveError::NotLower);
            }
            Ok(Position {
                step: to,
                goal: from.goal,
            })
        }
        Decision::ChangeGoal { to } => {
            if to == from.goal {
                return Err(MoveError::SameGoal);
            }
            // Long-term placement has no step 3: the case continues in step 2, maintaining and
            // developing the relation.
            let step = if from.step.allowed_with(to) {
                from.step
            } else {
                Step::Involvement
            };
            Ok(Position { step, goal: to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(step: Step, goal: Goal) -> Position {
        Position { step, goal }
    }

    #[test]
    fn advancing_goes_up_one_step_at_a_time() {
        let p = at(Step::Safety, Goal::Reunification);
        let p = apply(p, Decision::Advance).unwrap();
        assert_eq!(p.step, Step::Involvement);
        let p = apply(p, Decision::Advance).unwrap();
        assert_eq!(p.step, Step::Responsibility);
        assert_eq!(apply(p, Decision::Advance), Err(MoveError::AlreadyAtTop));
    }

    #[test]
    fn step_three_needs_a_reunification_goal() {
        let p = at(Step::Involvement, Goal::LongTermPlacement);
        assert_eq!(
            apply(p, Decision::Advance),
            Err(MoveError::StepThreeNeedsReunification)
        );
    }

    #[test]
    fn a_case_can_step_back_at_any_time_to_any_lower_step() {
        let p = at(Step::Responsibility, Goal::Reunification);
        assert_eq!(
            apply(p, Decision::StepBack { to: Step::Safety })
                .unwrap()
                .step,
            Step::Safety
        );
        assert_eq!(
            apply(
                p,
                Decision::StepBack {
                    to: Step::Involvement
                }
            )
            .unwrap()
            .step,
            Step::Involvement
        );
        assert_eq!(
            apply(
                p,
                Decision::StepBack {
                    to: Step::Responsibility
                }
            ),
            Err(MoveError::NotLower)
        );
        let bottom = at(Step::Safety, Goal::Reunification);
        assert_eq!(
            apply(bottom, Decision::StepBack { to: Step::Safety }),
            Err(MoveError::NotLower)
        );
    }

    #[test]
    fn giving_up_reunification_in_step_three_moves_the_case_back_to_step_two() {
        let p = at(Step::Responsibility, Goal::Reunification);
        let after = apply(
            p,
            Decision::ChangeGoal {
                to: Goal::LongTermPlacement,
            },
        )
        .unwrap();
        assert_eq!(after, at(Step::Involvement, Goal::LongTermPlacement));
    }

    #[test]
    fn a_goal_change_below_step_three_keeps_the_step() {
        let p = at(Step::Involvement, Goal::LongTermPlacement);
        let after = apply(
            p,
            Decision::ChangeGoal {
                to: Goal::Reunification,
            },
        )
        .unwrap();
        assert_eq!(after, at(Step::Involvement, Goal::Reunification));
        assert_eq!(
            apply(
                after,
                Decision::ChangeGoal {
                    to: Goal::Reunification
                }
            ),
            Err(MoveError::SameGoal)
        );
    }

    #[test]
    fn holding_changes_nothing() {
        let p = at(Step::Involvement, Goal::Reunification);
        assert_eq!(apply(p, Decision::Hold), Ok(p));
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop::sample::select(Step::ALL.to_vec())
    }
    fn any_goal() -> impl Strategy<Value = Goal> {
        prop::sample::select(Goal::ALL.to_vec())
    }
    fn any_decision() -> impl Strategy<Value = Decision> {
        prop_oneof![
            Just(Decision::Advance),
            Just(Decision::Hold),
            any_step().prop_map(|to| Decision::StepBack { to }),
            any_goal().prop_map(|to| Decision::ChangeGoal { to }),
        ]
    }

    proptest! {
        #[test]
        fn no_sequence_of_decisions_reaches_an_illegal_position_or_skips_a_step_up(
            start_goal in any_goal(),
            decisions in prop::collection::vec(any_decision(), 0..40),
        ) {
            let mut p = at(Step::Safety, start_goal);
            for d in decisions {
                if let Ok(next) = apply(p, d) {
                    prop_assert!(next.step.allowed_with(next.goal));
                    prop_assert!(next.step.number() <= p.step.number() + 1, "up more than one step");
                    if next.step.number() > p.step.number() {
                        prop_assert_eq!(d, Decision::Advance, "only an advance goes up");
                    }
                    p = next;
                }
            }
        }
    }
}

//! Readiness to advance: what the staircase asks before a case moves up a step, as named conditions,
//! each met or not with the reason. Step 1 → 2 asks for a complete frame, completed visits without
//! concerns and the child's view; step 2 → 3 for a reunification goal, parenting goals in the
//! follow-up plan, foster-parent involvement, completed visits, a family group conference held or
//! waived, a reunification plan and the child's view. The numbers come from the policy; unmet
//! conditions are listed, never just refused.

use crate::policy::Readiness as ReadinessPolicy;
use crate::vocabulary::{Goal, Step};

/// What the case service knows about a case that readiness looks at. Visit counts are for the
/// current step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The frame of the visits (where, who, what, roles) is complete.
    pub frame_complete: bool,
    /// Visits completed in the current step without a concern.
    pub completed_visits_without_concerns: u32,
    /// Visits in the current step where the foster parents were involved before, during or after.
    pub visits_with_foster_parent_involvement: u32,
    /// Active parenting goals in the follow-up plan.
    pub active_parenting_goals: u32,
    /// Whether a family group conference was held or waived.
    pub conference: ConferenceState,
    /// Care tasks in the reunification plan.
    pub reunification_plan_tasks: u32,
    /// The child's view was recorded (or why it could not be) at a review in the current step, or
    /// with the decision being made now.
    pub child_view_recorded: bool,
}

/// The family group conference, as readiness sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConferenceState {
    /// None held, none waived.
    #[default]
    None,
    /// One was held.
    Held,
    /// It was waived, with a recorded reason.
    Waived,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// A stable key, e.g. `completed_visits_without_concerns`.
    pub key: &'static str,
    /// Met or not.
    pub met: bool,
    /// Why, in words a caseworker reads: what is there and what is needed.
    pub reason: String,
}

/// Readiness of a case for its next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The step an advance would reach; `None` in step 3.
    pub next_step: Option<Step>,
    /// Every condition, met or not.
    pub conditions: Vec<Condition>,
}

impl Assessment {
    /// Whether every condition is met (and there is a step to go to).
    pub fn ready(&self) -> bool {
        self.next_step.is_some() && self.conditions.iter().all(|c| c.met)
    }

    /// The conditions not met.
    pub fn unmet(&self) -> impl Iterator<Item = &Condition> {
        self.conditions.iter().filter(|c| !c.met)
    }
}

fn count(key: &'static str, what: &str, have: u32, need: u32) -> Condition {
    Condition {
        key,
        met: have >= need,
        reason: format!("{have} of {need} {what}"),
    }
}

fn flag(key: &'static str, met: bool, yes: &str, no: &str) -> Condition {
    Condition {
        key,
        met,
        reason: if met { yes } else { no }.to_owned(),
    }
}

/// How ready a case at `step` with `goal` is to advance.
pub fn assess(step: Step, goal: Goal, facts: &Facts, policy: &ReadinessPolicy) -> Assessment {
    let child_view = flag(
        "child_view",
        facts.child_view_recorded,
        "the child's view is recorded",
        "record the child's view (or why it could not be obtained) with the decision",
    );
    match step {
        Step::Safety => {
            let p = &policy.safety_to_involvement;
            let mut conditions = Vec::new();
            if p.frame_must_be_complete {
                conditions.push(flag(
                    "frame_complete",
                    facts.frame_complete,
                    "the frame is clear: where, who, what, and who does what",
                    "the frame is not complete: where, who, what, and who does what",
                ));
            }
            conditions.push(count(
                "completed_visits_without_concerns",
                "visits completed without concerns in step 1",
                facts.completed_visits_without_concerns,
                p.completed_visits_without_concerns,
            ));
            conditions.push(child_view);
            Assessment {
                next_step: Some(Step::Involvement),
                conditions,
            }
        }
        Step::Involvement => {
            let p = &policy.involvement_to_responsibility;
            let mut conditions = vec![flag(
                "reunification_goal",
                goal == Goal::Reunification,
                "the goal is reunification",
                "step 3 needs a reunification goal; the goal is long-term placement",
            )];
            conditions.push(count(
                "parenting_goals",
                "active parenting goals in the follow-up plan",
                facts.active_parenting_goals,
                p.parenting_goals,
            ));
            conditions.push(count(
                "foster_parent_involvement",
                "visits in step 2 with the foster parents involved",
                facts.visits_with_foster_parent_involvement,
                p.visits_with_foster_parent_involvement,
            ));
            conditions.push(count(
                "completed_visits_without_concerns",
                "visits completed without concerns in step 2",
                facts.completed_visits_without_concerns,
                p.completed_visits_without_concerns,
            ));
            if p.family_group_conference {
                conditions.push(match facts.conference {
                    ConferenceState::Held => flag(
                        "family_group_conference",
                        true,
                        "a family group conference was held",
                        "",
                    ),
                    ConferenceState::Waived => flag(
                        "family_group_conference",
                        true,
                        "the family group conference was waived, with a recorded reason",
                        "",
                    ),
                    ConferenceState::None => flag(
                        "family_group_conference",
                        false,
                        "",
                        "hold a family group conference, or waive it with a reason",
                    ),
                });
            }
            if p.reunification_plan {
                conditions.push(flag(
                    "reunification_plan",
                    facts.reunification_plan_tasks > 0,
                    "a reunification plan with care tasks exists",
                    "make a reunification plan: at least one care task",
                ));
            }
            conditions.push(child_view);
            Assessment {
                next_step: Some(Step::Responsibility),
                conditions,
            }
        }
        Step::Responsibility => Assessment {
            next_step: None,
            conditions: vec![flag(
                "next_step",
                false,
                "",
                "step 3 is the top of the staircase",
            )],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn policy() -> ReadinessPolicy {
        Policy::default().readiness
    }

    fn ready_for_two() -> Facts {
        Facts {
            frame_complete: true,
            completed_visits_without_concerns: 3,
            child_view_recorded: true,
            ..Facts::default()
        }
    }

    fn ready_for_three() -> Facts {
        Facts {
            frame_complete: true,
            completed_visits_without_concerns: 4,
            visits_with_foster_parent_involvement: 2,
            active_parenting_goals: 1,
            conference: ConferenceState::Held,
            reunification_plan_tasks: 3,
            child_view_recorded: true,
        }
    }

    fn unmet(a: &Assessment) -> Vec<&'static str> {
        a.unmet().map(|c| c.key).collect()
    }

    #[test]
    fn step_one_to_two_needs_a_complete_frame_visits_without_concerns_and_the_childs_view() {
        let a = assess(
            Step::Safety,
            Goal::Reunification,
            &ready_for_two(),
            &policy(),
        );
        assert!(a.ready(), "{a:?}");
        assert_eq!(a.next_step, Some(Step::Involvement));
        let a = assess(
            Step::Safety,
            Goal::Reunification,
            &Facts::default(),
            &policy(),
        );
        assert_eq!(
            unmet(&a),
            [
                "frame_complete",
                "completed_visits_without_concerns",
                "child_view"
            ]
        );
    }

    #[test]
    fn the_visit_count_condition_says_how_many_of_how_many() {
        let facts = Facts {
            completed_visits_without_concerns: 2,
            ..ready_for_two()
        };
        let a = assess(Step::Safety, Goal::LongTermPlacement, &facts, &policy());
        let c = a
            .conditions
            .iter()
            .find(|c| c.key == "completed_visits_without_concerns")
            .unwrap();
        assert!(!c.met);
        assert_eq!(
            c.reason,
            "2 of 3 visits completed without concerns in step 1"
        );
    }

    #[test]
    fn the_frame_condition_follows_the_policy() {
        let mut p = policy();
        p.safety_to_involvement.frame_must_be_complete = false;
        let facts = Facts {
            frame_complete: false,
            ..ready_for_two()
        };
        assert!(assess(Step::Safety, Goal::Reunification, &facts, &p).ready());
    }

    #[test]
    fn step_two_to_three_needs_every_condition_of_the_method() {
        assert!(
            assess(
                Step::Involvement,
                Goal::Reunification,
                &ready_for_three(),
                &policy()
            )
            .ready()
        );
        let a = assess(
            Step::Involvement,
            Goal::Reunification,
            &Facts::default(),
            &policy(),
        );
        assert_eq!(
            unmet(&a),
            [
                "parenting_goals",
                "foster_parent_involvement",
                "completed_visits_without_concerns",
                "family_group_conference",
                "reunification_plan",
                "child_view"
            ]
        );
    }

    #[test]
    fn step_three_needs_a_reunification_goal_whatever_else_is_met() {
        let a = assess(
            Step::Involvement,
            Goal::LongTermPlacement,
            &ready_for_three(),
            &policy(),
        );
        assert_eq!(unmet(&a), ["reunification_goal"]);
    }

    #[test]
    fn a_waived_family_group_conference_counts_as_met() {
        let facts = Facts {
            conference: ConferenceState::Waived,
            ..ready_for_three()
        };
        assert!(assess(Step::Involvement, Goal::Reunification, &facts, &policy()).ready());
    }

    #[test]
    fn conditions_the_policy_turns_off_are_not_asked() {
        let mut p = policy();
        p.involvement_to_responsibility.family_group_conference = false;
        p.involvement_to_responsibility.reunification_plan = false;
        let facts = Facts {
            conference: ConferenceState::None,
            reunification_plan_tasks: 0,
            ..ready_for_three()
        };
        let a = assess(Step::Involvement, Goal::Reunification, &facts, &p);
        assert!(a.ready());
        assert!(
            a.conditions
                .iter()
                .all(|c| c.key != "family_group_conference" && c.key != "reunification_plan")
        );
    }

    #[test]
    fn there_is_no_step_above_three() {
        let a = assess(
            Step::Responsibility,
            Goal::Reunification,
            &ready_for_three(),
            &policy(),
        );
        assert!(!a.ready());
        assert_eq!(a.next_step, None);
    }
}

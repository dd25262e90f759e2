//! Care tasks of the reunification plan (Trygg gjenforening): who holds each task, how a task may
//! move between foster parents and parents, and how far the handover has come. Care moves to the
//! parents gradually, one step at a time; it may move back towards the foster parents at any time,
//! because the child's safety comes first.

use serde::{Deserialize, Serialize};

/// Who holds a care task. Ordered from the foster parents towards the parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// The foster parents hold the task.
    FosterParents,
    /// Foster parents and parents share the task.
    Shared,
    /// The parents hold the task.
    Parents,
}

impl Holder {
    /// Every value, from the foster parents towards the parents.
    pub const ALL: &'static [Holder] = &[Holder::FosterParents, Holder::Shared, Holder::Parents];

    /// The stable text code.
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::FosterParents => "foster_parents",
            Holder::Shared => "shared",
            Holder::Parents => "parents",
        }
    }

    /// The value for a text code, if there is one.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "foster_parents" => Some(Holder::FosterParents),
            "shared" => Some(Holder::Shared),
            "parents" => Some(Holder::Parents),
            _ => None,
        }
    }

    /// How far towards the parents: 0 foster parents, 1 shared, 2 parents.
    fn rank(self) -> u8 {
        match self {
            Holder::FosterParents => 0,
            Holder::Shared => 1,
            Holder::Parents => 2,
        }
    }

    /// Who holds the task, in words for a caseworker.
    fn words(self) -> &'static str {
        match self {
            Holder::FosterParents => "held by the foster parents",
            Holder::Shared => "shared between foster parents and parents",
            Holder::Parents => "held by the parents",
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of care task a reunification plan tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CareTaskKind {
    /// Following up school or kindergarten.
    SchoolFollowUp,
    /// Following up leisure activities.
    LeisureActivities,
    /// Parent–teacher and other parent meetings.
    ParentMeetings,
    /// Doctor, dentist and other medical appointments.
    MedicalAppointments,
    /// Bedtime.
    Bedtime,
    /// Overnight stays.
    Overnights,
    /// Daily care.
    DailyCare,
    /// Another task, described in the plan.
    Other,
}

impl CareTaskKind {
    /// Every value, in declaration order.
    pub const ALL: &'static [CareTaskKind] = &[
        CareTaskKind::SchoolFollowUp,
        CareTaskKind::LeisureActivities,
        CareTaskKind::ParentMeetings,
        CareTaskKind::MedicalAppointments,
        CareTaskKind::Bedtime,
        CareTaskKind::Overnights,
        CareTaskKind::DailyCare,
        CareTaskKind::Other,
    ];

    /// The stable text code.
    pub fn as_str(self) -> &'static str {
        match self {
            CareTaskKind::SchoolFollowUp => "school_follow_up",
            CareTaskKind::LeisureActivities => "leisure_activities",
            CareTaskKind::ParentMeetings => "parent_meetings",
            CareTaskKind::MedicalAppointments => "medical_appointments",
            CareTaskKind::Bedtime => "bedtime",
            CareTaskKind::Overnights => "overnights",
            CareTaskKind::DailyCare => "daily_care",
            CareTaskKind::Other => "other",
        }
    }

    /// The value for a text code, if there is one.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "school_follow_up" => Some(CareTaskKind::SchoolFollowUp),
            "leisure_activities" => Some(CareTaskKind::LeisureActivities),
            "parent_meetings" => Some(CareTaskKind::ParentMeetings),
            "medical_appointments" => Some(CareTaskKind::MedicalAppointments),
            "bedtime" => Some(CareTaskKind::Bedtime),
            "overnights" => Some(CareTaskKind::Overnights),
            "daily_care" => Some(CareTaskKind::DailyCare),
            "other" => Some(CareTaskKind::Other),
            _ => None,
        }
    }
}

impl std::fmt::Display for CareTaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a care task cannot move as asked. Messages speak to a caseworker and name only holders,
/// never a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CareTaskError {
    /// The task already has that holder.
    #[error("nothing to change: the care task is already {}", .0.words())]
    Unchanged(Holder),
    /// A move towards the parents that skips the shared stage.
    #[error(
        "care moves to the parents one step at a time: a task {} can next be {}, not {}",
        .from.words(),
        Holder::Shared.words(),
        .to.words()
    )]
    TooFast {
        /// The current holder.
        from: Holder,
        /// The holder asked for.
        to: Holder,
    },
}

/// Whether a care task may move from `from` to `to`. Towards the parents only one step at a time
/// (foster parents → shared → parents), so the child meets each change gradually; back towards the
/// foster parents any number of steps at any time, because safety comes first.
pub fn check_transition(from: Holder, to: Holder) -> Result<(), CareTaskError> {
    if from == to {
        return Err(CareTaskError::Unchanged(from));
    }
    if to.rank() > from.rank() + 1 {
        return Err(CareTaskError::TooFast { from, to });
    }
    Ok(())
}

/// How far the handover of care has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    /// Care tasks in the plan.
    pub total: u32,
    /// Tasks held by the foster parents.
    pub foster_parents: u32,
    /// Tasks shared.
    pub shared: u32,
    /// Tasks held by the parents.
    pub parents: u32,
    /// Share of the care with the parents, in whole percent: a shared task counts half, rounded
    /// down after summing. 0 when there are no tasks.
    pub percent_with_parents: u32,
}

/// The progress of the handover for the holders of a plan's care tasks.
pub fn progress(holders: &[Holder]) -> Progress {
    let count = |h: Holder| {
        let n = holders.iter().filter(|x| **x == h).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let foster_parents = count(Holder::FosterParents);
    let shared = count(Holder::Shared);
    let parents = count(Holder::Parents);
    let total = u32::try_from(holders.len()).unwrap_or(u32::MAX);
    // In u64 so that no plan size can overflow; the result is at most 100.
    let percent_with_parents = if total == 0 {
        0
    } else {
        let weighted = 100 * u64::from(parents) + 50 * u64::from(shared);
        u32::try_from(weighted / u64::from(total)).unwrap_or(100)
    };
    Progress {
        total,
        foster_parents,
        shared,
        parents,
        percent_with_parents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holder_and_task_codes_round_trip() {
        for h in Holder::ALL {
            assert_eq!(Holder::parse(h.as_str()), Some(*h));
            assert_eq!(h.to_string(), h.as_str());
        }
        for k in CareTaskKind::ALL {
            assert_eq!(CareTaskKind::parse(k.as_str()), Some(*k));
            assert_eq!(k.to_string(), k.as_str());
        }
        let codes: std::collections::HashSet<_> =
            CareTaskKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(codes.len(), CareTaskKind::ALL.len());
        assert_eq!(CareTaskKind::SchoolFollowUp.as_str(), "school_follow_up");
        assert_eq!(Holder::parse("grandparents"), None);
        assert_eq!(CareTaskKind::parse(""), None);
    }

    #[test]
    fn care_moves_towards_the_parents_one_step_at_a_time() {
        assert_eq!(
            check_transition(Holder::FosterParents, Holder::Shared),
            Ok(())
        );
        assert_eq!(check_transition(Holder::Shared, Holder::Parents), Ok(()));
        let err = check_transition(Holder::FosterParents, Holder::Parents).unwrap_err();
        assert_eq!(
            err,
            CareTaskError::TooFast {
                from: Holder::FosterParents,
                to: Holder::Parents
            }
        );
        assert!(err.to_string().contains("one step at a time"), "{err}");
    }

    #[test]
    fn care_can_move_back_towards_the_foster_parents_any_number_of_steps() {
        assert_eq!(check_transition(Holder::Parents, Holder::Shared), Ok(()));
        assert_eq!(
            check_transition(Holder::Shared, Holder::FosterParents),
            Ok(())
        );
        assert_eq!(
            check_transition(Holder::Parents, Holder::FosterParents),
            Ok(())
        );
    }

    #[test]
    fn moving_a_task_to_its_current_holder_is_refused_as_nothing_to_do() {
        for h in Holder::ALL {
            let err = check_transition(*h, *h).unwrap_err();
            assert_eq!(err, CareTaskError::Unchanged(*h));
            assert!(err.to_string().starts_with("nothing to change"), "{err}");
        }
    }

    #[test]
    fn progress_counts_a_shared_task_as_half_rounded_down_after_summing() {
        use Holder::*;
        let p = progress(&[FosterParents, Shared, Parents]);
        assert_eq!(
            p,
            Progress {
                total: 3,
                foster_parents: 1,
                shared: 1,
                parents: 1,
                percent_with_parents: 50
            }
        );
        // Two shared of three: 100 / 3 = 33. Halving each task first would give 2 × (50 / 3) = 32.
        assert_eq!(
            progress(&[Shared, Shared, FosterParents]).percent_with_parents,
            33
        );
        assert_eq!(progress(&[Shared]).percent_with_parents, 50);
        assert_eq!(progress(&[Parents, Parents]).percent_with_parents, 100);
        assert_eq!(progress(&[FosterParents]).percent_with_parents, 0);
    }

    #[test]
    fn a_plan_without_care_tasks_has_no_progress() {
        assert_eq!(
            progress(&[]),
            Progress {
                total: 0,
                foster_parents: 0,
                shared: 0,
                parents: 0,
                percent_with_parents: 0
            }
        );
    }

    fn holder() -> impl Strategy<Value = Holder> {
        prop_oneof![
            Just(Holder::FosterParents),
            Just(Holder::Shared),
            Just(Holder::Parents)
        ]
    }

    proptest! {
        #[test]
        fn allowed_transitions_never_skip_shared_on_the_way_to_the_parents(
            asks in proptest::collection::vec(holder(), 0..40),
        ) {
            let mut current = Holder::FosterParents;
            for to in asks {
                if check_transition(current, to).is_ok() {
                    if to == Holder::Parents {
                        prop_assert_eq!(current, Holder::Shared);
                    }
                    current = to;
                }
            }
        }

        #[test]
        fn progress_adds_up_and_stays_within_a_hundred_percent(
            holders in proptest::collection::vec(holder(), 0..50),
        ) {
            let p = progress(&holders);
            prop_assert_eq!(p.foster_parents + p.shared + p.parents, p.total);
            prop_assert!(p.percent_with_parents <= 100);
        }
    }
}

//! The contract's words for the domain's shared vocabulary (steps, goals, visit periods, in
//! `landsby.case.v1`), converted both ways for every service that speaks them. The matches are
//! exhaustive, so a new value in the contract or the domain fails to compile until it is handled.

use landsby_domain as d;
use landsby_proto::case as pb;

/// The goal a contract value names; None for UNSPECIFIED.
pub fn goal_from(p: pb::Goal) -> Option<d::Goal> {
    match p {
        pb::Goal::Unspecified => None,
        pb::Goal::Reunification => Some(d::Goal::Reunification),
        pb::Goal::LongTermPlacement => Some(d::Goal::LongTermPlacement),
    }
}

/// The contract value of a goal.
pub fn goal_to(g: d::Goal) -> pb::Goal {
    match g {
        d::Goal::Reunification => pb::Goal::Reunification,
        d::Goal::LongTermPlacement => pb::Goal::LongTermPlacement,
    }
}

/// The step a contract value names; None for UNSPECIFIED.
pub fn step_from(p: pb::Step) -> Option<d::Step> {
    match p {
        pb::Step::Unspecified => None,
        pb::Step::Safety => Some(d::Step::Safety),
        pb::Step::Involvement => Some(d::Step::Involvement),
        pb::Step::Responsibility => Some(d::Step::Responsibility),
    }
}

/// The contract value of a step.
pub fn step_to(s: d::Step) -> pb::Step {
    match s {
        d::Step::Safety => pb::Step::Safety,
        d::Step::Involvement => pb::Step::Involvement,
        d::Step::Responsibility => pb::Step::Responsibility,
    }
}

/// The period a contract value names; None for UNSPECIFIED.
pub fn period_from(p: pb::VisitPeriod) -> Option<d::VisitPeriod> {
    match p {
        pb::VisitPeriod::Unspecified => None,
        pb::VisitPeriod::Week => Some(d::VisitPeriod::Week),
        pb::VisitPeriod::Month => Some(d::VisitPeriod::Month),
        pb::VisitPeriod::Year => Some(d::VisitPeriod::Year),
    }
}

/// The contract value of a period.
pub fn period_to(p: d::VisitPeriod) -> pb::VisitPeriod {
    match p {
        d::VisitPeriod::Week => pb::VisitPeriod::Week,
        d::VisitPeriod::Month => pb::VisitPeriod::Month,
        d::VisitPeriod::Year => pb::VisitPeriod::Year,
    }
}

/// The contract's form of a board floor.
pub fn floor_to(f: &d::VisitationFloor) -> pb::VisitationFloor {
    pb::VisitationFloor {
        parent_id: f.parent_id.to_string(),
        min_visits: i32::try_from(f.min_visits).unwrap_or(i32::MAX),
        period: period_to(f.period).into(),
        min_duration_minutes: i32::try_from(f.min_duration_minutes).unwrap_or(i32::MAX),
        supervision_required: f.supervision_required,
    }
}

/// A board floor as the case service sends it (already validated there); None if it does not read.
pub fn floor_from(f: &pb::VisitationFloor) -> Option<d::VisitationFloor> {
    Some(d::VisitationFloor {
        parent_id: uuid::Uuid::try_parse(&f.parent_id).ok()?,
        min_visits: u32::try_from(f.min_visits).ok()?,
        period: period_from(f.period())?,
        min_duration_minutes: u32::try_from(f.min_duration_minutes).ok()?,
        supervision_required: f.supervision_required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_round_trips_through_the_contract() {
        let floor = d::VisitationFloor {
            parent_id: uuid::Uuid::now_v7(),
            min_visits: 2,
            period: d::VisitPeriod::Month,
            min_duration_minutes: d::board::MAX_VISIT_MINUTES,
            supervision_required: true,
        };
        assert_eq!(floor_from(&floor_to(&floor)), Some(floor));
        let unreadable = pb::VisitationFloor {
            parent_id: "x".into(),
            ..Default::default()
        };
        assert_eq!(floor_from(&unreadable), None);
    }
}

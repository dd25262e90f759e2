//! The visitation service's records and rules. The rules that need no database are here, as plain
//! functions the store runs inside its transactions: what a new computed scope does to a plan, what
//! an adjustment may do, whether a visit may be booked, whether its frame is complete, and which way
//! a visit's status may move.

pub mod plans;
pub mod visits;

pub use landsby_platform::idempotency::Idempotency;
pub use plans::{Adjustment, ComputedFrom, PlanRecord, ScopeSource, ScopeVersionRecord};
pub use visits::{
    Cancellation, CancelledBy, Frame, NewVisit, NoShow, Participant, ParticipantRole, Report,
    VisitRecord, VisitStatus,
};

/// The plans and visits of one case, read at one moment (BatchGetCaseVisitation).
#[derive(Debug, Clone)]
pub struct CaseVisitation {
    /// The case.
    pub case_id: uuid::Uuid,
    /// Its plans in id order.
    pub plans: Vec<PlanRecord>,
    /// Its visits from the instant asked on, by start; at most [`CaseVisitation::MAX_VISITS`].
    pub visits: Vec<VisitRecord>,
    /// More visits than that.
    pub more_visits: bool,
}

impl CaseVisitation {
    /// The most visits of one case answered.
    pub const MAX_VISITS: usize = 1000;
}

//! The domain of landsby: the vocabulary of a child welfare case (steps, goals, the village, the
//! county board's floor and conditions) and the rules on it. Pure and synchronous: no I/O, and time is
//! always a parameter, never read from a clock.

pub mod access;
pub mod board;
pub mod care;
pub mod due;
#[doc(hidden)]
pub mod fuzz;
pub mod identity;
pub mod notice;
pub mod policy;
pub mod readiness;
pub mod schedule;
pub mod scope;
pub mod staircase;
pub mod time;
pub mod vocabulary;

pub use board::{BoardDecision, VisitationFloor};
pub use identity::{AgencyId, NationalId, NationalIdError, NationalIdKind};
pub use policy::{Policy, PolicyError};
pub use vocabulary::*;

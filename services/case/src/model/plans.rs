//! The follow-up plan's goals, the reunification plan's care tasks, family group conferences, and
//! what the case service knows of the case's visits.

use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::care::{CareTaskKind, Holder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a follow-up goal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalStatus {
    /// Being worked on.
    Active,
    /// Reached.
    Achieved,
    /// No longer pursued.
    Dropped,
}

impl GoalStatus {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Achieved => "achieved",
            Self::Dropped => "dropped",
        }
    }

    /// The status for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "active" => Some(Self::Active),
            "achieved" => Some(Self::Achieved),
            "dropped" => Some(Self::Dropped),
            _ => None,
        }
    }
}

/// A goal of the follow-up plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub description: String,
    pub status: GoalStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A change to a follow-up goal, checked and applied in the store's transaction.
pub type GoalChange = Box<dyn FnOnce(&mut GoalRecord) + Send>;

/// A care task of the reunification plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTaskRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: CareTaskKind,
    pub description: String,
    pub holder: Holder,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One action of a family group conference's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceAction {
    pub owner: String,
    pub what: String,
    pub due_date: NaiveDate,
}

/// A conference to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConference {
    pub planned_date: NaiveDate,
    pub coordinator: String,
    pub participant_ids: Vec<Uuid>,
}

/// What a held conference records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceOutcome {
    pub held_on: NaiveDate,
    pub actions: Vec<ConferenceAction>,
}

/// A family group conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub planned_date: NaiveDate,
    pub coordinator: String,
    pub participant_ids: Vec<Uuid>,
    pub held_on: Option<NaiveDate>,
    pub actions: Vec<ConferenceAction>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a visit went, as the case service knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitFactOutcome {
    /// It took place.
    Completed,
    /// The parent cancelled.
    CancelledByParent,
    /// The agency, the foster home, or the child's illness cancelled it.
    CancelledByOthers,
    /// The parent did not come.
    NoShow,
}

impl VisitFactOutcome {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::CancelledByParent => "cancelled_by_parent",
            Self::CancelledByOthers => "cancelled_by_others",
            Self::NoShow => "no_show",
        }
    }

    /// The outcome for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "completed" => Some(Self::Completed),
            "cancelled_by_parent" => Some(Self::CancelledByParent),
            "cancelled_by_others" => Some(Self::CancelledByOthers),
            "no_show" => Some(Self::NoShow),
            _ => None,
        }
    }
}

/// One visit as the case service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitFact {
    pub visit_id: Uuid,
    pub parent_id: Uuid,
    pub start: DateTime<Utc>,
    pub outcome: VisitFactOutcome,
    pub concern: bool,
    pub foster_parents_involved: bool,
}

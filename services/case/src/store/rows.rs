//! Rows as the databases hold them, and their conversion to records. Codes and identity numbers are
//! checked again on the way out: a row that does not decode is an internal error, never a panic.

use crate::model::{
    Address, BoardDecisionRecord, CareTaskRecord, CaseRecord, Child, ConferenceAction,
    ConferenceRecord, ContactPoint, DecisionStatus, FollowUpReduction, FosterHome, GoalRecord,
    GoalStatus, MemberFields, NewBoardDecision, Placement, ReviewOutcome, ReviewRecord,
    ReviewStatus, VillageMemberRecord, VisitFact, VisitFactOutcome,
};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::care::{CareTaskKind, Holder};
use landsby_domain::due::ReviewKind;
use landsby_domain::{
    Affiliation, AgencyId, CaseStatus, CloseReason, Goal, Language, NationalId, PlacementKind,
    Step, VillageRole, VisitPeriod, VisitationFloor,
};
use landsby_platform::ApiError;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

/// The columns of `cases`, in [`CaseRow`] order.
macro_rules! case_columns {
    () => {
        "id, agency, status, child_given_name, child_family_name, child_birth_date, \
         child_national_id, placement_kind, placement_start_date, foster_home_name, foster_street, \
         foster_postal_code, foster_city, address_protected, goal, step, assigned_caseworker, \
         version, created_at, updated_at, closed_at, close_reason, step_since, \
         conference_waiver_reason, follow_up_reduced_on, follow_up_reduced_until, \
         follow_up_reduction_reason, due_reviews_case_version, due_reviews_policy_version, \
         visit_facts_sequence, frame_complete, due_reviews_computed_on, team, co_caseworker, \
         child_national_id_hash"
    };
}
pub(crate) use case_columns;

/// The columns of `reviews`, in [`ReviewRow`] order.
macro_rules! review_columns {
    () => {
        "id, case_id, kind, due_date, status, note, computed_key, outcome, decision_status, version, \
         created_at, updated_at"
    };
}
pub(crate) use review_columns;

/// The columns of `village_members`, in [`MemberRow`] order.
macro_rules! member_columns {
    () => {
        "id, case_id, role, affiliation, display_name, contact_points, preferred_language, \
         involved, informed, prepared, has_visitation_rights, version, created_at, updated_at"
    };
}
pub(crate) use member_columns;

/// The columns of `board_decisions`, in [`DecisionRow`] order.
macro_rules! decision_columns {
    () => {
        "id, case_id, reference, decided_on, valid_from, valid_to, secret_address, floors, \
         recorded_by, recorded_at"
    };
}
pub(crate) use decision_columns;

fn corrupt(what: &str) -> ApiError {
    ApiError::internal(format!("a stored {what} could not be read"))
}

fn code<T>(parse: fn(&str) -> Option<T>, value: &str, what: &str) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| corrupt(what))
}

/// A case's assignment and whether a subject holds an unexpired grant to it (`CASE_ACCESS`).
#[derive(sqlx::FromRow)]
pub struct AccessRow {
    pub agency: String,
    pub assigned_caseworker: String,
    pub co_caseworker: Option<String>,
    pub team: String,
    pub granted: bool,
}

impl AccessRow {
    pub fn into_access(self) -> crate::model::CaseAccess {
        crate::model::CaseAccess {
            caseworker: self.assigned_caseworker,
            co_caseworker: self.co_caseworker,
            team: self.team,
            grant: self.granted,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub agency: String,
    pub status: String,
    pub child_given_name: String,
    pub child_family_name: String,
    pub child_birth_date: NaiveDate,
    pub child_national_id: Option<String>,
    pub placement_kind: String,
    pub placement_start_date: NaiveDate,
    pub foster_home_name: String,
    pub foster_street: String,
    pub foster_postal_code: String,
    pub foster_city: String,
    pub address_protected: bool,
    pub goal: String,
    pub step: String,
    pub assigned_caseworker: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
    pub step_since: DateTime<Utc>,
    pub conference_waiver_reason: Option<String>,
    pub follow_up_reduced_on: Option<NaiveDate>,
    pub follow_up_reduced_until: Option<NaiveDate>,
    pub follow_up_reduction_reason: Option<String>,
    pub due_reviews_case_version: Option<i64>,
    pub due_reviews_policy_version: Option<String>,
    pub visit_facts_sequence: Option<i64>,
    pub frame_complete: bool,
    pub due_reviews_computed_on: Option<NaiveDate>,
    pub team: String,
    pub co_caseworker: Option<String>,
    /// The keyed hash that finds the identity number (crates/platform/src/pii.rs).
    pub child_national_id_hash: Option<String>,
}

impl CaseRow {
    pub fn into_record(self, decisions: Vec<BoardDecisionRecord>) -> Result<CaseRecord, ApiError> {
        let national_id = match self.child_national_id {
            None => None,
            Some(s) => {
                let plain = landsby_platform::pii::protector()?.open(&s)?;
                Some(NationalId::parse(&plain).map_err(|_| corrupt("national identity number"))?)
            }
        };
        Ok(CaseRecord {
            id: self.id,
            agency: AgencyId::parse(&self.agency).ok_or_else(|| corrupt("agency"))?,
            status: code(CaseStatus::parse, &self.status, "case status")?,
            child: Child {
                given_name: self.child_given_name,
                family_name: self.child_family_name,
                birth_date: self.child_birth_date,
                national_id,
            },
            placement: Placement {
                kind: code(PlacementKind::parse, &self.placement_kind, "placement kind")?,
                start_date: self.placement_start_date,
                foster_home: FosterHome {
                    name: self.foster_home_name,
                    address: Address {
                        street: self.foster_street,
                        postal_code: self.foster_postal_code,
                        city: self.foster_city,
                    },
                    address_protected: self.address_protected,
                },
            },
            goal: code(Goal::parse, &self.goal, "goal")?,
            step: code(Step::parse, &self.step, "step")?,
            assigned_caseworker: self.assigned_caseworker,
            team: self.team,
            co_caseworker: self.co_caseworker,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: self.closed_at,
            close_reason: self
                .close_reason
                .map(|r| code(CloseReason::parse, &r, "close reason"))
                .transpose()?,
            board_decisions: decisions,
            step_since: self.step_since,
            conference_waiver_reason: self.conference_waiver_reason,
            follow_up_reduction: match (
                self.follow_up_reduced_on,
                self.follow_up_reduced_until,
                self.follow_up_reduction_reason,
            ) {
                (Some(decided_on), Some(expires_on), Some(reason)) => Some(FollowUpReduction {
                    decided_on,
                    expires_on,
                    reason,
                }),
                _ => None,
            },
            due_reviews_stamp: self
                .due_reviews_case_version
                .zip(self.due_reviews_policy_version)
                .map(|(version, policy)| (version, policy, self.due_reviews_computed_on)),
            visit_facts_sequence: self.visit_facts_sequence,
            frame_complete: self.frame_complete,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct MemberRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub role: String,
    pub affiliation: String,
    pub display_name: String,
    pub contact_points: Json<Vec<ContactPoint>>,
    pub preferred_language: String,
    pub involved: bool,
    pub informed: bool,
    pub prepared: bool,
    pub has_visitation_rights: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MemberRow {
    pub fn into_record(self) -> Result<VillageMemberRecord, ApiError> {
        Ok(VillageMemberRecord {
            id: self.id,
            case_id: self.case_id,
            fields: MemberFields {
                role: code(VillageRole::parse, &self.role, "village role")?,
                affiliation: code(Affiliation::parse, &self.affiliation, "affiliation")?,
                display_name: self.display_name,
                contact_points: self.contact_points.0,
                preferred_language: code(Language::parse, &self.preferred_language, "language")?,
                involved: self.involved,
                informed: self.informed,
                prepared: self.prepared,
                has_visitation_rights: self.has_visitation_rights,
            },
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A floor as stored inside a decision row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorJson {
    pub parent_id: Uuid,
    pub min_visits: u32,
    pub period: VisitPeriod,
    pub min_duration_minutes: u32,
    pub supervision_required: bool,
}

impl From<&VisitationFloor> for FloorJson {
    fn from(f: &VisitationFloor) -> Self {
        Self {
            parent_id: f.parent_id,
            min_visits: f.min_visits,
            period: f.period,
            min_duration_minutes: f.min_duration_minutes,
            supervision_required: f.supervision_required,
        }
    }
}

impl From<FloorJson> for VisitationFloor {
    fn from(f: FloorJson) -> Self {
        Self {
            parent_id: f.parent_id,
            min_visits: f.min_visits,
            period: f.period,
            min_duration_minutes: f.min_duration_minutes,
            supervision_required: f.supervision_required,
        }
    }
}

/// A case read whole in one statement (`GET_CASE`): one row per board decision, or one row with
/// the decision's columns NULL when there is none; each row with the case and whether the caller
/// holds a grant to it.
#[derive(sqlx::FromRow)]
pub struct CaseDecisionRow {
    #[sqlx(flatten)]
    pub case: CaseRow,
    pub granted: bool,
    pub d_id: Option<Uuid>,
    pub d_reference: Option<String>,
    pub d_decided_on: Option<NaiveDate>,
    pub d_valid_from: Option<NaiveDate>,
    pub d_valid_to: Option<NaiveDate>,
    pub d_secret_address: Option<bool>,
    pub d_floors: Option<Json<Vec<FloorJson>>>,
    pub d_recorded_by: Option<String>,
    pub d_recorded_at: Option<DateTime<Utc>>,
}

impl CaseDecisionRow {
    /// The row's decision, if it has one.
    pub fn decision(&mut self) -> Result<Option<DecisionRow>, ApiError> {
        let Some(id) = self.d_id else {
            return Ok(None);
        };
        let (
            Some(reference),
            Some(decided_on),
            Some(valid_from),
            Some(secret_address),
            Some(floors),
            Some(recorded_by),
            Some(recorded_at),
        ) = (
            self.d_reference.take(),
            self.d_decided_on,
            self.d_valid_from,
            self.d_secret_address,
            self.d_floors.take(),
            self.d_recorded_by.take(),
            self.d_recorded_at,
        )
        else {
            return Err(corrupt("board decision"));
        };
        Ok(Some(DecisionRow {
            id,
            case_id: self.case.id,
            reference,
            decided_on,
            valid_from,
            valid_to: self.d_valid_to,
            secret_address,
            floors,
            recorded_by,
            recorded_at,
        }))
    }
}

#[derive(sqlx::FromRow)]
pub struct DecisionRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub reference: String,
    pub decided_on: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub secret_address: bool,
    pub floors: Json<Vec<FloorJson>>,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl DecisionRow {
    pub fn into_record(self) -> BoardDecisionRecord {
        BoardDecisionRecord {
            id: self.id,
            case_id: self.case_id,
            decision: NewBoardDecision {
                reference: self.reference,
                decided_on: self.decided_on,
                valid_from: self.valid_from,
                valid_to: self.valid_to,
                secret_address: self.secret_address,
                floors: self
                    .floors
                    .0
                    .into_iter()
                    .map(VisitationFloor::from)
                    .collect(),
            },
            recorded_by: self.recorded_by,
            recorded_at: self.recorded_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct ReviewRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub due_date: NaiveDate,
    pub status: String,
    pub note: String,
    pub computed_key: Option<String>,
    pub outcome: Option<Json<ReviewOutcome>>,
    pub decision_status: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReviewRow {
    pub fn into_record(self) -> Result<ReviewRecord, ApiError> {
        Ok(ReviewRecord {
            id: self.id,
            case_id: self.case_id,
            kind: code(ReviewKind::parse, &self.kind, "review kind")?,
            due_date: self.due_date,
            status: code(ReviewStatus::parse, &self.status, "review status")?,
            note: self.note,
            computed_key: self.computed_key,
            outcome: self.outcome.map(|o| o.0),
            decision_status: self
                .decision_status
                .map(|s| code(DecisionStatus::parse, &s, "decision status"))
                .transpose()?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct GoalRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub description: String,
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl GoalRow {
    pub fn into_record(self) -> Result<GoalRecord, ApiError> {
        Ok(GoalRecord {
            id: self.id,
            case_id: self.case_id,
            description: self.description,
            status: code(GoalStatus::parse, &self.status, "goal status")?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CareTaskRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub description: String,
    pub holder: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CareTaskRow {
    pub fn into_record(self) -> Result<CareTaskRecord, ApiError> {
        Ok(CareTaskRecord {
            id: self.id,
            case_id: self.case_id,
            kind: code(CareTaskKind::parse, &self.kind, "care task kind")?,
            description: self.description,
            holder: code(Holder::parse, &self.holder, "care task holder")?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ConferenceRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub planned_date: NaiveDate,
    pub coordinator: String,
    pub participant_ids: Json<Vec<Uuid>>,
    pub held_on: Option<NaiveDate>,
    pub actions: Json<Vec<ConferenceAction>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ConferenceRow> for ConferenceRecord {
    fn from(r: ConferenceRow) -> Self {
        Self {
            id: r.id,
            case_id: r.case_id,
            planned_date: r.planned_date,
            coordinator: r.coordinator,
            participant_ids: r.participant_ids.0,
            held_on: r.held_on,
            actions: r.actions.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct VisitFactRow {
    pub case_id: Uuid,
    pub visit_id: Uuid,
    pub parent_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub outcome: String,
    pub concern: bool,
    pub foster_parents_involved: bool,
}

impl VisitFactRow {
    pub fn into_record(self) -> Result<VisitFact, ApiError> {
        Ok(VisitFact {
            visit_id: self.visit_id,
            parent_id: self.parent_id,
            start: self.started_at,
            outcome: code(VisitFactOutcome::parse, &self.outcome, "visit outcome")?,
            concern: self.concern,
            foster_parents_involved: self.foster_parents_involved,
        })
    }
}

/// Counts of a case's plans, for readiness.
#[derive(sqlx::FromRow)]
pub struct CountsRow {
    pub active_goals: i64,
    pub conferences_held: i64,
    pub care_tasks: i64,
}

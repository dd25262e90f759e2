//! Rows as the databases return them, and their conversion to records. A stored value that does not
//! parse is a broken invariant (INTERNAL), never a panic.

use crate::model::{
    Adjustment, Cancellation, ComputedFrom, Frame, NoShow, PlanRecord, Report, ScopeSource,
    ScopeVersionRecord, VisitRecord, VisitStatus,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use landsby_domain::board::VisitationFloor;
use landsby_domain::scope::Scope;
use landsby_domain::{AgencyId, Supervision};
use landsby_platform::ApiError;
use uuid::Uuid;

use landsby_platform::db::from_doc as read;
pub use landsby_platform::db::{Doc, doc};

fn code<T>(parse: impl Fn(&str) -> Option<T>, raw: &str, what: &str) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| ApiError::internal(format!("unknown {what} code in the database")))
}

/// The columns of `plans`, in [`PlanRow`] order.
macro_rules! plan_columns {
    () => {
        "id, agency, case_id, parent_id, computed, computed_from, adjustments, scope, scope_version, \
         floor, secret_address, version, created_at, updated_at"
    };
}
pub(crate) use plan_columns;

#[derive(sqlx::FromRow)]
pub struct PlanRow {
    pub id: Uuid,
    pub agency: String,
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub computed: Doc,
    pub computed_from: Doc,
    pub adjustments: Doc,
    pub scope: Doc,
    pub scope_version: i64,
    pub floor: Option<Doc>,
    pub secret_address: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanRow {
    pub fn into_record(self) -> Result<PlanRecord, ApiError> {
        Ok(PlanRecord {
            id: self.id,
            agency: AgencyId::parse(&self.agency)
                .ok_or_else(|| ApiError::internal("a stored agency could not be read"))?,
            case_id: self.case_id,
            parent_id: self.parent_id,
            computed: read::<Scope>(self.computed, "scope")?,
            computed_from: read::<ComputedFrom>(self.computed_from, "stamp")?,
            adjustments: read::<Vec<Adjustment>>(self.adjustments, "adjustment")?,
            scope: read::<Scope>(self.scope, "scope")?,
            scope_version: self.scope_version,
            floor: self
                .floor
                .map(|f| read::<VisitationFloor>(f, "floor"))
                .transpose()?,
            secret_address: self.secret_address,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ScopeVersionRow {
    pub plan_id: Uuid,
    pub version: i64,
    pub scope: Doc,
    pub source: String,
    pub changed_by: String,
    pub rationale: String,
    pub computed_from: Doc,
    pub created_at: DateTime<Utc>,
}

impl ScopeVersionRow {
    pub fn into_record(self) -> Result<ScopeVersionRecord, ApiError> {
        Ok(ScopeVersionRecord {
            plan_id: self.plan_id,
            version: self.version,
            scope: read::<Scope>(self.scope, "scope")?,
            source: code(ScopeSource::parse, &self.source, "scope source")?,
            changed_by: self.changed_by,
            rationale: self.rationale,
            computed_from: read::<ComputedFrom>(self.computed_from, "stamp")?,
            created_at: self.created_at,
        })
    }
}

/// The columns of `visits`, in [`VisitRow`] order.
macro_rules! visit_columns {
    () => {
        "id, agency, case_id, parent_id, plan_id, starts_at, ends_at, local_start, duration_minutes, \
         status, supervision, frame, cancellation, report, no_show, version, created_at, updated_at"
    };
}
pub(crate) use visit_columns;

#[derive(sqlx::FromRow)]
pub struct VisitRow {
    pub id: Uuid,
    pub agency: String,
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub plan_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub duration_minutes: i64,
    pub status: String,
    pub supervision: String,
    pub frame: Doc,
    pub cancellation: Option<Doc>,
    pub report: Option<Doc>,
    pub no_show: Option<Doc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl VisitRow {
    pub fn into_record(self) -> Result<VisitRecord, ApiError> {
        Ok(VisitRecord {
            id: self.id,
            agency: AgencyId::parse(&self.agency)
                .ok_or_else(|| ApiError::internal("a stored agency could not be read"))?,
            case_id: self.case_id,
            parent_id: self.parent_id,
            plan_id: self.plan_id,
            start: self.starts_at,
            local_start: self.local_start,
            duration_minutes: u32::try_from(self.duration_minutes)
                .map_err(|_| ApiError::internal("a stored duration could not be read"))?,
            end: self.ends_at,
            status: code(VisitStatus::parse, &self.status, "visit status")?,
            frame: read::<Frame>(self.frame, "frame")?,
            supervision: code(Supervision::parse, &self.supervision, "supervision")?,
            cancellation: self
                .cancellation
                .map(|c| read::<Cancellation>(c, "cancellation"))
                .transpose()?,
            report: self
                .report
                .map(|r| read::<Report>(r, "report"))
                .transpose()?,
            no_show: self
                .no_show
                .map(|n| read::<NoShow>(n, "no-show"))
                .transpose()?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

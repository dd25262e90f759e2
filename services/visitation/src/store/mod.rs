//! The visitation service's storage: traits by topic, implemented once in SQL that PostgreSQL and
//! SQLite both run ([`SqlVisitationStore`]), with one migration folder per database. Every method is
//! scoped to the caller's agency: another agency's plans and visits do not exist here. Every change
//! commits together with its audit row and its event; the time of a change is its audit entry's time.

mod rows;
mod sql;

use crate::model::plans::{Applied, NewComputed};
use crate::model::{
    CaseVisitation, Idempotency, NewVisit, PlanRecord, ScopeVersionRecord, VisitRecord, VisitStatus,
};
use chrono::{DateTime, Utc};
use landsby_domain::AgencyId;
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::db::DbPool;
use landsby_platform::outbox::Feed;
use landsby_proto::visitation::visitation_event::Change as EventChange;
use std::sync::Arc;
use uuid::Uuid;

pub use sql::SqlVisitationStore;

/// A change to a plan, checked and applied inside the store's transaction.
pub type PlanChange = Box<dyn FnOnce(&mut PlanRecord) -> Result<(), ApiError> + Send>;

/// A change to a visit, given its plan, checked and applied inside the store's transaction; returns
/// the events it makes.
pub type VisitChange =
    Box<dyn FnOnce(&mut VisitRecord, &PlanRecord) -> Result<Vec<EventChange>, ApiError> + Send>;

/// Where ListVisits continues: after this start and id.
pub type VisitCursor = (DateTime<Utc>, Uuid);

/// Filters of ListVisits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitFilter {
    pub case_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub participant_id: Option<Uuid>,
    pub supervisor: Option<String>,
    pub start_after: Option<DateTime<Utc>>,
    pub start_before: Option<DateTime<Utc>>,
    pub status: Option<VisitStatus>,
}

/// Visitation plans.
#[async_trait::async_trait]
pub trait PlanStore: Send + Sync + 'static {
    /// For each item, in one transaction: puts a computed scope in force for one parent (creating
    /// the plan), if its stamp is newer. Returns what each did, in order. One audit row per item
    /// (`audit` with its case and plan); an item that fails fails them all.
    async fn apply_computed(
        &self,
        agency: &AgencyId,
        news: Vec<NewComputed>,
        audit: AuditEntry,
    ) -> Result<Vec<Applied>, ApiError>;

    /// One plan.
    async fn get_plan(&self, agency: &AgencyId, id: Uuid) -> Result<Option<PlanRecord>, ApiError>;

    /// A case's plans in id order, up to `limit`, after `after`.
    async fn list_plans(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<PlanRecord>, ApiError>;

    /// The plans and the visits starting at or after `visits_since` of the cases `ids` (one entry
    /// per id, in that order), read in one transaction with one statement per table.
    async fn case_visitation(
        &self,
        agency: &AgencyId,
        ids: &[Uuid],
        visits_since: DateTime<Utc>,
    ) -> Result<Vec<CaseVisitation>, ApiError>;

    /// A plan and its scope versions, newest first, up to `limit`, before version `before`; None
    /// when the plan does not exist.
    async fn list_scope_versions(
        &self,
        agency: &AgencyId,
        plan_id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Option<(PlanRecord, Vec<ScopeVersionRecord>)>, ApiError>;

    /// Changes a plan at `expected_version` (a caseworker's adjustment).
    async fn adjust_plan(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: PlanChange,
        audit: AuditEntry,
    ) -> Result<PlanRecord, ApiError>;
}

/// Visits.
#[async_trait::async_trait]
pub trait VisitStore: Send + Sync + 'static {
    /// Schedules `visit` on its parent's plan: the plan's rules (place, secret address given the
    /// case service's `secret_address`, supervision) and no double booking of the child or the
    /// supervisor. With `idempotency`, a repeat returns the first visit.
    async fn schedule_visit(
        &self,
        agency: &AgencyId,
        visit: NewVisit,
        secret_address: bool,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<VisitRecord, ApiError>;

    /// The visit an earlier ScheduleVisit with this request id made, answered again (with its own
    /// audit row) before a retry asks the case service anything; None for a new request id, and
    /// INVALID_ARGUMENT for the id of a different request.
    async fn replay_visit(
        &self,
        agency: &AgencyId,
        idempotency: &Idempotency,
        audit: AuditEntry,
    ) -> Result<Option<VisitRecord>, ApiError>;

    /// One visit.
    async fn get_visit(&self, agency: &AgencyId, id: Uuid)
    -> Result<Option<VisitRecord>, ApiError>;

    /// Visits by start and id, up to `limit`, after `after`.
    async fn list_visits(
        &self,
        agency: &AgencyId,
        filter: &VisitFilter,
        after: Option<VisitCursor>,
        limit: usize,
    ) -> Result<Vec<VisitRecord>, ApiError>;

    /// Changes a visit at `expected_version`; the time it holds is checked against the child's and
    /// the supervisor's other visits again while it is still to take place.
    async fn change_visit(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: VisitChange,
        audit: AuditEntry,
    ) -> Result<VisitRecord, ApiError>;

    /// The times a case's visits still to take place hold between `from` and `to`.
    async fn busy(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, ApiError>;
}

/// All of the visitation service's storage.
pub trait Store: PlanStore + VisitStore {}

impl<T: PlanStore + VisitStore> Store for T {}

/// The store for a service database, whose commits wake `feed`.
pub fn open(db: DbPool, feed: Feed) -> Arc<dyn Store> {
    match db {
        DbPool::Postgres(pool) => Arc::new(SqlVisitationStore::new(pool, feed)),
        DbPool::Sqlite(pool) => Arc::new(SqlVisitationStore::new(pool, feed)),
    }
}

//! The case service's storage: traits by topic, implemented once in SQL that PostgreSQL and SQLite
//! both run ([`SqlCaseStore`]), with one migration folder per database. Every method is scoped to the
//! caller's agency: a case of another agency does not exist here. Every change commits together with
//! its audit row and its event; the time of a change is its audit entry's time.

mod rows;
mod sql;

use crate::model::{
    BoardDecisionRecord, BreakGlassGrant, CareTaskRecord, CaseAccess, CaseChange, CaseFilter,
    CaseRecord, ConferenceOutcome, ConferenceRecord, GoalChange, GoalRecord, Idempotency,
    MemberChange, MemberFields, NewBoardDecision, NewCase, NewConference, NewReview, ReviewFilter,
    ReviewRecord, Settle, Snapshot, VillageMemberRecord, VisitFact,
};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::AgencyId;
use landsby_domain::care::{CareTaskKind, Holder};
use landsby_domain::readiness::Facts;
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::db::DbPool;
use landsby_platform::outbox::Feed;
use landsby_proto::case::case_event::Change as EventChange;
use std::sync::Arc;
use uuid::Uuid;

pub use sql::SqlCaseStore;

/// Where ListBoardDecisions continues: after this `valid_from` and id, newest first.
pub type DecisionCursor = (NaiveDate, Uuid);
/// Where ListReviews continues: after this due date and id.
pub type ReviewCursor = (NaiveDate, Uuid);

/// Cases, their village and their board decisions.
#[async_trait::async_trait]
pub trait CaseStore: Send + Sync + 'static {
    /// Creates a case. With `idempotency`, a repeat of the same request returns the case the first
    /// created, and a different request with the same request id is refused.
    async fn create_case(
        &self,
        agency: &AgencyId,
        new: NewCase,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<CaseRecord, ApiError>;

    /// One case, with who it is assigned to and whether `subject` holds a grant of emergency access
    /// to it unexpired at `now` (for need to know), read in one snapshot.
    async fn get_case(
        &self,
        agency: &AgencyId,
        id: Uuid,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(CaseAccess, CaseRecord)>, ApiError>;

    /// Who the case is assigned to, and whether `subject` holds a grant of emergency access to it
    /// unexpired at `now`; None when the agency has no such case.
    async fn case_access(
        &self,
        agency: &AgencyId,
        id: Uuid,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CaseAccess>, ApiError>;

    /// Records a grant of emergency access to the case, with its audit row (flagged).
    async fn grant_break_glass(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        grant: BreakGlassGrant,
        audit: AuditEntry,
    ) -> Result<(), ApiError>;

    /// The snapshots of the cases `ids` this agency has, in the order of `ids`, all read in one
    /// transaction with one statement per table.
    async fn snapshots(&self, agency: &AgencyId, ids: &[Uuid]) -> Result<Vec<Snapshot>, ApiError>;

    /// Up to `limit` cases matching `filter`, in id (creation) order, after `after`.
    async fn list_cases(
        &self,
        agency: &AgencyId,
        filter: &CaseFilter,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<CaseRecord>, ApiError>;

    /// Applies `change` to the case if its version is `expected_version` (else ABORTED) and the case
    /// is open; the version goes up by one and `event` tells the feed.
    async fn update_case(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: CaseChange,
        event: EventChange,
        audit: AuditEntry,
    ) -> Result<CaseRecord, ApiError>;

    /// Adds a member to an open case's village.
    async fn add_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        fields: MemberFields,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<VillageMemberRecord, ApiError>;

    /// Applies `change` to a member if its version is `expected_version`.
    async fn update_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        member_id: Uuid,
        expected_version: i64,
        change: MemberChange,
        audit: AuditEntry,
    ) -> Result<VillageMemberRecord, ApiError>;

    /// Removes a member (kept for the history, no longer listed) if its version is
    /// `expected_version` and no board decision names it.
    async fn remove_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        member_id: Uuid,
        expected_version: i64,
        audit: AuditEntry,
    ) -> Result<(), ApiError>;

    /// Up to `limit` current members in the order they were added, after `after`; `None` when the
    /// case does not exist for this agency.
    async fn list_members(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Option<Vec<VillageMemberRecord>>, ApiError>;

    /// Records a board decision on an open case; its floors must name parents with visitation rights
    /// in the village. A decision that keeps the address secret also protects the foster home's
    /// address on the case.
    async fn record_decision(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        decision: NewBoardDecision,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<BoardDecisionRecord, ApiError>;

    /// Up to `limit` decisions, newest `valid_from` first, after `after`; `None` when the case does
    /// not exist for this agency.
    async fn list_decisions(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<DecisionCursor>,
        limit: usize,
    ) -> Result<Option<Vec<BoardDecisionRecord>>, ApiError>;
}

/// Reviews, decisions, and what readiness and due reviews are computed from.
#[async_trait::async_trait]
pub trait ReviewStore: Send + Sync + 'static {
    /// Schedules a review on an open case.
    async fn schedule_review(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        review: NewReview,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<ReviewRecord, ApiError>;

    /// Up to `limit` reviews matching `filter`, earliest due first, after `after`; `None` when the
    /// case does not exist for this agency.
    async fn list_reviews(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        filter: &ReviewFilter,
        after: Option<ReviewCursor>,
        limit: usize,
    ) -> Result<Option<Vec<ReviewRecord>>, ApiError>;

    /// Settles a review (completes it, or approves or rejects its decision) as `settle` decides
    /// given the case, the review and the readiness facts, all read in one transaction; a decision
    /// that takes effect moves the case, writes the step history and tells the feed.
    async fn settle_review(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        review_id: Uuid,
        expected_version: i64,
        settle: Settle,
        audit: AuditEntry,
    ) -> Result<(ReviewRecord, CaseRecord), ApiError>;

    /// The case and its readiness facts; `None` when the case does not exist for this agency.
    async fn readiness_facts(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<(CaseRecord, Facts)>, ApiError>;

    /// For each item, in one transaction: replaces the case's scheduled computed reviews with the
    /// item's, if its stamp (case version, policy version, the day computed on) is newer than the
    /// last applied. Returns per item, in order, whether it was, and the case's scheduled computed
    /// reviews after the call. Derived data: the case's version does not change. One audit row per
    /// case (`audit` with the case set); a case the agency does not have fails the whole call.
    async fn sync_due_reviews(
        &self,
        agency: &AgencyId,
        items: Vec<DueReviewsSync>,
        audit: AuditEntry,
    ) -> Result<Vec<(bool, Vec<ReviewRecord>)>, ApiError>;

    /// For each item, in one transaction: replaces what the case service knows of the case's
    /// visits, if the item's feed position is newer than the one they are as of. Returns per item,
    /// in order, whether the facts differed and the case's version moved. One audit row per case;
    /// a case the agency does not have fails the whole call.
    async fn sync_visit_facts(
        &self,
        agency: &AgencyId,
        items: Vec<VisitFactsSync>,
        audit: AuditEntry,
    ) -> Result<Vec<bool>, ApiError>;
}

/// One case's due reviews for [`ReviewStore::sync_due_reviews`].
#[derive(Debug, Clone)]
pub struct DueReviewsSync {
    /// The case.
    pub case_id: Uuid,
    /// Case version, policy version and the day (Europe/Oslo) the reviews were computed from.
    pub stamp: (i64, String, NaiveDate),
    /// The due reviews, each with its computed key.
    pub reviews: Vec<NewReview>,
}

/// One case's visit facts for [`ReviewStore::sync_visit_facts`].
#[derive(Debug, Clone)]
pub struct VisitFactsSync {
    /// The case.
    pub case_id: Uuid,
    /// The visitation feed position the facts are as of.
    pub sequence: i64,
    /// The frame of the visits is complete.
    pub frame_complete: bool,
    /// The case's visits of the last year.
    pub visits: Vec<VisitFact>,
}

/// The follow-up plan, the reunification plan and family group conferences.
#[async_trait::async_trait]
pub trait PlanStore: Send + Sync + 'static {
    /// Adds an active goal to the follow-up plan of an open case.
    async fn add_goal(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        description: String,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<GoalRecord, ApiError>;

    /// Applies `change` to a goal if its version is `expected_version`.
    async fn update_goal(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        goal_id: Uuid,
        expected_version: i64,
        change: GoalChange,
        audit: AuditEntry,
    ) -> Result<GoalRecord, ApiError>;

    /// Up to `limit` goals in the order they were added, after `after`; `None` when the case does
    /// not exist for this agency.
    async fn list_goals(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Option<Vec<GoalRecord>>, ApiError>;

    /// Adds a care task, held by the foster parents, to the reunification plan of an open case.
    async fn add_care_task(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        kind: CareTaskKind,
        description: String,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<CareTaskRecord, ApiError>;

    /// Moves a care task to `to`, if its version is `expected_version` and the move is allowed.
    async fn move_care_task(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        task_id: Uuid,
        expected_version: i64,
        to: Holder,
        audit: AuditEntry,
    ) -> Result<CareTaskRecord, ApiError>;

    /// Every care task in the order they were added; `None` when the case does not exist for this
    /// agency.
    async fn list_care_tasks(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<Vec<CareTaskRecord>>, ApiError>;

    /// Schedules a family group conference on an open case; the participants must be members of
    /// the village.
    async fn schedule_conference(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        conference: NewConference,
        idempotency: Option<Idempotency>,
        audit: AuditEntry,
    ) -> Result<ConferenceRecord, ApiError>;

    /// Records that a conference was held, with its plan's actions.
    async fn record_conference_outcome(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        conference_id: Uuid,
        expected_version: i64,
        outcome: ConferenceOutcome,
        audit: AuditEntry,
    ) -> Result<ConferenceRecord, ApiError>;

    /// Every conference in the order they were scheduled; `None` when the case does not exist for
    /// this agency.
    async fn list_conferences(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<Vec<ConferenceRecord>>, ApiError>;
}

/// All of the case service's storage.
pub trait Store: CaseStore + ReviewStore + PlanStore {}

impl<T: CaseStore + ReviewStore + PlanStore> Store for T {}

/// The store for a service database, whose commits wake `feed`.
pub fn open(db: DbPool, feed: Feed) -> Arc<dyn Store> {
    match db {
        DbPool::Postgres(pool) => Arc::new(SqlCaseStore::new(pool, feed)),
        DbPool::Sqlite(pool) => Arc::new(SqlCaseStore::new(pool, feed)),
    }
}

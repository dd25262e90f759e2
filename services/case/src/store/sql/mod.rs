//! The store in SQL that PostgreSQL and SQLite both run, written once and generic over the database.
//! What differs between them is in [`Dialect`] (how transactions begin, row locks, how outbox writers
//! keep commit order) and in the migration folders (column types). This module holds what every topic
//! shares: loading and locking a case, claiming request ids, writing events. The topics' trait
//! implementations are in `cases.rs`, `reviews.rs`, `plans.rs` and `feed.rs`.
//!
//! Every `impl` here repeats one list of bounds: Rust does not carry a trait's where-clauses to the
//! places that use it, so the list cannot be named once. Keep the lists in step.

mod cases;
mod plans;
mod reviews;

use super::rows::{
    CareTaskRow, CaseRow, ConferenceRow, CountsRow, DecisionRow, FloorJson, GoalRow, MemberRow,
    ReviewRow, VisitFactRow, case_columns, decision_columns, member_columns, review_columns,
};
use crate::model::{
    self, BoardDecisionRecord, CaseFilter, CaseRecord, ConferenceAction, ContactPoint,
    ReviewOutcome, ReviewRecord, VillageMemberRecord,
};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::AgencyId;
use landsby_domain::readiness::Facts;
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::db::{Dialect, placeholders, value_rows};
use landsby_platform::idempotency::ClaimRow;
use landsby_platform::outbox::{self, Feed};
use landsby_platform::validate::timestamp_to_proto;
use landsby_proto::case::{self as pb, case_event::Change as EventChange};
use prost::Message;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use std::collections::HashMap;
use uuid::Uuid;

/// The store over a pool of either database.
pub struct SqlCaseStore<DB: Database> {
    pool: Pool<DB>,
    /// Woken after a change's events commit.
    feed: Feed,
}

impl<DB: Database> SqlCaseStore<DB> {
    /// A store over `pool`, which must have been migrated, whose commits wake `feed`.
    pub fn new(pool: Pool<DB>, feed: Feed) -> Self {
        Self { pool, feed }
    }
}

/// A case by its id alone: the caller compares the agency. With `agency = $1` in the statement too,
/// PostgreSQL may plan it, on tables it has no statistics of yet, over an index that leads with the
/// agency, and keep that plan: every read would walk the agency's cases (the test below).
const SELECT_CASE: &str = concat!("SELECT ", case_columns!(), " FROM cases WHERE id = $1");
const INSERT_CASE: &str = concat!(
    "INSERT INTO cases (",
    case_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)"
);
/// Same parameter order as INSERT_CASE, so one binder serves both.
const UPDATE_CASE: &str = "UPDATE cases SET agency = $2, status = $3, child_given_name = $4, \
    child_family_name = $5, child_birth_date = $6, child_national_id = $7, placement_kind = $8, \
    placement_start_date = $9, foster_home_name = $10, foster_street = $11, foster_postal_code = $12, \
    foster_city = $13, address_protected = $14, goal = $15, step = $16, assigned_caseworker = $17, \
    version = $18, created_at = $19, updated_at = $20, closed_at = $21, close_reason = $22, \
    step_since = $23, conference_waiver_reason = $24, follow_up_reduced_on = $25, \
    follow_up_reduced_until = $26, follow_up_reduction_reason = $27, due_reviews_case_version = $28, \
    due_reviews_policy_version = $29, visit_facts_sequence = $30, frame_complete = $31, \
    due_reviews_computed_on = $32, team = $33, co_caseworker = $34, child_national_id_hash = $35 \
    WHERE id = $1";
const BUMP_CASE: &str = "UPDATE cases SET version = version + 1, updated_at = $2 WHERE id = $1";
const CASE_DECISIONS: &str = concat!(
    "SELECT ",
    decision_columns!(),
    " FROM board_decisions WHERE case_id = $1 ORDER BY valid_from, recorded_at, id"
);
const SELECT_MEMBER: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM village_members WHERE case_id = $1 AND id = $2 AND removed_at IS NULL"
);
const SELECT_MEMBER_EVEN_REMOVED: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM village_members WHERE case_id = $1 AND id = $2"
);
const CASE_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM village_members WHERE case_id = $1 AND removed_at IS NULL ORDER BY id"
);
/// Followed by one placeholder per case, then [`DECISIONS_OF_CASES_END`].
const DECISIONS_OF_CASES: &str = concat!(
    "SELECT ",
    decision_columns!(),
    " FROM board_decisions WHERE case_id IN ("
);
const DECISIONS_OF_CASES_END: &str = ") ORDER BY case_id, valid_from, recorded_at, id";
const SELECT_REVIEW: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE case_id = $1 AND id = $2"
);
/// Followed by one group of [`REVIEW_COLUMNS`] placeholders per review.
const INSERT_REVIEWS: &str = concat!("INSERT INTO reviews (", review_columns!(), ") VALUES ");
/// The columns of a review, as [`SqlCaseStore::bind_review`] binds them.
const REVIEW_COLUMNS: usize = 12;
/// Reviews inserted by one statement (well under either database's parameter limit).
const REVIEWS_CHUNK: usize = 400;
/// Same parameter order as INSERT_REVIEWS.
const UPDATE_REVIEW: &str = "UPDATE reviews SET case_id = $2, kind = $3, due_date = $4, status = $5, \
    note = $6, computed_key = $7, outcome = $8, decision_status = $9, version = $10, created_at = $11, \
    updated_at = $12 WHERE id = $1";
const COMPLETED_REVIEWS: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE case_id = $1 AND status = 'completed' ORDER BY id"
);
const VISIT_FACTS: &str = "SELECT case_id, visit_id, parent_id, started_at, outcome, concern, \
    foster_parents_involved FROM visit_facts WHERE case_id = $1 ORDER BY started_at, visit_id";
/// Followed by one placeholder per case, then [`VISIT_FACTS_OF_CASES_END`].
const VISIT_FACTS_OF_CASES: &str = "SELECT case_id, visit_id, parent_id, started_at, outcome, \
    concern, foster_parents_involved FROM visit_facts WHERE case_id IN (";
const VISIT_FACTS_OF_CASES_END: &str = ") ORDER BY case_id, started_at, visit_id";
/// Followed by one placeholder per case and the end of the statement.
const CASES_IN: &str = concat!("SELECT ", case_columns!(), " FROM cases WHERE id IN (");
const PLAN_COUNTS: &str = "SELECT \
    (SELECT COUNT(*) FROM follow_up_goals WHERE case_id = $1 AND status = 'active') AS active_goals, \
    (SELECT COUNT(*) FROM conferences WHERE case_id = $1 AND held_on IS NOT NULL) AS conferences_held, \
    (SELECT COUNT(*) FROM care_tasks WHERE case_id = $1) AS care_tasks";
type Q<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// `UPDATE cases SET {set} …` for `rows` cases in one statement: each row's placeholders are the
/// case id (`v.column1`) and then `width - 1` values (`v.column2`, …) that `set` assigns from. The
/// statement is only numbers and the caller's constant `set`; the values are bound row by row.
fn update_cases(set: &str, rows: usize, width: usize) -> String {
    format!(
        "UPDATE cases SET {set} FROM (VALUES {}) AS v WHERE cases.id = v.column1",
        value_rows(1, rows, width)
    )
}

/// One case changed in a transaction that changes several: the case after, its events, and the ids
/// the change touched (for its audit row).
struct CaseChange {
    case: CaseRecord,
    events: Vec<EventChange>,
    resources: Vec<Uuid>,
}

fn not_found(resource: &'static str) -> ApiError {
    ApiError::NotFound { resource }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The kind of an event, as stored beside it for operators.
fn event_kind(change: &EventChange) -> &'static str {
    match change {
        EventChange::CaseCreated(_) => "case_created",
        EventChange::CaseUpdated(_) => "case_updated",
        EventChange::CaseClosed(_) => "case_closed",
        EventChange::StepChanged(_) => "step_changed",
        EventChange::GoalChanged(_) => "goal_changed",
        EventChange::BoardDecisionRecorded(_) => "board_decision_recorded",
        EventChange::VillageChanged(_) => "village_changed",
        EventChange::ReviewsChanged(_) => "reviews_changed",
        EventChange::ReviewCompleted(_) => "review_completed",
        EventChange::PlanChanged(_) => "plan_changed",
    }
}

impl<DB> SqlCaseStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<ContactPoint>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<FloorJson>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<ConferenceAction>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Json<ReviewOutcome>>: Encode<'q, DB> + Type<DB>,
    for<'r> CaseRow: FromRow<'r, DB::Row>,
    for<'r> MemberRow: FromRow<'r, DB::Row>,
    for<'r> DecisionRow: FromRow<'r, DB::Row>,
    for<'r> ClaimRow: FromRow<'r, DB::Row>,
    for<'r> ReviewRow: FromRow<'r, DB::Row>,
    for<'r> GoalRow: FromRow<'r, DB::Row>,
    for<'r> CareTaskRow: FromRow<'r, DB::Row>,
    for<'r> ConferenceRow: FromRow<'r, DB::Row>,
    for<'r> VisitFactRow: FromRow<'r, DB::Row>,
    for<'r> CountsRow: FromRow<'r, DB::Row>,
{
    async fn load_case(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
        lock: bool,
    ) -> Result<Option<CaseRecord>, ApiError> {
        let sql = if lock {
            format!("{SELECT_CASE}{}", DB::FOR_UPDATE)
        } else {
            SELECT_CASE.to_owned()
        };
        let row: Option<CaseRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row.filter(|r| r.agency == agency.as_str()) else {
            return Ok(None);
        };
        let decisions: Vec<DecisionRow> = sqlx::query_as(CASE_DECISIONS)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        row.into_record(
            decisions
                .into_iter()
                .map(DecisionRow::into_record)
                .collect(),
        )
        .map(Some)
    }

    /// Whether this agency has the case (without reading it whole).
    async fn case_exists(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<bool, ApiError> {
        let row: Option<CaseRow> = sqlx::query_as(SELECT_CASE)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some_and(|r| r.agency == agency.as_str()))
    }

    async fn load_members(
        conn: &mut DB::Connection,
        case_id: Uuid,
    ) -> Result<Vec<VillageMemberRecord>, ApiError> {
        let rows: Vec<MemberRow> = sqlx::query_as(CASE_MEMBERS)
            .bind(case_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(MemberRow::into_record).collect()
    }

    /// A current member (or, with `even_removed`, one removed since), optionally locked.
    async fn load_member(
        conn: &mut DB::Connection,
        case_id: Uuid,
        member_id: Uuid,
        lock: bool,
        even_removed: bool,
    ) -> Result<Option<VillageMemberRecord>, ApiError> {
        let select = if even_removed {
            SELECT_MEMBER_EVEN_REMOVED
        } else {
            SELECT_MEMBER
        };
        let sql = if lock {
            format!("{select}{}", DB::FOR_UPDATE)
        } else {
            select.to_owned()
        };
        let row: Option<MemberRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(case_id)
            .bind(member_id)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(MemberRow::into_record).transpose()
    }

    /// This agency's case, locked for the rest of the transaction.
    async fn locked_case(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<CaseRecord, ApiError> {
        Self::load_case(conn, agency, id, true)
            .await?
            .ok_or_else(|| not_found("case"))
    }

    /// This agency's cases `ids` (no repeats), with their decisions, locked for the rest of the
    /// transaction in id order, so two batches never wait on each other in a circle. Not found when
    /// any is not this agency's.
    async fn locked_cases(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, CaseRecord>, ApiError> {
        let end = format!(") ORDER BY id{}", DB::FOR_UPDATE);
        let rows: Vec<CaseRow> = Self::rows_of_cases(conn, CASES_IN, ids, &end).await?;
        let rows: Vec<CaseRow> = rows
            .into_iter()
            .filter(|c| c.agency == agency.as_str())
            .collect();
        if rows.len() != ids.len() {
            return Err(not_found("case"));
        }
        let mut decisions = group_decisions(Self::decisions_of(conn, &rows).await?);
        rows.into_iter()
            .map(|row| {
                let own = decisions.remove(&row.id).unwrap_or_default();
                row.into_record(own).map(|case| (case.id, case))
            })
            .collect()
    }

    /// The visit facts of several cases, by case, each by start and then visit id.
    async fn visit_facts_of(
        conn: &mut DB::Connection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<crate::model::VisitFact>>, ApiError> {
        let rows: Vec<VisitFactRow> =
            Self::rows_of_cases(conn, VISIT_FACTS_OF_CASES, ids, VISIT_FACTS_OF_CASES_END).await?;
        let mut by_case: HashMap<Uuid, Vec<crate::model::VisitFact>> = HashMap::new();
        for row in rows {
            let case_id = row.case_id;
            by_case.entry(case_id).or_default().push(row.into_record()?);
        }
        Ok(by_case)
    }

    /// An open case of this agency, locked for the rest of the transaction.
    async fn open_case_for_change(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<CaseRecord, ApiError> {
        let case = Self::locked_case(conn, agency, id).await?;
        model::ensure_open(&case)?;
        Ok(case)
    }

    /// Binds every column of the case; the identity number sealed, with its lookup hash.
    fn bind_case<'q>(q: Q<'q, DB>, c: &CaseRecord) -> Result<Q<'q, DB>, ApiError> {
        let reduction = c.follow_up_reduction.as_ref();
        let stamp = c.due_reviews_stamp.as_ref();
        let (sealed, hash) = match c.child.national_id.as_ref() {
            None => (None, None),
            Some(n) => {
                let protector = landsby_platform::pii::protector()?;
                (
                    Some(protector.seal(n.expose())?),
                    Some(protector.lookup_hash(n.expose())),
                )
            }
        };
        Ok(q.bind(c.id)
            .bind(c.agency.as_str().to_owned())
            .bind(c.status.as_str().to_owned())
            .bind(c.child.given_name.clone())
            .bind(c.child.family_name.clone())
            .bind(c.child.birth_date)
            .bind(sealed)
            .bind(c.placement.kind.as_str().to_owned())
            .bind(c.placement.start_date)
            .bind(c.placement.foster_home.name.clone())
            .bind(c.placement.foster_home.address.street.clone())
            .bind(c.placement.foster_home.address.postal_code.clone())
            .bind(c.placement.foster_home.address.city.clone())
            .bind(c.placement.foster_home.address_protected)
            .bind(c.goal.as_str().to_owned())
            .bind(c.step.as_str().to_owned())
            .bind(c.assigned_caseworker.clone())
            .bind(c.version)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.closed_at)
            .bind(c.close_reason.map(|r| r.as_str().to_owned()))
            .bind(c.step_since)
            .bind(c.conference_waiver_reason.clone())
            .bind(reduction.map(|r| r.decided_on))
            .bind(reduction.map(|r| r.expires_on))
            .bind(reduction.map(|r| r.reason.clone()))
            .bind(stamp.map(|s| s.0))
            .bind(stamp.map(|s| s.1.clone()))
            .bind(c.visit_facts_sequence)
            .bind(c.frame_complete)
            .bind(stamp.and_then(|s| s.2))
            .bind(c.team.clone())
            .bind(c.co_caseworker.clone())
            .bind(hash))
    }

    /// Writes the whole case row.
    async fn save_case(conn: &mut DB::Connection, case: &CaseRecord) -> Result<(), ApiError> {
        Self::bind_case(sqlx::query(UPDATE_CASE), case)?
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// A change to something in the case: its version goes up by one.
    async fn bump(
        conn: &mut DB::Connection,
        case: &mut CaseRecord,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        sqlx::query(BUMP_CASE)
            .bind(case.id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        case.version += 1;
        case.updated_at = at;
        Ok(())
    }

    fn bind_member<'q>(q: Q<'q, DB>, m: &VillageMemberRecord) -> Q<'q, DB> {
        let f = &m.fields;
        q.bind(m.id)
            .bind(m.case_id)
            .bind(f.role.as_str().to_owned())
            .bind(f.affiliation.as_str().to_owned())
            .bind(f.display_name.clone())
            .bind(Json(f.contact_points.clone()))
            .bind(f.preferred_language.as_str().to_owned())
            .bind(f.involved)
            .bind(f.informed)
            .bind(f.prepared)
            .bind(f.has_visitation_rights)
            .bind(m.version)
            .bind(m.created_at)
            .bind(m.updated_at)
    }

    fn list_filter<'q>(
        q: Q<'q, DB>,
        agency: &AgencyId,
        f: &CaseFilter,
        after: Option<Uuid>,
        n: usize,
    ) -> Q<'q, DB> {
        q.bind(agency.as_str().to_owned())
            .bind(f.assigned_caseworker.clone())
            .bind(f.step.map(|s| s.as_str().to_owned()))
            .bind(f.goal.map(|g| g.as_str().to_owned()))
            .bind(f.status.map(|s| s.as_str().to_owned()))
            .bind(after)
            .bind(limit(n))
    }

    /// The decisions of `cases`, oldest first per case, in one statement.
    async fn decisions_of(
        conn: &mut DB::Connection,
        cases: &[CaseRow],
    ) -> Result<Vec<BoardDecisionRecord>, ApiError> {
        let ids: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
        let rows: Vec<DecisionRow> =
            Self::rows_of_cases(conn, DECISIONS_OF_CASES, &ids, DECISIONS_OF_CASES_END).await?;
        Ok(rows.into_iter().map(DecisionRow::into_record).collect())
    }

    /// The rows of `select` (ending in `case_id IN (`) for the cases `ids`, then `order`, in one
    /// statement. Only placeholders are put into the text; the ids are bound.
    async fn rows_of_cases<R>(
        conn: &mut DB::Connection,
        select: &str,
        ids: &[Uuid],
        order: &str,
    ) -> Result<Vec<R>, ApiError>
    where
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{select}{}{order}", placeholders(1, ids.len()));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        Ok(query
            .try_map(|row| R::from_row(&row))
            .fetch_all(&mut *conn)
            .await?)
    }

    fn bind_review<'q>(q: Q<'q, DB>, r: &ReviewRecord) -> Q<'q, DB> {
        q.bind(r.id)
            .bind(r.case_id)
            .bind(r.kind.as_str().to_owned())
            .bind(r.due_date)
            .bind(r.status.as_str().to_owned())
            .bind(r.note.clone())
            .bind(r.computed_key.clone())
            .bind(r.outcome.clone().map(Json))
            .bind(r.decision_status.map(|s| s.as_str().to_owned()))
            .bind(r.version)
            .bind(r.created_at)
            .bind(r.updated_at)
    }

    /// Inserts `reviews`, [`REVIEWS_CHUNK`] a statement.
    async fn insert_reviews(
        conn: &mut DB::Connection,
        reviews: &[ReviewRecord],
    ) -> Result<(), ApiError> {
        for chunk in reviews.chunks(REVIEWS_CHUNK) {
            let sql = format!(
                "{INSERT_REVIEWS}{}",
                value_rows(1, chunk.len(), REVIEW_COLUMNS)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for review in chunk {
                query = Self::bind_review(query, review);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn save_review(conn: &mut DB::Connection, review: &ReviewRecord) -> Result<(), ApiError> {
        Self::bind_review(sqlx::query(UPDATE_REVIEW), review)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// A review of the case, optionally locked.
    async fn load_review(
        conn: &mut DB::Connection,
        case_id: Uuid,
        review_id: Uuid,
        lock: bool,
    ) -> Result<Option<ReviewRecord>, ApiError> {
        let sql = if lock {
            format!("{SELECT_REVIEW}{}", DB::FOR_UPDATE)
        } else {
            SELECT_REVIEW.to_owned()
        };
        let row: Option<ReviewRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(case_id)
            .bind(review_id)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(ReviewRow::into_record).transpose()
    }

    /// The visit facts of a case, by start and then visit id.
    async fn visit_facts(
        conn: &mut DB::Connection,
        case_id: Uuid,
    ) -> Result<Vec<crate::model::VisitFact>, ApiError> {
        let visits: Vec<VisitFactRow> = sqlx::query_as(VISIT_FACTS)
            .bind(case_id)
            .fetch_all(&mut *conn)
            .await?;
        visits.into_iter().map(VisitFactRow::into_record).collect()
    }

    /// The readiness facts of `case`, from its visit facts, plans and completed reviews.
    async fn facts_of(conn: &mut DB::Connection, case: &CaseRecord) -> Result<Facts, ApiError> {
        let visits = Self::visit_facts(&mut *conn, case.id).await?;
        let counts: CountsRow = sqlx::query_as(PLAN_COUNTS)
            .bind(case.id)
            .fetch_one(&mut *conn)
            .await?;
        let completed: Vec<ReviewRow> = sqlx::query_as(COMPLETED_REVIEWS)
            .bind(case.id)
            .fetch_all(&mut *conn)
            .await?;
        let completed = completed
            .into_iter()
            .map(ReviewRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(model::readiness_facts(
            case,
            &visits,
            count(counts.active_goals),
            counts.conferences_held > 0,
            count(counts.care_tasks),
            &completed,
        ))
    }

    /// Ends a change of `case` with its audit row and its events, at the case's current version
    /// ([`outbox::commit`]).
    async fn commit_change(
        &self,
        tx: sqlx::Transaction<'static, DB>,
        case: &CaseRecord,
        audit: &AuditEntry,
        events: Vec<EventChange>,
    ) -> Result<(), ApiError> {
        let events = events
            .into_iter()
            .map(|change| Self::event(case, audit, change))
            .collect();
        outbox::commit::<DB>(tx, std::slice::from_ref(audit), events, &self.feed).await
    }

    /// Ends a transaction that changed several cases: one audit row per case (`audit` with the case
    /// and what of it changed), then their events, then the commit.
    async fn commit_cases(
        &self,
        tx: sqlx::Transaction<'static, DB>,
        changes: &[CaseChange],
        audit: &AuditEntry,
    ) -> Result<(), ApiError> {
        let audits: Vec<AuditEntry> = changes
            .iter()
            .map(|c| AuditEntry {
                case_id: Some(c.case.id),
                resource_ids: c.resources.clone(),
                ..audit.clone()
            })
            .collect();
        let events = changes
            .iter()
            .flat_map(|c| {
                c.events
                    .iter()
                    .map(|change| Self::event(&c.case, audit, change.clone()))
            })
            .collect();
        outbox::commit::<DB>(tx, &audits, events, &self.feed).await
    }

    /// An event of `case` (at its current version), for the outbox.
    fn event<'a>(
        case: &'a CaseRecord,
        audit: &AuditEntry,
        change: EventChange,
    ) -> outbox::Event<'a> {
        let event_id = Uuid::now_v7();
        let kind = event_kind(&change);
        let event = pb::CaseEvent {
            sequence: 0,
            event_id: event_id.to_string(),
            case_id: case.id.to_string(),
            agency: case.agency.as_str().to_owned(),
            case_version: case.version,
            occur_time: Some(timestamp_to_proto(audit.at)),
            actor: audit.subject.clone(),
            // The trace of the call making the change, so its consumers continue it.
            traceparent: landsby_platform::telemetry::traceparent().unwrap_or_default(),
            change: Some(change),
        };
        outbox::Event {
            event_id,
            agency: case.agency.as_str(),
            case_id: case.id,
            at: audit.at,
            kind,
            payload: event.encode_to_vec(),
        }
    }
}

/// The board decisions of several cases, by case.
fn group_decisions(decisions: Vec<BoardDecisionRecord>) -> HashMap<Uuid, Vec<BoardDecisionRecord>> {
    let mut by_case: HashMap<Uuid, Vec<BoardDecisionRecord>> = HashMap::new();
    for decision in decisions {
        by_case.entry(decision.case_id).or_default().push(decision);
    }
    by_case
}

#[cfg(test)]
mod tests {
    use landsby_testkit::{assert_by_primary_key, cold_plan};

    /// A case is read by its id through the primary key even before PostgreSQL has statistics:
    /// a plan over an index that leads with the agency would read every case of the agency.
    #[tokio::test]
    async fn reads_of_one_case_use_the_primary_key_on_a_cold_database() {
        for sql in [
            super::SELECT_CASE,
            super::cases::GET_CASE,
            super::cases::CASE_ACCESS,
        ] {
            assert_by_primary_key(&cold_plan(&crate::MIGRATIONS, sql).await, "cases");
        }
    }
}

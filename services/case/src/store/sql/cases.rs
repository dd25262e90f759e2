//! [`CaseStore`]: cases, the village and board decisions.

use super::{Q, SqlCaseStore, group_decisions, limit, not_found};
use crate::model::{
    self, BoardDecisionRecord, BreakGlassGrant, CaseChange, CaseFilter, CaseRecord,
    ConferenceAction, ContactPoint, Idempotency, MemberChange, MemberFields, NewBoardDecision,
    NewCase, ReviewOutcome, Snapshot, VillageMemberRecord,
};
use crate::store::rows::{
    AccessRow, CareTaskRow, CaseDecisionRow, CaseRow, ConferenceRow, CountsRow, DecisionRow,
    FloorJson, GoalRow, MemberRow, ReviewRow, VisitFactRow, case_columns, decision_columns,
    member_columns, review_columns,
};
use crate::store::{CaseStore, DecisionCursor};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::{AgencyId, CaseStatus};
use landsby_platform::ApiError;
use landsby_platform::audit::{self, AuditEntry};
use landsby_platform::db::Dialect;
use landsby_platform::idempotency::{self, Claim, ClaimRow};
use landsby_proto::case::{self as pb, case_event::Change as EventChange};
use sqlx::types::Json;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};
use std::collections::HashMap;
use uuid::Uuid;

/// A case, its board decisions and whether `$3` holds a grant to it unexpired at `$4`, in one
/// statement: one snapshot, one round trip ([`CaseDecisionRow`]). The case by its id alone, its
/// agency compared after (see `SELECT_CASE`).
pub(super) const GET_CASE: &str = concat!(
    "SELECT c.*, EXISTS (SELECT 1 FROM break_glass_grants g WHERE g.agency = $1 AND g.case_id = $2 \
     AND g.subject = $3 AND g.expires_at > $4) AS granted, d.id AS d_id, \
     d.reference AS d_reference, d.decided_on AS d_decided_on, d.valid_from AS d_valid_from, \
     d.valid_to AS d_valid_to, d.secret_address AS d_secret_address, d.floors AS d_floors, \
     d.recorded_by AS d_recorded_by, d.recorded_at AS d_recorded_at FROM (SELECT ",
    case_columns!(),
    " FROM cases WHERE id = $2) c LEFT JOIN board_decisions d ON d.case_id = c.id \
     ORDER BY d.valid_from, d.recorded_at, d.id"
);
/// Followed by [`LIST_CASES_END`], or by a need-to-know condition and then it.
const LIST_CASES: &str = concat!(
    "SELECT ",
    case_columns!(),
    " FROM cases WHERE agency = $1 AND ($2 IS NULL OR assigned_caseworker = $2) \
     AND ($3 IS NULL OR step = $3) AND ($4 IS NULL OR goal = $4) AND ($5 IS NULL OR status = $5) \
     AND ($6 IS NULL OR id > $6)"
);
const LIST_CASES_END: &str = " ORDER BY id LIMIT $7";
/// By the case's id alone, its agency compared after (see `SELECT_CASE`).
pub(super) const CASE_ACCESS: &str = "SELECT agency, assigned_caseworker, co_caseworker, team, \
    EXISTS (SELECT 1 FROM break_glass_grants g WHERE g.agency = $1 AND g.case_id = $2 \
    AND g.subject = $3 AND g.expires_at > $4) AS granted FROM cases WHERE id = $2";
const INSERT_GRANT: &str = "INSERT INTO break_glass_grants \
    (id, agency, case_id, subject, reason, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_DECISION: &str = concat!(
    "INSERT INTO board_decisions (",
    decision_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
const SNAPSHOT_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM village_members WHERE case_id IN ("
);
const SNAPSHOT_GOALS: &str = "SELECT id, case_id, description, status, version, created_at, \
    updated_at FROM follow_up_goals WHERE case_id IN (";
const SNAPSHOT_REVIEWS: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE case_id IN ("
);
const LIST_DECISIONS: &str = concat!(
    "SELECT ",
    decision_columns!(),
    " FROM board_decisions WHERE case_id = $1 AND ($2 IS NULL OR valid_from < $2 \
     OR (valid_from = $2 AND id < $3)) ORDER BY valid_from DESC, id DESC LIMIT $4"
);
const LIST_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM village_members WHERE case_id = $1 AND removed_at IS NULL \
     AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
);
const INSERT_MEMBER: &str = concat!(
    "INSERT INTO village_members (",
    member_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
/// Same parameter order as INSERT_MEMBER.
const UPDATE_MEMBER: &str = "UPDATE village_members SET case_id = $2, role = $3, affiliation = $4, \
    display_name = $5, contact_points = $6, preferred_language = $7, involved = $8, informed = $9, \
    prepared = $10, has_visitation_rights = $11, version = $12, created_at = $13, updated_at = $14 \
    WHERE id = $1";
const REMOVE_MEMBER: &str = "UPDATE village_members SET removed_at = $2, version = version + 1, updated_at = $2 WHERE id = $1";

fn village_changed(member: Uuid, change: pb::VillageChange) -> EventChange {
    EventChange::VillageChanged(pb::VillageChanged {
        member_id: member.to_string(),
        change: change.into(),
    })
}

#[async_trait::async_trait]
impl<DB> CaseStore for SqlCaseStore<DB>
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
    for<'r> AccessRow: FromRow<'r, DB::Row>,
    for<'r> CaseDecisionRow: FromRow<'r, DB::Row>,
{
    async fn create_case(
        &self,
        agency: &AgencyId,
        new: NewCase,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<CaseRecord, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let id = Uuid::now_v7();
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let case = Self::load_case(&mut tx, agency, existing, false)
                .await?
                .ok_or_else(|| ApiError::internal("a remembered request names a missing case"))?;
            audit.case_id = Some(case.id);
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(case);
        }
        let case = CaseRecord {
            id,
            agency: agency.clone(),
            status: CaseStatus::Open,
            child: new.child,
            placement: new.placement,
            goal: new.goal,
            step: new.step,
            assigned_caseworker: new.assigned_caseworker,
            team: new.team,
            co_caseworker: new.co_caseworker,
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
            closed_at: None,
            close_reason: None,
            board_decisions: Vec::new(),
            step_since: audit.at,
            conference_waiver_reason: None,
            follow_up_reduction: None,
            due_reviews_stamp: None,
            visit_facts_sequence: None,
            frame_complete: false,
        };
        Self::bind_case(sqlx::query(super::INSERT_CASE), &case)?
            .execute(&mut *tx)
            .await?;
        let created = pb::CaseCreated {
            step: crate::api::convert::step_to(case.step).into(),
            goal: crate::api::convert::goal_to(case.goal).into(),
        };
        audit.case_id = Some(case.id);
        self.commit_change(tx, &case, &audit, vec![EventChange::CaseCreated(created)])
            .await?;
        Ok(case)
    }

    async fn get_case(
        &self,
        agency: &AgencyId,
        id: Uuid,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(model::CaseAccess, CaseRecord)>, ApiError> {
        let rows: Vec<CaseDecisionRow> = sqlx::query_as(GET_CASE)
            .bind(agency.as_str().to_owned())
            .bind(id)
            .bind(subject.to_owned())
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let mut decisions = Vec::new();
        let mut first = None;
        for mut row in rows {
            if let Some(decision) = row.decision()? {
                decisions.push(decision.into_record());
            }
            first.get_or_insert(row);
        }
        let Some(row) = first.filter(|r| r.case.agency == agency.as_str()) else {
            return Ok(None);
        };
        let access = model::CaseAccess {
            caseworker: row.case.assigned_caseworker.clone(),
            co_caseworker: row.case.co_caseworker.clone(),
            team: row.case.team.clone(),
            grant: row.granted,
        };
        Ok(Some((access, row.case.into_record(decisions)?)))
    }

    async fn case_access(
        &self,
        agency: &AgencyId,
        id: Uuid,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<model::CaseAccess>, ApiError> {
        let row: Option<AccessRow> = sqlx::query_as(CASE_ACCESS)
            .bind(agency.as_str().to_owned())
            .bind(id)
            .bind(subject.to_owned())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .filter(|r| r.agency == agency.as_str())
            .map(AccessRow::into_access))
    }

    async fn grant_break_glass(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        grant: BreakGlassGrant,
        mut audit: AuditEntry,
    ) -> Result<(), ApiError> {
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![grant.id];
        audit.break_glass = true;
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Err(ApiError::NotFound { resource: "case" });
        }
        sqlx::query(INSERT_GRANT)
            .bind(grant.id)
            .bind(agency.as_str().to_owned())
            .bind(case_id)
            .bind(grant.subject)
            .bind(grant.reason)
            .bind(grant.granted_at)
            .bind(grant.expires_at)
            .execute(&mut *tx)
            .await?;
        audit::append(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshots(&self, agency: &AgencyId, ids: &[Uuid]) -> Result<Vec<Snapshot>, ApiError> {
        // One transaction: every table as of the same moment.
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        let cases: Vec<CaseRow> = Self::rows_of_cases(&mut tx, super::CASES_IN, ids, ")").await?;
        // The ids are bound as given; a case of another agency is not here.
        let cases: Vec<CaseRow> = cases
            .into_iter()
            .filter(|c| c.agency == agency.as_str())
            .collect();
        let found: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
        let decisions = Self::decisions_of(&mut tx, &cases).await?;
        let members: Vec<MemberRow> = Self::rows_of_cases(
            &mut tx,
            SNAPSHOT_MEMBERS,
            &found,
            ") AND removed_at IS NULL ORDER BY id",
        )
        .await?;
        let goals: Vec<GoalRow> =
            Self::rows_of_cases(&mut tx, SNAPSHOT_GOALS, &found, ") ORDER BY id").await?;
        let reviews: Vec<ReviewRow> =
            Self::rows_of_cases(&mut tx, SNAPSHOT_REVIEWS, &found, ") ORDER BY due_date, id")
                .await?;
        let conferences: Vec<ConferenceRow> = Self::rows_of_cases(
            &mut tx,
            &super::plans::conferences_of_cases(),
            &found,
            ") ORDER BY id",
        )
        .await?;
        tx.commit().await?;
        let mut decisions = group_decisions(decisions);
        let mut snapshots: HashMap<Uuid, Snapshot> = HashMap::new();
        for row in cases {
            let own = decisions.remove(&row.id).unwrap_or_default();
            let case = row.into_record(own)?;
            snapshots.insert(
                case.id,
                Snapshot {
                    case,
                    members: Vec::new(),
                    goals: Vec::new(),
                    reviews: Vec::new(),
                    conferences: Vec::new(),
                },
            );
        }
        for m in members {
            let m = m.into_record()?;
            if let Some(s) = snapshots.get_mut(&m.case_id) {
                s.members.push(m);
            }
        }
        for g in goals {
            let g = g.into_record()?;
            if let Some(s) = snapshots.get_mut(&g.case_id) {
                s.goals.push(g);
            }
        }
        for r in reviews {
            let r = r.into_record()?;
            if let Some(s) = snapshots.get_mut(&r.case_id) {
                s.reviews.push(r);
            }
        }
        for c in conferences {
            let c = model::ConferenceRecord::from(c);
            if let Some(s) = snapshots.get_mut(&c.case_id) {
                s.conferences.push(c);
            }
        }
        Ok(ids.iter().filter_map(|id| snapshots.remove(id)).collect())
    }

    async fn list_cases(
        &self,
        agency: &AgencyId,
        filter: &CaseFilter,
        after: Option<Uuid>,
        n: usize,
    ) -> Result<Vec<CaseRecord>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        // Need to know: the caseworker's own cases and the teams' cases, as conditions on bound
        // values ($8 the caseworker, then one placeholder per team).
        let mut sql = LIST_CASES.to_owned();
        // Placeholders after the fixed seven: need to know, then the identity number's hash.
        let mut next = 8;
        if let Some(visible) = &filter.visible_to {
            let teams = if visible.teams.is_empty() {
                "NULL".to_owned()
            } else {
                landsby_platform::db::placeholders(9, visible.teams.len())
            };
            sql.push_str(&format!(
                " AND (assigned_caseworker = $8 OR co_caseworker = $8 OR team IN ({teams}))"
            ));
            next = 9 + visible.teams.len();
        }
        if filter.national_id_hash.is_some() {
            sql.push_str(&format!(" AND child_national_id_hash = ${next}"));
        }
        sql.push_str(LIST_CASES_END);
        let mut query: Q<'_, DB> = Self::list_filter(
            sqlx::query(sqlx::AssertSqlSafe(sql)),
            agency,
            filter,
            after,
            n,
        );
        if let Some(visible) = &filter.visible_to {
            query = query.bind(visible.caseworker.clone());
            for team in &visible.teams {
                query = query.bind(team.clone());
            }
        }
        if let Some(hash) = &filter.national_id_hash {
            query = query.bind(hash.clone());
        }
        let rows: Vec<CaseRow> = query
            .try_map(|row| CaseRow::from_row(&row))
            .fetch_all(&mut *tx)
            .await?;
        let decisions = Self::decisions_of(&mut tx, &rows).await?;
        tx.commit().await?;
        let mut by_case = group_decisions(decisions);
        rows.into_iter()
            .map(|row| {
                let own = by_case.remove(&row.id).unwrap_or_default();
                row.into_record(own)
            })
            .collect()
    }

    async fn update_case(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: CaseChange,
        event: EventChange,
        mut audit: AuditEntry,
    ) -> Result<CaseRecord, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, id).await?;
        if case.version != expected_version {
            return Err(ApiError::StaleEtag { resource: "case" });
        }
        change(&mut case)?;
        case.version += 1;
        case.updated_at = audit.at;
        Self::save_case(&mut tx, &case).await?;
        audit.case_id = Some(id);
        self.commit_change(tx, &case, &audit, vec![event]).await?;
        Ok(case)
    }

    async fn add_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        fields: MemberFields,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<VillageMemberRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        // A retry gets the first answer, even if the case has closed or the member left since.
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let member = Self::load_member(&mut tx, case_id, existing, false, true)
                .await?
                .ok_or_else(|| ApiError::internal("a remembered request names a missing member"))?;
            audit.resource_ids = vec![member.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(member);
        }
        model::ensure_open(&case)?;
        let member = VillageMemberRecord {
            id,
            case_id,
            fields,
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
        };
        Self::bind_member(sqlx::query(INSERT_MEMBER), &member)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        let event = village_changed(member.id, pb::VillageChange::Added);
        audit.resource_ids = vec![member.id];
        self.commit_change(tx, &case, &audit, vec![event]).await?;
        Ok(member)
    }

    async fn update_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        member_id: Uuid,
        expected_version: i64,
        change: MemberChange,
        mut audit: AuditEntry,
    ) -> Result<VillageMemberRecord, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let mut member = Self::load_member(&mut tx, case_id, member_id, true, false)
            .await?
            .ok_or_else(|| not_found("village member"))?;
        if member.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "village member",
            });
        }
        change(&case, &mut member)?;
        model::ensure_not_named_in_decision(
            &case,
            member_id,
            model::is_parent_with_rights(&member.fields),
        )?;
        member.version += 1;
        member.updated_at = audit.at;
        Self::bind_member(sqlx::query(UPDATE_MEMBER), &member)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        let event = village_changed(member_id, pb::VillageChange::Updated);
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![member_id];
        self.commit_change(tx, &case, &audit, vec![event]).await?;
        Ok(member)
    }

    async fn remove_member(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        member_id: Uuid,
        expected_version: i64,
        mut audit: AuditEntry,
    ) -> Result<(), ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let member = Self::load_member(&mut tx, case_id, member_id, true, false)
            .await?
            .ok_or_else(|| not_found("village member"))?;
        if member.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "village member",
            });
        }
        model::ensure_not_named_in_decision(&case, member_id, false)?;
        sqlx::query(REMOVE_MEMBER)
            .bind(member_id)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        let event = village_changed(member_id, pb::VillageChange::Removed);
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![member_id];
        self.commit_change(tx, &case, &audit, vec![event]).await?;
        Ok(())
    }

    async fn list_members(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        n: usize,
    ) -> Result<Option<Vec<VillageMemberRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<MemberRow> = sqlx::query_as(LIST_MEMBERS)
            .bind(case_id)
            .bind(after)
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(MemberRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn record_decision(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        decision: NewBoardDecision,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<BoardDecisionRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        // A retry gets the first answer, even if the case has closed since.
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let record = case
                .board_decisions
                .iter()
                .find(|d| d.id == existing)
                .cloned()
                .ok_or_else(|| {
                    ApiError::internal("a remembered request names a missing decision")
                })?;
            audit.resource_ids = vec![record.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(record);
        }
        model::ensure_open(&case)?;
        let members = Self::load_members(&mut tx, case_id).await?;
        model::check_floors(&decision.floors, &members)?;
        let record = BoardDecisionRecord {
            id,
            case_id,
            decision,
            recorded_by: audit.subject.clone(),
            recorded_at: audit.at,
        };
        let floors: Vec<FloorJson> = record.decision.floors.iter().map(FloorJson::from).collect();
        sqlx::query(INSERT_DECISION)
            .bind(record.id)
            .bind(case_id)
            .bind(record.decision.reference.clone())
            .bind(record.decision.decided_on)
            .bind(record.decision.valid_from)
            .bind(record.decision.valid_to)
            .bind(record.decision.secret_address)
            .bind(Json(floors))
            .bind(record.recorded_by.clone())
            .bind(record.recorded_at)
            .execute(&mut *tx)
            .await?;
        // A secret address decided by the board protects the address on the case at once.
        case.placement.foster_home.address_protected |= record.decision.secret_address;
        case.version += 1;
        case.updated_at = audit.at;
        Self::save_case(&mut tx, &case).await?;
        let event = EventChange::BoardDecisionRecorded(pb::BoardDecisionRecorded {
            decision_id: record.id.to_string(),
            secret_address: record.decision.secret_address,
        });
        audit.resource_ids = vec![record.id];
        self.commit_change(tx, &case, &audit, vec![event]).await?;
        Ok(record)
    }

    async fn list_decisions(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<DecisionCursor>,
        n: usize,
    ) -> Result<Option<Vec<BoardDecisionRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<DecisionRow> = sqlx::query_as(LIST_DECISIONS)
            .bind(case_id)
            .bind(after.map(|(from, _)| from))
            .bind(after.map(|(_, id)| id))
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(
            rows.into_iter().map(DecisionRow::into_record).collect(),
        ))
    }
}

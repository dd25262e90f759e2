//! [`PlanStore`]: the follow-up plan, the reunification plan's care tasks, family group conferences.

use super::{SqlCaseStore, limit, not_found};
use crate::model::{
    self, CareTaskRecord, ConferenceAction, ConferenceOutcome, ConferenceRecord, ContactPoint,
    GoalChange, GoalRecord, GoalStatus, Idempotency, NewConference, ReviewOutcome,
};
use crate::store::PlanStore;
use crate::store::rows::{
    CareTaskRow, CaseRow, ConferenceRow, CountsRow, DecisionRow, FloorJson, GoalRow, MemberRow,
    ReviewRow, VisitFactRow,
};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::AgencyId;
use landsby_domain::care::{self, CareTaskKind, Holder};
use landsby_platform::ApiError;
use landsby_platform::audit::{self, AuditEntry};
use landsby_platform::db::Dialect;
use landsby_platform::idempotency::{self, Claim, ClaimRow};
use landsby_platform::validate::Violations;
use landsby_proto::case::{self as pb, case_event::Change as EventChange};
use sqlx::types::Json;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

const SELECT_GOAL: &str = "SELECT id, case_id, description, status, version, created_at, updated_at \
    FROM follow_up_goals WHERE case_id = $1 AND id = $2";
const LIST_GOALS: &str = "SELECT id, case_id, description, status, version, created_at, updated_at \
    FROM follow_up_goals WHERE case_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";
const INSERT_GOAL: &str = "INSERT INTO follow_up_goals \
    (id, case_id, description, status, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPDATE_GOAL: &str = "UPDATE follow_up_goals SET description = $2, status = $3, version = $4, \
    updated_at = $5 WHERE id = $1";
const SELECT_TASK: &str = "SELECT id, case_id, kind, description, holder, version, created_at, updated_at \
    FROM care_tasks WHERE case_id = $1 AND id = $2";
const LIST_TASKS: &str = "SELECT id, case_id, kind, description, holder, version, created_at, updated_at \
    FROM care_tasks WHERE case_id = $1 ORDER BY id";
const INSERT_TASK: &str = "INSERT INTO care_tasks \
    (id, case_id, kind, description, holder, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const MOVE_TASK: &str =
    "UPDATE care_tasks SET holder = $2, version = $3, updated_at = $4 WHERE id = $1";
const CONFERENCE_COLUMNS: &str = "id, case_id, planned_date, coordinator, participant_ids, held_on, \
    actions, version, created_at, updated_at";
const INSERT_CONFERENCE: &str = "INSERT INTO conferences \
    (id, case_id, planned_date, coordinator, participant_ids, held_on, actions, version, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const RECORD_CONFERENCE: &str = "UPDATE conferences SET held_on = $2, actions = $3, version = $4, \
    updated_at = $5 WHERE id = $1";

fn plan_changed(item: Uuid) -> EventChange {
    EventChange::PlanChanged(pb::PlanChanged {
        item_id: item.to_string(),
    })
}

fn select_conference() -> String {
    format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE case_id = $1 AND id = $2")
}

/// Followed by one placeholder per case (see `rows_of_cases`).
pub(super) fn conferences_of_cases() -> String {
    format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE case_id IN (")
}

fn list_conferences() -> String {
    format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE case_id = $1 ORDER BY id")
}

#[async_trait::async_trait]
impl<DB> PlanStore for SqlCaseStore<DB>
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
    async fn add_goal(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        description: String,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<GoalRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let row: Option<GoalRow> = sqlx::query_as(SELECT_GOAL)
                .bind(case_id)
                .bind(existing)
                .fetch_optional(&mut *tx)
                .await?;
            let goal = row
                .ok_or_else(|| ApiError::internal("a remembered request names a missing goal"))?
                .into_record()?;
            audit.resource_ids = vec![goal.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(goal);
        }
        model::ensure_open(&case)?;
        let goal = GoalRecord {
            id,
            case_id,
            description,
            status: GoalStatus::Active,
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(INSERT_GOAL)
            .bind(goal.id)
            .bind(case_id)
            .bind(goal.description.clone())
            .bind(goal.status.as_str().to_owned())
            .bind(goal.version)
            .bind(goal.created_at)
            .bind(goal.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        audit.resource_ids = vec![id];
        self.commit_change(tx, &case, &audit, vec![plan_changed(id)])
            .await?;
        Ok(goal)
    }

    async fn update_goal(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        goal_id: Uuid,
        expected_version: i64,
        change: GoalChange,
        mut audit: AuditEntry,
    ) -> Result<GoalRecord, ApiError> {
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![goal_id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_GOAL}{}", DB::FOR_UPDATE));
        let row: Option<GoalRow> = sqlx::query_as(sql)
            .bind(case_id)
            .bind(goal_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut goal = row
            .ok_or_else(|| not_found("follow-up goal"))?
            .into_record()?;
        if goal.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "follow-up goal",
            });
        }
        change(&mut goal);
        goal.version += 1;
        goal.updated_at = audit.at;
        sqlx::query(UPDATE_GOAL)
            .bind(goal.id)
            .bind(goal.description.clone())
            .bind(goal.status.as_str().to_owned())
            .bind(goal.version)
            .bind(goal.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        self.commit_change(tx, &case, &audit, vec![plan_changed(goal_id)])
            .await?;
        Ok(goal)
    }

    async fn list_goals(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        n: usize,
    ) -> Result<Option<Vec<GoalRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<GoalRow> = sqlx::query_as(LIST_GOALS)
            .bind(case_id)
            .bind(after)
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(GoalRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn add_care_task(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        kind: CareTaskKind,
        description: String,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<CareTaskRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let row: Option<CareTaskRow> = sqlx::query_as(SELECT_TASK)
                .bind(case_id)
                .bind(existing)
                .fetch_optional(&mut *tx)
                .await?;
            let task = row
                .ok_or_else(|| {
                    ApiError::internal("a remembered request names a missing care task")
                })?
                .into_record()?;
            audit.resource_ids = vec![task.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(task);
        }
        model::ensure_open(&case)?;
        let task = CareTaskRecord {
            id,
            case_id,
            kind,
            description,
            holder: Holder::FosterParents,
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(INSERT_TASK)
            .bind(task.id)
            .bind(case_id)
            .bind(task.kind.as_str().to_owned())
            .bind(task.description.clone())
            .bind(task.holder.as_str().to_owned())
            .bind(task.version)
            .bind(task.created_at)
            .bind(task.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        audit.resource_ids = vec![id];
        self.commit_change(tx, &case, &audit, vec![plan_changed(id)])
            .await?;
        Ok(task)
    }

    async fn move_care_task(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        task_id: Uuid,
        expected_version: i64,
        to: Holder,
        mut audit: AuditEntry,
    ) -> Result<CareTaskRecord, ApiError> {
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![task_id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_TASK}{}", DB::FOR_UPDATE));
        let row: Option<CareTaskRow> = sqlx::query_as(sql)
            .bind(case_id)
            .bind(task_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut task = row.ok_or_else(|| not_found("care task"))?.into_record()?;
        if task.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "care task",
            });
        }
        care::check_transition(task.holder, to).map_err(|e| {
            ApiError::precondition(
                "CARE_TASK_MOVE",
                format!("cases/{case_id}/care-tasks/{task_id}"),
                e.to_string(),
            )
        })?;
        task.holder = to;
        task.version += 1;
        task.updated_at = audit.at;
        sqlx::query(MOVE_TASK)
            .bind(task.id)
            .bind(task.holder.as_str().to_owned())
            .bind(task.version)
            .bind(task.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        self.commit_change(tx, &case, &audit, vec![plan_changed(task_id)])
            .await?;
        Ok(task)
    }

    async fn list_care_tasks(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<Vec<CareTaskRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<CareTaskRow> = sqlx::query_as(LIST_TASKS)
            .bind(case_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(CareTaskRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn schedule_conference(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        new: NewConference,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<ConferenceRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let row: Option<ConferenceRow> =
                sqlx::query_as(sqlx::AssertSqlSafe(select_conference()))
                    .bind(case_id)
                    .bind(existing)
                    .fetch_optional(&mut *tx)
                    .await?;
            let conference = ConferenceRecord::from(row.ok_or_else(|| {
                ApiError::internal("a remembered request names a missing conference")
            })?);
            audit.resource_ids = vec![conference.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(conference);
        }
        model::ensure_open(&case)?;
        let members = Self::load_members(&mut tx, case_id).await?;
        let mut v = Violations::new();
        for (i, participant) in new.participant_ids.iter().enumerate() {
            if !members.iter().any(|m| m.id == *participant) {
                v.add(
                    format!("conference.participant_ids[{i}]"),
                    "no member of this case's village has this id",
                );
            }
        }
        v.finish()?;
        let conference = ConferenceRecord {
            id,
            case_id,
            planned_date: new.planned_date,
            coordinator: new.coordinator,
            participant_ids: new.participant_ids,
            held_on: None,
            actions: Vec::new(),
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(INSERT_CONFERENCE)
            .bind(conference.id)
            .bind(case_id)
            .bind(conference.planned_date)
            .bind(conference.coordinator.clone())
            .bind(Json(conference.participant_ids.clone()))
            .bind(conference.held_on)
            .bind(Json(conference.actions.clone()))
            .bind(conference.version)
            .bind(conference.created_at)
            .bind(conference.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        audit.resource_ids = vec![id];
        self.commit_change(tx, &case, &audit, vec![plan_changed(id)])
            .await?;
        Ok(conference)
    }

    async fn record_conference_outcome(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        conference_id: Uuid,
        expected_version: i64,
        outcome: ConferenceOutcome,
        mut audit: AuditEntry,
    ) -> Result<ConferenceRecord, ApiError> {
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![conference_id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let sql = sqlx::AssertSqlSafe(format!("{}{}", select_conference(), DB::FOR_UPDATE));
        let row: Option<ConferenceRow> = sqlx::query_as(sql)
            .bind(case_id)
            .bind(conference_id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut conference =
            ConferenceRecord::from(row.ok_or_else(|| not_found("family group conference"))?);
        if conference.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "family group conference",
            });
        }
        conference.held_on = Some(outcome.held_on);
        conference.actions = outcome.actions;
        conference.version += 1;
        conference.updated_at = audit.at;
        sqlx::query(RECORD_CONFERENCE)
            .bind(conference.id)
            .bind(conference.held_on)
            .bind(Json(conference.actions.clone()))
            .bind(conference.version)
            .bind(conference.updated_at)
            .execute(&mut *tx)
            .await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        self.commit_change(tx, &case, &audit, vec![plan_changed(conference_id)])
            .await?;
        Ok(conference)
    }

    async fn list_conferences(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<Vec<ConferenceRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<ConferenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(list_conferences()))
            .bind(case_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(rows.into_iter().map(ConferenceRecord::from).collect()))
    }
}

//! [`VisitStore`]: visits, booked without double booking.

use super::{SqlVisitationStore, limit, not_found};
use crate::model::visits::check_against_plan;
use crate::model::{Idempotency, NewVisit, VisitRecord};
use crate::store::rows::{Doc, PlanRow, ScopeVersionRow, VisitRow, visit_columns};
use crate::store::{VisitChange, VisitCursor, VisitFilter, VisitStore};
use chrono::{DateTime, NaiveDateTime, Utc};
use landsby_domain::AgencyId;
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::db::Dialect;
use landsby_platform::idempotency::{self, Claim, ClaimRow};
use landsby_platform::validate::timestamp_to_proto;
use landsby_proto::visitation::{self as pb, visitation_event::Change as EventChange};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

const LIST_VISITS: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM visits v WHERE v.agency = $1 \
     AND ($2 IS NULL OR v.case_id = $2) \
     AND ($3 IS NULL OR v.parent_id = $3) \
     AND ($4 IS NULL OR EXISTS (SELECT 1 FROM visit_participants p \
          WHERE p.visit_id = v.id AND p.member_id = $4)) \
     AND ($5 IS NULL OR v.supervisor = $5) \
     AND ($6 IS NULL OR v.starts_at >= $6) \
     AND ($7 IS NULL OR v.starts_at < $7) \
     AND ($8 IS NULL OR v.status = $8) \
     AND ($9 IS NULL OR v.starts_at > $9 OR (v.starts_at = $9 AND v.id > $10)) \
     ORDER BY v.starts_at, v.id LIMIT $11"
);
const BUSY: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM visits WHERE agency = $1 AND case_id = $2 AND status IN ('scheduled', 'confirmed') \
     AND starts_at < $3 AND ends_at > $4 ORDER BY starts_at"
);

fn scheduled(v: &VisitRecord) -> EventChange {
    EventChange::VisitScheduled(pb::VisitScheduled {
        visit_id: v.id.to_string(),
        parent_id: v.parent_id.to_string(),
        start_time: Some(timestamp_to_proto(v.start)),
        duration_minutes: i32::try_from(v.duration_minutes).unwrap_or(i32::MAX),
    })
}

#[async_trait::async_trait]
impl<DB> VisitStore for SqlVisitationStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Encode<'q, DB> + Type<DB>,
    for<'q> Doc: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Doc>: Encode<'q, DB> + Type<DB>,
    for<'q> sqlx::types::Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> PlanRow: FromRow<'r, DB::Row>,
    for<'r> ScopeVersionRow: FromRow<'r, DB::Row>,
    for<'r> VisitRow: FromRow<'r, DB::Row>,
    for<'r> ClaimRow: FromRow<'r, DB::Row>,
{
    async fn schedule_visit(
        &self,
        agency: &AgencyId,
        new: NewVisit,
        secret_address: bool,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<VisitRecord, ApiError> {
        audit.case_id = Some(new.case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, new.id, audit.at).await?
        {
            return Self::replayed(tx, agency, existing, audit).await;
        }
        Self::lock_time(
            &mut tx,
            agency,
            new.case_id,
            std::slice::from_ref(&new.frame.supervisor),
        )
        .await?;
        let plan = Self::plan_for(&mut tx, agency, new.case_id, new.parent_id)
            .await?
            .ok_or_else(|| {
                ApiError::precondition(
                    "NO_PLAN",
                    format!("cases/{}/parents/{}", new.case_id, new.parent_id),
                    "the parent has no visitation plan yet; it comes with the first computed scope",
                )
            })?;
        let visit = new.on(&plan);
        check_against_plan(&visit, &plan, secret_address)?;
        Self::check_free(&mut tx, &visit).await?;
        Self::insert_visit(&mut tx, &visit).await?;
        audit.resource_ids = vec![visit.id];
        let events = vec![scheduled(&visit)];
        self.commit_change(tx, agency, visit.case_id, &audit, events)
            .await?;
        Ok(visit)
    }

    async fn replay_visit(
        &self,
        agency: &AgencyId,
        idem: &Idempotency,
        audit: AuditEntry,
    ) -> Result<Option<VisitRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let Some(existing) = idempotency::claimed::<DB>(&mut conn, agency.as_str(), idem).await?
        else {
            return Ok(None);
        };
        drop(conn);
        let tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        Self::replayed(tx, agency, existing, audit).await.map(Some)
    }

    async fn get_visit(
        &self,
        agency: &AgencyId,
        id: Uuid,
    ) -> Result<Option<VisitRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        Self::load_visit(&mut conn, agency, id, false).await
    }

    async fn list_visits(
        &self,
        agency: &AgencyId,
        f: &VisitFilter,
        after: Option<VisitCursor>,
        n: usize,
    ) -> Result<Vec<VisitRecord>, ApiError> {
        let rows: Vec<VisitRow> = sqlx::query_as(LIST_VISITS)
            .bind(agency.as_str().to_owned())
            .bind(f.case_id)
            .bind(f.parent_id)
            .bind(f.participant_id)
            .bind(f.supervisor.clone())
            .bind(f.start_after)
            .bind(f.start_before)
            .bind(f.status.map(|s| s.as_str().to_owned()))
            .bind(after.map(|(start, _)| start))
            .bind(after.map(|(_, id)| id))
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(VisitRow::into_record).collect()
    }

    async fn change_visit(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: VisitChange,
        mut audit: AuditEntry,
    ) -> Result<VisitRecord, ApiError> {
        audit.resource_ids = vec![id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // The child's turn before any row lock, as every booking takes them; supervisors after.
        let seen = Self::load_visit(&mut tx, agency, id, false)
            .await?
            .ok_or_else(|| not_found("visit"))?;
        audit.case_id = Some(seen.case_id);
        if seen.version != expected_version {
            return Err(ApiError::StaleEtag { resource: "visit" });
        }
        Self::lock_time(&mut tx, agency, seen.case_id, &[]).await?;
        let mut visit = Self::load_visit(&mut tx, agency, id, true)
            .await?
            .ok_or_else(|| not_found("visit"))?;
        if visit.version != expected_version {
            return Err(ApiError::StaleEtag { resource: "visit" });
        }
        // Locked, so an adjustment cannot change the plan under a change checked against it.
        let plan = Self::load_plan(&mut tx, agency, visit.plan_id, true)
            .await?
            .ok_or_else(|| ApiError::internal("a visit's plan could not be read"))?;
        let before = visit.frame.supervisor.clone();
        let events = change(&mut visit, &plan)?;
        if visit.status.is_active() {
            Self::lock_supervisors(&mut tx, agency, &[before, visit.frame.supervisor.clone()])
                .await?;
            Self::check_free(&mut tx, &visit).await?;
        }
        visit.version += 1;
        visit.updated_at = audit.at;
        Self::update_visit(&mut tx, &visit).await?;
        self.commit_change(tx, agency, visit.case_id, &audit, events)
            .await?;
        Ok(visit)
    }

    async fn busy(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, ApiError> {
        let rows: Vec<VisitRow> = sqlx::query_as(BUSY)
            .bind(agency.as_str().to_owned())
            .bind(case_id)
            .bind(to)
            .bind(from)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.starts_at, r.ends_at)).collect())
    }
}

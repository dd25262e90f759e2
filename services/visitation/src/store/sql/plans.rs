//! [`PlanStore`]: visitation plans and their scope versions.

use super::{SqlVisitationStore, limit, not_found};
use crate::model::plans::{self, Applied, NewComputed};
use crate::model::{Adjustment, CaseVisitation, PlanRecord, ScopeSource, ScopeVersionRecord};
use crate::store::rows::{Doc, PlanRow, ScopeVersionRow, VisitRow, plan_columns, visit_columns};
use crate::store::{PlanChange, PlanStore};
use chrono::{DateTime, NaiveDateTime, Utc};
use landsby_domain::AgencyId;
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::db::{Dialect, lock, placeholders};
use landsby_platform::idempotency::ClaimRow;
use landsby_platform::outbox;
use landsby_proto::visitation::{self as pb, visitation_event::Change as EventChange};
use sqlx::{AssertSqlSafe, Encode, Executor, FromRow, IntoArguments, Type};
use std::collections::HashMap;
use uuid::Uuid;

const LIST_PLANS: &str = concat!(
    "SELECT ",
    plan_columns!(),
    " FROM plans WHERE agency = $1 AND case_id = $2 AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
);
/// Followed by one placeholder per case (from `$2`) and `)`.
const PLANS_OF_CASES: &str = concat!(
    "SELECT ",
    plan_columns!(),
    " FROM plans WHERE agency = $1 AND case_id IN ("
);
/// Followed by one placeholder per case (from `$4`), then [`VISITS_OF_CASES_END`]: the first `$3`
/// visits of each case from `$2` on.
const VISITS_OF_CASES: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM (SELECT v.*, ROW_NUMBER() OVER (PARTITION BY v.case_id ORDER BY v.starts_at, v.id) AS nth \
     FROM visits v WHERE v.agency = $1 AND v.starts_at >= $2 AND v.case_id IN ("
);
const VISITS_OF_CASES_END: &str = ")) f WHERE f.nth <= $3 ORDER BY f.case_id, f.starts_at, f.id";
const LIST_VERSIONS: &str = "SELECT plan_id, version, scope, source, changed_by, rationale, \
    computed_from, created_at FROM scope_versions WHERE plan_id = $1 AND ($2 IS NULL OR version < $2) \
    ORDER BY version DESC LIMIT $3";

fn plan_changed(plan: &PlanRecord, source: ScopeSource, dropped: &[Adjustment]) -> EventChange {
    EventChange::PlanChanged(pb::PlanChanged {
        plan_id: plan.id.to_string(),
        parent_id: plan.parent_id.to_string(),
        scope_version: plan.scope_version,
        source: match source {
            ScopeSource::Computed => pb::ScopeSource::Computed,
            ScopeSource::Adjusted => pb::ScopeSource::Adjusted,
        }
        .into(),
        dropped_adjustments: dropped
            .iter()
            .map(|a| a.manual.field().to_owned())
            .collect(),
    })
}

#[async_trait::async_trait]
impl<DB> PlanStore for SqlVisitationStore<DB>
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
    async fn apply_computed(
        &self,
        agency: &AgencyId,
        news: Vec<NewComputed>,
        audit: AuditEntry,
    ) -> Result<Vec<Applied>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // Locked in (case, parent) order, so two batches never wait on each other in a circle.
        let mut news: Vec<(usize, NewComputed)> = news.into_iter().enumerate().collect();
        news.sort_by_key(|(_, n)| (n.case_id, n.parent_id));
        let mut out: Vec<Option<Applied>> = vec![None; news.len()];
        let mut audits = Vec::with_capacity(news.len());
        let mut events = Vec::new();
        for (index, new) in news {
            // Two first scopes for one parent must not both create a plan.
            lock::<DB>(
                &mut tx,
                "plans",
                &format!("{}/{}", new.case_id, new.parent_id),
            )
            .await?;
            let existing = Self::plan_for(&mut tx, agency, new.case_id, new.parent_id).await?;
            let created = existing.is_none();
            let applied = plans::apply_computed(existing, new, agency, audit.at)?;
            let row = AuditEntry {
                case_id: Some(applied.plan.case_id),
                resource_ids: vec![applied.plan.id],
                ..audit.clone()
            };
            if applied.applied && !applied.changed {
                Self::update_plan(&mut tx, &applied.plan).await?;
            } else if applied.applied {
                if created {
                    Self::insert_plan(&mut tx, &applied.plan).await?;
                } else {
                    Self::update_plan(&mut tx, &applied.plan).await?;
                }
                let version =
                    applied
                        .plan
                        .current_version(ScopeSource::Computed, &audit.subject, "");
                Self::insert_version(&mut tx, &version).await?;
                let change = plan_changed(&applied.plan, ScopeSource::Computed, &applied.dropped);
                events.push(Self::event(agency, applied.plan.case_id, &row, change));
            }
            audits.push(row);
            out[index] = Some(applied);
        }
        outbox::commit::<DB>(tx, &audits, events, &self.feed).await?;
        Ok(out.into_iter().flatten().collect())
    }

    async fn get_plan(&self, agency: &AgencyId, id: Uuid) -> Result<Option<PlanRecord>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        Self::load_plan(&mut conn, agency, id, false).await
    }

    async fn list_plans(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        after: Option<Uuid>,
        n: usize,
    ) -> Result<Vec<PlanRecord>, ApiError> {
        let rows: Vec<PlanRow> = sqlx::query_as(LIST_PLANS)
            .bind(agency.as_str().to_owned())
            .bind(case_id)
            .bind(after)
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(PlanRow::into_record).collect()
    }

    async fn case_visitation(
        &self,
        agency: &AgencyId,
        ids: &[Uuid],
        visits_since: DateTime<Utc>,
    ) -> Result<Vec<CaseVisitation>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        let sql = format!(
            "{PLANS_OF_CASES}{}) ORDER BY case_id, id",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(agency.as_str().to_owned());
        for id in ids {
            query = query.bind(*id);
        }
        let plans: Vec<PlanRow> = query
            .try_map(|row| PlanRow::from_row(&row))
            .fetch_all(&mut *tx)
            .await?;
        // One row past the most answered per case tells there are more.
        let sql = format!(
            "{VISITS_OF_CASES}{}{VISITS_OF_CASES_END}",
            placeholders(4, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(agency.as_str().to_owned())
            .bind(visits_since)
            .bind(i64::try_from(CaseVisitation::MAX_VISITS + 1).unwrap_or(i64::MAX));
        for id in ids {
            query = query.bind(*id);
        }
        let visits: Vec<VisitRow> = query
            .try_map(|row| VisitRow::from_row(&row))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut by_case: HashMap<Uuid, CaseVisitation> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    CaseVisitation {
                        case_id: *id,
                        plans: Vec::new(),
                        visits: Vec::new(),
                        more_visits: false,
                    },
                )
            })
            .collect();
        for row in plans {
            let plan = row.into_record()?;
            if let Some(c) = by_case.get_mut(&plan.case_id) {
                c.plans.push(plan);
            }
        }
        for row in visits {
            let visit = row.into_record()?;
            if let Some(c) = by_case.get_mut(&visit.case_id) {
                if c.visits.len() < CaseVisitation::MAX_VISITS {
                    c.visits.push(visit);
                } else {
                    c.more_visits = true;
                }
            }
        }
        Ok(ids.iter().filter_map(|id| by_case.remove(id)).collect())
    }

    async fn list_scope_versions(
        &self,
        agency: &AgencyId,
        plan_id: Uuid,
        before: Option<i64>,
        n: usize,
    ) -> Result<Option<(PlanRecord, Vec<ScopeVersionRecord>)>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        let Some(plan) = Self::load_plan(&mut tx, agency, plan_id, false).await? else {
            return Ok(None);
        };
        let rows: Vec<ScopeVersionRow> = sqlx::query_as(LIST_VERSIONS)
            .bind(plan_id)
            .bind(before)
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let versions = rows
            .into_iter()
            .map(ScopeVersionRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((plan, versions)))
    }

    async fn adjust_plan(
        &self,
        agency: &AgencyId,
        id: Uuid,
        expected_version: i64,
        change: PlanChange,
        mut audit: AuditEntry,
    ) -> Result<PlanRecord, ApiError> {
        audit.resource_ids = vec![id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut plan = Self::load_plan(&mut tx, agency, id, true)
            .await?
            .ok_or_else(|| not_found("visitation plan"))?;
        audit.case_id = Some(plan.case_id);
        if plan.version != expected_version {
            return Err(ApiError::StaleEtag {
                resource: "visitation plan",
            });
        }
        change(&mut plan)?;
        Self::update_plan(&mut tx, &plan).await?;
        let rationale = plan
            .adjustments
            .last()
            .map(|a| a.rationale.clone())
            .unwrap_or_default();
        let version = plan.current_version(ScopeSource::Adjusted, &audit.subject, &rationale);
        Self::insert_version(&mut tx, &version).await?;
        let events = vec![plan_changed(&plan, ScopeSource::Adjusted, &[])];
        self.commit_change(tx, agency, plan.case_id, &audit, events)
            .await?;
        Ok(plan)
    }
}

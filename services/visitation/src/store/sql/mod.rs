//! The store in SQL that PostgreSQL and SQLite both run, written once and generic over the database.
//! What differs between them is in [`Dialect`] and in the migration folders. This module holds what
//! both topics share: reading and writing plans and visits, the double-booking checks, and ending a
//! change with its events and audit row. The trait implementations are in `plans.rs` and `visits.rs`.
//!
//! Every `impl` here repeats one list of bounds: Rust does not carry a trait's where-clauses to the
//! places that use it, so the list cannot be named once. Keep the lists in step.
//!
//! Writers that book time take turns per child and per supervisor (`db::lock`, always the child's
//! case first, then supervisors in order), so two schedulers racing for one slot cannot both win.

mod plans;
mod visits;

use super::rows::{Doc, PlanRow, ScopeVersionRow, VisitRow, doc, plan_columns, visit_columns};
use crate::model::{PlanRecord, ScopeVersionRecord, VisitRecord};
use chrono::{DateTime, NaiveDateTime, Utc};
use landsby_domain::AgencyId;
use landsby_platform::ApiError;
use landsby_platform::audit::{self, AuditEntry};
use landsby_platform::db::{Dialect, lock};
use landsby_platform::idempotency::ClaimRow;
use landsby_platform::outbox::{self, Feed};
use landsby_platform::validate::timestamp_to_proto;
use landsby_proto::visitation::{self as pb, visitation_event::Change as EventChange};
use prost::Message;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use uuid::Uuid;

/// The store over a pool of either database.
pub struct SqlVisitationStore<DB: Database> {
    pool: Pool<DB>,
    /// Woken after a change's events commit.
    feed: Feed,
}

impl<DB: Database> SqlVisitationStore<DB> {
    /// A store over `pool`, which must have been migrated, whose commits wake `feed`.
    pub fn new(pool: Pool<DB>, feed: Feed) -> Self {
        Self { pool, feed }
    }
}

/// By its id alone: the caller compares the agency. With `agency = $1` in the statement too,
/// PostgreSQL may plan it, on tables it has no statistics of yet, over an index that leads with the
/// agency, and keep that plan: every read would walk the agency's rows (the test below).
const SELECT_PLAN: &str = concat!("SELECT ", plan_columns!(), " FROM plans WHERE id = $1");
const SELECT_PLAN_FOR: &str = concat!(
    "SELECT ",
    plan_columns!(),
    " FROM plans WHERE agency = $1 AND case_id = $2 AND parent_id = $3"
);
const INSERT_PLAN: &str = concat!(
    "INSERT INTO plans (",
    plan_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
const UPDATE_PLAN: &str = "UPDATE plans SET computed = $2, computed_from = $3, adjustments = $4, \
    scope = $5, scope_version = $6, floor = $7, secret_address = $8, version = $9, updated_at = $10 \
    WHERE id = $1";
const INSERT_VERSION: &str = "INSERT INTO scope_versions \
    (plan_id, version, scope, source, changed_by, rationale, computed_from, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// By its id alone, the agency compared after (see [`SELECT_PLAN`]).
const SELECT_VISIT: &str = concat!("SELECT ", visit_columns!(), " FROM visits WHERE id = $1");
const INSERT_VISIT: &str = concat!(
    "INSERT INTO visits (",
    visit_columns!(),
    ", supervisor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
     $17, $18, $19)"
);
const UPDATE_VISIT: &str = "UPDATE visits SET starts_at = $2, ends_at = $3, local_start = $4, \
    duration_minutes = $5, status = $6, supervision = $7, frame = $8, cancellation = $9, \
    report = $10, no_show = $11, version = $12, updated_at = $13, supervisor = $14 WHERE id = $1";
const DELETE_PARTICIPANTS: &str = "DELETE FROM visit_participants WHERE visit_id = $1";
const INSERT_PARTICIPANT: &str =
    "INSERT INTO visit_participants (visit_id, member_id) VALUES ($1, $2)";
/// Another visit of the child that still holds time overlapping [$3, $2).
const CHILD_CLASH: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM visits WHERE case_id = $1 AND status IN ('scheduled', 'confirmed') \
     AND starts_at < $2 AND ends_at > $3 AND id <> $4 ORDER BY starts_at LIMIT 1"
);
/// Another visit the supervisor supervises that still holds time overlapping [$4, $3).
const SUPERVISOR_CLASH: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM visits WHERE agency = $1 AND supervisor = $2 AND status IN ('scheduled', 'confirmed') \
     AND starts_at < $3 AND ends_at > $4 AND id <> $5 ORDER BY starts_at LIMIT 1"
);

type Q<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

fn not_found(resource: &'static str) -> ApiError {
    ApiError::NotFound { resource }
}

/// The kind of an event, as stored beside it for operators.
fn event_kind(change: &EventChange) -> &'static str {
    match change {
        EventChange::PlanChanged(_) => "plan_changed",
        EventChange::VisitScheduled(_) => "visit_scheduled",
        EventChange::VisitRescheduled(_) => "visit_rescheduled",
        EventChange::VisitUpdated(_) => "visit_updated",
        EventChange::VisitConfirmed(_) => "visit_confirmed",
        EventChange::VisitCancelled(_) => "visit_cancelled",
        EventChange::VisitCompleted(_) => "visit_completed",
        EventChange::VisitNoShow(_) => "visit_no_show",
    }
}

/// A limit as both databases bind it.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<DB> SqlVisitationStore<DB>
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
    async fn load_plan(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
        for_update: bool,
    ) -> Result<Option<PlanRecord>, ApiError> {
        let sql = if for_update {
            sqlx::AssertSqlSafe(format!("{SELECT_PLAN}{}", DB::FOR_UPDATE))
        } else {
            sqlx::AssertSqlSafe(SELECT_PLAN.to_owned())
        };
        let row: Option<PlanRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.filter(|r| r.agency == agency.as_str())
            .map(PlanRow::into_record)
            .transpose()
    }

    /// The plan of one parent in a case, locked for the transaction.
    async fn plan_for(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        case_id: Uuid,
        parent_id: Uuid,
    ) -> Result<Option<PlanRecord>, ApiError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_PLAN_FOR}{}", DB::FOR_UPDATE));
        let row: Option<PlanRow> = sqlx::query_as(sql)
            .bind(agency.as_str().to_owned())
            .bind(case_id)
            .bind(parent_id)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(PlanRow::into_record).transpose()
    }

    async fn insert_plan(conn: &mut DB::Connection, p: &PlanRecord) -> Result<(), ApiError> {
        sqlx::query(INSERT_PLAN)
            .bind(p.id)
            .bind(p.agency.as_str().to_owned())
            .bind(p.case_id)
            .bind(p.parent_id)
            .bind(doc(&p.computed)?)
            .bind(doc(&p.computed_from)?)
            .bind(doc(&p.adjustments)?)
            .bind(doc(&p.scope)?)
            .bind(p.scope_version)
            .bind(p.floor.as_ref().map(doc).transpose()?)
            .bind(p.secret_address)
            .bind(p.version)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn update_plan(conn: &mut DB::Connection, p: &PlanRecord) -> Result<(), ApiError> {
        sqlx::query(UPDATE_PLAN)
            .bind(p.id)
            .bind(doc(&p.computed)?)
            .bind(doc(&p.computed_from)?)
            .bind(doc(&p.adjustments)?)
            .bind(doc(&p.scope)?)
            .bind(p.scope_version)
            .bind(p.floor.as_ref().map(doc).transpose()?)
            .bind(p.secret_address)
            .bind(p.version)
            .bind(p.updated_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn insert_version(
        conn: &mut DB::Connection,
        v: &ScopeVersionRecord,
    ) -> Result<(), ApiError> {
        sqlx::query(INSERT_VERSION)
            .bind(v.plan_id)
            .bind(v.version)
            .bind(doc(&v.scope)?)
            .bind(v.source.as_str().to_owned())
            .bind(v.changed_by.clone())
            .bind(v.rationale.clone())
            .bind(doc(&v.computed_from)?)
            .bind(v.created_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Answers a retried ScheduleVisit with the visit its request id made, recording the answer.
    async fn replayed(
        mut tx: sqlx::Transaction<'static, DB>,
        agency: &AgencyId,
        id: Uuid,
        mut audit: AuditEntry,
    ) -> Result<VisitRecord, ApiError> {
        let first = Self::load_visit(&mut tx, agency, id, false)
            .await?
            .ok_or_else(|| ApiError::internal("a replayed visit could not be read"))?;
        audit.case_id = Some(first.case_id);
        audit.resource_ids = vec![first.id];
        audit::append(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(first)
    }

    async fn load_visit(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        id: Uuid,
        for_update: bool,
    ) -> Result<Option<VisitRecord>, ApiError> {
        let sql = if for_update {
            sqlx::AssertSqlSafe(format!("{SELECT_VISIT}{}", DB::FOR_UPDATE))
        } else {
            sqlx::AssertSqlSafe(SELECT_VISIT.to_owned())
        };
        let row: Option<VisitRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.filter(|r| r.agency == agency.as_str())
            .map(VisitRow::into_record)
            .transpose()
    }

    fn bind_visit<'q>(q: Q<'q, DB>, v: &VisitRecord) -> Result<Q<'q, DB>, ApiError> {
        Ok(q.bind(v.start)
            .bind(v.end)
            .bind(v.local_start)
            .bind(i64::from(v.duration_minutes))
            .bind(v.status.as_str().to_owned())
            .bind(v.supervision.as_str().to_owned())
            .bind(doc(&v.frame)?)
            .bind(v.cancellation.as_ref().map(doc).transpose()?)
            .bind(v.report.as_ref().map(doc).transpose()?)
            .bind(v.no_show.as_ref().map(doc).transpose()?)
            .bind(v.version)
            .bind(v.created_at)
            .bind(v.updated_at)
            .bind(v.frame.supervisor.clone()))
    }

    async fn insert_visit(conn: &mut DB::Connection, v: &VisitRecord) -> Result<(), ApiError> {
        let q = sqlx::query(INSERT_VISIT)
            .bind(v.id)
            .bind(v.agency.as_str().to_owned())
            .bind(v.case_id)
            .bind(v.parent_id)
            .bind(v.plan_id);
        Self::bind_visit(q, v)?.execute(&mut *conn).await?;
        Self::save_participants(conn, v).await
    }

    async fn update_visit(conn: &mut DB::Connection, v: &VisitRecord) -> Result<(), ApiError> {
        sqlx::query(UPDATE_VISIT)
            .bind(v.id)
            .bind(v.start)
            .bind(v.end)
            .bind(v.local_start)
            .bind(i64::from(v.duration_minutes))
            .bind(v.status.as_str().to_owned())
            .bind(v.supervision.as_str().to_owned())
            .bind(doc(&v.frame)?)
            .bind(v.cancellation.as_ref().map(doc).transpose()?)
            .bind(v.report.as_ref().map(doc).transpose()?)
            .bind(v.no_show.as_ref().map(doc).transpose()?)
            .bind(v.version)
            .bind(v.updated_at)
            .bind(v.frame.supervisor.clone())
            .execute(&mut *conn)
            .await?;
        sqlx::query(DELETE_PARTICIPANTS)
            .bind(v.id)
            .execute(&mut *conn)
            .await?;
        Self::save_participants(conn, v).await
    }

    async fn save_participants(conn: &mut DB::Connection, v: &VisitRecord) -> Result<(), ApiError> {
        for p in &v.frame.participants {
            sqlx::query(INSERT_PARTICIPANT)
                .bind(v.id)
                .bind(p.member_id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Takes the turns of the visit's child and supervisors, in that order. Take it before any row
    /// lock of the case's plans and visits.
    async fn lock_time(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        case_id: Uuid,
        supervisors: &[Option<String>],
    ) -> Result<(), ApiError> {
        lock::<DB>(conn, "visits-child", &case_id.to_string()).await?;
        Self::lock_supervisors(conn, agency, supervisors).await
    }

    /// Takes the turns of supervisors, in name order.
    async fn lock_supervisors(
        conn: &mut DB::Connection,
        agency: &AgencyId,
        supervisors: &[Option<String>],
    ) -> Result<(), ApiError> {
        let mut names: Vec<&String> = supervisors.iter().flatten().collect();
        names.sort();
        names.dedup();
        for name in names {
            lock::<DB>(conn, "visits-supervisor", &format!("{agency}/{name}")).await?;
        }
        Ok(())
    }

    /// Refuses a visit still to take place whose time another visit of the child, or of its
    /// supervisor, already holds.
    async fn check_free(conn: &mut DB::Connection, v: &VisitRecord) -> Result<(), ApiError> {
        if !v.status.is_active() {
            return Ok(());
        }
        let clash: Option<VisitRow> = sqlx::query_as(CHILD_CLASH)
            .bind(v.case_id)
            .bind(v.end)
            .bind(v.start)
            .bind(v.id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(other) = clash {
            return Err(ApiError::precondition(
                "CHILD_DOUBLE_BOOKED",
                format!("visits/{}", other.id),
                "the child has another visit at that time",
            ));
        }
        if let Some(supervisor) = &v.frame.supervisor {
            let clash: Option<VisitRow> = sqlx::query_as(SUPERVISOR_CLASH)
                .bind(v.agency.as_str().to_owned())
                .bind(supervisor.clone())
                .bind(v.end)
                .bind(v.start)
                .bind(v.id)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(other) = clash {
                return Err(ApiError::precondition(
                    "SUPERVISOR_DOUBLE_BOOKED",
                    format!("visits/{}", other.id),
                    "the supervisor has another visit at that time",
                ));
            }
        }
        Ok(())
    }

    /// An event of the agency's case, for the outbox.
    fn event<'a>(
        agency: &'a AgencyId,
        case_id: Uuid,
        audit: &AuditEntry,
        change: EventChange,
    ) -> outbox::Event<'a> {
        let event_id = Uuid::now_v7();
        let kind = event_kind(&change);
        let event = pb::VisitationEvent {
            sequence: 0,
            event_id: event_id.to_string(),
            case_id: case_id.to_string(),
            agency: agency.as_str().to_owned(),
            occur_time: Some(timestamp_to_proto(audit.at)),
            actor: audit.subject.clone(),
            // The trace of the call making the change, so its consumers continue it.
            traceparent: landsby_platform::telemetry::traceparent().unwrap_or_default(),
            change: Some(change),
        };
        outbox::Event {
            event_id,
            agency: agency.as_str(),
            case_id,
            at: audit.at,
            kind,
            payload: event.encode_to_vec(),
        }
    }

    /// Ends a change of a case's visitation with its audit row and events
    /// ([`outbox::commit`]).
    async fn commit_change(
        &self,
        tx: sqlx::Transaction<'static, DB>,
        agency: &AgencyId,
        case_id: Uuid,
        audit: &AuditEntry,
        events: Vec<EventChange>,
    ) -> Result<(), ApiError> {
        let events = events
            .into_iter()
            .map(|change| Self::event(agency, case_id, audit, change))
            .collect();
        outbox::commit::<DB>(tx, std::slice::from_ref(audit), events, &self.feed).await
    }
}

#[cfg(test)]
mod tests {
    use landsby_testkit::{assert_by_primary_key, cold_plan};

    /// A plan or a visit is read by its id through the primary key even before PostgreSQL has
    /// statistics: a plan over an index that leads with the agency would read all of the agency's.
    #[tokio::test]
    async fn reads_by_id_use_the_primary_key_on_a_cold_database() {
        for (sql, table) in [
            (super::SELECT_PLAN, "plans"),
            (super::SELECT_VISIT, "visits"),
        ] {
            assert_by_primary_key(&cold_plan(&crate::MIGRATIONS, sql).await, table);
        }
    }
}

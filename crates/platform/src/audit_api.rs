//! `landsby.audit.v1.AuditService`: every service serves its own audit log to the agency's auditors,
//! added by the server next to health and reflection. Reading the log is itself audited.

use crate::audit::Auditor;
use crate::audit_chain::ChainRow;
use crate::auth::Caller;
use crate::db::{DbPool, Dialect};
use crate::error::ApiError;
use crate::pagination::{PageTokens, page_size};
use crate::validate::{Violations, timestamp_to_proto};
use chrono::{DateTime, Utc};
use landsby_domain::Role;
use landsby_proto::audit::{self as pb, audit_service_server::AuditService};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};
use tonic::{Request, Response, Status};
use uuid::Uuid;

const AUDITOR: &[Role] = &[Role::Auditor];

crate::rpc_table! {
    "landsby.audit.v1.AuditService";
    ListAuditEvents => AUDITOR,
    ListCaseAccess => AUDITOR,
}

/// What a list asks for, validated.
#[derive(Debug, Clone, Default)]
struct Filter {
    case_id: Option<Uuid>,
    resource_id: Option<Uuid>,
    subject: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    break_glass_only: bool,
    /// Only rows with this outcome (the access log: `OK`).
    outcome: Option<&'static str>,
}

const SELECT: &str = "SELECT id, occurred_at, actor_subject, actor_agency, actor_roles, rpc, case_id, \
    resource_ids, outcome, break_glass FROM audit_log WHERE actor_agency = $1 \
    AND ($2 IS NULL OR case_id = $2) AND ($3 IS NULL OR actor_subject = $3) \
    AND ($4 IS NULL OR occurred_at >= $4) AND ($5 IS NULL OR occurred_at < $5) \
    AND ($6 = FALSE OR break_glass = TRUE) AND ($7 IS NULL OR outcome = $7) AND id > $8";

/// The audit service over one service's database.
#[derive(Debug)]
pub struct AuditApi {
    db: DbPool,
    auditor: Auditor,
    tokens: PageTokens,
}

impl AuditApi {
    /// The audit log of the service whose database is `db`.
    pub fn new(db: DbPool) -> Self {
        Self {
            auditor: Auditor::new(db.clone()),
            tokens: PageTokens::new(db.clone()),
            db,
        }
    }

    async fn rows(
        &self,
        agency: &str,
        f: &Filter,
        after: i64,
        n: usize,
    ) -> Result<Vec<ChainRow>, ApiError> {
        match &self.db {
            DbPool::Postgres(p) => rows_on(p, agency, f, after, n).await,
            DbPool::Sqlite(p) => rows_on(p, agency, f, after, n).await,
        }
    }

    /// One page (`page_size`, after `page_token`) of the rows the filter `check` reads from the
    /// request, the call audited as `rpc`.
    async fn page(
        &self,
        request: &Request<impl Send + Sync>,
        rpc: Rpc,
        (requested, token): (i32, &str),
        check: impl FnOnce(&mut Violations) -> Option<Filter>,
    ) -> Result<(Vec<pb::AuditEvent>, String), Status> {
        let (caller, mut call) = self
            .auditor
            .begin(request, rpc.method(), rpc.allowed())
            .await?;
        let result = async {
            let mut v = Violations::new();
            let limit = page_size(&mut v, "page_size", requested);
            let filter = check(&mut v);
            v.finish()?;
            let (Some(limit), Some(filter)) = (limit, filter) else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            call.audit.case_id = filter.case_id;
            self.list(&caller, rpc, &filter, token, limit).await
        }
        .await;
        self.auditor
            .read(call, result.map(|page| (page, Vec::new())))
            .await
    }

    async fn list(
        &self,
        caller: &Caller,
        rpc: Rpc,
        filter: &Filter,
        token: &str,
        limit: usize,
    ) -> Result<(Vec<pb::AuditEvent>, String), ApiError> {
        let scope = format!("{}|{}|{filter:?}", rpc.name(), caller.agency);
        let after = self
            .tokens
            .decode::<i64>(token, &scope, "page_token")
            .await?
            .unwrap_or(i64::MIN);
        let rows = self
            .rows(caller.agency.as_str(), filter, after, limit + 1)
            .await?;
        let (rows, next) = self.tokens.page(rows, limit, &scope, |r| r.id).await?;
        Ok((rows.iter().map(event).collect(), next))
    }
}

async fn rows_on<DB>(
    pool: &Pool<DB>,
    agency: &str,
    f: &Filter,
    after: i64,
    n: usize,
) -> Result<Vec<ChainRow>, ApiError>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> ChainRow: FromRow<'r, DB::Row>,
{
    let mut sql = SELECT.to_owned();
    if f.resource_id.is_some() {
        sql.push_str(" AND ");
        sql.push_str(DB::JSON_ARRAY_HAS_10);
    }
    sql.push_str(" ORDER BY id LIMIT $9");
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(agency.to_owned())
        .bind(f.case_id)
        .bind(f.subject.clone())
        .bind(f.start)
        .bind(f.end)
        .bind(f.break_glass_only)
        .bind(f.outcome.map(str::to_owned))
        .bind(after)
        .bind(i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(resource) = f.resource_id {
        query = query.bind(resource.to_string());
    }
    Ok(query.fetch_all(pool).await?)
}

fn event(r: &ChainRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: r.id,
        occur_time: Some(timestamp_to_proto(r.occurred_at)),
        subject: r.actor_subject.clone(),
        agency: r.actor_agency.clone(),
        roles: r
            .actor_roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        rpc: r.rpc.clone(),
        case_id: r.case_id.map(|c| c.to_string()).unwrap_or_default(),
        resource_ids: r.resource_ids.0.iter().map(Uuid::to_string).collect(),
        outcome: r.outcome.clone(),
        break_glass: r.break_glass,
    }
}

fn optional_instant(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<Option<DateTime<Utc>>> {
    match t {
        None => Some(None),
        Some(t) => v.timestamp(field, Some(t)).map(Some),
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let req = request.get_ref().clone();
        let (events, next_page_token) = self
            .page(
                &request,
                Rpc::ListAuditEvents,
                (req.page_size, &req.page_token),
                |v| {
                    let case_id = v.optional_uuid("case_id", &req.case_id);
                    let resource_id = v.optional_uuid("resource_id", &req.resource_id);
                    let subject = v.optional_text("subject", &req.subject, 256);
                    let start = optional_instant(v, "start_time", req.start_time.as_ref());
                    let end = optional_instant(v, "end_time", req.end_time.as_ref());
                    if let (Some(Some(s)), Some(Some(e))) = (start, end)
                        && e <= s
                    {
                        v.add("end_time", "must be after start_time");
                    }
                    Some(Filter {
                        case_id: case_id?,
                        resource_id: resource_id?,
                        subject: Some(subject?).filter(|s| !s.is_empty()),
                        start: start?,
                        end: end?,
                        break_glass_only: req.break_glass_only,
                        outcome: None,
                    })
                },
            )
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn list_case_access(
        &self,
        request: Request<pb::ListCaseAccessRequest>,
    ) -> Result<Response<pb::ListCaseAccessResponse>, Status> {
        let req = request.get_ref().clone();
        let (events, next_page_token) = self
            .page(
                &request,
                Rpc::ListCaseAccess,
                (req.page_size, &req.page_token),
                |v| {
                    let case_id = v.uuid("case_id", &req.case_id);
                    Some(Filter {
                        case_id: Some(case_id?),
                        outcome: Some("OK"),
                        ..Filter::default()
                    })
                },
            )
            .await?;
        Ok(Response::new(pb::ListCaseAccessResponse {
            events,
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_a_row_with_roles_and_docs_carry_the_table() {
        assert_eq!(Rpc::check("audit"), Ok(()));
    }
}

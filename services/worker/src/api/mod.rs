//! The worker's admin API (`landsby.worker.v1.WorkerAdminService`): the agency's jobs by status, a
//! dead job run again, and the review sweeps. Every call is audited; jobs and sweeps of another
//! agency do not exist here.

mod authz;

pub use authz::Rpc;

use crate::Ctx;
use crate::error::JobError;
use crate::queue::{JobRow, StatusFilter};
use crate::store::SweepRecord;
use chrono::{DateTime, Utc};
use landsby_platform::ApiError;
use landsby_platform::Caller;
use landsby_platform::audit::{Auditor, Call};
use landsby_platform::pagination::{PageTokens, page_size};
use landsby_platform::validate::{Violations, timestamp_to_proto};
use landsby_proto::worker::{self as pb, worker_admin_service_server::WorkerAdminService};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The admin API.
pub struct AdminApi {
    ctx: Arc<Ctx>,
    tokens: PageTokens,
    auditor: Auditor,
}

impl AdminApi {
    /// The API over the worker's shared parts.
    pub fn new(ctx: Arc<Ctx>, tokens: PageTokens, auditor: Auditor) -> Self {
        Self {
            ctx,
            tokens,
            auditor,
        }
    }

    async fn begin<T>(&self, request: &Request<T>, rpc: Rpc) -> Result<(Caller, Call), Status> {
        self.auditor
            .begin(request, rpc.method(), rpc.allowed())
            .await
    }
}

/// A job error as the admin API answers it: the worker's database away is UNAVAILABLE.
fn api_error(e: JobError) -> ApiError {
    match e {
        JobError::Retry(_) => ApiError::Unavailable {
            reason: "the worker's database is unavailable; retry later",
        },
        JobError::Permanent(reason)
        | JobError::Gone(reason)
        | JobError::KeyUsed(reason)
        | JobError::CaseClosed(reason) => ApiError::internal(reason),
    }
}

fn timestamp(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(timestamp_to_proto)
}

fn status_of(row: &JobRow) -> pb::JobStatus {
    match row.status.as_str() {
        "Pending" => pb::JobStatus::Pending,
        "Queued" | "Running" => pb::JobStatus::Running,
        "Done" => pb::JobStatus::Done,
        "Failed" if row.attempts < row.max_attempts => pb::JobStatus::Failed,
        "Failed" | "Killed" => pb::JobStatus::Dead,
        _ => pb::JobStatus::Unspecified,
    }
}

/// The last result as apalis stored it (`{"Err": "..."}` or `{"Ok": ...}`): the error's text only.
fn last_error(row: &JobRow) -> String {
    let Some(raw) = &row.last_result else {
        return String::new();
    };
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => map
            .get("Err")
            .map(|e| match e {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn job_to(row: &JobRow) -> pb::Job {
    let job = row.job.as_ref();
    pb::Job {
        id: row.id.clone(),
        kind: job.map_or("unknown", |j| j.kind()).to_owned(),
        status: status_of(row) as i32,
        case_id: job
            .and_then(|j| j.case_id())
            .map(|id| id.to_string())
            .unwrap_or_default(),
        sweep_id: job
            .and_then(|j| j.sweep_id())
            .map(|id| id.to_string())
            .unwrap_or_default(),
        attempts: i32::try_from(row.attempts).unwrap_or(i32::MAX),
        max_attempts: i32::try_from(row.max_attempts).unwrap_or(i32::MAX),
        run_time: timestamp(row.run_at),
        done_time: timestamp(row.done_at),
        last_error: last_error(row).chars().take(500).collect(),
    }
}

fn sweep_to(s: &SweepRecord) -> pb::Sweep {
    pb::Sweep {
        id: s.id.to_string(),
        trigger: s.trigger.clone(),
        day: s.day.to_string(),
        state: if s.finished_at.is_some() {
            pb::SweepState::Done
        } else {
            pb::SweepState::Running
        } as i32,
        cases_total: s.cases_total,
        cases_done: s.counts.cases_done,
        cases_failed: s.counts.cases_failed,
        batches_total: s.batches_total,
        batches_done: s.batches_done,
        review_reminders: s.counts.review_reminders,
        escalations: s.counts.escalations,
        visit_reminders: s.counts.visit_reminders,
        follow_up_flags: s.counts.follow_up_flags,
        start_time: Some(timestamp_to_proto(s.started_at)),
        finish_time: timestamp(s.finished_at),
    }
}

fn filter(v: &mut Violations, raw: i32) -> Option<StatusFilter> {
    match pb::JobStatus::try_from(raw) {
        Ok(pb::JobStatus::Unspecified) => Some(StatusFilter::Any),
        Ok(pb::JobStatus::Pending) => Some(StatusFilter::Pending),
        Ok(pb::JobStatus::Running) => Some(StatusFilter::Running),
        Ok(pb::JobStatus::Done) => Some(StatusFilter::Done),
        Ok(pb::JobStatus::Failed) => Some(StatusFilter::Failed),
        Ok(pb::JobStatus::Dead) => Some(StatusFilter::Dead),
        Err(_) => {
            v.add("status", "must be a JobStatus value");
            None
        }
    }
}

/// A job id: a ULID (26 characters of Crockford base 32).
fn job_id(v: &mut Violations, raw: &str) -> Option<String> {
    let ok = raw.len() == 26
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c)));
    if ok {
        Some(raw.to_owned())
    } else if raw.is_empty() {
        v.add("job_id", "is required");
        None
    } else {
        v.add("job_id", "must be a job id (a ULID)");
        None
    }
}

#[tonic::async_trait]
impl WorkerAdminService for AdminApi {
    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::ListJobs).await?;
        let req = request.into_inner();
        let agency = caller.agency.as_str().to_owned();
        let result = async {
            let mut v = Violations::new();
            let status = filter(&mut v, req.status);
            let size = page_size(&mut v, "page_size", req.page_size);
            v.finish()?;
            let (Some(status), Some(size)) = (status, size) else {
                return Err(ApiError::internal("validated request without its parts"));
            };
            let scope = format!("jobs|{agency}|{}", req.status);
            let before: Option<String> = self
                .tokens
                .decode(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .ctx
                .queue
                .list(
                    &agency,
                    status,
                    before.as_deref(),
                    u32::try_from(size + 1).unwrap_or(u32::MAX),
                )
                .await
                .map_err(api_error)?;
            let (rows, next) = self
                .tokens
                .page(rows, size, &scope, |r: &JobRow| r.id.clone())
                .await?;
            let case_ids: Vec<Uuid> = rows
                .iter()
                .filter_map(|r| r.job.as_ref().and_then(|j| j.case_id()))
                .collect();
            Ok((
                pb::ListJobsResponse {
                    jobs: rows.iter().map(job_to).collect(),
                    next_page_token: next,
                },
                case_ids,
            ))
        }
        .await;
        Ok(Response::new(self.auditor.read(call, result).await?))
    }

    async fn retry_job(
        &self,
        request: Request<pb::RetryJobRequest>,
    ) -> Result<Response<pb::RetryJobResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::RetryJob).await?;
        let req = request.into_inner();
        let agency = caller.agency.as_str().to_owned();
        let result = async {
            let mut v = Violations::new();
            let id = job_id(&mut v, &req.job_id);
            v.finish()?;
            let Some(id) = id else {
                return Err(ApiError::internal("validated request without its parts"));
            };
            let queue = &self.ctx.queue;
            let Some(row) = queue.get(&agency, &id).await.map_err(api_error)? else {
                return Err(ApiError::NotFound { resource: "job" });
            };
            if !matches!(status_of(&row), pb::JobStatus::Dead | pb::JobStatus::Failed) {
                return Err(ApiError::precondition(
                    "JOB_NOT_DEAD",
                    "job_id",
                    "only a dead or failed job can be run again",
                ));
            }
            if !queue.retry(&agency, &id).await.map_err(api_error)? {
                return Err(ApiError::precondition(
                    "JOB_NOT_DEAD",
                    "job_id",
                    "the job changed meanwhile; read it again",
                ));
            }
            let row = queue
                .get(&agency, &id)
                .await
                .map_err(api_error)?
                .ok_or(ApiError::NotFound { resource: "job" })?;
            tracing::info!(job = %id, "dead job queued again by an administrator");
            let cases = row
                .job
                .as_ref()
                .and_then(|j| j.case_id())
                .into_iter()
                .collect();
            Ok((
                pb::RetryJobResponse {
                    job: Some(job_to(&row)),
                },
                cases,
            ))
        }
        .await;
        Ok(Response::new(self.auditor.read(call, result).await?))
    }

    async fn get_sweep_status(
        &self,
        request: Request<pb::GetSweepStatusRequest>,
    ) -> Result<Response<pb::GetSweepStatusResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::GetSweepStatus).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.optional_uuid("sweep_id", &req.sweep_id);
            v.finish()?;
            let Some(id) = id else {
                return Err(ApiError::internal("validated request without its parts"));
            };
            let sweep = self.ctx.store.sweep(caller.agency.as_str(), id).await?;
            if id.is_some() && sweep.is_none() {
                return Err(ApiError::NotFound { resource: "sweep" });
            }
            Ok((
                pb::GetSweepStatusResponse {
                    sweep: sweep.as_ref().map(sweep_to),
                },
                Vec::new(),
            ))
        }
        .await;
        Ok(Response::new(self.auditor.read(call, result).await?))
    }

    async fn trigger_sweep(
        &self,
        request: Request<pb::TriggerSweepRequest>,
    ) -> Result<Response<pb::TriggerSweepResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::TriggerSweep).await?;
        let result = async {
            let tick = format!("manual:{}", Uuid::now_v7());
            let (sweep, started) =
                crate::sweep::start(&self.ctx, caller.agency.as_str(), "manual", &tick)
                    .await
                    .map_err(api_error)?;
            if started {
                tracing::info!(sweep = %sweep.id, "review sweep started by an administrator");
            }
            Ok((
                pb::TriggerSweepResponse {
                    sweep: Some(sweep_to(&sweep)),
                    started,
                },
                Vec::new(),
            ))
        }
        .await;
        Ok(Response::new(self.auditor.read(call, result).await?))
    }
}

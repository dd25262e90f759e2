//! The gRPC API of the visitation service. Each handler: who is calling and may they (roles),
//! validate the request at the edge, read the case from the case service where a rule needs it, call
//! the store scoped to the caller's agency, answer. Every call leaves an audit row (see
//! `landsby_platform::audit`).

mod authz;
pub mod convert;
mod feed;
mod plans;
mod visits;

pub use authz::Rpc;

use crate::case_client::{CaseClient, CaseFacts};
use crate::store::Store;
use landsby_platform::audit::{Auditor, Call};
use landsby_platform::client::OnBehalf;
use landsby_platform::outbox::Feed;
use landsby_platform::pagination::PageTokens;
use landsby_platform::server::Shutdown;
use landsby_platform::validate::Violations;
use landsby_platform::{ApiError, Caller};
use landsby_proto::visitation::{self as pb, visitation_service_server::VisitationService};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The visitation service over a store.
pub struct VisitationApi {
    store: Arc<dyn Store>,
    tokens: PageTokens,
    auditor: Auditor,
    feed: Feed,
    case: CaseClient,
    shutdown: Shutdown,
}

impl VisitationApi {
    /// The API over `store`, with page tokens from `tokens`, audited by `auditor`, streaming events
    /// from `feed`, reading cases with `case`; its event streams end when `shutdown` is given.
    pub fn new(
        store: Arc<dyn Store>,
        tokens: PageTokens,
        auditor: Auditor,
        feed: Feed,
        case: CaseClient,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            store,
            tokens,
            auditor,
            feed,
            case,
            shutdown,
        }
    }

    /// The caller, allowed to make this call, and the call whose audit row records it.
    async fn begin<T>(&self, request: &Request<T>, rpc: Rpc) -> Result<(Caller, Call), Status> {
        self.auditor
            .begin(request, rpc.method(), rpc.allowed())
            .await
    }

    /// Need to know, decided where the assignments are: a staff caller touches a case's visitation
    /// only if the case service lets them open the case (asked on their behalf; it audits that read
    /// and flags emergency access). Otherwise `resource` is not found, as if it were not there. The
    /// worker acts for the whole agency and is not asked.
    async fn need_to_know(
        &self,
        caller: &Caller,
        on_behalf: &OnBehalf,
        case_id: Uuid,
        resource: &'static str,
    ) -> Result<(), ApiError> {
        self.case
            .access()
            .check(caller, on_behalf, case_id, resource)
            .await
    }

    /// The case as the case service has it now, for an open case only. Reading it is the need-to-know
    /// check too: a case the caller may not open is `resource` not found (the plan or visit the
    /// call names, as if it were not there).
    async fn open_case(
        &self,
        on_behalf: &OnBehalf,
        case_id: Uuid,
        resource: &'static str,
    ) -> Result<CaseFacts, ApiError> {
        let facts = match self.case.facts(on_behalf, case_id).await {
            Err(ApiError::NotFound { .. }) => return Err(ApiError::NotFound { resource }),
            other => other?,
        };
        if !facts.open {
            return Err(ApiError::precondition(
                "CASE_CLOSED",
                format!("cases/{case_id}"),
                "the case is closed: its visitation does not change",
            ));
        }
        Ok(facts)
    }
}

/// One required id.
fn id(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    let mut v = Violations::new();
    let id = v.uuid(field, raw);
    v.into_result(id)
}

#[tonic::async_trait]
impl VisitationService for VisitationApi {
    type WatchEventsStream = feed::EventStream;

    async fn get_visitation_plan(
        &self,
        request: Request<pb::GetVisitationPlanRequest>,
    ) -> Result<Response<pb::GetVisitationPlanResponse>, Status> {
        self.handle_get_plan(request).await
    }

    async fn list_visitation_plans(
        &self,
        request: Request<pb::ListVisitationPlansRequest>,
    ) -> Result<Response<pb::ListVisitationPlansResponse>, Status> {
        self.handle_list_plans(request).await
    }

    async fn list_scope_versions(
        &self,
        request: Request<pb::ListScopeVersionsRequest>,
    ) -> Result<Response<pb::ListScopeVersionsResponse>, Status> {
        self.handle_list_scope_versions(request).await
    }

    async fn batch_apply_computed_scopes(
        &self,
        request: Request<pb::BatchApplyComputedScopesRequest>,
    ) -> Result<Response<pb::BatchApplyComputedScopesResponse>, Status> {
        self.handle_batch_apply_computed_scopes(request).await
    }

    async fn adjust_visitation_plan(
        &self,
        request: Request<pb::AdjustVisitationPlanRequest>,
    ) -> Result<Response<pb::AdjustVisitationPlanResponse>, Status> {
        self.handle_adjust_plan(request).await
    }

    async fn propose_schedule(
        &self,
        request: Request<pb::ProposeScheduleRequest>,
    ) -> Result<Response<pb::ProposeScheduleResponse>, Status> {
        self.handle_propose_schedule(request).await
    }

    async fn schedule_visit(
        &self,
        request: Request<pb::ScheduleVisitRequest>,
    ) -> Result<Response<pb::ScheduleVisitResponse>, Status> {
        self.handle_schedule_visit(request).await
    }

    async fn get_visit(
        &self,
        request: Request<pb::GetVisitRequest>,
    ) -> Result<Response<pb::GetVisitResponse>, Status> {
        self.handle_get_visit(request).await
    }

    async fn list_visits(
        &self,
        request: Request<pb::ListVisitsRequest>,
    ) -> Result<Response<pb::ListVisitsResponse>, Status> {
        self.handle_list_visits(request).await
    }

    async fn update_visit(
        &self,
        request: Request<pb::UpdateVisitRequest>,
    ) -> Result<Response<pb::UpdateVisitResponse>, Status> {
        self.handle_update_visit(request).await
    }

    async fn confirm_visit(
        &self,
        request: Request<pb::ConfirmVisitRequest>,
    ) -> Result<Response<pb::ConfirmVisitResponse>, Status> {
        self.handle_confirm_visit(request).await
    }

    async fn cancel_visit(
        &self,
        request: Request<pb::CancelVisitRequest>,
    ) -> Result<Response<pb::CancelVisitResponse>, Status> {
        self.handle_cancel_visit(request).await
    }

    async fn complete_visit(
        &self,
        request: Request<pb::CompleteVisitRequest>,
    ) -> Result<Response<pb::CompleteVisitResponse>, Status> {
        self.handle_complete_visit(request).await
    }

    async fn record_no_show(
        &self,
        request: Request<pb::RecordNoShowRequest>,
    ) -> Result<Response<pb::RecordNoShowResponse>, Status> {
        self.handle_record_no_show(request).await
    }

    async fn batch_get_case_visitation(
        &self,
        request: Request<pb::BatchGetCaseVisitationRequest>,
    ) -> Result<Response<pb::BatchGetCaseVisitationResponse>, Status> {
        self.handle_batch_get_case_visitation(request).await
    }

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.handle_watch_events(request).await
    }
}

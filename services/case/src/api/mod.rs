//! The gRPC API of the case service. Each handler: who is calling and may they (roles), validate the
//! request at the edge, call the store scoped to the caller's agency, answer. Every call leaves an
//! audit row (see `landsby_platform::audit`): changes in their own transaction, reads and refusals
//! just before the answer, calls dropped unanswered when they are dropped.

mod authz;
pub(crate) mod convert;
mod feed;
mod masks;
mod plans;
mod reviews;

pub use authz::Rpc;

use crate::model::{self, CaseAccess, CaseFilter, Idempotency};
use crate::store::Store;
use landsby_domain::access;
use landsby_domain::time::oslo_date;
use landsby_domain::{Policy, Role};
use landsby_platform::audit::{AuditEntry, Auditor, Call};
use landsby_platform::outbox::Feed;
use landsby_platform::pagination::{PageTokens, page_size};
use landsby_platform::server::Shutdown;
use landsby_platform::validate::{Violations, known, request_id};
use landsby_platform::{ApiError, Caller};
use landsby_proto::case::{self as pb, case_service_server::CaseService};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The most village members GetCase's CASE_VIEW_WITH_VILLAGE returns (a village is a few dozen
/// people); a larger one is refused rather than cut short, since a rule checked against part of a
/// village could let a stranger in.
const MAX_VILLAGE: usize = 2000;

/// The case service over a store.
pub struct CaseApi {
    store: Arc<dyn Store>,
    tokens: PageTokens,
    auditor: Auditor,
    feed: Feed,
    policy: Arc<Policy>,
    shutdown: Shutdown,
    break_glass_ttl: std::time::Duration,
}

impl CaseApi {
    /// The API over `store`, with page tokens from `tokens`, audited by `auditor`, streaming events
    /// from `feed`, deciding by `policy`; its event streams end when `shutdown` is given; a grant
    /// of emergency access lasts `break_glass_ttl`.
    pub fn new(
        store: Arc<dyn Store>,
        tokens: PageTokens,
        auditor: Auditor,
        feed: Feed,
        policy: Arc<Policy>,
        shutdown: Shutdown,
        break_glass_ttl: std::time::Duration,
    ) -> Self {
        Self {
            store,
            tokens,
            auditor,
            feed,
            policy,
            shutdown,
            break_glass_ttl,
        }
    }

    /// Need to know: NOT_FOUND, as for a case that is not there, unless the caller may open case
    /// `id` (`landsby_domain::access`); a call under emergency access is flagged in its audit row.
    /// The worker acts for the whole agency (every store call is scoped to it) and is not asked.
    async fn need_to_know(
        &self,
        caller: &Caller,
        id: Uuid,
        audit: &mut AuditEntry,
    ) -> Result<(), ApiError> {
        if caller.has_any(&[landsby_domain::Role::Service]) {
            return Ok(());
        }
        let assignment = self
            .store
            .case_access(&caller.agency, id, &caller.subject, audit.at)
            .await?
            .ok_or(ApiError::NotFound { resource: "case" })?;
        may_open(caller, &assignment, audit)
    }

    /// The id in `raw` (a violation of `field` if it is not one), set as the audit row's case, and
    /// the caller's need to know checked.
    async fn case_id(
        &self,
        caller: &Caller,
        field: &str,
        raw: &str,
        audit: &mut AuditEntry,
    ) -> Result<Uuid, ApiError> {
        let id = case_id(field, raw, audit)?;
        self.need_to_know(caller, id, audit).await?;
        Ok(id)
    }

    /// The caller, allowed to make this call, and the call whose audit row records it.
    async fn begin<T>(&self, request: &Request<T>, rpc: Rpc) -> Result<(Caller, Call), Status> {
        self.auditor
            .begin(request, rpc.method(), rpc.allowed())
            .await
    }

    /// One page of a case's children (members, decisions, reviews, goals): checks the case id,
    /// the page size and the list's own `filters` together, reads the cursor from a page token
    /// bound to the list, the agency, the case and the filters, has `fetch` read one row more than
    /// the page after it (None: no such case), and signs the next page's token.
    #[allow(clippy::too_many_arguments)]
    async fn case_page<T, C, F: std::fmt::Debug>(
        &self,
        caller: &Caller,
        audit: &mut AuditEntry,
        page: CasePage<'_>,
        filters: impl FnOnce(&mut Violations) -> Option<F>,
        cursor: impl Fn(&T) -> C,
        fetch: impl AsyncFnOnce(Uuid, &F, Option<C>, usize) -> Result<Option<Vec<T>>, ApiError>,
    ) -> Result<(Vec<T>, String), ApiError>
    where
        C: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut v = Violations::new();
        let id = v.uuid("case_id", page.case_id);
        audit.case_id = id;
        if let Some(id) = id {
            self.need_to_know(caller, id, audit).await?;
        }
        let limit = page_size(&mut v, "page_size", page.page_size);
        let filters = filters(&mut v);
        v.finish()?;
        let (Some(id), Some(limit), Some(filters)) = (id, limit, filters) else {
            return Err(ApiError::internal("validated list without its parts"));
        };
        let scope = format!("{}|{}|{id}|{filters:?}", page.list, caller.agency);
        let after = self
            .tokens
            .decode::<C>(page.page_token, &scope, "page_token")
            .await?;
        let rows = fetch(id, &filters, after, limit + 1)
            .await?
            .ok_or(ApiError::NotFound { resource: "case" })?;
        self.tokens.page(rows, limit, &scope, cursor).await
    }
}

/// The paging fields of a list of a case's children.
struct CasePage<'a> {
    /// The list's name, binding its page tokens to it.
    list: &'static str,
    case_id: &'a str,
    page_size: i32,
    page_token: &'a str,
}

/// The cases a list shows the caller (need to know): the worker every case of the agency; a
/// caseworker their own; a team lead their teams'.
fn visibility(caller: &Caller) -> Option<model::Visibility> {
    if caller.has_any(&[Role::Service]) {
        return None;
    }
    Some(model::Visibility {
        caseworker: caller
            .has_any(&[Role::Caseworker])
            .then(|| caller.subject.clone()),
        teams: if caller.has_any(&[Role::TeamLead]) {
            caller.teams.clone()
        } else {
            Vec::new()
        },
    })
}

/// Need to know, decided on a case's assignment (see [`CaseApi::need_to_know`]).
fn may_open(
    caller: &Caller,
    assignment: &CaseAccess,
    audit: &mut AuditEntry,
) -> Result<(), ApiError> {
    if caller.has_any(&[landsby_domain::Role::Service]) {
        return Ok(());
    }
    let access = access::decide(caller.viewer(), assignment.assignment(), assignment.grant);
    if !access.allowed() {
        return Err(ApiError::NotFound { resource: "case" });
    }
    audit.break_glass = access.is_break_glass();
    Ok(())
}

fn case_id(field: &str, raw: &str, audit: &mut AuditEntry) -> Result<Uuid, ApiError> {
    let mut v = Violations::new();
    let id = v.uuid(field, raw);
    audit.case_id = id;
    v.into_result(id)
}

fn idempotency(
    rpc: Rpc,
    request_id: Option<Uuid>,
    request: &impl prost::Message,
) -> Option<Idempotency> {
    Idempotency::of(rpc.name(), request_id, request)
}

#[tonic::async_trait]
impl CaseService for CaseApi {
    async fn create_case(
        &self,
        request: Request<pb::CreateCaseRequest>,
    ) -> Result<Response<pb::CreateCaseResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::CreateCase).await?;
        let mut req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let new = convert::new_case(&mut v, req.case.as_ref(), today);
            let new = v.into_result(new)?;
            req.request_id.clear();
            let idem = idempotency(Rpc::CreateCase, request_id.flatten(), &req);
            self.store
                .create_case(&caller.agency, new, idem, call.audit.clone())
                .await
        }
        .await;
        let case = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::CreateCaseResponse {
            case: Some(convert::case_to_proto(&case, today)),
        }))
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::GetCase).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            let with_village =
                v.optional_enumeration("view", req.view, known::<pb::CaseView>, |view| {
                    Some(view == pb::CaseView::WithVillage)
                });
            v.finish()?;
            let (Some(id), Some(with_village)) = (id, with_village) else {
                return Err(ApiError::internal("validated GetCase without its parts"));
            };
            // The case and its assignment in one read; need to know decides before anything of it
            // goes out.
            let (assignment, case) = self
                .store
                .get_case(&caller.agency, id, &caller.subject, call.audit.at)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            may_open(&caller, &assignment, &mut call.audit)?;
            if with_village != Some(true) {
                return Ok(((case, Vec::new()), vec![]));
            }
            let village = self
                .store
                .list_members(&caller.agency, id, None, MAX_VILLAGE + 1)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            if village.len() > MAX_VILLAGE {
                return Err(ApiError::precondition(
                    "VILLAGE_TOO_LARGE",
                    format!("cases/{id}"),
                    "the village is larger than one answer carries: read it with ListVillageMembers",
                ));
            }
            let ids = village.iter().map(|m| m.id).collect();
            Ok(((case, village), ids))
        }
        .await;
        let (case, village) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetCaseResponse {
            case: Some(convert::case_to_proto(&case, today)),
            village: village.iter().map(convert::member_to_proto).collect(),
        }))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::ListCases).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let caseworker = v.optional_text("assigned_caseworker", &req.assigned_caseworker, 256);
            let step = v.optional_enumeration(
                "step",
                req.step,
                |r| pb::Step::try_from(r).ok(),
                convert::step_from,
            );
            let goal = v.optional_enumeration(
                "goal",
                req.goal,
                |r| pb::Goal::try_from(r).ok(),
                convert::goal_from,
            );
            let status = v.optional_enumeration(
                "status",
                req.status,
                |r| pb::CaseStatus::try_from(r).ok(),
                convert::status_from,
            );
            let national_id =
                convert::national_id(&mut v, "child_national_id", &req.child_national_id);
            let limit = page_size(&mut v, "page_size", req.page_size);
            v.finish()?;
            let Some(limit) = limit else {
                return Err(ApiError::internal("validated list without its page size"));
            };
            let national_id_hash = match national_id.flatten() {
                Some(n) => Some(landsby_platform::pii::protector()?.lookup_hash(n.expose())),
                None => None,
            };
            let filter = CaseFilter {
                visible_to: visibility(&caller),
                assigned_caseworker: caseworker.filter(|c| !c.is_empty()),
                step: step.flatten(),
                goal: goal.flatten(),
                status: status.flatten(),
                national_id_hash,
            };
            let scope = format!("ListCases|{}|{filter:?}", caller.agency);
            let after = self
                .tokens
                .decode::<Uuid>(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .store
                .list_cases(&caller.agency, &filter, after, limit + 1)
                .await?;
            let (cases, token) = self.tokens.page(rows, limit, &scope, |c| c.id).await?;
            let ids = cases.iter().map(|c| c.id).collect();
            Ok(((cases, token), ids))
        }
        .await;
        let (cases, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListCasesResponse {
            cases: cases
                .iter()
                .map(|c| convert::case_to_proto(c, today))
                .collect(),
            next_page_token,
        }))
    }

    async fn update_case(
        &self,
        request: Request<pb::UpdateCaseRequest>,
    ) -> Result<Response<pb::UpdateCaseResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::UpdateCase).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let case = v.required("case", req.case.as_ref());
            let id = case.and_then(|c| v.uuid("case.id", &c.id));
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let expected = case.and_then(|c| v.etag("case.etag", &c.etag));
            let change =
                case.and_then(|c| masks::case_change(&mut v, c, req.update_mask.as_ref(), today));
            v.finish()?;
            let (Some(id), Some(expected), Some(change)) = (id, expected, change) else {
                return Err(ApiError::internal("validated update without its parts"));
            };
            let paths = req
                .update_mask
                .as_ref()
                .map(|m| m.paths.clone())
                .unwrap_or_default();
            if paths
                .iter()
                .any(|p| masks::ASSIGNMENT_PATHS.contains(&p.as_str()))
            {
                caller
                    .require(&[Role::TeamLead])
                    .map_err(|_| ApiError::PermissionDenied {
                        reason:
                            "who a case is assigned to (assigned_caseworker, co_caseworker, team) \
                             is changed by a team lead"
                                .into(),
                    })?;
            }
            let event = pb::case_event::Change::CaseUpdated(pb::CaseUpdated { paths });
            self.store
                .update_case(
                    &caller.agency,
                    id,
                    expected,
                    change,
                    event,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let case = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::UpdateCaseResponse {
            case: Some(convert::case_to_proto(&case, today)),
        }))
    }

    async fn break_glass(
        &self,
        request: Request<pb::BreakGlassRequest>,
    ) -> Result<Response<pb::BreakGlassResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::BreakGlass).await?;
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            let reason = v.text("reason", &req.reason, 2000);
            if reason.as_ref().is_some_and(|r| r.chars().count() < 10) {
                v.add("reason", "must say why, in at least 10 characters");
            }
            v.finish()?;
            let (Some(id), Some(reason)) = (id, reason) else {
                return Err(ApiError::internal("validated grant without its parts"));
            };
            let assignment = self
                .store
                .case_access(&caller.agency, id, &caller.subject, at)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            if access::decide(caller.viewer(), assignment.assignment(), false).allowed() {
                return Err(ApiError::precondition(
                    "ALREADY_HAS_ACCESS",
                    format!("cases/{id}"),
                    "the caller may open this case without emergency access",
                ));
            }
            let ttl = chrono::Duration::from_std(self.break_glass_ttl)
                .map_err(|_| ApiError::internal("break_glass_ttl out of range"))?;
            let grant = model::BreakGlassGrant {
                id: Uuid::now_v7(),
                subject: caller.subject.clone(),
                reason,
                granted_at: at,
                expires_at: at + ttl,
            };
            let expires = grant.expires_at;
            self.store
                .grant_break_glass(&caller.agency, id, grant, call.audit.clone())
                .await?;
            call.audit.break_glass = true;
            Ok(expires)
        }
        .await;
        let expires = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::BreakGlassResponse {
            grant_time: Some(convert::timestamp(at)),
            expire_time: Some(convert::timestamp(expires)),
        }))
    }

    async fn close_case(
        &self,
        request: Request<pb::CloseCaseRequest>,
    ) -> Result<Response<pb::CloseCaseResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::CloseCase).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let reason = v.enumeration(
                "reason",
                req.reason,
                |r| pb::CloseReason::try_from(r).ok(),
                convert::close_reason_from,
            );
            let expected = v.etag("etag", &req.etag);
            v.finish()?;
            let (Some(id), Some(reason), Some(expected)) = (id, reason, expected) else {
                return Err(ApiError::internal("validated close without its parts"));
            };
            let change: model::CaseChange = Box::new(move |case| {
                case.status = landsby_domain::CaseStatus::Closed;
                case.closed_at = Some(at);
                case.close_reason = Some(reason);
                Ok(())
            });
            let event = pb::case_event::Change::CaseClosed(pb::CaseClosed {
                reason: convert::close_reason_to(reason).into(),
            });
            self.store
                .update_case(
                    &caller.agency,
                    id,
                    expected,
                    change,
                    event,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let case = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::CloseCaseResponse {
            case: Some(convert::case_to_proto(&case, today)),
        }))
    }

    async fn add_village_member(
        &self,
        request: Request<pb::AddVillageMemberRequest>,
    ) -> Result<Response<pb::AddVillageMemberResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::AddVillageMember).await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let fields = convert::member_fields(&mut v, req.member.as_ref());
            v.finish()?;
            let (Some(id), Some(fields)) = (id, fields) else {
                return Err(ApiError::internal("validated member without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(Rpc::AddVillageMember, request_id.flatten(), &req);
            self.store
                .add_member(&caller.agency, id, fields, idem, call.audit.clone())
                .await
        }
        .await;
        let member = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::AddVillageMemberResponse {
            member: Some(convert::member_to_proto(&member)),
        }))
    }

    async fn update_village_member(
        &self,
        request: Request<pb::UpdateVillageMemberRequest>,
    ) -> Result<Response<pb::UpdateVillageMemberResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::UpdateVillageMember).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let member = v.required("member", req.member.as_ref());
            let case = member.and_then(|m| v.uuid("member.case_id", &m.case_id));
            call.audit.case_id = case;
            if let Some(case_id) = case {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let id = member.and_then(|m| v.uuid("member.id", &m.id));
            let expected = member.and_then(|m| v.etag("member.etag", &m.etag));
            let change =
                member.and_then(|m| masks::member_change(&mut v, m, req.update_mask.as_ref()));
            v.finish()?;
            let (Some(case), Some(id), Some(expected), Some(change)) = (case, id, expected, change)
            else {
                return Err(ApiError::internal("validated update without its parts"));
            };
            self.store
                .update_member(
                    &caller.agency,
                    case,
                    id,
                    expected,
                    change,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let member = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::UpdateVillageMemberResponse {
            member: Some(convert::member_to_proto(&member)),
        }))
    }

    async fn remove_village_member(
        &self,
        request: Request<pb::RemoveVillageMemberRequest>,
    ) -> Result<Response<pb::RemoveVillageMemberResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::RemoveVillageMember).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let case = v.uuid("case_id", &req.case_id);
            call.audit.case_id = case;
            if let Some(case_id) = case {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let id = v.uuid("member_id", &req.member_id);
            let expected = v.etag("etag", &req.etag);
            v.finish()?;
            let (Some(case), Some(id), Some(expected)) = (case, id, expected) else {
                return Err(ApiError::internal("validated removal without its parts"));
            };
            self.store
                .remove_member(&caller.agency, case, id, expected, call.audit.clone())
                .await
        }
        .await;
        self.auditor.write(call, result).await?;
        Ok(Response::new(pb::RemoveVillageMemberResponse {}))
    }

    async fn list_village_members(
        &self,
        request: Request<pb::ListVillageMembersRequest>,
    ) -> Result<Response<pb::ListVillageMembersResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListVillageMembers).await?;
        let req = request.into_inner();
        let page = CasePage {
            list: "ListVillageMembers",
            case_id: &req.case_id,
            page_size: req.page_size,
            page_token: &req.page_token,
        };
        let result = self
            .case_page(
                &caller,
                &mut call.audit,
                page,
                |_| Some(()),
                |m: &model::VillageMemberRecord| m.id,
                async |id, (), after, n| {
                    self.store.list_members(&caller.agency, id, after, n).await
                },
            )
            .await
            .map(|(members, token)| {
                let ids = members.iter().map(|m| m.id).collect();
                ((members, token), ids)
            });
        let (members, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListVillageMembersResponse {
            members: members.iter().map(convert::member_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn record_board_decision(
        &self,
        request: Request<pb::RecordBoardDecisionRequest>,
    ) -> Result<Response<pb::RecordBoardDecisionResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::RecordBoardDecision).await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let decision = convert::new_decision(&mut v, req.decision.as_ref());
            v.finish()?;
            let (Some(id), Some(decision)) = (id, decision) else {
                return Err(ApiError::internal("validated decision without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(Rpc::RecordBoardDecision, request_id.flatten(), &req);
            self.store
                .record_decision(&caller.agency, id, decision, idem, call.audit.clone())
                .await
        }
        .await;
        let decision = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::RecordBoardDecisionResponse {
            decision: Some(convert::decision_to_proto(&decision)),
        }))
    }

    async fn list_board_decisions(
        &self,
        request: Request<pb::ListBoardDecisionsRequest>,
    ) -> Result<Response<pb::ListBoardDecisionsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListBoardDecisions).await?;
        let req = request.into_inner();
        let page = CasePage {
            list: "ListBoardDecisions",
            case_id: &req.case_id,
            page_size: req.page_size,
            page_token: &req.page_token,
        };
        let result = self
            .case_page(
                &caller,
                &mut call.audit,
                page,
                |_| Some(()),
                |d: &model::BoardDecisionRecord| (d.decision.valid_from, d.id),
                async |id, (), after, n| {
                    self.store
                        .list_decisions(&caller.agency, id, after, n)
                        .await
                },
            )
            .await
            .map(|(decisions, token)| {
                let ids = decisions.iter().map(|d| d.id).collect();
                ((decisions, token), ids)
            });
        let (decisions, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListBoardDecisionsResponse {
            decisions: decisions.iter().map(convert::decision_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn schedule_review(
        &self,
        request: Request<pb::ScheduleReviewRequest>,
    ) -> Result<Response<pb::ScheduleReviewResponse>, Status> {
        self.handle_schedule_review(request).await
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        self.handle_list_reviews(request).await
    }

    async fn complete_review(
        &self,
        request: Request<pb::CompleteReviewRequest>,
    ) -> Result<Response<pb::CompleteReviewResponse>, Status> {
        self.handle_complete_review(request).await
    }

    async fn approve_decision(
        &self,
        request: Request<pb::ApproveDecisionRequest>,
    ) -> Result<Response<pb::ApproveDecisionResponse>, Status> {
        self.handle_approve_decision(request).await
    }

    async fn reject_decision(
        &self,
        request: Request<pb::RejectDecisionRequest>,
    ) -> Result<Response<pb::RejectDecisionResponse>, Status> {
        self.handle_reject_decision(request).await
    }

    async fn get_readiness(
        &self,
        request: Request<pb::GetReadinessRequest>,
    ) -> Result<Response<pb::GetReadinessResponse>, Status> {
        self.handle_get_readiness(request).await
    }

    async fn add_follow_up_goal(
        &self,
        request: Request<pb::AddFollowUpGoalRequest>,
    ) -> Result<Response<pb::AddFollowUpGoalResponse>, Status> {
        self.handle_add_follow_up_goal(request).await
    }

    async fn update_follow_up_goal(
        &self,
        request: Request<pb::UpdateFollowUpGoalRequest>,
    ) -> Result<Response<pb::UpdateFollowUpGoalResponse>, Status> {
        self.handle_update_follow_up_goal(request).await
    }

    async fn list_follow_up_goals(
        &self,
        request: Request<pb::ListFollowUpGoalsRequest>,
    ) -> Result<Response<pb::ListFollowUpGoalsResponse>, Status> {
        self.handle_list_follow_up_goals(request).await
    }

    async fn add_care_task(
        &self,
        request: Request<pb::AddCareTaskRequest>,
    ) -> Result<Response<pb::AddCareTaskResponse>, Status> {
        self.handle_add_care_task(request).await
    }

    async fn move_care_task(
        &self,
        request: Request<pb::MoveCareTaskRequest>,
    ) -> Result<Response<pb::MoveCareTaskResponse>, Status> {
        self.handle_move_care_task(request).await
    }

    async fn list_care_tasks(
        &self,
        request: Request<pb::ListCareTasksRequest>,
    ) -> Result<Response<pb::ListCareTasksResponse>, Status> {
        self.handle_list_care_tasks(request).await
    }

    async fn schedule_family_group_conference(
        &self,
        request: Request<pb::ScheduleFamilyGroupConferenceRequest>,
    ) -> Result<Response<pb::ScheduleFamilyGroupConferenceResponse>, Status> {
        self.handle_schedule_conference(request).await
    }

    async fn record_conference_outcome(
        &self,
        request: Request<pb::RecordConferenceOutcomeRequest>,
    ) -> Result<Response<pb::RecordConferenceOutcomeResponse>, Status> {
        self.handle_record_conference_outcome(request).await
    }

    async fn list_family_group_conferences(
        &self,
        request: Request<pb::ListFamilyGroupConferencesRequest>,
    ) -> Result<Response<pb::ListFamilyGroupConferencesResponse>, Status> {
        self.handle_list_conferences(request).await
    }

    async fn waive_family_group_conference(
        &self,
        request: Request<pb::WaiveFamilyGroupConferenceRequest>,
    ) -> Result<Response<pb::WaiveFamilyGroupConferenceResponse>, Status> {
        self.handle_waive_conference(request).await
    }

    async fn reduce_follow_up_visits(
        &self,
        request: Request<pb::ReduceFollowUpVisitsRequest>,
    ) -> Result<Response<pb::ReduceFollowUpVisitsResponse>, Status> {
        self.handle_reduce_follow_up_visits(request).await
    }

    async fn batch_sync_visit_facts(
        &self,
        request: Request<pb::BatchSyncVisitFactsRequest>,
    ) -> Result<Response<pb::BatchSyncVisitFactsResponse>, Status> {
        self.handle_batch_sync_visit_facts(request).await
    }

    async fn batch_sync_due_reviews(
        &self,
        request: Request<pb::BatchSyncDueReviewsRequest>,
    ) -> Result<Response<pb::BatchSyncDueReviewsResponse>, Status> {
        self.handle_batch_sync_due_reviews(request).await
    }

    async fn batch_get_case_snapshots(
        &self,
        request: Request<pb::BatchGetCaseSnapshotsRequest>,
    ) -> Result<Response<pb::BatchGetCaseSnapshotsResponse>, Status> {
        self.handle_batch_get_case_snapshots(request).await
    }

    type WatchEventsStream = feed::EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.handle_watch_events(request).await
    }
}

//! Reviews and decisions: scheduling, completing with a decision (refused with the unmet conditions
//! when the staircase says no), approval by a team lead, readiness, and the worker's syncs.

use super::{CaseApi, Rpc, convert, idempotency};
use crate::model::{self, ReviewFilter};
use crate::store::{DueReviewsSync, VisitFactsSync};
use landsby_domain::policy::stamp_day_to_come;
use landsby_domain::readiness;
use landsby_domain::time::oslo_date;
use landsby_platform::ApiError;
use landsby_platform::validate::{Violations, request_id};
use landsby_proto::case as pb;
use std::collections::HashSet;
use tonic::{Request, Response, Status};

/// The most computed reviews one sync may carry.
const MAX_SYNCED_REVIEWS: usize = 500;
/// The most visit facts one sync may carry.
const MAX_VISIT_FACTS: usize = 1000;
/// The most cases one BatchGetCaseSnapshots reads.
const MAX_SNAPSHOTS: usize = 200;
/// The most cases one BatchSyncVisitFacts or BatchSyncDueReviews changes.
const MAX_BATCH_SYNC: usize = 200;

impl CaseApi {
    pub(super) async fn handle_schedule_review(
        &self,
        request: Request<pb::ScheduleReviewRequest>,
    ) -> Result<Response<pb::ScheduleReviewResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ScheduleReview).await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let review = v
                .required("review", req.review.as_ref())
                .and_then(|r| convert::new_review(&mut v, "review", r, false));
            v.finish()?;
            let (Some(id), Some(review)) = (id, review) else {
                return Err(ApiError::internal("validated review without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(Rpc::ScheduleReview, request_id.flatten(), &req);
            self.store
                .schedule_review(&caller.agency, id, review, idem, call.audit.clone())
                .await
        }
        .await;
        let review = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::ScheduleReviewResponse {
            review: Some(convert::review_to_proto(&review)),
        }))
    }

    pub(super) async fn handle_list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListReviews).await?;
        let req = request.into_inner();
        let result = async {
            let filters = |v: &mut Violations| {
                let due_before = v.optional_date("due_before", req.due_before.as_ref());
                let status = v.optional_enumeration(
                    "status",
                    req.status,
                    |r| pb::ReviewStatus::try_from(r).ok(),
                    convert::review_status_from,
                );
                Some(ReviewFilter {
                    due_before: due_before?,
                    status: status?,
                })
            };
            let page = super::CasePage {
                list: "ListReviews",
                case_id: &req.case_id,
                page_size: req.page_size,
                page_token: &req.page_token,
            };
            let (reviews, token) = self
                .case_page(
                    &caller,
                    &mut call.audit,
                    page,
                    filters,
                    |r: &crate::model::ReviewRecord| (r.due_date, r.id),
                    async |id, filter, after, n| {
                        self.store
                            .list_reviews(&caller.agency, id, filter, after, n)
                            .await
                    },
                )
                .await?;
            let ids = reviews.iter().map(|r| r.id).collect();
            Ok(((reviews, token), ids))
        }
        .await;
        let (reviews, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListReviewsResponse {
            reviews: reviews.iter().map(convert::review_to_proto).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn handle_complete_review(
        &self,
        request: Request<pb::CompleteReviewRequest>,
    ) -> Result<Response<pb::CompleteReviewResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::CompleteReview).await?;
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let review_id = v.uuid("review_id", &req.review_id);
            let expected = v.etag("etag", &req.etag);
            let decision = convert::decision_from(&mut v, req.decision.as_ref());
            let rationale = v.text("rationale", &req.rationale, 4000);
            let child_view = convert::child_view_from(&mut v, req.child_view.as_ref());
            v.finish()?;
            let (
                Some(id),
                Some(review_id),
                Some(expected),
                Some(decision),
                Some(rationale),
                Some(view),
            ) = (id, review_id, expected, decision, rationale, child_view)
            else {
                return Err(ApiError::internal("validated completion without its parts"));
            };
            let settle = model::complete(
                decision,
                rationale,
                view,
                caller.subject.clone(),
                at,
                self.policy.clone(),
            );
            self.store
                .settle_review(
                    &caller.agency,
                    id,
                    review_id,
                    expected,
                    settle,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let (review, case) = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::CompleteReviewResponse {
            review: Some(convert::review_to_proto(&review)),
            case: Some(convert::case_to_proto(&case, oslo_date(at))),
        }))
    }

    pub(super) async fn handle_approve_decision(
        &self,
        request: Request<pb::ApproveDecisionRequest>,
    ) -> Result<Response<pb::ApproveDecisionResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ApproveDecision).await?;
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let review_id = v.uuid("review_id", &req.review_id);
            let expected = v.etag("etag", &req.etag);
            v.finish()?;
            let (Some(id), Some(review_id), Some(expected)) = (id, review_id, expected) else {
                return Err(ApiError::internal("validated approval without its parts"));
            };
            let settle = model::approve(caller.subject.clone(), at, self.policy.clone());
            self.store
                .settle_review(
                    &caller.agency,
                    id,
                    review_id,
                    expected,
                    settle,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let (review, case) = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::ApproveDecisionResponse {
            review: Some(convert::review_to_proto(&review)),
            case: Some(convert::case_to_proto(&case, oslo_date(at))),
        }))
    }

    pub(super) async fn handle_reject_decision(
        &self,
        request: Request<pb::RejectDecisionRequest>,
    ) -> Result<Response<pb::RejectDecisionResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::RejectDecision).await?;
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let review_id = v.uuid("review_id", &req.review_id);
            let expected = v.etag("etag", &req.etag);
            let reason = v.text("reason", &req.reason, 2000);
            v.finish()?;
            let (Some(id), Some(review_id), Some(expected), Some(reason)) =
                (id, review_id, expected, reason)
            else {
                return Err(ApiError::internal("validated rejection without its parts"));
            };
            let settle = model::reject(caller.subject.clone(), reason, at);
            self.store
                .settle_review(
                    &caller.agency,
                    id,
                    review_id,
                    expected,
                    settle,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let (review, _case) = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::RejectDecisionResponse {
            review: Some(convert::review_to_proto(&review)),
        }))
    }

    pub(super) async fn handle_get_readiness(
        &self,
        request: Request<pb::GetReadinessRequest>,
    ) -> Result<Response<pb::GetReadinessResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::GetReadiness).await?;
        let req = request.into_inner();
        let result = async {
            let id = self
                .case_id(&caller, "case_id", &req.case_id, &mut call.audit)
                .await?;
            let (case, facts) = self
                .store
                .readiness_facts(&caller.agency, id)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            let assessment =
                readiness::assess(case.step, case.goal, &facts, &self.policy.readiness);
            Ok((
                convert::readiness_to_proto(id, &assessment, &self.policy.version),
                vec![],
            ))
        }
        .await;
        let readiness = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetReadinessResponse {
            readiness: Some(readiness),
        }))
    }

    pub(super) async fn handle_batch_sync_due_reviews(
        &self,
        request: Request<pb::BatchSyncDueReviewsRequest>,
    ) -> Result<Response<pb::BatchSyncDueReviewsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchSyncDueReviews).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let items = batch_items(&mut v, &req.items, |v, prefix, item| {
                due_reviews_sync(v, prefix, item, call.audit.at)
            });
            let items = v.into_result(items)?;
            self.store
                .sync_due_reviews(&caller.agency, items, call.audit.clone())
                .await
        }
        .await;
        let results = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::BatchSyncDueReviewsResponse {
            results: results
                .iter()
                .map(|(applied, reviews)| due_reviews_synced(*applied, reviews))
                .collect(),
        }))
    }

    pub(super) async fn handle_batch_sync_visit_facts(
        &self,
        request: Request<pb::BatchSyncVisitFactsRequest>,
    ) -> Result<Response<pb::BatchSyncVisitFactsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchSyncVisitFacts).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let items = batch_items(&mut v, &req.items, visit_facts_sync);
            let items = v.into_result(items)?;
            self.store
                .sync_visit_facts(&caller.agency, items, call.audit.clone())
                .await
        }
        .await;
        let results = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::BatchSyncVisitFactsResponse {
            results: results
                .into_iter()
                .map(|applied| pb::VisitFactsResult { applied })
                .collect(),
        }))
    }

    pub(super) async fn handle_batch_get_case_snapshots(
        &self,
        request: Request<pb::BatchGetCaseSnapshotsRequest>,
    ) -> Result<Response<pb::BatchGetCaseSnapshotsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchGetCaseSnapshots).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let ids = v.uuids("case_ids", &req.case_ids, MAX_SNAPSHOTS);
            let ids = v.into_result(ids)?;
            let snapshots = self.store.snapshots(&caller.agency, &ids).await?;
            // One audit row per case read, naming what of it was read.
            let read = snapshots
                .iter()
                .map(|s| {
                    let touched = s
                        .members
                        .iter()
                        .map(|m| m.id)
                        .chain(s.case.board_decisions.iter().map(|d| d.id))
                        .chain(s.reviews.iter().map(|r| r.id))
                        .chain(s.goals.iter().map(|g| g.id))
                        .chain(s.conferences.iter().map(|c| c.id))
                        .collect();
                    (s.case.id, touched)
                })
                .collect();
            Ok((snapshots, read))
        }
        .await;
        let snapshots = self.auditor.read_cases(call, result).await?;
        Ok(Response::new(pb::BatchGetCaseSnapshotsResponse {
            snapshots: snapshots
                .iter()
                .map(|s| pb::CaseSnapshot {
                    case: Some(convert::case_to_proto(&s.case, today)),
                    members: s.members.iter().map(convert::member_to_proto).collect(),
                    follow_up_goals: s.goals.iter().map(convert::goal_to_proto).collect(),
                    reviews: s.reviews.iter().map(convert::review_to_proto).collect(),
                    conferences: s
                        .conferences
                        .iter()
                        .map(convert::conference_to_proto)
                        .collect(),
                    board_decisions: s
                        .case
                        .board_decisions
                        .iter()
                        .map(convert::decision_to_proto)
                        .collect(),
                })
                .collect(),
        }))
    }
}

/// The items of a batch sync, each validated by `one` with its fields named `items[i].…`: 1 to
/// [`MAX_BATCH_SYNC`], no case twice. None when any is invalid.
fn batch_items<R, T>(
    v: &mut Violations,
    items: &[R],
    mut one: impl FnMut(&mut Violations, &str, &R) -> Option<T>,
) -> Option<Vec<T>>
where
    T: CaseItem,
{
    if !v.count("items", items.len(), MAX_BATCH_SYNC) {
        return None;
    }
    let before = v.is_empty();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("items[{i}].");
        if let Some(item) = one(v, &prefix, item) {
            if !seen.insert(item.case_id()) {
                v.add(format!("{prefix}case_id"), "appears twice");
            }
            out.push(item);
        }
    }
    (before && v.is_empty()).then_some(out)
}

/// An item of a batch sync: the case it is of.
trait CaseItem {
    fn case_id(&self) -> uuid::Uuid;
}

impl CaseItem for DueReviewsSync {
    fn case_id(&self) -> uuid::Uuid {
        self.case_id
    }
}

impl CaseItem for VisitFactsSync {
    fn case_id(&self) -> uuid::Uuid {
        self.case_id
    }
}

/// One case's due reviews validated, its fields named after `prefix` ("items[i]."); `now` is the
/// call's time (a stamp's day must not be still to come).
fn due_reviews_sync(
    v: &mut Violations,
    prefix: &str,
    req: &pb::DueReviewsItem,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<DueReviewsSync> {
    let case_id = v.uuid(&format!("{prefix}case_id"), &req.case_id);
    if req.case_version < 1 {
        v.add(
            format!("{prefix}case_version"),
            "must be a version the case has had (1 or more)",
        );
    }
    let policy_version = v.text(&format!("{prefix}policy_version"), &req.policy_version, 100);
    let mut reviews = Vec::new();
    let mut valid = true;
    if req.reviews.len() > MAX_SYNCED_REVIEWS {
        v.add(
            format!("{prefix}reviews"),
            format!("at most {MAX_SYNCED_REVIEWS} reviews"),
        );
        valid = false;
    } else {
        let mut keys = HashSet::new();
        for (i, r) in req.reviews.iter().enumerate() {
            let field = format!("{prefix}reviews[{i}]");
            match convert::new_review(v, &field, r, true) {
                Some(review) => {
                    if let Some(key) = &review.computed_key
                        && !keys.insert(key.clone())
                    {
                        v.add(format!("{field}.computed_key"), "appears twice");
                        valid = false;
                    }
                    reviews.push(review);
                }
                None => valid = false,
            }
        }
    }
    let computed_on = v.date(&format!("{prefix}computed_on"), req.computed_on.as_ref());
    if computed_on.is_some_and(|on| stamp_day_to_come(on, now)) {
        v.add(
            format!("{prefix}computed_on"),
            "is a day still to come in Europe/Oslo",
        );
        valid = false;
    }
    let (Some(case_id), Some(policy_version), Some(computed_on), true) = (
        case_id,
        policy_version,
        computed_on,
        valid && req.case_version >= 1,
    ) else {
        return None;
    };
    Some(DueReviewsSync {
        case_id,
        stamp: (req.case_version, policy_version, computed_on),
        reviews,
    })
}

/// What BatchSyncDueReviews answers of one case.
fn due_reviews_synced(applied: bool, reviews: &[model::ReviewRecord]) -> pb::DueReviewsResult {
    pb::DueReviewsResult {
        applied,
        reviews: reviews.iter().map(convert::review_to_proto).collect(),
    }
}

/// One case's visit facts validated, its fields named after `prefix` (as [`due_reviews_sync`]).
fn visit_facts_sync(
    v: &mut Violations,
    prefix: &str,
    req: &pb::VisitFactsItem,
) -> Option<VisitFactsSync> {
    let case_id = v.uuid(&format!("{prefix}case_id"), &req.case_id);
    let mut valid = true;
    if req.as_of_sequence < 0 {
        v.add(format!("{prefix}as_of_sequence"), "must not be negative");
        valid = false;
    }
    let mut visits = Vec::new();
    if req.visits.len() > MAX_VISIT_FACTS {
        v.add(
            format!("{prefix}visits"),
            format!("at most {MAX_VISIT_FACTS} visits"),
        );
        valid = false;
    } else {
        let mut ids = HashSet::new();
        for (i, f) in req.visits.iter().enumerate() {
            let field = format!("{prefix}visits[{i}]");
            match convert::visit_fact_from(v, &field, f) {
                Some(fact) => {
                    if !ids.insert(fact.visit_id) {
                        v.add(format!("{field}.visit_id"), "appears twice");
                        valid = false;
                    }
                    visits.push(fact);
                }
                None => valid = false,
            }
        }
    }
    let case_id = case_id.filter(|_| valid)?;
    Some(VisitFactsSync {
        case_id,
        sequence: req.as_of_sequence,
        frame_complete: req.frame_complete,
        visits,
    })
}

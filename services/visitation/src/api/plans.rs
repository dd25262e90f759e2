//! Visitation plans: reading them, the worker's computed scopes, caseworkers' adjustments, and
//! proposed schedules.

use super::convert;
use super::{Rpc, VisitationApi, id};
use crate::model::plans::{self, NewComputed};
use chrono::{Duration, NaiveTime, Weekday};
use landsby_domain::policy::stamp_day_to_come;
use landsby_domain::schedule::{self, Busy, Commitment, ProposalRequest};
use landsby_domain::scope::Manual;
use landsby_domain::time::{oslo_date, oslo_instant};
use landsby_platform::ApiError;
use landsby_platform::client::OnBehalf;
use landsby_platform::pagination::page_size;
use landsby_platform::validate::{Violations, known, timestamp_to_proto};
use landsby_proto::common;
use landsby_proto::visitation as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The most cases one BatchGetCaseVisitation reads.
const MAX_BATCH_CASES: usize = 200;
/// The most items one BatchApplyComputedScopes puts in force.
const MAX_BATCH_SCOPES: usize = 200;
/// The values an adjustment may change.
const ADJUSTABLE: &[&str] = &[
    "frequency",
    "duration_minutes",
    "supervision",
    "places",
    "overnights",
    "activities",
];
/// Most commitments in a ProposeSchedule request.
const MAX_COMMITMENTS: usize = 20;
/// Visits are proposed between these local times, with this much free time around each.
const EARLIEST: (u32, u32) = (9, 0);
const LATEST_END: (u32, u32) = (20, 0);
const GAP_MINUTES: u32 = 30;

fn clock((h, m): (u32, u32)) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

impl VisitationApi {
    pub(super) async fn handle_get_plan(
        &self,
        request: Request<pb::GetVisitationPlanRequest>,
    ) -> Result<Response<pb::GetVisitationPlanResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::GetVisitationPlan).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let id = id("plan_id", &req.plan_id)?;
            let plan =
                self.store
                    .get_plan(&caller.agency, id)
                    .await?
                    .ok_or(ApiError::NotFound {
                        resource: "visitation plan",
                    })?;
            call.audit.case_id = Some(plan.case_id);
            self.need_to_know(&caller, &on_behalf, plan.case_id, "visitation plan")
                .await?;
            Ok((plan, vec![id]))
        }
        .await;
        let plan = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetVisitationPlanResponse {
            plan: Some(convert::plan_to(&plan)),
        }))
    }

    pub(super) async fn handle_list_plans(
        &self,
        request: Request<pb::ListVisitationPlansRequest>,
    ) -> Result<Response<pb::ListVisitationPlansResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListVisitationPlans).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let case_id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = case_id;
            let limit = page_size(&mut v, "page_size", req.page_size);
            v.finish()?;
            let (Some(case_id), Some(limit)) = (case_id, limit) else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            self.need_to_know(&caller, &on_behalf, case_id, "case")
                .await?;
            let scope = format!("ListVisitationPlans|{}|{case_id}", caller.agency);
            let after = self
                .tokens
                .decode::<Uuid>(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .store
                .list_plans(&caller.agency, case_id, after, limit + 1)
                .await?;
            let (plans, token) = self.tokens.page(rows, limit, &scope, |p| p.id).await?;
            let ids = plans.iter().map(|p| p.id).collect();
            Ok(((plans, token), ids))
        }
        .await;
        let (plans, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListVisitationPlansResponse {
            plans: plans.iter().map(convert::plan_to).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn handle_batch_get_case_visitation(
        &self,
        request: Request<pb::BatchGetCaseVisitationRequest>,
    ) -> Result<Response<pb::BatchGetCaseVisitationResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchGetCaseVisitation).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let ids = v.uuids("case_ids", &req.case_ids, MAX_BATCH_CASES);
            let since = v.timestamp("visits_start_after", req.visits_start_after.as_ref());
            v.finish()?;
            let (Some(ids), Some(since)) = (ids, since) else {
                return Err(ApiError::internal("validated batch without its parts"));
            };
            let cases = self
                .store
                .case_visitation(&caller.agency, &ids, since)
                .await?;
            // One audit row per case with something read, naming the plans and visits.
            let read = cases
                .iter()
                .filter(|c| !c.plans.is_empty() || !c.visits.is_empty())
                .map(|c| {
                    let touched = c
                        .plans
                        .iter()
                        .map(|p| p.id)
                        .chain(c.visits.iter().map(|v| v.id))
                        .collect();
                    (c.case_id, touched)
                })
                .collect();
            Ok((cases, read))
        }
        .await;
        let cases = self.auditor.read_cases(call, result).await?;
        Ok(Response::new(pb::BatchGetCaseVisitationResponse {
            cases: cases
                .iter()
                .map(|c| pb::CaseVisitation {
                    case_id: c.case_id.to_string(),
                    plans: c.plans.iter().map(convert::plan_to).collect(),
                    visits: c.visits.iter().map(convert::visit_to).collect(),
                    more_visits: c.more_visits,
                })
                .collect(),
        }))
    }

    pub(super) async fn handle_list_scope_versions(
        &self,
        request: Request<pb::ListScopeVersionsRequest>,
    ) -> Result<Response<pb::ListScopeVersionsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListScopeVersions).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let plan_id = v.uuid("plan_id", &req.plan_id);
            let limit = page_size(&mut v, "page_size", req.page_size);
            v.finish()?;
            let (Some(plan_id), Some(limit)) = (plan_id, limit) else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            let scope = format!("ListScopeVersions|{}|{plan_id}", caller.agency);
            let before = self
                .tokens
                .decode::<i64>(&req.page_token, &scope, "page_token")
                .await?;
            let (plan, rows) = self
                .store
                .list_scope_versions(&caller.agency, plan_id, before, limit + 1)
                .await?
                .ok_or(ApiError::NotFound {
                    resource: "visitation plan",
                })?;
            call.audit.case_id = Some(plan.case_id);
            self.need_to_know(&caller, &on_behalf, plan.case_id, "visitation plan")
                .await?;
            let (versions, token) = self.tokens.page(rows, limit, &scope, |v| v.version).await?;
            Ok(((versions, token), vec![plan_id]))
        }
        .await;
        let (versions, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListScopeVersionsResponse {
            versions: versions.iter().map(convert::version_to).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn handle_batch_apply_computed_scopes(
        &self,
        request: Request<pb::BatchApplyComputedScopesRequest>,
    ) -> Result<Response<pb::BatchApplyComputedScopesResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchApplyComputedScopes).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.count("items", req.items.len(), MAX_BATCH_SCOPES);
            v.check()?;
            let mut seen = std::collections::HashSet::new();
            let mut items = Vec::with_capacity(req.items.len());
            for (i, item) in req.items.iter().enumerate() {
                let prefix = format!("items[{i}].");
                if let Some(item) = computed_item(&mut v, &prefix, item, call.audit.at) {
                    if !seen.insert((item.0, item.1)) {
                        v.add(format!("{prefix}parent_id"), "appears twice for the case");
                    }
                    items.push(item);
                }
            }
            v.check()?;
            // The cases as the case service has them now, all in one call.
            let mut cases: Vec<Uuid> = items.iter().map(|i| i.0).collect();
            cases.sort_unstable();
            cases.dedup();
            let facts = self.case.facts_of_cases(&on_behalf, &cases).await?;
            let mut news = Vec::with_capacity(items.len());
            for (i, (case_id, parent_id, computed_from, scope)) in items.into_iter().enumerate() {
                let facts = facts
                    .get(&case_id)
                    .ok_or(ApiError::NotFound { resource: "case" })?;
                if !facts.open {
                    return Err(ApiError::precondition(
                        "CASE_CLOSED",
                        format!("cases/{case_id}"),
                        "the case is closed: its visitation does not change",
                    ));
                }
                if computed_from.case_version > facts.version {
                    v.add(
                        format!("items[{i}].computed_from.case_version"),
                        "is newer than the case itself",
                    );
                }
                if !facts
                    .members
                    .get(&parent_id)
                    .is_some_and(|m| m.parent_with_rights)
                {
                    v.add(
                        format!("items[{i}].parent_id"),
                        "is not a parent with visitation rights in the case",
                    );
                }
                news.push(NewComputed {
                    case_id,
                    parent_id,
                    computed_from,
                    scope,
                    floor: facts.floor_for(parent_id).cloned(),
                    secret_address: facts.secret_address,
                });
            }
            v.finish()?;
            self.store
                .apply_computed(&caller.agency, news, call.audit.clone())
                .await
        }
        .await;
        let applied = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::BatchApplyComputedScopesResponse {
            results: applied
                .iter()
                .map(|a| pb::ComputedScopeResult {
                    applied: a.applied,
                    plan: Some(convert::plan_to(&a.plan)),
                    dropped_adjustments: a
                        .dropped
                        .iter()
                        .map(|d| d.manual.field().to_owned())
                        .collect(),
                })
                .collect(),
        }))
    }

    pub(super) async fn handle_adjust_plan(
        &self,
        request: Request<pb::AdjustVisitationPlanRequest>,
    ) -> Result<Response<pb::AdjustVisitationPlanResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::AdjustVisitationPlan).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let at = call.audit.at;
        let subject = caller.subject.clone();
        let result =
            async {
                let mut v = Violations::new();
                let plan_id = v.uuid("plan_id", &req.plan_id);
                let expected = v.etag("etag", &req.etag);
                let paths = v.mask_paths(req.update_mask.as_ref(), ADJUSTABLE, &[]);
                let values = manual_values(&mut v, &paths, req.scope.as_ref());
                let rationale = v.text("rationale", &req.rationale, 2000);
                v.finish()?;
                let (Some(plan_id), Some(expected), Some(values), Some(rationale)) =
                    (plan_id, expected, values, rationale)
                else {
                    return Err(ApiError::internal("validated adjustment without its parts"));
                };
                call.audit.resource_ids = vec![plan_id];
                let plan = self.store.get_plan(&caller.agency, plan_id).await?.ok_or(
                    ApiError::NotFound {
                        resource: "visitation plan",
                    },
                )?;
                call.audit.case_id = Some(plan.case_id);
                let facts = self
                    .open_case(&on_behalf, plan.case_id, "visitation plan")
                    .await?;
                let floor = facts.floor_for(plan.parent_id).cloned();
                let secret = facts.secret_address;
                let change: crate::store::PlanChange = Box::new(move |plan| {
                    plans::adjust(
                        plan,
                        values,
                        &rationale,
                        &subject,
                        at,
                        floor.as_ref(),
                        secret,
                    )
                });
                self.store
                    .adjust_plan(
                        &caller.agency,
                        plan_id,
                        expected,
                        change,
                        call.audit.clone(),
                    )
                    .await
            }
            .await;
        let plan = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::AdjustVisitationPlanResponse {
            plan: Some(convert::plan_to(&plan)),
        }))
    }

    pub(super) async fn handle_propose_schedule(
        &self,
        request: Request<pb::ProposeScheduleRequest>,
    ) -> Result<Response<pb::ProposeScheduleResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ProposeSchedule).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let now = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let plan_id = v.uuid("plan_id", &req.plan_id);
            let weeks = match req.weeks {
                0 => Some(4),
                1..=26 => u32::try_from(req.weeks).ok(),
                _ => {
                    v.add("weeks", "must be 1-26");
                    None
                }
            };
            let from = v.optional_date("from_date", req.from_date.as_ref());
            let weekday_time = optional_time(&mut v, "weekday_time", req.weekday_time.as_ref());
            let weekend_time = optional_time(&mut v, "weekend_time", req.weekend_time.as_ref());
            let commitments = commitments(&mut v, &req.commitments);
            v.finish()?;
            let (
                Some(plan_id),
                Some(weeks),
                Some(from),
                Some(weekday_time),
                Some(weekend_time),
                Some(commitments),
            ) = (
                plan_id,
                weeks,
                from,
                weekday_time,
                weekend_time,
                commitments,
            )
            else {
                return Err(ApiError::internal("validated proposal without its parts"));
            };
            let plan =
                self.store
                    .get_plan(&caller.agency, plan_id)
                    .await?
                    .ok_or(ApiError::NotFound {
                        resource: "visitation plan",
                    })?;
            call.audit.case_id = Some(plan.case_id);
            self.need_to_know(&caller, &on_behalf, plan.case_id, "visitation plan")
                .await?;
            let from = from.unwrap_or_else(|| oslo_date(now));
            let window_start =
                oslo_instant(from.and_time(NaiveTime::MIN)).unwrap_or(now) - Duration::days(1);
            let window_end = window_start + Duration::weeks(i64::from(weeks)) + Duration::days(2);
            let busy: Vec<Busy> = self
                .store
                .busy(&caller.agency, plan.case_id, window_start, window_end)
                .await?
                .into_iter()
                .map(|(start, end)| Busy { start, end })
                .collect();
            let proposals = schedule::propose(&ProposalRequest {
                from,
                weeks,
                frequency: plan.scope.frequency.value,
                duration_minutes: plan.scope.duration_minutes.value,
                commitments: &commitments,
                busy: &busy,
                weekday_time: weekday_time.unwrap_or_else(|| clock((17, 0))),
                weekend_time: weekend_time.unwrap_or_else(|| clock((11, 0))),
                earliest: clock(EARLIEST),
                latest_end: clock(LATEST_END),
                gap_minutes: GAP_MINUTES,
                now,
            });
            Ok(((plan, proposals), vec![plan_id]))
        }
        .await;
        let (plan, proposals) = self.auditor.read(call, result).await?;
        let duration = i32::try_from(plan.scope.duration_minutes.value).unwrap_or(i32::MAX);
        Ok(Response::new(pb::ProposeScheduleResponse {
            visits: proposals
                .visits
                .iter()
                .map(|p| pb::ProposedVisit {
                    local_start: Some(convert::local_to(p.local_start)),
                    start_time: Some(timestamp_to_proto(p.start)),
                    end_time: Some(timestamp_to_proto(p.end)),
                    duration_minutes: duration,
                })
                .collect(),
            unplaced: i32::try_from(proposals.unplaced).unwrap_or(i32::MAX),
            scope_version: plan.scope_version,
        }))
    }
}

/// The values an adjustment names in its mask, validated like a computed scope's.
fn manual_values(
    v: &mut Violations,
    paths: &[&str],
    scope: Option<&pb::Scope>,
) -> Option<Vec<Manual>> {
    if paths.is_empty() {
        return None;
    }
    let s = v.required("scope", scope)?;
    let mut out = Vec::new();
    for path in paths {
        let field = format!("scope.{path}");
        let value = match *path {
            "frequency" => {
                convert::frequency(v, &field, s.frequency.as_ref()).map(Manual::Frequency)
            }
            "duration_minutes" => {
                convert::duration(v, &field, s.duration_minutes).map(Manual::DurationMinutes)
            }
            "supervision" => {
                convert::supervision(v, &field, s.supervision).map(Manual::Supervision)
            }
            "places" => convert::places(v, &field, &s.places).map(Manual::Places),
            "overnights" => {
                convert::frequency(v, &field, s.overnights.as_ref()).map(Manual::Overnights)
            }
            "activities" => convert::texts(v, &field, &s.activities).map(Manual::Activities),
            _ => None,
        };
        out.push(value);
    }
    out.into_iter().collect()
}

fn optional_time(
    v: &mut Violations,
    field: &str,
    t: Option<&common::TimeOfDay>,
) -> Option<Option<NaiveTime>> {
    match t {
        None => Some(None),
        Some(t) => convert::time_of_day(v, field, t).map(Some),
    }
}

/// The child's commitments; none given: school hours.
fn commitments(v: &mut Violations, raw: &[pb::Commitment]) -> Option<Vec<Commitment>> {
    if raw.is_empty() {
        return Some(vec![Commitment::school_hours()]);
    }
    if raw.len() > MAX_COMMITMENTS {
        v.add(
            "commitments",
            format!("must have at most {MAX_COMMITMENTS} commitments"),
        );
        return None;
    }
    let out: Vec<Option<Commitment>> = raw
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("commitments[{i}]");
            if c.weekdays.is_empty() {
                v.add(format!("{at}.weekdays"), "must name at least one day");
            }
            let days: Vec<Option<Weekday>> = c
                .weekdays
                .iter()
                .enumerate()
                .map(|(k, d)| {
                    v.enumeration(
                        &format!("{at}.weekdays[{k}]"),
                        *d,
                        known::<common::Weekday>,
                        convert::weekday_from,
                    )
                })
                .collect();
            let start = v
                .required(&format!("{at}.start"), c.start.as_ref())
                .and_then(|t| convert::time_of_day(v, &format!("{at}.start"), t));
            let end = v
                .required(&format!("{at}.end"), c.end.as_ref())
                .and_then(|t| convert::time_of_day(v, &format!("{at}.end"), t));
            if let (Some(s), Some(e)) = (start, end)
                && e <= s
            {
                v.add(format!("{at}.end"), "must be after start");
            }
            Some(Commitment {
                weekdays: days.into_iter().collect::<Option<Vec<_>>>()?,
                start: start?,
                end: end?,
            })
        })
        .collect();
    out.into_iter().collect()
}

/// One item of BatchApplyComputedScopes validated, its fields named after `prefix` ("items[i].");
/// `now` is the call's time (a stamp's day must not be still to come).
fn computed_item(
    v: &mut Violations,
    prefix: &str,
    item: &pb::ComputedScopeItem,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(
    Uuid,
    Uuid,
    plans::ComputedFrom,
    landsby_domain::scope::Scope,
)> {
    let case_id = v.uuid(&format!("{prefix}case_id"), &item.case_id);
    let parent_id = v.uuid(&format!("{prefix}parent_id"), &item.parent_id);
    let field = format!("{prefix}computed_from");
    let computed_from = convert::computed_from(v, &field, item.computed_from.as_ref());
    let scope = convert::scope_from(v, &format!("{prefix}scope"), item.scope.as_ref());
    let computed_from = computed_from.filter(|c| {
        let to_come = c.computed_on.is_some_and(|on| stamp_day_to_come(on, now));
        if to_come {
            v.add(
                format!("{field}.computed_on"),
                "is a day still to come in Europe/Oslo",
            );
        }
        !to_come
    })?;
    Some((case_id?, parent_id?, computed_from, scope?))
}

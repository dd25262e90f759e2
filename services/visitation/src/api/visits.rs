//! Visits: scheduling (with the plan's rules and no double booking), reading, rescheduling and
//! changing the frame, and the moves of a visit's life: confirmed, cancelled, completed with its
//! report, or a no-show.

use super::convert;
use super::{Rpc, VisitationApi, id};
use crate::case_client::CaseFacts;
use crate::model::visits::{self, check_against_plan, wrong_status};
use crate::model::{Frame, Idempotency, NewVisit, NoShow, VisitRecord, VisitStatus};
use crate::store::{VisitChange, VisitFilter};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use landsby_domain::time::{oslo_instant, oslo_local};
use landsby_domain::{AgencyId, Role};
use landsby_platform::audit::AuditEntry;
use landsby_platform::client::OnBehalf;
use landsby_platform::pagination::page_size;
use landsby_platform::validate::{Violations, known, request_id, timestamp_to_proto};
use landsby_platform::{ApiError, Caller};
use landsby_proto::visitation::{self as pb, visitation_event::Change as EventChange};
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The visit paths an update may name.
const UPDATE_PATHS: &[&str] = &[
    "local_start",
    "duration_minutes",
    "frame",
    "frame.place",
    "frame.place_description",
    "frame.participants",
    "frame.activity",
    "frame.supervisor",
    "supervision",
];

/// When a visit starts and ends, from its Europe/Oslo wall-clock start and its length, with the
/// wall-clock start it really has: a time in the hour skipped in spring moves to the end of the gap
/// (02:30 becomes 03:00), and the visit keeps that.
fn times(
    local: NaiveDateTime,
    minutes: u32,
) -> Result<(DateTime<Utc>, DateTime<Utc>, NaiveDateTime), ApiError> {
    let start = oslo_instant(local)
        .ok_or_else(|| ApiError::invalid("local_start", "is not a time on the Oslo clock"))?;
    let resolved = oslo_local(start);
    Ok((
        start,
        start + Duration::minutes(i64::from(minutes)),
        resolved,
    ))
}

/// The parent must have visitation rights in the case, and every participant be in its village.
fn check_people(
    facts: &CaseFacts,
    parent_id: Option<Uuid>,
    frame: &Frame,
    field: &str,
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if let Some(parent) = parent_id
        && !facts
            .members
            .get(&parent)
            .is_some_and(|m| m.parent_with_rights)
    {
        v.add(
            "visit.parent_id",
            "is not a parent with visitation rights in the case",
        );
    }
    for (i, p) in frame.participants.iter().enumerate() {
        if !facts.members.contains_key(&p.member_id) {
            v.add(
                format!("{field}.participants[{i}].member_id"),
                "is not in the case's village",
            );
        }
    }
    v.finish()
}

fn start_of(v: &VisitRecord) -> Option<prost_types::Timestamp> {
    Some(timestamp_to_proto(v.start))
}

impl VisitationApi {
    /// The visit a change is about, named (with its case) in the call's audit row whether the
    /// change is made or refused. Need to know is checked by whoever calls this: through
    /// [`VisitationApi::open_case`] where the change reads the case anyway, else by
    /// [`Self::visit_to_change_checked`].
    async fn visit_to_change(
        &self,
        agency: &AgencyId,
        id: Uuid,
        audit: &mut AuditEntry,
    ) -> Result<VisitRecord, ApiError> {
        audit.resource_ids = vec![id];
        let visit = self
            .store
            .get_visit(agency, id)
            .await?
            .ok_or(ApiError::NotFound { resource: "visit" })?;
        audit.case_id = Some(visit.case_id);
        Ok(visit)
    }

    /// [`Self::visit_to_change`], not found unless the caller has need to know of its case.
    async fn visit_to_change_checked(
        &self,
        caller: &Caller,
        on_behalf: &OnBehalf,
        id: Uuid,
        audit: &mut AuditEntry,
    ) -> Result<VisitRecord, ApiError> {
        let visit = self.visit_to_change(&caller.agency, id, audit).await?;
        self.need_to_know(caller, on_behalf, visit.case_id, "visit")
            .await?;
        Ok(visit)
    }

    pub(super) async fn handle_schedule_visit(
        &self,
        request: Request<pb::ScheduleVisitRequest>,
    ) -> Result<Response<pb::ScheduleVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ScheduleVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let visit = v.required("visit", req.visit.as_ref());
            let parts = visit.map(|visit| {
                let case_id = v.uuid("visit.case_id", &visit.case_id);
                call.audit.case_id = case_id;
                let parent_id = v.uuid("visit.parent_id", &visit.parent_id);
                let local = convert::local_date_time(
                    &mut v,
                    "visit.local_start",
                    visit.local_start.as_ref(),
                );
                let minutes =
                    convert::duration(&mut v, "visit.duration_minutes", visit.duration_minutes);
                let frame = match &visit.frame {
                    Some(f) => convert::frame_from(&mut v, "visit.frame", f),
                    None => Some(Frame::default()),
                };
                let supervision = v.optional_enumeration(
                    "visit.supervision",
                    visit.supervision,
                    known::<pb::Supervision>,
                    convert::supervision_from,
                );
                (case_id, parent_id, local, minutes, frame, supervision)
            });
            v.finish()?;
            let Some((
                Some(case_id),
                Some(parent_id),
                Some(local),
                Some(minutes),
                Some(frame),
                Some(supervision),
            )) = parts
            else {
                return Err(ApiError::internal("validated visit without its parts"));
            };
            let Some(request_id) = request_id else {
                return Err(ApiError::internal("validated visit without its request id"));
            };
            let mut unkeyed = req.clone();
            unkeyed.request_id.clear();
            let idempotency = Idempotency::of(Rpc::ScheduleVisit.name(), request_id, &unkeyed);
            // A retry is answered with the first visit even if the case has moved on since.
            if let Some(idem) = &idempotency
                && let Some(first) = self
                    .store
                    .replay_visit(&caller.agency, idem, call.audit.clone())
                    .await?
            {
                return Ok(first);
            }
            let (start, end, local) = times(local, minutes)?;
            let facts = self.open_case(&on_behalf, case_id, "case").await?;
            check_people(&facts, Some(parent_id), &frame, "visit.frame")?;
            let new = NewVisit {
                id: Uuid::now_v7(),
                agency: caller.agency.clone(),
                case_id,
                parent_id,
                start,
                local_start: local,
                duration_minutes: minutes,
                end,
                frame,
                supervision,
                at,
            };
            self.store
                .schedule_visit(
                    &caller.agency,
                    new,
                    facts.secret_address,
                    idempotency,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::ScheduleVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_get_visit(
        &self,
        request: Request<pb::GetVisitRequest>,
    ) -> Result<Response<pb::GetVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::GetVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let id = id("visit_id", &req.visit_id)?;
            let visit = self
                .store
                .get_visit(&caller.agency, id)
                .await?
                .ok_or(ApiError::NotFound { resource: "visit" })?;
            call.audit.case_id = Some(visit.case_id);
            self.need_to_know(&caller, &on_behalf, visit.case_id, "visit")
                .await?;
            Ok((visit, vec![id]))
        }
        .await;
        let visit = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_list_visits(
        &self,
        request: Request<pb::ListVisitsRequest>,
    ) -> Result<Response<pb::ListVisitsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListVisits).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let limit = page_size(&mut v, "page_size", req.page_size);
            let case_id = v.optional_uuid("case_id", &req.case_id);
            let worker = caller.has_any(&[Role::Service]);
            if !worker && req.case_id.is_empty() {
                v.add(
                    "case_id",
                    "is required: staff list the visits of one case at a time (need to know)",
                );
            }
            let parent_id = v.optional_uuid("parent_id", &req.parent_id);
            let participant_id = v.optional_uuid("participant_id", &req.participant_id);
            let supervisor = v.optional_text("supervisor", &req.supervisor, 200);
            let start_after = match req.start_after.as_ref() {
                None => Some(None),
                Some(t) => v.timestamp("start_after", Some(t)).map(Some),
            };
            let start_before = match req.start_before.as_ref() {
                None => Some(None),
                Some(t) => v.timestamp("start_before", Some(t)).map(Some),
            };
            let status = v.optional_enumeration(
                "status",
                req.status,
                known::<pb::VisitStatus>,
                convert::status_from,
            );
            v.finish()?;
            let (
                Some(limit),
                Some(case_id),
                Some(parent_id),
                Some(participant_id),
                Some(supervisor),
                Some(start_after),
                Some(start_before),
                Some(status),
            ) = (
                limit,
                case_id,
                parent_id,
                participant_id,
                supervisor,
                start_after,
                start_before,
                status,
            )
            else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            call.audit.case_id = case_id;
            if let Some(case_id) = case_id {
                self.need_to_know(&caller, &on_behalf, case_id, "case")
                    .await?;
            }
            let filter = VisitFilter {
                case_id,
                parent_id,
                participant_id,
                supervisor: (!supervisor.is_empty()).then_some(supervisor),
                start_after,
                start_before,
                status,
            };
            let scope = format!("ListVisits|{}|{filter:?}", caller.agency);
            let after = self
                .tokens
                .decode::<(DateTime<Utc>, Uuid)>(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .store
                .list_visits(&caller.agency, &filter, after, limit + 1)
                .await?;
            let (visits, token) = self
                .tokens
                .page(rows, limit, &scope, |v| (v.start, v.id))
                .await?;
            let ids = visits.iter().map(|v| v.id).collect();
            Ok(((visits, token), ids))
        }
        .await;
        let (visits, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListVisitsResponse {
            visits: visits.iter().map(convert::visit_to).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn handle_update_visit(
        &self,
        request: Request<pb::UpdateVisitRequest>,
    ) -> Result<Response<pb::UpdateVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::UpdateVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let visit = v.required("visit", req.visit.as_ref());
            let paths: Vec<String> = v
                .mask_paths(req.update_mask.as_ref(), UPDATE_PATHS, &[])
                .into_iter()
                .map(str::to_owned)
                .collect();
            let parts = visit.map(|visit| {
                let id = v.uuid("visit.id", &visit.id);
                let expected = v.etag("visit.etag", &visit.etag);
                let named = |p: &str| paths.iter().any(|q| q == p);
                let local = if named("local_start") {
                    convert::local_date_time(
                        &mut v,
                        "visit.local_start",
                        visit.local_start.as_ref(),
                    )
                    .map(Some)
                } else {
                    Some(None)
                };
                let minutes = if named("duration_minutes") {
                    convert::duration(&mut v, "visit.duration_minutes", visit.duration_minutes)
                        .map(Some)
                } else {
                    Some(None)
                };
                let frame = if paths.iter().any(|p| p.starts_with("frame")) {
                    let given = visit.frame.clone().unwrap_or_default();
                    convert::frame_from(&mut v, "visit.frame", &given).map(Some)
                } else {
                    Some(None)
                };
                let supervision = if named("supervision") {
                    v.enumeration(
                        "visit.supervision",
                        visit.supervision,
                        known::<pb::Supervision>,
                        convert::supervision_from,
                    )
                    .map(Some)
                } else {
                    Some(None)
                };
                (id, expected, local, minutes, frame, supervision)
            });
            v.finish()?;
            let Some((
                Some(id),
                Some(expected),
                Some(local),
                Some(minutes),
                Some(frame),
                Some(supervision),
            )) = parts
            else {
                return Err(ApiError::internal("validated update without its parts"));
            };
            let current = self
                .visit_to_change(&caller.agency, id, &mut call.audit)
                .await?;
            let facts = self.open_case(&on_behalf, current.case_id, "visit").await?;
            // Only participants being set are checked: the ones a visit has were checked already.
            if let Some(frame) = &frame
                && paths
                    .iter()
                    .any(|p| p == "frame" || p == "frame.participants")
            {
                check_people(&facts, None, frame, "visit.frame")?;
            }
            let secret = facts.secret_address;
            let change: VisitChange = Box::new(move |visit, plan| {
                if !visit.status.is_active() {
                    return Err(wrong_status(
                        visit,
                        "only a visit still to take place can be changed",
                    ));
                }
                let (old_start, old_minutes) = (visit.start, visit.duration_minutes);
                if let Some(local) = local {
                    visit.local_start = local;
                }
                if let Some(minutes) = minutes {
                    visit.duration_minutes = minutes;
                }
                (visit.start, visit.end, visit.local_start) =
                    times(visit.local_start, visit.duration_minutes)?;
                let mut changed: Vec<String> = Vec::new();
                if let Some(given) = frame {
                    for path in paths.iter().filter(|p| p.starts_with("frame")) {
                        match path.as_str() {
                            "frame" => visit.frame = given.clone(),
                            "frame.place" => visit.frame.place = given.place,
                            "frame.place_description" => {
                                visit.frame.place_description = given.place_description.clone();
                            }
                            "frame.participants" => {
                                visit.frame.participants = given.participants.clone();
                            }
                            "frame.activity" => visit.frame.activity = given.activity.clone(),
                            "frame.supervisor" => visit.frame.supervisor = given.supervisor.clone(),
                            _ => {}
                        }
                        changed.push(path.clone());
                    }
                }
                if let Some(s) = supervision {
                    visit.supervision = s;
                    changed.push("supervision".into());
                }
                check_against_plan(visit, plan, secret)?;
                let mut events = Vec::new();
                let moved = visit.start != old_start || visit.duration_minutes != old_minutes;
                if moved {
                    // A confirmed visit that moves is confirmed again by someone who knows it moved.
                    visit.status = VisitStatus::Scheduled;
                    events.push(EventChange::VisitRescheduled(pb::VisitRescheduled {
                        visit_id: visit.id.to_string(),
                        parent_id: visit.parent_id.to_string(),
                        previous_start_time: Some(timestamp_to_proto(old_start)),
                        start_time: start_of(visit),
                        duration_minutes: i32::try_from(visit.duration_minutes).unwrap_or(i32::MAX),
                    }));
                }
                if !changed.is_empty() {
                    if !visit.frame_complete() {
                        visit.status = VisitStatus::Scheduled;
                    }
                    events.push(EventChange::VisitUpdated(pb::VisitUpdated {
                        visit_id: visit.id.to_string(),
                        paths: changed,
                        frame_complete: visit.frame_complete(),
                    }));
                }
                Ok(events)
            });
            self.store
                .change_visit(&caller.agency, id, expected, change, call.audit.clone())
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::UpdateVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_confirm_visit(
        &self,
        request: Request<pb::ConfirmVisitRequest>,
    ) -> Result<Response<pb::ConfirmVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ConfirmVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let (id, expected) = id_and_etag(&req.visit_id, &req.etag)?;
            let current = self
                .visit_to_change(&caller.agency, id, &mut call.audit)
                .await?;
            let secret = self
                .open_case(&on_behalf, current.case_id, "visit")
                .await?
                .secret_address;
            let change: VisitChange = Box::new(move |visit, plan| {
                check_against_plan(visit, plan, secret)?;
                visits::confirm(visit)?;
                Ok(vec![EventChange::VisitConfirmed(pb::VisitConfirmed {
                    visit_id: visit.id.to_string(),
                    parent_id: visit.parent_id.to_string(),
                    start_time: start_of(visit),
                })])
            });
            self.store
                .change_visit(&caller.agency, id, expected, change, call.audit.clone())
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::ConfirmVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_cancel_visit(
        &self,
        request: Request<pb::CancelVisitRequest>,
    ) -> Result<Response<pb::CancelVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::CancelVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("visit_id", &req.visit_id);
            let expected = v.etag("etag", &req.etag);
            let cancellation = convert::cancellation_from(
                &mut v,
                "cancellation",
                req.cancellation.as_ref(),
                &caller.subject,
                at,
            );
            v.finish()?;
            let (Some(id), Some(expected), Some(cancellation)) = (id, expected, cancellation)
            else {
                return Err(ApiError::internal(
                    "validated cancellation without its parts",
                ));
            };
            self.visit_to_change_checked(&caller, &on_behalf, id, &mut call.audit)
                .await?;
            let change: VisitChange = Box::new(move |visit, _plan| {
                let by = cancellation.cancelled_by;
                visits::cancel(visit, cancellation)?;
                Ok(vec![EventChange::VisitCancelled(pb::VisitCancelled {
                    visit_id: visit.id.to_string(),
                    parent_id: visit.parent_id.to_string(),
                    cancelled_by: convert::cancelled_by_to(by).into(),
                    start_time: start_of(visit),
                })])
            });
            self.store
                .change_visit(&caller.agency, id, expected, change, call.audit.clone())
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::CancelVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_complete_visit(
        &self,
        request: Request<pb::CompleteVisitRequest>,
    ) -> Result<Response<pb::CompleteVisitResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::CompleteVisit).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("visit_id", &req.visit_id);
            let expected = v.etag("etag", &req.etag);
            let report =
                convert::report_from(&mut v, "report", req.report.as_ref(), &caller.subject, at);
            v.finish()?;
            let (Some(id), Some(expected), Some(report)) = (id, expected, report) else {
                return Err(ApiError::internal("validated report without its parts"));
            };
            self.visit_to_change_checked(&caller, &on_behalf, id, &mut call.audit)
                .await?;
            let change: VisitChange = Box::new(move |visit, _plan| {
                let (concern, involved) = (report.concern, report.foster_parents_involved());
                visits::complete(visit, report, at)?;
                Ok(vec![EventChange::VisitCompleted(pb::VisitCompleted {
                    visit_id: visit.id.to_string(),
                    parent_id: visit.parent_id.to_string(),
                    start_time: start_of(visit),
                    concern,
                    foster_parents_involved: involved,
                })])
            });
            self.store
                .change_visit(&caller.agency, id, expected, change, call.audit.clone())
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::CompleteVisitResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }

    pub(super) async fn handle_record_no_show(
        &self,
        request: Request<pb::RecordNoShowRequest>,
    ) -> Result<Response<pb::RecordNoShowResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::RecordNoShow).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let at = call.audit.at;
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("visit_id", &req.visit_id);
            let expected = v.etag("etag", &req.etag);
            let note = v.optional_text("note", &req.note, convert::MAX_REASON);
            v.finish()?;
            let (Some(id), Some(expected), Some(note)) = (id, expected, note) else {
                return Err(ApiError::internal("validated no-show without its parts"));
            };
            self.visit_to_change_checked(&caller, &on_behalf, id, &mut call.audit)
                .await?;
            let no_show = NoShow {
                note,
                recorded_by: caller.subject.clone(),
                recorded_at: at,
            };
            let change: VisitChange = Box::new(move |visit, _plan| {
                visits::no_show(visit, no_show, at)?;
                Ok(vec![EventChange::VisitNoShow(pb::VisitNoShow {
                    visit_id: visit.id.to_string(),
                    parent_id: visit.parent_id.to_string(),
                    start_time: start_of(visit),
                })])
            });
            self.store
                .change_visit(&caller.agency, id, expected, change, call.audit.clone())
                .await
        }
        .await;
        let visit = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::RecordNoShowResponse {
            visit: Some(convert::visit_to(&visit)),
        }))
    }
}

/// A visit id and its etag.
fn id_and_etag(raw_id: &str, raw_etag: &str) -> Result<(Uuid, i64), ApiError> {
    let mut v = Violations::new();
    let id = v.uuid("visit_id", raw_id);
    let etag = v.etag("etag", raw_etag);
    v.into_result(id.zip(etag))
}

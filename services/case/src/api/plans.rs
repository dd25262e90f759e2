//! The follow-up plan's goals, the reunification plan's care tasks, family group conferences (held
//! or waived), and the decision to reduce the caseworker's follow-up visits.

use super::{CaseApi, Rpc, convert, idempotency, masks};
use crate::model::{self, NewConference};
use landsby_domain::care;
use landsby_domain::time::oslo_date;
use landsby_platform::ApiError;
use landsby_platform::validate::{Violations, request_id};
use landsby_proto::case::{self as pb, case_event::Change as EventChange};
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The most participants one conference lists.
const MAX_PARTICIPANTS: usize = 100;
/// The most actions one conference's plan holds.
const MAX_ACTIONS: usize = 50;

impl CaseApi {
    pub(super) async fn handle_add_follow_up_goal(
        &self,
        request: Request<pb::AddFollowUpGoalRequest>,
    ) -> Result<Response<pb::AddFollowUpGoalResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::AddFollowUpGoal).await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let description = v
                .required("goal", req.goal.as_ref())
                .and_then(|g| v.text("goal.description", &g.description, 500));
            v.finish()?;
            let (Some(id), Some(description)) = (id, description) else {
                return Err(ApiError::internal("validated goal without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(Rpc::AddFollowUpGoal, request_id.flatten(), &req);
            self.store
                .add_goal(&caller.agency, id, description, idem, call.audit.clone())
                .await
        }
        .await;
        let goal = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::AddFollowUpGoalResponse {
            goal: Some(convert::goal_to_proto(&goal)),
        }))
    }

    pub(super) async fn handle_update_follow_up_goal(
        &self,
        request: Request<pb::UpdateFollowUpGoalRequest>,
    ) -> Result<Response<pb::UpdateFollowUpGoalResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::UpdateFollowUpGoal).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let goal = v.required("goal", req.goal.as_ref());
            let case = goal.and_then(|g| v.uuid("goal.case_id", &g.case_id));
            call.audit.case_id = case;
            if let Some(case_id) = case {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let id = goal.and_then(|g| v.uuid("goal.id", &g.id));
            let expected = goal.and_then(|g| v.etag("goal.etag", &g.etag));
            let change = goal.and_then(|g| masks::goal_change(&mut v, g, req.update_mask.as_ref()));
            v.finish()?;
            let (Some(case), Some(id), Some(expected), Some(change)) = (case, id, expected, change)
            else {
                return Err(ApiError::internal("validated update without its parts"));
            };
            self.store
                .update_goal(
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
        let goal = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::UpdateFollowUpGoalResponse {
            goal: Some(convert::goal_to_proto(&goal)),
        }))
    }

    pub(super) async fn handle_list_follow_up_goals(
        &self,
        request: Request<pb::ListFollowUpGoalsRequest>,
    ) -> Result<Response<pb::ListFollowUpGoalsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListFollowUpGoals).await?;
        let req = request.into_inner();
        let page = super::CasePage {
            list: "ListFollowUpGoals",
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
                |g: &crate::model::GoalRecord| g.id,
                async |id, (), after, n| self.store.list_goals(&caller.agency, id, after, n).await,
            )
            .await
            .map(|(goals, token)| {
                let ids = goals.iter().map(|g| g.id).collect();
                ((goals, token), ids)
            });
        let (goals, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListFollowUpGoalsResponse {
            goals: goals.iter().map(convert::goal_to_proto).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn handle_add_care_task(
        &self,
        request: Request<pb::AddCareTaskRequest>,
    ) -> Result<Response<pb::AddCareTaskResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::AddCareTask).await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let task = v.required("task", req.task.as_ref());
            let kind = task.and_then(|t| {
                v.enumeration(
                    "task.kind",
                    t.kind,
                    |r| pb::CareTaskKind::try_from(r).ok(),
                    convert::care_kind_from,
                )
            });
            let description = task.and_then(|t| {
                if kind == Some(care::CareTaskKind::Other) {
                    v.text("task.description", &t.description, 500)
                } else {
                    v.optional_text("task.description", &t.description, 500)
                }
            });
            v.finish()?;
            let (Some(id), Some(kind), Some(description)) = (id, kind, description) else {
                return Err(ApiError::internal("validated task without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(Rpc::AddCareTask, request_id.flatten(), &req);
            self.store
                .add_care_task(
                    &caller.agency,
                    id,
                    kind,
                    description,
                    idem,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let task = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::AddCareTaskResponse {
            task: Some(convert::task_to_proto(&task)),
        }))
    }

    pub(super) async fn handle_move_care_task(
        &self,
        request: Request<pb::MoveCareTaskRequest>,
    ) -> Result<Response<pb::MoveCareTaskResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::MoveCareTask).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let task_id = v.uuid("task_id", &req.task_id);
            let expected = v.etag("etag", &req.etag);
            let to = v.enumeration(
                "to",
                req.to,
                |r| pb::CareTaskHolder::try_from(r).ok(),
                convert::holder_from,
            );
            v.finish()?;
            let (Some(id), Some(task_id), Some(expected), Some(to)) = (id, task_id, expected, to)
            else {
                return Err(ApiError::internal("validated move without its parts"));
            };
            self.store
                .move_care_task(
                    &caller.agency,
                    id,
                    task_id,
                    expected,
                    to,
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let task = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::MoveCareTaskResponse {
            task: Some(convert::task_to_proto(&task)),
        }))
    }

    pub(super) async fn handle_list_care_tasks(
        &self,
        request: Request<pb::ListCareTasksRequest>,
    ) -> Result<Response<pb::ListCareTasksResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListCareTasks).await?;
        let req = request.into_inner();
        let result = async {
            let id = self
                .case_id(&caller, "case_id", &req.case_id, &mut call.audit)
                .await?;
            let tasks = self
                .store
                .list_care_tasks(&caller.agency, id)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            let ids = tasks.iter().map(|t| t.id).collect();
            Ok((tasks, ids))
        }
        .await;
        let tasks = self.auditor.read(call, result).await?;
        let holders: Vec<care::Holder> = tasks.iter().map(|t| t.holder).collect();
        Ok(Response::new(pb::ListCareTasksResponse {
            tasks: tasks.iter().map(convert::task_to_proto).collect(),
            progress: Some(convert::progress_to_proto(&care::progress(&holders))),
        }))
    }

    pub(super) async fn handle_schedule_conference(
        &self,
        request: Request<pb::ScheduleFamilyGroupConferenceRequest>,
    ) -> Result<Response<pb::ScheduleFamilyGroupConferenceResponse>, Status> {
        let (caller, mut call) = self
            .begin(&request, Rpc::ScheduleFamilyGroupConference)
            .await?;
        let mut req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let request_id = request_id(&mut v, "request_id", &req.request_id);
            let conference = v
                .required("conference", req.conference.as_ref())
                .and_then(|c| {
                    let planned_date = v.date("conference.planned_date", c.planned_date.as_ref());
                    let coordinator = v.text("conference.coordinator", &c.coordinator, 200);
                    let participants = if c.participant_ids.len() > MAX_PARTICIPANTS {
                        v.add(
                            "conference.participant_ids",
                            format!("at most {MAX_PARTICIPANTS}"),
                        );
                        None
                    } else {
                        c.participant_ids
                            .iter()
                            .enumerate()
                            .map(|(i, p)| v.uuid(&format!("conference.participant_ids[{i}]"), p))
                            .collect::<Vec<_>>()
                            .into_iter()
                            .collect::<Option<Vec<Uuid>>>()
                    };
                    Some(NewConference {
                        planned_date: planned_date?,
                        coordinator: coordinator?,
                        participant_ids: participants?,
                    })
                });
            v.finish()?;
            let (Some(id), Some(conference)) = (id, conference) else {
                return Err(ApiError::internal("validated conference without its parts"));
            };
            req.request_id.clear();
            let idem = idempotency(
                Rpc::ScheduleFamilyGroupConference,
                request_id.flatten(),
                &req,
            );
            self.store
                .schedule_conference(&caller.agency, id, conference, idem, call.audit.clone())
                .await
        }
        .await;
        let conference = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::ScheduleFamilyGroupConferenceResponse {
            conference: Some(convert::conference_to_proto(&conference)),
        }))
    }

    pub(super) async fn handle_record_conference_outcome(
        &self,
        request: Request<pb::RecordConferenceOutcomeRequest>,
    ) -> Result<Response<pb::RecordConferenceOutcomeResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::RecordConferenceOutcome).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let conference_id = v.uuid("conference_id", &req.conference_id);
            let expected = v.etag("etag", &req.etag);
            let held_on = v.date("held_on", req.held_on.as_ref());
            if held_on.is_some_and(|d| d > today) {
                v.add("held_on", "must not be in the future");
            }
            let actions = if req.actions.len() > MAX_ACTIONS {
                v.add("actions", format!("at most {MAX_ACTIONS}"));
                None
            } else {
                req.actions
                    .iter()
                    .enumerate()
                    .map(|(i, a)| convert::action_from(&mut v, &format!("actions[{i}]"), a))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
            };
            v.finish()?;
            let (Some(id), Some(conference_id), Some(expected), Some(held_on), Some(actions)) =
                (id, conference_id, expected, held_on, actions)
            else {
                return Err(ApiError::internal("validated outcome without its parts"));
            };
            self.store
                .record_conference_outcome(
                    &caller.agency,
                    id,
                    conference_id,
                    expected,
                    model::ConferenceOutcome { held_on, actions },
                    call.audit.clone(),
                )
                .await
        }
        .await;
        let conference = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::RecordConferenceOutcomeResponse {
            conference: Some(convert::conference_to_proto(&conference)),
        }))
    }

    pub(super) async fn handle_list_conferences(
        &self,
        request: Request<pb::ListFamilyGroupConferencesRequest>,
    ) -> Result<Response<pb::ListFamilyGroupConferencesResponse>, Status> {
        let (caller, mut call) = self
            .begin(&request, Rpc::ListFamilyGroupConferences)
            .await?;
        let req = request.into_inner();
        let result = async {
            let id = self
                .case_id(&caller, "case_id", &req.case_id, &mut call.audit)
                .await?;
            let conferences = self
                .store
                .list_conferences(&caller.agency, id)
                .await?
                .ok_or(ApiError::NotFound { resource: "case" })?;
            let ids = conferences.iter().map(|c| c.id).collect();
            Ok((conferences, ids))
        }
        .await;
        let conferences = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListFamilyGroupConferencesResponse {
            conferences: conferences
                .iter()
                .map(convert::conference_to_proto)
                .collect(),
        }))
    }

    pub(super) async fn handle_waive_conference(
        &self,
        request: Request<pb::WaiveFamilyGroupConferenceRequest>,
    ) -> Result<Response<pb::WaiveFamilyGroupConferenceResponse>, Status> {
        let (caller, mut call) = self
            .begin(&request, Rpc::WaiveFamilyGroupConference)
            .await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let expected = v.etag("etag", &req.etag);
            let reason = v.text("reason", &req.reason, 2000);
            v.finish()?;
            let (Some(id), Some(expected), Some(reason)) = (id, expected, reason) else {
                return Err(ApiError::internal("validated waiver without its parts"));
            };
            let change: model::CaseChange = Box::new(move |case| {
                case.conference_waiver_reason = Some(reason);
                Ok(())
            });
            let event = EventChange::CaseUpdated(pb::CaseUpdated {
                paths: vec!["conference_waiver_reason".into()],
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
        Ok(Response::new(pb::WaiveFamilyGroupConferenceResponse {
            case: Some(convert::case_to_proto(&case, today)),
        }))
    }

    pub(super) async fn handle_reduce_follow_up_visits(
        &self,
        request: Request<pb::ReduceFollowUpVisitsRequest>,
    ) -> Result<Response<pb::ReduceFollowUpVisitsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ReduceFollowUpVisits).await?;
        let req = request.into_inner();
        let today = oslo_date(call.audit.at);
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = id;
            if let Some(case_id) = id {
                self.need_to_know(&caller, case_id, &mut call.audit).await?;
            }
            let expected = v.etag("etag", &req.etag);
            let reduction = v
                .required("reduction", req.reduction.as_ref())
                .and_then(|r| {
                    let decided_on = v.date("reduction.decided_on", r.decided_on.as_ref());
                    let expires_on = v.date("reduction.expires_on", r.expires_on.as_ref());
                    let reason = v.text("reduction.reason", &r.reason, 2000);
                    if let (Some(from), Some(to)) = (decided_on, expires_on)
                        && to < from
                    {
                        v.add("reduction.expires_on", "must not be before decided_on");
                    }
                    Some(model::FollowUpReduction {
                        decided_on: decided_on?,
                        expires_on: expires_on?,
                        reason: reason?,
                    })
                });
            v.finish()?;
            let (Some(id), Some(expected), Some(reduction)) = (id, expected, reduction) else {
                return Err(ApiError::internal("validated reduction without its parts"));
            };
            let change: model::CaseChange = Box::new(move |case| {
                case.follow_up_reduction = Some(reduction);
                Ok(())
            });
            let event = EventChange::CaseUpdated(pb::CaseUpdated {
                paths: vec!["follow_up_reduction".into()],
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
        Ok(Response::new(pb::ReduceFollowUpVisitsResponse {
            case: Some(convert::case_to_proto(&case, today)),
        }))
    }
}

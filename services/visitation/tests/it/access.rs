//! Need to know through the visitation service's gRPC API, on SQLite and on PostgreSQL: every RPC
//! with a valid request, as the assigned caseworker and team lead, as staff of the agency not assigned
//! to the case, as the same person in another agency, and with ids that do not exist. The case service
//! decides; the visitation service answers NOT_FOUND as if the plan or visit were not there.

use crate::support::*;
use landsby_domain::Role;
use landsby_platform::db::DbPool;
use landsby_proto::visitation as pb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY, TEAM, authed, keys};
use landsby_visitation::api::Rpc;
use tonic::{Code, Status};
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    every_rpc_answers_staff_without_need_to_know_as_if_the_case_were_not_there
);

/// The plan and visit the calls are about.
struct Target {
    case_id: String,
    mother_id: String,
    plan: pb::VisitationPlan,
    visit: pb::Visit,
}

/// `rpc` about `t`, with a request valid in every other respect.
async fn call(rpc: Rpc, env: &Env, token: &str, t: &Target) -> Result<(), Status> {
    let mut c =
        pb::visitation_service_client::VisitationServiceClient::new(env.visitation.channel());
    let v = &t.visit;
    macro_rules! go {
        ($method:ident, $req:expr) => {
            c.$method(authed(token, $req)).await.map(|_| ())
        };
    }
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    };
    match rpc {
        Rpc::GetVisitationPlan => go!(
            get_visitation_plan,
            pb::GetVisitationPlanRequest {
                plan_id: t.plan.id.clone()
            }
        ),
        Rpc::ListVisitationPlans => go!(
            list_visitation_plans,
            pb::ListVisitationPlansRequest {
                case_id: t.case_id.clone(),
                ..Default::default()
            }
        ),
        Rpc::ListScopeVersions => go!(
            list_scope_versions,
            pb::ListScopeVersionsRequest {
                plan_id: t.plan.id.clone(),
                ..Default::default()
            }
        ),
        Rpc::BatchApplyComputedScopes => go!(
            batch_apply_computed_scopes,
            pb::BatchApplyComputedScopesRequest {
                items: vec![pb::ComputedScopeItem::default()],
            }
        ),
        Rpc::AdjustVisitationPlan => {
            let mut scope = t.plan.scope.clone().unwrap_or_default();
            scope.duration_minutes = 120;
            go!(
                adjust_visitation_plan,
                pb::AdjustVisitationPlanRequest {
                    plan_id: t.plan.id.clone(),
                    etag: t.plan.etag.clone(),
                    scope: Some(scope),
                    update_mask: mask(&["duration_minutes"]),
                    rationale: "the child asked for it".into(),
                }
            )
        }
        Rpc::ProposeSchedule => go!(
            propose_schedule,
            pb::ProposeScheduleRequest {
                plan_id: t.plan.id.clone(),
                weeks: 4,
                ..Default::default()
            }
        ),
        Rpc::ScheduleVisit => go!(
            schedule_visit,
            pb::ScheduleVisitRequest {
                request_id: String::new(),
                visit: Some(pb::Visit {
                    case_id: t.case_id.clone(),
                    parent_id: t.mother_id.clone(),
                    local_start: Some(at(2027, 3, 9, 17, 0)),
                    duration_minutes: 90,
                    frame: Some(frame(&t.mother_id, "staff-2")),
                    ..Default::default()
                }),
            }
        ),
        Rpc::GetVisit => go!(
            get_visit,
            pb::GetVisitRequest {
                visit_id: v.id.clone()
            }
        ),
        Rpc::ListVisits => go!(
            list_visits,
            pb::ListVisitsRequest {
                case_id: t.case_id.clone(),
                ..Default::default()
            }
        ),
        Rpc::UpdateVisit => go!(
            update_visit,
            pb::UpdateVisitRequest {
                visit: Some(pb::Visit {
                    duration_minutes: 60,
                    ..v.clone()
                }),
                update_mask: mask(&["duration_minutes"]),
            }
        ),
        Rpc::ConfirmVisit => go!(
            confirm_visit,
            pb::ConfirmVisitRequest {
                visit_id: v.id.clone(),
                etag: v.etag.clone(),
            }
        ),
        Rpc::CancelVisit => go!(
            cancel_visit,
            pb::CancelVisitRequest {
                visit_id: v.id.clone(),
                etag: v.etag.clone(),
                cancellation: Some(pb::Cancellation {
                    cancelled_by: pb::CancelledBy::Parent.into(),
                    reason: "the mother is ill".into(),
                    ..Default::default()
                }),
            }
        ),
        Rpc::CompleteVisit => go!(
            complete_visit,
            pb::CompleteVisitRequest {
                visit_id: v.id.clone(),
                etag: v.etag.clone(),
                report: Some(report(false)),
            }
        ),
        Rpc::RecordNoShow => go!(
            record_no_show,
            pb::RecordNoShowRequest {
                visit_id: v.id.clone(),
                etag: v.etag.clone(),
                note: String::new(),
            }
        ),
        Rpc::BatchGetCaseVisitation => go!(
            batch_get_case_visitation,
            pb::BatchGetCaseVisitationRequest::default()
        ),
        Rpc::WatchEvents => go!(watch_events, pb::WatchEventsRequest::default()),
    }
}

async fn count(env: &Env, sql: &'static str) -> i64 {
    match env.visitation.db.pool() {
        DbPool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(&p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(&p).await.unwrap(),
    }
}

async fn every_rpc_answers_staff_without_need_to_know_as_if_the_case_were_not_there(
    backend: Backend,
) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let visit = cw
        .schedule(crate::support::visit(
            &family,
            at(2027, 3, 2, 17, 0),
            "staff-1",
        ))
        .await
        .unwrap();
    let target = Target {
        case_id: family.case_id.clone(),
        mother_id: family.mother_id.clone(),
        plan: plan.clone(),
        visit: visit.clone(),
    };
    let missing = Target {
        case_id: Uuid::now_v7().to_string(),
        mother_id: family.mother_id.clone(),
        plan: pb::VisitationPlan {
            id: Uuid::now_v7().to_string(),
            ..plan.clone()
        },
        visit: pb::Visit {
            id: Uuid::now_v7().to_string(),
            case_id: Uuid::now_v7().to_string(),
            ..visit.clone()
        },
    };
    let events_before = count(&env, "SELECT COUNT(*) FROM events").await;
    let refusals_before = count(
        &env,
        "SELECT COUNT(*) FROM audit_log WHERE outcome IN ('NOT_FOUND', 'PERMISSION_DENIED')",
    )
    .await;

    let staff = [Role::Caseworker, Role::TeamLead];
    let mut refused = 0;
    for &rpc in Rpc::ALL {
        for &role in Role::ALL {
            let allowed = rpc.allowed().contains(&role);
            let unassigned = match role {
                Role::Caseworker => keys().token_in("caseworker-9", AGENCY, &[role], &["team-9"]),
                _ => keys().token_in("lead-9", AGENCY, &[role], &["team-9"]),
            };
            let assigned_subject = if role == Role::Caseworker {
                "caseworker-1"
            } else {
                "lead-1"
            };
            let other_agency = keys().token_in(assigned_subject, OTHER_AGENCY, &[role], &[TEAM]);
            let assigned = keys().token_in(assigned_subject, AGENCY, &[role], &[TEAM]);
            let mut answers = Vec::new();
            for (kind, token, t) in [
                ("not assigned", &unassigned, &target),
                ("other agency", &other_agency, &target),
                ("missing", &assigned, &missing),
            ] {
                // The worker acts for the whole agency: "not assigned" does not apply to it, and its
                // own RPCs take requests these do not fill; their roles are what is checked here.
                let worker_only = !rpc.allowed().iter().any(|r| staff.contains(r));
                if allowed && (role == Role::Service || worker_only) {
                    continue;
                }
                let err = call(rpc, &env, token, t)
                    .await
                    .expect_err(&format!("{rpc:?} as {role:?}, {kind}"));
                let want = if allowed {
                    Code::NotFound
                } else {
                    Code::PermissionDenied
                };
                assert_eq!(
                    err.code(),
                    want,
                    "{rpc:?} as {role:?}, {kind}: {}",
                    err.message()
                );
                refused += 1;
                answers.push((kind, err));
            }
            if let [.., (_, other), (_, gone)] = answers.as_slice() {
                assert_eq!(
                    (other.code(), other.message()),
                    (gone.code(), gone.message()),
                    "{rpc:?} as {role:?}: another agency's and a missing one differ"
                );
            }
        }
    }
    // Nothing changed, and each refusal left its row.
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM events").await,
        events_before
    );
    assert_eq!(cw.get(&visit.id).await.unwrap(), visit);
    assert_eq!(cw.plan(&plan.id).await.unwrap(), plan);
    let refusals = count(
        &env,
        "SELECT COUNT(*) FROM audit_log WHERE outcome IN ('NOT_FOUND', 'PERMISSION_DENIED')",
    )
    .await;
    assert_eq!(refusals - refusals_before, refused);
    assert!(refused > 100, "{refused} refusals");

    // The assigned caseworker and the team's lead get through on reads.
    for token in [
        keys().token_in("caseworker-1", AGENCY, &[Role::Caseworker], &[]),
        keys().token_in("lead-1", AGENCY, &[Role::TeamLead], &[TEAM]),
    ] {
        for rpc in [
            Rpc::GetVisitationPlan,
            Rpc::ListVisitationPlans,
            Rpc::ListScopeVersions,
            Rpc::ProposeSchedule,
            Rpc::GetVisit,
            Rpc::ListVisits,
        ] {
            call(rpc, &env, &token, &target)
                .await
                .unwrap_or_else(|e| panic!("{rpc:?}: {e:?}"));
        }
    }
}

//! Need to know through the gRPC API, on SQLite and on PostgreSQL: the access matrix (every RPC ×
//! every role × {own agency and assigned, own agency not assigned, other agency, nonexistent id}),
//! lists that show only the caller's cases, reassignment by team leads only, and emergency access
//! (break-glass): a reason, a time limit, and a flag on every audit row made under it.

use crate::support::*;
use landsby_case::api::Rpc;
use landsby_domain::Role;
use landsby_platform::db::DbPool;
use landsby_proto::case::{self as pb, case_service_client::CaseServiceClient};
use landsby_testkit::audit::audit_rows;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY, TEAM, TestServer, authed, keys};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    every_rpc_every_role_and_every_kind_of_case_gets_the_expected_answer,
    lists_show_a_caseworker_their_cases_and_a_team_lead_their_teams,
    only_a_team_lead_changes_who_a_case_is_assigned_to,
    emergency_access_needs_a_reason_lasts_a_while_and_flags_every_call,
);

/// The case a call is about, and the ids of its parts.
#[derive(Clone)]
struct Target {
    case: String,
    member: String,
    review: String,
}

impl Target {
    fn nonexistent() -> Self {
        Self {
            case: Uuid::now_v7().to_string(),
            member: Uuid::now_v7().to_string(),
            review: Uuid::now_v7().to_string(),
        }
    }
}

/// Who calls: a subject with roles, in an agency, in teams.
struct Who {
    subject: &'static str,
    agency: &'static str,
    role: Role,
    teams: &'static [&'static str],
}

impl Who {
    fn token(&self) -> String {
        keys().token_in(self.subject, self.agency, &[self.role], self.teams)
    }
}

/// The person of `role` who may open the case (or, for administrators and auditors, who would).
fn assigned(role: Role) -> Who {
    let subject = match role {
        Role::Caseworker => "caseworker-1",
        Role::TeamLead => "lead-1",
        Role::Service => "landsby-worker",
        Role::AgencyAdmin => "admin-1",
        Role::Auditor => "auditor-1",
        Role::Portal => "oslo-portal",
    };
    Who {
        subject,
        agency: AGENCY,
        role,
        teams: &[TEAM],
    }
}

/// A person of `role` in the agency who is not assigned: another caseworker, a lead of another team.
fn not_assigned(role: Role) -> Who {
    Who {
        subject: match role {
            Role::Caseworker => "caseworker-9",
            Role::TeamLead => "lead-9",
            _ => assigned(role).subject,
        },
        teams: &["team-9"],
        ..assigned(role)
    }
}

/// The same person, by name and team, in another agency.
fn in_other_agency(role: Role) -> Who {
    Who {
        agency: OTHER_AGENCY,
        ..assigned(role)
    }
}

/// Calls `rpc` about `t` with the smallest request that names it: enough to reach the need-to-know
/// check, which comes before the rest of the request is validated.
async fn call(rpc: Rpc, channel: &Channel, token: &str, t: &Target) -> Result<(), Status> {
    let mut c = CaseServiceClient::new(channel.clone());
    let case_id = t.case.clone();
    macro_rules! go {
        ($method:ident, $req:expr) => {
            c.$method(authed(token, $req)).await.map(|_| ())
        };
    }
    match rpc {
        Rpc::CreateCase => go!(create_case, pb::CreateCaseRequest::default()),
        Rpc::GetCase => go!(
            get_case,
            pb::GetCaseRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::ListCases => go!(list_cases, pb::ListCasesRequest::default()),
        Rpc::UpdateCase => go!(
            update_case,
            pb::UpdateCaseRequest {
                case: Some(pb::Case {
                    id: case_id,
                    ..Default::default()
                }),
                update_mask: None,
            }
        ),
        Rpc::CloseCase => go!(
            close_case,
            pb::CloseCaseRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::BreakGlass => go!(
            break_glass,
            pb::BreakGlassRequest {
                case_id,
                reason: String::new(),
            }
        ),
        Rpc::AddVillageMember => go!(
            add_village_member,
            pb::AddVillageMemberRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::UpdateVillageMember => go!(
            update_village_member,
            pb::UpdateVillageMemberRequest {
                member: Some(pb::VillageMember {
                    id: t.member.clone(),
                    case_id,
                    ..Default::default()
                }),
                update_mask: None,
            }
        ),
        Rpc::RemoveVillageMember => go!(
            remove_village_member,
            pb::RemoveVillageMemberRequest {
                case_id,
                member_id: t.member.clone(),
                ..Default::default()
            }
        ),
        Rpc::ListVillageMembers => go!(
            list_village_members,
            pb::ListVillageMembersRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::RecordBoardDecision => go!(
            record_board_decision,
            pb::RecordBoardDecisionRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::ListBoardDecisions => go!(
            list_board_decisions,
            pb::ListBoardDecisionsRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::ScheduleReview => go!(
            schedule_review,
            pb::ScheduleReviewRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::ListReviews => go!(
            list_reviews,
            pb::ListReviewsRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::CompleteReview => go!(
            complete_review,
            pb::CompleteReviewRequest {
                case_id,
                review_id: t.review.clone(),
                ..Default::default()
            }
        ),
        Rpc::ApproveDecision => go!(
            approve_decision,
            pb::ApproveDecisionRequest {
                case_id,
                review_id: t.review.clone(),
                ..Default::default()
            }
        ),
        Rpc::RejectDecision => go!(
            reject_decision,
            pb::RejectDecisionRequest {
                case_id,
                review_id: t.review.clone(),
                ..Default::default()
            }
        ),
        Rpc::GetReadiness => go!(get_readiness, pb::GetReadinessRequest { case_id }),
        Rpc::AddFollowUpGoal => go!(
            add_follow_up_goal,
            pb::AddFollowUpGoalRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::UpdateFollowUpGoal => go!(
            update_follow_up_goal,
            pb::UpdateFollowUpGoalRequest {
                goal: Some(pb::FollowUpGoal {
                    id: Uuid::now_v7().to_string(),
                    case_id,
                    ..Default::default()
                }),
                update_mask: None,
            }
        ),
        Rpc::ListFollowUpGoals => go!(
            list_follow_up_goals,
            pb::ListFollowUpGoalsRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::AddCareTask => go!(
            add_care_task,
            pb::AddCareTaskRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::MoveCareTask => go!(
            move_care_task,
            pb::MoveCareTaskRequest {
                case_id,
                task_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }
        ),
        Rpc::ListCareTasks => go!(list_care_tasks, pb::ListCareTasksRequest { case_id }),
        Rpc::ScheduleFamilyGroupConference => go!(
            schedule_family_group_conference,
            pb::ScheduleFamilyGroupConferenceRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::RecordConferenceOutcome => go!(
            record_conference_outcome,
            pb::RecordConferenceOutcomeRequest {
                case_id,
                conference_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }
        ),
        Rpc::ListFamilyGroupConferences => go!(
            list_family_group_conferences,
            pb::ListFamilyGroupConferencesRequest { case_id }
        ),
        Rpc::WaiveFamilyGroupConference => go!(
            waive_family_group_conference,
            pb::WaiveFamilyGroupConferenceRequest {
                case_id,
                ..Default::default()
            }
        ),
        Rpc::ReduceFollowUpVisits => go!(
            reduce_follow_up_visits,
            pb::ReduceFollowUpVisitsRequest {
                case_id,
                ..Default::default()
            }
        ),
        // The batches name their cases in their items: a case the agency does not have fails the
        // whole call as not found.
        Rpc::BatchSyncVisitFacts => go!(
            batch_sync_visit_facts,
            pb::BatchSyncVisitFactsRequest {
                items: vec![pb::VisitFactsItem {
                    case_id,
                    ..Default::default()
                }],
            }
        ),
        Rpc::BatchSyncDueReviews => go!(
            batch_sync_due_reviews,
            pb::BatchSyncDueReviewsRequest {
                // Valid, so that the worker's refusals come from the store (it is not asked need
                // to know: it acts for the whole agency).
                items: vec![pb::DueReviewsItem {
                    case_id,
                    case_version: 1,
                    policy_version: "access-matrix".into(),
                    reviews: vec![],
                    computed_on: Some(date(2026, 1, 1)),
                }],
            }
        ),
        Rpc::BatchGetCaseSnapshots => go!(
            batch_get_case_snapshots,
            pb::BatchGetCaseSnapshotsRequest {
                case_ids: vec![case_id],
            }
        ),
        Rpc::WatchEvents => go!(watch_events, pb::WatchEventsRequest::default()),
    }
}

/// The RPCs that are not about one case named in the request: need to know shapes what they
/// answer (lists, snapshots, the feed) or they make a case; tested on their own below.
fn about_no_one_case(rpc: Rpc) -> bool {
    matches!(
        rpc,
        Rpc::CreateCase | Rpc::ListCases | Rpc::BatchGetCaseSnapshots | Rpc::WatchEvents
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Assigned,
    NotAssigned,
    OtherAgency,
    Nonexistent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The role may not make the call at all.
    Denied,
    /// As if the case were not there.
    NotFound,
    /// The call gets past roles and need to know (and may then fail on its content).
    Through,
}

fn expected(rpc: Rpc, role: Role, kind: Kind) -> Expect {
    if !rpc.allowed().contains(&role) {
        return Expect::Denied;
    }
    if about_no_one_case(rpc) {
        return Expect::Through;
    }
    match (kind, role) {
        (Kind::Assigned, _) | (Kind::NotAssigned, Role::Service) => Expect::Through,
        // Emergency access is for those who may not open the case: the assigned are refused
        // (FAILED_PRECONDITION, which is "through").
        (Kind::NotAssigned, _) if rpc == Rpc::BreakGlass => Expect::Through,
        _ => Expect::NotFound,
    }
}

async fn count(server: &TestServer, sql: &'static str) -> i64 {
    match server.db.pool() {
        DbPool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(&p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(&p).await.unwrap(),
    }
}

/// A case of the agency assigned to caseworker-1 in team-1, with a mother and a review.
async fn assigned_case(server: &TestServer) -> (pb::Case, Target) {
    let mut cw = Client::caseworker(server);
    let case = cw.create(new_case()).await.unwrap();
    let member = cw.add_member(&case.id, mother()).await.unwrap();
    let review = cw
        .schedule(
            &case.id,
            pb::Review {
                kind: pb::ReviewKind::StepReview.into(),
                due_date: Some(date(2027, 1, 1)),
                note: "look at it".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let target = Target {
        case: case.id.clone(),
        member: member.id,
        review: review.id,
    };
    (cw.get(&case.id).await.unwrap(), target)
}

async fn every_rpc_every_role_and_every_kind_of_case_gets_the_expected_answer(backend: Backend) {
    let server = server(backend).await;
    let channel = server.channel();
    let (case, target) = assigned_case(&server).await;
    let events_before = count(&server, "SELECT COUNT(*) FROM events").await;
    let audit_before = audit_rows(&server).await.len();

    // The refusals first, so that nothing a granted call does can hide one.
    let mut refused: Vec<(String, String, &'static str, &'static str)> = Vec::new();
    let mut checked = 0;
    for &rpc in Rpc::ALL {
        for &role in Role::ALL {
            let nonexistent = Target::nonexistent();
            let cases = [
                (Kind::NotAssigned, not_assigned(role), &target),
                (Kind::OtherAgency, in_other_agency(role), &target),
                (Kind::Nonexistent, assigned(role), &nonexistent),
            ];
            let mut answers = Vec::new();
            for (kind, who, t) in cases {
                let want = expected(rpc, role, kind);
                if want == Expect::Through || rpc == Rpc::BreakGlass && want != Expect::Denied {
                    // Granted calls are made below; a grant is tested on its own.
                    continue;
                }
                let got = call(rpc, &channel, &who.token(), t).await;
                let err =
                    got.expect_err(&format!("{rpc:?} as {role:?} on {kind:?} must be refused"));
                let code = match want {
                    Expect::Denied => Code::PermissionDenied,
                    _ => Code::NotFound,
                };
                assert_eq!(
                    err.code(),
                    code,
                    "{rpc:?} as {role:?} on {kind:?}: {}",
                    err.message()
                );
                refused.push((
                    who.subject.to_owned(),
                    who.agency.to_owned(),
                    rpc.method(),
                    if code == Code::NotFound {
                        "NOT_FOUND"
                    } else {
                        "PERMISSION_DENIED"
                    },
                ));
                answers.push((kind, err));
                checked += 1;
            }
            // Another agency's case and a case that is not there cannot be told apart.
            let other = answers.iter().find(|(k, _)| *k == Kind::OtherAgency);
            let missing = answers.iter().find(|(k, _)| *k == Kind::Nonexistent);
            if let (Some((_, a)), Some((_, b))) = (other, missing) {
                assert_eq!(
                    (a.code(), a.message(), a.details()),
                    (b.code(), b.message(), b.details()),
                    "{rpc:?} as {role:?}: another agency's case and a missing one differ"
                );
            }
        }
    }

    // Nothing changed, and every refusal left exactly its audit row.
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM events").await,
        events_before
    );
    let mut cw = Client::caseworker(&server);
    assert_eq!(cw.get(&case.id).await.unwrap(), case);
    let rows = audit_rows(&server).await;
    let mut audited: Vec<(String, String, &str, &str)> = rows[audit_before..]
        .iter()
        // Less the assigned caseworker's read just above.
        .filter(|r| r.outcome != "OK")
        .map(|r| {
            (
                r.subject.clone(),
                r.agency.clone(),
                Rpc::ALL
                    .iter()
                    .map(|x| x.method())
                    .find(|m| *m == r.rpc)
                    .unwrap_or("?"),
                if r.outcome == "NOT_FOUND" {
                    "NOT_FOUND"
                } else if r.outcome == "PERMISSION_DENIED" {
                    "PERMISSION_DENIED"
                } else {
                    "other"
                },
            )
        })
        .collect();
    let mut expected_rows = refused.clone();
    audited.sort();
    expected_rows.sort();
    if audited != expected_rows {
        let mut extra = audited.clone();
        let mut missing = Vec::new();
        for row in &expected_rows {
            match extra.iter().position(|r| r == row) {
                Some(i) => {
                    extra.remove(i);
                }
                None => missing.push(row.clone()),
            }
        }
        panic!("every refusal audited, once: missing {missing:?}, extra {extra:?}");
    }

    // Then the granted calls: past roles and need to know.
    for &rpc in Rpc::ALL {
        for &role in Role::ALL {
            for (kind, who) in [
                (Kind::Assigned, assigned(role)),
                (Kind::NotAssigned, not_assigned(role)),
            ] {
                if expected(rpc, role, kind) != Expect::Through
                    || rpc == Rpc::BreakGlass && kind == Kind::NotAssigned
                {
                    continue;
                }
                let got = call(rpc, &channel, &who.token(), &target).await;
                if let Err(err) = got {
                    assert!(
                        !matches!(
                            err.code(),
                            Code::NotFound | Code::PermissionDenied | Code::Unauthenticated
                        ),
                        "{rpc:?} as {role:?} on {kind:?} must get through: {:?} {}",
                        err.code(),
                        err.message()
                    );
                }
                checked += 1;
            }
        }
    }
    // Every RPC × role × kind of case (33 × 5 × 4), less the grants tested on their own.
    assert!(checked > 400, "{checked} calls checked");
    assert!(refused.len() > 300, "{} refusals", refused.len());
}

async fn lists_show_a_caseworker_their_cases_and_a_team_lead_their_teams(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mine = cw.create(new_case()).await.unwrap();
    let co = cw
        .create(pb::Case {
            assigned_caseworker: "caseworker-2".into(),
            co_caseworker: "caseworker-1".into(),
            ..new_case()
        })
        .await
        .unwrap();
    let other_team = cw.create(others_case()).await.unwrap();
    let ids = |r: pb::ListCasesResponse| {
        let mut ids: Vec<String> = r.cases.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let list = |who: Who| {
        let server = &server;
        async move {
            let mut c = Client::new(server, who.token());
            ids(c.list(pb::ListCasesRequest::default()).await.unwrap())
        }
    };
    // The co-caseworker sees the case too; neither sees the one they are not on.
    assert_eq!(
        list(assigned(Role::Caseworker)).await,
        sorted(vec![&mine.id, &co.id])
    );
    assert_eq!(
        list(Who {
            subject: "caseworker-2",
            ..assigned(Role::Caseworker)
        })
        .await,
        sorted(vec![&co.id, &other_team.id])
    );
    assert!(list(not_assigned(Role::Caseworker)).await.is_empty());
    // A team lead sees the cases of the teams in their token.
    assert_eq!(
        list(assigned(Role::TeamLead)).await,
        sorted(vec![&mine.id, &co.id])
    );
    assert_eq!(
        list(Who {
            teams: &["team-1", "team-2"],
            ..assigned(Role::TeamLead)
        })
        .await,
        sorted(vec![&mine.id, &co.id, &other_team.id])
    );
    assert!(list(not_assigned(Role::TeamLead)).await.is_empty());
    // The worker sees every case of its agency, nobody another agency's.
    assert_eq!(list(assigned(Role::Service)).await.len(), 3);
    assert!(list(in_other_agency(Role::Caseworker)).await.is_empty());
    // The co-caseworker opens the case; another caseworker does not.
    let mut c1 = Client::caseworker(&server);
    assert_eq!(c1.get(&co.id).await.unwrap().co_caseworker, "caseworker-1");
    let mut c9 = Client::new(&server, not_assigned(Role::Caseworker).token());
    assert_eq!(c9.get(&co.id).await.unwrap_err().code(), Code::NotFound);
    // A team is required and bounded.
    for team in ["", &"t".repeat(65)] {
        let err = cw
            .create(pb::Case {
                team: team.to_owned(),
                ..new_case()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), ["case.team"]);
    }
}

async fn only_a_team_lead_changes_who_a_case_is_assigned_to(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let update = |c: &pb::Case, paths: &[&str], change: pb::Case| pb::UpdateCaseRequest {
        case: Some(pb::Case {
            id: c.id.clone(),
            etag: c.etag.clone(),
            ..change
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    // The caseworker cannot hand the case on, or move it to another team.
    for (path, change) in [
        (
            "assigned_caseworker",
            pb::Case {
                assigned_caseworker: "caseworker-9".into(),
                ..Default::default()
            },
        ),
        (
            "co_caseworker",
            pb::Case {
                co_caseworker: "caseworker-9".into(),
                ..Default::default()
            },
        ),
        (
            "team",
            pb::Case {
                team: "team-9".into(),
                ..Default::default()
            },
        ),
    ] {
        let err = cw
            .inner
            .update_case(cw.req(update(&case, &[path], change)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{path}");
    }
    assert_eq!(cw.get(&case.id).await.unwrap(), case);
    // The team lead adds a co-caseworker, who can then open the case; clearing it closes it again.
    let mut lead = Client::new(&server, assigned(Role::TeamLead).token());
    let changed = lead
        .inner
        .update_case(lead.req(update(
            &case,
            &["co_caseworker"],
            pb::Case {
                co_caseworker: "caseworker-9".into(),
                ..Default::default()
            },
        )))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(changed.co_caseworker, "caseworker-9");
    let mut c9 = Client::new(&server, not_assigned(Role::Caseworker).token());
    assert_eq!(c9.get(&case.id).await.unwrap().id, case.id);
    let cleared = lead
        .inner
        .update_case(lead.req(update(&changed, &["co_caseworker"], pb::Case::default())))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(cleared.co_caseworker, "");
    assert_eq!(c9.get(&case.id).await.unwrap_err().code(), Code::NotFound);
    // Moving the case to another team takes it out of this lead's sight.
    lead.inner
        .update_case(lead.req(update(
            &cleared,
            &["team"],
            pb::Case {
                team: "team-9".into(),
                ..Default::default()
            },
        )))
        .await
        .unwrap();
    assert_eq!(lead.get(&case.id).await.unwrap_err().code(), Code::NotFound);
    let mut lead9 = Client::new(&server, not_assigned(Role::TeamLead).token());
    assert_eq!(lead9.get(&case.id).await.unwrap().team, "team-9");
}

async fn emergency_access_needs_a_reason_lasts_a_while_and_flags_every_call(backend: Backend) {
    let server = server(backend).await;
    let (case, _) = assigned_case(&server).await;
    let mut c9 = Client::new(&server, not_assigned(Role::Caseworker).token());
    assert_eq!(c9.get(&case.id).await.unwrap_err().code(), Code::NotFound);
    let grant = |case_id: &str, reason: &str| pb::BreakGlassRequest {
        case_id: case_id.into(),
        reason: reason.into(),
    };
    // A reason of substance is required; the case must be there for the caller's agency.
    for reason in ["", "   ", "because"] {
        let err = c9
            .inner
            .break_glass(c9.req(grant(&case.id, reason)))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), ["reason"], "{reason:?}");
    }
    let reason = "Akutt plassering natt til lørdag; saksbehandler utilgjengelig";
    for missing in [Uuid::now_v7().to_string()] {
        let err = c9
            .inner
            .break_glass(c9.req(grant(&missing, reason)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    let mut bergen = Client::new(&server, in_other_agency(Role::Caseworker).token());
    let err = bergen
        .inner
        .break_glass(bergen.req(grant(&case.id, reason)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Whoever may open the case already is told so.
    let mut cw = Client::caseworker(&server);
    let err = cw
        .inner
        .break_glass(cw.req(grant(&case.id, reason)))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["ALREADY_HAS_ACCESS"]);
    // Administrators and auditors cannot break the glass.
    for role in [Role::AgencyAdmin, Role::Auditor] {
        let mut c = Client::new(&server, assigned(role).token());
        let err = c
            .inner
            .break_glass(c.req(grant(&case.id, reason)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let changed_before = cw.get(&case.id).await.unwrap();
    assert_eq!(changed_before, case, "no refusal changed the case");

    // Granted: for the configured time (4 hours by default), to this caller only.
    let granted = c9
        .inner
        .break_glass(c9.req(grant(&case.id, reason)))
        .await
        .unwrap()
        .into_inner();
    let from = granted.grant_time.unwrap();
    let until = granted.expire_time.unwrap();
    assert_eq!(until.seconds - from.seconds, 4 * 3600);
    assert_eq!(c9.get(&case.id).await.unwrap().id, case.id);
    let mut lead9 = Client::new(&server, not_assigned(Role::TeamLead).token());
    assert_eq!(
        lead9.get(&case.id).await.unwrap_err().code(),
        Code::NotFound
    );

    // The grant and every call under it are flagged; the assigned caseworker's calls are not.
    let rows = audit_rows(&server).await;
    let of_c9: Vec<_> = rows
        .iter()
        .filter(|r| r.subject == "caseworker-9" && r.outcome == "OK")
        .collect();
    assert_eq!(of_c9.len(), 2, "the grant and the read");
    assert!(of_c9.iter().all(|r| r.break_glass));
    assert_eq!(of_c9[0].rpc, Rpc::BreakGlass.method());
    assert_eq!(of_c9[1].rpc, Rpc::GetCase.method());
    assert!(
        rows.iter()
            .filter(|r| r.subject == "caseworker-1")
            .all(|r| !r.break_glass)
    );
    // The reason is kept with the grant, not in the audit row.
    assert!(
        rows.iter()
            .all(|r| !format!("{r:?}").contains("utilgjengelig"))
    );

    // After the grant lapses the case is closed to them again.
    let sql = "UPDATE break_glass_grants SET expires_at = granted_at";
    match server.db.pool() {
        DbPool::Postgres(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
        DbPool::Sqlite(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
    }
    assert_eq!(c9.get(&case.id).await.unwrap_err().code(), Code::NotFound);
}

//! The staircase through the gRPC API, on SQLite and on PostgreSQL: reviews and decisions, readiness,
//! approval by a team lead who is not the decider, the follow-up and reunification plans, family group
//! conferences, the worker's syncs, and the event feed.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::case::{self as pb, case_event::Change};
use landsby_proto::common as cpb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY, TestDb, TestServer};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

landsby_testkit::on_both_backends!(
    reviews_are_scheduled_and_listed_by_due_date_with_filters,
    an_advance_the_staircase_refuses_names_every_unmet_condition_and_changes_nothing,
    an_advance_waits_for_a_team_lead_who_is_not_the_decider,
    a_rejected_decision_leaves_the_case_where_it_was,
    a_second_step_or_goal_decision_waits_until_the_pending_one_is_settled,
    a_hold_takes_effect_at_once_and_needs_no_approval,
    the_whole_staircase_up_to_step_three_and_back_to_maintenance,
    readiness_lists_every_condition_and_follows_the_facts,
    the_childs_view_or_why_it_could_not_be_obtained_is_required,
    follow_up_goals_are_added_listed_and_closed,
    care_tasks_move_to_the_parents_one_step_at_a_time_and_back_at_any_time,
    family_group_conferences_are_scheduled_held_and_listed,
    a_follow_up_reduction_is_recorded_with_its_expiry,
    computed_reviews_are_replaced_only_by_a_newer_stamp,
    computed_reviews_of_a_later_day_replace_those_of_the_same_case_and_policy,
    computed_reviews_without_their_day_are_refused_and_change_nothing,
    visit_facts_are_replaced_only_by_a_newer_feed_position,
    the_worker_reads_many_cases_in_one_call_each_with_its_own_audit_row,
    the_worker_syncs_many_cases_in_one_transaction_all_or_nothing,
    batches_over_the_same_cases_in_opposite_orders_both_finish,
    the_feed_streams_the_backlog_then_live_events_and_resumes_anywhere,
    the_feed_is_the_workers_and_shows_only_its_agency,
    every_new_rpc_refuses_roles_without_access_and_malformed_ids,
    without_approval_in_the_policy_a_decision_takes_effect_at_once,
);

fn worker(server: &TestServer) -> Client {
    Client::as_role(server, "landsby-worker", AGENCY, &[Role::Service])
}

fn lead(server: &TestServer, subject: &str) -> Client {
    Client::as_role(server, subject, AGENCY, &[Role::TeamLead])
}

fn review(kind: pb::ReviewKind, y: i32, m: u32, d: u32) -> pb::Review {
    pb::Review {
        kind: kind.into(),
        due_date: Some(date(y, m, d)),
        note: "look at it".into(),
        ..Default::default()
    }
}

fn decision(kind: pb::DecisionKind) -> pb::StaircaseDecision {
    pb::StaircaseDecision {
        kind: kind.into(),
        ..Default::default()
    }
}

/// `n` completed visits that started just now, without concerns, the foster parents involved.
fn good_visits(parent: &str, n: usize) -> Vec<pb::VisitFact> {
    let now = landsby_platform::validate::now();
    (0..n)
        .map(|_| pb::VisitFact {
            visit_id: uuid::Uuid::now_v7().to_string(),
            parent_id: parent.into(),
            start_time: Some(landsby_platform::validate::timestamp_to_proto(now)),
            outcome: pb::VisitFactOutcome::Completed.into(),
            concern: false,
            foster_parents_involved: true,
        })
        .collect()
}

fn unmet(r: &pb::Readiness) -> Vec<String> {
    r.conditions
        .iter()
        .filter(|c| !c.met)
        .map(|c| c.key.clone())
        .collect()
}

async fn reviews_are_scheduled_and_listed_by_due_date_with_filters(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let late = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 3, 1))
        .await
        .unwrap();
    let early = cw
        .schedule(
            &case.id,
            review(pb::ReviewKind::PlanEvaluation, 2027, 1, 15),
        )
        .await
        .unwrap();
    assert_eq!(early.status(), pb::ReviewStatus::Scheduled);
    assert!(early.computed_key.is_empty());
    let list = |due_before: Option<cpb::Date>, page_token: String| pb::ListReviewsRequest {
        case_id: case.id.clone(),
        page_size: 1,
        page_token,
        due_before,
        status: 0,
    };
    let first = cw
        .inner
        .list_reviews(cw.req(list(None, String::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.reviews[0].id, early.id, "earliest due first");
    let second = cw
        .inner
        .list_reviews(cw.req(list(None, first.next_page_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.reviews[0].id, late.id);
    let before = cw
        .inner
        .list_reviews(cw.req(list(Some(date(2027, 2, 1)), String::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        before
            .reviews
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [early.id.as_str()]
    );
    let mut bad = review(pb::ReviewKind::Unspecified, 2027, 2, 30);
    bad.note = "x".repeat(2001);
    let err = cw.schedule(&case.id, bad).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["review.kind", "review.due_date", "review.note"]
    );
}

async fn an_advance_the_staircase_refuses_names_every_unmet_condition_and_changes_nothing(
    backend: Backend,
) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    let err = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap_err();
    assert_eq!(
        precondition_kinds(&err),
        [
            "READINESS_FRAME_COMPLETE",
            "READINESS_COMPLETED_VISITS_WITHOUT_CONCERNS"
        ]
    );
    assert!(err.message().contains("0 of 3"), "{}", err.message());
    let after = cw.get(&case.id).await.unwrap();
    assert_eq!(after.step(), pb::Step::Safety);
    assert_eq!(
        after.version,
        case.version + 1,
        "only the scheduled review changed the case"
    );
    // A step back from step 1 is not a move the staircase has.
    let back = pb::StaircaseDecision {
        kind: pb::DecisionKind::StepBack.into(),
        step_back_to: pb::Step::Safety.into(),
        new_goal: 0,
    };
    assert_eq!(
        precondition_kinds(&cw.complete(&case.id, &r, back).await.unwrap_err()),
        ["STAIRCASE_MOVE"]
    );
}

async fn ready_for_step_two(server: &TestServer, cw: &mut Client) -> (pb::Case, pb::Review) {
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    assert!(
        worker(server)
            .facts(&case.id, 1, good_visits(&mum.id, 3))
            .await
            .unwrap()
    );
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    (cw.get(&case.id).await.unwrap(), r)
}

async fn an_advance_waits_for_a_team_lead_who_is_not_the_decider(backend: Backend) {
    let server = server(backend).await;
    let mut lead_a = lead(&server, "lead-a");
    let (case, r) = ready_for_step_two(&server, &mut lead_a).await;
    let (pending, unchanged) = lead_a
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap();
    let outcome = pending.outcome.clone().unwrap();
    assert_eq!(
        outcome.decision_status(),
        pb::DecisionStatus::PendingApproval
    );
    assert_eq!(outcome.decided_by, "lead-a");
    assert_eq!(
        unchanged.step(),
        pb::Step::Safety,
        "nothing moves before approval"
    );
    // The decider cannot approve their own decision; a caseworker cannot approve at all.
    assert_eq!(
        precondition_kinds(&lead_a.approve(&case.id, &pending).await.unwrap_err()),
        ["APPROVER_IS_DECIDER"]
    );
    let mut cw = Client::caseworker(&server);
    assert_eq!(
        cw.approve(&case.id, &pending).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut lead_b = lead(&server, "lead-b");
    let (approved, moved) = lead_b.approve(&case.id, &pending).await.unwrap();
    let outcome = approved.outcome.clone().unwrap();
    assert_eq!(outcome.decision_status(), pb::DecisionStatus::Applied);
    assert_eq!(outcome.reviewed_by, "lead-b");
    assert_eq!(moved.step(), pb::Step::Involvement);
    let today = landsby_domain::time::oslo_date(chrono::Utc::now());
    assert_eq!(
        moved.step_since,
        Some(landsby_platform::validate::date_to_proto(today))
    );
    // Approving twice is not possible.
    assert_eq!(
        precondition_kinds(&lead_b.approve(&case.id, &approved).await.unwrap_err()),
        ["DECISION_NOT_PENDING"]
    );
}

async fn a_rejected_decision_leaves_the_case_where_it_was(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let (case, r) = ready_for_step_two(&server, &mut cw).await;
    let (pending, _) = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap();
    let mut lead_b = lead(&server, "lead-b");
    let req = lead_b.req(pb::RejectDecisionRequest {
        case_id: case.id.clone(),
        review_id: pending.id.clone(),
        etag: pending.etag.clone(),
        reason: String::new(),
    });
    assert_eq!(
        violated_fields(&lead_b.inner.reject_decision(req).await.unwrap_err()),
        ["reason"]
    );
    let req = lead_b.req(pb::RejectDecisionRequest {
        case_id: case.id.clone(),
        review_id: pending.id.clone(),
        etag: pending.etag.clone(),
        reason: "too early; the mother has asked for more time".into(),
    });
    let rejected = lead_b
        .inner
        .reject_decision(req)
        .await
        .unwrap()
        .into_inner()
        .review
        .unwrap();
    let outcome = rejected.outcome.unwrap();
    assert_eq!(outcome.decision_status(), pb::DecisionStatus::Rejected);
    assert_eq!(
        outcome.rejection_reason,
        "too early; the mother has asked for more time"
    );
    assert_eq!(cw.get(&case.id).await.unwrap().step(), pb::Step::Safety);
}

async fn a_second_step_or_goal_decision_waits_until_the_pending_one_is_settled(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let (case, r) = ready_for_step_two(&server, &mut cw).await;
    let (pending, _) = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap();
    let r2 = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 2, 1))
        .await
        .unwrap();
    let change = pb::StaircaseDecision {
        kind: pb::DecisionKind::ChangeGoal.into(),
        step_back_to: 0,
        new_goal: pb::Goal::LongTermPlacement.into(),
    };
    let err = cw.complete(&case.id, &r2, change).await.unwrap_err();
    assert_eq!(
        preconditions(&err),
        [(
            "DECISION_PENDING".to_owned(),
            format!("cases/{}/reviews/{}", case.id, pending.id)
        )],
        "names the pending review"
    );
    let before = cw.get(&case.id).await.unwrap();
    // A hold moves nothing, so it is recorded meanwhile.
    let (held, _) = cw
        .complete(&case.id, &r2, decision(pb::DecisionKind::Hold))
        .await
        .unwrap();
    assert_eq!(
        held.outcome.unwrap().decision_status(),
        pb::DecisionStatus::Applied
    );
    // Once the pending decision is settled, a new one can be made.
    let mut lead_b = lead(&server, "lead-b");
    let req = lead_b.req(pb::RejectDecisionRequest {
        case_id: case.id.clone(),
        review_id: pending.id.clone(),
        etag: pending.etag.clone(),
        reason: "wait for the conference".into(),
    });
    lead_b.inner.reject_decision(req).await.unwrap();
    let r3 = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 3, 1))
        .await
        .unwrap();
    let (second, _) = cw.complete(&case.id, &r3, change).await.unwrap();
    assert_eq!(
        second.outcome.unwrap().decision_status(),
        pb::DecisionStatus::PendingApproval
    );
    assert_eq!(before.goal(), pb::Goal::Reunification);
}

async fn a_hold_takes_effect_at_once_and_needs_no_approval(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    let (done, after) = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Hold))
        .await
        .unwrap();
    assert_eq!(done.status(), pb::ReviewStatus::Completed);
    assert_eq!(
        done.outcome.as_ref().unwrap().decision_status(),
        pb::DecisionStatus::Applied
    );
    assert_eq!(after.step(), pb::Step::Safety);
    // A completed review cannot be completed again.
    let err = cw
        .complete(&case.id, &done, decision(pb::DecisionKind::Hold))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["REVIEW_NOT_SCHEDULED"]);
    // With its old etag it is simply stale.
    assert_eq!(
        cw.complete(&case.id, &r, decision(pb::DecisionKind::Hold))
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
}

async fn advance(server: &TestServer, cw: &mut Client, case_id: &str) -> pb::Case {
    let r = cw
        .schedule(case_id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    let (pending, _) = cw
        .complete(case_id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap();
    lead(server, "lead-b")
        .approve(case_id, &pending)
        .await
        .unwrap()
        .1
}

async fn the_whole_staircase_up_to_step_three_and_back_to_maintenance(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let (case, _) = ready_for_step_two(&server, &mut cw).await;
    let in_two = advance(&server, &mut cw, &case.id).await;
    assert_eq!(in_two.step(), pb::Step::Involvement);
    // Step 2 → 3 asks for more; meet it piece by piece through the API. The visits and the
    // child's view from before the step began (minutes ago) are step 1's.
    let unmet_now = unmet(&cw.readiness(&case.id).await.unwrap());
    assert_eq!(
        unmet_now,
        [
            "parenting_goals",
            "foster_parent_involvement",
            "completed_visits_without_concerns",
            "family_group_conference",
            "reunification_plan",
            "child_view"
        ]
    );
    let req = cw.req(pb::AddFollowUpGoalRequest {
        case_id: case.id.clone(),
        request_id: String::new(),
        goal: Some(pb::FollowUpGoal {
            description: "predictable bedtime routines".into(),
            ..Default::default()
        }),
    });
    cw.inner.add_follow_up_goal(req).await.unwrap();
    let req = cw.req(pb::AddCareTaskRequest {
        case_id: case.id.clone(),
        request_id: String::new(),
        task: Some(pb::CareTask {
            kind: pb::CareTaskKind::Bedtime.into(),
            ..Default::default()
        }),
    });
    cw.inner.add_care_task(req).await.unwrap();
    let current = cw.get(&case.id).await.unwrap();
    let req = cw.req(pb::WaiveFamilyGroupConferenceRequest {
        case_id: case.id.clone(),
        etag: current.etag.clone(),
        reason: "the family declined; the network meets monthly instead".into(),
    });
    let waived = cw
        .inner
        .waive_family_group_conference(req)
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert!(!waived.conference_waiver_reason.is_empty());
    // The worker brings the visitation service's newer view: four good visits.
    let mum = cw
        .inner
        .list_village_members(cw.req(pb::ListVillageMembersRequest {
            case_id: case.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .members
        .remove(0);
    assert!(
        worker(&server)
            .facts(&case.id, 2, good_visits(&mum.id, 4))
            .await
            .unwrap()
    );
    // What is left is the child's view, which the deciding review records.
    let ready = cw.readiness(&case.id).await.unwrap();
    assert_eq!(unmet(&ready), ["child_view"]);
    assert_eq!(ready.next_step(), pb::Step::Responsibility);
    let in_three = advance(&server, &mut cw, &case.id).await;
    assert_eq!(in_three.step(), pb::Step::Responsibility);

    // Step 3 is the top.
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 6, 1))
        .await
        .unwrap();
    let err = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["READINESS_NEXT_STEP"]);
    // Giving up reunification in step 3 brings the case back to step 2, the maintenance scope.
    let change = pb::StaircaseDecision {
        kind: pb::DecisionKind::ChangeGoal.into(),
        step_back_to: 0,
        new_goal: pb::Goal::LongTermPlacement.into(),
    };
    let (pending, _) = cw.complete(&case.id, &r, change).await.unwrap();
    let (_, after) = lead(&server, "lead-b")
        .approve(&case.id, &pending)
        .await
        .unwrap();
    assert_eq!(
        (after.step(), after.goal()),
        (pb::Step::Involvement, pb::Goal::LongTermPlacement)
    );
    assert_eq!(
        unmet(&cw.readiness(&case.id).await.unwrap())[0],
        "reunification_goal"
    );
    // An advance now names the goal among everything else still unmet.
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 9, 1))
        .await
        .unwrap();
    let err = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap_err();
    let kinds = precondition_kinds(&err);
    assert_eq!(kinds[0], "READINESS_REUNIFICATION_GOAL", "{kinds:?}");
}

async fn readiness_lists_every_condition_and_follows_the_facts(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let r = cw.readiness(&case.id).await.unwrap();
    assert_eq!(r.next_step(), pb::Step::Involvement);
    assert!(!r.ready);
    assert_eq!(r.policy_version, "2026.1");
    assert_eq!(
        unmet(&r),
        [
            "frame_complete",
            "completed_visits_without_concerns",
            "child_view"
        ]
    );
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    worker(&server)
        .facts(&case.id, 1, good_visits(&mum.id, 2))
        .await
        .unwrap();
    let r = cw.readiness(&case.id).await.unwrap();
    assert_eq!(
        unmet(&r),
        ["completed_visits_without_concerns", "child_view"]
    );
    let visits = r
        .conditions
        .iter()
        .find(|c| c.key == "completed_visits_without_concerns")
        .unwrap();
    assert_eq!(
        visits.reason,
        "2 of 3 visits completed without concerns in step 1"
    );
    // A review with the child's view in this step meets the last condition.
    let review = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    cw.complete(&case.id, &review, decision(pb::DecisionKind::Hold))
        .await
        .unwrap();
    assert_eq!(
        unmet(&cw.readiness(&case.id).await.unwrap()),
        ["completed_visits_without_concerns"]
    );
    let other = cw
        .readiness(&uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
}

async fn the_childs_view_or_why_it_could_not_be_obtained_is_required(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let r = cw
        .schedule(&case.id, review(pb::ReviewKind::StepReview, 2027, 1, 1))
        .await
        .unwrap();
    for (view, fields) in [
        (None, vec!["child_view"]),
        (Some(pb::ChildView::default()), vec!["child_view"]),
        (
            Some(pb::ChildView {
                view: "a".into(),
                not_obtained_reason: "b".into(),
            }),
            vec!["child_view"],
        ),
    ] {
        let req = cw.req(pb::CompleteReviewRequest {
            case_id: case.id.clone(),
            review_id: r.id.clone(),
            etag: r.etag.clone(),
            decision: Some(decision(pb::DecisionKind::Hold)),
            rationale: "x".into(),
            child_view: view,
        });
        assert_eq!(
            violated_fields(&cw.inner.complete_review(req).await.unwrap_err()),
            fields
        );
    }
    let req = cw.req(pb::CompleteReviewRequest {
        case_id: case.id.clone(),
        review_id: r.id.clone(),
        etag: r.etag.clone(),
        decision: Some(decision(pb::DecisionKind::Hold)),
        rationale: "x".into(),
        child_view: Some(pb::ChildView {
            view: String::new(),
            not_obtained_reason: "the child is 8 months old".into(),
        }),
    });
    let done = cw
        .inner
        .complete_review(req)
        .await
        .unwrap()
        .into_inner()
        .review
        .unwrap();
    assert_eq!(
        done.outcome
            .unwrap()
            .child_view
            .unwrap()
            .not_obtained_reason,
        "the child is 8 months old"
    );
}

async fn follow_up_goals_are_added_listed_and_closed(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let add = |request_id: &str, description: &str| pb::AddFollowUpGoalRequest {
        case_id: case.id.clone(),
        request_id: request_id.into(),
        goal: Some(pb::FollowUpGoal {
            description: description.into(),
            ..Default::default()
        }),
    };
    let rid = uuid::Uuid::now_v7().to_string();
    let goal = cw
        .inner
        .add_follow_up_goal(cw.req(add(&rid, "regular meals")))
        .await
        .unwrap()
        .into_inner()
        .goal
        .unwrap();
    let again = cw
        .inner
        .add_follow_up_goal(cw.req(add(&rid, "regular meals")))
        .await
        .unwrap()
        .into_inner()
        .goal
        .unwrap();
    assert_eq!(goal.id, again.id, "a retry adds once");
    assert_eq!(goal.status(), pb::FollowUpGoalStatus::Active);
    let err = cw
        .inner
        .add_follow_up_goal(cw.req(add("", " ")))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["goal.description"]);
    let mut change = goal.clone();
    change.status = pb::FollowUpGoalStatus::Achieved.into();
    let req = cw.req(pb::UpdateFollowUpGoalRequest {
        goal: Some(change.clone()),
        update_mask: mask(&["status"]),
    });
    let achieved = cw
        .inner
        .update_follow_up_goal(req)
        .await
        .unwrap()
        .into_inner()
        .goal
        .unwrap();
    assert_eq!(achieved.status(), pb::FollowUpGoalStatus::Achieved);
    let req = cw.req(pb::UpdateFollowUpGoalRequest {
        goal: Some(change.clone()),
        update_mask: mask(&["status"]),
    });
    assert_eq!(
        cw.inner
            .update_follow_up_goal(req)
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    let req = cw.req(pb::UpdateFollowUpGoalRequest {
        goal: Some(achieved.clone()),
        update_mask: mask(&["case_id"]),
    });
    assert_eq!(
        violated_fields(&cw.inner.update_follow_up_goal(req).await.unwrap_err()),
        ["update_mask.paths[0]"]
    );
    let list = cw
        .inner
        .list_follow_up_goals(cw.req(pb::ListFollowUpGoalsRequest {
            case_id: case.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.goals, vec![achieved]);
}

async fn care_tasks_move_to_the_parents_one_step_at_a_time_and_back_at_any_time(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let add = |kind: pb::CareTaskKind, description: &str| pb::AddCareTaskRequest {
        case_id: case.id.clone(),
        request_id: String::new(),
        task: Some(pb::CareTask {
            kind: kind.into(),
            description: description.into(),
            ..Default::default()
        }),
    };
    let err = cw
        .inner
        .add_care_task(cw.req(add(pb::CareTaskKind::Other, "")))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["task.description"],
        "other tasks are described"
    );
    let task = cw
        .inner
        .add_care_task(cw.req(add(pb::CareTaskKind::SchoolFollowUp, "")))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(task.holder(), pb::CareTaskHolder::FosterParents);
    cw.inner
        .add_care_task(cw.req(add(pb::CareTaskKind::Bedtime, "")))
        .await
        .unwrap();
    let mv = |task: &pb::CareTask, to: pb::CareTaskHolder| pb::MoveCareTaskRequest {
        case_id: case.id.clone(),
        task_id: task.id.clone(),
        etag: task.etag.clone(),
        to: to.into(),
    };
    let err = cw
        .inner
        .move_care_task(cw.req(mv(&task, pb::CareTaskHolder::Parents)))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["CARE_TASK_MOVE"]);
    let shared = cw
        .inner
        .move_care_task(cw.req(mv(&task, pb::CareTaskHolder::Shared)))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    let parents = cw
        .inner
        .move_care_task(cw.req(mv(&shared, pb::CareTaskHolder::Parents)))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(parents.holder(), pb::CareTaskHolder::Parents);
    let list = cw
        .inner
        .list_care_tasks(cw.req(pb::ListCareTasksRequest {
            case_id: case.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let p = list.progress.unwrap();
    assert_eq!(
        (p.total, p.parents, p.foster_parents, p.percent_with_parents),
        (2, 1, 1, 50)
    );
    // Back towards the foster parents in one move, if safety asks for it.
    let back = cw
        .inner
        .move_care_task(cw.req(mv(&parents, pb::CareTaskHolder::FosterParents)))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(back.holder(), pb::CareTaskHolder::FosterParents);
    assert_eq!(
        violated_fields(
            &cw.inner
                .move_care_task(cw.req(mv(&back, pb::CareTaskHolder::Unspecified)))
                .await
                .unwrap_err()
        ),
        ["to"]
    );
}

async fn family_group_conferences_are_scheduled_held_and_listed(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let schedule = |participants: Vec<String>| pb::ScheduleFamilyGroupConferenceRequest {
        case_id: case.id.clone(),
        request_id: String::new(),
        conference: Some(pb::FamilyGroupConference {
            planned_date: Some(date(2027, 2, 1)),
            coordinator: "Independent Coordinator".into(),
            participant_ids: participants,
            ..Default::default()
        }),
    };
    let stranger = uuid::Uuid::now_v7().to_string();
    let err = cw
        .inner
        .schedule_family_group_conference(cw.req(schedule(vec![stranger])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["conference.participant_ids[0]"]);
    let conf = cw
        .inner
        .schedule_family_group_conference(cw.req(schedule(vec![mum.id.clone()])))
        .await
        .unwrap()
        .into_inner()
        .conference
        .unwrap();
    assert!(conf.held_on.is_none());
    let outcome = |held_on: cpb::Date, actions: Vec<pb::ConferenceAction>| {
        pb::RecordConferenceOutcomeRequest {
            case_id: case.id.clone(),
            conference_id: conf.id.clone(),
            etag: conf.etag.clone(),
            held_on: Some(held_on),
            actions,
        }
    };
    let err = cw
        .inner
        .record_conference_outcome(cw.req(outcome(date(2099, 1, 1), vec![])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["held_on"]);
    let action = pb::ConferenceAction {
        owner: "Mormor".into(),
        what: "pick up from school on Fridays".into(),
        due_date: Some(date(2027, 3, 1)),
    };
    let held = cw
        .inner
        .record_conference_outcome(cw.req(outcome(date(2026, 1, 10), vec![action.clone()])))
        .await
        .unwrap()
        .into_inner()
        .conference
        .unwrap();
    assert_eq!(held.actions, vec![action]);
    let list = cw
        .inner
        .list_family_group_conferences(cw.req(pb::ListFamilyGroupConferencesRequest {
            case_id: case.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.conferences, vec![held]);
}

async fn a_follow_up_reduction_is_recorded_with_its_expiry(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let reduce = |etag: &str, from: cpb::Date, to: cpb::Date| pb::ReduceFollowUpVisitsRequest {
        case_id: case.id.clone(),
        etag: etag.into(),
        reduction: Some(pb::FollowUpReduction {
            decided_on: Some(from),
            expires_on: Some(to),
            reason: "stable placement".into(),
        }),
    };
    let err = cw
        .inner
        .reduce_follow_up_visits(cw.req(reduce(&case.etag, date(2027, 1, 1), date(2026, 1, 1))))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["reduction.expires_on"]);
    let after = cw
        .inner
        .reduce_follow_up_visits(cw.req(reduce(&case.etag, date(2026, 1, 1), date(2026, 12, 31))))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(
        after.follow_up_reduction.unwrap().expires_on,
        Some(date(2026, 12, 31))
    );
    let err = cw
        .inner
        .reduce_follow_up_visits(cw.req(reduce(&case.etag, date(2026, 1, 1), date(2026, 12, 31))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
}

fn computed(key: &str, y: i32, m: u32, d: u32) -> pb::Review {
    pb::Review {
        computed_key: key.into(),
        ..review(pb::ReviewKind::StepReview, y, m, d)
    }
}

async fn computed_reviews_are_replaced_only_by_a_newer_stamp(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mut w = worker(&server);
    let sync = |version: i64, policy: &str, reviews: Vec<pb::Review>| pb::DueReviewsItem {
        case_id: case.id.clone(),
        case_version: version,
        policy_version: policy.into(),
        reviews,
        computed_on: Some(date(2026, 11, 23)),
    };
    let first = w
        .sync_due_reviews(w.req(sync(
            1,
            "2026.1",
            vec![computed("a", 2027, 1, 1), computed("b", 2027, 2, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(first.applied);
    assert_eq!(first.reviews.len(), 2);
    let version_after = cw.get(&case.id).await.unwrap().version;
    assert_eq!(
        version_after, case.version,
        "derived data does not move the case's version"
    );
    // The same stamp again, or an older one, changes nothing.
    let same = w
        .sync_due_reviews(w.req(sync(1, "2026.1", vec![])))
        .await
        .unwrap()
        .into_inner();
    assert!(!same.applied);
    assert_eq!(same.reviews.len(), 2);
    // A newer policy at the same case version replaces: a's date moves, b goes, c comes.
    let newer = w
        .sync_due_reviews(w.req(sync(
            1,
            "2026.2",
            vec![computed("a", 2027, 1, 8), computed("c", 2027, 3, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(newer.applied);
    let keys: Vec<(&str, Option<cpb::Date>)> = newer
        .reviews
        .iter()
        .map(|r| (r.computed_key.as_str(), r.due_date))
        .collect();
    assert_eq!(
        keys,
        [("a", Some(date(2027, 1, 8))), ("c", Some(date(2027, 3, 1)))]
    );
    let all = cw
        .inner
        .list_reviews(cw.req(pb::ListReviewsRequest {
            case_id: case.id.clone(),
            status: pb::ReviewStatus::Replaced.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.reviews
            .iter()
            .map(|r| r.computed_key.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    // A completed computed review is history: a later sync does not bring it back.
    let a = newer
        .reviews
        .iter()
        .find(|r| r.computed_key == "a")
        .unwrap();
    cw.complete(&case.id, a, decision(pb::DecisionKind::Hold))
        .await
        .unwrap();
    let version = cw.get(&case.id).await.unwrap().version;
    let later = w
        .sync_due_reviews(w.req(sync(version, "2026.2", vec![computed("a", 2027, 1, 8)])))
        .await
        .unwrap()
        .into_inner();
    assert!(later.applied);
    assert!(later.reviews.is_empty());
    // A stamp from the future, and bad input.
    let err = w
        .sync_due_reviews(w.req(sync(version + 5, "2026.2", vec![])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["items[0].case_version"]);
    let err = w
        .sync_due_reviews(w.req(sync(
            0,
            "",
            vec![
                computed("", 2027, 1, 1),
                computed("x", 2027, 1, 1),
                computed("x", 2027, 1, 1),
            ],
        )))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "items[0].case_version",
            "items[0].policy_version",
            "items[0].reviews[0].computed_key",
            "items[0].reviews[2].computed_key"
        ]
    );
}

/// A sync of `reviews` for the case at version 1 under policy 2026.1, computed on `on`.
fn sync_on(case_id: &str, on: Option<cpb::Date>, reviews: Vec<pb::Review>) -> pb::DueReviewsItem {
    pb::DueReviewsItem {
        case_id: case_id.into(),
        case_version: 1,
        policy_version: "2026.1".into(),
        reviews,
        computed_on: on,
    }
}

/// The scheduled computed reviews as (key, due date).
fn keyed(reviews: &[pb::Review]) -> Vec<(&str, Option<cpb::Date>)> {
    reviews
        .iter()
        .map(|r| (r.computed_key.as_str(), r.due_date))
        .collect()
}

async fn computed_reviews_of_a_later_day_replace_those_of_the_same_case_and_policy(
    backend: Backend,
) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mut w = worker(&server);
    let first = w
        .sync_due_reviews(w.req(sync_on(
            &case.id,
            Some(date(2026, 11, 23)),
            vec![computed("a", 2027, 1, 1), computed("b", 2027, 2, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(first.applied);
    // The next day, same case version and policy: the dates the day moved are put in force.
    let next_day = w
        .sync_due_reviews(w.req(sync_on(
            &case.id,
            Some(date(2026, 11, 24)),
            vec![computed("a", 2027, 1, 2), computed("b", 2027, 2, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(next_day.applied, "a later day is a newer stamp");
    assert_eq!(
        keyed(&next_day.reviews),
        [("a", Some(date(2027, 1, 2))), ("b", Some(date(2027, 2, 1)))]
    );
    assert_eq!(
        cw.get(&case.id).await.unwrap().version,
        case.version,
        "derived data does not move the case's version"
    );
    // The same stamp again (a same-day replay), or an earlier day, changes nothing.
    for on in [date(2026, 11, 24), date(2026, 11, 23)] {
        let replay = w
            .sync_due_reviews(w.req(sync_on(&case.id, Some(on), vec![computed("c", 2027, 3, 1)])))
            .await
            .unwrap()
            .into_inner();
        assert!(!replay.applied, "{on:?}");
        assert_eq!(keyed(&replay.reviews), keyed(&next_day.reviews), "{on:?}");
    }
    // A later day with nothing new applies and changes no review.
    let same_values = w
        .sync_due_reviews(w.req(sync_on(
            &case.id,
            Some(date(2026, 11, 25)),
            vec![computed("a", 2027, 1, 2), computed("b", 2027, 2, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(same_values.applied);
    assert_eq!(same_values.reviews, next_day.reviews, "no review changed");
}

async fn computed_reviews_without_their_day_are_refused_and_change_nothing(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mut w = worker(&server);
    let first = w
        .sync_due_reviews(w.req(sync_on(
            &case.id,
            Some(date(2026, 11, 23)),
            vec![computed("a", 2027, 1, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(first.applied);
    // Missing, not a calendar day, or a day still to come (a clock gone wrong): refused, naming
    // the field.
    let far = chrono::Utc::now().date_naive() + chrono::Days::new(10);
    for on in [
        None,
        Some(date(2026, 2, 30)),
        Some(landsby_platform::validate::date_to_proto(far)),
    ] {
        let err = w
            .sync_due_reviews(w.req(sync_on(&case.id, on, vec![computed("b", 2027, 2, 1)])))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{on:?}");
        assert_eq!(violated_fields(&err), ["items[0].computed_on"], "{on:?}");
    }
    // Nothing changed: the reviews are as they were, and the stamp too (the same stamp again
    // changes nothing).
    let again = w
        .sync_due_reviews(w.req(sync_on(
            &case.id,
            Some(date(2026, 11, 23)),
            vec![computed("b", 2027, 2, 1)],
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.applied);
    assert_eq!(again.reviews, first.reviews);
}

async fn visit_facts_are_replaced_only_by_a_newer_feed_position(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let before = cw.get(&case.id).await.unwrap().version;
    let mut w = worker(&server);
    let three = good_visits(&mum.id, 3);
    assert!(w.facts(&case.id, 10, three.clone()).await.unwrap());
    let after = cw.get(&case.id).await.unwrap().version;
    assert_eq!(after, before + 1, "applied facts move the case's version");
    assert!(
        !w.facts(&case.id, 10, vec![]).await.unwrap(),
        "an equal position changes nothing"
    );
    assert!(!w.facts(&case.id, 9, vec![]).await.unwrap());
    assert_eq!(cw.get(&case.id).await.unwrap().version, after);
    // The same facts as of a later position (in another order) move only the position.
    let mut reordered = three.clone();
    reordered.reverse();
    assert!(
        !w.facts(&case.id, 20, reordered).await.unwrap(),
        "the facts already known change nothing"
    );
    assert_eq!(
        cw.get(&case.id).await.unwrap().version,
        after,
        "no new version"
    );
    assert!(
        !w.facts(&case.id, 15, vec![]).await.unwrap(),
        "the position moved on to 20"
    );
    assert_eq!(cw.get(&case.id).await.unwrap().version, after);
    let mut feed = w
        .inner
        .watch_events(w.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    let events = collect(&mut feed, 3).await;
    assert!(
        matches!(&events[2].change, Some(Change::CaseUpdated(u)) if u.paths == ["visit_facts"]),
        "{:?}",
        events[2].change
    );
    assert_eq!(events[2].case_version, after);
    assert!(
        unmet(&cw.readiness(&case.id).await.unwrap())
            .iter()
            .all(|k| k != "completed_visits_without_concerns")
    );
    let mut bad = good_visits(&mum.id, 4);
    bad[0].start_time = None;
    bad[1].outcome = 0;
    bad[3].visit_id = bad[2].visit_id.clone();
    let req = w.req(pb::VisitFactsItem {
        case_id: case.id.clone(),
        as_of_sequence: -1,
        frame_complete: true,
        visits: bad,
    });
    let err = w.sync_visit_facts(req).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "items[0].as_of_sequence",
            "items[0].visits[0].start_time",
            "items[0].visits[1].outcome",
            "items[0].visits[3].visit_id"
        ]
    );
    assert_eq!(cw.get(&case.id).await.unwrap().version, after);
    // Facts that differ, as of a later position, replace.
    assert!(w.facts(&case.id, 30, three[..2].to_vec()).await.unwrap());
    assert_eq!(cw.get(&case.id).await.unwrap().version, after + 1);
}

async fn the_worker_reads_many_cases_in_one_call_each_with_its_own_audit_row(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let full = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&full.id, mother()).await.unwrap();
    let foster = cw.add_member(&full.id, foster_parent()).await.unwrap();
    let decided = cw
        .record(&full.id, landsby_testkit::case::decision(&mum.id, true))
        .await
        .unwrap();
    let due = cw
        .schedule(&full.id, review(pb::ReviewKind::StepReview, 2027, 3, 1))
        .await
        .unwrap();
    let req = cw.req(pb::AddFollowUpGoalRequest {
        case_id: full.id.clone(),
        request_id: String::new(),
        goal: Some(pb::FollowUpGoal {
            description: "Mor går på foreldreveiledning".into(),
            ..Default::default()
        }),
    });
    let goal = cw
        .inner
        .add_follow_up_goal(req)
        .await
        .unwrap()
        .into_inner()
        .goal
        .unwrap();
    let bare = cw.create(new_case()).await.unwrap();
    let closed = cw.create(new_case()).await.unwrap();
    cw.close(&closed.id).await.unwrap();
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    let foreign = bergen.create(new_case()).await.unwrap();
    let nowhere = uuid::Uuid::now_v7().to_string();
    let before = crate::audit_rows(&server).await.len();

    let mut w = worker(&server);
    let asked = vec![
        full.id.clone(),
        foreign.id.clone(),
        nowhere.clone(),
        bare.id.clone(),
        closed.id.clone(),
    ];
    let req = w.req(pb::BatchGetCaseSnapshotsRequest { case_ids: asked });
    let got = w
        .inner
        .batch_get_case_snapshots(req)
        .await
        .unwrap()
        .into_inner()
        .snapshots;
    let ids: Vec<&str> = got
        .iter()
        .map(|s| s.case.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(
        ids,
        [full.id.as_str(), bare.id.as_str(), closed.id.as_str()],
        "in the order asked; another agency's case and a case that does not exist are left out alike"
    );
    let s = &got[0];
    let case = s.case.as_ref().unwrap();
    assert_eq!(case.version, cw.get(&full.id).await.unwrap().version);
    assert_eq!(case.board_decision.as_ref().unwrap().id, decided.id);
    let members: Vec<&str> = s.members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(members, [mum.id.as_str(), foster.id.as_str()]);
    assert_eq!(s.board_decisions.len(), 1);
    assert_eq!(s.board_decisions[0].id, decided.id);
    assert_eq!(s.reviews.len(), 1);
    assert_eq!(s.reviews[0].id, due.id);
    assert_eq!(s.follow_up_goals.len(), 1);
    assert_eq!(s.follow_up_goals[0].id, goal.id);
    assert!(s.conferences.is_empty());
    assert!(got[1].members.is_empty() && got[1].reviews.is_empty());
    assert_eq!(
        got[2].case.as_ref().unwrap().status,
        i32::from(pb::CaseStatus::Closed)
    );

    // One audit row per case read, naming what of it was read.
    let rows = crate::audit_rows(&server).await;
    let batch: Vec<_> = rows[before..]
        .iter()
        .filter(|r| r.rpc == "landsby.case.v1.CaseService/BatchGetCaseSnapshots")
        .collect();
    assert_eq!(batch.len(), 3, "{batch:?}");
    let read: Vec<String> = batch
        .iter()
        .map(|r| r.case_id.unwrap().to_string())
        .collect();
    assert_eq!(read, [full.id.clone(), bare.id.clone(), closed.id.clone()]);
    assert!(
        batch
            .iter()
            .all(|r| r.subject == "landsby-worker" && r.outcome == "OK")
    );
    for touched in [&mum.id, &foster.id, &decided.id, &due.id, &goal.id] {
        assert!(
            batch[0]
                .resource_ids
                .iter()
                .any(|id| id.to_string() == *touched)
        );
    }

    // Nothing found is still a call on the record.
    let req = w.req(pb::BatchGetCaseSnapshotsRequest {
        case_ids: vec![nowhere.clone()],
    });
    let none = w.inner.batch_get_case_snapshots(req).await.unwrap();
    assert!(none.into_inner().snapshots.is_empty());
    let rows = crate::audit_rows(&server).await;
    let last = rows.last().unwrap();
    assert_eq!(
        (last.rpc.as_str(), last.case_id, last.outcome.as_str()),
        (
            "landsby.case.v1.CaseService/BatchGetCaseSnapshots",
            None,
            "OK"
        )
    );

    // Bad input: every problem named, nothing read.
    for (ids, fields) in [
        (vec![], vec!["case_ids"]),
        (
            (0..201).map(|_| uuid::Uuid::now_v7().to_string()).collect(),
            vec!["case_ids"],
        ),
        (
            vec!["not-a-case".into(), full.id.clone(), full.id.clone()],
            vec!["case_ids[0]", "case_ids[2]"],
        ),
    ] {
        let req = w.req(pb::BatchGetCaseSnapshotsRequest { case_ids: ids });
        let err = w.inner.batch_get_case_snapshots(req).await.unwrap_err();
        assert_eq!(violated_fields(&err), fields);
    }
    // Case staff read through their own RPCs; this one is the worker's.
    let req = cw.req(pb::BatchGetCaseSnapshotsRequest {
        case_ids: vec![full.id.clone()],
    });
    let err = cw.inner.batch_get_case_snapshots(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let rows = crate::audit_rows(&server).await;
    assert_eq!(rows.last().unwrap().outcome, "PERMISSION_DENIED");
}

async fn the_worker_syncs_many_cases_in_one_transaction_all_or_nothing(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut cases = Vec::new();
    let mut mothers = Vec::new();
    for _ in 0..3 {
        let case = cw.create(new_case()).await.unwrap();
        mothers.push(cw.add_member(&case.id, mother()).await.unwrap());
        cases.push(cw.get(&case.id).await.unwrap());
    }
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    let foreign = bergen.create(new_case()).await.unwrap();
    let mut w = worker(&server);
    let facts = |case: &pb::Case, parent: &str, n: usize, at: i64| pb::VisitFactsItem {
        case_id: case.id.clone(),
        as_of_sequence: at,
        frame_complete: true,
        visits: good_visits(parent, n),
    };
    let today = landsby_platform::validate::date_to_proto(landsby_domain::time::oslo_date(
        chrono::Utc::now(),
    ));
    let due = |case: &pb::Case, key: &str| pb::DueReviewsItem {
        case_id: case.id.clone(),
        case_version: case.version,
        policy_version: "2026.1".into(),
        reviews: vec![computed(key, 2027, 1, 1)],
        computed_on: Some(today),
    };
    let before = crate::audit_rows(&server).await.len();

    // All or nothing: one case of another agency (or none at all) fails the call, and the other
    // cases' facts are not kept.
    for stranger in [foreign.id.clone(), uuid::Uuid::now_v7().to_string()] {
        let mut items = vec![
            facts(&cases[0], &mothers[0].id, 2, 10),
            facts(&cases[1], &mothers[1].id, 3, 10),
        ];
        items.push(pb::VisitFactsItem {
            case_id: stranger,
            ..Default::default()
        });
        let req = w.req(pb::BatchSyncVisitFactsRequest { items });
        let err = w.inner.batch_sync_visit_facts(req).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let req = w.req(pb::BatchSyncDueReviewsRequest {
            items: vec![
                due(&cases[0], "a"),
                pb::DueReviewsItem {
                    case_id: foreign.id.clone(),
                    ..due(&cases[1], "b")
                },
            ],
        });
        let err = w.inner.batch_sync_due_reviews(req).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    for case in &cases {
        assert_eq!(cw.get(&case.id).await.unwrap().version, case.version);
        assert!(
            cw.reviews(&case.id, pb::ReviewStatus::Unspecified)
                .await
                .is_empty()
        );
    }

    // Three cases in one call: each as a call of its own would have it, answered in the order
    // asked (the third's facts are what is known already: nothing changes for it).
    assert!(w.facts(&cases[2].id, 5, vec![]).await.unwrap());
    let third = cw.get(&cases[2].id).await.unwrap();
    let items = vec![
        facts(&cases[1], &mothers[1].id, 3, 20),
        pb::VisitFactsItem {
            case_id: third.id.clone(),
            as_of_sequence: 20,
            frame_complete: true,
            visits: vec![],
        },
        facts(&cases[0], &mothers[0].id, 2, 20),
    ];
    let sent = items.clone();
    assert_eq!(synced(&mut w, items).await, [true, false, true]);
    assert_eq!(
        cw.get(&cases[0].id).await.unwrap().version,
        cases[0].version + 1
    );
    assert_eq!(
        cw.get(&cases[1].id).await.unwrap().version,
        cases[1].version + 1
    );
    assert_eq!(cw.get(&third.id).await.unwrap().version, third.version);
    // The batch kept each case's facts and moved each position, the third's too: the same facts
    // later say nothing new, and other facts as of a position before the batch's are too old.
    let later = |item: &pb::VisitFactsItem| pb::VisitFactsItem {
        as_of_sequence: 21,
        ..item.clone()
    };
    let items = vec![
        later(&sent[2]),
        later(&sent[0]),
        facts(&third, &mothers[2].id, 1, 15),
    ];
    assert_eq!(synced(&mut w, items).await, [false, false, false]);
    assert_eq!(
        cw.get(&cases[0].id).await.unwrap().version,
        cases[0].version + 1
    );

    let mut now = Vec::new();
    for c in &cases {
        now.push(cw.get(&c.id).await.unwrap());
    }
    let req = w.req(pb::BatchSyncDueReviewsRequest {
        items: vec![due(&now[2], "c"), due(&now[0], "a")],
    });
    let got = w
        .inner
        .batch_sync_due_reviews(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.results.len(), 2);
    assert!(
        got.results
            .iter()
            .all(|r| r.applied && r.reviews.len() == 1)
    );
    assert_eq!(got.results[0].reviews[0].computed_key, "c");
    assert_eq!(got.results[1].reviews[0].computed_key, "a");
    assert!(
        cw.reviews(&now[1].id, pb::ReviewStatus::Unspecified)
            .await
            .is_empty()
    );
    // The same stamps again change nothing.
    let req = w.req(pb::BatchSyncDueReviewsRequest {
        items: vec![due(&now[2], "c"), due(&now[0], "a")],
    });
    let again = w
        .inner
        .batch_sync_due_reviews(req)
        .await
        .unwrap()
        .into_inner();
    assert!(
        again
            .results
            .iter()
            .all(|r| !r.applied && r.reviews.len() == 1)
    );

    // One audit row per case of each call that went through, naming the case; one row for each
    // refused call, naming none.
    let rows = crate::audit_rows(&server).await;
    let of = |rpc: &str, outcome: &str| -> Vec<Option<uuid::Uuid>> {
        rows[before..]
            .iter()
            .filter(|r| {
                r.rpc == format!("landsby.case.v1.CaseService/{rpc}") && r.outcome == outcome
            })
            .map(|r| r.case_id)
            .collect()
    };
    let id = |c: &pb::Case| Some(uuid::Uuid::parse_str(&c.id).unwrap());
    let mut facts_ok = of("BatchSyncVisitFacts", "OK");
    facts_ok.sort();
    let mut expected = vec![id(&cases[0]), id(&cases[1]), id(&third), id(&third)];
    expected.extend([id(&cases[0]), id(&cases[1]), id(&third)]);
    expected.sort();
    assert_eq!(
        facts_ok, expected,
        "the third case once alone, then in each of the two batches"
    );
    assert_eq!(of("BatchSyncVisitFacts", "NOT_FOUND"), [None, None]);
    assert_eq!(of("BatchSyncDueReviews", "OK").len(), 4);
    assert_eq!(of("BatchSyncDueReviews", "NOT_FOUND"), [None, None]);

    // Bad input: every problem named with its item, nothing changed.
    let too_many: Vec<pb::VisitFactsItem> = (0..201)
        .map(|_| pb::VisitFactsItem {
            case_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .collect();
    for (items, fields) in [
        (vec![], vec!["items"]),
        (too_many, vec!["items"]),
        (
            vec![
                facts(&cases[0], &mothers[0].id, 1, 30),
                pb::VisitFactsItem {
                    as_of_sequence: -1,
                    ..facts(&cases[1], &mothers[1].id, 1, 30)
                },
                facts(&cases[0], &mothers[0].id, 1, 31),
            ],
            vec!["items[1].as_of_sequence", "items[2].case_id"],
        ),
    ] {
        let req = w.req(pb::BatchSyncVisitFactsRequest { items });
        let err = w.inner.batch_sync_visit_facts(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&err), fields);
    }
    let req = w.req(pb::BatchSyncDueReviewsRequest {
        items: vec![
            due(&now[0], "z"),
            pb::DueReviewsItem {
                case_version: 0,
                ..due(&now[1], "z")
            },
            due(&now[0], "y"),
        ],
    });
    let err = w.inner.batch_sync_due_reviews(req).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["items[1].case_version", "items[2].case_id"]
    );
    for c in &now {
        assert_eq!(cw.get(&c.id).await.unwrap().version, c.version);
    }
    assert_eq!(
        cw.reviews(&now[0].id, pb::ReviewStatus::Unspecified).await[0].computed_key,
        "a"
    );
}

/// BatchSyncVisitFacts of `items`: whether each applied, in the order asked.
async fn synced(w: &mut Client, items: Vec<pb::VisitFactsItem>) -> Vec<bool> {
    let req = w.req(pb::BatchSyncVisitFactsRequest { items });
    let got = w
        .inner
        .batch_sync_visit_facts(req)
        .await
        .unwrap()
        .into_inner();
    got.results.iter().map(|r| r.applied).collect()
}

/// Two workers' batches over the same cases, one in the reverse order of the other, again and
/// again: each call locks its cases in one order, so neither waits on the other in a circle
/// (PostgreSQL would end one with a deadlock).
async fn batches_over_the_same_cases_in_opposite_orders_both_finish(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut cases = Vec::new();
    for _ in 0..20 {
        cases.push(cw.create(new_case()).await.unwrap().id);
    }
    for round in 0..5_i64 {
        let items = |ids: &[String], sequence: i64| -> Vec<pb::VisitFactsItem> {
            ids.iter()
                .map(|id| pb::VisitFactsItem {
                    case_id: id.clone(),
                    as_of_sequence: sequence,
                    frame_complete: sequence % 2 == 0,
                    visits: vec![],
                })
                .collect()
        };
        let reversed: Vec<String> = cases.iter().rev().cloned().collect();
        let mut ahead = worker(&server);
        let mut behind = worker(&server);
        let a = ahead.req(pb::BatchSyncVisitFactsRequest {
            items: items(&cases, 2 * round + 1),
        });
        let b = behind.req(pb::BatchSyncVisitFactsRequest {
            items: items(&reversed, 2 * round + 2),
        });
        let (a, b) = tokio::join!(
            ahead.inner.batch_sync_visit_facts(a),
            behind.inner.batch_sync_visit_facts(b)
        );
        assert_eq!(a.unwrap().into_inner().results.len(), 20);
        assert_eq!(b.unwrap().into_inner().results.len(), 20);
    }
    // Each case holds what the last round's later call said (its frame complete, no visits):
    // the same again says nothing new.
    let mut w = worker(&server);
    for id in &cases {
        assert!(!w.facts(id, 11, vec![]).await.unwrap());
    }
}

async fn collect(
    stream: &mut tonic::Streaming<pb::WatchEventsResponse>,
    n: usize,
) -> Vec<pb::CaseEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time");
        out.push(
            next.expect("the stream goes on")
                .expect("no error")
                .event
                .unwrap(),
        );
    }
    out
}

async fn the_feed_streams_the_backlog_then_live_events_and_resumes_anywhere(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let mut w = worker(&server);
    let mut stream = w
        .inner
        .watch_events(w.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    let backlog = collect(&mut stream, 2).await;
    assert!(matches!(backlog[0].change, Some(Change::CaseCreated(_))));
    assert!(matches!(&backlog[1].change, Some(Change::VillageChanged(v)) if v.member_id == mum.id));
    assert_eq!(backlog[1].case_version, 2);
    assert_eq!(backlog[0].actor, "caseworker-1");
    // Live: a decision recorded now arrives on the open stream.
    cw.record(&case.id, decision_for(&mum.id)).await.unwrap();
    let live = collect(&mut stream, 1).await;
    assert!(matches!(&live[0].change, Some(Change::BoardDecisionRecorded(d)) if d.secret_address));
    assert!(live[0].sequence > backlog[1].sequence);
    drop(stream);
    // Resuming after any sequence gives exactly what came after it.
    let mut resumed = w
        .inner
        .watch_events(w.req(pb::WatchEventsRequest {
            after_sequence: backlog[0].sequence,
        }))
        .await
        .unwrap()
        .into_inner();
    let again = collect(&mut resumed, 2).await;
    assert_eq!(again[0].event_id, backlog[1].event_id);
    assert_eq!(again[1].event_id, live[0].event_id);
    // Events carry no personal data: no names, no address.
    for e in backlog.iter().chain(&live) {
        let bytes = format!("{e:?}");
        for secret in ["Emma", "Nordmann", "Bakkeveien", "Kari"] {
            assert!(!bytes.contains(secret), "{secret} in {bytes}");
        }
    }
}

fn decision_for(parent: &str) -> pb::BoardDecision {
    super::support::decision(parent, true)
}

async fn the_feed_is_the_workers_and_shows_only_its_agency(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    cw.create(new_case()).await.unwrap();
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    bergen.create(new_case()).await.unwrap();
    let err = cw
        .inner
        .watch_events(cw.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut w = worker(&server);
    let err = w
        .inner
        .watch_events(w.req(pb::WatchEventsRequest { after_sequence: -1 }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["after_sequence"]);
    let mut stream = w
        .inner
        .watch_events(w.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    let events = collect(&mut stream, 1).await;
    assert_eq!(events[0].agency, AGENCY);
    // Nothing more for Oslo's worker: Bergen's case is Bergen's.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), stream.next())
            .await
            .is_err()
    );
}

async fn every_new_rpc_refuses_roles_without_access_and_malformed_ids(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let id = || case.id.clone();
    let bad = || "not-a-uuid".to_owned();
    let mut auditor = Client::as_role(&server, "auditor-1", AGENCY, &[Role::Auditor]);
    macro_rules! denied {
        ($client:expr, $rpc:ident, $request:expr) => {{
            let request = $client.req($request);
            let err = $client
                .inner
                .$rpc(request)
                .await
                .expect_err(stringify!($rpc));
            assert_eq!(
                err.code(),
                Code::PermissionDenied,
                "{}: {err:?}",
                stringify!($rpc)
            );
        }};
    }
    macro_rules! invalid {
        ($client:expr, $rpc:ident, $request:expr, $fields:expr) => {{
            let request = $client.req($request);
            let err = $client
                .inner
                .$rpc(request)
                .await
                .expect_err(stringify!($rpc));
            assert_eq!(violated_fields(&err), $fields, "{}", stringify!($rpc));
        }};
    }
    denied!(
        auditor,
        schedule_review,
        pb::ScheduleReviewRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        list_reviews,
        pb::ListReviewsRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        complete_review,
        pb::CompleteReviewRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        cw,
        approve_decision,
        pb::ApproveDecisionRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        cw,
        reject_decision,
        pb::RejectDecisionRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        get_readiness,
        pb::GetReadinessRequest { case_id: id() }
    );
    denied!(
        auditor,
        add_follow_up_goal,
        pb::AddFollowUpGoalRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        update_follow_up_goal,
        pb::UpdateFollowUpGoalRequest::default()
    );
    denied!(
        auditor,
        list_follow_up_goals,
        pb::ListFollowUpGoalsRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        add_care_task,
        pb::AddCareTaskRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        move_care_task,
        pb::MoveCareTaskRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        list_care_tasks,
        pb::ListCareTasksRequest { case_id: id() }
    );
    denied!(
        auditor,
        schedule_family_group_conference,
        pb::ScheduleFamilyGroupConferenceRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        record_conference_outcome,
        pb::RecordConferenceOutcomeRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        list_family_group_conferences,
        pb::ListFamilyGroupConferencesRequest { case_id: id() }
    );
    denied!(
        auditor,
        waive_family_group_conference,
        pb::WaiveFamilyGroupConferenceRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        auditor,
        reduce_follow_up_visits,
        pb::ReduceFollowUpVisitsRequest {
            case_id: id(),
            ..Default::default()
        }
    );
    denied!(
        cw,
        batch_sync_due_reviews,
        pb::BatchSyncDueReviewsRequest {
            items: vec![pb::DueReviewsItem {
                case_id: id(),
                ..Default::default()
            }],
        }
    );
    denied!(
        cw,
        batch_sync_visit_facts,
        pb::BatchSyncVisitFactsRequest {
            items: vec![pb::VisitFactsItem {
                case_id: id(),
                ..Default::default()
            }],
        }
    );

    let mut lead_b = lead(&server, "lead-b");
    invalid!(
        cw,
        schedule_review,
        pb::ScheduleReviewRequest {
            case_id: bad(),
            request_id: String::new(),
            review: None
        },
        ["case_id", "review"]
    );
    invalid!(
        cw,
        list_reviews,
        pb::ListReviewsRequest {
            case_id: bad(),
            page_size: -1,
            status: 9,
            ..Default::default()
        },
        ["case_id", "page_size", "status"]
    );
    invalid!(
        cw,
        complete_review,
        pb::CompleteReviewRequest {
            case_id: bad(),
            review_id: bad(),
            ..Default::default()
        },
        [
            "case_id",
            "review_id",
            "etag",
            "decision",
            "rationale",
            "child_view"
        ]
    );
    invalid!(
        lead_b,
        approve_decision,
        pb::ApproveDecisionRequest {
            case_id: bad(),
            review_id: bad(),
            etag: String::new()
        },
        ["case_id", "review_id", "etag"]
    );
    invalid!(
        lead_b,
        reject_decision,
        pb::RejectDecisionRequest {
            case_id: bad(),
            ..Default::default()
        },
        ["case_id", "review_id", "etag", "reason"]
    );
    invalid!(
        cw,
        get_readiness,
        pb::GetReadinessRequest { case_id: bad() },
        ["case_id"]
    );
    invalid!(
        cw,
        add_follow_up_goal,
        pb::AddFollowUpGoalRequest {
            case_id: bad(),
            request_id: bad(),
            goal: None
        },
        ["case_id", "request_id", "goal"]
    );
    invalid!(
        cw,
        update_follow_up_goal,
        pb::UpdateFollowUpGoalRequest {
            goal: None,
            update_mask: None
        },
        ["goal"]
    );
    invalid!(
        cw,
        list_follow_up_goals,
        pb::ListFollowUpGoalsRequest {
            case_id: bad(),
            page_size: -1,
            ..Default::default()
        },
        ["case_id", "page_size"]
    );
    invalid!(
        cw,
        add_care_task,
        pb::AddCareTaskRequest {
            case_id: bad(),
            request_id: String::new(),
            task: None
        },
        ["case_id", "task"]
    );
    invalid!(
        cw,
        move_care_task,
        pb::MoveCareTaskRequest {
            case_id: bad(),
            task_id: bad(),
            etag: String::new(),
            to: 0
        },
        ["case_id", "task_id", "etag", "to"]
    );
    invalid!(
        cw,
        list_care_tasks,
        pb::ListCareTasksRequest { case_id: bad() },
        ["case_id"]
    );
    invalid!(
        cw,
        schedule_family_group_conference,
        pb::ScheduleFamilyGroupConferenceRequest {
            case_id: bad(),
            request_id: String::new(),
            conference: None
        },
        ["case_id", "conference"]
    );
    invalid!(
        cw,
        record_conference_outcome,
        pb::RecordConferenceOutcomeRequest {
            case_id: bad(),
            conference_id: bad(),
            ..Default::default()
        },
        ["case_id", "conference_id", "etag", "held_on"]
    );
    invalid!(
        cw,
        list_family_group_conferences,
        pb::ListFamilyGroupConferencesRequest { case_id: bad() },
        ["case_id"]
    );
    invalid!(
        cw,
        waive_family_group_conference,
        pb::WaiveFamilyGroupConferenceRequest {
            case_id: bad(),
            ..Default::default()
        },
        ["case_id", "etag", "reason"]
    );
    invalid!(
        cw,
        reduce_follow_up_visits,
        pb::ReduceFollowUpVisitsRequest {
            case_id: bad(),
            ..Default::default()
        },
        ["case_id", "etag", "reduction"]
    );
    let mut w = worker(&server);
    invalid!(
        w,
        batch_sync_due_reviews,
        pb::BatchSyncDueReviewsRequest {
            items: vec![pb::DueReviewsItem {
                case_id: bad(),
                case_version: 1,
                policy_version: "1".into(),
                reviews: vec![],
                computed_on: Some(date(2026, 11, 23)),
            }],
        },
        ["items[0].case_id"]
    );
    invalid!(
        w,
        batch_sync_visit_facts,
        pb::BatchSyncVisitFactsRequest {
            items: vec![pb::VisitFactsItem {
                case_id: bad(),
                ..Default::default()
            }],
        },
        ["items[0].case_id"]
    );
    invalid!(
        w,
        batch_sync_visit_facts,
        pb::BatchSyncVisitFactsRequest { items: vec![] },
        ["items"]
    );
    // Another agency's case is not found, for the worker too.
    let mut bergen_worker = Client::as_role(&server, "worker", OTHER_AGENCY, &[Role::Service]);
    let req = bergen_worker.req(pb::GetCaseRequest {
        case_id: id(),
        ..Default::default()
    });
    assert_eq!(
        bergen_worker.inner.get_case(req).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        cw.get(&case.id).await.unwrap().version,
        case.version,
        "refusals changed nothing"
    );
}

// ---- the feed under concurrency (PostgreSQL's sequence gap) -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feed_under_concurrent_writers_and_a_reconnecting_watcher_sees_every_event_once_in_order()
 {
    feed_under_concurrency(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_feed_under_concurrent_writers_and_a_reconnecting_watcher_sees_every_event_once_in_order()
 {
    feed_under_concurrency(Backend::Sqlite).await;
}

async fn feed_under_concurrency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.database.max_connections = 20
    })
    .await;
    server
        .wait_for(landsby_testkit::ServingStatus::Serving)
        .await;
    const WRITERS: usize = 8;
    const CASES_EACH: usize = 10;
    let cw = Client::caseworker(&server);
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let mut client = cw.inner.clone();
        let token = cw.token.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..CASES_EACH {
                let req = landsby_testkit::authed(
                    &token,
                    pb::CreateCaseRequest {
                        request_id: String::new(),
                        case: Some(new_case()),
                    },
                );
                let case = client
                    .create_case(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .case
                    .unwrap();
                let req = landsby_testkit::authed(
                    &token,
                    pb::AddVillageMemberRequest {
                        case_id: case.id,
                        request_id: String::new(),
                        member: Some(mother()),
                    },
                );
                client.add_village_member(req).await.unwrap();
            }
        }));
    }
    let expected = WRITERS * CASES_EACH * 2;
    // The watcher drops its stream at random points and resumes from the last sequence it handled,
    // until the writers are done and a fresh stream has nothing more.
    let w = worker(&server);
    let mut seen: Vec<pb::CaseEvent> = Vec::new();
    let mut cursor = 0;
    let mut rng = 0x2545F4914F6CDD1Du64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher saw {} of {expected} events",
            seen.len()
        );
        let writers_done = writers.iter().all(|w| w.is_finished());
        let mut client = w.inner.clone();
        let mut stream = client
            .watch_events(w.req(pb::WatchEventsRequest {
                after_sequence: cursor,
            }))
            .await
            .unwrap()
            .into_inner();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let take = 1 + (rng % 7) as usize;
        let mut got = 0;
        for _ in 0..take {
            match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
                Ok(Some(Ok(r))) => {
                    let event = r.event.unwrap();
                    cursor = event.sequence;
                    seen.push(event);
                    got += 1;
                }
                Ok(other) => panic!("the stream ended: {other:?}"),
                Err(_) => break, // nothing yet; reconnect
            }
        }
        if writers_done && got == 0 {
            break;
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // What was committed, read in one go from the start.
    let mut client = w.inner.clone();
    let mut all = client
        .watch_events(w.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut committed = Vec::new();
    while committed.len() < expected {
        let r = tokio::time::timeout(Duration::from_secs(5), all.next())
            .await
            .expect("the backlog arrives")
            .unwrap()
            .unwrap();
        committed.push(r.event.unwrap().sequence);
    }
    let watched: Vec<i64> = seen.iter().map(|e| e.sequence).collect();
    let skipped: Vec<i64> = committed
        .iter()
        .filter(|s| !watched.contains(s))
        .copied()
        .collect();
    assert!(skipped.is_empty(), "the watcher skipped {skipped:?}");
    assert_eq!(watched, committed, "each event once, in order");
    let ids: std::collections::HashSet<&str> = seen.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), expected, "every event exactly once");
}

async fn without_approval_in_the_policy_a_decision_takes_effect_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let file = db.dir().join("policy.toml");
    let text = landsby_domain::policy::DEFAULT_POLICY
        .replace(
            "step_and_goal_decisions_need_team_lead = true",
            "step_and_goal_decisions_need_team_lead = false",
        )
        .replace("version = \"2026.1\"", "version = \"no-approval-1\"");
    std::fs::write(&file, text).unwrap();
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| c.policy_file = file).await;
    server
        .wait_for(landsby_testkit::ServingStatus::Serving)
        .await;
    let mut cw = Client::caseworker(&server);
    let (case, r) = ready_for_step_two(&server, &mut cw).await;
    let (done, moved) = cw
        .complete(&case.id, &r, decision(pb::DecisionKind::Advance))
        .await
        .unwrap();
    assert_eq!(
        done.outcome.unwrap().decision_status(),
        pb::DecisionStatus::Applied
    );
    assert_eq!(moved.step(), pb::Step::Involvement);
    assert_eq!(
        cw.readiness(&case.id).await.unwrap().policy_version,
        "no-approval-1"
    );
}

//! Visitation plans through the gRPC API, on both databases, next to a running case service:
//! computed scopes from the worker, adjustments checked against the board's floor and conditions as
//! the case service has them, scope versions, proposed schedules.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::case as cpb;
use landsby_proto::visitation as pb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY};
use tonic::Code;

landsby_testkit::on_both_backends!(
    a_computed_scope_creates_the_plan_and_only_a_newer_stamp_replaces_it,
    the_same_case_and_policy_computed_on_a_later_day_replaces_and_a_replay_does_not,
    a_computed_scope_without_its_day_is_refused_and_changes_nothing,
    a_computed_scope_is_refused_with_field_details_and_changes_nothing,
    a_computed_scope_must_keep_the_floor_as_the_case_service_has_it,
    plans_and_their_scope_versions_are_read_and_listed_a_page_at_a_time,
    an_adjustment_below_the_floor_or_past_a_condition_is_refused_naming_the_rule,
    an_adjustment_is_checked_against_the_board_decision_in_force_now,
    adjustments_hold_within_a_step_and_a_new_step_starts_afresh,
    a_weekly_schedule_is_proposed_at_17_local_across_the_spring_change,
    a_proposed_schedule_keeps_clear_of_booked_visits_and_commitments,
    every_plan_rpc_refuses_roles_without_access_and_malformed_input,
    a_decision_after_the_plan_applies_under_the_same_stamp_and_a_closed_case_refuses_changes,
    agency_supervised_overnight_stays_are_refused_without_a_board_condition,
    every_rpc_that_needs_the_case_service_is_unavailable_while_it_is_down,
    the_worker_reads_the_plans_and_visits_of_many_cases_in_one_call,
    the_worker_puts_many_parents_scopes_in_force_in_one_call_or_none,
);

fn with_duration(mut s: pb::Scope, minutes: i32) -> pb::Scope {
    s.duration_minutes = minutes;
    s
}

async fn a_computed_scope_creates_the_plan_and_only_a_newer_stamp_replaces_it(backend: Backend) {
    let env = env(backend).await;
    let family = family(&env, None, false).await;
    let mut worker = Client::worker(&env);
    let step1 = computed(&family, landsby_domain::Step::Safety, None, false);
    let first = worker
        .apply(
            &family,
            &family.mother_id,
            3,
            cpb::Step::Safety,
            step1.clone(),
        )
        .await
        .unwrap();
    assert!(first.applied);
    let plan = first.plan.unwrap();
    assert_eq!(plan.scope_version, 1);
    assert_eq!(plan.parent_id, family.mother_id);
    let scope = plan.scope.clone().unwrap();
    assert_eq!(
        scope, step1,
        "the scope in force is the computed one, explanations and all"
    );
    assert!(scope.explanations.iter().all(|e| !e.reasons.is_empty()));
    // Equal and older stamps change nothing; a newer one does, and the plan is the same plan.
    let again = worker
        .apply(
            &family,
            &family.mother_id,
            3,
            cpb::Step::Safety,
            with_duration(step1.clone(), 60),
        )
        .await
        .unwrap();
    assert!(!again.applied);
    assert_eq!(again.plan.unwrap().scope_version, 1);
    let older = worker
        .apply(
            &family,
            &family.mother_id,
            2,
            cpb::Step::Involvement,
            step1.clone(),
        )
        .await
        .unwrap();
    assert!(!older.applied);
    let step2 = computed(&family, landsby_domain::Step::Involvement, None, false);
    let newer = worker
        .apply(
            &family,
            &family.mother_id,
            4,
            cpb::Step::Involvement,
            step2.clone(),
        )
        .await
        .unwrap();
    assert!(newer.applied);
    let plan2 = newer.plan.unwrap();
    assert_eq!(
        (plan2.id.as_str(), plan2.scope_version),
        (plan.id.as_str(), 2)
    );
    assert_eq!(plan2.scope.unwrap(), step2);
    assert_eq!(plan2.computed_from.unwrap().step(), cpb::Step::Involvement);
}

async fn the_same_case_and_policy_computed_on_a_later_day_replaces_and_a_replay_does_not(
    backend: Backend,
) {
    let env = env(backend).await;
    let family = family(&env, None, false).await;
    let mut worker = Client::worker(&env);
    let mother = family.mother_id.clone();
    let step1 = computed(&family, landsby_domain::Step::Safety, None, false);
    let first = worker
        .apply_on(
            &family,
            &mother,
            (3, Some(date(2026, 11, 23))),
            cpb::Step::Safety,
            step1.clone(),
        )
        .await
        .unwrap();
    assert!(first.applied);
    let plan = first.plan.unwrap();
    assert_eq!(
        plan.computed_from.clone().unwrap().computed_on,
        Some(date(2026, 11, 23)),
        "the plan carries the day"
    );
    // The next day, same case version and policy: the values the day changed are put in force.
    let next_day = with_duration(step1.clone(), 60);
    let later = worker
        .apply_on(
            &family,
            &mother,
            (3, Some(date(2026, 11, 24))),
            cpb::Step::Safety,
            next_day.clone(),
        )
        .await
        .unwrap();
    assert!(later.applied, "a later day is a newer stamp");
    let plan2 = later.plan.unwrap();
    assert_eq!(
        (plan2.id.as_str(), plan2.scope_version),
        (plan.id.as_str(), 2)
    );
    assert_eq!(plan2.scope.clone().unwrap().duration_minutes, 60);
    assert_eq!(plan2.scope.clone().unwrap(), next_day);
    let from = plan2.computed_from.clone().unwrap();
    assert_eq!(
        (from.case_version, from.computed_on),
        (3, Some(date(2026, 11, 24)))
    );
    // The same stamp again (a same-day replay), or an earlier day, changes nothing.
    for (on, scope) in [
        (date(2026, 11, 24), with_duration(step1.clone(), 90)),
        (date(2026, 11, 23), step1.clone()),
    ] {
        let replay = worker
            .apply_on(&family, &mother, (3, Some(on)), cpb::Step::Safety, scope)
            .await
            .unwrap();
        assert!(!replay.applied, "{on:?}");
        assert_eq!(replay.plan.unwrap(), plan2, "{on:?}");
    }
    // A later case version wins whatever the day.
    let newer = worker
        .apply_on(
            &family,
            &mother,
            (4, Some(date(2026, 11, 20))),
            cpb::Step::Safety,
            step1.clone(),
        )
        .await
        .unwrap();
    assert!(newer.applied);
    assert_eq!(newer.plan.unwrap().scope_version, 3);
    // The versions keep the day each scope was computed on.
    let mut cw = Client::caseworker(&env);
    let versions = cw
        .inner
        .list_scope_versions(cw.req(pb::ListScopeVersionsRequest {
            plan_id: plan.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        versions
            .iter()
            .map(|v| v.computed_from.clone().unwrap().computed_on)
            .collect::<Vec<_>>(),
        [
            Some(date(2026, 11, 20)),
            Some(date(2026, 11, 24)),
            Some(date(2026, 11, 23))
        ]
    );
}

async fn a_computed_scope_without_its_day_is_refused_and_changes_nothing(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut worker = Client::worker(&env);
    let mother = family.mother_id.clone();
    let scope = with_duration(
        computed(&family, landsby_domain::Step::Safety, None, false),
        60,
    );
    let version = plan.computed_from.clone().unwrap().case_version;
    // Missing, not a calendar day, or a day still to come (a clock gone wrong): refused, naming
    // the field, whatever the rest of the stamp says.
    let far = chrono::Utc::now().date_naive() + chrono::Days::new(10);
    for on in [
        None,
        Some(date(2026, 2, 30)),
        Some(landsby_platform::validate::date_to_proto(far)),
    ] {
        let err = worker
            .apply_on(
                &family,
                &mother,
                (version + 1, on),
                cpb::Step::Safety,
                scope.clone(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{on:?}");
        assert_eq!(
            violated_fields(&err),
            ["items[0].computed_from.computed_on"],
            "{on:?}"
        );
    }
    assert_eq!(
        Client::caseworker(&env).plan(&plan.id).await.unwrap(),
        plan,
        "nothing changed"
    );
    // A parent without a plan gets none.
    let father = family.father_id.clone();
    let err = worker
        .apply_on(&family, &father, (version, None), cpb::Step::Safety, scope)
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["items[0].computed_from.computed_on"]
    );
    let list = Client::caseworker(&env)
        .inner
        .list_visitation_plans(
            Client::caseworker(&env).req(pb::ListVisitationPlansRequest {
                case_id: family.case_id.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.plans.len(), 1, "only the mother's plan");
}

async fn a_computed_scope_is_refused_with_field_details_and_changes_nothing(backend: Backend) {
    let env = env(backend).await;
    let family = family(&env, None, false).await;
    let mut worker = Client::worker(&env);
    let mut bad = computed(&family, landsby_domain::Step::Safety, None, false);
    bad.explanations.retain(|e| e.field != "places");
    bad.duration_minutes = 5;
    bad.places.push(pb::Place::AgencyPremises.into());
    let req = worker.req(pb::BatchApplyComputedScopesRequest {
        items: vec![pb::ComputedScopeItem {
            case_id: family.case_id.clone(),
            parent_id: "not-a-uuid".into(),
            computed_from: Some(pb::ComputedFrom {
                case_version: 0,
                policy_version: String::new(),
                step: cpb::Step::Responsibility.into(),
                goal: cpb::Goal::LongTermPlacement.into(),
                computed_on: Some(date(2026, 2, 30)),
            }),
            scope: Some(bad),
        }],
    });
    let err = worker
        .inner
        .batch_apply_computed_scopes(req)
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "items[0].parent_id",
            "items[0].computed_from.case_version",
            "items[0].computed_from.policy_version",
            "items[0].computed_from.step",
            "items[0].computed_from.computed_on",
            "items[0].scope.duration_minutes",
            "items[0].scope.places[2]",
            "items[0].scope.explanations"
        ]
    );
    // Not a parent with visitation rights: the foster parent, and the case's agency is not ours.
    let scope = computed(&family, landsby_domain::Step::Safety, None, false);
    let err = worker
        .apply(
            &family,
            &family.foster_id,
            1,
            cpb::Step::Safety,
            scope.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["items[0].parent_id"]);
    let mut bergen = Client::as_role(&env, "landsby-worker", OTHER_AGENCY, &[Role::Service]);
    let err = bergen
        .apply(&family, &family.mother_id, 1, cpb::Step::Safety, scope)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let list = Client::caseworker(&env)
        .inner
        .list_visitation_plans(
            Client::caseworker(&env).req(pb::ListVisitationPlansRequest {
                case_id: family.case_id.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(list.plans.is_empty(), "nothing was created");
}

async fn a_computed_scope_must_keep_the_floor_as_the_case_service_has_it(backend: Backend) {
    let env = env(backend).await;
    // The board: at least 2 visits a month of 120 minutes, supervised; the address is secret.
    let family = family(&env, Some((2, 120, true)), true).await;
    let mut worker = Client::worker(&env);
    // Computed without the floor (a stale or wrong computation): refused, rule by rule.
    let stale = computed(&family, landsby_domain::Step::Responsibility, None, false);
    let err = worker
        .apply(
            &family,
            &family.mother_id,
            1,
            cpb::Step::Responsibility,
            stale,
        )
        .await
        .unwrap_err();
    let subjects: Vec<String> = preconditions(&err).into_iter().map(|(_, s)| s).collect();
    assert!(
        precondition_kinds(&err)
            .iter()
            .all(|k| k == "COMPUTED_SCOPE_BREACHES_THE_LAW")
    );
    assert!(
        subjects.contains(&"scope.supervision".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"scope.places".to_owned()),
        "{subjects:?}"
    );
    // Computed with it: in force, and the plan shows the floor and the secret address.
    let lawful = computed(
        &family,
        landsby_domain::Step::Responsibility,
        Some((2, 120, true)),
        true,
    );
    let plan = worker
        .apply(
            &family,
            &family.mother_id,
            1,
            cpb::Step::Responsibility,
            lawful,
        )
        .await
        .unwrap()
        .plan
        .unwrap();
    assert!(plan.secret_address);
    let floor = plan.floor.unwrap();
    assert_eq!((floor.min_visits, floor.min_duration_minutes), (2, 120));
    assert!(
        !plan
            .scope
            .unwrap()
            .places
            .contains(&(pb::Place::FosterHome as i32))
    );
}

async fn plans_and_their_scope_versions_are_read_and_listed_a_page_at_a_time(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut worker = Client::worker(&env);
    let father_scope = computed(&family, landsby_domain::Step::Safety, None, false);
    let father = family.father_id.clone();
    worker
        .apply(&family, &father, 1, cpb::Step::Safety, father_scope)
        .await
        .unwrap();
    let mut cw = Client::caseworker(&env);
    assert_eq!(cw.plan(&plan.id).await.unwrap().id, plan.id);
    // Two plans, one a page.
    let first = cw
        .inner
        .list_visitation_plans(cw.req(pb::ListVisitationPlansRequest {
            case_id: family.case_id.clone(),
            page_size: 1,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.plans.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = cw
        .inner
        .list_visitation_plans(cw.req(pb::ListVisitationPlansRequest {
            case_id: family.case_id.clone(),
            page_size: 1,
            page_token: first.next_page_token.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.plans.len(), 1);
    assert!(second.next_page_token.is_empty());
    assert_ne!(first.plans[0].id, second.plans[0].id);
    // A token from another list is refused.
    let err = cw
        .inner
        .list_scope_versions(cw.req(pb::ListScopeVersionsRequest {
            plan_id: plan.id.clone(),
            page_size: 1,
            page_token: first.next_page_token,
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
    // Versions, newest first: the adjustment, then the computed scope.
    let mut scope = plan.scope.clone().unwrap();
    scope.duration_minutes = 120;
    cw.adjust(&plan, scope, &["duration_minutes"])
        .await
        .unwrap();
    let versions = cw
        .inner
        .list_scope_versions(cw.req(pb::ListScopeVersionsRequest {
            plan_id: plan.id.clone(),
            page_size: 10,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.source()))
            .collect::<Vec<_>>(),
        [
            (2, pb::ScopeSource::Adjusted),
            (1, pb::ScopeSource::Computed)
        ]
    );
    assert_eq!(versions[0].rationale, "the child asked for it");
    assert_eq!(versions[0].changed_by, "caseworker-1");
    // Another agency sees nothing.
    let mut bergen = Client::as_role(&env, "cw", OTHER_AGENCY, &[Role::Caseworker]);
    assert_eq!(
        bergen.plan(&plan.id).await.unwrap_err().code(),
        Code::NotFound
    );
}

async fn an_adjustment_below_the_floor_or_past_a_condition_is_refused_naming_the_rule(
    backend: Backend,
) {
    let env = env(backend).await;
    let family = family(&env, Some((2, 120, true)), true).await;
    let lawful = computed(
        &family,
        landsby_domain::Step::Involvement,
        Some((2, 120, true)),
        true,
    );
    let plan = Client::worker(&env)
        .apply(
            &family,
            &family.mother_id,
            1,
            cpb::Step::Involvement,
            lawful,
        )
        .await
        .unwrap()
        .plan
        .unwrap();
    let mut cw = Client::caseworker(&env);
    let mut scope = plan.scope.clone().unwrap();
    scope.frequency = Some(pb::Frequency {
        count: 1,
        period: cpb::VisitPeriod::Month.into(),
    });
    scope.duration_minutes = 60;
    scope.supervision = pb::Supervision::Unsupervised.into();
    scope.places = vec![pb::Place::FosterHome.into()];
    let err = cw
        .adjust(
            &plan,
            scope,
            &["frequency", "duration_minutes", "supervision", "places"],
        )
        .await
        .unwrap_err();
    assert_eq!(
        precondition_kinds(&err),
        [
            "BOARD_FLOOR",
            "BOARD_FLOOR",
            "BOARD_SUPERVISION",
            "SECRET_ADDRESS"
        ]
    );
    let subjects: Vec<String> = preconditions(&err).into_iter().map(|(_, s)| s).collect();
    assert_eq!(subjects[0], format!("plans/{}/scope.frequency", plan.id));
    assert_eq!(
        cw.plan(&plan.id).await.unwrap().version,
        plan.version,
        "nothing changed"
    );
    // More than the floor is the agency's to give: in force, explained, and in the history.
    let mut more = plan.scope.clone().unwrap();
    more.duration_minutes = 180;
    let adjusted = cw.adjust(&plan, more, &["duration_minutes"]).await.unwrap();
    let scope = adjusted.scope.clone().unwrap();
    assert_eq!(scope.duration_minutes, 180);
    let why = scope
        .explanations
        .iter()
        .find(|e| e.field == "duration_minutes")
        .unwrap();
    assert_eq!(why.reasons.last().unwrap().rule, "manual");
    assert_eq!(adjusted.adjustments.len(), 1);
    assert_eq!(adjusted.scope_version, plan.scope_version + 1);
    // The old etag is stale now.
    let err = cw
        .adjust(&plan, plan.scope.clone().unwrap(), &["duration_minutes"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
}

async fn an_adjustment_is_checked_against_the_board_decision_in_force_now(backend: Backend) {
    let env = env(backend).await;
    let mut family = family(&env, None, false).await;
    let scope = computed(&family, landsby_domain::Step::Involvement, None, false);
    let plan = Client::worker(&env)
        .apply(
            &family,
            &family.mother_id.clone(),
            1,
            cpb::Step::Involvement,
            scope,
        )
        .await
        .unwrap()
        .plan
        .unwrap();
    // After the plan was computed, the board decides on supervision; the worker has not run yet.
    let mut d = decision(&family.mother_id, false);
    d.floors[0].min_visits = 1;
    d.floors[0].period = cpb::VisitPeriod::Month.into();
    d.floors[0].min_duration_minutes = 60;
    d.floors[0].supervision_required = true;
    let case_id = family.case_id.clone();
    family.cases.record(&case_id, d).await.unwrap();
    let mut cw = Client::caseworker(&env);
    let mut scope = plan.scope.clone().unwrap();
    scope.activities = vec!["football".into()];
    let err = cw.adjust(&plan, scope, &["activities"]).await.unwrap_err();
    assert_eq!(
        precondition_kinds(&err),
        ["BOARD_SUPERVISION"],
        "the plan's supervision breaches the decision read from the case service now"
    );
}

async fn adjustments_hold_within_a_step_and_a_new_step_starts_afresh(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut scope = plan.scope.clone().unwrap();
    scope.duration_minutes = 75;
    let adjusted = cw
        .adjust(&plan, scope, &["duration_minutes"])
        .await
        .unwrap();
    assert_eq!(adjusted.scope.unwrap().duration_minutes, 75);
    let mut worker = Client::worker(&env);
    let mother = family.mother_id.clone();
    // A recompute in the same step keeps the adjustment on top.
    let same = computed(&family, landsby_domain::Step::Safety, None, false);
    let kept = worker
        .apply(&family, &mother, 2, cpb::Step::Safety, same)
        .await
        .unwrap()
        .plan
        .unwrap();
    assert_eq!(kept.scope.unwrap().duration_minutes, 75);
    assert_eq!(kept.adjustments.len(), 1);
    // A new step starts from the newly computed scope.
    let step2 = computed(&family, landsby_domain::Step::Involvement, None, false);
    let applied = worker
        .apply(&family, &mother, 3, cpb::Step::Involvement, step2.clone())
        .await
        .unwrap();
    assert_eq!(
        applied.dropped_adjustments,
        ["duration_minutes"],
        "the caller is told which adjustments the new step dropped"
    );
    let fresh = applied.plan.unwrap();
    assert!(fresh.adjustments.is_empty());
    assert_eq!(fresh.scope.unwrap(), step2);
}

async fn a_decision_after_the_plan_applies_under_the_same_stamp_and_a_closed_case_refuses_changes(
    backend: Backend,
) {
    let env = env(backend).await;
    let (mut family, plan) = planned(&env).await;
    let stamp = plan.computed_from.clone().unwrap().case_version;
    let mut worker = Client::worker(&env);
    let mother = family.mother_id.clone();
    // A stamp from a case version the case has not reached is a bug in the caller.
    let step1 = computed(&family, landsby_domain::Step::Safety, None, false);
    let err = worker
        .apply(&family, &mother, 10_000, cpb::Step::Safety, step1.clone())
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["items[0].computed_from.case_version"]
    );
    // The board decides two visits a month of two days each (2880 minutes) after the plan was
    // computed. The same stamp again with the old scope would breach it: refused, not ignored.
    let mut d = decision(&mother, false);
    d.floors[0].min_visits = 2;
    d.floors[0].period = cpb::VisitPeriod::Month.into();
    d.floors[0].min_duration_minutes = 2880;
    d.floors[0].supervision_required = true;
    family.cases.record(&family.case_id, d).await.unwrap();
    let err = worker
        .apply(&family, &mother, stamp, cpb::Step::Safety, step1)
        .await
        .unwrap_err();
    assert!(
        precondition_kinds(&err)
            .iter()
            .all(|k| k == "COMPUTED_SCOPE_BREACHES_THE_LAW"),
        "{err:?}"
    );
    // The scope computed with the decision, under the same stamp: the floor changed, so it applies.
    let lawful = computed(
        &family,
        landsby_domain::Step::Safety,
        Some((2, 2880, true)),
        false,
    );
    let applied = worker
        .apply(&family, &mother, stamp, cpb::Step::Safety, lawful.clone())
        .await
        .unwrap();
    assert!(applied.applied);
    let plan = applied.plan.unwrap();
    assert_eq!(plan.floor.clone().unwrap().min_duration_minutes, 2880);
    assert_eq!(plan.scope.clone().unwrap().duration_minutes, 2880);
    // Once more: nothing changed, nothing applied.
    let again = worker
        .apply(&family, &mother, stamp, cpb::Step::Safety, lawful.clone())
        .await
        .unwrap();
    assert!(!again.applied);
    // Agency-supervised overnight stays are refused whatever the board says.
    let mut cw = Client::caseworker(&env);
    let mut overnight = plan.scope.clone().unwrap();
    overnight.overnights = Some(pb::Frequency {
        count: 1,
        period: cpb::VisitPeriod::Month.into(),
    });
    let err = cw
        .adjust(&plan, overnight, &["overnights"])
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["BOARD_SUPERVISION"]);
    // A closed case's plans are not changed.
    family.cases.close(&family.case_id).await.unwrap();
    let mut longer = plan.scope.clone().unwrap();
    longer.duration_minutes = 3000;
    let err = cw
        .adjust(&plan, longer, &["duration_minutes"])
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["CASE_CLOSED"]);
    let err = worker
        .apply(&family, &mother, stamp + 1, cpb::Step::Safety, lawful)
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["CASE_CLOSED"]);
    assert_eq!(cw.plan(&plan.id).await.unwrap(), plan, "nothing changed");
}

async fn agency_supervised_overnight_stays_are_refused_without_a_board_condition(backend: Backend) {
    let env = env(backend).await;
    let (_family, plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut scope = plan.scope.clone().unwrap();
    assert_eq!(scope.supervision(), pb::Supervision::AgencySupervised);
    scope.overnights = Some(pb::Frequency {
        count: 1,
        period: cpb::VisitPeriod::Month.into(),
    });
    let err = cw.adjust(&plan, scope, &["overnights"]).await.unwrap_err();
    assert_eq!(precondition_kinds(&err), ["OVERNIGHTS_SUPERVISED"]);
    assert_eq!(
        preconditions(&err)[0].1,
        format!("plans/{}/scope.overnights", plan.id)
    );
}

async fn every_rpc_that_needs_the_case_service_is_unavailable_while_it_is_down(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    // The case service stops; the visitation service goes on.
    let Env { case, visitation } = env;
    case.stop().await;
    let mut cw = Client::on(&visitation, "caseworker-1", AGENCY, &[Role::Caseworker]);
    let err = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), "staff-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let mut scope = plan.scope.clone().unwrap();
    scope.duration_minutes = 120;
    let err = cw
        .adjust(&plan, scope, &["duration_minutes"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // A caseworker's reads need it too: need to know is decided there.
    assert_eq!(
        cw.plan(&plan.id).await.unwrap_err().code(),
        Code::Unavailable
    );
    // The worker reads what this service holds without it (the plan's scope versions, the batch of
    // plans and visits it computes from); nothing changed.
    let mut worker = Client::on(&visitation, "landsby-worker", AGENCY, &[Role::Service]);
    let req = worker.req(pb::ListScopeVersionsRequest {
        plan_id: plan.id.clone(),
        ..Default::default()
    });
    let versions = worker
        .inner
        .list_scope_versions(req)
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    let req = worker.req(pb::BatchGetCaseVisitationRequest {
        case_ids: vec![family.case_id.clone()],
        visits_start_after: Some(prost_types::Timestamp::default()),
    });
    let batch = worker
        .inner
        .batch_get_case_visitation(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.cases.len(), 1);
    assert_eq!(batch.cases[0].plans, std::slice::from_ref(&plan));
    assert!(batch.cases[0].visits.is_empty());
}

async fn weekly_plan(env: &Env) -> (Family, pb::VisitationPlan) {
    let (family, plan) = planned(env).await;
    let mut scope = plan.scope.clone().unwrap();
    scope.frequency = Some(pb::Frequency {
        count: 1,
        period: cpb::VisitPeriod::Week.into(),
    });
    let plan = Client::caseworker(env)
        .adjust(&plan, scope, &["frequency"])
        .await
        .unwrap();
    (family, plan)
}

async fn propose(
    cw: &mut Client,
    plan: &pb::VisitationPlan,
    from: (i32, u32, u32),
    weeks: i32,
    commitments: Vec<pb::Commitment>,
) -> pb::ProposeScheduleResponse {
    let req = cw.req(pb::ProposeScheduleRequest {
        plan_id: plan.id.clone(),
        weeks,
        from_date: Some(date(from.0, from.1, from.2)),
        weekday_time: None,
        weekend_time: None,
        commitments,
    });
    cw.inner.propose_schedule(req).await.unwrap().into_inner()
}

async fn a_weekly_schedule_is_proposed_at_17_local_across_the_spring_change(backend: Backend) {
    let env = env(backend).await;
    let (_family, plan) = weekly_plan(&env).await;
    let mut cw = Client::caseworker(&env);
    // Tuesdays from 2027-03-16; clocks go forward on Sunday 2027-03-28.
    let proposal = propose(&mut cw, &plan, (2027, 3, 16), 4, vec![]).await;
    assert_eq!(proposal.unplaced, 0);
    assert_eq!(proposal.visits.len(), 4);
    let utc_hours: Vec<i64> = proposal
        .visits
        .iter()
        .map(|v| {
            let local = v.local_start.as_ref().unwrap().time.as_ref().unwrap();
            assert_eq!(
                (local.hours, local.minutes),
                (17, 0),
                "17:00 on the Oslo clock"
            );
            (v.start_time.as_ref().unwrap().seconds / 3600) % 24
        })
        .collect();
    assert_eq!(utc_hours, [16, 16, 15, 15]);
    assert_eq!(proposal.scope_version, plan.scope_version);
}

async fn a_proposed_schedule_keeps_clear_of_booked_visits_and_commitments(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = weekly_plan(&env).await;
    let mut cw = Client::caseworker(&env);
    // Tuesday 17:00 is taken.
    cw.schedule(visit(&family, at(2027, 3, 16, 17, 0), ""))
        .await
        .unwrap();
    // Football on Tuesdays and Wednesdays from 16:00 to 20:00.
    let football = pb::Commitment {
        weekdays: vec![
            landsby_proto::common::Weekday::Tuesday.into(),
            landsby_proto::common::Weekday::Wednesday.into(),
        ],
        start: Some(landsby_proto::common::TimeOfDay {
            hours: 16,
            minutes: 0,
        }),
        end: Some(landsby_proto::common::TimeOfDay {
            hours: 20,
            minutes: 0,
        }),
    };
    let proposal = propose(&mut cw, &plan, (2027, 3, 16), 1, vec![football]).await;
    assert_eq!(proposal.visits.len(), 1);
    let local = proposal.visits[0].local_start.as_ref().unwrap();
    let day = local.date.as_ref().unwrap();
    assert_eq!(
        (day.month, day.day),
        (3, 16),
        "the first free time on the Tuesday itself: before football"
    );
    let time = local.time.as_ref().unwrap();
    assert!(time.hours < 16, "{time:?}");
}

async fn every_plan_rpc_refuses_roles_without_access_and_malformed_input(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    for role in [Role::AgencyAdmin, Role::Auditor] {
        let mut c = Client::as_role(&env, "someone", AGENCY, &[role]);
        let err = c.plan(&plan.id).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }
    let mut cw = Client::caseworker(&env);
    let err = cw
        .apply(
            &family,
            &family.mother_id,
            9,
            cpb::Step::Safety,
            plan.scope.clone().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "only the worker applies"
    );
    let mut worker = Client::worker(&env);
    let err = worker
        .adjust(&plan, plan.scope.clone().unwrap(), &["duration_minutes"])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "the worker does not adjust"
    );
    let req = worker.req(pb::ProposeScheduleRequest {
        plan_id: plan.id.clone(),
        ..Default::default()
    });
    assert_eq!(
        worker.inner.propose_schedule(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // Malformed input, every field at once.
    assert_eq!(
        violated_fields(&cw.plan("nope").await.unwrap_err()),
        ["plan_id"]
    );
    let req = cw.req(pb::AdjustVisitationPlanRequest {
        plan_id: "nope".into(),
        etag: "x".into(),
        scope: Some(pb::Scope {
            duration_minutes: 20_000,
            ..Default::default()
        }),
        update_mask: mask(&["duration_minutes", "policy_version"]),
        rationale: " ".into(),
    });
    let err = cw.inner.adjust_visitation_plan(req).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "plan_id",
            "etag",
            "update_mask.paths[1]",
            "scope.duration_minutes",
            "rationale"
        ]
    );
    let req = cw.req(pb::ProposeScheduleRequest {
        plan_id: plan.id.clone(),
        weeks: 30,
        from_date: Some(date(2027, 2, 30)),
        weekday_time: Some(landsby_proto::common::TimeOfDay {
            hours: 24,
            minutes: 0,
        }),
        weekend_time: None,
        commitments: vec![pb::Commitment {
            weekdays: vec![],
            start: Some(landsby_proto::common::TimeOfDay {
                hours: 10,
                minutes: 0,
            }),
            end: Some(landsby_proto::common::TimeOfDay {
                hours: 9,
                minutes: 0,
            }),
        }],
    });
    let err = cw.inner.propose_schedule(req).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "weeks",
            "from_date",
            "weekday_time",
            "commitments[0].weekdays",
            "commitments[0].end"
        ]
    );
    let req = cw.req(pb::ListScopeVersionsRequest {
        plan_id: "x".into(),
        page_size: -1,
        page_token: String::new(),
    });
    assert_eq!(
        violated_fields(&cw.inner.list_scope_versions(req).await.unwrap_err()),
        ["plan_id", "page_size"]
    );
    let req = cw.req(pb::ListVisitationPlansRequest {
        case_id: "x".into(),
        page_size: 0,
        page_token: String::new(),
    });
    assert_eq!(
        violated_fields(&cw.inner.list_visitation_plans(req).await.unwrap_err()),
        ["case_id"]
    );
}

async fn the_worker_reads_the_plans_and_visits_of_many_cases_in_one_call(backend: Backend) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let early = cw
        .schedule(visit(&family, at(2027, 3, 23, 17, 0), "staff-1"))
        .await
        .unwrap();
    let late = cw
        .schedule(visit(&family, at(2027, 3, 30, 17, 0), "staff-1"))
        .await
        .unwrap();
    let (other, other_plan) = planned(&env).await;
    let nothing = uuid::Uuid::now_v7().to_string();
    let before = landsby_testkit::audit::audit_rows(&env.visitation)
        .await
        .len();
    let mut worker = Client::worker(&env);
    let since = |y, m, d| prost_types::Timestamp {
        seconds: chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp(),
        nanos: 0,
    };
    let req = worker.req(pb::BatchGetCaseVisitationRequest {
        case_ids: vec![
            nothing.clone(),
            family.case_id.clone(),
            other.case_id.clone(),
        ],
        visits_start_after: Some(since(2027, 3, 25)),
    });
    let got = worker
        .inner
        .batch_get_case_visitation(req)
        .await
        .unwrap()
        .into_inner()
        .cases;
    let ids: Vec<&str> = got.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            nothing.as_str(),
            family.case_id.as_str(),
            other.case_id.as_str()
        ],
        "every case asked, in order"
    );
    assert!(got[0].plans.is_empty() && got[0].visits.is_empty());
    assert_eq!(got[1].plans.len(), 1);
    assert_eq!(got[1].plans[0].id, plan.id);
    let visits: Vec<&str> = got[1].visits.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(
        visits,
        [late.id.as_str()],
        "only visits from the instant asked on"
    );
    assert!(!got[1].more_visits);
    assert_eq!(got[2].plans[0].id, other_plan.id);
    assert!(got[2].visits.is_empty());
    // From earlier on, both visits, by start.
    let req = worker.req(pb::BatchGetCaseVisitationRequest {
        case_ids: vec![family.case_id.clone()],
        visits_start_after: Some(since(2027, 1, 1)),
    });
    let got = worker.inner.batch_get_case_visitation(req).await.unwrap();
    let visits: Vec<String> = got.into_inner().cases[0]
        .visits
        .iter()
        .map(|v| v.id.clone())
        .collect();
    assert_eq!(visits, [early.id.clone(), late.id.clone()]);

    // One audit row per case with something read (the first call's two, then one).
    let rows = landsby_testkit::audit::audit_rows(&env.visitation).await;
    let batch: Vec<_> = rows[before..]
        .iter()
        .filter(|r| r.rpc == "landsby.visitation.v1.VisitationService/BatchGetCaseVisitation")
        .collect();
    let cases: Vec<String> = batch
        .iter()
        .map(|r| r.case_id.map(|c| c.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        cases,
        [
            family.case_id.clone(),
            other.case_id.clone(),
            family.case_id.clone()
        ]
    );
    assert!(batch[0].resource_ids.contains(&uuid_of(&plan.id)));
    assert!(batch[0].resource_ids.contains(&uuid_of(&late.id)));

    // Another agency's worker sees nothing of these cases.
    let mut bergen = Client::as_role(&env, "landsby-worker", OTHER_AGENCY, &[Role::Service]);
    let req = bergen.req(pb::BatchGetCaseVisitationRequest {
        case_ids: vec![family.case_id.clone()],
        visits_start_after: Some(since(2027, 1, 1)),
    });
    let got = bergen.inner.batch_get_case_visitation(req).await.unwrap();
    let got = got.into_inner().cases;
    assert!(got[0].plans.is_empty() && got[0].visits.is_empty());

    // Bad input: every problem named.
    for (ids, start, fields) in [
        (vec![], None, vec!["case_ids", "visits_start_after"]),
        (
            (0..201).map(|_| uuid::Uuid::now_v7().to_string()).collect(),
            Some(since(2027, 1, 1)),
            vec!["case_ids"],
        ),
        (
            vec![family.case_id.clone(), "x".into(), family.case_id.clone()],
            Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            vec!["case_ids[1]", "case_ids[2]", "visits_start_after"],
        ),
    ] {
        let req = worker.req(pb::BatchGetCaseVisitationRequest {
            case_ids: ids,
            visits_start_after: start,
        });
        let err = worker
            .inner
            .batch_get_case_visitation(req)
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), fields);
    }
    // The worker's alone.
    let req = cw.req(pb::BatchGetCaseVisitationRequest {
        case_ids: vec![family.case_id.clone()],
        visits_start_after: Some(since(2027, 1, 1)),
    });
    let err = cw.inner.batch_get_case_visitation(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

async fn the_worker_puts_many_parents_scopes_in_force_in_one_call_or_none(backend: Backend) {
    let env = env(backend).await;
    let one = family(&env, None, false).await;
    let two = family(&env, None, false).await;
    let mut worker = Client::worker(&env);
    let on = Some(date(COMPUTED_ON.0, COMPUTED_ON.1, COMPUTED_ON.2));
    let scope = |f: &Family| computed(f, landsby_domain::Step::Safety, None, false);
    let step = cpb::Step::Safety;
    let plans_of = |f: &Family| {
        let mut cw = Client::caseworker(&env);
        let case_id = f.case_id.clone();
        async move {
            let req = cw.req(pb::ListVisitationPlansRequest {
                case_id,
                ..Default::default()
            });
            cw.inner
                .list_visitation_plans(req)
                .await
                .unwrap()
                .into_inner()
                .plans
        }
    };

    // One item refused (the foster parent has no visitation rights): nothing of the call is kept.
    let req = worker.req(pb::BatchApplyComputedScopesRequest {
        items: vec![
            item(&one, &one.mother_id, (1, on), step, scope(&one)),
            item(&two, &two.foster_id, (1, on), step, scope(&two)),
        ],
    });
    let err = worker
        .inner
        .batch_apply_computed_scopes(req)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["items[1].parent_id"]);
    assert!(plans_of(&one).await.is_empty() && plans_of(&two).await.is_empty());

    // Three parents of two cases in one call: each answered in the order asked.
    let req = worker.req(pb::BatchApplyComputedScopesRequest {
        items: vec![
            item(&two, &two.mother_id, (1, on), step, scope(&two)),
            item(&one, &one.mother_id, (1, on), step, scope(&one)),
            item(&one, &one.father_id, (1, on), step, scope(&one)),
        ],
    });
    let got = worker
        .inner
        .batch_apply_computed_scopes(req)
        .await
        .unwrap()
        .into_inner()
        .results;
    let parents: Vec<&str> = got
        .iter()
        .map(|r| r.plan.as_ref().unwrap().parent_id.as_str())
        .collect();
    assert_eq!(
        parents,
        [
            two.mother_id.as_str(),
            one.mother_id.as_str(),
            one.father_id.as_str()
        ]
    );
    assert!(got.iter().all(|r| r.applied));
    assert_eq!(plans_of(&one).await.len(), 2);
    assert_eq!(plans_of(&two).await.len(), 1);

    // Bad input: every problem named with its item.
    let too_many: Vec<pb::ComputedScopeItem> = (0..201)
        .map(|_| item(&one, &one.mother_id, (1, on), step, scope(&one)))
        .collect();
    for (items, fields) in [
        (vec![], vec!["items"]),
        (too_many, vec!["items"]),
        (
            vec![
                item(&one, &one.mother_id, (2, on), step, scope(&one)),
                item(&one, "not-a-uuid", (2, on), step, scope(&one)),
                item(&one, &one.mother_id, (2, on), step, scope(&one)),
            ],
            vec!["items[1].parent_id", "items[2].parent_id"],
        ),
    ] {
        let req = worker.req(pb::BatchApplyComputedScopesRequest { items });
        let err = worker
            .inner
            .batch_apply_computed_scopes(req)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&err), fields);
    }
    assert!(
        plans_of(&one).await.iter().all(|p| p.scope_version == 1),
        "refusals changed nothing"
    );
}

//! The heart flow with every part real: a change recorded in the case or visitation service reaches
//! the worker through the feeds, and what follows happens by itself.

use crate::support::*;
use landsby_proto::case as cpb;
use landsby_proto::visitation as vpb;
use landsby_proto::worker as wpb;
use landsby_testkit::{Backend, on_both_backends};

on_both_backends!(
    a_new_case_gets_a_computed_plan_and_its_due_reviews,
    a_step_change_moves_the_scope_and_tells_each_member_what_their_role_should_hear,
    visits_tell_their_participants_and_a_concern_tells_the_caseworker,
    a_secret_address_never_reaches_the_parent_side,
    a_service_away_for_a_while_delays_the_jobs_and_they_finish_when_it_is_back,
);

async fn a_new_case_gets_a_computed_plan_and_its_due_reviews(backend: Backend) {
    let env = env(backend).await;
    let f = env.suite.family(false).await;
    let mut visits = env.suite.visits();
    let mut admin = env.suite.admin();
    admin.settled().await;
    // The case as it is now: telling the case service of the visits moved its version once.
    let now = CaseClient::caseworker(&env.case)
        .get(&f.case.id)
        .await
        .unwrap();
    let plan = eventually!("the mother's plan computed from the case as it is", {
        let plans = visits.plans(&f.case.id).await;
        plans.into_iter().find(|p| {
            p.parent_id == f.mother_id
                && p.computed_from
                    .as_ref()
                    .is_some_and(|c| c.case_version == now.version)
        })
    });
    let from = plan.computed_from.unwrap();
    assert_eq!(from.step(), cpb::Step::Safety);
    assert_eq!(
        from.policy_version,
        landsby_domain::Policy::default().version
    );
    assert!(plan.scope.is_some());
    // Only the parent with visitation rights has a plan.
    assert_eq!(visits.plans(&f.case.id).await.len(), 1);
    let mut cases = CaseClient::caseworker(&env.case);
    let reviews = eventually!("the computed reviews", {
        let reviews = cases
            .reviews(&f.case.id, cpb::ReviewStatus::Unspecified)
            .await;
        reviews
            .iter()
            .any(|r| r.computed_key.starts_with("step_review/safety"))
            .then_some(reviews)
    });
    assert!(
        reviews
            .iter()
            .all(|r| r.status() == cpb::ReviewStatus::Scheduled)
    );
    let mut admin = env.suite.admin();
    admin.settled().await;
    assert!(admin.jobs(wpb::JobStatus::Dead).await.is_empty());
    let done = admin.jobs(wpb::JobStatus::Done).await;
    assert!(
        done.iter()
            .any(|j| j.kind == "recompute_case" && j.case_id == f.case.id)
    );
}

async fn a_step_change_moves_the_scope_and_tells_each_member_what_their_role_should_hear(
    backend: Backend,
) {
    let env = env(backend).await;
    let mut f = env.suite.family(false).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    env.suite.seed_readiness(&f).await;
    let case = env.suite.advance(&mut f).await;
    let mut visits = env.suite.visits();
    let plan = eventually!("the step 2 scope in force", {
        visits.plans(&f.case.id).await.into_iter().find(|p| {
            p.computed_from.as_ref().is_some_and(|c| {
                c.step() == cpb::Step::Involvement && c.case_version >= case.version
            })
        })
    });
    assert_eq!(plan.parent_id, f.mother_id);
    let mut cases = CaseClient::caseworker(&env.case);
    eventually!("a step 2 review due", {
        let reviews = cases
            .reviews(&f.case.id, cpb::ReviewStatus::Scheduled)
            .await;
        reviews
            .iter()
            .any(|r| r.computed_key.starts_with("step_review/involvement"))
            .then_some(())
    });
    admin.settled().await;
    let mut notices = env.suite.notices();
    let mut want = vec![
        // The plan made at creation, and the step 2 plan; the step change.
        (f.mother_id.clone(), "plan_changed".to_owned()),
        (f.mother_id.clone(), "plan_changed".to_owned()),
        (f.mother_id.clone(), "step_changed".to_owned()),
        (f.foster_id.clone(), "plan_changed".to_owned()),
        (f.foster_id.clone(), "plan_changed".to_owned()),
        (f.foster_id.clone(), "step_changed".to_owned()),
        ("caseworker-1".to_owned(), "step_changed".to_owned()),
    ];
    want.sort();
    // The last notice may still be on its way when the queue looks quiet: wait for it (a while),
    // then compare, so a missing one and an extra one both fail.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let got = loop {
        let got = notices.summary(&f.case.id).await;
        if got == want || tokio::time::Instant::now() >= deadline {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        got, want,
        "the school contact hears nothing; each member once per change"
    );
    assert!(!got.iter().any(|(who, _)| who == &f.school_id));
    // A later change to the case that leaves the scope as it is tells nobody anything.
    f.cases
        .add_member(
            &f.case.id,
            cpb::VillageMember {
                role: cpb::VillageRole::Grandparent.into(),
                display_name: "Mormor".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let newer = f.cases.get(&f.case.id).await.unwrap();
    eventually!("the recompute of the newer version", {
        visits.plans(&f.case.id).await.into_iter().find(|p| {
            p.computed_from
                .as_ref()
                .is_some_and(|c| c.case_version == newer.version)
        })
    });
    admin.settled().await;
    assert_eq!(notices.summary(&f.case.id).await, want);
}

async fn visits_tell_their_participants_and_a_concern_tells_the_caseworker(backend: Backend) {
    let env = env(backend).await;
    let f = env.suite.family(false).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    let mut visits = env.suite.visits();
    let now = landsby_domain::time::oslo_local(chrono::Utc::now());
    let later = now + chrono::Duration::days(3);
    let later = later.date().and_hms_opt(17, 0, 0).unwrap();
    let v = visits
        .schedule(visit(&f.case.id, &f.mother_id, later))
        .await;
    let v = visits.confirm(&v).await;
    visits.cancel(&v).await;
    // A visit that has begun (this minute), completed with a concern.
    let begun = now.date().and_hms_opt(
        chrono::Timelike::hour(&now),
        chrono::Timelike::minute(&now),
        0,
    );
    let v = visits
        .schedule(visit(&f.case.id, &f.mother_id, begun.unwrap()))
        .await;
    let v = visits.confirm(&v).await;
    let v = visits.complete(&v, true).await;
    assert_eq!(v.status(), vpb::VisitStatus::Completed);
    admin.settled().await;
    let mut notices = env.suite.notices();
    let got: Vec<(String, String)> = notices
        .summary(&f.case.id)
        .await
        .into_iter()
        .filter(|(_, kind)| kind != "plan_changed")
        .collect();
    let mut want = vec![
        (f.mother_id.clone(), "visit_scheduled".to_owned()),
        (f.mother_id.clone(), "visit_cancelled".to_owned()),
        (f.mother_id.clone(), "visit_scheduled".to_owned()),
        ("caseworker-1".to_owned(), "visit_concern".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    // The concern brings an early review forward (the recompute it starts may still be running
    // when the notice is in).
    let mut cases = CaseClient::caseworker(&env.case);
    let early = format!("early_review/{}", v.id);
    eventually!("the early review", {
        let reviews = cases
            .reviews(&f.case.id, cpb::ReviewStatus::Scheduled)
            .await;
        reviews
            .iter()
            .any(|r| r.computed_key == early)
            .then_some(())
    });
}

async fn a_secret_address_never_reaches_the_parent_side(backend: Backend) {
    let env = env(backend).await;
    let f = env.suite.family(true).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    let mut visits = env.suite.visits();
    let later = landsby_domain::time::oslo_local(chrono::Utc::now()) + chrono::Duration::days(2);
    let mut v = visit(
        &f.case.id,
        &f.mother_id,
        later.date().and_hms_opt(12, 0, 0).unwrap(),
    );
    // A caseworker's careless place text that names the foster home's street.
    v.frame.as_mut().unwrap().place_description = "Like ved Bakkeveien 7".into();
    visits.schedule(v).await;
    admin.settled().await;
    let mut notices = env.suite.notices();
    let all = notices.of_case(&f.case.id).await;
    let to_mother: Vec<_> = all
        .iter()
        .filter(|n| {
            n.recipient
                .as_ref()
                .is_some_and(|r| r.member_id == f.mother_id)
        })
        .collect();
    assert!(to_mother.iter().any(|n| n.kind == "visit_scheduled"));
    for n in &to_mother {
        for text in [&n.subject, &n.body] {
            assert!(!text.contains("Bakkeveien"), "{text}");
            assert!(!text.contains("98765432"), "{text}");
        }
    }
    let scheduled = to_mother
        .iter()
        .find(|n| n.kind == "visit_scheduled")
        .unwrap();
    assert!(scheduled.redacted);
}

async fn a_service_away_for_a_while_delays_the_jobs_and_they_finish_when_it_is_back(
    backend: Backend,
) {
    // Backoff long enough to see the job wait: 1 s, then 2 s.
    let env = env_with(backend, |c| {
        c.jobs.backoff_base = std::time::Duration::from_secs(1);
        c.jobs.backoff_max = std::time::Duration::from_secs(2);
        c.jobs.max_attempts = 6;
    })
    .await;
    let mut admin = env.suite.admin();
    let f = env.suite.family(false).await;
    admin.settled().await;
    // The case service goes away for the worker; a visit is scheduled meanwhile.
    env.case_proxy.cut();
    let mut visits = env.suite.visits();
    let later = landsby_domain::time::oslo_local(chrono::Utc::now()) + chrono::Duration::days(4);
    visits
        .schedule(visit(
            &f.case.id,
            &f.mother_id,
            later.date().and_hms_opt(15, 0, 0).unwrap(),
        ))
        .await;
    let failed = eventually!("a job failing while the case service is away", {
        let failed = admin.jobs(wpb::JobStatus::Failed).await;
        (!failed.is_empty()).then_some(failed)
    });
    // A refused connection is UNAVAILABLE, one cut mid-call CANCELLED or UNKNOWN: all worth
    // another attempt, later.
    assert!(
        failed[0]
            .last_error
            .starts_with("retryable: case.batch_get_case_snapshots: "),
        "{failed:?}"
    );
    assert!(failed[0].run_time.is_some());
    env.case_proxy.restore();
    admin.settled().await;
    assert!(admin.jobs(wpb::JobStatus::Dead).await.is_empty());
    let mut notices = env.suite.notices();
    let got = notices.summary(&f.case.id).await;
    assert!(got.contains(&(f.mother_id.clone(), "visit_scheduled".to_owned())));
}

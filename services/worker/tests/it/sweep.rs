//! The review sweep with every part real: every open case recomputed, reminders of reviews coming
//! due to the caseworker, overdue reviews to the team lead, visits tomorrow to their participants,
//! and a second sweep sends none of them again.

use crate::support::*;
use landsby_domain::time::oslo_date;
use landsby_platform::validate::date_to_proto;
use landsby_proto::case as cpb;
use landsby_proto::worker as wpb;
use landsby_testkit::{Backend, on_both_backends};

on_both_backends!(a_sweep_recomputes_every_open_case_reminds_once_and_escalates);

async fn sweep_to_the_end(admin: &mut Admin) -> wpb::Sweep {
    let req = admin.req(wpb::TriggerSweepRequest {});
    let started = admin.inner.trigger_sweep(req).await.unwrap().into_inner();
    assert!(started.started);
    let id = started.sweep.unwrap().id;
    eventually!("the sweep to finish", {
        let req = admin.req(wpb::GetSweepStatusRequest {
            sweep_id: id.clone(),
        });
        let sweep = admin
            .inner
            .get_sweep_status(req)
            .await
            .unwrap()
            .into_inner()
            .sweep
            .unwrap();
        (sweep.state() == wpb::SweepState::Done).then_some(sweep)
    })
}

async fn a_sweep_recomputes_every_open_case_reminds_once_and_escalates(backend: Backend) {
    let env = env_with(backend, |c| c.jobs.sweep_batch_size = 2).await;
    let mut admin = env.suite.admin();
    let mut a = env.suite.family(false).await;
    let mut b = env.suite.family(false).await;
    let closed = env.suite.family(false).await;
    CaseClient::caseworker(&env.case)
        .close(&closed.case.id)
        .await
        .unwrap();
    admin.settled().await;
    let today = oslo_date(chrono::Utc::now());
    let review = |due: chrono::NaiveDate| cpb::Review {
        kind: cpb::ReviewKind::PlanEvaluation.into(),
        due_date: Some(date_to_proto(due)),
        note: "look at the plan".into(),
        ..Default::default()
    };
    a.cases
        .schedule(&a.case.id, review(today + chrono::Duration::days(3)))
        .await
        .unwrap();
    b.cases
        .schedule(&b.case.id, review(today - chrono::Duration::days(10)))
        .await
        .unwrap();
    // A visit in two hours.
    let mut visits = env.suite.visits();
    let soon = landsby_domain::time::oslo_local(chrono::Utc::now() + chrono::Duration::hours(2));
    let soon = soon
        .date()
        .and_hms_opt(chrono::Timelike::hour(&soon), 0, 0)
        .unwrap();
    visits.schedule(visit(&a.case.id, &a.mother_id, soon)).await;
    admin.settled().await;

    let first = sweep_to_the_end(&mut admin).await;
    assert_eq!(first.cases_total, 2, "the closed case is not swept");
    assert_eq!(first.cases_done, 2, "{first:?}");
    assert_eq!(first.cases_failed, 0);
    assert_eq!((first.batches_total, first.batches_done), (1, 1));
    assert!(first.review_reminders >= 1);
    assert!(first.escalations >= 1);
    assert_eq!(first.visit_reminders, 1);
    let mut notices = env.suite.notices();
    let of_a = notices.summary(&a.case.id).await;
    let of_b = notices.summary(&b.case.id).await;
    assert!(of_a.contains(&("caseworker-1".to_owned(), "review_due".to_owned())));
    assert!(of_a.contains(&(a.mother_id.clone(), "visit_reminder".to_owned())));
    assert!(of_b.contains(&("team-lead-1".to_owned(), "review_overdue".to_owned())));
    assert!(!of_b.iter().any(|(_, k)| k == "visit_reminder"));
    assert!(
        notices
            .summary(&closed.case.id)
            .await
            .iter()
            .all(|(_, k)| k != "review_due")
    );
    // The sweep is done once its last batch records it; the queue marks that job Done after.
    admin.settled().await;
    let jobs = admin.jobs(wpb::JobStatus::Done).await;
    assert!(
        jobs.iter()
            .any(|j| j.kind == "sweep" && j.sweep_id == first.id)
    );
    assert!(
        jobs.iter()
            .any(|j| j.kind == "sweep_batch" && j.sweep_id == first.id)
    );

    // The next sweep reminds of nothing already reminded.
    let second = sweep_to_the_end(&mut admin).await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.cases_done, 2);
    assert_eq!(
        (
            second.review_reminders,
            second.escalations,
            second.visit_reminders
        ),
        (0, 0, 0)
    );
    assert_eq!(notices.summary(&a.case.id).await, of_a);
    assert_eq!(notices.summary(&b.case.id).await, of_b);
}

//! The admin API through gRPC: every RPC with bad input, the wrong roles and another agency; a
//! DEAD job run again.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::worker as wpb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY, on_both_backends};
use tonic::Code;

on_both_backends!(
    list_jobs_pages_filters_and_refuses_bad_input,
    a_job_dead_after_its_attempts_runs_again_on_retry,
    sweep_status_and_trigger_refuse_bad_input_and_show_only_the_agencys_sweeps,
    only_administrators_run_jobs_and_auditors_look,
);

async fn list_jobs_pages_filters_and_refuses_bad_input(backend: Backend) {
    let env = env(backend).await;
    env.suite.family(false).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    let done = admin.jobs(wpb::JobStatus::Done).await;
    assert!(done.len() >= 2, "{done:?}");
    assert!(done.iter().all(|j| j.status() == wpb::JobStatus::Done));
    assert!(done.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    // One at a time: the pages together are the list.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let req = admin.req(wpb::ListJobsRequest {
            status: wpb::JobStatus::Done.into(),
            page_size: 1,
            page_token: token,
        });
        let r = admin.inner.list_jobs(req).await.unwrap().into_inner();
        assert!(r.jobs.len() <= 1);
        paged.extend(r.jobs);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(paged, done);
    let bad = [
        (
            wpb::ListJobsRequest {
                status: 99,
                ..Default::default()
            },
            "status",
        ),
        (
            wpb::ListJobsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            wpb::ListJobsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ];
    for (req, field) in bad {
        let err = admin.inner.list_jobs(admin.req(req)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&err), vec![field.to_owned()]);
    }
    // A page token of one filter does not serve another.
    let req = admin.req(wpb::ListJobsRequest {
        status: wpb::JobStatus::Done.into(),
        page_size: 1,
        page_token: String::new(),
    });
    let token = admin
        .inner
        .list_jobs(req)
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let req = admin.req(wpb::ListJobsRequest {
        status: wpb::JobStatus::Dead.into(),
        page_size: 1,
        page_token: token,
    });
    let err = admin.inner.list_jobs(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Another agency has no jobs here.
    let mut other = env.suite.admin_as(OTHER_AGENCY, &[Role::AgencyAdmin]);
    assert!(other.jobs(wpb::JobStatus::Unspecified).await.is_empty());
}

async fn a_job_dead_after_its_attempts_runs_again_on_retry(backend: Backend) {
    let env = env(backend).await;
    let mut admin = env.suite.admin();
    let _family = env.suite.family(false).await; // a case for the sweep, and done jobs
    admin.settled().await;
    // The worker's token goes missing (an operator's mistake): every job fails, three times, and is
    // DEAD. (A sweep the operator starts, not a change: a feed that happened to reconnect while the
    // token is missing would never read the change's event, and the test would wait for nothing.)
    let dir = env.worker.db.dir();
    std::fs::remove_file(dir.join(format!("{AGENCY}.jwt"))).unwrap();
    let req = admin.req(wpb::TriggerSweepRequest {});
    assert!(
        admin
            .inner
            .trigger_sweep(req)
            .await
            .unwrap()
            .into_inner()
            .started
    );
    let dead = eventually!("a dead job", {
        admin.jobs(wpb::JobStatus::Dead).await.into_iter().next()
    });
    assert_eq!(dead.kind, "sweep");
    assert_eq!(dead.attempts, 3);
    assert!(dead.last_error.contains("token"), "{dead:?}");
    // Bad ids, unknown ids, a job that is not dead, another agency.
    for (id, code) in [
        ("", Code::InvalidArgument),
        ("not-a-ulid", Code::InvalidArgument),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", Code::NotFound),
    ] {
        let req = admin.req(wpb::RetryJobRequest { job_id: id.into() });
        let err = admin.inner.retry_job(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{id}");
        if code == Code::InvalidArgument {
            assert_eq!(violated_fields(&err), vec!["job_id".to_owned()]);
        }
    }
    let done = admin.jobs(wpb::JobStatus::Done).await;
    let req = admin.req(wpb::RetryJobRequest {
        job_id: done[0].id.clone(),
    });
    let err = admin.inner.retry_job(req).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition_kinds(&err), vec!["JOB_NOT_DEAD".to_owned()]);
    let mut other = env.suite.admin_as(OTHER_AGENCY, &[Role::AgencyAdmin]);
    let req = other.req(wpb::RetryJobRequest {
        job_id: dead.id.clone(),
    });
    assert_eq!(
        other.inner.retry_job(req).await.unwrap_err().code(),
        Code::NotFound
    );
    // The token is back: the operator runs the dead job again, and it is done.
    write_token(&dir, AGENCY);
    let req = admin.req(wpb::RetryJobRequest {
        job_id: dead.id.clone(),
    });
    let again = admin
        .inner
        .retry_job(req)
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(again.attempts, 0);
    admin.settled().await;
    let done = admin.jobs(wpb::JobStatus::Done).await;
    assert!(done.iter().any(|j| j.id == dead.id));
    assert!(admin.jobs(wpb::JobStatus::Dead).await.is_empty());
}

async fn sweep_status_and_trigger_refuse_bad_input_and_show_only_the_agencys_sweeps(
    backend: Backend,
) {
    let env = env(backend).await;
    let mut admin = env.suite.admin();
    let req = admin.req(wpb::GetSweepStatusRequest::default());
    let none = admin
        .inner
        .get_sweep_status(req)
        .await
        .unwrap()
        .into_inner();
    assert!(none.sweep.is_none(), "no sweep yet");
    let req = admin.req(wpb::GetSweepStatusRequest {
        sweep_id: "nope".into(),
    });
    let err = admin.inner.get_sweep_status(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["sweep_id".to_owned()]);
    let req = admin.req(wpb::GetSweepStatusRequest {
        sweep_id: uuid::Uuid::now_v7().to_string(),
    });
    assert_eq!(
        admin.inner.get_sweep_status(req).await.unwrap_err().code(),
        Code::NotFound
    );
    let req = admin.req(wpb::TriggerSweepRequest {});
    let started = admin.inner.trigger_sweep(req).await.unwrap().into_inner();
    assert!(started.started);
    let sweep = started.sweep.unwrap();
    assert_eq!(sweep.trigger, "manual");
    let mut other = env.suite.admin_as(OTHER_AGENCY, &[Role::AgencyAdmin]);
    let req = other.req(wpb::GetSweepStatusRequest {
        sweep_id: sweep.id.clone(),
    });
    assert_eq!(
        other.inner.get_sweep_status(req).await.unwrap_err().code(),
        Code::NotFound
    );
    let req = other.req(wpb::GetSweepStatusRequest::default());
    assert!(
        other
            .inner
            .get_sweep_status(req)
            .await
            .unwrap()
            .into_inner()
            .sweep
            .is_none()
    );
}

async fn only_administrators_run_jobs_and_auditors_look(backend: Backend) {
    let env = env(backend).await;
    let mut caseworker = env.suite.admin_as(AGENCY, &[Role::Caseworker]);
    let mut worker = env.suite.admin_as(AGENCY, &[Role::Service]);
    let mut auditor = env.suite.admin_as(AGENCY, &[Role::Auditor]);
    for who in [&mut caseworker, &mut worker] {
        let r = who.req(wpb::ListJobsRequest::default());
        assert_eq!(
            who.inner.list_jobs(r).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let r = who.req(wpb::GetSweepStatusRequest::default());
        assert_eq!(
            who.inner.get_sweep_status(r).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let r = who.req(wpb::TriggerSweepRequest {});
        assert_eq!(
            who.inner.trigger_sweep(r).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let r = who.req(wpb::RetryJobRequest {
            job_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        });
        assert_eq!(
            who.inner.retry_job(r).await.unwrap_err().code(),
            Code::PermissionDenied
        );
    }
    let r = auditor.req(wpb::ListJobsRequest::default());
    assert!(auditor.inner.list_jobs(r).await.is_ok());
    let r = auditor.req(wpb::GetSweepStatusRequest::default());
    assert!(auditor.inner.get_sweep_status(r).await.is_ok());
    let r = auditor.req(wpb::TriggerSweepRequest {});
    assert_eq!(
        auditor.inner.trigger_sweep(r).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let r = auditor.req(wpb::RetryJobRequest {
        job_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
    });
    assert_eq!(
        auditor.inner.retry_job(r).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // No token at all.
    let mut anonymous = env.suite.admin();
    let err = anonymous
        .inner
        .list_jobs(tonic::Request::new(wpb::ListJobsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

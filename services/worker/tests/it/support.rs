//! Case, visitation and notification services and a worker beside them, each on its own database,
//! and clients calling them as one person.

use landsby_domain::Role;
pub use landsby_testkit::case::Client as CaseClient;
pub use landsby_testkit::eventually;
pub use landsby_testkit::flow::{Admin, Suite, TestIssuer, visit};
pub use landsby_testkit::status::*;
use landsby_testkit::{AGENCY, Backend, ServingStatus, TcpProxy, TestDb, TestServer, keys};
use std::sync::Arc;
use std::time::Duration;

/// The services, the worker, and a proxy in front of the case service that a test can cut.
pub struct Env {
    pub suite: Suite,
    pub case: TestServer,
    /// Kept running while the test runs.
    pub _visitation: TestServer,
    /// Kept running while the test runs.
    pub _notification: TestServer,
    pub worker: TestServer,
    pub case_proxy: TcpProxy,
}

/// Settings every worker in these tests runs with: quick polls, short backoffs, three attempts.
pub fn quick(c: &mut landsby_platform::config::Config) {
    c.jobs.agencies = vec![AGENCY.into()];
    c.jobs.poll_interval = Duration::from_millis(50);
    c.jobs.stale_after = Duration::from_secs(3);
    c.jobs.backoff_base = Duration::from_millis(100);
    c.jobs.backoff_max = Duration::from_millis(500);
    c.jobs.max_attempts = 3;
    c.jobs.sweep_schedule = String::new();
    c.jobs.job_timeout = Duration::from_secs(30);
    c.jobs.team_leads = vec![format!("{AGENCY}:team-lead-1")];
}

/// The worker's token for an agency, in a file as an operator would mount it.
pub fn write_token(dir: &std::path::Path, agency: &str) {
    let token = keys().token("landsby-worker", agency, &[Role::Service]);
    std::fs::write(dir.join(format!("{agency}.jwt")), token).unwrap();
}

pub async fn env(backend: Backend) -> Env {
    env_with(backend, |_| {}).await
}

pub async fn env_with(
    backend: Backend,
    tweak: impl FnOnce(&mut landsby_platform::config::Config),
) -> Env {
    let case = TestServer::start(landsby_case::SERVICE, backend).await;
    let case_proxy = TcpProxy::start(case.addr).await;
    let case_url = format!("https://{}", case_proxy.addr);
    let visitation = {
        let url = format!("https://{}", case.addr);
        let db = TestDb::new(backend).await;
        TestServer::start_with(landsby_visitation::SERVICE, db, |c| c.endpoints.case = url).await
    };
    visitation.wait_for(ServingStatus::Serving).await;
    let notification = {
        let url = format!("https://{}", case.addr);
        let db = TestDb::new(backend).await;
        TestServer::start_with(landsby_notification::SERVICE, db, |c| {
            c.endpoints.case = url
        })
        .await
    };
    notification.wait_for(ServingStatus::Serving).await;
    let db = TestDb::new(backend).await;
    let dir = db.dir();
    write_token(&dir, AGENCY);
    let visitation_url = format!("https://{}", visitation.addr);
    let notification_url = format!("https://{}", notification.addr);
    let worker = TestServer::start_with(landsby_worker::SERVICE, db, |c| {
        c.endpoints.case = case_url;
        c.endpoints.visitation = visitation_url;
        c.endpoints.notification = notification_url;
        c.jobs.token_file = dir.join("{agency}.jwt").display().to_string();
        quick(c);
        tweak(c);
    })
    .await;
    worker.wait_for(ServingStatus::Serving).await;
    let suite = Suite {
        case: case.channel(),
        visitation: visitation.channel(),
        notification: notification.channel(),
        worker: worker.channel(),
        issuer: Arc::new(TestIssuer),
    };
    Env {
        suite,
        case,
        _visitation: visitation,
        _notification: notification,
        worker,
        case_proxy,
    }
}

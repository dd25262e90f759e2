//! The fault soak: the four processes on a PostgreSQL cluster of the test's own, each behind a
//! fault-injecting TCP proxy that every other process and the test's callers go through, under a
//! scripted workload (cases and their villages, visits scheduled, confirmed and cancelled, reviews
//! and approvals moving cases up and down the staircase) while a chaos driver `kill -9`s and
//! restarts processes, crashes and restarts PostgreSQL, and cuts, hangs and slows connections. Then
//! the invariants, against the callers' own ledger: every acknowledged write is there exactly once;
//! every event is in its feed exactly once and in order; every plan's scope is what the policy
//! computes from the case's final state; every notification owed was made once and delivered; no
//! job is stuck, and any dead one says why.
//!
//! `LANDSBY_SOAK_SECS` (default 40) sets how long the chaos lasts; `LANDSBY_SOAK_SEED` repeats a
//! run (every run prints its seed).

use super::serving;
use landsby_bench::load::Rng;
use landsby_domain::Role;
use landsby_proto::case::{self as cpb, case_service_client::CaseServiceClient};
use landsby_proto::notification as npb;
use landsby_proto::visitation::{self as vpb, visitation_service_client::VisitationServiceClient};
use landsby_proto::worker as wpb;
use landsby_testkit::cluster::Cluster;
use landsby_testkit::flow::{Suite, TestIssuer};
use landsby_testkit::process::{Spawned, service};
use landsby_testkit::{AGENCY, TcpProxy, TestDb, authed, keys};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Code, Status};

/// One service process on a fixed port behind its proxy; the others reach it only through the proxy.
struct Node {
    name: &'static str,
    listen: SocketAddr,
    proxy: TcpProxy,
    db: TestDb,
    settings: Vec<(&'static str, String)>,
    process: Option<Spawned>,
    /// What its earlier lives printed.
    log: Vec<String>,
}

impl Node {
    fn start(&mut self) {
        let mut settings = self.settings.clone();
        settings.push((listen_setting(self.name), self.listen.to_string()));
        let (process, _) = tokio::task::block_in_place(|| service(self.name, &self.db, &settings));
        self.process = Some(process);
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.signal("KILL");
            tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(10)))
                .expect("killed");
            self.log.extend(process.output());
        }
    }

    /// The lines of its logs, in every life, at level ERROR.
    fn errors(&mut self) -> Vec<String> {
        if let Some(process) = self.process.as_mut() {
            self.log.extend(process.output());
        }
        let errors = self
            .log
            .iter()
            .filter(|l| l.contains("\"level\":\"ERROR\""));
        errors.map(|l| format!("{}: {l}", self.name)).collect()
    }
}

fn listen_setting(name: &str) -> &'static str {
    match name {
        "case" => "LANDSBY_CASE__LISTEN",
        "visitation" => "LANDSBY_VISITATION__LISTEN",
        "notification" => "LANDSBY_NOTIFICATION__LISTEN",
        _ => "LANDSBY_WORKER__LISTEN",
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

/// What the callers saw of the faults.
#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    retried: Mutex<BTreeMap<String, u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
}

impl Seen {
    fn retried(&self, what: String) {
        *self.retried.lock().unwrap().entry(what).or_default() += 1;
    }

    fn refused(&self, op: &str, status: &Status) {
        let key = format!("{op}: {:?} ({})", status.code(), status.message());
        *self.refused.lock().unwrap().entry(key).or_default() += 1;
    }
}

/// Whether a failure is one a fault explains: the peer away, cut, hung, slow, restarting, or its
/// database away. Anything else is an answer.
fn transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            true
        }
        // A connection cut in the middle of a call reaches the client as a transport error.
        Code::Unknown | Code::Internal => {
            let m = status.message();
            m.contains("transport") || m.contains("h2 protocol") || m.contains("connection")
        }
        _ => false,
    }
}

/// Calls `call` until it answers, through faults: a failure a fault explains (or no answer within
/// 5 s) is retried with the same request; any other answer is returned. Gives up after 120 s.
async fn through<T, F, Fut>(seen: &Seen, what: &str, mut call: F) -> Result<T, (Status, bool)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut retried = false;
    loop {
        seen.calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(Duration::from_secs(5), call()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(s)) if transient(&s) => seen.retried(format!("{:?}", s.code())),
            Ok(Err(s)) => return Err((s, retried)),
            Err(_) => seen.retried("no answer in 5 s".to_owned()),
        }
        retried = true;
        assert!(
            Instant::now() < deadline,
            "{what}: no answer through the faults for 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One case as its caller knows it from the answers it was given.
#[derive(Debug, Default, Clone)]
struct Known {
    mother: String,
    members: BTreeSet<String>,
    visits: BTreeMap<String, vpb::VisitStatus>,
    step: i32,
    step_changes: u32,
    facts_position: i64,
    next_slot: i64,
}

/// A caller of the suite: a caseworker's platform, with its team lead and (to seed readiness as an
/// earlier system would have) the worker's identity.
struct Caller {
    seen: Arc<Seen>,
    dice: Rng,
    cases: CaseServiceClient<tonic::transport::Channel>,
    visits: VisitationServiceClient<tonic::transport::Channel>,
    caseworker: String,
    lead: String,
    service: String,
    known: BTreeMap<String, Known>,
}

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Caller {
    async fn new_family(&mut self) {
        let (seen, token) = (self.seen.clone(), self.caseworker.clone());
        let request_id = rid();
        let client = self.cases.clone();
        let case = through(&seen, "CreateCase", || {
            let mut client = client.clone();
            let req = authed(
                &token,
                cpb::CreateCaseRequest {
                    request_id: request_id.clone(),
                    case: Some(landsby_testkit::case::new_case()),
                },
            );
            async move { client.create_case(req).await }
        })
        .await
        .expect("CreateCase")
        .into_inner()
        .case
        .expect("case");
        let mut known = Known {
            step: case.step,
            facts_position: 1_000_000,
            ..Default::default()
        };
        for (i, member) in [
            landsby_testkit::case::mother(),
            landsby_testkit::case::foster_parent(),
        ]
        .into_iter()
        .enumerate()
        {
            let request_id = rid();
            let added = through(&seen, "AddVillageMember", || {
                let mut client = client.clone();
                let req = authed(
                    &token,
                    cpb::AddVillageMemberRequest {
                        case_id: case.id.clone(),
                        request_id: request_id.clone(),
                        member: Some(member.clone()),
                    },
                );
                async move { client.add_village_member(req).await }
            })
            .await
            .expect("AddVillageMember")
            .into_inner()
            .member
            .expect("member");
            if i == 0 {
                known.mother = added.id.clone();
            }
            known.members.insert(added.id);
        }
        // A platform schedules visits once the mother's plan is there (the worker computes it from
        // the case's events): it looks until it is, through the faults.
        let visits = self.visits.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let plans = through(&seen, "ListVisitationPlans", || {
                let mut client = visits.clone();
                let req = authed(
                    &token,
                    vpb::ListVisitationPlansRequest {
                        case_id: case.id.clone(),
                        page_size: 50,
                        ..Default::default()
                    },
                );
                async move { client.list_visitation_plans(req).await }
            })
            .await
            .expect("ListVisitationPlans")
            .into_inner()
            .plans;
            if plans.iter().any(|p| p.parent_id == known.mother) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "case {}: no plan for the mother after 120 s",
                case.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.known.insert(case.id, known);
    }

    fn pick(&mut self) -> Option<String> {
        let i = self.dice.below(self.known.len());
        self.known.keys().nth(i).cloned()
    }

    async fn schedule_visit(&mut self) {
        let Some(case_id) = self.pick() else { return };
        let known = self.known.get_mut(&case_id).expect("known");
        // One visit a week, from three weeks ahead: within every step's scope.
        let day = landsby_domain::time::oslo_date(chrono::Utc::now())
            + chrono::Duration::days(21 + 7 * known.next_slot);
        known.next_slot += 1;
        let start = day.and_hms_opt(10, 0, 0).expect("10:00");
        let mut visit = landsby_testkit::flow::visit(&case_id, &known.mother, start);
        // Each case has its own supervisor, so that visits of different cases never clash.
        if let Some(frame) = visit.frame.as_mut() {
            frame.supervisor = format!("supervisor-{case_id}");
        }
        let request_id = rid();
        let (seen, token, client) = (
            self.seen.clone(),
            self.caseworker.clone(),
            self.visits.clone(),
        );
        let answer = through(&seen, "ScheduleVisit", || {
            let mut client = client.clone();
            let req = authed(
                &token,
                vpb::ScheduleVisitRequest {
                    request_id: request_id.clone(),
                    visit: Some(visit.clone()),
                },
            );
            async move { client.schedule_visit(req).await }
        })
        .await;
        match answer {
            Ok(r) => {
                let v = r.into_inner().visit.expect("visit");
                known.visits.insert(v.id.clone(), v.status());
            }
            Err((status, _)) => seen.refused("ScheduleVisit", &status),
        }
    }

    /// Confirms or cancels one of a case's scheduled visits.
    async fn settle_visit(&mut self) {
        let Some(case_id) = self.pick() else { return };
        let cancel = self.dice.below(3) == 0;
        let known = self.known.get_mut(&case_id).expect("known");
        let Some(visit_id) = known
            .visits
            .iter()
            .find(|(_, s)| {
                **s == vpb::VisitStatus::Scheduled || (cancel && **s == vpb::VisitStatus::Confirmed)
            })
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let (seen, token, client) = (
            self.seen.clone(),
            self.caseworker.clone(),
            self.visits.clone(),
        );
        let read = || {
            let mut client = client.clone();
            let req = authed(
                &token,
                vpb::GetVisitRequest {
                    visit_id: visit_id.clone(),
                },
            );
            async move { client.get_visit(req).await }
        };
        let visit = through(&seen, "GetVisit", read)
            .await
            .expect("GetVisit")
            .into_inner()
            .visit
            .expect("visit");
        let want = if cancel {
            vpb::VisitStatus::Cancelled
        } else {
            vpb::VisitStatus::Confirmed
        };
        let answer = through(&seen, "Confirm/CancelVisit", || {
            let mut client = client.clone();
            let (id, etag) = (visit.id.clone(), visit.etag.clone());
            let token = token.clone();
            async move {
                let r = if cancel {
                    let req = authed(
                        &token,
                        vpb::CancelVisitRequest {
                            visit_id: id,
                            etag,
                            cancellation: Some(vpb::Cancellation {
                                cancelled_by: vpb::CancelledBy::Parent.into(),
                                reason: "the mother is ill".into(),
                                ..Default::default()
                            }),
                        },
                    );
                    client.cancel_visit(req).await?.into_inner().visit
                } else {
                    let req = authed(&token, vpb::ConfirmVisitRequest { visit_id: id, etag });
                    client.confirm_visit(req).await?.into_inner().visit
                };
                Ok(r)
            }
        })
        .await;
        let status = match answer {
            Ok(v) => v.expect("visit").status(),
            // A retry of a change that took effect before its answer was lost finds the etag moved:
            // the visit as it is now says whether it did.
            Err((refusal, true)) => {
                let now = through(&seen, "GetVisit", read)
                    .await
                    .expect("GetVisit")
                    .into_inner()
                    .visit
                    .expect("visit");
                if now.status() != want {
                    seen.refused("Confirm/CancelVisit", &refusal);
                }
                now.status()
            }
            Err((refusal, false)) => {
                seen.refused("Confirm/CancelVisit", &refusal);
                return;
            }
        };
        known.visits.insert(visit_id, status);
    }

    /// A step review that moves the case: up from step 1 (its readiness seeded as an earlier system
    /// would have left it), back to step 1 from step 2.
    async fn move_step(&mut self) {
        let Some(case_id) = self.pick() else { return };
        let known = self.known.get_mut(&case_id).expect("known");
        let seen = self.seen.clone();
        let client = self.cases.clone();
        let up = known.step == cpb::Step::Safety as i32;
        if up {
            known.facts_position += 1;
            let facts = landsby_testkit::flow::ready_visits(&known.mother);
            let position = known.facts_position;
            let token = self.service.clone();
            through(&seen, "BatchSyncVisitFacts", || {
                let mut client = client.clone();
                let req = authed(
                    &token,
                    cpb::BatchSyncVisitFactsRequest {
                        items: vec![cpb::VisitFactsItem {
                            case_id: case_id.clone(),
                            as_of_sequence: position,
                            frame_complete: true,
                            visits: facts.clone(),
                        }],
                    },
                );
                async move { client.batch_sync_visit_facts(req).await }
            })
            .await
            .expect("BatchSyncVisitFacts");
        }
        let token = self.caseworker.clone();
        let request_id = rid();
        let review = through(&seen, "ScheduleReview", || {
            let mut client = client.clone();
            let req = authed(
                &token,
                cpb::ScheduleReviewRequest {
                    case_id: case_id.clone(),
                    request_id: request_id.clone(),
                    review: Some(cpb::Review {
                        kind: cpb::ReviewKind::StepReview.into(),
                        due_date: Some(landsby_platform::validate::date_to_proto(
                            landsby_domain::time::oslo_date(chrono::Utc::now()),
                        )),
                        note: "step review".into(),
                        ..Default::default()
                    }),
                },
            );
            async move { client.schedule_review(req).await }
        })
        .await
        .expect("ScheduleReview")
        .into_inner()
        .review
        .expect("review");
        let decision = if up {
            cpb::StaircaseDecision {
                kind: cpb::DecisionKind::Advance.into(),
                ..Default::default()
            }
        } else {
            cpb::StaircaseDecision {
                kind: cpb::DecisionKind::StepBack.into(),
                step_back_to: cpb::Step::Safety.into(),
                ..Default::default()
            }
        };
        let review_now = |id: String| {
            let client = client.clone();
            let token = token.clone();
            let case_id = case_id.clone();
            let seen = seen.clone();
            async move {
                let reviews = through(&seen, "ListReviews", || {
                    let mut client = client.clone();
                    let req = authed(
                        &token,
                        cpb::ListReviewsRequest {
                            case_id: case_id.clone(),
                            page_size: 200,
                            ..Default::default()
                        },
                    );
                    async move { client.list_reviews(req).await }
                })
                .await
                .expect("ListReviews")
                .into_inner()
                .reviews;
                reviews
                    .into_iter()
                    .find(|r| r.id == id)
                    .expect("the review")
            }
        };
        let completed = through(&seen, "CompleteReview", || {
            let mut client = client.clone();
            let req = authed(
                &token,
                cpb::CompleteReviewRequest {
                    case_id: case_id.clone(),
                    review_id: review.id.clone(),
                    etag: review.etag.clone(),
                    decision: Some(decision),
                    rationale: "the visits have gone well".into(),
                    child_view: Some(landsby_testkit::case::heard()),
                },
            );
            async move { client.complete_review(req).await }
        })
        .await;
        let review = match completed {
            Ok(r) => r.into_inner().review.expect("review"),
            Err((_, true)) => review_now(review.id.clone()).await,
            Err((refusal, false)) => {
                seen.refused("CompleteReview", &refusal);
                return;
            }
        };
        if decision_status(&review) == cpb::DecisionStatus::PendingApproval {
            let lead = self.lead.clone();
            let approved = through(&seen, "ApproveDecision", || {
                let mut client = client.clone();
                let req = authed(
                    &lead,
                    cpb::ApproveDecisionRequest {
                        case_id: case_id.clone(),
                        review_id: review.id.clone(),
                        etag: review.etag.clone(),
                    },
                );
                async move { client.approve_decision(req).await }
            })
            .await;
            if let Err((refusal, retried)) = approved {
                let applied = retried
                    && decision_status(&review_now(review.id.clone()).await)
                        == cpb::DecisionStatus::Applied;
                if !applied {
                    seen.refused("ApproveDecision", &refusal);
                    return;
                }
            }
        }
        // The step the case is in now: only this caller moves it.
        let case = through(&seen, "GetCase", || {
            let mut client = client.clone();
            let req = authed(
                &token,
                cpb::GetCaseRequest {
                    case_id: case_id.clone(),
                    ..Default::default()
                },
            );
            async move { client.get_case(req).await }
        })
        .await
        .expect("GetCase")
        .into_inner()
        .case
        .expect("case");
        if case.step != known.step {
            known.step = case.step;
            known.step_changes += 1;
        }
    }

    async fn run(mut self, stop: Arc<AtomicBool>) -> BTreeMap<String, Known> {
        while !stop.load(Ordering::Relaxed) {
            match self.dice.below(20) {
                _ if self.known.len() < 2 => self.new_family().await,
                0..=1 => self.new_family().await,
                2..=9 => self.schedule_visit().await,
                10..=14 => self.settle_visit().await,
                _ => self.move_step().await,
            }
        }
        self.known
    }
}

fn decision_status(review: &cpb::Review) -> cpb::DecisionStatus {
    review
        .outcome
        .as_ref()
        .map_or(cpb::DecisionStatus::Unspecified, |o| o.decision_status())
}

/// Every event of a feed (the stream read until it has been quiet for two seconds).
async fn feed<T>(mut stream: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(item))) =
        tokio::time::timeout(Duration::from_secs(2), stream.message()).await
    {
        out.push(item);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_soak_across_four_processes_and_postgres_loses_nothing() {
    let _machine = super::MACHINE.write().await;
    let soak = Duration::from_secs(
        std::env::var("LANDSBY_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40),
    );
    let seed = super::seed("LANDSBY_SOAK_SEED");
    eprintln!("fault soak: {soak:?}, LANDSBY_SOAK_SEED={seed}");
    let mut dice = Rng::new(seed);

    let cluster = Cluster::start();
    // The agency's platform takes every webhook delivery.
    let mut platform = landsby_testkit::http::http_server(|_| Some((204, String::new()))).await;
    let platform_url = platform.url.clone();
    let mut nodes: Vec<Node> = Vec::new();
    for name in ["case", "visitation", "notification", "worker"] {
        let listen = free_port();
        nodes.push(Node {
            name,
            listen,
            proxy: TcpProxy::start(listen).await,
            db: cluster.database(name),
            settings: Vec::new(),
            process: None,
            log: Vec::new(),
        });
    }
    let at = |i: usize| url(nodes[i].proxy.addr);
    let (case_at, visitation_at, notification_at) = (at(0), at(1), at(2));
    let token_dir = tempfile::tempdir().unwrap();
    let token = keys().token("landsby-worker", AGENCY, &[Role::Service]);
    std::fs::write(token_dir.path().join(format!("{AGENCY}.jwt")), &token).unwrap();
    nodes[1].settings = vec![("LANDSBY_ENDPOINTS__CASE", case_at.clone())];
    nodes[2].settings = vec![
        ("LANDSBY_ENDPOINTS__CASE", case_at.clone()),
        ("LANDSBY_DELIVERY__WEBHOOK__URL", platform_url),
        (
            "LANDSBY_DELIVERY__WEBHOOK__SECRET",
            "a-soak-webhook-secret-of-32-characters-or-more".to_owned(),
        ),
        ("LANDSBY_DELIVERY__ATTEMPT_TIMEOUT", "2s".to_owned()),
        ("LANDSBY_DELIVERY__POLL_INTERVAL", "100ms".to_owned()),
        ("LANDSBY_DELIVERY__QUIET_FROM", "00:00".to_owned()),
        ("LANDSBY_DELIVERY__QUIET_UNTIL", "00:00".to_owned()),
    ];
    nodes[3].settings = vec![
        ("HOSTNAME", "worker-pod-1".to_owned()),
        ("LANDSBY_ENDPOINTS__CASE", case_at),
        ("LANDSBY_ENDPOINTS__VISITATION", visitation_at),
        ("LANDSBY_ENDPOINTS__NOTIFICATION", notification_at),
        (
            "LANDSBY_JOBS__TOKEN_FILE",
            token_dir.path().join("{agency}.jwt").display().to_string(),
        ),
        ("LANDSBY_JOBS__POLL_INTERVAL", "100ms".to_owned()),
        ("LANDSBY_JOBS__STALE_AFTER", "3s".to_owned()),
        ("LANDSBY_JOBS__SWEEP_SCHEDULE", String::new()),
    ];
    for node in &mut nodes {
        node.start();
    }
    let suite = Suite {
        case: serving(nodes[0].proxy.addr).await,
        visitation: serving(nodes[1].proxy.addr).await,
        notification: serving(nodes[2].proxy.addr).await,
        worker: serving(nodes[3].proxy.addr).await,
        issuer: Arc::new(TestIssuer),
    };

    // The workload: three callers, each with its own cases.
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for i in 0..3u64 {
        let caller = Caller {
            seen: seen.clone(),
            dice: Rng::new(seed.wrapping_add(i + 1)),
            cases: CaseServiceClient::new(suite.case.clone()),
            visits: VisitationServiceClient::new(suite.visitation.clone()),
            caseworker: keys().token("caseworker-1", AGENCY, &[Role::Caseworker]),
            lead: keys().token("team-lead-1", AGENCY, &[Role::TeamLead]),
            service: token.clone(),
            known: BTreeMap::new(),
        };
        callers.push(tokio::spawn(caller.run(stop.clone())));
    }

    // The chaos.
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < soak {
        tokio::time::sleep(dice.millis(1000, 3000)).await;
        let node = dice.below(4);
        let name = nodes[node].name;
        match dice.below(10) {
            0..=3 => {
                nodes[node].kill();
                tokio::time::sleep(dice.millis(0, 1000)).await;
                nodes[node].start();
                *faults
                    .entry(match name {
                        "case" => "kill -9 case",
                        "visitation" => "kill -9 visitation",
                        "notification" => "kill -9 notification",
                        _ => "kill -9 worker",
                    })
                    .or_default() += 1;
            }
            4..=5 => {
                tokio::task::block_in_place(|| cluster.crash());
                tokio::time::sleep(dice.millis(200, 1500)).await;
                tokio::task::block_in_place(|| cluster.start_again());
                *faults.entry("PostgreSQL crash").or_default() += 1;
            }
            6..=7 => {
                nodes[node].proxy.cut();
                tokio::time::sleep(dice.millis(300, 2000)).await;
                nodes[node].proxy.restore();
                *faults.entry("connections cut").or_default() += 1;
            }
            8 => {
                nodes[node].proxy.hold();
                tokio::time::sleep(dice.millis(1000, 4000)).await;
                nodes[node].proxy.restore();
                *faults.entry("connections hung").or_default() += 1;
            }
            _ => {
                nodes[node].proxy.delay(dice.millis(50, 300));
                tokio::time::sleep(dice.millis(1000, 4000)).await;
                nodes[node].proxy.restore();
                *faults.entry("connections slowed").or_default() += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    let mut failed = None;
    for caller in callers {
        match caller.await {
            Ok(cases) => known.extend(cases),
            Err(e) => failed = Some(e),
        }
    }
    if let Some(failure) = failed {
        // What the processes said about it.
        for node in &mut nodes {
            for line in node.errors() {
                eprintln!("{line}");
            }
        }
        std::panic::resume_unwind(failure.into_panic());
    }
    let calls = seen.calls.load(Ordering::Relaxed);
    let faults_total: u32 = faults.values().sum();
    eprintln!(
        "fault soak: {} cases, {calls} calls, faults {faults:?}; retried {:?}; refused {:?}",
        known.len(),
        seen.retried.lock().unwrap(),
        seen.refused.lock().unwrap()
    );
    assert!(faults_total >= 5, "{faults:?}");

    check(&suite, &known, &mut platform).await;
    drop(nodes);
}

/// The invariants, once the faults are over and the worker has caught up.
async fn check(
    suite: &Suite,
    known: &BTreeMap<String, Known>,
    platform: &mut landsby_testkit::http::HttpServer,
) {
    let worker_token = keys().token("landsby-worker", AGENCY, &[Role::Service]);
    let caseworker = keys().token("caseworker-1", AGENCY, &[Role::Caseworker]);
    let mut admin = suite.admin();
    admin.settled_within(Duration::from_secs(180)).await;
    let mut checked = 0u64;

    // No job stuck; a dead one says why, and an administrator's RetryJob brings it back (the faults
    // are over), so that what it owed is done before the checks below.
    let dead = admin.jobs(wpb::JobStatus::Dead).await;
    for job in &dead {
        assert!(
            !job.last_error.is_empty(),
            "a dead job that does not say why: {job:?}"
        );
        eprintln!(
            "fault soak: dead job {} ({}): {}",
            job.id, job.kind, job.last_error
        );
        let req = admin.req(wpb::RetryJobRequest {
            job_id: job.id.clone(),
        });
        admin.inner.retry_job(req).await.unwrap();
    }
    if !dead.is_empty() {
        admin.settled_within(Duration::from_secs(180)).await;
    }

    // Every acknowledged case, member and visit is there exactly once, as last acknowledged.
    let mut cases = CaseServiceClient::new(suite.case.clone());
    let mut listed = BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let r = cases
            .list_cases(authed(
                &caseworker,
                cpb::ListCasesRequest {
                    page_size: 200,
                    page_token,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for c in r.cases {
            assert!(listed.insert(c.id.clone()), "case {} listed twice", c.id);
        }
        if r.next_page_token.is_empty() {
            break;
        }
        page_token = r.next_page_token;
    }
    let acknowledged: BTreeSet<String> = known.keys().cloned().collect();
    assert_eq!(
        listed, acknowledged,
        "the cases are exactly those acknowledged"
    );
    checked += 1;
    let mut visits = VisitationServiceClient::new(suite.visitation.clone());
    let mut finals: BTreeMap<String, cpb::Case> = BTreeMap::new();
    for (id, k) in known {
        let case = cases
            .get_case(authed(
                &caseworker,
                cpb::GetCaseRequest {
                    case_id: id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .case
            .unwrap();
        assert_eq!(case.step, k.step, "case {id}: the step last acknowledged");
        let members: BTreeSet<String> = cases
            .list_village_members(authed(
                &caseworker,
                cpb::ListVillageMembersRequest {
                    case_id: id.clone(),
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .members
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(members, k.members, "case {id}: its village");
        let stored: BTreeMap<String, vpb::VisitStatus> = visits
            .list_visits(authed(
                &caseworker,
                vpb::ListVisitsRequest {
                    case_id: id.clone(),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .visits
            .into_iter()
            .map(|v| (v.id.clone(), v.status()))
            .collect();
        assert_eq!(
            stored, k.visits,
            "case {id}: its visits, each as last acknowledged"
        );
        checked += 3;
        finals.insert(id.clone(), case);
    }

    // Each feed: in order, each event once, and the events of what was acknowledged.
    let case_feed = feed(
        cases
            .watch_events(authed(
                &worker_token,
                cpb::WatchEventsRequest { after_sequence: 0 },
            ))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let visit_feed = feed(
        visits
            .watch_events(authed(
                &worker_token,
                vpb::WatchEventsRequest { after_sequence: 0 },
            ))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let mut created: BTreeMap<String, u32> = BTreeMap::new();
    let mut steps: BTreeMap<String, u32> = BTreeMap::new();
    let (mut last, mut ids) = (0i64, BTreeSet::new());
    for e in case_feed.iter().filter_map(|r| r.event.as_ref()) {
        assert!(
            e.sequence > last,
            "the case feed out of order at {}",
            e.sequence
        );
        last = e.sequence;
        assert!(ids.insert(e.event_id.clone()), "event {} twice", e.event_id);
        match &e.change {
            Some(cpb::case_event::Change::CaseCreated(_)) => {
                *created.entry(e.case_id.clone()).or_default() += 1
            }
            Some(cpb::case_event::Change::StepChanged(_)) => {
                *steps.entry(e.case_id.clone()).or_default() += 1
            }
            _ => {}
        }
    }
    let (mut last, mut ids) = (0i64, BTreeSet::new());
    let mut scheduled: BTreeMap<String, u32> = BTreeMap::new();
    let mut cancelled: BTreeMap<String, u32> = BTreeMap::new();
    for e in visit_feed.iter().filter_map(|r| r.event.as_ref()) {
        assert!(
            e.sequence > last,
            "the visitation feed out of order at {}",
            e.sequence
        );
        last = e.sequence;
        assert!(ids.insert(e.event_id.clone()), "event {} twice", e.event_id);
        match &e.change {
            Some(vpb::visitation_event::Change::VisitScheduled(v)) => {
                *scheduled.entry(v.visit_id.clone()).or_default() += 1
            }
            Some(vpb::visitation_event::Change::VisitCancelled(v)) => {
                *cancelled.entry(v.visit_id.clone()).or_default() += 1
            }
            _ => {}
        }
    }
    for (id, k) in known {
        assert_eq!(created.get(id), Some(&1), "case {id}: CaseCreated once");
        assert_eq!(
            steps.get(id).copied().unwrap_or(0),
            k.step_changes,
            "case {id}: a StepChanged for each step change"
        );
        for (visit, status) in &k.visits {
            assert_eq!(
                scheduled.get(visit),
                Some(&1),
                "visit {visit}: VisitScheduled once"
            );
            let want = u32::from(*status == vpb::VisitStatus::Cancelled);
            assert_eq!(
                cancelled.get(visit).copied().unwrap_or(0),
                want,
                "visit {visit}: VisitCancelled"
            );
            checked += 2;
        }
        checked += 2;
    }
    assert_eq!(
        created.len(),
        known.len(),
        "no case created that was not acknowledged"
    );

    // Every plan's scope is what the policy computes from the case's final state: the mother's plan
    // was computed from the case's last version, and a sweep that recomputes every case from what
    // it is now changes no scope.
    let mut plans_before = BTreeMap::new();
    let mut visits_client = suite.visits();
    for (id, k) in known {
        let plans = visits_client.plans(id).await;
        let plan = plans
            .iter()
            .find(|p| p.parent_id == k.mother)
            .unwrap_or_else(|| panic!("case {id}: the mother's plan"));
        let from = plan.computed_from.clone().unwrap_or_default();
        assert_eq!(
            (from.step, from.case_version),
            (finals[id].step, finals[id].version),
            "case {id}: the plan computed from the case's final state"
        );
        plans_before.insert(plan.id.clone(), plan.scope_version);
        checked += 1;
    }
    let sweep = admin
        .inner
        .trigger_sweep(admin.req(wpb::TriggerSweepRequest {}))
        .await
        .unwrap()
        .into_inner()
        .sweep
        .unwrap();
    landsby_testkit::eventually!("the sweep to finish", {
        let s = admin
            .inner
            .get_sweep_status(admin.req(wpb::GetSweepStatusRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .sweep
            .unwrap();
        (s.id == sweep.id && s.state() == wpb::SweepState::Done).then_some(())
    });
    admin.settled_within(Duration::from_secs(180)).await;
    for id in known.keys() {
        for plan in visits_client.plans(id).await {
            if let Some(before) = plans_before.get(&plan.id) {
                assert_eq!(
                    plan.scope_version, *before,
                    "case {id}: the sweep changed a scope that should have been in force"
                );
            }
        }
    }

    // Every notice owed was made once and delivered: each step change told the mother, the
    // foster parent and the caseworker once; each visit scheduled or cancelled told the mother once;
    // every notification was delivered, and reached the platform under its idempotency key.
    let mut notices = suite.notices();
    let mut made: BTreeSet<String> = BTreeSet::new();
    for (id, k) in known {
        let all = notices.of_case(id).await;
        let count = |who: &str, kind: &str| {
            all.iter()
                .filter(|n| {
                    let r = n.recipient.clone().unwrap_or_default();
                    (r.member_id == who || r.staff_subject == who) && n.kind == kind
                })
                .count()
        };
        let foster = k.members.iter().find(|m| **m != k.mother).unwrap();
        for who in [k.mother.as_str(), foster.as_str(), "caseworker-1"] {
            assert_eq!(
                count(who, "step_changed"),
                k.step_changes as usize,
                "case {id}: step_changed to {who}"
            );
        }
        let cancelled = k
            .visits
            .values()
            .filter(|s| **s == vpb::VisitStatus::Cancelled)
            .count();
        assert_eq!(
            count(&k.mother, "visit_scheduled"),
            k.visits.len(),
            "case {id}"
        );
        assert_eq!(count(&k.mother, "visit_cancelled"), cancelled, "case {id}");
        for n in &all {
            assert_eq!(
                n.status(),
                npb::NotificationStatus::Delivered,
                "notification {} of case {id}",
                n.id
            );
            made.insert(n.id.clone());
        }
        checked += 6;
    }
    let mut received: BTreeMap<String, (String, u32)> = BTreeMap::new();
    while let Ok(Some(request)) =
        tokio::time::timeout(Duration::from_millis(200), platform.requests.recv()).await
    {
        let id = request.json()["notification_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = request
            .header("idempotency-key")
            .unwrap_or_default()
            .to_owned();
        let entry = received.entry(id).or_insert((key.clone(), 0));
        assert_eq!(entry.0, key, "a redelivery under another idempotency key");
        entry.1 += 1;
    }
    for id in &made {
        assert!(
            received.contains_key(id),
            "notification {id} never reached the platform"
        );
    }
    let redelivered = received.values().filter(|(_, n)| *n > 1).count();
    checked += made.len() as u64;
    eprintln!(
        "fault soak: {checked} invariants checked: {} cases, {} visits, {} step changes, {} \
         notifications ({} delivered again under the same idempotency key), {} case events, {} \
         visitation events, {} dead jobs",
        known.len(),
        known.values().map(|k| k.visits.len()).sum::<usize>(),
        known.values().map(|k| k.step_changes).sum::<u32>(),
        made.len(),
        redelivered,
        case_feed.len(),
        visit_feed.len(),
        dead.len()
    );
}

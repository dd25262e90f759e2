//! Across real processes on PostgreSQL: `landsby migrate` prepares the database, two replicas of
//! `landsby-case` serve it, a case written through one is read through the other; and
//! `landsby-visitation` checks a caseworker's adjustment against the board's floor it reads from
//! `landsby-case` in another process; and `landsby-notification`, killed with SIGKILL while a
//! webhook is on its way, makes the delivery after a restart, while no log line of either process
//! shows a secret address; and `landsby-case` on SQLite, killed with SIGKILL while eight callers
//! create cases, has every acknowledged case and its audit row after a restart; and the fault soak
//! (`e2e/soak.rs`): the four processes under a scripted workload while processes are killed,
//! PostgreSQL crashes and connections are cut, hung and slowed, then every invariant checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use landsby_platform::db::DbPool;
use landsby_proto::case::{self as pb, case_service_client::CaseServiceClient};
use landsby_testkit::process::{Spawned, command, service};
use landsby_testkit::{AGENCY, Backend, TestDb, keys};
use std::net::SocketAddr;
use std::time::Duration;

/// The machine these tests share (2 cores): the sweep over 1,000 cases runs alone, the others side by
/// side. Under the others' load its restarted run has been seen not to finish within its bound, a
/// hang not yet explained (noted for the reliability work); alone it takes under a minute.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The seed of a randomized test: `var` when set (to repeat a run), else one from the clock. The
/// test prints it.
fn seed(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn replica(db: &TestDb) -> (Spawned, SocketAddr) {
    service("case", db, &[])
}

async fn serving(addr: SocketAddr) -> tonic::transport::Channel {
    let channel = landsby_testkit::channel(addr);
    landsby_testkit::wait_for_health(&channel, landsby_testkit::ServingStatus::Serving).await;
    channel
}

/// As [`serving`], in plain text: `landsby up` in dev mode.
async fn serving_plain(addr: SocketAddr) -> tonic::transport::Channel {
    let channel = landsby_testkit::plain_channel(addr);
    landsby_testkit::wait_for_health(&channel, landsby_testkit::ServingStatus::Serving).await;
    channel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_two_replicas_of_the_case_service_share_one_postgres_database() {
    let _machine = MACHINE.read().await;
    let db = TestDb::new(Backend::Postgres).await;
    let output = command("landsby")
        .arg("migrate")
        .env("LANDSBY_CASE__DATABASE_URL", db.url())
        .env("LANDSBY_DATA_DIR", db.dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("case:") && stdout.contains("up to date"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("postgres@"),
        "no credentials in output: {stdout}"
    );

    let (mut a, addr_a) = replica(&db);
    let (mut b, addr_b) = replica(&db);
    let token = landsby_testkit::caseworker();
    let mut via_a = CaseServiceClient::new(serving(addr_a).await);
    let mut via_b = CaseServiceClient::new(serving(addr_b).await);

    let case = pb::Case {
        child: Some(pb::Child {
            given_name: "Emma".into(),
            family_name: "Nordmann".into(),
            birth_date: Some(landsby_proto::common::Date {
                year: 2018,
                month: 5,
                day: 14,
            }),
            national_id: String::new(),
        }),
        placement: Some(pb::Placement {
            kind: pb::PlacementKind::Voluntary.into(),
            start_date: Some(landsby_proto::common::Date {
                year: 2025,
                month: 1,
                day: 6,
            }),
            foster_home: Some(pb::FosterHome {
                name: String::new(),
                address: Some(landsby_proto::common::PostalAddress {
                    street: "Storgata 1".into(),
                    postal_code: "5003".into(),
                    city: "Bergen".into(),
                }),
                address_protected: true,
            }),
        }),
        goal: pb::Goal::LongTermPlacement.into(),
        assigned_caseworker: "caseworker-1".into(),
        team: landsby_testkit::TEAM.into(),
        ..Default::default()
    };
    let request_id = "0190a8f0-58c3-7cc2-9f3e-2b0f1c5d7a10".to_owned();
    let created = via_a
        .create_case(landsby_testkit::authed(
            &token,
            pb::CreateCaseRequest {
                request_id: request_id.clone(),
                case: Some(case.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    // The retry lands on the other replica: still one case.
    let retried = via_b
        .create_case(landsby_testkit::authed(
            &token,
            pb::CreateCaseRequest {
                request_id,
                case: Some(case),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(retried.id, created.id);
    let read = via_b
        .get_case(landsby_testkit::authed(
            &token,
            pb::GetCaseRequest {
                case_id: created.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(read, created);

    for process in [&mut a, &mut b] {
        process.signal("TERM");
        let (status, _) = process
            .wait_exit(Duration::from_secs(30))
            .expect("exits on SIGTERM");
        assert!(status.success());
    }

    // The two replicas' audit rows form one chain; `landsby audit verify` finds a tampered row.
    let pool = db.pool();
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let sealed = landsby_platform::audit_chain::seal(&pool, later)
        .await
        .unwrap();
    assert!(sealed >= 3, "{sealed} rows sealed");
    let verify = || {
        command("landsby")
            .args(["audit", "verify", "--service", "case"])
            .env("LANDSBY_CASE__DATABASE_URL", db.url())
            .env("LANDSBY_DATA_DIR", db.dir())
            .output()
            .unwrap()
    };
    let held = verify();
    let stdout = String::from_utf8_lossy(&held.stdout);
    assert!(held.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("{sealed} sealed")) && stdout.contains("the audit chains hold"),
        "{stdout}"
    );
    let DbPool::Postgres(pg) = &pool else {
        panic!("PostgreSQL")
    };
    let first: i64 = sqlx::query_scalar("SELECT MIN(id) FROM audit_log")
        .fetch_one(pg)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
        .execute(pg)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor_subject = 'someone-else' WHERE id = $1")
        .bind(first)
        .execute(pg)
        .await
        .unwrap();
    let broken = verify();
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(!broken.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("case: row {first} was changed")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitation_service_checks_an_adjustment_against_the_case_service_in_another_process() {
    let _machine = MACHINE.read().await;
    use landsby_domain::Role;
    use landsby_proto::visitation::{
        self as vpb, visitation_service_client::VisitationServiceClient,
    };
    use landsby_testkit::case::{Client, decision, mother, new_case};
    use landsby_testkit::status::precondition_kinds;

    let (case_db, visitation_db) = (
        TestDb::new(Backend::Postgres).await,
        TestDb::new(Backend::Postgres).await,
    );
    let (mut case_process, case_addr) = service("case", &case_db, &[]);
    let endpoint = ("LANDSBY_ENDPOINTS__CASE", format!("https://{case_addr}"));
    let (mut visitation_process, visitation_addr) =
        service("visitation", &visitation_db, &[endpoint]);

    // The case, the mother, and the board's floor: 2 visits a month of 120 minutes, supervised.
    let mut cases = Client {
        inner: CaseServiceClient::new(serving(case_addr).await),
        token: landsby_testkit::caseworker(),
    };
    let case = cases.create(new_case()).await.unwrap();
    let mum = cases.add_member(&case.id, mother()).await.unwrap();
    let mut floor = decision(&mum.id, false);
    floor.floors[0].min_visits = 2;
    floor.floors[0].period = pb::VisitPeriod::Month.into();
    floor.floors[0].min_duration_minutes = 120;
    floor.floors[0].supervision_required = true;
    cases.record(&case.id, floor).await.unwrap();

    // The worker puts the engine's scope in force; it keeps the floor.
    let scope = landsby_domain::scope::compute(
        &landsby_domain::scope::ScopeInput {
            step: landsby_domain::Step::Safety,
            goal: landsby_domain::Goal::Reunification,
            floor: Some(&landsby_domain::VisitationFloor {
                parent_id: mum.id.parse().unwrap(),
                min_visits: 2,
                period: landsby_domain::VisitPeriod::Month,
                min_duration_minutes: 120,
                supervision_required: true,
            }),
            secret_address: false,
            child_birth_date: chrono::NaiveDate::from_ymd_opt(2018, 5, 14).unwrap(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            recent_visits: &[],
            current: None,
            parenting_goals: &[],
        },
        &landsby_domain::Policy::default(),
    );
    let mut visitation = VisitationServiceClient::new(serving(visitation_addr).await);
    let worker = keys().token("landsby-worker", landsby_testkit::AGENCY, &[Role::Service]);
    let plan = visitation
        .batch_apply_computed_scopes(landsby_testkit::authed(
            &worker,
            vpb::BatchApplyComputedScopesRequest {
                items: vec![vpb::ComputedScopeItem {
                    case_id: case.id.clone(),
                    parent_id: mum.id.clone(),
                    computed_from: Some(vpb::ComputedFrom {
                        case_version: case.version,
                        policy_version: "2026.1".into(),
                        step: pb::Step::Safety.into(),
                        goal: pb::Goal::Reunification.into(),
                        computed_on: Some(landsby_platform::validate::date_to_proto(
                            landsby_domain::time::oslo_date(chrono::Utc::now()),
                        )),
                    }),
                    scope: Some(landsby_visitation::api::convert::scope_to(&scope)),
                }],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .results
        .pop()
        .and_then(|r| r.plan)
        .unwrap();

    // Shorter visits than the board gives are refused, naming the rule.
    let mut shorter = plan.scope.clone().unwrap();
    shorter.duration_minutes = 60;
    let err = visitation
        .adjust_visitation_plan(landsby_testkit::authed(
            &cases.token,
            vpb::AdjustVisitationPlanRequest {
                plan_id: plan.id.clone(),
                etag: plan.etag.clone(),
                scope: Some(shorter),
                update_mask: Some(prost_types_mask(&["duration_minutes"])),
                rationale: "the mother asked for shorter visits".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["BOARD_FLOOR"]);

    for process in [&mut visitation_process, &mut case_process] {
        process.signal("TERM");
        let (status, _) = process
            .wait_exit(Duration::from_secs(30))
            .expect("exits on SIGTERM");
        assert!(status.success());
    }
}

fn prost_types_mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The letters and digits of `s`, lower-cased: how a leak is looked for, whatever its spacing.
fn squashed(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_off_by_kill_9_is_made_after_a_restart_and_no_log_shows_the_secret_address()
{
    let _machine = MACHINE.read().await;
    use landsby_proto::notification::{
        self as npb, notification_service_client::NotificationServiceClient,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const CANARY: &str = "Kanarigata 17B, 9999 Fuglevik";
    const FOSTER_PHONE: &str = "+47 481 23 456";
    let db = TestDb::new(Backend::Postgres).await;
    // The agency's platform: hangs on the first delivery (the sender is killed while it waits),
    // answers once the service is back.
    let hang = Arc::new(AtomicBool::new(true));
    let hanging = hang.clone();
    let mut platform = landsby_testkit::http::http_server(move |_| {
        (!hanging.load(Ordering::SeqCst)).then(|| (204, String::new()))
    })
    .await;
    let settings = [
        ("LANDSBY_DELIVERY__WEBHOOK__URL", platform.url.clone()),
        (
            "LANDSBY_DELIVERY__WEBHOOK__SECRET",
            "an-e2e-webhook-secret-of-32-characters-or-more".to_owned(),
        ),
        ("LANDSBY_DELIVERY__ATTEMPT_TIMEOUT", "2s".to_owned()),
        ("LANDSBY_DELIVERY__POLL_INTERVAL", "50ms".to_owned()),
        ("LANDSBY_DELIVERY__QUIET_FROM", "00:00".to_owned()),
        ("LANDSBY_DELIVERY__QUIET_UNTIL", "00:00".to_owned()),
        ("LANDSBY_LOG__LEVEL", "debug".to_owned()),
    ];
    let (mut first, addr) = service("notification", &db, &settings);
    let mut client = NotificationServiceClient::new(serving(addr).await);
    // Sent as the worker sends most notices: no case service to ask about need to know here.
    let token = keys().token("landsby-worker", AGENCY, &[landsby_domain::Role::Service]);
    let params: std::collections::HashMap<String, String> = [
        ("subject".to_owned(), "Samvær".to_owned()),
        (
            "body".to_owned(),
            format!("Vi møtes hos fosterforeldrene i {CANARY}, ring {FOSTER_PHONE}."),
        ),
    ]
    .into();
    let request = npb::SendNotificationRequest {
        idempotency_key: "e2e-kill-1".into(),
        case_id: "0195b7a4-0000-7000-8000-00000000c001".into(),
        recipient: Some(npb::Recipient {
            member_id: "0195b7a4-0000-7000-8000-00000000a001".into(),
            affiliation: pb::Affiliation::BirthFamily.into(),
            ..Default::default()
        }),
        kind: "free_text".into(),
        parameters: params,
        protection: Some(npb::CaseProtection {
            secret_address: true,
            protected_values: vec![CANARY.into(), FOSTER_PHONE.into()],
        }),
    };
    let sent = client
        .send_notification(landsby_testkit::authed(&token, request))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert!(sent.redacted);
    // The webhook is on its way: kill -9 the service while the platform holds the request.
    let cut_off = platform.next().await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    hang.store(false, Ordering::SeqCst);

    // Restarted, the service takes the delivery up again once its lease ends, and makes it.
    let (mut second, addr) = service("notification", &db, &settings);
    let mut client = NotificationServiceClient::new(serving(addr).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Read as the agency's portal would (the worker sends but reads nothing).
    let portal = keys().token("oslo-portal", AGENCY, &[landsby_domain::Role::Portal]);
    let delivered = loop {
        let n = client
            .get_notification(landsby_testkit::authed(
                &portal,
                npb::GetNotificationRequest {
                    notification_id: sent.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        if n.status() == npb::NotificationStatus::Delivered {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never delivered: {n:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hook = delivered
        .deliveries
        .iter()
        .find(|d| d.channel() == npb::Channel::Webhook)
        .unwrap();
    assert_eq!(
        hook.attempts.len(),
        1,
        "the cut-off attempt left no outcome"
    );
    assert!(hook.attempts[0].ok);
    let made = platform.next().await;
    assert_eq!(
        made.header("idempotency-key"),
        cut_off.header("idempotency-key"),
        "the platform can tell the repeat by its key"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(platform.requests.try_recv().is_err(), "no third request");

    // The secret address is in no log line and in nothing sent.
    let mut seen = first.output();
    seen.extend(second.output());
    seen.push(String::from_utf8_lossy(&cut_off.body).into_owned());
    seen.push(String::from_utf8_lossy(&made.body).into_owned());
    assert!(seen.len() > 4, "the services logged");
    for needle in ["Kanarigata 17", "9999 Fuglevik", "48123456"] {
        for line in &seen {
            assert!(
                !squashed(line).contains(&squashed(needle)),
                "{needle} leaked: {line}"
            );
        }
    }
}

#[path = "e2e/hostile.rs"]
mod hostile;
#[path = "e2e/overload.rs"]
mod overload;
#[path = "e2e/soak.rs"]
mod soak;
#[path = "e2e/worker.rs"]
mod worker;

/// SQLite, the embedded default, loses no acknowledged write to a `kill -9`: eight callers create
/// cases as fast as the service answers, the process is killed in the middle, and after a restart
/// on the same file every case whose creation was answered is there, each with its audit row, and
/// no case is there without its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_during_writes_loses_no_acknowledged_write() {
    let _machine = MACHINE.read().await;
    use std::sync::{Arc, Mutex};

    let db = TestDb::new(Backend::Sqlite).await;
    let (mut first, addr) = replica(&db);
    let channel = serving(addr).await;
    let token = landsby_testkit::caseworker();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let mut client = CaseServiceClient::new(channel.clone());
        let token = token.clone();
        let acknowledged = Arc::clone(&acknowledged);
        writers.push(tokio::spawn(async move {
            loop {
                let request = pb::CreateCaseRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    case: Some(landsby_testkit::case::new_case()),
                };
                match client
                    .create_case(landsby_testkit::authed(&token, request))
                    .await
                {
                    Ok(answer) => {
                        let id = answer.into_inner().case.unwrap().id;
                        acknowledged.lock().unwrap().push(id);
                    }
                    // The process is gone: the calls in flight are not acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    // Killed once writes are well under way (and while they go on).
    let began = tokio::time::Instant::now();
    while acknowledged.lock().unwrap().len() < 100 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no writes were acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let (_second, addr) = replica(&db);
    let mut client = CaseServiceClient::new(serving(addr).await);
    for id in &acknowledged {
        let read = client
            .get_case(landsby_testkit::authed(
                &token,
                pb::GetCaseRequest {
                    case_id: id.clone(),
                    ..Default::default()
                },
            ))
            .await;
        assert!(read.is_ok(), "acknowledged case {id} lost: {read:?}");
    }
    let rows = landsby_testkit::audit::audit_rows_of(&db.pool()).await;
    let created: std::collections::HashSet<String> = rows
        .iter()
        .filter(|r| r.rpc.ends_with("/CreateCase") && r.outcome == "OK")
        .filter_map(|r| r.case_id.map(|c| c.to_string()))
        .collect();
    for id in &acknowledged {
        assert!(created.contains(id), "case {id} has no audit row");
    }
    let DbPool::Sqlite(pool) = db.pool() else {
        panic!("sqlite expected")
    };
    let stored: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM cases")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(stored.len() >= acknowledged.len());
    for id in stored {
        assert!(
            created.contains(&id.to_string()),
            "case {id} is stored without its audit row"
        );
    }
    println!(
        "kill -9 after {} acknowledged creations: all {} there after the restart",
        acknowledged.len(),
        acknowledged.len()
    );
}

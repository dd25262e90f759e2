//! The service's life: health before migrations and while the database is away, load shedding,
//! deadlines, message limits, reflection, and graceful shutdown of the real binary on SIGTERM.

use crate::support::*;
use landsby_proto::case as pb;
use landsby_testkit::process::Spawned;
use landsby_testkit::{Backend, TcpProxy, TestDb, TestServer, keys};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

landsby_testkit::on_both_backends!(
    health_is_not_serving_until_migrations_have_run,
    far_past_the_concurrency_limit_calls_are_refused_at_once,
    a_caller_past_their_rate_is_told_to_wait_and_others_are_not,
    a_client_deadline_stops_the_request_and_rolls_back_its_work,
    a_cancelled_call_stops_its_work_and_stores_nothing,
    an_oversized_message_is_refused,
);

/// Something that holds the database still until released.
enum Hold {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Hold {
    /// Blocks writes (and on PostgreSQL reads) of the `cases` table, or of the whole SQLite file.
    async fn writes(db: &TestDb) -> Self {
        Self::run(
            db,
            &["BEGIN IMMEDIATE"],
            &["BEGIN", "LOCK TABLE cases IN ACCESS EXCLUSIVE MODE"],
        )
        .await
    }

    /// Blocks the migrations of an empty database.
    async fn migrations(db: &TestDb) -> Self {
        Self::run(
            db,
            &["BEGIN EXCLUSIVE"],
            // sqlx creates its bookkeeping table first; an uncommitted create of the same name makes it wait.
            &[
                "BEGIN",
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY)",
            ],
        )
        .await
    }

    async fn run(db: &TestDb, sqlite: &[&'static str], postgres: &[&'static str]) -> Self {
        use sqlx::Connection;
        match db.backend() {
            Backend::Sqlite => {
                let options: sqlx::sqlite::SqliteConnectOptions = db.url().parse().unwrap();
                let mut conn =
                    sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                        .await
                        .unwrap();
                for sql in sqlite {
                    sqlx::query(*sql).execute(&mut conn).await.unwrap();
                }
                Hold::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
                for sql in postgres {
                    sqlx::query(*sql).execute(&mut conn).await.unwrap();
                }
                Hold::Postgres(conn)
            }
        }
    }

    /// On PostgreSQL, the statements of other sessions of this database waiting for a lock (such
    /// as one this hold keeps them from); SQLite has no such view: None.
    async fn waiting(&mut self) -> Option<i64> {
        match self {
            Hold::Sqlite(_) => None,
            Hold::Postgres(c) => Some(
                sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
                )
                .fetch_one(c)
                .await
                .unwrap(),
            ),
        }
    }

    async fn release(self) {
        match self {
            Hold::Sqlite(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await.unwrap()),
            Hold::Postgres(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await.unwrap()),
        }
    }
}

async fn health_is_not_serving_until_migrations_have_run(backend: Backend) {
    let db = TestDb::new(backend).await;
    let hold = Hold::migrations(&db).await;
    let server = TestServer::start_with(landsby_case::SERVICE, db, |_| {}).await;
    for _ in 0..5 {
        assert_eq!(server.health().await, Some(ServingStatus::NotServing));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Calls are turned away while the schema is not there, with a reason.
    let err = Client::caseworker(&server)
        .create(new_case())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    hold.release().await;
    server.wait_for(ServingStatus::Serving).await;
    Client::caseworker(&server)
        .create(new_case())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_health_follows_the_database_when_it_becomes_unreachable() {
    let db = TestDb::new(Backend::Postgres).await;
    let target: SocketAddr = {
        let host_port = db
            .url()
            .split('@')
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = TcpProxy::start(target).await;
    let url = db
        .url()
        .replacen(&target.to_string(), &proxy.addr.to_string(), 1)
        .replacen(
            &format!("localhost:{}", target.port()),
            &proxy.addr.to_string(),
            1,
        );
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.case.database_url = landsby_platform::Secret::new(url);
        c.database.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();

    proxy.cut();
    server.wait_for(ServingStatus::NotServing).await;
    let err = cw.get(&case.id).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        !err.message().to_lowercase().contains("sql"),
        "no database message reaches a caller: {}",
        err.message()
    );

    proxy.restore();
    server.wait_for(ServingStatus::Serving).await;
    // The pool may hold a connection that broke while cut; the next calls get fresh ones.
    let mut ok = false;
    for _ in 0..20 {
        if cw.get(&case.id).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "the service recovers by itself when the database is back"
    );
}

async fn far_past_the_concurrency_limit_calls_are_refused_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.server.concurrency_limit = 2
    })
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let hold = Hold::writes(&server.db).await;
    let cw = Client::caseworker(&server);
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let mut client = cw.inner.clone();
        let req = cw.req(pb::CreateCaseRequest {
            request_id: String::new(),
            case: Some(new_case()),
        });
        stuck.push(tokio::spawn(async move { client.create_case(req).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        let mut client = cw.inner.clone();
        let err = client
            .create_case(cw.req(pb::CreateCaseRequest {
                request_id: String::new(),
                case: Some(new_case()),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }
    // A landsby process (visitation asking for need to know, for a request it has let in) is
    // counted apart: the platforms' flood does not refuse it.
    let visitation = landsby_testkit::pki::pki().issue(
        Some("landsby/visitation"),
        landsby_testkit::pki::Validity::Current,
    );
    let mut as_visitation = pb::case_service_client::CaseServiceClient::new(
        landsby_testkit::pki::tls_channel(server.addr, Some(&visitation)),
    );
    let mut req = cw.req(pb::GetCaseRequest {
        case_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_millis(300));
    let err = as_visitation.get_case(req).await.unwrap_err();
    // Let in: answered, or waiting for the held lock like the calls let in before it.
    assert!(
        matches!(err.code(), Code::NotFound | Code::DeadlineExceeded),
        "{err:?}"
    );
    // Health still answers under load: probes must not fail because the service is busy.
    assert_eq!(server.health().await, Some(ServingStatus::Serving));
    hold.release().await;
    for task in stuck {
        task.await.unwrap().unwrap();
    }
    // Recovered by itself.
    Client::caseworker(&server)
        .create(new_case())
        .await
        .unwrap();
}

async fn a_caller_past_their_rate_is_told_to_wait_and_others_are_not(backend: Backend) {
    use landsby_domain::Role;
    use tonic_types::StatusExt;
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.server.caller_rate = 1;
        c.server.caller_burst = 3;
    })
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    // The burst (3), and what a second refills meanwhile: then a refusal.
    let mut allowed = 1;
    let err = loop {
        match cw.get(&case.id).await {
            Ok(_) => allowed += 1,
            Err(err) => break err,
        }
        assert!(allowed <= 6, "no refusal after {allowed} calls");
    };
    assert!(allowed >= 3, "the burst is allowed: {allowed}");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let wait = err
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("the time to wait");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    let info = err.get_details_error_info().expect("a reason");
    assert_eq!(info.reason, "RATE_LIMITED");
    // Another person of the agency has their own allowance; the worker is not limited.
    let mut other = Client::team_lead(&server);
    other.get(&case.id).await.unwrap();
    let mut worker = Client::as_role(
        &server,
        "landsby-worker",
        landsby_testkit::AGENCY,
        &[Role::Service],
    );
    for _ in 0..10 {
        worker.get(&case.id).await.unwrap();
    }
    // After the wait, the caller may go on.
    tokio::time::sleep(wait).await;
    cw.get(&case.id).await.unwrap();
}

async fn a_client_deadline_stops_the_request_and_rolls_back_its_work(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut hold = Hold::writes(&server.db).await;
    let mut req = cw.req(pb::CreateCaseRequest {
        request_id: String::new(),
        case: Some(new_case()),
    });
    req.set_timeout(Duration::from_millis(300));
    let err = cw.inner.create_case(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // The deadline reached the database: PostgreSQL cancelled the statement that waited for the
    // lock, rather than keep it waiting for an answer nobody reads (the hold is still there).
    if hold.waiting().await.is_some() {
        let mut waiting = -1;
        for _ in 0..100 {
            waiting = hold.waiting().await.unwrap_or(0);
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(waiting, 0, "a statement of the timed-out call still waits");
    }
    hold.release().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .is_empty()
    );
    // The call that never answered still left its trace.
    let mut found = false;
    for _ in 0..100 {
        let rows = crate::audit_rows(&server).await;
        if rows
            .iter()
            .any(|r| r.rpc.ends_with("/CreateCase") && r.outcome == "DEADLINE_EXCEEDED")
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        found,
        "a CreateCase row with DEADLINE_EXCEEDED in the audit log"
    );
}

/// A transaction whose opening is abandoned half-way (the BEGIN sent, its answer not yet read: the
/// request's deadline passed or its caller went away) leaves no transaction open on the pooled
/// connection. sqlx's PostgreSQL driver alone did (the fault soak found it: every later statement on
/// that connection failed with 25P02); SQLite's driver rolls such an opening back itself.
#[tokio::test]
async fn an_abandoned_transaction_opening_leaves_no_transaction_open_on_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .unwrap();
    for _ in 0..3 {
        // The opening takes 300 ms at the server; the request is gone after 50.
        let opening = landsby_platform::db::begin(&pool, "BEGIN; SELECT pg_sleep(0.3)");
        let abandoned = tokio::time::timeout(Duration::from_millis(50), opening).await;
        assert!(abandoned.is_err(), "the opening was to be abandoned");
        // The pool's one connection, used again.
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
            .await
            .unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&mut other)
        .await
        .unwrap();
        assert_eq!(open, 0, "a transaction left open on a pooled connection");
    }
}

/// A call its client gives up on (the stream reset, no deadline set) is dropped at the server: its
/// transaction rolls back, so once what held it goes, nothing of it is stored, and the service goes on.
async fn a_cancelled_call_stops_its_work_and_stores_nothing(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let hold = Hold::writes(&server.db).await;
    let mut client = cw.inner.clone();
    let req = cw.req(pb::CreateCaseRequest {
        request_id: String::new(),
        case: Some(new_case()),
    });
    let call = tokio::spawn(async move { client.create_case(req).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call waits for the held lock");
    // The client gives up: the future is dropped, and tonic resets the stream.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.release().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .is_empty(),
        "the cancelled call's case was stored"
    );
    cw.create(new_case()).await.unwrap();
}

async fn an_oversized_message_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.server.max_message_bytes = 4096
    })
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let mut cw = Client::caseworker(&server);
    let mut case = new_case();
    case.child.as_mut().unwrap().given_name = "x".repeat(10_000);
    let err = cw.create(case).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err:?}"
    );
    assert!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_describes_the_services_on_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = server(Backend::Sqlite).await;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = stream.next().await else {
        panic!("no reflection answer")
    };
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected answer")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["landsby.case.v1.CaseService", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("Visitation")),
        "only the services this server serves: {names:?}"
    );
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "landsby.case.v1.CaseService".into(),
            ),
        ),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = stream.next().await else {
        panic!("no reflection answer")
    };
    assert!(matches!(
        response.message_response,
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
}

// ---- the real binary ----------------------------------------------------------------------------

struct Process {
    spawned: Spawned,
    addr: SocketAddr,
    /// The plain-text health port, when the process was given one.
    health: Option<SocketAddr>,
    _dir: tempfile::TempDir,
    db_file: std::path::PathBuf,
}

impl Process {
    /// Starts `landsby-case` on a SQLite file, with the test issuer's key, and waits for its address.
    fn start(grace: &str) -> Self {
        Self::start_with(grace, &[])
    }

    /// As [`Process::start`], with more settings.
    fn start_with(grace: &str, settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_file = dir.path().join("case.db");
        let mut command = Command::new(env!("CARGO_BIN_EXE_landsby-case"));
        command
            .env_clear()
            .env("LANDSBY_DATA_DIR", dir.path())
            .env("LANDSBY_CASE__LISTEN", "127.0.0.1:0")
            .env(
                "LANDSBY_CASE__DATABASE_URL",
                format!("sqlite://{}", db_file.display()),
            )
            .env("LANDSBY_AUTH__ISSUER", landsby_testkit::TEST_ISSUER)
            .env(
                "LANDSBY_AUTH__PUBLIC_KEY_FILES",
                format!("[\"{}\"]", keys().public_key_file().display()),
            )
            .envs(landsby_testkit::personal_data_env())
            .envs(landsby_testkit::pki::tls_env("landsby/case"))
            .env("LANDSBY_SERVER__SHUTDOWN_GRACE", grace)
            .env("LANDSBY_DATABASE__HEALTH_INTERVAL", "100ms")
            .env("LANDSBY_LOG__FORMAT", "json")
            .envs(settings.iter().copied());
        let mut spawned = Spawned::start(command);
        let (addr, health) =
            spawned.wait_for(Duration::from_secs(30), landsby_testkit::process::listening);
        Self {
            spawned,
            addr,
            health,
            _dir: dir,
            db_file,
        }
    }

    fn channel(&self) -> tonic::transport::Channel {
        landsby_testkit::channel(self.addr)
    }

    async fn wait_serving(&self) {
        landsby_testkit::wait_for_health(&self.channel(), ServingStatus::Serving).await;
    }

    async fn lock(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.db_file.display()))
                .await
                .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }
}

/// The status of `service` on a plain-text health port, as a Kubernetes gRPC probe asks it.
async fn probe(health: SocketAddr, service: &str) -> Option<ServingStatus> {
    landsby_testkit::health_of(&landsby_testkit::plain_channel(health), service).await
}

/// What Kubernetes gives a pod between SIGTERM and SIGKILL in deploy/ (terminationGracePeriodSeconds).
const TERMINATION_GRACE_PERIOD: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_sigterm_flips_readiness_first_keeps_serving_for_the_delay_then_drains_in_time()
{
    // As deploy/ runs it: a plain-text health port for the probes, a shutdown delay, a grace.
    let mut process = Process::start_with(
        "10s",
        &[
            ("LANDSBY_CASE__HEALTH_LISTEN", "127.0.0.1:0"),
            ("LANDSBY_SERVER__SHUTDOWN_DELAY", "2s"),
            // The load is one caller; its rate limit is not what this test is about.
            ("LANDSBY_SERVER__CALLER_RATE", "0"),
        ],
    );
    let health = process.health.expect("the log names the health port");
    process.wait_serving().await;
    assert_eq!(probe(health, "").await, Some(ServingStatus::Serving));
    assert_eq!(
        probe(health, "landsby.case.v1.CaseService").await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        probe(health, "liveness").await,
        Some(ServingStatus::Serving)
    );
    // The health port answers health and nothing else, in plain text.
    let mut stranger =
        pb::case_service_client::CaseServiceClient::new(landsby_testkit::plain_channel(health));
    let err = stranger
        .list_cases(landsby_testkit::authed(
            &landsby_testkit::caseworker(),
            pb::ListCasesRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");

    // Load: eight clients writing and reading as fast as they can, each noting when and how each
    // call ended.
    let token = landsby_testkit::caseworker();
    let started = std::time::Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let mut client = pb::case_service_client::CaseServiceClient::new(process.channel());
        let token = token.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let request = landsby_testkit::authed(
                    &token,
                    pb::CreateCaseRequest {
                        request_id: String::new(),
                        case: Some(new_case()),
                    },
                );
                let result = client.create_case(request).await.map(|_| ());
                outcomes.push((started.elapsed(), result.map_err(|e| e.code())));
                if outcomes.last().is_some_and(|(_, r)| r.is_err()) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let term = started.elapsed();
    process.spawned.signal("TERM");
    // Readiness flips first: the probe sees NOT_SERVING at once, liveness stays SERVING.
    let flip_by = tokio::time::Instant::now() + Duration::from_secs(1);
    while probe(health, "").await != Some(ServingStatus::NotServing) {
        assert!(
            tokio::time::Instant::now() < flip_by,
            "readiness did not flip within 1 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flipped = started.elapsed();
    assert_eq!(
        probe(health, "liveness").await,
        Some(ServingStatus::Serving)
    );

    let (status, _) = process
        .spawned
        .wait_exit(TERMINATION_GRACE_PERIOD)
        .expect("the process exits within the pod's termination grace period");
    let exited = started.elapsed();
    assert!(status.success(), "{status:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut before = 0;
    let mut during_delay = 0;
    let mut refused_after = 0;
    let mut answered_between = 0;
    for task in load {
        for (at, outcome) in task.await.unwrap() {
            match outcome {
                Ok(()) if at <= term => before += 1,
                Ok(()) if at > flipped => during_delay += 1,
                Ok(()) => answered_between += 1,
                // Once the server stops accepting (after the delay), a new call finds no server
                // (UNAVAILABLE) or is dropped by the client before it is sent, as the connection
                // closes (CANCELLED); that is all a caller may see, and never before the delay is
                // over. The count below shows none of them ran.
                Err(code) => {
                    assert!(
                        matches!(code, Code::Unavailable | Code::Cancelled),
                        "a call failed with {code:?} at {at:?}"
                    );
                    assert!(
                        at >= term + Duration::from_millis(1900),
                        "a call was refused {:?} after SIGTERM, inside the 2 s delay",
                        at - term
                    );
                    refused_after += 1;
                }
            }
        }
    }
    assert!(before > 0, "the load ran before SIGTERM");
    // Every case written was answered, and every answered case was written: nothing in flight was
    // cut off or lost.
    use sqlx::Connection;
    let mut db =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", process.db_file.display()))
            .await
            .unwrap();
    let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let answered = before + during_delay + answered_between;
    assert_eq!(written, answered as i64, "{refused_after} refused");
    assert!(
        during_delay > 0,
        "calls were still answered after readiness flipped ({before} before, {refused_after} refused after)"
    );
    assert!(exited < term + TERMINATION_GRACE_PERIOD);
    // The health port is gone with the process.
    assert_eq!(probe(health, "liveness").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_lets_in_flight_requests_finish_and_exits_cleanly() {
    let mut process = Process::start("10s");
    process.wait_serving().await;
    let token = landsby_testkit::caseworker();

    // A health watcher sees the server turn NOT_SERVING when the drain begins.
    let mut health = tonic_health::pb::health_client::HealthClient::new(process.channel());
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    let lock = process.lock().await;
    let client = pb::case_service_client::CaseServiceClient::new(process.channel());
    let mut burst = Vec::new();
    for _ in 0..20 {
        let mut client = client.clone();
        let req = landsby_testkit::authed(
            &token,
            pb::CreateCaseRequest {
                request_id: String::new(),
                case: Some(new_case()),
            },
        );
        burst.push(tokio::spawn(async move { client.create_case(req).await }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.spawned.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status.status, ServingStatus::NotServing as i32);
    drop(watch);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(lock); // the in-flight requests can now write

    let mut ok = 0;
    for call in burst {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => panic!("an in-flight request failed during the drain: {e:?}"),
        }
    }
    assert_eq!(ok, 20);
    let (status, _) = process
        .spawned
        .wait_exit(Duration::from_secs(15))
        .expect("the process exits after the drain");
    assert!(status.success(), "{status:?}");
    // Nothing listens any more.
    let mut late = pb::case_service_client::CaseServiceClient::new(process.channel());
    let err = late
        .list_cases(landsby_testkit::authed(
            &token,
            pb::ListCasesRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_even_when_requests_hang() {
    let mut process = Process::start("1s");
    process.wait_serving().await;
    let token = landsby_testkit::caseworker();
    let lock = process.lock().await;
    let mut client = pb::case_service_client::CaseServiceClient::new(process.channel());
    let req = landsby_testkit::authed(
        &token,
        pb::CreateCaseRequest {
            request_id: String::new(),
            case: Some(new_case()),
        },
    );
    let hung = tokio::spawn(async move { client.create_case(req).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    process.spawned.signal("TERM");
    let (status, took) = process
        .spawned
        .wait_exit(Duration::from_secs(4))
        .expect("exits within the grace bound, not when the request ends");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(4));
    assert!(
        hung.await.unwrap().is_err(),
        "the hung request was cut off, not answered"
    );
    drop(lock);
}

#[test]
fn the_binary_refuses_to_start_without_a_way_to_verify_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_landsby-case"))
        .env_clear()
        .env("LANDSBY_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth.issuer"), "{stderr}");
}

#[test]
fn the_binary_refuses_to_start_without_mutual_tls_outside_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_landsby-case"))
        .env_clear()
        .env("LANDSBY_DATA_DIR", dir.path())
        .env("LANDSBY_CASE__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_AUTH__ISSUER", landsby_testkit::TEST_ISSUER)
        .env(
            "LANDSBY_AUTH__PUBLIC_KEY_FILES",
            format!("[\"{}\"]", keys().public_key_file().display()),
        )
        .envs(landsby_testkit::personal_data_env())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tls.cert_file"), "{stderr}");
}

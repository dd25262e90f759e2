//! Mutual TLS at a real case service (crates/platform/src/tls.rs): a caller without a certificate,
//! with one from a foreign CA, an expired one, one that names no identity of the trust domain, and a
//! landsby process calling what it does not need are refused, and nothing they send reaches the
//! service; a server with a foreign certificate is refused by its callers. Certificates are made here
//! (crates/testkit/src/pki.rs). Transport only, so SQLite alone.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::case::{self as pb, case_service_client::CaseServiceClient};
use landsby_testkit::audit::audit_rows;
use landsby_testkit::pki::{self, Credentials, Validity, foreign_pki, pki, tls_channel};
use landsby_testkit::{AGENCY, Backend, TestDb, TestServer, authed, keys};
use tonic::Code;

async fn get_case(
    server: &TestServer,
    credentials: Option<&Credentials>,
    token: &str,
    id: &str,
) -> Result<pb::Case, tonic::Status> {
    let mut client = CaseServiceClient::new(tls_channel(server.addr, credentials));
    let req = authed(
        token,
        pb::GetCaseRequest {
            case_id: id.into(),
            ..Default::default()
        },
    );
    Ok(client.get_case(req).await?.into_inner().case.expect("case"))
}

#[tokio::test]
async fn callers_without_a_good_certificate_are_refused_before_anything_is_read() {
    let server = TestServer::start(landsby_case::SERVICE, Backend::Sqlite).await;
    let id = Client::caseworker(&server)
        .create(new_case())
        .await
        .unwrap()
        .id;
    let token = keys().token("caseworker-1", AGENCY, &[Role::Caseworker]);
    let rows = audit_rows(&server).await.len();

    // The control: the tests' platform certificate gets through.
    let platform = pki::test_platform();
    assert_eq!(
        get_case(&server, Some(platform), &token, &id)
            .await
            .unwrap()
            .id,
        id
    );
    let rows = rows + 1;

    // Refused in the handshake: no certificate, a foreign CA's, an expired one.
    let foreign = foreign_pki().issue(Some(pki::TEST_PLATFORM), Validity::Current);
    let expired = pki().issue(Some(pki::TEST_PLATFORM), Validity::Expired);
    for (what, credentials) in [
        ("no certificate", None),
        ("a foreign CA", Some(&foreign)),
        ("an expired certificate", Some(&expired)),
    ] {
        let err = get_case(&server, credentials, &token, &id)
            .await
            .expect_err(what);
        assert!(
            matches!(err.code(), Code::Unavailable | Code::Unknown),
            "{what}: {err:?}"
        );
        // Health, outside authentication, is refused too: no TLS connection at all.
        let channel = tls_channel(server.addr, credentials);
        assert_eq!(landsby_testkit::health(&channel).await, None, "{what}");
    }
    // Plain text at a TLS port.
    let plain = landsby_testkit::plain_channel(server.addr);
    assert_eq!(landsby_testkit::health(&plain).await, None);

    // Our CA, but no identity of the trust domain: UNAUTHENTICATED.
    for (what, path) in [
        ("no SPIFFE ID", None),
        (
            "another trust domain",
            Some("spiffe://elsewhere/landsby/worker"),
        ),
        ("an unknown landsby process", Some("landsby/admin")),
    ] {
        let credentials = pki().issue(path, Validity::Current);
        let err = get_case(&server, Some(&credentials), &token, &id)
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        assert!(
            err.message().contains("certificate"),
            "{what}: {}",
            err.message()
        );
    }

    // Nothing of these reached the service: no audit row beyond the control's.
    assert_eq!(audit_rows(&server).await.len(), rows);
}

#[tokio::test]
async fn landsby_processes_may_call_only_the_rpcs_they_need() {
    let server = TestServer::start(landsby_case::SERVICE, Backend::Sqlite).await;
    let id = Client::caseworker(&server)
        .create(new_case())
        .await
        .unwrap()
        .id;
    let caseworker = keys().token("caseworker-1", AGENCY, &[Role::Caseworker]);
    let service = keys().token("landsby-worker", AGENCY, &[Role::Service]);
    let identity = |name: &str| pki().issue(Some(&format!("landsby/{name}")), Validity::Current);
    let (worker, visitation, case, notification) = (
        identity("worker"),
        identity("visitation"),
        identity("case"),
        identity("notification"),
    );

    // The worker lists cases with its token; it may not create one, nor read a case one by one.
    let mut as_worker = CaseServiceClient::new(tls_channel(server.addr, Some(&worker)));
    let listed = as_worker
        .list_cases(authed(
            &service,
            pb::ListCasesRequest {
                page_size: 10,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.cases.len(), 1);
    let err = as_worker
        .create_case(authed(
            &caseworker,
            pb::CreateCaseRequest {
                request_id: String::new(),
                case: Some(new_case()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("landsby/worker"),
        "{}",
        err.message()
    );
    let err = get_case(&server, Some(&worker), &service, &id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // The visitation service reads a case on its caller's behalf, and changes none.
    assert_eq!(
        get_case(&server, Some(&visitation), &caseworker, &id)
            .await
            .unwrap()
            .id,
        id
    );
    let mut as_visitation = CaseServiceClient::new(tls_channel(server.addr, Some(&visitation)));
    let err = as_visitation
        .close_case(authed(
            &caseworker,
            pb::CloseCaseRequest {
                case_id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // The notification service asks whether its caller may open a case, and does nothing else;
    // the case service calls no one.
    assert_eq!(
        get_case(&server, Some(&notification), &caseworker, &id)
            .await
            .unwrap()
            .id,
        id
    );
    let mut as_notification = CaseServiceClient::new(tls_channel(server.addr, Some(&notification)));
    let err = as_notification
        .list_cases(authed(&caseworker, pb::ListCasesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = get_case(&server, Some(&case), &caseworker, &id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // The case is as it was.
    let now = Client::caseworker(&server).get(&id).await.unwrap();
    assert_eq!(now.status, pb::CaseStatus::Open as i32);
}

#[tokio::test]
async fn a_server_with_a_certificate_from_a_foreign_ca_is_refused_by_its_callers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let foreign = foreign_pki().issue(Some("landsby/case"), Validity::Current);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &foreign.cert_pem).unwrap();
    std::fs::write(&key, &foreign.key_pem).unwrap();
    let server = TestServer::start_with(landsby_case::SERVICE, db, |c| {
        c.tls.cert_file = cert;
        c.tls.key_file = key;
    })
    .await;
    // Our clients trust only the tests' CA: no connection, health never answers.
    assert_eq!(server.health().await, None);
    let token = keys().token("caseworker-1", AGENCY, &[Role::Caseworker]);
    let err = get_case(&server, Some(pki::test_platform()), &token, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Unknown),
        "{err:?}"
    );
}

//! The audit log on SQLite and PostgreSQL: its hash chain (rows made by real calls are sealed in id
//! order, and a row changed, removed, moved or slipped in is found by its id) and the audit service
//! through gRPC (the auditor's lists and a child's access log).

use crate::support::*;
use landsby_platform::audit_chain::{Problem, seal, verify};
use landsby_platform::db::DbPool;
use landsby_testkit::{Backend, TestServer};

landsby_testkit::on_both_backends!(
    the_chain_finds_a_changed_removed_moved_or_slipped_in_row,
    auditors_list_the_log_by_case_person_caller_and_time_and_hand_out_a_childs_access_log,
);

async fn exec(server: &TestServer, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match server.db.pool() {
        DbPool::Postgres(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
        DbPool::Sqlite(p) => {
            sqlx::query(sql).execute(&p).await.unwrap();
        }
    }
}

/// Gives row `from` the id `to`, as someone with the owner's rights could.
async fn move_row(server: &TestServer, backend: Backend, from: i64, to: i64) {
    match backend {
        Backend::Postgres => {
            let columns = "occurred_at, actor_subject, actor_agency, actor_roles, rpc, case_id, \
                resource_ids, outcome, break_glass";
            exec(
                server,
                &format!(
                    "INSERT INTO audit_log (id, {columns}) OVERRIDING SYSTEM VALUE \
                     SELECT {to}, {columns} FROM audit_log WHERE id = {from}"
                ),
            )
            .await;
            exec(server, &format!("DELETE FROM audit_log WHERE id = {from}")).await;
        }
        Backend::Sqlite => {
            exec(
                server,
                &format!("UPDATE audit_log SET id = {to} WHERE id = {from}"),
            )
            .await;
        }
    }
}

async fn the_chain_finds_a_changed_removed_moved_or_slipped_in_row(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    for _ in 0..6 {
        cw.get(&case.id).await.unwrap();
    }
    let db = server.db.pool();
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);

    // Nothing sealed yet: every row is waiting, none is wrong.
    let report = verify(&db).await.unwrap();
    assert_eq!((report.rows, report.sealed, report.pending), (7, 0, 7));
    assert!(report.problems.is_empty() && report.head.is_none());
    // Rows younger than the cut are left for later; then all are sealed, once.
    assert_eq!(
        seal(&db, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(seal(&db, later).await.unwrap(), 7);
    assert_eq!(seal(&db, later).await.unwrap(), 0);
    let sealed = verify(&db).await.unwrap();
    assert_eq!((sealed.rows, sealed.sealed, sealed.pending), (7, 7, 0));
    assert!(sealed.problems.is_empty());
    let (head_id, head_hash) = sealed.head.clone().unwrap();
    assert_eq!(head_hash.len(), 64);
    // A new row waits for the next seal and is not a problem meanwhile.
    cw.get(&case.id).await.unwrap();
    assert_eq!(verify(&db).await.unwrap().pending, 1);

    // The log and its seals refuse changes; someone with the database's owner rights lifts that.
    assert!(
        landsby_testkit::audit::try_to_change_audit_log(&server)
            .await
            .is_err()
    );
    for sql in [
        "UPDATE audit_seals SET row_id = row_id + 1000",
        "DELETE FROM audit_seals",
    ] {
        let refused = match server.db.pool() {
            DbPool::Postgres(p) => sqlx::query(sql).execute(&p).await.is_err(),
            DbPool::Sqlite(p) => sqlx::query(sql).execute(&p).await.is_err(),
        };
        assert!(refused, "{sql}");
    }
    match backend {
        Backend::Postgres => exec(&server, "ALTER TABLE audit_log DISABLE TRIGGER USER").await,
        Backend::Sqlite => {
            exec(&server, "DROP TRIGGER audit_log_no_update").await;
            exec(&server, "DROP TRIGGER audit_log_no_delete").await;
        }
    }
    let first = head_id - 6;
    // Changed: an outcome rewritten.
    exec(
        &server,
        &format!(
            "UPDATE audit_log SET outcome = 'NOT_FOUND' WHERE id = {}",
            first + 2
        ),
    )
    .await;
    // Removed.
    exec(
        &server,
        &format!("DELETE FROM audit_log WHERE id = {}", first + 4),
    )
    .await;
    // Moved: a sealed row put in the removed one's place.
    move_row(&server, backend, first + 5, first + 4).await;
    // Slipped in: the row made after sealing, given an id before the chain's first.
    move_row(&server, backend, head_id + 1, 0).await;
    let report = verify(&db).await.unwrap();
    assert_eq!(
        report.problems,
        [
            Problem::Unsealed(0),
            Problem::Changed(first + 2),
            Problem::Changed(first + 4),
            Problem::Removed(first + 5),
        ],
        "{report:?}"
    );
    assert_eq!(report.head, sealed.head, "the head itself is unchanged");
    assert!(report.problems.iter().all(|p| !p.to_string().is_empty()));
}

async fn auditors_list_the_log_by_case_person_caller_and_time_and_hand_out_a_childs_access_log(
    backend: Backend,
) {
    use landsby_domain::Role;
    use landsby_proto::audit::{self as apb, audit_service_client::AuditServiceClient};
    use landsby_proto::case as pb;
    use landsby_testkit::{AGENCY, OTHER_AGENCY, authed, keys};
    use tonic::Code;

    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    cw.get(&case.id).await.unwrap();
    // Another caseworker is refused, breaks the glass, reads.
    let mut c9 = Client::as_role(&server, "caseworker-9", AGENCY, &[Role::Caseworker]);
    assert_eq!(c9.get(&case.id).await.unwrap_err().code(), Code::NotFound);
    c9.inner
        .break_glass(c9.req(pb::BreakGlassRequest {
            case_id: case.id.clone(),
            reason: "Akutt: saksbehandler er syk".into(),
        }))
        .await
        .unwrap();
    c9.get(&case.id).await.unwrap();

    let auditor = keys().token("auditor-1", AGENCY, &[Role::Auditor]);
    let mut audit = AuditServiceClient::new(server.channel());
    let lister = audit.clone();
    let list = |req: apb::ListAuditEventsRequest| {
        let mut audit = lister.clone();
        let token = auditor.clone();
        async move { audit.list_audit_events(authed(&token, req)).await }
    };
    let by_case = list(apb::ListAuditEventsRequest {
        case_id: case.id.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    let rpcs: Vec<(&str, &str, &str, bool)> = by_case
        .events
        .iter()
        .map(|e| {
            (
                e.subject.as_str(),
                e.rpc.rsplit('/').next().unwrap_or(""),
                e.outcome.as_str(),
                e.break_glass,
            )
        })
        .collect();
    assert_eq!(
        rpcs,
        [
            ("caseworker-1", "CreateCase", "OK", false),
            ("caseworker-1", "AddVillageMember", "OK", false),
            ("caseworker-1", "GetCase", "OK", false),
            ("caseworker-9", "GetCase", "NOT_FOUND", false),
            ("caseworker-9", "BreakGlass", "OK", true),
            ("caseworker-9", "GetCase", "OK", true),
        ]
    );
    assert!(by_case.events.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(by_case.events[0].roles, ["caseworker"]);
    // By person: the calls that named the mother.
    let by_person = list(apb::ListAuditEventsRequest {
        resource_id: mum.id.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(by_person.events.len(), 1);
    assert_eq!(
        by_person.events[0].resource_ids,
        std::slice::from_ref(&mum.id)
    );
    // By caller, and emergency access only.
    let of_c9 = |break_glass_only| apb::ListAuditEventsRequest {
        subject: "caseworker-9".into(),
        break_glass_only,
        ..Default::default()
    };
    assert_eq!(
        list(of_c9(false)).await.unwrap().into_inner().events.len(),
        3
    );
    assert_eq!(
        list(of_c9(true)).await.unwrap().into_inner().events.len(),
        2
    );
    // By time: nothing from the future on; all of it before then.
    let later = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 60,
        nanos: 0,
    };
    let from_later = list(apb::ListAuditEventsRequest {
        case_id: case.id.clone(),
        start_time: Some(later),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(from_later.events.is_empty());
    let before_later = list(apb::ListAuditEventsRequest {
        case_id: case.id.clone(),
        end_time: Some(later),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    // The auditor's own reads of this case's rows are rows about the case too.
    let staff =
        |events: &[apb::AuditEvent]| events.iter().filter(|e| e.subject != "auditor-1").count();
    assert_eq!(staff(&before_later.events), 6);
    assert_eq!(
        before_later.events.len(),
        8,
        "two reads by the auditor so far"
    );
    // A page at a time, each row once.
    let of_c1 = |page_token: String| apb::ListAuditEventsRequest {
        subject: "caseworker-1".into(),
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let first = list(of_c1(String::new())).await.unwrap().into_inner();
    let second = list(of_c1(first.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.events.len(), second.events.len()), (2, 1));
    assert!(second.next_page_token.is_empty());
    assert_eq!(second.events[0].id, by_case.events[2].id);

    // The child's access log: who looked, when, and under emergency access; no refusals.
    let access = audit
        .list_case_access(authed(
            &auditor,
            apb::ListCaseAccessRequest {
                case_id: case.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(staff(&access.events), 5);
    assert!(access.events.iter().all(|e| e.outcome == "OK"));
    assert_eq!(access.events.iter().filter(|e| e.break_glass).count(), 2);

    // Bad input names every field; a time range must not be empty.
    let err = list(apb::ListAuditEventsRequest {
        page_size: -1,
        case_id: "x".into(),
        resource_id: "y".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["page_size", "case_id", "resource_id"]
    );
    let err = list(apb::ListAuditEventsRequest {
        start_time: Some(later),
        end_time: Some(later),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["end_time"]);
    let err = audit
        .list_case_access(authed(&auditor, apb::ListCaseAccessRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["case_id"]);
    // Auditors only; another agency's auditor sees none of these rows.
    for role in [
        Role::Caseworker,
        Role::TeamLead,
        Role::AgencyAdmin,
        Role::Service,
    ] {
        let err = audit
            .list_audit_events(authed(
                &keys().token("someone", AGENCY, &[role]),
                apb::ListAuditEventsRequest::default(),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }
    let bergen = audit
        .list_audit_events(authed(
            &keys().token("auditor-2", OTHER_AGENCY, &[Role::Auditor]),
            apb::ListAuditEventsRequest {
                case_id: case.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(bergen.events.is_empty());
    // The auditor's own reads are in the log too.
    let own = list(apb::ListAuditEventsRequest {
        subject: "auditor-1".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(
        own.events
            .iter()
            .any(|e| e.rpc == "landsby.audit.v1.AuditService/ListCaseAccess")
    );
}

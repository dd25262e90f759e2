//! Need to know in the notification service, with a real case service beside it (both databases):
//! staff send, read and list the notifications of the cases they may open, and of no other — those
//! answer NOT_FOUND as if they were not there, and nothing is stored; another recipient's inbox shows
//! only the entries of cases the caller may open, one's own inbox all of it; staff mark only their
//! own inbox read; the worker is not asked about; with the case service away, staff get UNAVAILABLE,
//! never someone else's notification.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::notification as pb;
use landsby_testkit::case::{Client as CaseClient, new_case, others_case};
use landsby_testkit::{AGENCY, Backend, TestServer, eventually, keys};
use std::time::Duration;
use tonic::Code;

landsby_testkit::on_both_backends!(
    staff_see_the_notifications_of_the_cases_they_may_open_and_no_other,
);

fn to_staff(key: &str, case_id: &str, subject: &str) -> pb::SendNotificationRequest {
    pb::SendNotificationRequest {
        idempotency_key: key.into(),
        case_id: case_id.into(),
        recipient: Some(pb::Recipient {
            staff_subject: subject.into(),
            ..Default::default()
        }),
        kind: "review_overdue".into(),
        parameters: params(&[("due", "2027-03-01"), ("review", "trinnvurdering")]),
        protection: None,
    }
}

fn on_case(key: &str, case_id: &str) -> pb::SendNotificationRequest {
    pb::SendNotificationRequest {
        case_id: case_id.into(),
        ..visit_scheduled(key, mother())
    }
}

fn inbox_ids(r: pb::ListInboxResponse) -> Vec<String> {
    let mut ids: Vec<String> = r.items.into_iter().map(|i| i.notification_id).collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    v.sort();
    v
}

async fn staff_see_the_notifications_of_the_cases_they_may_open_and_no_other(backend: Backend) {
    let case_server = TestServer::start(landsby_case::SERVICE, backend).await;
    let mut cases = CaseClient::caseworker(&case_server);
    // Case A: caseworker-1's, team-1. Case B: caseworker-2's, team-2.
    let a = cases.create(new_case()).await.unwrap().id;
    let b = cases.create(others_case()).await.unwrap().id;
    let url = format!("https://{}", case_server.addr);
    let server = server(backend, |c| c.endpoints.case = url).await;

    // The worker sends on both cases, asked about by no one.
    let mut worker = Client::worker(&server);
    let na = worker.send(on_case("a-1", &a)).await.unwrap();
    let nb = worker.send(on_case("b-1", &b)).await.unwrap();
    let to_me = worker
        .send(to_staff("b-2", &b, "caseworker-1"))
        .await
        .unwrap();
    for n in [&na, &nb, &to_me] {
        worker.settled(&n.id, Duration::from_secs(10)).await;
    }
    let of_b = pb::ListNotificationsRequest {
        case_id: b.clone(),
        page_size: 100,
        ..Default::default()
    };
    // caseworker-2 counts case B's notifications (the worker lists none).
    let mut owner_b = Client::as_role(&server, "caseworker-2", AGENCY, &[Role::Caseworker]);
    let stored_on_b = owner_b
        .list(of_b.clone())
        .await
        .unwrap()
        .notifications
        .len();

    let mut cw = Client::caseworker(&server);
    // Send: on my case, yes; on another's, NOT_FOUND before anything else is looked at, and
    // nothing stored.
    cw.send(on_case("cw-a", &a)).await.unwrap();
    let err = cw.send(on_case("cw-b", &b)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut broken = on_case("", &b);
    broken.kind = "nope".into();
    assert_eq!(cw.send(broken).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        owner_b
            .list(of_b.clone())
            .await
            .unwrap()
            .notifications
            .len(),
        stored_on_b
    );

    // Get: mine, yes; another case's answers as a notification that does not exist.
    assert_eq!(cw.get(&na.id).await.unwrap().id, na.id);
    let hidden = cw.get(&nb.id).await.unwrap_err();
    let missing = cw.get(&uuid::Uuid::now_v7().to_string()).await.unwrap_err();
    assert_eq!(
        (hidden.code(), hidden.message(), hidden.details()),
        (missing.code(), missing.message(), missing.details())
    );

    // List: one case at a time, and only mine.
    let err = cw
        .list(pb::ListNotificationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["case_id"]);
    let listed = cw
        .list(pb::ListNotificationsRequest {
            case_id: a.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.notifications.iter().all(|n| n.case_id == a));
    assert_eq!(
        cw.list(of_b.clone()).await.unwrap_err().code(),
        Code::NotFound
    );

    // The mother's inbox: only the entries of my case; my own inbox: all of it.
    let mine = eventually!("caseworker-1's notice on case A in the inbox", {
        let ids = inbox_ids(cw.inbox(MOTHER).await.unwrap());
        (ids.len() == 2).then_some(ids)
    });
    assert!(!mine.contains(&nb.id), "{mine:?}");
    assert!(mine.contains(&na.id));
    assert_eq!(
        inbox_ids(cw.inbox("caseworker-1").await.unwrap()),
        sorted(&[&to_me.id])
    );
    // Marking: my own inbox, not the mother's (her portal marks hers).
    let mark = |c: &Client, recipient: &str, id: &str| {
        c.req(pb::MarkInboxReadRequest {
            recipient_id: recipient.into(),
            notification_ids: vec![id.into()],
        })
    };
    let err = cw
        .inner
        .mark_inbox_read(mark(&cw, MOTHER, &na.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let marked = cw
        .inner
        .mark_inbox_read(mark(&cw, "caseworker-1", &to_me.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marked, 1);

    // caseworker-2 sees case B's, not A's; the lead of team-1 A's, not B's.
    let mut cw2 = Client::as_role(&server, "caseworker-2", AGENCY, &[Role::Caseworker]);
    assert_eq!(cw2.get(&na.id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(cw2.get(&nb.id).await.unwrap().id, nb.id);
    assert!(
        !inbox_ids(cw2.inbox(MOTHER).await.unwrap()).contains(&na.id),
        "caseworker-2 sees case A's entry"
    );
    let mut lead = Client::as_role(&server, "team-lead-1", AGENCY, &[Role::TeamLead]);
    assert_eq!(lead.get(&na.id).await.unwrap().id, na.id);
    assert_eq!(lead.get(&nb.id).await.unwrap_err().code(), Code::NotFound);
    let mut lead2 = Client {
        token: keys().token_in("team-lead-2", AGENCY, &[Role::TeamLead], &["team-2"]),
        ..Client::worker(&server)
    };
    assert_eq!(lead2.get(&nb.id).await.unwrap().id, nb.id);

    // Every refusal left its audit row; the case service audited each look on the caller's behalf.
    let rows = landsby_testkit::audit::audit_rows(&server).await;
    let refused = rows
        .iter()
        .filter(|r| r.outcome == "NOT_FOUND" && r.subject != "landsby-worker")
        .count();
    assert!(refused >= 6, "{refused} refusals audited");
    let looked = landsby_testkit::audit::audit_rows(&case_server).await;
    assert!(looked.iter().any(|r| r.subject == "caseworker-1"
        && r.rpc.ends_with("/GetCase")
        && r.outcome == "NOT_FOUND"));

    // The case service away: staff get UNAVAILABLE, the worker goes on.
    case_server.stop().await;
    let err = cw.get(&na.id).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(worker.get(&na.id).await.unwrap().id, na.id);
}

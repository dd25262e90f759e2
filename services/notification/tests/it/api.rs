//! The notification service through its gRPC API on both databases: templates in the recipient's
//! language, idempotency keys, the inbox, preferences, bad input, roles, and the secret address.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::common;
use landsby_proto::notification as pb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY};
use std::time::Duration;
use tonic::Code;

landsby_testkit::on_both_backends!(
    a_notification_is_written_in_the_recipients_language_and_reaches_the_inbox_once,
    bad_input_is_refused_with_field_details_and_stores_nothing,
    a_secret_address_reaches_no_parent_side_recipient_whatever_the_caller_sends,
    preferences_are_the_defaults_until_set_and_then_need_their_etag,
    the_inbox_is_read_and_marked_read_by_recipient,
    roles_without_access_and_other_agencies_see_nothing,
    a_batch_is_accepted_item_by_item_in_one_call_and_refused_whole_for_bad_input,
);

async fn a_notification_is_written_in_the_recipients_language_and_reaches_the_inbox_once(
    backend: Backend,
) {
    // Listing is for staff, who need a case they may open.
    let (server, _cases, case) = server_and_case(backend, |_| {}).await;
    let mut cw = Client::worker(&server);
    let mut staff = Client::caseworker(&server);
    let first = cw
        .send(on(&case, visit_scheduled("k-1", mother())))
        .await
        .unwrap();
    assert_eq!(first.language(), common::Language::Nn);
    assert_eq!(first.kind, "visit_scheduled");
    assert!(first.body.contains("kl. 17.00"), "{}", first.body);
    assert!(!first.redacted);
    // No channel is configured here: the inbox only.
    let channels: Vec<pb::Channel> = first.deliveries.iter().map(|d| d.channel()).collect();
    assert_eq!(channels, [pb::Channel::Inbox]);
    let settled = cw.settled(&first.id, Duration::from_secs(10)).await;
    assert_eq!(settled.status(), pb::NotificationStatus::Delivered);
    let inbox_delivery = &settled.deliveries[0];
    assert_eq!(inbox_delivery.status(), pb::DeliveryStatus::Delivered);
    assert_eq!(inbox_delivery.attempts.len(), 1);
    assert!(inbox_delivery.attempts[0].ok);
    // The same key again: the first notification, and no second delivery.
    let again = cw
        .send(on(&case, visit_scheduled("k-1", mother())))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    // A retry built a little differently is still the same request: an empty protection for none,
    // an address with spaces around it.
    let mut rebuilt = on(&case, visit_scheduled("k-1", mother()));
    rebuilt.protection = Some(pb::CaseProtection::default());
    rebuilt.recipient.as_mut().unwrap().contact_points[0].value = " mor@example.no ".into();
    assert_eq!(cw.send(rebuilt).await.unwrap().id, first.id);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let inbox = cw.inbox(MOTHER).await.unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].notification_id, first.id);
    assert_eq!(inbox.items[0].body, first.body);
    // The same key with another request is refused.
    let mut other = on(&case, visit_scheduled("k-1", mother()));
    other.parameters = params(&[
        ("start", "2027-03-09T16:00:00Z"),
        ("duration_minutes", "90"),
        ("place", "Biblioteket"),
    ]);
    assert_eq!(
        violated_fields(&cw.send(other).await.unwrap_err()),
        ["idempotency_key"]
    );
    // Staff without a language get Bokmål; the team lead hears of an overdue review.
    let lead = cw
        .send(pb::SendNotificationRequest {
            idempotency_key: "k-2".into(),
            case_id: case.clone(),
            recipient: Some(pb::Recipient {
                staff_subject: "teamlead-1".into(),
                ..Default::default()
            }),
            kind: "review_overdue".into(),
            parameters: params(&[("due", "2027-03-01"), ("review", "trinnvurdering")]),
            protection: None,
        })
        .await
        .unwrap();
    assert_eq!(lead.language(), common::Language::Nb);
    assert!(lead.body.contains("1. mars 2027"), "{}", lead.body);
    let listed = staff
        .list(pb::ListNotificationsRequest {
            case_id: case.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.notifications.len(), 1);
    assert_eq!(listed.notifications[0].id, lead.id, "newest first");
    let rest = staff
        .list(pb::ListNotificationsRequest {
            case_id: case.clone(),
            page_size: 1,
            page_token: listed.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.notifications[0].id, first.id);
    assert!(rest.next_page_token.is_empty());
}

async fn bad_input_is_refused_with_field_details_and_stores_nothing(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let mut cw = Client::worker(&server);
    let err = cw
        .send(pb::SendNotificationRequest {
            idempotency_key: String::new(),
            case_id: "not-a-case".into(),
            recipient: Some(pb::Recipient {
                member_id: "x".into(),
                staff_subject: "y".into(),
                contact_points: vec![email("not-an-address"), phone("123")],
                language: 99,
                ..Default::default()
            }),
            kind: "telegram".into(),
            parameters: params(&[]),
            protection: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        [
            "case_id",
            "idempotency_key",
            "recipient.member_id",
            "recipient.contact_points[0].value",
            "recipient.contact_points[1].value",
            "recipient.language",
            "kind"
        ]
    );
    // A known kind: its parameters are checked, every problem at once.
    let mut missing = visit_scheduled("k-9", mother());
    missing.parameters = params(&[("start", "tomorrow"), ("colour", "blue")]);
    let err = cw.send(missing).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "parameters.start",
            "parameters.duration_minutes",
            "parameters.place",
            "parameters"
        ]
    );
    let mut no_recipient = visit_scheduled("k-9", mother());
    no_recipient.recipient = None;
    assert_eq!(
        violated_fields(&cw.send(no_recipient).await.unwrap_err()),
        ["recipient"]
    );
    assert!(
        cw.inbox(MOTHER).await.unwrap().items.is_empty(),
        "nothing was stored"
    );
    assert_eq!(
        violated_fields(&cw.get("nope").await.unwrap_err()),
        ["notification_id"]
    );
    // Listing is for staff; its input is checked before any case is asked about.
    let mut staff = Client::caseworker(&server);
    let err = staff
        .list(pb::ListNotificationsRequest {
            page_size: -1,
            case_id: "x".into(),
            status: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size", "case_id", "status"]);
}

/// The letters and digits of `s`, lower-cased: how a leak is looked for, whatever its spacing.
fn squashed(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

async fn a_secret_address_reaches_no_parent_side_recipient_whatever_the_caller_sends(
    backend: Backend,
) {
    const CANARY: &str = "Kanarigata 17B, 9999 Fuglevik";
    const FOSTER_PHONE: &str = "+47 481 23 456";
    let server = server(backend, |_| {}).await;
    let mut cw = Client::worker(&server);
    let protection = Some(pb::CaseProtection {
        secret_address: true,
        protected_values: vec![CANARY.into(), FOSTER_PHONE.into()],
    });
    // The caller puts the address in a free text, written its own way, and a phone number.
    let free = cw
        .send(pb::SendNotificationRequest {
            idempotency_key: "canary-1".into(),
            case_id: CASE.into(),
            recipient: Some(mother()),
            kind: "free_text".into(),
            parameters: params(&[
                ("subject", "Samvær i KANARIGATA 17 b"),
                (
                    "body",
                    "Vi møtes i kanarigata  17B,\n9999 fuglevik. Ring fosterforeldrene på 481 23 456.",
                ),
            ]),
            protection: protection.clone(),
        })
        .await
        .unwrap();
    assert!(free.redacted);
    // A place parameter with the address, from a caller that sends no protection this time: the
    // case's protection is remembered.
    let mut place = visit_scheduled("canary-2", mother());
    place
        .parameters
        .insert("place".into(), format!("Fosterhjemmet, {CANARY}"));
    let placed = cw.send(place).await.unwrap();
    assert!(placed.redacted);
    // The foster mother is on the foster side: she may read her own address.
    let mut to_foster = visit_scheduled("canary-3", foster_mother());
    to_foster
        .parameters
        .insert("place".into(), format!("Fosterhjemmet, {CANARY}"));
    let foster = cw.send(to_foster).await.unwrap();
    assert!(!foster.redacted);
    assert!(squashed(&foster.body).contains(&squashed(CANARY)));
    // A member whose side the caller did not give counts as the parents' side.
    let mut unknown = mother();
    unknown.member_id = "0195b7a4-0000-7000-8000-00000000a002".into();
    unknown.affiliation = 0;
    let mut to_unknown = visit_scheduled("canary-4", unknown);
    to_unknown
        .parameters
        .insert("place".into(), CANARY.to_owned());
    let unsure = cw.send(to_unknown).await.unwrap();
    assert!(unsure.redacted);

    cw.settled(&free.id, Duration::from_secs(10)).await;
    cw.settled(&placed.id, Duration::from_secs(10)).await;
    cw.settled(&unsure.id, Duration::from_secs(10)).await;
    let needles = [
        squashed("Kanarigata 17"),
        squashed("9999 Fuglevik"),
        squashed("48123456"),
    ];
    let mut seen = Vec::new();
    for id in [&free.id, &placed.id, &unsure.id] {
        let n = cw.get(id).await.unwrap();
        seen.push(format!("{} {}", n.subject, n.body));
    }
    // (Staff lists read the same stored text as these reads.)
    for recipient in [MOTHER, "0195b7a4-0000-7000-8000-00000000a002"] {
        for item in cw.inbox(recipient).await.unwrap().items {
            seen.push(format!("{} {}", item.subject, item.body));
        }
    }
    assert!(seen.len() >= 6, "{}", seen.len());
    for text in &seen {
        for needle in &needles {
            assert!(
                !squashed(text).contains(needle.as_str()),
                "the secret address reached a parent: {text}"
            );
        }
    }
    assert!(
        seen.iter().any(|t| t.contains("[skjerma]")),
        "withheld in the mother's Nynorsk"
    );
}

async fn preferences_are_the_defaults_until_set_and_then_need_their_etag(backend: Backend) {
    let server = server(backend, |c| {
        c.delivery.quiet_from = "21:00".into();
        c.delivery.quiet_until = "08:00".into();
    })
    .await;
    let mut cw = Client::worker(&server);
    let get = |cw: &Client| {
        cw.req(pb::GetPreferencesRequest {
            recipient_id: MOTHER.into(),
        })
    };
    let defaults = cw
        .inner
        .get_preferences(get(&cw))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(defaults.quiet_from.unwrap().hours, 21);
    assert_eq!(defaults.quiet_until.unwrap().hours, 8);
    assert!(defaults.etag.is_empty(), "not set yet");
    let wanted = pb::Preferences {
        recipient_id: MOTHER.into(),
        channels: vec![pb::Channel::Email.into()],
        language: common::Language::En.into(),
        quiet_from: Some(common::TimeOfDay {
            hours: 22,
            minutes: 0,
        }),
        quiet_until: Some(common::TimeOfDay {
            hours: 7,
            minutes: 30,
        }),
        etag: String::new(),
    };
    let set = |cw: &Client, p: pb::Preferences| {
        cw.req(pb::SetPreferencesRequest {
            preferences: Some(p),
        })
    };
    let stored = cw
        .inner
        .set_preferences(set(&cw, wanted.clone()))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert!(!stored.etag.is_empty());
    assert_eq!(stored.language(), common::Language::En);
    // Set once, the etag is required.
    let err = cw
        .inner
        .set_preferences(set(&cw, wanted.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let mut next = stored.clone();
    next.channels = vec![pb::Channel::Sms.into(), pb::Channel::Inbox.into()];
    let again = cw
        .inner
        .set_preferences(set(&cw, next))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_ne!(again.etag, stored.etag);
    // The recipient's language wins over the sender's.
    let n = cw.send(visit_scheduled("p-1", mother())).await.unwrap();
    assert_eq!(n.language(), common::Language::En);
    assert!(n.body.contains("at 17:00"), "{}", n.body);
    // Bad input, all at once.
    let err = cw
        .inner
        .set_preferences(set(
            &cw,
            pb::Preferences {
                recipient_id: String::new(),
                channels: vec![99, pb::Channel::Sms.into(), pb::Channel::Sms.into()],
                language: 42,
                quiet_from: Some(common::TimeOfDay {
                    hours: 25,
                    minutes: 0,
                }),
                quiet_until: None,
                etag: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "preferences.recipient_id",
            "preferences.channels[0]",
            "preferences.channels[2]",
            "preferences.language",
            "preferences.quiet_from",
            "preferences.etag"
        ]
    );
}

async fn the_inbox_is_read_and_marked_read_by_recipient(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let mut cw = Client::worker(&server);
    let a = cw.send(visit_scheduled("i-1", mother())).await.unwrap();
    let b = cw
        .send(visit_scheduled("i-2", foster_mother()))
        .await
        .unwrap();
    cw.settled(&a.id, Duration::from_secs(10)).await;
    cw.settled(&b.id, Duration::from_secs(10)).await;
    let mark = |cw: &Client, recipient: &str, ids: Vec<String>| {
        cw.req(pb::MarkInboxReadRequest {
            recipient_id: recipient.into(),
            notification_ids: ids,
        })
    };
    // Another recipient's entry is not marked.
    let marked = cw
        .inner
        .mark_inbox_read(mark(&cw, MOTHER, vec![b.id.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marked, 0);
    let marked = cw
        .inner
        .mark_inbox_read(mark(&cw, MOTHER, vec![a.id.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marked, 1);
    let inbox = cw.inbox(MOTHER).await.unwrap();
    assert!(inbox.items[0].read_time.is_some());
    let unread = cw
        .inner
        .list_inbox(cw.req(pb::ListInboxRequest {
            recipient_id: MOTHER.into(),
            unread_only: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(unread.items.is_empty());
    assert_eq!(cw.inbox(FOSTER_MOTHER).await.unwrap().items.len(), 1);
    let err = cw
        .inner
        .mark_inbox_read(mark(&cw, "", vec!["nope".into()]))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["recipient_id", "notification_ids[0]"]
    );
    let err = cw
        .inner
        .mark_inbox_read(mark(&cw, MOTHER, vec![]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["notification_ids"]);
    let err = cw
        .inner
        .list_inbox(cw.req(pb::ListInboxRequest {
            recipient_id: String::new(),
            page_size: -1,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["recipient_id", "page_size"]);
    let err = cw
        .inner
        .get_preferences(cw.req(pb::GetPreferencesRequest {
            recipient_id: " ".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["recipient_id"]);
    // Another list's page token is refused.
    let err = cw
        .inner
        .list_inbox(cw.req(pb::ListInboxRequest {
            recipient_id: MOTHER.into(),
            page_token: "forged".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
}

async fn roles_without_access_and_other_agencies_see_nothing(backend: Backend) {
    let server = server(backend, |_| {}).await;
    let mut cw = Client::worker(&server);
    let n = cw.send(visit_scheduled("r-1", mother())).await.unwrap();
    cw.settled(&n.id, Duration::from_secs(10)).await;
    for role in [Role::AgencyAdmin, Role::Auditor] {
        let mut c = Client::as_role(&server, "someone", AGENCY, &[role]);
        assert_eq!(
            c.send(visit_scheduled("r-2", mother()))
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.get(&n.id).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.inbox(MOTHER).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.list(pb::ListNotificationsRequest::default())
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        let req = c.req(pb::MarkInboxReadRequest {
            recipient_id: MOTHER.into(),
            notification_ids: vec![n.id.clone()],
        });
        assert_eq!(
            c.inner.mark_inbox_read(req).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let req = c.req(pb::GetPreferencesRequest {
            recipient_id: MOTHER.into(),
        });
        assert_eq!(
            c.inner.get_preferences(req).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let req = c.req(pb::SetPreferencesRequest {
            preferences: Some(pb::Preferences {
                recipient_id: MOTHER.into(),
                ..Default::default()
            }),
        });
        assert_eq!(
            c.inner.set_preferences(req).await.unwrap_err().code(),
            Code::PermissionDenied
        );
    }
    // No token at all.
    let err = cw
        .inner
        .get_notification(pb::GetNotificationRequest {
            notification_id: n.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // The worker sends but reads nothing; a portal reads a recipient's notification.
    let mut worker = Client::as_role(&server, "landsby-worker", AGENCY, &[Role::Service]);
    assert_eq!(
        worker.get(&n.id).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker.inbox(MOTHER).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut portal = Client::as_role(&server, "oslo-portal", AGENCY, &[Role::Portal]);
    assert_eq!(portal.get(&n.id).await.unwrap().id, n.id);
    assert_eq!(portal.inbox(MOTHER).await.unwrap().items.len(), 1);
    assert_eq!(
        portal
            .send(visit_scheduled("r-3", mother()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut bergen = Client::as_role(&server, "cw", OTHER_AGENCY, &[Role::Caseworker]);
    assert_eq!(bergen.get(&n.id).await.unwrap_err().code(), Code::NotFound);
    assert!(bergen.inbox(MOTHER).await.unwrap().items.is_empty());
    // Bergen's worker may use the same key for its own notification.
    let mut bergen = Client::as_role(&server, "landsby-worker", OTHER_AGENCY, &[Role::Service]);
    let theirs = bergen.send(visit_scheduled("r-1", mother())).await.unwrap();
    assert_ne!(theirs.id, n.id);
    let rows = landsby_testkit::audit::audit_rows(&server).await;
    assert!(
        rows.iter()
            .any(|r| r.rpc.ends_with("NotificationService/SendNotification")
                && r.outcome == "PERMISSION_DENIED")
    );
    assert!(rows.iter().any(|r| {
        r.rpc.ends_with("NotificationService/SendNotification")
            && r.outcome == "OK"
            && r.resource_ids
                .contains(&uuid::Uuid::parse_str(&n.id).unwrap())
    }));
}

async fn a_batch_is_accepted_item_by_item_in_one_call_and_refused_whole_for_bad_input(
    backend: Backend,
) {
    let server = server(backend, |_| {}).await;
    let mut worker = Client::worker(&server);
    let first = worker
        .send(visit_scheduled("single-1", mother()))
        .await
        .unwrap();
    let mut lead = visit_scheduled("batch-2", mother());
    lead.recipient = Some(pb::Recipient {
        staff_subject: "teamlead-1".into(),
        ..Default::default()
    });
    lead.kind = "review_overdue".into();
    lead.parameters = params(&[("due", "2027-03-01"), ("review", "trinnvurdering")]);
    let mut used = visit_scheduled("single-1", mother());
    used.parameters = params(&[
        ("start", "2027-03-09T16:00:00Z"),
        ("duration_minutes", "90"),
        ("place", "Biblioteket"),
    ]);
    let audited = landsby_testkit::audit::audit_rows(&server).await.len();
    let results = worker
        .send_all(vec![
            visit_scheduled("batch-1", mother()),
            visit_scheduled("single-1", mother()),
            lead,
            used,
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    // New, in the recipient's language; the key sent before answers with its notification.
    let made = results[0].notification.as_ref().unwrap();
    assert!(results[0].created && !results[0].key_used);
    assert_eq!(made.language(), common::Language::Nn);
    assert_eq!(made.idempotency_key, "batch-1");
    let again = results[1].notification.as_ref().unwrap();
    assert!(!results[1].created && !results[1].key_used);
    assert_eq!(again.id, first.id);
    let to_lead = results[2].notification.as_ref().unwrap();
    assert!(results[2].created);
    assert_eq!(to_lead.language(), common::Language::Nb);
    assert!(to_lead.body.contains("1. mars 2027"), "{}", to_lead.body);
    // A key used for another notification: that item's answer, nothing made for it.
    assert!(results[3].key_used && !results[3].created);
    assert!(results[3].notification.is_none());
    // One audit row per item: made or found, and the refusal of the used key.
    let rows = landsby_testkit::audit::audit_rows(&server).await;
    let rows: Vec<_> = rows[audited..]
        .iter()
        .filter(|r| {
            r.rpc
                .ends_with("NotificationService/BatchSendNotifications")
        })
        .collect();
    let ok: Vec<_> = rows.iter().filter(|r| r.outcome == "OK").collect();
    assert_eq!(ok.len(), 3, "{rows:?}");
    for n in [made, again, to_lead] {
        let id = uuid::Uuid::parse_str(&n.id).unwrap();
        assert!(
            ok.iter().any(|r| r.resource_ids == [id]
                && r.case_id == Some(uuid::Uuid::parse_str(CASE).unwrap()))
        );
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.outcome == "INVALID_ARGUMENT")
            .count(),
        1
    );
    assert_eq!(stored_notifications(&server).await, 3);
    // The mother's inbox has the two made for her, once each.
    let inbox = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let inbox = worker.inbox(MOTHER).await.unwrap();
            if inbox.items.len() >= 2 {
                return inbox;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(inbox.items.len(), 2);

    // Bad input anywhere refuses the whole call, naming each item's fields; nothing is stored.
    let mut bad = visit_scheduled("batch-bad", mother());
    bad.case_id = "not-a-case".into();
    bad.kind = "telegram".into();
    let mut no_recipient = visit_scheduled("batch-bad-2", mother());
    no_recipient.recipient = None;
    let err = worker
        .send_all(vec![
            visit_scheduled("batch-good", mother()),
            bad,
            no_recipient,
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["items[1].case_id", "items[1].kind", "items[2].recipient"]
    );
    let none = worker.send_all(vec![]).await.unwrap_err();
    assert_eq!(violated_fields(&none), ["items"]);
    let many = (0..201)
        .map(|i| visit_scheduled(&format!("many-{i}"), mother()))
        .collect();
    assert_eq!(
        violated_fields(&worker.send_all(many).await.unwrap_err()),
        ["items"]
    );
    assert_eq!(
        stored_notifications(&server).await,
        3,
        "nothing more stored"
    );

    // Only the worker sends batches.
    let mut caseworker = Client::caseworker(&server);
    assert_eq!(
        caseworker
            .send_all(vec![visit_scheduled("batch-cw", mother())])
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

/// How many notifications the server's database holds.
async fn stored_notifications(server: &landsby_testkit::TestServer) -> i64 {
    const COUNT: &str = "SELECT COUNT(*) FROM notifications";
    match server.db.pool() {
        landsby_platform::db::DbPool::Postgres(p) => {
            sqlx::query_scalar(COUNT).fetch_one(&p).await.unwrap()
        }
        landsby_platform::db::DbPool::Sqlite(p) => {
            sqlx::query_scalar(COUNT).fetch_one(&p).await.unwrap()
        }
    }
}

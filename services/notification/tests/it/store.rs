//! The store's queue on both databases, where timing matters: deliveries of one notification that
//! finish at the same moment, and a lease that ends.

use chrono::{Duration, Utc};
use landsby_domain::{AgencyId, Language};
use landsby_notification::model::{
    Channel, DeliveryRecord, DeliveryStatus, NotificationRecord, NotificationStatus,
    RecipientRecord,
};
use landsby_notification::store::{self, Outcome, Store};
use landsby_platform::audit::AuditEntry;
use landsby_testkit::{Backend, TestDb};
use std::sync::Arc;
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    a_cases_protection_is_the_union_of_all_sends_and_each_message_is_written_with_it,
    deliveries_finishing_together_leave_their_notification_delivered,
    a_lease_that_ends_gives_the_delivery_to_the_next_sender_and_the_attempts_stay_bounded,
);

async fn open(backend: Backend) -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_notification::MIGRATIONS)
        .await
        .unwrap();
    (db, store::open(pool))
}

fn audit() -> AuditEntry {
    let caller = landsby_platform::Caller {
        subject: "caseworker-1".into(),
        agency: AgencyId::parse("0301").unwrap(),
        roles: vec![landsby_domain::Role::Caseworker],
        teams: vec![],
    };
    AuditEntry::new(
        &caller,
        "SendNotification",
        landsby_platform::validate::now(),
    )
}

fn written() -> store::Writer {
    Box::new(|_, _| Ok(("s".into(), "b".into(), false)))
}

fn notification(key: &str, channels: &[Channel]) -> NotificationRecord {
    let at = landsby_platform::validate::now();
    NotificationRecord {
        id: Uuid::now_v7(),
        agency: AgencyId::parse("0301").unwrap(),
        case_id: Uuid::now_v7(),
        idempotency_key: key.into(),
        fingerprint: key.into(),
        recipient: RecipientRecord {
            member_id: Some(Uuid::now_v7()),
            staff_subject: None,
            affiliation: None,
            emails: vec![],
            phones: vec![],
            language: None,
        },
        kind: "visit_reminder".into(),
        language: Language::Nb,
        subject: "s".into(),
        body: "b".into(),
        redacted: false,
        status: NotificationStatus::Pending,
        created_at: at,
        deliveries: channels
            .iter()
            .map(|&channel| DeliveryRecord {
                id: Uuid::now_v7(),
                channel,
                address: String::new(),
                status: DeliveryStatus::Pending,
                attempts: vec![],
                next_attempt_at: at,
                dead_reason: String::new(),
                delivered_at: None,
            })
            .collect(),
    }
}

async fn deliveries_finishing_together_leave_their_notification_delivered(backend: Backend) {
    let (_db, store) = open(backend).await;
    for round in 0..20 {
        let n = store
            .accept(
                notification(&format!("k-{round}"), &[Channel::Inbox, Channel::Webhook]),
                (false, vec![]),
                written(),
                audit(),
            )
            .await
            .unwrap();
        let now = Utc::now() + Duration::seconds(1);
        let taken = store
            .claim(now, now + Duration::minutes(1), 10, 8)
            .await
            .unwrap();
        assert_eq!(taken.len(), 2);
        let (a, b) = tokio::join!(
            store.finish(&taken[0], Outcome::Delivered, now),
            store.finish(&taken[1], Outcome::Delivered, now)
        );
        a.unwrap();
        b.unwrap();
        let read = store.get(&n.agency, n.id).await.unwrap().unwrap();
        assert_eq!(read.status, NotificationStatus::Delivered, "round {round}");
    }
}

async fn a_lease_that_ends_gives_the_delivery_to_the_next_sender_and_the_attempts_stay_bounded(
    backend: Backend,
) {
    let (_db, store) = open(backend).await;
    store
        .accept(
            notification("lease", &[Channel::Webhook]),
            (false, vec![]),
            written(),
            audit(),
        )
        .await
        .unwrap();
    let now = Utc::now() + Duration::seconds(1);
    let first = store
        .claim(now, now + Duration::seconds(30), 10, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    // The sender holding it is gone (killed): nobody else takes it while the lease runs...
    let during = now + Duration::seconds(10);
    assert!(
        store
            .claim(during, during + Duration::seconds(30), 10, 2)
            .await
            .unwrap()
            .is_empty()
    );
    // ...and the next sender takes it when the lease ends, as the second attempt.
    let after = now + Duration::seconds(31);
    let second = store
        .claim(after, after + Duration::seconds(30), 10, 2)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
    // The first sender comes back late: its word no longer counts.
    store
        .finish(&first[0], Outcome::Delivered, after)
        .await
        .unwrap();
    let n = &second[0].notification;
    let read = store.get(&n.agency, n.id).await.unwrap().unwrap();
    assert_eq!(read.deliveries[0].status, DeliveryStatus::Pending);
    assert!(read.deliveries[0].attempts.is_empty());
    // The second sender dies too: with both attempts used, the delivery is given up, not retried.
    let later = after + Duration::seconds(31);
    let third = store
        .claim(later, later + Duration::seconds(30), 10, 2)
        .await
        .unwrap();
    assert!(third.is_empty());
    let read = store.get(&n.agency, n.id).await.unwrap().unwrap();
    assert_eq!(read.deliveries[0].status, DeliveryStatus::Dead);
    assert!(
        read.deliveries[0]
            .dead_reason
            .starts_with("gave up after 2 attempts"),
        "{}",
        read.deliveries[0].dead_reason
    );
    assert_eq!(read.status, NotificationStatus::Failed);
}

/// What each writer was given: the secret flag and the protected values.
type Seen = Arc<std::sync::Mutex<Vec<(bool, Vec<String>)>>>;

async fn a_cases_protection_is_the_union_of_all_sends_and_each_message_is_written_with_it(
    backend: Backend,
) {
    let (_db, store) = open(backend).await;
    let seen: Seen = Arc::default();
    let recording = |seen: &Seen| -> store::Writer {
        let seen = seen.clone();
        Box::new(move |secret, values| {
            seen.lock().unwrap().push((secret, values.to_vec()));
            Ok(("s".into(), "b".into(), secret))
        })
    };
    let case = Uuid::now_v7();
    let for_case = |key: &str| {
        let mut n = notification(key, &[Channel::Inbox]);
        n.case_id = case;
        n
    };
    // Two senders at once: one knows the address is secret, the other only a phone number.
    let (a, b) = tokio::join!(
        store.accept(
            for_case("p-1"),
            (true, vec!["Storgata 1".into()]),
            recording(&seen),
            audit()
        ),
        store.accept(
            for_case("p-2"),
            (false, vec!["+4748123456".into()]),
            recording(&seen),
            audit()
        )
    );
    a.unwrap();
    b.unwrap();
    // Whichever wrote second wrote with both.
    let both = seen.lock().unwrap()[1].clone();
    assert!(both.0, "secret once secret");
    assert_eq!(both.1.len(), 2, "{both:?}");
    // A later sender that sends no protection still writes with it.
    store
        .accept(for_case("p-3"), (false, vec![]), recording(&seen), audit())
        .await
        .unwrap();
    let later = seen.lock().unwrap()[2].clone();
    assert!(later.0);
    assert_eq!(later.1.len(), 2);
}

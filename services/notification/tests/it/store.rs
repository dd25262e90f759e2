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
    a_batch_answers_each_item_in_its_order_and_a_key_once_whatever_the_batch,
    batches_over_the_same_cases_in_opposite_orders_both_finish,
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

/// Accepts one notification that must be new.
async fn accept(
    store: &Arc<dyn Store>,
    n: NotificationRecord,
    protection: (bool, Vec<String>),
    write: store::Writer,
) -> Result<NotificationRecord, landsby_platform::ApiError> {
    let agency = n.agency.clone();
    let accepted = store
        .accept_all(
            &agency,
            vec![store::Accepting {
                notification: n,
                protection,
                write,
            }],
            audit(),
        )
        .await?;
    match accepted.as_slice() {
        [store::Accepted::Made(n)] => Ok(n.clone()),
        other => panic!("not made: {other:?}"),
    }
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
        let n = accept(
            &store,
            notification(&format!("k-{round}"), &[Channel::Inbox, Channel::Webhook]),
            (false, vec![]),
            written(),
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
    accept(
        &store,
        notification("lease", &[Channel::Webhook]),
        (false, vec![]),
        written(),
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
        accept(
            &store,
            for_case("p-1"),
            (true, vec!["Storgata 1".into()]),
            recording(&seen),
        ),
        accept(
            &store,
            for_case("p-2"),
            (false, vec!["+4748123456".into()]),
            recording(&seen),
        )
    );
    a.unwrap();
    b.unwrap();
    // Whichever wrote second wrote with both.
    let both = seen.lock().unwrap()[1].clone();
    assert!(both.0, "secret once secret");
    assert_eq!(both.1.len(), 2, "{both:?}");
    // A later sender that sends no protection still writes with it.
    accept(&store, for_case("p-3"), (false, vec![]), recording(&seen))
        .await
        .unwrap();
    let later = seen.lock().unwrap()[2].clone();
    assert!(later.0);
    assert_eq!(later.1.len(), 2);
}

/// Items of a batch for `cases` (each item its own key `{prefix}-{i}`), in the order given.
fn batch(prefix: &str, cases: &[Uuid]) -> Vec<store::Accepting> {
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut n = notification(&format!("{prefix}-{i}"), &[Channel::Inbox]);
            n.case_id = *case;
            store::Accepting {
                notification: n,
                protection: (false, vec![]),
                write: written(),
            }
        })
        .collect()
}

async fn a_batch_answers_each_item_in_its_order_and_a_key_once_whatever_the_batch(
    backend: Backend,
) {
    let (_db, store) = open(backend).await;
    let agency = AgencyId::parse("0301").unwrap();
    let cases: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).rev().collect();
    let first = store
        .accept_all(&agency, batch("b", &cases), audit())
        .await
        .unwrap();
    let made: Vec<NotificationRecord> = first
        .iter()
        .map(|a| match a {
            store::Accepted::Made(n) => n.clone(),
            other => panic!("not made: {other:?}"),
        })
        .collect();
    // In the order asked, though the cases are taken in their own order.
    let keys: Vec<&str> = made.iter().map(|n| n.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["b-0", "b-1", "b-2", "b-3"]);
    assert!(made.iter().all(|n| n.deliveries.len() == 1));
    // Again, with a new key, a key twice in the batch and a key used for another request.
    let mut again = batch("b", &cases);
    again.push(batch("c", &cases[..1]).remove(0));
    again.push(batch("c", &cases[..1]).remove(0));
    again[1].notification.fingerprint = "another request".into();
    let second = store.accept_all(&agency, again, audit()).await.unwrap();
    assert_eq!(second.len(), 6);
    match (&second[0], &second[2], &second[3]) {
        (store::Accepted::Before(a), store::Accepted::Before(b), store::Accepted::Before(c)) => {
            assert_eq!([a.id, b.id, c.id], [made[0].id, made[2].id, made[3].id]);
            assert_eq!(a.deliveries.len(), 1, "found with its deliveries");
        }
        other => panic!("not found again: {other:?}"),
    }
    assert!(matches!(second[1], store::Accepted::KeyUsed));
    let (store::Accepted::Made(c), store::Accepted::Before(c_again)) = (&second[4], &second[5])
    else {
        panic!("a key twice in one batch: {:?}", &second[4..]);
    };
    assert_eq!(c.id, c_again.id);
    // Four made, then one more: five notifications, five deliveries.
    let mut all = 0;
    for case in &cases {
        let filter = store::Filter {
            case_id: Some(*case),
            ..Default::default()
        };
        let listed = store.list(&agency, &filter, None, 100).await.unwrap();
        all += listed.len();
    }
    assert_eq!(all, 5);
}

async fn batches_over_the_same_cases_in_opposite_orders_both_finish(backend: Backend) {
    let (_db, store) = open(backend).await;
    let agency = AgencyId::parse("0301").unwrap();
    let cases: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let reversed: Vec<Uuid> = cases.iter().rev().copied().collect();
    for round in 0..5 {
        let (a, b) = tokio::join!(
            store.accept_all(&agency, batch(&format!("up-{round}"), &cases), audit()),
            store.accept_all(&agency, batch(&format!("down-{round}"), &reversed), audit()),
        );
        assert_eq!(a.unwrap().len(), 20, "round {round}");
        assert_eq!(b.unwrap().len(), 20, "round {round}");
    }
}

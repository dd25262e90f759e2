//! Delivery throughput: how fast the notification service accepts notifications and how fast its
//! queue delivers them, to the in-app inbox alone and to the inbox and a local webhook endpoint, on
//! SQLite and on PostgreSQL. Figures go to docs/performance.md.
//!
//! `cargo bench -p landsby-notification --bench delivery` (PostgreSQL at 127.0.0.1:5432, or
//! `LANDSBY_TEST_DATABASE_URL`). `BENCH_NOTIFICATIONS` sets how many (default 2000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use landsby_domain::Role;
use landsby_proto::notification::{
    self as pb, notification_service_client::NotificationServiceClient,
};
use landsby_testkit::{AGENCY, Backend, ServingStatus, TestDb, TestServer, authed, keys};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Senders calling at once.
const CALLERS: usize = 16;
/// The cases the notifications belong to (a case's sends take turns on its protection record).
const CASES: usize = 200;

async fn run(backend: Backend, webhook: bool, n: usize) -> (f64, f64) {
    let endpoint = landsby_testkit::http::http_server(|_| Some((204, String::new()))).await;
    let url = endpoint.url.clone();
    let server = TestServer::start_with(
        landsby_notification::SERVICE,
        TestDb::new(backend).await,
        |c| {
            c.delivery.poll_interval = Duration::from_millis(20);
            c.delivery.batch_size = 200;
            if webhook {
                c.delivery.webhook.url = url;
                c.delivery.webhook.secret = landsby_platform::Secret::new(
                    "a-benchmark-secret-of-32-characters-plus".into(),
                );
            }
        },
    )
    .await;
    server.wait_for(ServingStatus::Serving).await;
    let token = keys().token("bench", AGENCY, &[Role::Service]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let mut client = NotificationServiceClient::new(server.channel());
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for i in (caller..n).step_by(CALLERS) {
                let request = pb::SendNotificationRequest {
                    idempotency_key: format!("bench-{i}"),
                    case_id: format!("0195b7a4-0000-7000-8000-{:012x}", 0xc000 + i % CASES),
                    recipient: Some(pb::Recipient {
                        member_id: format!("0195b7a4-0000-7000-8000-{:012x}", i % 50),
                        affiliation: landsby_proto::case::Affiliation::BirthFamily.into(),
                        ..Default::default()
                    }),
                    kind: "visit_reminder".into(),
                    parameters: HashMap::from([
                        ("start".to_owned(), "2027-03-02T16:00:00Z".to_owned()),
                        ("place".to_owned(), "Barneverntjenestens lokaler".to_owned()),
                    ]),
                    protection: None,
                };
                client
                    .send_notification(authed(&token, request))
                    .await
                    .expect("accepted");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = start.elapsed();
    // Delivered: every notification out of PENDING.
    let mut client = NotificationServiceClient::new(server.channel());
    loop {
        let pending = client
            .list_notifications(authed(
                &token,
                pb::ListNotificationsRequest {
                    status: pb::NotificationStatus::Pending.into(),
                    page_size: 1,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        if pending.notifications.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = start.elapsed();
    let per_second = |d: Duration| n as f64 / d.as_secs_f64();
    (per_second(accepted), per_second(delivered))
}

fn main() {
    let n: usize = std::env::var("BENCH_NOTIFICATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{n} notifications over {CASES} cases, {CALLERS} callers at once");
    println!("| database | channels | accepted per second | delivered per second (end to end) |");
    println!("|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for webhook in [false, true] {
            let (accepted, delivered) = runtime.block_on(run(backend, webhook, n));
            println!(
                "| {backend:?} | {} | {accepted:.0} | {delivered:.0} |",
                if webhook { "inbox + webhook" } else { "inbox" }
            );
        }
    }
}

//! Delivery through the persisted queue to real endpoints on loopback, on both databases: every
//! channel once (e-mail to a real SMTP server, the `mailin-embedded` crate); an endpoint down for a
//! while and then back; one that never recovers (DEAD after the bounded attempts); a refusal that
//! is permanent; SMS held through quiet hours; channels of one notification finishing together.

use crate::channels::{http_server, smtp_config};
use crate::support::*;
use chrono::Timelike;
use landsby_platform::Secret;
use landsby_platform::config::{SmsConfig, WebhookConfig};
use landsby_proto::common;
use landsby_proto::notification as pb;
use landsby_testkit::Backend;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const WEBHOOK_SECRET: &str = "a-webhook-secret-of-at-least-32-characters";

landsby_testkit::on_both_backends!(
    every_channel_delivers_once_to_real_endpoints,
    an_endpoint_down_for_a_while_gets_the_message_once_it_is_back,
    an_endpoint_that_never_recovers_is_dead_after_the_bounded_attempts,
    sms_waits_for_the_end_of_quiet_hours_and_is_not_dropped,
    a_notification_is_delivered_when_its_channels_finish_at_the_same_time,
);

async fn a_notification_is_delivered_when_its_channels_finish_at_the_same_time(backend: Backend) {
    // The inbox and the webhook of each notification finish together, in separate transactions.
    let platform = http_server(|_| Some((204, String::new()))).await;
    let url = platform.url.clone();
    let server = server(backend, move |c| c.delivery.webhook = webhook(url)).await;
    let mut cw = Client::worker(&server);
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            cw.send(visit_scheduled(&format!("t-{i}"), mother()))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        let n = cw.settled(id, Duration::from_secs(10)).await;
        assert!(
            n.deliveries
                .iter()
                .all(|d| d.status() == pb::DeliveryStatus::Delivered),
            "{n:?}"
        );
        assert_eq!(n.status(), pb::NotificationStatus::Delivered, "{n:?}");
    }
}

/// One message as the SMTP server took it.
struct Received {
    to: Vec<String>,
    data: String,
}

/// What a session of mailin's SMTP server collects.
#[derive(Clone)]
struct Collect {
    to: Vec<String>,
    data: Vec<u8>,
    out: std::sync::mpsc::Sender<Received>,
}

impl mailin_embedded::Handler for Collect {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let _ = self.out.send(Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        mailin_embedded::response::OK
    }
}

/// A real SMTP server (the `mailin-embedded` crate) on a free port of 127.0.0.1, in its own thread
/// for the rest of the test process; the messages it takes arrive on the receiver.
fn mailin() -> (u16, std::sync::mpsc::Receiver<Received>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, received) = std::sync::mpsc::channel();
    let mut server = mailin_embedded::Server::new(Collect {
        to: Vec::new(),
        data: Vec::new(),
        out,
    });
    server
        .with_name("mail.example.no")
        .with_ssl(mailin_embedded::SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, received)
}

fn delivery(n: &pb::Notification, channel: pb::Channel) -> &pb::Delivery {
    n.deliveries
        .iter()
        .find(|d| d.channel() == channel)
        .expect("a delivery on the channel")
}

fn sms(url: String) -> SmsConfig {
    SmsConfig {
        url,
        token: Secret::new("sms-token".into()),
        sender: "Barnevernet".into(),
    }
}

fn webhook(url: String) -> WebhookConfig {
    WebhookConfig {
        url,
        secret: Secret::new(WEBHOOK_SECRET.into()),
    }
}

async fn every_channel_delivers_once_to_real_endpoints(backend: Backend) {
    let (smtp_port, mail) = mailin();
    let mut gateway = http_server(|_| Some((200, "{}".into()))).await;
    let mut platform = http_server(|_| Some((204, String::new()))).await;
    let (sms_url, hook_url) = (gateway.url.clone(), platform.url.clone());
    let server = server(backend, move |c| {
        c.delivery.smtp = smtp_config(smtp_port);
        c.delivery.sms = sms(sms_url);
        c.delivery.webhook = webhook(hook_url);
    })
    .await;
    let mut cw = Client::worker(&server);
    let sent = cw.send(visit_scheduled("d-1", mother())).await.unwrap();
    assert_eq!(sent.deliveries.len(), 4, "inbox, e-mail, SMS, webhook");
    let n = cw.settled(&sent.id, Duration::from_secs(10)).await;
    assert_eq!(n.status(), pb::NotificationStatus::Delivered, "{n:?}");
    for d in &n.deliveries {
        assert_eq!(d.status(), pb::DeliveryStatus::Delivered);
        assert_eq!(d.attempts.len(), 1);
        assert!(d.deliver_time.is_some());
    }
    let received = mail.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(received.to, ["mor@example.no"]);
    assert!(
        received
            .data
            .contains("X-Landsby-Idempotency-Key: 0301-d-1\r\n"),
        "{}",
        received.data
    );
    let text = gateway.next().await;
    assert_eq!(text.json()["to"], "+4791234567");
    assert_eq!(
        text.header("idempotency-key"),
        Some("0301-d-1"),
        "the key names the agency: the gateway serves several"
    );
    let hook = platform.next().await;
    let signature = hook.header("x-landsby-signature").unwrap().to_owned();
    assert!(landsby_notification::channels::verify(
        WEBHOOK_SECRET.as_bytes(),
        &signature,
        &hook.body,
        chrono::Utc::now().timestamp(),
        300
    ));
    assert_eq!(hook.json()["idempotency_key"], "0301-d-1");
    // Sent again with the same key: nothing more goes out.
    cw.send(visit_scheduled("d-1", mother())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mail.try_recv().is_err(), "one e-mail");
    assert!(gateway.requests.try_recv().is_err(), "one SMS");
    assert!(platform.requests.try_recv().is_err(), "one webhook");
}

async fn an_endpoint_down_for_a_while_gets_the_message_once_it_is_back(backend: Backend) {
    // Down (503) for the first three tries, then up.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let mut platform = http_server(move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) < 3 {
            Some((503, "{}".into()))
        } else {
            Some((204, String::new()))
        }
    })
    .await;
    let url = platform.url.clone();
    let server = server(backend, move |c| {
        c.delivery.webhook = webhook(url);
        c.delivery.max_attempts = 6;
    })
    .await;
    let mut cw = Client::worker(&server);
    let sent = cw.send(visit_scheduled("d-2", mother())).await.unwrap();
    let n = cw.settled(&sent.id, Duration::from_secs(15)).await;
    assert_eq!(n.status(), pb::NotificationStatus::Delivered, "{n:?}");
    let hook = delivery(&n, pb::Channel::Webhook);
    let outcomes: Vec<(bool, &str)> = hook
        .attempts
        .iter()
        .map(|a| (a.ok, a.error.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (false, "http 503"),
            (false, "http 503"),
            (false, "http 503"),
            (true, "")
        ]
    );
    // Each retry waited longer than the one before (exponential backoff, with jitter below it).
    let times: Vec<i64> = hook
        .attempts
        .iter()
        .map(|a| {
            let t = a.attempt_time.unwrap();
            t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
        })
        .collect();
    assert!(times[3] - times[2] >= times[1] - times[0], "{times:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "delivered once, nothing after"
    );
    for _ in 0..4 {
        platform.next().await;
    }
}

async fn an_endpoint_that_never_recovers_is_dead_after_the_bounded_attempts(backend: Backend) {
    let platform = http_server(|_| Some((503, "{}".into()))).await;
    // The gateway refuses the number for good: no retry.
    let gateway = http_server(|_| Some((400, "{\"error\":\"bad number\"}".into()))).await;
    let (hook_url, sms_url) = (platform.url.clone(), gateway.url.clone());
    // The case staff find the failure by status: they need a case they may open.
    let (server, _cases, case) = server_and_case(backend, move |c| {
        c.delivery.webhook = webhook(hook_url);
        c.delivery.sms = sms(sms_url);
        c.delivery.max_attempts = 3;
    })
    .await;
    let mut cw = Client::worker(&server);
    let sent = cw
        .send(on(&case, visit_scheduled("d-3", mother())))
        .await
        .unwrap();
    let n = cw.settled(&sent.id, Duration::from_secs(15)).await;
    assert_eq!(n.status(), pb::NotificationStatus::Failed, "{n:?}");
    let hook = delivery(&n, pb::Channel::Webhook);
    assert_eq!(hook.status(), pb::DeliveryStatus::Dead);
    assert_eq!(hook.attempts.len(), 3);
    assert_eq!(hook.dead_reason, "gave up after 3 attempts: http 503");
    let text = delivery(&n, pb::Channel::Sms);
    assert_eq!(text.status(), pb::DeliveryStatus::Dead);
    assert_eq!(text.attempts.len(), 1, "a permanent refusal is not retried");
    assert!(text.attempts[0].permanent);
    assert_eq!(text.dead_reason, "http 400");
    // The inbox got it all the same, and the case's caseworker finds the failure by status.
    assert_eq!(
        delivery(&n, pb::Channel::Inbox).status(),
        pb::DeliveryStatus::Delivered
    );
    let failed = Client::caseworker(&server)
        .list(pb::ListNotificationsRequest {
            case_id: case.clone(),
            status: pb::NotificationStatus::Failed.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.notifications.len(), 1);
}

async fn sms_waits_for_the_end_of_quiet_hours_and_is_not_dropped(backend: Backend) {
    let mut gateway = http_server(|_| Some((200, "{}".into()))).await;
    let url = gateway.url.clone();
    let server = server(backend, move |c| c.delivery.sms = sms(url)).await;
    let mut cw = Client::worker(&server);
    // The mother's quiet hours are the two hours around now on the Oslo clock.
    let now = landsby_domain::time::oslo_local(chrono::Utc::now());
    let hour = |h: u32| common::TimeOfDay {
        hours: i32::try_from(h % 24).unwrap(),
        minutes: 0,
    };
    let req = cw.req(pb::SetPreferencesRequest {
        preferences: Some(pb::Preferences {
            recipient_id: MOTHER.into(),
            quiet_from: Some(hour(now.hour() + 23)),
            quiet_until: Some(hour(now.hour() + 1)),
            ..Default::default()
        }),
    });
    cw.inner.set_preferences(req).await.unwrap();
    let sent = cw.send(visit_scheduled("d-4", mother())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let held = loop {
        let n = cw.get(&sent.id).await.unwrap();
        if delivery(&n, pb::Channel::Sms).status() == pb::DeliveryStatus::Deferred {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not deferred: {n:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let text = delivery(&held, pb::Channel::Sms);
    assert!(text.attempts.is_empty(), "held, not tried");
    let next = text.next_attempt_time.unwrap().seconds;
    let wait = next - chrono::Utc::now().timestamp();
    assert!(
        (0..=3600).contains(&wait),
        "until the end of quiet hours: {wait}s"
    );
    assert_eq!(held.status(), pb::NotificationStatus::Pending);
    assert_eq!(
        delivery(&held, pb::Channel::Inbox).status(),
        pb::DeliveryStatus::Delivered
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gateway.requests.try_recv().is_err(), "no SMS at night");
}

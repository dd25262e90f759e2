//! A running notification service and clients calling it as one person.

use landsby_domain::Role;
use landsby_platform::config::Config;
use landsby_proto::common;
use landsby_proto::notification::{
    self as pb, notification_service_client::NotificationServiceClient,
};
pub use landsby_testkit::status::*;
use landsby_testkit::{AGENCY, Backend, ServingStatus, TestDb, TestServer, authed, keys};
use std::collections::HashMap;
use std::time::Duration;
use tonic::Status;
use tonic::transport::Channel;

/// A notification service on a fresh database of `backend`, delivering fast: short backoffs, a
/// quick poll; `tweak` sets its channels.
pub async fn server(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let server = TestServer::start_with(
        landsby_notification::SERVICE,
        TestDb::new(backend).await,
        |c| {
            c.delivery.poll_interval = Duration::from_millis(20);
            c.delivery.backoff_base = Duration::from_millis(50);
            c.delivery.backoff_max = Duration::from_millis(200);
            c.delivery.attempt_timeout = Duration::from_secs(2);
            // Quiet hours off unless a test turns them on: tests run at any hour.
            c.delivery.quiet_from = "00:00".into();
            c.delivery.quiet_until = "00:00".into();
            tweak(c);
        },
    )
    .await;
    server.wait_for(ServingStatus::Serving).await;
    server
}

/// A notification service as [`server`] makes it, with a case service beside it (`endpoints.case`)
/// and a case there assigned to `caseworker-1`: for what only staff may do (list notifications).
pub async fn server_and_case(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> (TestServer, TestServer, String) {
    let cases = TestServer::start(landsby_case::SERVICE, backend).await;
    let case = landsby_testkit::case::Client::caseworker(&cases)
        .create(landsby_testkit::case::new_case())
        .await
        .expect("a case")
        .id;
    let url = format!("https://{}", cases.addr);
    let server = server(backend, |c| {
        c.endpoints.case = url;
        tweak(c);
    })
    .await;
    (server, cases, case)
}

/// `request` about `case`.
pub fn on(case: &str, request: pb::SendNotificationRequest) -> pb::SendNotificationRequest {
    pb::SendNotificationRequest {
        case_id: case.into(),
        ..request
    }
}

/// A client of the notification service, calling as one person.
pub struct Client {
    pub inner: NotificationServiceClient<Channel>,
    pub token: String,
}

impl Client {
    pub fn as_role(server: &TestServer, subject: &str, agency: &str, roles: &[Role]) -> Self {
        Self {
            inner: NotificationServiceClient::new(server.channel()),
            token: keys().token(subject, agency, roles),
        }
    }

    pub fn caseworker(server: &TestServer) -> Self {
        Self::as_role(server, "caseworker-1", AGENCY, &[Role::Caseworker])
    }

    /// The agency's own systems in one token: the worker (role `service`) sends, a portal (role
    /// `portal`) reads a recipient's inbox and notifications and sets preferences. Neither needs a
    /// case service to vouch for it, so the tests of templates, keys and delivery use it; roles are
    /// tested on their own (roles_without_access_and_other_agencies_see_nothing), and staff need to
    /// know with a case service beside (access.rs).
    pub fn worker(server: &TestServer) -> Self {
        Self::as_role(
            server,
            "landsby-worker",
            AGENCY,
            &[Role::Service, Role::Portal],
        )
    }

    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        authed(&self.token, message)
    }

    pub async fn send(
        &mut self,
        request: pb::SendNotificationRequest,
    ) -> Result<pb::Notification, Status> {
        let req = self.req(request);
        Ok(self
            .inner
            .send_notification(req)
            .await?
            .into_inner()
            .notification
            .expect("notification"))
    }

    pub async fn send_all(
        &mut self,
        items: Vec<pb::SendNotificationRequest>,
    ) -> Result<Vec<pb::SentNotification>, Status> {
        let req = self.req(pb::BatchSendNotificationsRequest { items });
        Ok(self
            .inner
            .batch_send_notifications(req)
            .await?
            .into_inner()
            .results)
    }

    pub async fn get(&mut self, id: &str) -> Result<pb::Notification, Status> {
        let req = self.req(pb::GetNotificationRequest {
            notification_id: id.into(),
        });
        Ok(self
            .inner
            .get_notification(req)
            .await?
            .into_inner()
            .notification
            .expect("notification"))
    }

    pub async fn list(
        &mut self,
        request: pb::ListNotificationsRequest,
    ) -> Result<pb::ListNotificationsResponse, Status> {
        let req = self.req(request);
        Ok(self.inner.list_notifications(req).await?.into_inner())
    }

    pub async fn inbox(&mut self, recipient: &str) -> Result<pb::ListInboxResponse, Status> {
        let req = self.req(pb::ListInboxRequest {
            recipient_id: recipient.into(),
            ..Default::default()
        });
        Ok(self.inner.list_inbox(req).await?.into_inner())
    }

    /// The notification once no delivery is pending any more (or after `within`).
    pub async fn settled(&mut self, id: &str, within: Duration) -> pb::Notification {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.get(id).await.expect("notification");
            if n.status() != pb::NotificationStatus::Pending
                || tokio::time::Instant::now() >= deadline
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub const CASE: &str = "0195b7a4-0000-7000-8000-00000000c001";
pub const MOTHER: &str = "0195b7a4-0000-7000-8000-00000000a001";
pub const FOSTER_MOTHER: &str = "0195b7a4-0000-7000-8000-00000000f001";

pub fn email(address: &str) -> common::ContactPoint {
    common::ContactPoint {
        kind: common::ContactKind::Email.into(),
        value: address.into(),
    }
}

pub fn phone(number: &str) -> common::ContactPoint {
    common::ContactPoint {
        kind: common::ContactKind::Phone.into(),
        value: number.into(),
    }
}

/// The mother: birth family, Nynorsk, reachable by e-mail and phone.
pub fn mother() -> pb::Recipient {
    pb::Recipient {
        member_id: MOTHER.into(),
        affiliation: landsby_proto::case::Affiliation::BirthFamily.into(),
        contact_points: vec![email("mor@example.no"), phone("91234567")],
        language: common::Language::Nn.into(),
        ..Default::default()
    }
}

/// The foster mother: foster family, Bokmål.
pub fn foster_mother() -> pb::Recipient {
    pb::Recipient {
        member_id: FOSTER_MOTHER.into(),
        affiliation: landsby_proto::case::Affiliation::FosterFamily.into(),
        contact_points: vec![email("fostermor@example.no")],
        language: common::Language::Nb.into(),
        ..Default::default()
    }
}

pub fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A visit-scheduled notification to `recipient` under `key`.
pub fn visit_scheduled(key: &str, recipient: pb::Recipient) -> pb::SendNotificationRequest {
    pb::SendNotificationRequest {
        idempotency_key: key.into(),
        case_id: CASE.into(),
        recipient: Some(recipient),
        kind: "visit_scheduled".into(),
        parameters: params(&[
            ("start", "2027-03-02T16:00:00Z"),
            ("duration_minutes", "90"),
            ("place", "Barneverntjenestens lokaler"),
        ]),
        protection: None,
    }
}

//! Calling another landsby service on behalf of the caller: the caller's bearer token goes along (so
//! the other service applies its own roles and audits the read under the caller), and so does what
//! is left of the caller's deadline. A channel connects lazily, so a service starts while the other
//! is away; a call then answers UNAVAILABLE.

use crate::error::ApiError;
use crate::server::Deadline;
use crate::tls::Tls;
use std::time::Duration;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

/// The longest a call to another service may take when the caller set no deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A lazily connecting channel to the service at `url`: `https://host:port` with mutual TLS when
/// `tls` is given (the server's certificate must chain to `tls.ca_file` and be valid for `host`; this
/// process shows its own), `http://host:port` in plain text in dev mode without TLS.
pub fn channel(url: &str, tls: Option<&Tls>) -> Result<Channel, crate::config::ConfigError> {
    let invalid = |problem: String| crate::config::ConfigError::Invalid {
        setting: "endpoints",
        problem,
    };
    let mut endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|e| invalid(format!("{url}: {e}")))?;
    if let Some(tls) = tls {
        if !url.starts_with("https://") {
            return Err(invalid(format!("{url}: must be https:// while tls is on")));
        }
        endpoint = endpoint
            .tls_config(tls.client())
            .map_err(|e| invalid(format!("{url}: {e}")))?;
    }
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Waits until the server behind `channel` reports the whole server SERVING on `grpc.health.v1`
/// (it listens before its database is migrated, answering UNAVAILABLE meanwhile), for at most
/// `within`; the last status seen otherwise.
pub async fn wait_serving(channel: &Channel, within: Duration) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let deadline = tokio::time::Instant::now() + within;
    let mut client = HealthClient::new(channel.clone());
    loop {
        let last = match client.check(HealthCheckRequest::default()).await {
            Ok(answer) => match ServingStatus::try_from(answer.into_inner().status) {
                Ok(ServingStatus::Serving) => return Ok(()),
                Ok(status) => format!("{status:?}"),
                Err(_) => "an unknown status".to_owned(),
            },
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not serving after {within:?} (last: {last})"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What goes along from an incoming call to the calls it makes: its token, its deadline and its
/// trace.
#[derive(Debug, Clone)]
pub struct OnBehalf {
    authorization: Option<AsciiMetadataValue>,
    deadline: Option<tokio::time::Instant>,
}

impl OnBehalf {
    /// Taken from an incoming request (before it is consumed).
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self {
            authorization: request.metadata().get("authorization").cloned(),
            deadline: request.extensions().get::<Deadline>().map(|d| d.0),
        }
    }

    /// An outgoing request carrying `message`, the caller's token and what is left of its deadline.
    pub fn request<M>(&self, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or(DEFAULT_TIMEOUT);
        request.set_timeout(left.max(Duration::from_millis(1)));
        crate::telemetry::inject(request.metadata_mut());
        request
    }
}

/// What an error from another service (`service`, e.g. "case") means for our caller: its NOT_FOUND
/// is the caller's (the resource does not exist for the caller's agency), its refusals of the token
/// are ours too, its time and availability problems are UNAVAILABLE or DEADLINE_EXCEEDED, anything
/// else an internal error. Its messages never pass through.
///
/// A call whose connection broke half-way (the peer killed, the network cut) ends in UNKNOWN made
/// here by tonic from the transport's error, not in an answer of the peer: that is UNAVAILABLE too.
/// An answer the peer sent never carries a source error; one made from a broken transport does.
pub fn downstream(
    status: &tonic::Status,
    resource: &'static str,
    service: &'static str,
) -> ApiError {
    use tonic::Code;
    let transport_broke =
        status.code() == Code::Unknown && std::error::Error::source(status).is_some();
    match status.code() {
        Code::NotFound => ApiError::NotFound { resource },
        Code::Unauthenticated => ApiError::Unauthenticated {
            reason: "the token was refused by another service",
        },
        Code::PermissionDenied => ApiError::PermissionDenied {
            reason: format!("the {service} service refused the caller's roles"),
        },
        Code::DeadlineExceeded => ApiError::DeadlineExceeded,
        code if transport_broke
            || matches!(
                code,
                Code::Unavailable | Code::ResourceExhausted | Code::Cancelled
            ) =>
        {
            ApiError::Unavailable {
                reason: "another landsby service is unavailable; retry later",
            }
        }
        other => ApiError::internal(format!("the {service} service answered {other:?}")),
    }
}

/// Need to know of a case, as the case service decides it (`crates/domain/src/access.rs`): the other
/// services ask it with a GetCase on the caller's behalf before they show or change anything of a
/// case, so one rule decides everywhere and the case service audits the look (and flags emergency
/// access).
#[derive(Debug, Clone)]
pub struct CaseAccess {
    inner: landsby_proto::case::case_service_client::CaseServiceClient<Channel>,
}

impl CaseAccess {
    /// Asking the case service behind `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: landsby_proto::case::case_service_client::CaseServiceClient::new(channel),
        }
    }

    /// Ok when `caller` may open the case: the worker (role `service`) and the portals (role
    /// `portal`, acting for the recipients, whom the roles limit) always, anyone else when the case
    /// service lets them read it. Otherwise NOT_FOUND of `resource` (what the call named, as if
    /// it were not there); the case service's refusals of the token and its absence pass through as
    /// [`downstream`] says.
    pub async fn check(
        &self,
        caller: &crate::Caller,
        on_behalf: &OnBehalf,
        case_id: uuid::Uuid,
        resource: &'static str,
    ) -> Result<(), ApiError> {
        if caller.has_any(&[landsby_domain::Role::Service, landsby_domain::Role::Portal]) {
            return Ok(());
        }
        let mut client = self.inner.clone();
        match client
            .get_case(on_behalf.request(landsby_proto::case::GetCaseRequest {
                case_id: case_id.to_string(),
                ..Default::default()
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) => match downstream(&status, resource, "case") {
                ApiError::NotFound { .. } => Err(ApiError::NotFound { resource }),
                other => Err(other),
            },
        }
    }
}

/// Installs aws-lc-rs as the process's rustls crypto provider, which outgoing HTTPS needs (reqwest is
/// built without one): the issuer's keys here, the notification channels there. Does nothing when
/// a provider is installed already.
pub fn install_crypto() {
    // An error means a provider is installed already: that one serves.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn a_broken_transport_is_unavailable_and_an_answer_of_unknown_is_not() {
        let broken = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
        assert_eq!(broken.code(), Code::Unknown);
        assert_eq!(
            downstream(&broken, "case", "case").code(),
            Code::Unavailable
        );
        let answered = Status::unknown("the peer said so");
        assert_eq!(downstream(&answered, "case", "case").code(), Code::Internal);
        for code in [Code::Unavailable, Code::Cancelled, Code::ResourceExhausted] {
            let status = Status::new(code, "away");
            assert_eq!(
                downstream(&status, "case", "case").code(),
                Code::Unavailable
            );
        }
    }
}

//! How the worker calls the other services: one lazily connecting channel to each, and the worker's
//! own bearer token per agency (role `service`). A token comes from `jobs.token_file` (re-read when
//! it changes, so a rotated secret is picked up), or in dev mode is signed with the data directory's
//! dev key.

use crate::error::JobError;
use landsby_domain::Role;
use landsby_platform::auth::{Claims, DEV_ISSUER, SigningKey, dev_signing_key};
use landsby_platform::config::{Config, ConfigError};
use landsby_proto::case::case_service_client::CaseServiceClient;
use landsby_proto::notification::notification_service_client::NotificationServiceClient;
use landsby_proto::visitation::visitation_service_client::VisitationServiceClient;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

/// The subject of the worker's dev tokens.
pub const WORKER_SUBJECT: &str = "landsby-worker";
/// How long one call to another service may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A dev token lives this long and is renewed when less than half is left.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

enum Source {
    Dev {
        key: Box<SigningKey>,
        audience: String,
    },
    File {
        template: String,
    },
}

struct Cached {
    value: AsciiMetadataValue,
    /// Dev tokens: when to sign again. Files: the file's modification time it was read at.
    renew_at: Option<SystemTime>,
    modified: Option<SystemTime>,
}

/// The worker's tokens, one per agency.
pub struct Tokens {
    source: Source,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// From the configuration: `jobs.token_file`, or the dev key in dev mode.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let template = config.jobs.token_file.trim();
        let source = if !template.is_empty() {
            Source::File {
                template: template.to_owned(),
            }
        } else if config.dev_mode {
            let (key, _) = dev_signing_key(&config.data_dir)?;
            Source::Dev {
                key: Box::new(key),
                audience: config.auth.audience.clone(),
            }
        } else {
            return Err(ConfigError::Invalid {
                setting: "jobs.token_file",
                problem:
                    "required outside dev mode: the worker needs a token with the service role"
                        .into(),
            });
        };
        Ok(Self {
            source,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn path(template: &str, agency: &str) -> PathBuf {
        PathBuf::from(template.replace("{agency}", agency))
    }

    /// The `authorization` header value for `agency`.
    pub fn bearer(&self, agency: &str) -> Result<AsciiMetadataValue, JobError> {
        let now = SystemTime::now();
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| JobError::Permanent("the token cache is poisoned".into()))?;
        match &self.source {
            Source::Dev { key, audience } => {
                if let Some(c) = cache.get(agency)
                    && c.renew_at.is_some_and(|at| at > now)
                {
                    return Ok(c.value.clone());
                }
                let claims = Claims::new(
                    WORKER_SUBJECT,
                    agency,
                    &[Role::Service],
                    DEV_ISSUER,
                    audience,
                    DEV_TOKEN_TTL,
                );
                let token = key.sign(&claims).map_err(JobError::Permanent)?;
                let value = header(&token)?;
                cache.insert(
                    agency.to_owned(),
                    Cached {
                        value: value.clone(),
                        renew_at: Some(now + DEV_TOKEN_TTL / 2),
                        modified: None,
                    },
                );
                Ok(value)
            }
            Source::File { template } => {
                let path = Self::path(template, agency);
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                if let Some(c) = cache.get(agency)
                    && modified.is_some()
                    && c.modified == modified
                {
                    return Ok(c.value.clone());
                }
                // A token file that is missing or unreadable is an operator's problem that may be
                // fixed while the job waits: retryable.
                let token = std::fs::read_to_string(&path).map_err(|_| {
                    JobError::Retry("the worker's token file cannot be read".into())
                })?;
                let value = header(token.trim())?;
                cache.insert(
                    agency.to_owned(),
                    Cached {
                        value: value.clone(),
                        renew_at: None,
                        modified,
                    },
                );
                Ok(value)
            }
        }
    }
}

fn header(token: &str) -> Result<AsciiMetadataValue, JobError> {
    AsciiMetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| JobError::Permanent("the worker's token is not a valid header value".into()))
}

/// Clients of the three services the worker calls.
#[derive(Debug, Clone)]
pub struct Services {
    /// The case service.
    pub case: CaseServiceClient<Channel>,
    /// The visitation service.
    pub visitation: VisitationServiceClient<Channel>,
    /// The notification service.
    pub notification: NotificationServiceClient<Channel>,
}

impl Services {
    /// Lazily connecting clients at the configured endpoints, with the worker's certificate (mutual
    /// TLS; plain text in dev mode without `tls.*`).
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let tls = landsby_platform::tls::Tls::from_config(config)?;
        let channel = |url: String| landsby_platform::client::channel(&url, tls.as_ref());
        Ok(Self {
            case: CaseServiceClient::new(channel(config.case_endpoint())?),
            visitation: VisitationServiceClient::new(channel(config.visitation_endpoint())?),
            notification: NotificationServiceClient::new(channel(config.notification_endpoint())?),
        })
    }
}

/// Calls another service as the worker of an agency: `call!(ctx, agency, case.get_case(message))`
/// answers the response's message, or the status as a [`JobError`] naming the call (never the
/// status's own message, which can quote a value).
macro_rules! call {
    ($ctx:expr, $agency:expr, $service:ident . $rpc:ident ( $message:expr )) => {{
        match $crate::clients::request(&$ctx.tokens, $agency, $message) {
            Ok(req) => {
                let started = std::time::Instant::now();
                let answer = $ctx
                    .services
                    .$service
                    .clone()
                    .$rpc(req)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| {
                        $crate::error::JobError::from_status(
                            &s,
                            stringify!($service),
                            stringify!($rpc),
                        )
                    });
                tracing::trace!(
                    call = concat!(stringify!($service), ".", stringify!($rpc)),
                    micros = started.elapsed().as_micros() as u64,
                    ok = answer.is_ok(),
                    "called"
                );
                answer
            }
            Err(e) => Err(e),
        }
    }};
}

/// A request to another service as the worker of `agency`.
pub fn request<M>(
    tokens: &Tokens,
    agency: &str,
    message: M,
) -> Result<tonic::Request<M>, JobError> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", tokens.bearer(agency)?);
    request.set_timeout(CALL_TIMEOUT);
    landsby_platform::telemetry::inject(request.metadata_mut());
    Ok(request)
}

/// The same request with no deadline, for a feed that streams for as long as it is followed.
pub fn streaming<M>(
    tokens: &Tokens,
    agency: &str,
    message: M,
) -> Result<tonic::Request<M>, JobError> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", tokens.bearer(agency)?);
    Ok(request)
}

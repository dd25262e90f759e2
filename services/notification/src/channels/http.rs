//! What the HTTP channels (SMS gateway, webhooks) share: the client, the URL check, and how a reply
//! or a failure is classified.

use super::{ChannelConfigError, SendError};
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode, Url};
use std::time::Duration;

/// A client that gives up after `timeout` (connecting included) and follows no redirects: a
/// redirected POST would carry the message, or a signed payload, somewhere not configured.
pub(super) fn client(
    timeout: Duration,
    setting: &'static str,
) -> Result<Client, ChannelConfigError> {
    super::check_timeout(timeout)?;
    super::install_crypto();
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("landsby-notification/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| ChannelConfigError::Invalid {
            setting,
            problem: "no HTTP client could be built for it",
        })
}

/// The configured URL, which must be an absolute `http` or `https` URL. The error does not repeat
/// it: it may carry a token.
pub(super) fn url(value: &str, setting: &'static str) -> Result<Url, ChannelConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ChannelConfigError::Missing(setting));
    }
    let invalid = || ChannelConfigError::Invalid {
        setting,
        problem: "not an http:// or https:// URL",
    };
    let url = Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(url)
}

/// POSTs `body` with `headers` and classifies the outcome.
pub(super) async fn post(
    client: &Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(), SendError> {
    let response = client
        .post(url.clone())
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| failure(&e))?;
    status(response.status())
}

/// 2xx: delivered. 408, 429 and 5xx: try again. Anything else (other 4xx, a redirect): refused.
pub(super) fn status(status: StatusCode) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("http {}", status.as_u16());
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Err(SendError::Transient(reason))
    } else {
        Err(SendError::Permanent(reason))
    }
}

/// A request that got no reply: always worth trying again. Classified, never displayed (reqwest's
/// text carries the URL).
pub(super) fn failure(error: &reqwest::Error) -> SendError {
    let reason = if error.is_timeout() {
        "http timeout"
    } else if error.is_connect() {
        "http connect"
    } else if error.is_body() || error.is_decode() {
        "http body"
    } else if error.is_request() {
        "http request"
    } else {
        "http error"
    };
    SendError::Transient(reason.to_owned())
}

/// The idempotency key as a header value; a key that cannot be one is a bug upstream, and no retry
/// mends it.
pub(super) fn idempotency_key(key: &str) -> Result<reqwest::header::HeaderValue, SendError> {
    if key.is_empty() {
        return Err(SendError::Permanent("idempotency key empty".to_owned()));
    }
    reqwest::header::HeaderValue::from_str(key)
        .map_err(|_| SendError::Permanent("idempotency key not a header value".to_owned()))
}

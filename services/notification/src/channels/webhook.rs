//! Webhooks: a JSON POST to the agency's platform, signed with HMAC-SHA256 over `"<t>." + body` in
//! the `X-Landsby-Signature` header (`t=<unix seconds>,v1=<lowercase hex>`). docs/notifications.md
//! tells the receiver how to check it.

use super::{ChannelConfigError, Outgoing, SendError, Sender, http};
use aws_lc_rs::hmac;
use chrono::{SecondsFormat, Utc};
use landsby_platform::config::WebhookConfig;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Client, Url};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The header that carries the signature.
const SIGNATURE_HEADER: &str = "x-landsby-signature";

/// Posts signed webhooks to the configured URL.
pub struct WebhookSender {
    client: Client,
    url: Url,
    key: hmac::Key,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender for the URL in `config`, signing with its secret (both must be set); one attempt
    /// takes at most `timeout`.
    pub fn new(config: &WebhookConfig, timeout: Duration) -> Result<Self, ChannelConfigError> {
        let url = http::url(&config.url, "delivery.webhook.url")?;
        let secret = config.secret.expose();
        if secret.is_empty() {
            return Err(ChannelConfigError::Missing("delivery.webhook.secret"));
        }
        Ok(Self {
            client: http::client(timeout, "delivery.webhook.url")?,
            url,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        })
    }
}

/// What the platform receives.
#[derive(Serialize)]
struct WebhookPayload<'a> {
    notification_id: uuid::Uuid,
    idempotency_key: &'a str,
    agency: &'a str,
    case_id: uuid::Uuid,
    kind: &'a str,
    language: &'a str,
    subject: &'a str,
    body: &'a str,
    sent_at: String,
}

#[async_trait::async_trait]
impl Sender for WebhookSender {
    async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError> {
        let now = Utc::now();
        let body = serde_json::to_vec(&WebhookPayload {
            notification_id: message.notification_id,
            idempotency_key: message.idempotency_key,
            agency: message.agency,
            case_id: message.case_id,
            kind: message.kind,
            language: message.language.as_str(),
            subject: message.subject,
            body: message.body,
            sent_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
        .map_err(|_| SendError::Permanent("webhook payload not encodable".to_owned()))?;
        let signature = signature(&self.key, now.timestamp(), &body);

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "idempotency-key",
            http::idempotency_key(message.idempotency_key)?,
        );
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&signature)
                .map_err(|_| SendError::Permanent("webhook signature not a header".to_owned()))?,
        );
        http::post(&self.client, &self.url, headers, body).await
    }
}

/// The `X-Landsby-Signature` header value for `body` sent at `timestamp` (unix seconds):
/// `t=<timestamp>,v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>." + body)>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    signature(&hmac::Key::new(hmac::HMAC_SHA256, secret), timestamp, body)
}

/// Checks a signature header against the body: some `v1` signature matches (compared in constant
/// time) and `t` is within `tolerance_secs` of `now` (unix seconds), either way. A header that does
/// not parse, or has no `t` or no `v1`, fails. Parts other than `t` and `v1` are ignored, so a later
/// scheme can be sent next to `v1`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let Some((timestamp, signatures)) = parse(header) else {
        return false;
    };
    if tolerance_secs < 0 || now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = signed_payload(timestamp, body);
    // Every candidate is checked, so the time taken does not tell which one matched.
    signatures.iter().fold(false, |matched, candidate| {
        let ok = unhex(candidate).is_some_and(|tag| hmac::verify(&key, &signed, &tag).is_ok());
        matched | ok
    })
}

fn signature(key: &hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let tag = hmac::sign(key, &signed_payload(timestamp, body));
    format!("t={timestamp},v1={}", hex(tag.as_ref()))
}

/// What is signed: the timestamp in decimal, a dot, the body.
fn signed_payload(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signed
}

/// The timestamp and the `v1` signatures of a header; `None` unless there is exactly one `t`, in
/// digits, and at least one `v1`.
fn parse(header: &str) -> Option<(i64, Vec<&str>)> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name.trim() {
            "t" => {
                let value = value.trim();
                if timestamp.is_some()
                    || value.is_empty()
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                timestamp = Some(value.parse::<i64>().ok()?);
            }
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    if signatures.is_empty() {
        return None;
    }
    Some((timestamp?, signatures))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{sign, verify};

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"kind":"visit_scheduled"}"#;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed apart, with Python's hmac and hashlib as in docs/notifications.md.
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=4c7cb745a674ca5762958fa4f5355c9bc902bd46b701583c5ba64133b3cb94a6"
        );
    }

    #[test]
    fn a_signature_verifies_within_the_tolerance() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        assert!(verify(SECRET, &header, BODY, 1_700_000_000, 300));
        assert!(verify(SECRET, &header, BODY, 1_700_000_300, 300));
        assert!(verify(SECRET, &header, BODY, 1_699_999_700, 300));
        assert!(!verify(SECRET, &header, BODY, 1_700_000_301, 300));
        assert!(!verify(SECRET, &header, BODY, 1_699_999_699, 300));
        assert!(!verify(SECRET, &header, BODY, 1_700_000_000, -1));
    }

    #[test]
    fn a_changed_body_secret_or_timestamp_fails() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert!(!verify(b"other", &header, BODY, 1_700_000_000, 300));
        assert!(!verify(SECRET, &header, b"{}", 1_700_000_000, 300));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify(SECRET, &moved, BODY, 1_700_000_000, 300));
    }

    #[test]
    fn the_header_is_parsed_strictly_where_it_matters() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        let v1 = header
            .split_once(",v1=")
            .map(|(_, v)| v.to_owned())
            .unwrap();
        // Another scheme next to v1, spaces, a rotated-out signature before the good one: fine.
        let lenient = format!("t=1700000000, v0=abc, v1={}, v1={v1}", "00".repeat(32));
        assert!(verify(SECRET, &lenient, BODY, 1_700_000_000, 300));
        let upper = format!("t=1700000000,v1={}", v1.to_uppercase());
        assert!(verify(SECRET, &upper, BODY, 1_700_000_000, 300));
        for bad in [
            String::new(),
            "t=1700000000".to_owned(),
            format!("v1={v1}"),
            format!("t=+1700000000,v1={v1}"),
            format!("t=1700000000,t=1700000000,v1={v1}"),
            format!("t=1700000000,v1={}", &v1[..62]),
            format!("t=1700000000,v1={v1}0"),
            format!("t=1700000000;v1={v1}"),
        ] {
            assert!(!verify(SECRET, &bad, BODY, 1_700_000_000, 300), "{bad}");
        }
    }
}

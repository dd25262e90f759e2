//! SMS through an HTTP gateway: a JSON POST of `{"to", "from", "message", "reference"}`.

use super::{ChannelConfigError, Outgoing, SendError, Sender, http};
use landsby_platform::config::SmsConfig;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Client, Url};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Sends SMS through the configured gateway. Numbers go out in E.164: 8 digits are a Norwegian
/// number and get `+47`.
pub struct SmsSender {
    client: Client,
    url: Url,
    authorization: Option<HeaderValue>,
    from: String,
}

impl fmt::Debug for SmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsSender")
            .field("host", &self.url.host_str())
            .field("authorization", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

impl SmsSender {
    /// A sender for the gateway in `config` (`delivery.sms.url` must be set); one attempt takes at
    /// most `timeout`.
    pub fn new(config: &SmsConfig, timeout: Duration) -> Result<Self, ChannelConfigError> {
        let url = http::url(&config.url, "delivery.sms.url")?;
        let from = config.sender.trim();
        if from.is_empty() {
            return Err(ChannelConfigError::Missing("delivery.sms.sender"));
        }
        let token = config.token.expose().trim();
        let authorization = if token.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ChannelConfigError::Invalid {
                    setting: "delivery.sms.token",
                    problem: "not usable in an HTTP header",
                }
            })?;
            value.set_sensitive(true);
            Some(value)
        };
        Ok(Self {
            client: http::client(timeout, "delivery.sms.url")?,
            url,
            authorization,
            from: from.to_owned(),
        })
    }
}

/// What the gateway receives.
#[derive(Serialize)]
struct SmsRequest<'a> {
    to: &'a str,
    from: &'a str,
    message: &'a str,
    reference: &'a str,
}

#[async_trait::async_trait]
impl Sender for SmsSender {
    async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError> {
        let to = e164(message.to)
            .ok_or_else(|| SendError::Permanent("sms number invalid".to_owned()))?;
        // The whole text: the gateway splits it into parts.
        let text = if message.subject.is_empty() {
            message.body.to_owned()
        } else {
            format!("{}\n{}", message.subject, message.body)
        };
        let body = serde_json::to_vec(&SmsRequest {
            to: &to,
            from: &self.from,
            message: &text,
            reference: message.idempotency_key,
        })
        .map_err(|_| SendError::Permanent("sms request not encodable".to_owned()))?;

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "idempotency-key",
            http::idempotency_key(message.idempotency_key)?,
        );
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        http::post(&self.client, &self.url, headers, body).await
    }
}

/// The number in E.164: 8 digits (a Norwegian number, spaces allowed) get `+47`; `+` and 7 to 15
/// digits stay as they are. Anything else is no number.
fn e164(number: &str) -> Option<String> {
    let compact: String = number.chars().filter(|c| *c != ' ').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = compact.strip_prefix('+') {
        (digits(rest) && (7..=15).contains(&rest.len()) && !rest.starts_with('0'))
            .then_some(compact.clone())
    } else if digits(&compact) && compact.len() == 8 {
        Some(format!("+47{compact}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn numbers_go_out_in_e164() {
        assert_eq!(e164("91234567").as_deref(), Some("+4791234567"));
        assert_eq!(e164("912 34 567").as_deref(), Some("+4791234567"));
        assert_eq!(e164("+4791234567").as_deref(), Some("+4791234567"));
        assert_eq!(e164("+46701234567").as_deref(), Some("+46701234567"));
        for bad in [
            "",
            "1234567",
            "912345678",
            "+",
            "+047123456",
            "+47 9123 456a",
            "0047912",
        ] {
            assert_eq!(e164(bad), None, "{bad}");
        }
    }
}

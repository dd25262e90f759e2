//! E-mail over SMTP: a plain-text UTF-8 message, quoted-printable, with the idempotency key in its
//! `Message-ID` and in `X-Landsby-Idempotency-Key`, and its language in `Content-Language`.

use super::{ChannelConfigError, Outgoing, SendError, Sender};
use landsby_platform::config::{SmtpConfig, SmtpTls};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

/// Sends e-mail through the configured SMTP server, one connection an attempt.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    /// A sender for the server in `config` (`delivery.smtp.host` must be set), secured as
    /// `delivery.smtp.tls` says and logged in when `delivery.smtp.username` is set; one attempt
    /// takes at most `timeout`.
    pub fn new(config: &SmtpConfig, timeout: Duration) -> Result<Self, ChannelConfigError> {
        super::check_timeout(timeout)?;
        super::install_crypto();
        let host = config.host.trim();
        if host.is_empty() {
            return Err(ChannelConfigError::Missing("delivery.smtp.host"));
        }
        if config.port == 0 {
            return Err(ChannelConfigError::Invalid {
                setting: "delivery.smtp.port",
                problem: "must not be 0",
            });
        }
        let from: Mailbox =
            config
                .from
                .trim()
                .parse()
                .map_err(|_| ChannelConfigError::Invalid {
                    setting: "delivery.smtp.from",
                    problem: "not an e-mail address",
                })?;
        let tls_failed = |_| ChannelConfigError::Invalid {
            setting: "delivery.smtp.tls",
            problem: "TLS could not be set up for delivery.smtp.host",
        };
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_failed)?
            }
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_failed)?
            }
        };
        let mut builder = builder.port(config.port).timeout(Some(timeout));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            timeout,
        })
    }

    fn message(&self, message: &Outgoing<'_>) -> Result<Message, SendError> {
        let to: Mailbox = message
            .to
            .trim()
            .parse()
            .map_err(|_| SendError::Permanent("email address invalid".to_owned()))?;
        if message.idempotency_key.is_empty() {
            return Err(SendError::Permanent("idempotency key empty".to_owned()));
        }
        let key = mail_key(message.idempotency_key);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .message_id(Some(format!("<{key}@landsby>")))
            .header(IdempotencyKey(key))
            .header(ContentLanguage(message.language.as_str()))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::QuotedPrintable)
                    .body(message.body.to_owned()),
            )
            .map_err(|_| SendError::Permanent("email message invalid".to_owned()))
    }
}

#[async_trait::async_trait]
impl Sender for EmailSender {
    async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError> {
        let email = self.message(message)?;
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(failure(&error)),
            Err(_) => Err(SendError::Transient("smtp timeout".to_owned())),
        }
    }
}

/// A failed attempt, by its reply code (5xx permanent, 4xx transient) or what broke. Never the
/// reply's text: servers quote the address in it.
fn failure(error: &lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = error.status() {
        let reason = format!("smtp {code}");
        return if error.is_permanent() {
            SendError::Permanent(reason)
        } else {
            SendError::Transient(reason)
        };
    }
    let reason = if error.is_timeout() {
        "smtp timeout"
    } else if io_kind(error) == Some(std::io::ErrorKind::ConnectionRefused) {
        "smtp connection refused"
    } else if error.is_tls() {
        "smtp tls"
    } else if error.is_response() {
        "smtp bad reply"
    } else if error.is_client() {
        "smtp client"
    } else {
        "smtp connection"
    };
    SendError::Transient(reason.to_owned())
}

/// The kind of the first I/O error under `error`.
fn io_kind(error: &lettre::transport::smtp::Error) -> Option<std::io::ErrorKind> {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = inner.source();
    }
    None
}

/// The idempotency key in a form that fits a `Message-ID` and a header: itself when it is only
/// ASCII letters, digits, `-` and `_`; otherwise `h.` and its bytes in hex (a dot never occurs in the
/// first form, so the two cannot collide).
fn mail_key(key: &str) -> String {
    if key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        key.to_owned()
    } else {
        let mut out = String::from("h.");
        for b in key.bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `X-Landsby-Idempotency-Key`: the delivery's idempotency key, for the receiving side to drop
/// duplicates.
#[derive(Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Landsby-Idempotency-Key")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `Content-Language` (RFC 3282): the language the text is written in.
#[derive(Clone)]
struct ContentLanguage(&'static str);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        landsby_domain::Language::parse(s.trim())
            .map(|language| Self(language.as_str()))
            .ok_or_else(|| "unknown language".into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::mail_key;

    #[test]
    fn keys_fit_a_message_id() {
        assert_eq!(mail_key("0190a1b2-c3d4_email"), "0190a1b2-c3d4_email");
        assert_eq!(mail_key("a.b"), "h.612e62");
        assert_eq!(mail_key("a:b\r\n"), "h.613a620d0a");
    }
}

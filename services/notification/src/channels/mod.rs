//! The channels a notification goes out on: e-mail over SMTP, SMS through an HTTP gateway, and
//! webhooks signed with HMAC-SHA256 (docs/notifications.md). The in-app inbox is not a channel here:
//! it is the notification's own row.
//!
//! A [`Sender`] makes one attempt and classifies its failure as [`SendError::Transient`] (try again
//! later) or [`SendError::Permanent`] (no use trying again). Every attempt carries the delivery's
//! idempotency key to the far side, so a retry after a lost reply can be dropped there as a
//! duplicate: delivery is at least once.
//!
//! Nothing here prints personal data: an [`Outgoing`]'s `Debug` shows only its id and kind, and a
//! [`SendError`] names what failed ("smtp 550", "http timeout"), never the address, the number or
//! the message, even when the far side's reply quotes them.

mod email;
mod http;
mod sms;
mod webhook;

pub use email::EmailSender;
pub use sms::SmsSender;
pub use webhook::{WebhookSender, sign, verify};

use std::fmt;
use std::time::Duration;

/// One message to deliver on one channel. Holds personal data: its `Debug` prints only
/// `notification_id` and `kind`.
pub struct Outgoing<'a> {
    /// The notification this delivers.
    pub notification_id: uuid::Uuid,
    /// Carried to the far side so it can drop duplicates (a retry after a lost reply).
    pub idempotency_key: &'a str,
    /// The agency, 4 digits.
    pub agency: &'a str,
    /// The case the notification is about.
    pub case_id: uuid::Uuid,
    /// What happened, e.g. `visit_scheduled`.
    pub kind: &'a str,
    /// The language the text is written in.
    pub language: landsby_domain::Language,
    /// The subject (e-mail subject; the first line of an SMS).
    pub subject: &'a str,
    /// The text.
    pub body: &'a str,
    /// The e-mail address (e-mail), the phone number (SMS: 8 digits, or E.164 `+47…`); empty for
    /// webhooks.
    pub to: &'a str,
}

impl fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("notification_id", &self.notification_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why an attempt failed, classified, with no personal data in the text (never the address, the
/// number or the message): e.g. "smtp 550", "smtp connection refused", "http 503", "http timeout".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the far side was busy, away or slow.
    #[error("transient: {0}")]
    Transient(String),
    /// No use trying again: the far side refused this message for good.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// Whether trying again is no use.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }

    /// What failed, without the classification, e.g. "smtp 550".
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient(reason) | SendError::Permanent(reason) => reason,
        }
    }
}

/// Delivers a message on one channel: one attempt, at most the attempt timeout it was built with.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    /// Makes one attempt to deliver `message`.
    async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError>;
}

/// A channel configured so that it cannot be used. The message names the setting, never a secret
/// or the value.
#[derive(Debug, thiserror::Error)]
pub enum ChannelConfigError {
    /// The setting is empty, and the channel needs it.
    #[error("{0}: not set")]
    Missing(&'static str),
    /// The setting has a value the channel cannot use.
    #[error("{setting}: {problem}")]
    Invalid {
        /// The setting, as in the settings table, e.g. `delivery.smtp.from`.
        setting: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The process's rustls crypto provider (see `landsby_platform::client::install_crypto`), which the
/// HTTP channels need. The senders' `new` call it too.
pub use landsby_platform::client::install_crypto;

/// Refuses an attempt timeout of zero, which would fail every attempt.
fn check_timeout(timeout: Duration) -> Result<(), ChannelConfigError> {
    if timeout.is_zero() {
        Err(ChannelConfigError::Invalid {
            setting: "delivery.attempt_timeout",
            problem: "must be more than zero",
        })
    } else {
        Ok(())
    }
}

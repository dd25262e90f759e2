//! The notification service's records and the rules that need no database: which channels a
//! notification goes out on, when a failed attempt is tried again, quiet hours, and where a
//! notification stands given its deliveries.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use landsby_domain::time::oslo_local;
use landsby_domain::{AgencyId, Language};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

landsby_domain::coded_enum! {
    /// The channels a notification goes out on.
    Channel {
        /// E-mail over SMTP.
        Email = "email",
        /// SMS through the HTTP gateway.
        Sms = "sms",
        /// A signed JSON POST to the agency's platform.
        Webhook = "webhook",
        /// The in-app inbox.
        Inbox = "inbox",
    }
}

landsby_domain::coded_enum! {
    /// Where one delivery stands.
    DeliveryStatus {
        /// Waiting for its first attempt.
        Pending = "pending",
        /// Held until quiet hours end.
        Deferred = "deferred",
        /// Failed for a reason that may pass; tried again after a backoff.
        Retrying = "retrying",
        /// The channel accepted it.
        Delivered = "delivered",
        /// Given up.
        Dead = "dead",
    }
}

landsby_domain::coded_enum! {
    /// Where a notification stands on all its channels.
    NotificationStatus {
        /// Some channel is still to be delivered.
        Pending = "pending",
        /// Delivered on every channel.
        Delivered = "delivered",
        /// Some channel gave up and none is pending.
        Failed = "failed",
    }
}

impl DeliveryStatus {
    /// Still to be sent.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Deferred | Self::Retrying)
    }
}

/// A notification's status from its deliveries'.
pub fn status_of(deliveries: &[DeliveryStatus]) -> NotificationStatus {
    if deliveries.iter().any(|d| d.is_open()) {
        NotificationStatus::Pending
    } else if deliveries.contains(&DeliveryStatus::Dead) {
        NotificationStatus::Failed
    } else {
        NotificationStatus::Delivered
    }
}

/// Who a notification is for, as stored: ids, side and how to reach them. Personal data: read only
/// to deliver and to answer the agency's own staff.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    /// A village member's id, or empty.
    pub member_id: Option<Uuid>,
    /// A staff member's `sub`, or empty.
    pub staff_subject: Option<String>,
    /// The member's side of the case (`birth_family`, `foster_family`, `professional`); None counts
    /// as the birth family's.
    pub affiliation: Option<String>,
    /// E-mail addresses.
    pub emails: Vec<String>,
    /// Phone numbers.
    pub phones: Vec<String>,
    /// The language the sender gave.
    pub language: Option<Language>,
}

impl std::fmt::Debug for RecipientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientRecord").finish_non_exhaustive()
    }
}

impl RecipientRecord {
    /// The id preferences and the inbox are kept under.
    pub fn id(&self) -> String {
        match (&self.member_id, &self.staff_subject) {
            (Some(id), _) => id.to_string(),
            (None, Some(sub)) => sub.clone(),
            (None, None) => String::new(),
        }
    }
}

/// A notification as stored, with its deliveries.
#[derive(Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: Uuid,
    pub agency: AgencyId,
    pub case_id: Uuid,
    pub idempotency_key: String,
    pub fingerprint: String,
    pub recipient: RecipientRecord,
    pub kind: String,
    pub language: Language,
    pub subject: String,
    pub body: String,
    pub redacted: bool,
    pub status: NotificationStatus,
    pub created_at: DateTime<Utc>,
    pub deliveries: Vec<DeliveryRecord>,
}

impl std::fmt::Debug for NotificationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// One delivery of a notification on a channel.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub channel: Channel,
    /// The e-mail address or phone number; empty for the webhook and the inbox.
    pub address: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRecord>,
    pub next_attempt_at: DateTime<Utc>,
    pub dead_reason: String,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for DeliveryRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryRecord")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub n: i64,
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// Classified, never the message or the address.
    pub error: String,
    pub permanent: bool,
}

/// One entry of an inbox.
#[derive(Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub notification_id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for InboxEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxEntry")
            .field("notification_id", &self.notification_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A recipient's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub recipient_id: String,
    /// Empty: every channel the recipient can be reached on.
    pub channels: Vec<Channel>,
    pub language: Option<Language>,
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
    /// 0 until they are first set.
    pub version: i64,
}

impl Preferences {
    /// The preferences of a recipient who has set none.
    pub fn defaults(recipient_id: String, quiet_from: NaiveTime, quiet_until: NaiveTime) -> Self {
        Self {
            recipient_id,
            channels: Vec::new(),
            language: None,
            quiet_from,
            quiet_until,
            version: 0,
        }
    }
}

/// The channels a notification goes out on: the inbox always; e-mail and SMS where the recipient can
/// be reached and the channel is on; the webhook when it is on. The recipient's choice narrows the
/// list (the inbox stays).
pub fn channels_for(
    recipient: &RecipientRecord,
    chosen: &[Channel],
    on: impl Fn(Channel) -> bool,
) -> Vec<(Channel, String)> {
    let wanted = |c: Channel| on(c) && (chosen.is_empty() || chosen.contains(&c));
    let mut out = vec![(Channel::Inbox, String::new())];
    if wanted(Channel::Email)
        && let Some(email) = recipient.emails.first()
    {
        out.push((Channel::Email, email.clone()));
    }
    if wanted(Channel::Sms)
        && let Some(phone) = recipient.phones.first()
    {
        out.push((Channel::Sms, phone.clone()));
    }
    if wanted(Channel::Webhook) {
        out.push((Channel::Webhook, String::new()));
    }
    out
}

pub use landsby_platform::retry::backoff;

/// When an SMS due at `now` may go: `now`, or the end of quiet hours on the Europe/Oslo clock.
/// Quiet hours run from `from` to `until`, over midnight when `from` is later than `until`.
pub fn after_quiet_hours(now: DateTime<Utc>, from: NaiveTime, until: NaiveTime) -> DateTime<Utc> {
    if from == until {
        return now;
    }
    let local = oslo_local(now);
    let time = local.time();
    let quiet = if from < until {
        time >= from && time < until
    } else {
        time >= from || time < until
    };
    if !quiet {
        return now;
    }
    let mut end = local.date().and_time(until);
    if end <= local {
        end += Duration::days(1);
    }
    landsby_domain::time::oslo_instant(end).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn quiet_hours_defer_to_their_end_on_the_oslo_clock() {
        // 22:30 CET on a winter evening → 08:00 CET the next morning.
        let evening = Utc.with_ymd_and_hms(2027, 1, 12, 21, 30, 0).unwrap();
        assert_eq!(
            after_quiet_hours(evening, t(21, 0), t(8, 0)),
            Utc.with_ymd_and_hms(2027, 1, 13, 7, 0, 0).unwrap()
        );
        // 06:00 CEST in summer → 08:00 CEST the same morning.
        let early = Utc.with_ymd_and_hms(2027, 6, 1, 4, 0, 0).unwrap();
        assert_eq!(
            after_quiet_hours(early, t(21, 0), t(8, 0)),
            Utc.with_ymd_and_hms(2027, 6, 1, 6, 0, 0).unwrap()
        );
        // Midday: at once.
        let noon = Utc.with_ymd_and_hms(2027, 6, 1, 10, 0, 0).unwrap();
        assert_eq!(after_quiet_hours(noon, t(21, 0), t(8, 0)), noon);
        // Quiet hours within a day, and none at all.
        let lunch = Utc.with_ymd_and_hms(2027, 6, 1, 10, 30, 0).unwrap();
        assert_eq!(
            after_quiet_hours(lunch, t(12, 0), t(13, 0)),
            Utc.with_ymd_and_hms(2027, 6, 1, 11, 0, 0).unwrap(),
            "10:30 UTC is 12:30 CEST: quiet until 13:00 CEST"
        );
        assert_eq!(after_quiet_hours(evening, t(8, 0), t(8, 0)), evening);
    }

    #[test]
    fn the_inbox_always_and_other_channels_where_reachable_on_and_chosen() {
        let r = RecipientRecord {
            member_id: Some(Uuid::nil()),
            staff_subject: None,
            affiliation: None,
            emails: vec!["a@example.no".into()],
            phones: vec![],
            language: None,
        };
        let all = channels_for(&r, &[], |_| true);
        let names: Vec<Channel> = all.iter().map(|(c, _)| *c).collect();
        assert_eq!(names, [Channel::Inbox, Channel::Email, Channel::Webhook]);
        let sms_only = channels_for(&r, &[Channel::Sms], |_| true);
        assert_eq!(sms_only.len(), 1, "no phone: the inbox only");
        let email_off = channels_for(&r, &[], |c| c != Channel::Email);
        assert!(email_off.iter().all(|(c, _)| *c != Channel::Email));
    }

    #[test]
    fn a_notification_is_pending_while_a_delivery_is_open() {
        use DeliveryStatus::*;
        assert_eq!(
            status_of(&[Delivered, Retrying]),
            NotificationStatus::Pending
        );
        assert_eq!(status_of(&[Delivered, Dead]), NotificationStatus::Failed);
        assert_eq!(
            status_of(&[Delivered, Delivered]),
            NotificationStatus::Delivered
        );
    }
}

//! The contract's messages to the service's records and back, with the checks of what callers send.

use super::{Channels, MAX_PROTECTED, MAX_PROTECTED_LEN};
use crate::model::{
    AttemptRecord, Channel, DeliveryRecord, DeliveryStatus, InboxEntry, NotificationRecord,
    NotificationStatus, Preferences, RecipientRecord,
};
use landsby_domain::{ContactKind, Language};
use landsby_platform::validate::{Violations, etag, known, timestamp_to_proto};
use landsby_platform::vocab::{
    affiliation_from, affiliation_to, contact_points, language_from, language_to,
};
use landsby_proto::case as cpb;
use landsby_proto::common;
use landsby_proto::notification as pb;

pub fn channel_from(p: pb::Channel) -> Option<Channel> {
    match p {
        pb::Channel::Unspecified => None,
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Sms => Some(Channel::Sms),
        pb::Channel::Webhook => Some(Channel::Webhook),
        pb::Channel::Inbox => Some(Channel::Inbox),
    }
}

pub fn channel_to(c: Channel) -> pb::Channel {
    match c {
        Channel::Email => pb::Channel::Email,
        Channel::Sms => pb::Channel::Sms,
        Channel::Webhook => pb::Channel::Webhook,
        Channel::Inbox => pb::Channel::Inbox,
    }
}

pub fn status_from(p: pb::NotificationStatus) -> Option<NotificationStatus> {
    match p {
        pb::NotificationStatus::Unspecified => None,
        pb::NotificationStatus::Pending => Some(NotificationStatus::Pending),
        pb::NotificationStatus::Delivered => Some(NotificationStatus::Delivered),
        pb::NotificationStatus::Failed => Some(NotificationStatus::Failed),
    }
}

pub fn status_to(s: NotificationStatus) -> pb::NotificationStatus {
    match s {
        NotificationStatus::Pending => pb::NotificationStatus::Pending,
        NotificationStatus::Delivered => pb::NotificationStatus::Delivered,
        NotificationStatus::Failed => pb::NotificationStatus::Failed,
    }
}

fn delivery_status_to(s: DeliveryStatus) -> pb::DeliveryStatus {
    match s {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Deferred => pb::DeliveryStatus::Deferred,
        DeliveryStatus::Retrying => pb::DeliveryStatus::Retrying,
        DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
        DeliveryStatus::Dead => pb::DeliveryStatus::Dead,
    }
}

/// The recipient: exactly one of a member id (a UUID) and a staff `sub`, their side, contact points
/// and language.
pub fn recipient(v: &mut Violations, field: &str, r: &pb::Recipient) -> Option<RecipientRecord> {
    let (member_id, staff_subject) = match (r.member_id.is_empty(), r.staff_subject.is_empty()) {
        (false, true) => (
            v.uuid(&format!("{field}.member_id"), &r.member_id)
                .map(Some),
            Some(None),
        ),
        (true, false) => (
            Some(None),
            v.text(&format!("{field}.staff_subject"), &r.staff_subject, 200)
                .map(Some),
        ),
        _ => {
            v.add(
                format!("{field}.member_id"),
                "give exactly one of member_id and staff_subject",
            );
            (None, None)
        }
    };
    let affiliation = v.optional_enumeration(
        &format!("{field}.affiliation"),
        r.affiliation,
        known::<cpb::Affiliation>,
        affiliation_from,
    );
    let points = contact_points(v, &format!("{field}.contact_points"), &r.contact_points);
    let language = v.optional_enumeration(
        &format!("{field}.language"),
        r.language,
        known::<common::Language>,
        language_from,
    );
    let points = points?;
    Some(RecipientRecord {
        member_id: member_id?,
        staff_subject: staff_subject?,
        affiliation: affiliation?.map(|a| a.as_str().to_owned()),
        emails: points
            .iter()
            .filter(|p| p.kind == ContactKind::Email)
            .map(|p| p.value.clone())
            .collect(),
        phones: points
            .iter()
            .filter(|p| p.kind == ContactKind::Phone)
            .map(|p| p.value.clone())
            .collect(),
        language: language?,
    })
}

/// The case's protection as the caller gives it (none given: nothing new).
pub fn protection(
    v: &mut Violations,
    field: &str,
    p: Option<&pb::CaseProtection>,
) -> Option<(bool, Vec<String>)> {
    let Some(p) = p else {
        return Some((false, Vec::new()));
    };
    if p.protected_values.len() > MAX_PROTECTED {
        v.add(
            format!("{field}.protected_values"),
            format!("at most {MAX_PROTECTED} values"),
        );
        return None;
    }
    let values: Vec<Option<String>> = p
        .protected_values
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            v.text(
                &format!("{field}.protected_values[{i}]"),
                raw,
                MAX_PROTECTED_LEN,
            )
        })
        .collect();
    Some((p.secret_address, values.into_iter().collect::<Option<_>>()?))
}

fn recipient_to(r: &RecipientRecord) -> pb::Recipient {
    let email = r.emails.iter().map(|e| common::ContactPoint {
        kind: common::ContactKind::Email.into(),
        value: e.clone(),
    });
    let phone = r.phones.iter().map(|p| common::ContactPoint {
        kind: common::ContactKind::Phone.into(),
        value: p.clone(),
    });
    pb::Recipient {
        member_id: r.member_id.map(|m| m.to_string()).unwrap_or_default(),
        staff_subject: r.staff_subject.clone().unwrap_or_default(),
        affiliation: r
            .affiliation
            .as_deref()
            .and_then(landsby_domain::Affiliation::parse)
            .map(|a| affiliation_to(a).into())
            .unwrap_or_default(),
        contact_points: email.chain(phone).collect(),
        language: r
            .language
            .map(|l| language_to(l).into())
            .unwrap_or_default(),
    }
}

fn attempt_to(a: &AttemptRecord) -> pb::Attempt {
    pb::Attempt {
        attempt_time: Some(timestamp_to_proto(a.at)),
        ok: a.ok,
        error: a.error.clone(),
        permanent: a.permanent,
    }
}

fn delivery_to(d: &DeliveryRecord) -> pb::Delivery {
    pb::Delivery {
        channel: channel_to(d.channel).into(),
        status: delivery_status_to(d.status).into(),
        attempts: d.attempts.iter().map(attempt_to).collect(),
        next_attempt_time: d
            .status
            .is_open()
            .then(|| timestamp_to_proto(d.next_attempt_at)),
        dead_reason: d.dead_reason.clone(),
        deliver_time: d.delivered_at.map(timestamp_to_proto),
    }
}

pub fn notification_to(n: &NotificationRecord) -> pb::Notification {
    pb::Notification {
        id: n.id.to_string(),
        case_id: n.case_id.to_string(),
        idempotency_key: n.idempotency_key.clone(),
        recipient: Some(recipient_to(&n.recipient)),
        kind: n.kind.clone(),
        language: language_to(n.language).into(),
        subject: n.subject.clone(),
        body: n.body.clone(),
        status: status_to(n.status).into(),
        deliveries: n.deliveries.iter().map(delivery_to).collect(),
        create_time: Some(timestamp_to_proto(n.created_at)),
        redacted: n.redacted,
    }
}

pub fn inbox_to(e: &InboxEntry) -> pb::InboxItem {
    pb::InboxItem {
        notification_id: e.notification_id.to_string(),
        case_id: e.case_id.to_string(),
        kind: e.kind.clone(),
        subject: e.subject.clone(),
        body: e.body.clone(),
        create_time: Some(timestamp_to_proto(e.created_at)),
        read_time: e.read_at.map(timestamp_to_proto),
    }
}

fn time_to(t: chrono::NaiveTime) -> common::TimeOfDay {
    use chrono::Timelike;
    common::TimeOfDay {
        hours: i32::try_from(t.hour()).unwrap_or(0),
        minutes: i32::try_from(t.minute()).unwrap_or(0),
    }
}

fn time_from(v: &mut Violations, field: &str, t: &common::TimeOfDay) -> Option<chrono::NaiveTime> {
    let time = u32::try_from(t.hours)
        .ok()
        .zip(u32::try_from(t.minutes).ok())
        .and_then(|(h, m)| chrono::NaiveTime::from_hms_opt(h, m, 0));
    if time.is_none() {
        v.add(field, "is not a time of day (hours 0-23, minutes 0-59)");
    }
    time
}

pub fn preferences_to(p: &Preferences) -> pb::Preferences {
    pb::Preferences {
        recipient_id: p.recipient_id.clone(),
        channels: p.channels.iter().map(|c| channel_to(*c).into()).collect(),
        language: p
            .language
            .map(|l| language_to(l).into())
            .unwrap_or_default(),
        quiet_from: Some(time_to(p.quiet_from)),
        quiet_until: Some(time_to(p.quiet_until)),
        etag: if p.version == 0 {
            String::new()
        } else {
            etag(p.version)
        },
    }
}

/// Preferences to set, and the version they replace (0: none set yet, when no etag is given).
pub fn preferences_from(
    v: &mut Violations,
    field: &str,
    p: &pb::Preferences,
    defaults: &Channels,
) -> Option<(Preferences, i64)> {
    let recipient = v.text(&format!("{field}.recipient_id"), &p.recipient_id, 200);
    let mut channels = Vec::new();
    for (i, raw) in p.channels.iter().enumerate() {
        let at = format!("{field}.channels[{i}]");
        if let Some(c) = v.enumeration(&at, *raw, known::<pb::Channel>, channel_from) {
            if channels.contains(&c) {
                v.add(at, "names a channel twice");
            } else {
                channels.push(c);
            }
        }
    }
    let language: Option<Option<Language>> = v.optional_enumeration(
        &format!("{field}.language"),
        p.language,
        known::<common::Language>,
        language_from,
    );
    let quiet_from = match &p.quiet_from {
        Some(t) => time_from(v, &format!("{field}.quiet_from"), t),
        None => Some(defaults.quiet_from),
    };
    let quiet_until = match &p.quiet_until {
        Some(t) => time_from(v, &format!("{field}.quiet_until"), t),
        None => Some(defaults.quiet_until),
    };
    let expected = if p.etag.is_empty() {
        Some(0)
    } else {
        v.etag(&format!("{field}.etag"), &p.etag)
    };
    Some((
        Preferences {
            recipient_id: recipient?,
            channels,
            language: language?,
            quiet_from: quiet_from?,
            quiet_until: quiet_until?,
            version: 0,
        },
        expected?,
    ))
}

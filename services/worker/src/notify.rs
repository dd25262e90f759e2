//! Telling the village: who gets which notice, and sending it to the notification service with an
//! idempotency key made from what it is about and the recipient, so a job run twice sends nothing
//! twice. Every notice carries the case's protection (the secret address flag and the values to
//! withhold: the foster home's name and address, the foster parents' contact points), read from the
//! case service when the notice is sent.
//!
//! | notice | recipients |
//! |---|---|
//! | `step_changed` | parents with visitation rights, foster parents, the assigned caseworker |
//! | `plan_changed` | the plan's parent, foster parents |
//! | `visit_scheduled`, `visit_changed`, `visit_cancelled`, `visit_reminder` | the visit's parent and its participants from the village |
//! | `visit_concern` | the assigned caseworker |
//! | `review_due` | the assigned caseworker |
//! | `review_overdue` | the agency's team lead (`jobs.team_leads`), else the assigned caseworker |

use crate::Ctx;
use crate::error::JobError;
use crate::jobs::VisitChange;
use chrono::{DateTime, SecondsFormat, Utc};
use landsby_domain::VillageRole;
use landsby_domain::notice::Kind;
use landsby_platform::validate::timestamp_from_proto;
use landsby_platform::vocab::role_from;
use landsby_proto::case as cpb;
use landsby_proto::notification as npb;
use landsby_proto::visitation as vpb;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The case and what belongs to it (its village among them), or None when it does not exist for
/// the agency.
async fn snapshot(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
) -> Result<Option<cpb::CaseSnapshot>, JobError> {
    Ok(snapshots(ctx, agency, &[case_id]).await?.remove(&case_id))
}

/// The snapshots of the cases `ids` this agency has, a call per
/// [`READ_CHUNK`](crate::recompute::READ_CHUNK) cases.
pub async fn snapshots(
    ctx: &Ctx,
    agency: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, cpb::CaseSnapshot>, JobError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(crate::recompute::READ_CHUNK) {
        let found = call!(
            ctx,
            agency,
            case.batch_get_case_snapshots(cpb::BatchGetCaseSnapshotsRequest {
                case_ids: chunk.iter().map(Uuid::to_string).collect(),
            })
        )?;
        for s in found.snapshots {
            if let Some(id) = s.case.as_ref().and_then(|c| Uuid::parse_str(&c.id).ok()) {
                out.insert(id, s);
            }
        }
    }
    Ok(out)
}

/// A member's role in the domain's words.
pub fn role(m: &cpb::VillageMember) -> Option<VillageRole> {
    cpb::VillageRole::try_from(m.role).ok().and_then(role_from)
}

/// A member's side: as recorded, else as the role has it (unclear counts as the birth family's).
fn side(m: &cpb::VillageMember) -> cpb::Affiliation {
    match cpb::Affiliation::try_from(m.affiliation) {
        Ok(a) if a != cpb::Affiliation::Unspecified => a,
        _ => role(m).map_or(cpb::Affiliation::BirthFamily, |r| {
            landsby_platform::vocab::affiliation_to(r.default_affiliation())
        }),
    }
}

/// What a parent-side recipient of the case must never be sent.
pub fn protection(case: &cpb::Case, members: &[cpb::VillageMember]) -> npb::CaseProtection {
    let home = case.placement.as_ref().and_then(|p| p.foster_home.as_ref());
    let secret = home.is_some_and(|h| h.address_protected)
        || case
            .board_decision
            .as_ref()
            .is_some_and(|d| d.secret_address);
    let mut values = Vec::new();
    if let Some(home) = home {
        values.push(home.name.clone());
        if let Some(a) = &home.address {
            values.push(a.street.clone());
            values.push(format!("{} {}", a.postal_code, a.city));
        }
    }
    for m in members {
        if role(m) == Some(VillageRole::FosterParent) {
            values.extend(m.contact_points.iter().map(|c| c.value.clone()));
        }
    }
    values.retain(|v| !v.trim().is_empty());
    values.sort();
    values.dedup();
    npb::CaseProtection {
        secret_address: secret,
        protected_values: values,
    }
}

/// A village member as a recipient.
pub fn member(m: &cpb::VillageMember) -> npb::Recipient {
    npb::Recipient {
        member_id: m.id.clone(),
        staff_subject: String::new(),
        affiliation: side(m) as i32,
        contact_points: m.contact_points.clone(),
        language: m.preferred_language,
    }
}

/// A staff member (their `sub`) as a recipient: the in-app inbox of the agency's platform.
pub fn staff(subject: &str) -> npb::Recipient {
    npb::Recipient {
        member_id: String::new(),
        staff_subject: subject.to_owned(),
        affiliation: cpb::Affiliation::Professional as i32,
        contact_points: Vec::new(),
        language: 0,
    }
}

fn recipient_id(r: &npb::Recipient) -> &str {
    if r.member_id.is_empty() {
        &r.staff_subject
    } else {
        &r.member_id
    }
}

/// An instant as the notification service reads it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A notice to tell: what it is about (an event id, a plan's scope version), to whom, of which
/// case. Its idempotency key is `about` and the recipient, so a job run twice sends nothing twice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub case_id: Uuid,
    pub about: String,
    pub recipient: npb::Recipient,
    pub kind: Kind,
    pub params: BTreeMap<String, String>,
    pub protection: npb::CaseProtection,
}

impl Notice {
    fn request(self) -> npb::SendNotificationRequest {
        npb::SendNotificationRequest {
            idempotency_key: format!("{}/{}", self.about, recipient_id(&self.recipient)),
            case_id: self.case_id.to_string(),
            recipient: Some(self.recipient),
            kind: self.kind.as_str().to_owned(),
            parameters: self.params.into_iter().collect(),
            protection: Some(self.protection),
        }
    }
}

/// Sends one notice. Returns whether it is new: a key sent before answers with the first
/// notification, made before this call. (Only the sweep's counts use it; clocks apart by more than
/// a call's latency would miscount, never resend.)
pub async fn send(ctx: &Ctx, agency: &str, notice: Notice) -> Result<bool, JobError> {
    let kind = notice.kind;
    let asked = Utc::now();
    let sent = match call!(
        ctx,
        agency,
        notification.send_notification(notice.request())
    ) {
        Ok(sent) => sent.notification,
        Err(JobError::KeyUsed(_)) => {
            told_before(kind);
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let made = sent
        .and_then(|n| n.create_time)
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)));
    Ok(made.is_some_and(|t| t >= asked))
}

/// Told before, when the case's protection or the member's details were not what they are now:
/// the notice exists, and it is not sent twice.
fn told_before(kind: Kind) {
    tracing::debug!(
        kind = kind.as_str(),
        "a notice told before with other details"
    );
}

/// Notices per BatchSendNotifications call.
const SEND_CHUNK: usize = 100;

/// Sends `notices`, [`SEND_CHUNK`] a call. For each, in order: whether it is new, or why it was
/// refused for good (a chunk refused for good is sent again a notice at a time, so that one
/// notice's refusal is its own). A service that is away fails the whole (sending again sends
/// nothing twice).
pub async fn send_all(
    ctx: &Ctx,
    agency: &str,
    notices: Vec<Notice>,
) -> Result<Vec<Result<bool, JobError>>, JobError> {
    let mut out = Vec::with_capacity(notices.len());
    let mut chunks: Vec<Vec<Notice>> = notices
        .chunks(SEND_CHUNK)
        .rev()
        .map(<[Notice]>::to_vec)
        .collect();
    while let Some(chunk) = chunks.pop() {
        let kinds: Vec<Kind> = chunk.iter().map(|n| n.kind).collect();
        let n = chunk.len();
        let sent = call!(
            ctx,
            agency,
            notification.batch_send_notifications(npb::BatchSendNotificationsRequest {
                items: chunk.iter().cloned().map(Notice::request).collect(),
            })
        );
        match sent {
            Ok(sent) if sent.results.len() == n => {
                for (kind, r) in kinds.into_iter().zip(sent.results) {
                    if r.key_used {
                        told_before(kind);
                    }
                    out.push(Ok(r.created));
                }
            }
            Ok(_) => {
                return Err(JobError::Retry(
                    "the notification service answered a batch with another number of results"
                        .into(),
                ));
            }
            Err(JobError::Permanent(_)) if n > 1 => {
                chunks.extend(chunk.into_iter().rev().map(|notice| vec![notice]));
            }
            Err(e @ JobError::Permanent(_)) => out.push(Err(e)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The parents with visitation rights and the foster parents.
pub fn family(members: &[cpb::VillageMember]) -> impl Iterator<Item = &cpb::VillageMember> {
    members.iter().filter(|m| {
        (m.has_visitation_rights && role(m).is_some_and(VillageRole::is_parent))
            || role(m) == Some(VillageRole::FosterParent)
    })
}

/// The foster parents.
pub fn foster_parents(members: &[cpb::VillageMember]) -> impl Iterator<Item = &cpb::VillageMember> {
    members
        .iter()
        .filter(|m| role(m) == Some(VillageRole::FosterParent))
}

async fn visit(ctx: &Ctx, agency: &str, visit_id: Uuid) -> Result<Option<vpb::Visit>, JobError> {
    let found = call!(
        ctx,
        agency,
        visitation.get_visit(vpb::GetVisitRequest {
            visit_id: visit_id.to_string(),
        })
    );
    match found {
        Ok(r) => Ok(r.visit),
        Err(JobError::Gone(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where a visit takes place, in words.
pub fn place_text(frame: Option<&vpb::Frame>) -> String {
    let Some(frame) = frame else {
        return "Avtales med barneverntjenesten".into();
    };
    if !frame.place_description.trim().is_empty() {
        return frame.place_description.clone();
    }
    match vpb::Place::try_from(frame.place) {
        Ok(vpb::Place::AgencyPremises) => "Barneverntjenestens lokaler".into(),
        Ok(vpb::Place::Community) => "Ute i nærmiljøet".into(),
        Ok(vpb::Place::FosterHome) => "Fosterhjemmet".into(),
        Ok(vpb::Place::ParentsHome) => "Foreldrenes hjem".into(),
        _ => "Avtales med barneverntjenesten".into(),
    }
}

/// Who hears about a visit: its parent and its participants from the village.
pub fn visit_recipients<'a>(
    v: &vpb::Visit,
    members: &'a [cpb::VillageMember],
) -> Vec<&'a cpb::VillageMember> {
    let mut ids: Vec<&str> = vec![v.parent_id.as_str()];
    if let Some(frame) = &v.frame {
        ids.extend(frame.participants.iter().map(|p| p.member_id.as_str()));
    }
    members
        .iter()
        .filter(|m| ids.contains(&m.id.as_str()))
        .collect()
}

fn start_of(v: &vpb::Visit) -> Option<DateTime<Utc>> {
    timestamp_from_proto(v.start_time.as_ref())
}

/// The case, its village and one of its visits; None when the case or the visit is gone.
async fn case_and_visit(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    visit_id: Uuid,
) -> Result<Option<(cpb::Case, Vec<cpb::VillageMember>, vpb::Visit)>, JobError> {
    let snapshot = snapshot(ctx, agency, case_id).await?;
    let visit = visit(ctx, agency, visit_id).await?;
    Ok(match (snapshot, visit) {
        (
            Some(cpb::CaseSnapshot {
                case: Some(case),
                members,
                ..
            }),
            Some(v),
        ) => Some((case, members, v)),
        _ => None,
    })
}

/// Tells a visit's parent and participants that it was scheduled, moved or cancelled.
pub async fn visit_notice(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    visit_id: Uuid,
    event_id: &str,
    change: VisitChange,
    previous_start: Option<DateTime<Utc>>,
) -> Result<(), JobError> {
    let Some((case, members, v)) = case_and_visit(ctx, agency, case_id, visit_id).await? else {
        return Ok(());
    };
    let Some(start) = start_of(&v) else {
        return Err(JobError::Permanent("a visit without a start".into()));
    };
    let protection = protection(&case, &members);
    let mut params = BTreeMap::new();
    params.insert("start".to_owned(), rfc3339(start));
    let kind = match change {
        VisitChange::Scheduled => {
            params.insert("duration_minutes".into(), v.duration_minutes.to_string());
            params.insert("place".into(), place_text(v.frame.as_ref()));
            Kind::VisitScheduled
        }
        VisitChange::Rescheduled => {
            params.insert("duration_minutes".into(), v.duration_minutes.to_string());
            params.insert("place".into(), place_text(v.frame.as_ref()));
            if let Some(previous) = previous_start {
                params.insert("previous_start".into(), rfc3339(previous));
            }
            Kind::VisitChanged
        }
        VisitChange::Cancelled => Kind::VisitCancelled,
    };
    let notices = visit_recipients(&v, &members)
        .into_iter()
        .map(|m| Notice {
            case_id,
            about: event_id.to_owned(),
            recipient: member(m),
            kind,
            params: params.clone(),
            protection: protection.clone(),
        })
        .collect();
    send_all(ctx, agency, notices)
        .await?
        .into_iter()
        .try_for_each(|sent| sent.map(drop))
}

/// Tells the assigned caseworker that a completed visit's report raised a concern.
pub async fn concern_notice(
    ctx: &Ctx,
    agency: &str,
    case_id: Uuid,
    visit_id: Uuid,
    event_id: &str,
) -> Result<(), JobError> {
    let Some((case, members, v)) = case_and_visit(ctx, agency, case_id, visit_id).await? else {
        return Ok(());
    };
    let Some(start) = start_of(&v) else {
        return Err(JobError::Permanent("a visit without a start".into()));
    };
    if case.assigned_caseworker.is_empty() {
        return Ok(());
    }
    let mut params = BTreeMap::new();
    params.insert("start".to_owned(), rfc3339(start));
    let notice = Notice {
        case_id,
        about: event_id.to_owned(),
        recipient: staff(&case.assigned_caseworker),
        kind: Kind::VisitConcern,
        params,
        protection: protection(&case, &members),
    };
    send(ctx, agency, notice).await.map(drop)
}

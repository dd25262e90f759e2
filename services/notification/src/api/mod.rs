//! The gRPC API of the notification service. Each handler: who is calling and may they (roles),
//! validate the request at the edge, call the store scoped to the caller's agency, answer. Every call
//! leaves an audit row (see `landsby_platform::audit`).
//!
//! SendNotification writes the message here, not the caller: the template of the kind in the
//! recipient's language, then, for a parent-side recipient of a case with a secret address, every
//! protected value withheld. Only the written message is stored and sent.

mod authz;
mod convert;

pub use authz::Rpc;

use crate::model::{
    Channel, DeliveryRecord, DeliveryStatus, NotificationRecord, NotificationStatus, Preferences,
    channels_for,
};
use crate::store::{Accepted, Accepting, Cursor, Filter, Store, Writer};
use chrono::NaiveTime;
use landsby_domain::Role;
use landsby_domain::notice::{self, Kind};
use landsby_domain::{Affiliation, Language};
use landsby_platform::audit::{Auditor, Call};
use landsby_platform::client::{CaseAccess, OnBehalf};
use landsby_platform::pagination::{PageTokens, page_size};
use landsby_platform::validate::{Violations, fingerprint_bytes};
use landsby_platform::{ApiError, Caller};
use landsby_proto::notification::{self as pb, notification_service_server::NotificationService};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The longest idempotency key.
const MAX_KEY: usize = 200;
/// The most notifications one BatchSendNotifications carries.
const MAX_BATCH: usize = 200;
/// The most protected values one request may carry, and the longest one.
const MAX_PROTECTED: usize = 20;
const MAX_PROTECTED_LEN: usize = 500;
/// The most inbox entries one MarkInboxRead may name.
const MAX_MARK: usize = 500;
/// The most notifications one PurgeNotifications removes, and how many when it does not say.
const MAX_PURGE: usize = 1000;
const DEFAULT_PURGE: usize = 500;
/// Retention never removes a notification younger than this.
const MIN_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// What the API needs to know of the delivery side.
#[derive(Debug, Clone)]
pub struct Channels {
    /// E-mail is configured.
    pub email: bool,
    /// SMS is configured.
    pub sms: bool,
    /// Webhooks are configured.
    pub webhook: bool,
    /// Quiet hours for recipients who have not chosen theirs.
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
}

impl Channels {
    fn on(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::Webhook => self.webhook,
            Channel::Inbox => true,
        }
    }
}

/// The notification service over a store.
pub struct NotificationApi {
    store: Arc<dyn Store>,
    tokens: PageTokens,
    auditor: Auditor,
    channels: Channels,
    /// Woken when deliveries are queued.
    queued: Arc<Notify>,
    /// Need to know of a case, asked of the case service.
    access: CaseAccess,
}

impl NotificationApi {
    /// The API over `store`, with page tokens from `tokens`, audited by `auditor`, delivering on
    /// `channels`; `queued` is woken when deliveries are queued.
    pub fn new(
        store: Arc<dyn Store>,
        tokens: PageTokens,
        auditor: Auditor,
        channels: Channels,
        queued: Arc<Notify>,
        access: CaseAccess,
    ) -> Self {
        Self {
            store,
            tokens,
            auditor,
            channels,
            queued,
            access,
        }
    }

    /// The entries of a recipient's inbox the caller may see: all of them for a portal and for the
    /// recipient themselves, otherwise those of the cases the caller may open.
    async fn visible(
        &self,
        caller: &Caller,
        on_behalf: &OnBehalf,
        recipient: &str,
        rows: Vec<crate::model::InboxEntry>,
    ) -> Result<Vec<crate::model::InboxEntry>, ApiError> {
        if caller.has_any(&[Role::Service, Role::Portal]) || caller.subject == recipient {
            return Ok(rows);
        }
        let mut open = std::collections::HashMap::new();
        for case_id in rows.iter().map(|e| e.case_id) {
            if open.contains_key(&case_id) {
                continue;
            }
            let may = match self.access.check(caller, on_behalf, case_id, "case").await {
                Ok(()) => true,
                Err(ApiError::NotFound { .. }) => false,
                Err(other) => return Err(other),
            };
            open.insert(case_id, may);
        }
        Ok(rows
            .into_iter()
            .filter(|e| open.get(&e.case_id).copied().unwrap_or(false))
            .collect())
    }

    async fn begin<T>(&self, request: &Request<T>, rpc: Rpc) -> Result<(Caller, Call), Status> {
        self.auditor
            .begin(request, rpc.method(), rpc.allowed())
            .await
    }

    async fn preferences_of(
        &self,
        caller: &Caller,
        recipient_id: &str,
    ) -> Result<Preferences, ApiError> {
        Ok(self
            .preferences_of_all(caller, &[recipient_id])
            .await?
            .remove(recipient_id)
            .unwrap_or_else(|| self.default_preferences(recipient_id)))
    }

    /// The preferences of those of these recipients who have set them, by recipient.
    async fn preferences_of_all(
        &self,
        caller: &Caller,
        recipient_ids: &[&str],
    ) -> Result<HashMap<String, Preferences>, ApiError> {
        Ok(self
            .store
            .preferences(&caller.agency, recipient_ids)
            .await?
            .into_iter()
            .map(|p| (p.recipient_id.clone(), p))
            .collect())
    }

    fn default_preferences(&self, recipient_id: &str) -> Preferences {
        Preferences::defaults(
            recipient_id.to_owned(),
            self.channels.quiet_from,
            self.channels.quiet_until,
        )
    }

    /// Accepts what was asked, in one transaction: each in its recipient's language and on their
    /// channels, written inside the store's transaction with the case's protection locked.
    async fn accept(
        &self,
        caller: &Caller,
        audit: landsby_platform::audit::AuditEntry,
        asked: Vec<Asked>,
    ) -> Result<Vec<Accepted>, ApiError> {
        let ids: Vec<String> = asked.iter().map(|a| a.recipient.id()).collect();
        let mut unique: Vec<&str> = ids.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let prefs = self.preferences_of_all(caller, &unique).await?;
        let at = audit.at;
        let items = asked
            .into_iter()
            .zip(&ids)
            .map(|(a, id)| {
                let prefs = prefs
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| self.default_preferences(id));
                self.accepting(caller, at, a, &prefs)
            })
            .collect();
        let accepted = self.store.accept_all(&caller.agency, items, audit).await?;
        if accepted.iter().any(|a| matches!(a, Accepted::Made(_))) {
            self.queued.notify_one();
        }
        Ok(accepted)
    }

    /// The notification `a` asks for, given its recipient's preferences.
    fn accepting(
        &self,
        caller: &Caller,
        at: chrono::DateTime<chrono::Utc>,
        a: Asked,
        prefs: &Preferences,
    ) -> Accepting {
        let Asked {
            key,
            case_id,
            recipient,
            kind,
            params,
            protection,
            fingerprint,
        } = a;
        let language = prefs
            .language
            .or(recipient.language)
            .unwrap_or(Language::Nb);
        let affiliation = recipient
            .affiliation
            .as_deref()
            .and_then(Affiliation::parse);
        let parent_side = notice::parent_side(affiliation);
        let write: Writer = Box::new(move |secret: bool, protected: &[String]| {
            let written = notice::render(kind, language, &params)
                .map_err(|_| ApiError::internal("checked parameters did not render"))?;
            if secret && parent_side {
                let (subject, a) = notice::redact(&written.subject, protected, language);
                let (body, b) = notice::redact(&written.body, protected, language);
                Ok((subject, body, a || b))
            } else {
                Ok((written.subject, written.body, false))
            }
        });
        let deliveries = channels_for(&recipient, &prefs.channels, |c| self.channels.on(c))
            .into_iter()
            .map(|(channel, address)| DeliveryRecord {
                id: Uuid::now_v7(),
                channel,
                address,
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                next_attempt_at: at,
                dead_reason: String::new(),
                delivered_at: None,
            })
            .collect();
        Accepting {
            notification: NotificationRecord {
                id: Uuid::now_v7(),
                agency: caller.agency.clone(),
                case_id,
                idempotency_key: key,
                fingerprint,
                recipient,
                kind: kind.as_str().to_owned(),
                language,
                subject: String::new(),
                body: String::new(),
                redacted: false,
                status: NotificationStatus::Pending,
                created_at: at,
                deliveries,
            },
            protection,
            write,
        }
    }
}

/// A notification asked for, as read from a request.
struct Asked {
    key: String,
    case_id: Uuid,
    recipient: crate::model::RecipientRecord,
    kind: Kind,
    params: BTreeMap<String, String>,
    protection: (bool, Vec<String>),
    /// What makes two requests the same ([`request_fingerprint`]).
    fingerprint: String,
}

/// Reads a SendNotification request whose case is `case_id` (read already), its fields named
/// `{prefix}field`; None when anything is wrong (in `v`).
fn asked(
    v: &mut Violations,
    prefix: &str,
    req: &pb::SendNotificationRequest,
    case_id: Option<Uuid>,
) -> Result<Option<Asked>, ApiError> {
    let key_field = format!("{prefix}idempotency_key");
    let key = v
        .text(&key_field, &req.idempotency_key, MAX_KEY)
        .filter(|k| {
            let visible = k.bytes().all(|b| b.is_ascii_graphic());
            if !visible {
                v.add(
                    key_field.as_str(),
                    "must be visible ASCII characters (it travels in HTTP headers)",
                );
            }
            visible
        });
    let recipient_field = format!("{prefix}recipient");
    let recipient = v
        .required(&recipient_field, req.recipient.as_ref())
        .and_then(|r| convert::recipient(v, &recipient_field, r));
    let kind = Kind::parse(&req.kind);
    if kind.is_none() {
        v.add(format!("{prefix}kind"), "is not a notification kind");
    }
    let params = parameters(&req.parameters);
    if let Some(kind) = kind {
        for problem in notice::check(kind, &params) {
            v.add(format!("{prefix}{}", problem.field), problem.problem);
        }
    }
    let protection =
        convert::protection(v, &format!("{prefix}protection"), req.protection.as_ref());
    let (Some(key), Some(case_id), Some(recipient), Some(kind), Some(protection)) =
        (key, case_id, recipient, kind, protection)
    else {
        return Ok(None);
    };
    let fingerprint = request_fingerprint(case_id, &recipient, kind, &params, &protection)?;
    Ok(Some(Asked {
        key,
        case_id,
        recipient,
        kind,
        params,
        protection,
        fingerprint,
    }))
}

/// The refusal of a key used before for a different notification.
fn key_used(field: &str) -> ApiError {
    ApiError::invalid(
        field,
        "was already used for a different notification; use a new key for a new one",
    )
}

/// A recipient id: a village member's UUID or a staff member's `sub`.
fn recipient_id(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    v.text(field, raw, 200)
}

/// The request's parameters, in order.
fn parameters(raw: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    raw.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// What makes two SendNotification requests the same: what the service read from them (trimmed
/// text, parameters in key order, no protection the same as an empty one), not how they were
/// encoded.
fn request_fingerprint(
    case_id: Uuid,
    recipient: &crate::model::RecipientRecord,
    kind: Kind,
    params: &BTreeMap<String, String>,
    protection: &(bool, Vec<String>),
) -> Result<String, ApiError> {
    let read = serde_json::to_vec(&(case_id, recipient, kind, params, protection))
        .map_err(|_| ApiError::internal("a request could not be fingerprinted"))?;
    Ok(fingerprint_bytes(&read))
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn send_notification(
        &self,
        request: Request<pb::SendNotificationRequest>,
    ) -> Result<Response<pb::SendNotificationResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::SendNotification).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let case_id = v.uuid("case_id", &req.case_id);
            call.audit.case_id = case_id;
            // Need to know before anything else of the request is looked at.
            if let Some(case_id) = case_id {
                self.access
                    .check(&caller, &on_behalf, case_id, "case")
                    .await?;
            }
            let asked = asked(&mut v, "", &req, case_id)?;
            v.finish()?;
            let asked = asked
                .ok_or_else(|| ApiError::internal("validated notification without its parts"))?;
            let accepted = self
                .accept(&caller, call.audit.clone(), vec![asked])
                .await?
                .pop();
            match accepted {
                Some(Accepted::Made(n) | Accepted::Before(n)) => Ok(n),
                Some(Accepted::KeyUsed) => Err(key_used("idempotency_key")),
                None => Err(ApiError::internal(
                    "an accepted notification without its answer",
                )),
            }
        }
        .await;
        let notification = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::SendNotificationResponse {
            notification: Some(convert::notification_to(&notification)),
        }))
    }

    async fn batch_send_notifications(
        &self,
        request: Request<pb::BatchSendNotificationsRequest>,
    ) -> Result<Response<pb::BatchSendNotificationsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::BatchSendNotifications).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            v.count("items", req.items.len(), MAX_BATCH);
            v.check()?;
            let mut items = Vec::with_capacity(req.items.len());
            for (i, item) in req.items.iter().enumerate() {
                let prefix = format!("items[{i}].");
                let case_id = v.uuid(&format!("{prefix}case_id"), &item.case_id);
                if let Some(case_id) = case_id {
                    self.access
                        .check(&caller, &on_behalf, case_id, "case")
                        .await?;
                }
                items.push(asked(&mut v, &prefix, item, case_id)?);
            }
            v.finish()?;
            let items: Vec<Asked> = items.into_iter().flatten().collect();
            let cases: Vec<Uuid> = items.iter().map(|a| a.case_id).collect();
            let accepted = self.accept(&caller, call.audit.clone(), items).await?;
            // What the store could not record: the items refused for a key used before.
            for (i, (a, case_id)) in accepted.iter().zip(&cases).enumerate() {
                if matches!(a, Accepted::KeyUsed) {
                    let entry = landsby_platform::audit::AuditEntry {
                        case_id: Some(*case_id),
                        ..call.audit.clone()
                    }
                    .failed(&key_used(&format!("items[{i}].idempotency_key")));
                    self.auditor.append(&entry).await?;
                }
            }
            Ok(accepted)
        }
        .await;
        let accepted = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::BatchSendNotificationsResponse {
            results: accepted
                .iter()
                .map(|a| match a {
                    Accepted::Made(n) | Accepted::Before(n) => pb::SentNotification {
                        notification: Some(convert::notification_to(n)),
                        created: matches!(a, Accepted::Made(_)),
                        key_used: false,
                    },
                    Accepted::KeyUsed => pb::SentNotification {
                        notification: None,
                        created: false,
                        key_used: true,
                    },
                })
                .collect(),
        }))
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::GetNotificationResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::GetNotification).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let id = v.uuid("notification_id", &req.notification_id);
            let id = v.into_result(id)?;
            let n = self
                .store
                .get(&caller.agency, id)
                .await?
                .ok_or(ApiError::NotFound {
                    resource: "notification",
                })?;
            self.access
                .check(&caller, &on_behalf, n.case_id, "notification")
                .await?;
            call.audit.case_id = Some(n.case_id);
            Ok((n, vec![id]))
        }
        .await;
        let n = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetNotificationResponse {
            notification: Some(convert::notification_to(&n)),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let (caller, mut call) = self.begin(&request, Rpc::ListNotifications).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let limit = page_size(&mut v, "page_size", req.page_size);
            let case_id = v.optional_uuid("case_id", &req.case_id);
            if case_id == Some(None) && !caller.has_any(&[Role::Service]) {
                v.add(
                    "case_id",
                    "is required: staff list the notifications of one case at a time",
                );
            }
            let recipient = v.optional_text("recipient_id", &req.recipient_id, 200);
            let status = v.optional_enumeration(
                "status",
                req.status,
                landsby_platform::validate::known::<pb::NotificationStatus>,
                convert::status_from,
            );
            v.finish()?;
            let (Some(limit), Some(case_id), Some(recipient), Some(status)) =
                (limit, case_id, recipient, status)
            else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            if let Some(case_id) = case_id {
                self.access
                    .check(&caller, &on_behalf, case_id, "case")
                    .await?;
            }
            call.audit.case_id = case_id;
            let filter = Filter {
                case_id,
                recipient_id: (!recipient.is_empty()).then_some(recipient),
                status,
            };
            let scope = format!("ListNotifications|{}|{filter:?}", caller.agency);
            let after = self
                .tokens
                .decode::<Cursor>(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .store
                .list(&caller.agency, &filter, after, limit + 1)
                .await?;
            let (rows, token) = self
                .tokens
                .page(rows, limit, &scope, |n| (n.created_at, n.id))
                .await?;
            let ids = rows.iter().map(|n| n.id).collect();
            Ok(((rows, token), ids))
        }
        .await;
        let (rows, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(convert::notification_to).collect(),
            next_page_token,
        }))
    }

    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::ListInbox).await?;
        let on_behalf = OnBehalf::of(&request);
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let recipient = recipient_id(&mut v, "recipient_id", &req.recipient_id);
            let limit = page_size(&mut v, "page_size", req.page_size);
            v.finish()?;
            let (Some(recipient), Some(limit)) = (recipient, limit) else {
                return Err(ApiError::internal("validated list without its parts"));
            };
            let scope = format!(
                "ListInbox|{}|{recipient}|{}",
                caller.agency, req.unread_only
            );
            let after = self
                .tokens
                .decode::<Cursor>(&req.page_token, &scope, "page_token")
                .await?;
            let rows = self
                .store
                .inbox(
                    &caller.agency,
                    &recipient,
                    req.unread_only,
                    after,
                    limit + 1,
                )
                .await?;
            let (rows, token) = self
                .tokens
                .page(rows, limit, &scope, |e| (e.created_at, e.notification_id))
                .await?;
            // A page may hold fewer entries than asked for: the others are of cases the caller
            // may not open.
            let rows = self.visible(&caller, &on_behalf, &recipient, rows).await?;
            let ids = rows.iter().map(|e| e.notification_id).collect();
            Ok(((rows, token), ids))
        }
        .await;
        let (rows, next_page_token) = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::ListInboxResponse {
            items: rows.iter().map(convert::inbox_to).collect(),
            next_page_token,
        }))
    }

    async fn mark_inbox_read(
        &self,
        request: Request<pb::MarkInboxReadRequest>,
    ) -> Result<Response<pb::MarkInboxReadResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::MarkInboxRead).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let recipient = recipient_id(&mut v, "recipient_id", &req.recipient_id);
            if req.notification_ids.is_empty() || req.notification_ids.len() > MAX_MARK {
                v.add("notification_ids", "must name 1-500 notifications");
            }
            let ids: Vec<Option<Uuid>> = req
                .notification_ids
                .iter()
                .take(MAX_MARK)
                .enumerate()
                .map(|(i, raw)| v.uuid(&format!("notification_ids[{i}]"), raw))
                .collect();
            v.finish()?;
            let (Some(recipient), Some(ids)) =
                (recipient, ids.into_iter().collect::<Option<Vec<_>>>())
            else {
                return Err(ApiError::internal("validated marks without their parts"));
            };
            if !caller.has_any(&[Role::Portal]) && caller.subject != recipient {
                return Err(ApiError::PermissionDenied {
                    reason:
                        "staff mark only their own inbox read; a recipient's portal marks theirs"
                            .into(),
                });
            }
            self.store
                .mark_read(&caller.agency, &recipient, &ids, call.audit.clone())
                .await
        }
        .await;
        let marked = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::MarkInboxReadResponse {
            marked: i32::try_from(marked).unwrap_or(i32::MAX),
        }))
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::GetPreferences).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let recipient = recipient_id(&mut v, "recipient_id", &req.recipient_id);
            let recipient = v.into_result(recipient)?;
            let prefs = self.preferences_of(&caller, &recipient).await?;
            Ok((prefs, Vec::new()))
        }
        .await;
        let prefs = self.auditor.read(call, result).await?;
        Ok(Response::new(pb::GetPreferencesResponse {
            preferences: Some(convert::preferences_to(&prefs)),
        }))
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::SetPreferences).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let parsed = v
                .required("preferences", req.preferences.as_ref())
                .and_then(|p| convert::preferences_from(&mut v, "preferences", p, &self.channels));
            v.finish()?;
            let Some((prefs, expected)) = parsed else {
                return Err(ApiError::internal(
                    "validated preferences without their parts",
                ));
            };
            self.store
                .set_preferences(&caller.agency, prefs, expected, call.audit.clone())
                .await
        }
        .await;
        let prefs = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::SetPreferencesResponse {
            preferences: Some(convert::preferences_to(&prefs)),
        }))
    }

    async fn purge_notifications(
        &self,
        request: Request<pb::PurgeNotificationsRequest>,
    ) -> Result<Response<pb::PurgeNotificationsResponse>, Status> {
        let (caller, call) = self.begin(&request, Rpc::PurgeNotifications).await?;
        let req = request.into_inner();
        let result = async {
            let mut v = Violations::new();
            let before = v.timestamp("created_before", req.created_before.as_ref());
            if let Some(before) = before
                && before > call.audit.at - MIN_RETENTION
            {
                v.add("created_before", "must be at least a day ago");
            }
            let limit = match req.limit {
                0 => Some(DEFAULT_PURGE),
                n => match usize::try_from(n) {
                    Ok(n) if n <= MAX_PURGE => Some(n),
                    _ => {
                        v.add(
                            "limit",
                            format!("must be 0-{MAX_PURGE} (0: {DEFAULT_PURGE})"),
                        );
                        None
                    }
                },
            };
            let (before, limit) = v.into_result(before.zip(limit))?;
            self.store
                .purge(&caller.agency, before, limit, call.audit.clone())
                .await
        }
        .await;
        let (purged, more) = self.auditor.write(call, result).await?;
        Ok(Response::new(pb::PurgeNotificationsResponse {
            purged: i64::try_from(purged).unwrap_or(i64::MAX),
            more,
        }))
    }
}

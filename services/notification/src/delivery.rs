//! The sender: takes due deliveries from the queue (`store::Store::claim`), sends each on its
//! channel, and records how it went. Woken when a notification is accepted, and every
//! `delivery.poll_interval` for retries, deferrals and deliveries other replicas' senders left.
//!
//! Each attempt is counted when the delivery is taken, before anything is sent, and the delivery is
//! leased for twice the attempt timeout. A sender killed mid-send therefore leaves a delivery that
//! comes back when its lease ends, with one attempt fewer left: delivered at least once, given up
//! after `delivery.max_attempts`, never stuck. The far side gets the idempotency key with every
//! attempt to drop a repeat.

use crate::channels::{Outgoing, SendError, Sender};
use crate::model::{Channel, after_quiet_hours, backoff};
use crate::store::{Claimed, Outcome, Store};
use chrono::{Duration, NaiveTime};
use landsby_platform::config::DeliveryConfig;
use landsby_platform::server::Shutdown;
use landsby_platform::validate::now;
use std::sync::Arc;
use tokio::sync::Notify;

/// The senders of the channels that are on.
#[derive(Default, Clone)]
pub struct Senders {
    pub email: Option<Arc<dyn Sender>>,
    pub sms: Option<Arc<dyn Sender>>,
    pub webhook: Option<Arc<dyn Sender>>,
}

impl Senders {
    fn of(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Webhook => self.webhook.as_ref(),
            Channel::Inbox => None,
        }
    }
}

/// The sender loop of one process.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    senders: Senders,
    config: DeliveryConfig,
    quiet: (NaiveTime, NaiveTime),
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// A dispatcher over `store`, sending with `senders`, woken by `wake`; `quiet` are the default
    /// quiet hours.
    pub fn new(
        store: Arc<dyn Store>,
        senders: Senders,
        config: DeliveryConfig,
        quiet: (NaiveTime, NaiveTime),
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            senders,
            config,
            quiet,
            wake,
        }
    }

    /// Runs the loop until `shutdown`, starting it again should it panic (a bug in a channel):
    /// the deliveries it held come back when their leases end.
    pub async fn supervise(self, shutdown: Shutdown) {
        loop {
            match tokio::spawn(self.clone().run(shutdown.clone())).await {
                Err(e) if e.is_panic() && !shutdown.is_triggered() => {
                    tracing::error!("the delivery loop panicked; starting it again");
                    tokio::time::sleep(self.config.poll_interval).await;
                }
                _ => return,
            }
        }
    }

    /// Runs until `shutdown`. Attempts under way when it comes are abandoned; their leases bring
    /// them back.
    pub async fn run(self, shutdown: Shutdown) {
        let poll = self.config.poll_interval;
        // Until the first round succeeds the service's migrations may still be running.
        let mut started = false;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            match self.round().await {
                // A full batch: there may be more.
                Ok(n) if n >= self.batch() => {
                    started = true;
                    continue;
                }
                Ok(_) => started = true,
                Err(e) if !started => {
                    tracing::debug!(error = %e, "the delivery queue is not ready yet");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the delivery queue could not be read; trying again");
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    fn batch(&self) -> usize {
        usize::try_from(self.config.batch_size).unwrap_or(1)
    }

    /// Takes one batch and sends it; how many were taken.
    pub async fn round(&self) -> Result<usize, landsby_platform::ApiError> {
        let at = now();
        let lease = Duration::from_std(self.config.attempt_timeout * 2)
            .unwrap_or_else(|_| Duration::minutes(1));
        let taken = self
            .store
            .claim(at, at + lease, self.batch(), self.config.max_attempts)
            .await?;
        let n = taken.len();
        let sends = taken.into_iter().map(|c| self.deliver(c));
        // All together: a slow channel must not hold the others up.
        for result in futures::future::join_all(sends).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "a delivery's outcome could not be recorded; its lease will bring it back");
            }
        }
        Ok(n)
    }

    async fn deliver(&self, c: Claimed) -> Result<(), landsby_platform::ApiError> {
        let n = &c.notification;
        if c.channel == Channel::Sms {
            let (from, until) = self
                .store
                .quiet_hours(&n.agency, &n.recipient.id())
                .await?
                .unwrap_or(self.quiet);
            let at = now();
            let go = after_quiet_hours(at, from, until);
            if go > at {
                return self
                    .store
                    .finish(&c, Outcome::Deferred { until: go }, at)
                    .await;
            }
        }
        // Keys are the callers' own per agency; the far side (one platform, one gateway) sees
        // several agencies, so the key it gets names the agency too.
        let far_key = format!("{}-{}", n.agency.as_str(), n.idempotency_key);
        let result = match c.channel {
            Channel::Inbox => Ok(()),
            channel => match self.senders.of(channel) {
                None => Err(SendError::Transient(format!("{channel} is not configured"))),
                Some(sender) => {
                    let message = Outgoing {
                        notification_id: n.id,
                        idempotency_key: &far_key,
                        agency: n.agency.as_str(),
                        case_id: n.case_id,
                        kind: &n.kind,
                        language: n.language,
                        subject: &n.subject,
                        body: &n.body,
                        to: &c.address,
                    };
                    match tokio::time::timeout(self.config.attempt_timeout, sender.send(&message))
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(SendError::Transient("attempt timed out".into())),
                    }
                }
            },
        };
        let at = now();
        let label = match &result {
            Ok(()) => "delivered",
            Err(e) if e.is_permanent() => "failed_permanently",
            Err(_) => "failed",
        };
        landsby_platform::telemetry::Metrics::get().delivery(c.channel.as_str(), label);
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(e) => {
                let attempts = u32::try_from(c.attempt).unwrap_or(u32::MAX);
                let retry_at =
                    (!e.is_permanent() && attempts < self.config.max_attempts).then(|| {
                        let base = Duration::from_std(self.config.backoff_base)
                            .unwrap_or_else(|_| Duration::seconds(1));
                        let max = Duration::from_std(self.config.backoff_max)
                            .unwrap_or_else(|_| Duration::minutes(10));
                        at + backoff(attempts, base, max, landsby_platform::retry::jitter())
                    });
                tracing::info!(
                    notification = %n.id,
                    channel = %c.channel,
                    attempt = c.attempt,
                    error = e.reason(),
                    permanent = e.is_permanent(),
                    "a delivery attempt failed"
                );
                Outcome::Failed {
                    error: e.reason().to_owned(),
                    permanent: e.is_permanent(),
                    retry_at,
                }
            }
        };
        self.store.finish(&c, outcome, at).await
    }
}

//! Per-caller rate limits: a token bucket per caller (the token's agency and subject, not the
//! address: many caseworkers share an agency's gateway), refilled at `server.caller_rate` calls a
//! second up to `server.caller_burst`. A call over the limit is RESOURCE_EXHAUSTED with the time to
//! wait (RetryInfo). Callers with the role `service` (the worker, whose load `jobs.concurrency`
//! bounds) are not limited here; the server's concurrency limit applies to everyone.

use crate::auth::Caller;
use crate::error::ApiError;
use landsby_domain::Role;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones (full again) are dropped.
const PRUNE_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one server.
pub struct RateLimits {
    /// Calls a second; 0 turns the limits off.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// `rate` calls a second per caller (0: no limit), `burst` at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from the caller's bucket, or says how long to wait.
    pub fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        if self.rate <= 0.0 || caller.roles.contains(&Role::Service) {
            return Ok(());
        }
        let key = (caller.agency.as_str().to_owned(), caller.subject.clone());
        self.take(key, Instant::now())
            .map_err(|retry_after| ApiError::RateLimited { retry_after })
    }

    fn take(&self, key: (String, String), now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned map limits nobody rather than everybody.
            return Ok(());
        };
        if buckets.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)
                .max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landsby_domain::AgencyId;

    fn key(subject: &str) -> (String, String) {
        ("0301".into(), subject.into())
    }

    #[test]
    fn a_caller_gets_the_burst_then_the_rate_and_is_told_how_long_to_wait() {
        let limits = RateLimits::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(limits.take(key("cw-1"), start).is_ok());
        }
        let wait = limits.take(key("cw-1"), start).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another caller has a bucket of their own.
        assert!(limits.take(key("cw-2"), start).is_ok());
        // A tenth of a second later one more call is allowed, not two.
        let later = start + Duration::from_millis(100);
        assert!(limits.take(key("cw-1"), later).is_ok());
        assert!(limits.take(key("cw-1"), later).is_err());
        // Idle for long, the bucket is full again but no fuller than the burst.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(limits.take(key("cw-1"), much_later).is_ok());
        }
        assert!(limits.take(key("cw-1"), much_later).is_err());
    }

    #[test]
    fn the_service_role_and_a_zero_rate_are_not_limited() {
        let caller = |roles: Vec<Role>| Caller {
            subject: "s".into(),
            agency: AgencyId::parse("0301").unwrap(),
            roles,
            teams: vec![],
        };
        let limits = RateLimits::new(1, 1);
        assert!(limits.check(&caller(vec![Role::Caseworker])).is_ok());
        let err = limits.check(&caller(vec![Role::Caseworker])).unwrap_err();
        assert!(matches!(err, ApiError::RateLimited { .. }));
        for _ in 0..100 {
            assert!(limits.check(&caller(vec![Role::Service])).is_ok());
        }
        let off = RateLimits::new(0, 1);
        for _ in 0..100 {
            assert!(off.check(&caller(vec![Role::Caseworker])).is_ok());
        }
    }

    #[test]
    fn idle_buckets_are_dropped_when_there_are_many() {
        let limits = RateLimits::new(1000, 2);
        let start = Instant::now();
        for i in 0..PRUNE_AT {
            assert!(limits.take(key(&format!("cw-{i}")), start).is_ok());
        }
        let later = start + Duration::from_secs(1);
        assert!(limits.take(key("new"), later).is_ok());
        assert_eq!(limits.buckets.lock().unwrap().len(), 1);
    }
}

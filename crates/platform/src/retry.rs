//! Waiting before trying again: exponential backoff with jitter, for every queue that retries (the
//! notification service's deliveries, the worker's jobs and feeds).

use chrono::{Duration, Utc};

/// The wait before attempt `attempts + 1` after `attempts` failed ones: `base` doubled each time up
/// to `max`, then a random part of up to a quarter taken off so senders that failed together do not
/// come back together. `jitter` is in [0, 1).
pub fn backoff(attempts: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let full = base
        .checked_mul(1_i32 << doublings)
        .map_or(max, |d| d.min(max));
    let off = (full.num_milliseconds() as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as i64;
    full - Duration::milliseconds(off)
}

/// [`backoff`] in `std` durations, with [`jitter`].
pub fn backoff_std(
    attempts: u32,
    base: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let to = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
    backoff(attempts, to(base), to(max), jitter())
        .to_std()
        .unwrap_or(max)
}

/// A number in [0, 1) that differs between senders and attempts.
pub fn jitter() -> f64 {
    let nanos = Utc::now().timestamp_subsec_nanos();
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_only_shortens_it() {
        let base = Duration::seconds(2);
        let max = Duration::seconds(60);
        assert_eq!(backoff(1, base, max, 0.0), Duration::seconds(2));
        assert_eq!(backoff(2, base, max, 0.0), Duration::seconds(4));
        assert_eq!(backoff(5, base, max, 0.0), Duration::seconds(32));
        assert_eq!(backoff(6, base, max, 0.0), max);
        assert_eq!(backoff(40, base, max, 0.0), max);
        let jittered = backoff(3, base, max, 0.99);
        assert!(jittered < Duration::seconds(8) && jittered > Duration::seconds(5));
    }

    #[test]
    fn std_backoff_stays_within_its_bounds() {
        let base = std::time::Duration::from_secs(1);
        let max = std::time::Duration::from_secs(60);
        for attempts in [0, 1, 5, 6, 7, 40, u32::MAX] {
            let d = backoff_std(attempts, base, max);
            assert!(d <= max && d >= base * 3 / 4, "{attempts}: {d:?}");
        }
    }
}

//! Closed-loop load: a number of clients, each calling as soon as its last call was answered, for a
//! warm-up and then a measured window; per RPC, the latencies of calls started in the window and the
//! codes they ended with.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// One client: makes one call (or, for a mix, picks one) and says which RPC and how it ended.
pub trait Client: Send + 'static {
    fn call(&mut self) -> impl Future<Output = (&'static str, Result<(), tonic::Code>)> + Send;
}

/// The calls of one RPC in the window.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Latencies of the calls answered OK.
    pub ok: Vec<Duration>,
    /// Latencies of the calls answered with an error (refusals among them).
    pub failed: Vec<Duration>,
    /// Every call's code, OK included.
    pub codes: BTreeMap<String, u64>,
}

/// What a run measured, by RPC.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub window: Duration,
    pub by_rpc: BTreeMap<&'static str, Tally>,
}

impl Outcome {
    /// The RPCs with their figures.
    pub fn figures(&self) -> Vec<(&'static str, Figures)> {
        self.by_rpc
            .iter()
            .map(|(rpc, t)| (*rpc, Figures::of(t, self.window)))
            .collect()
    }

    /// All RPCs as one.
    pub fn total(&self) -> Figures {
        let mut all = Tally::default();
        for t in self.by_rpc.values() {
            all.ok.extend_from_slice(&t.ok);
            all.failed.extend_from_slice(&t.failed);
            for (code, n) in &t.codes {
                *all.codes.entry(code.clone()).or_default() += n;
            }
        }
        Figures::of(&all, self.window)
    }
}

/// Throughput and latency percentiles of one RPC in one run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    /// The 99th percentile of the calls answered with an error: how fast a refusal comes.
    pub failed_p99: Duration,
    pub codes: BTreeMap<String, u64>,
}

impl Figures {
    fn of(t: &Tally, window: Duration) -> Self {
        let mut sorted = t.ok.clone();
        sorted.sort_unstable();
        let mut failed = t.failed.clone();
        failed.sort_unstable();
        Self {
            per_second: sorted.len() as f64 / window.as_secs_f64(),
            p50: percentile(&sorted, 0.50),
            p95: percentile(&sorted, 0.95),
            p99: percentile(&sorted, 0.99),
            failed_p99: percentile(&failed, 0.99),
            codes: t.codes.clone(),
        }
    }

    /// The median of each figure over repeated runs (codes summed).
    pub fn median(runs: &[Figures]) -> Figures {
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        let secs = |f: fn(&Figures) -> Duration| {
            Duration::from_secs_f64(mid(runs.iter().map(|r| f(r).as_secs_f64()).collect()))
        };
        let mut codes = BTreeMap::new();
        for r in runs {
            for (code, n) in &r.codes {
                *codes.entry(code.clone()).or_default() += n;
            }
        }
        Figures {
            per_second: mid(runs.iter().map(|r| r.per_second).collect()),
            p50: secs(|r| r.p50),
            p95: secs(|r| r.p95),
            p99: secs(|r| r.p99),
            failed_p99: secs(|r| r.failed_p99),
            codes,
        }
    }

    /// `OK 1234, UNAVAILABLE 2`.
    pub fn codes_text(&self) -> String {
        self.codes
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `clients` for `warmup`, then measures for `window`.
pub async fn drive<C: Client>(clients: Vec<C>, warmup: Duration, window: Duration) -> Outcome {
    let begin = Instant::now();
    let from = begin + warmup;
    let until = from + window;
    let mut tasks = Vec::new();
    for mut client in clients {
        tasks.push(tokio::spawn(async move {
            let mut mine: BTreeMap<&'static str, Tally> = BTreeMap::new();
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let (rpc, result) = client.call().await;
                if started < from {
                    continue;
                }
                let tally = mine.entry(rpc).or_default();
                let code = match result {
                    Ok(()) => {
                        tally.ok.push(started.elapsed());
                        tonic::Code::Ok
                    }
                    Err(code) => {
                        tally.failed.push(started.elapsed());
                        code
                    }
                };
                *tally.codes.entry(code_name(code)).or_default() += 1;
            }
            mine
        }));
    }
    let mut outcome = Outcome {
        window,
        by_rpc: BTreeMap::new(),
    };
    for task in tasks {
        let Ok(mine) = task.await else { continue };
        for (rpc, t) in mine {
            let all = outcome.by_rpc.entry(rpc).or_default();
            all.ok.extend(t.ok);
            all.failed.extend(t.failed);
            for (code, n) in t.codes {
                *all.codes.entry(code).or_default() += n;
            }
        }
    }
    outcome
}

/// The `q` quantile of `sorted` (zero when empty).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The gRPC name of a code: `RESOURCE_EXHAUSTED`.
pub fn code_name(code: tonic::Code) -> String {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
    .to_owned()
}

/// A small, seedable generator (SplitMix64): the clients pick cases without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration of `from` to `to` milliseconds (`to` not included).
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next_u64() % (to.saturating_sub(from)).max(1))
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_taken_from_the_ok_calls_of_the_window() {
        let t = Tally {
            ok: (1..=100).map(Duration::from_millis).collect(),
            failed: vec![Duration::from_millis(7); 3],
            codes: BTreeMap::from([("OK".into(), 100), ("UNAVAILABLE".into(), 3)]),
        };
        let f = Figures::of(&t, Duration::from_secs(2));
        assert_eq!(f.per_second, 50.0);
        assert_eq!(f.p50, Duration::from_millis(50));
        assert_eq!(f.p95, Duration::from_millis(95));
        assert_eq!(f.p99, Duration::from_millis(99));
        assert_eq!(f.failed_p99, Duration::from_millis(7));
        assert_eq!(f.codes_text(), "OK 100, UNAVAILABLE 3");
    }

    #[test]
    fn the_median_of_runs_takes_each_figure_apart() {
        let run = |per_second: f64, p50: u64| Figures {
            per_second,
            p50: Duration::from_millis(p50),
            ..Figures::default()
        };
        let m = Figures::median(&[run(10.0, 5), run(30.0, 1), run(20.0, 9)]);
        assert_eq!(m.per_second, 20.0);
        assert_eq!(m.p50, Duration::from_millis(5));
    }
}

//! Overload under real load: the four processes on PostgreSQL as in production, driven by the load
//! generator's caseworker-platform mix (`crates/bench`) first within capacity, then far past it (1,200
//! platform clients at once, and 64 more each sending a 3 MiB message again and again), then within
//! capacity again. Past capacity, calls are refused with RESOURCE_EXHAUSTED, quickly; the calls let in
//! are answered, none fails for the load; no process's memory goes past 256 MiB; and when the load
//! drops, everything is answered again with nothing done by hand.

use landsby_bench::load::{Client, Figures, Outcome, drive};
use landsby_bench::suite::Running;
use landsby_bench::workloads::{Kind, Platform, Seeded};
use landsby_proto::case::{self as cpb, case_service_client::CaseServiceClient};
use landsby_testkit::{Backend, authed};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// A client that sends a 3 MiB CreateCase (a request id far over its limit) as fast as it is
/// answered: the message is read and decoded before it is refused, so each one let in holds its
/// size in memory for a while.
struct Heavy {
    cases: CaseServiceClient<Channel>,
    token: String,
}

impl Client for Heavy {
    async fn call(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let mut req = authed(
            &self.token,
            cpb::CreateCaseRequest {
                request_id: "x".repeat(3 << 20),
                case: Some(landsby_testkit::case::new_case()),
            },
        );
        req.set_timeout(Duration::from_secs(20));
        let r = self.cases.create_case(req).await;
        ("CreateCase, 3 MiB", r.map(|_| ()).map_err(|s| s.code()))
    }
}

fn platforms(run: &Running, seeded: &Arc<Seeded>, n: usize, connections: usize) -> Vec<Platform> {
    let cases: Vec<Channel> = (0..connections)
        .map(|_| landsby_testkit::channel(run.case_addr))
        .collect();
    let visits: Vec<Channel> = (0..connections)
        .map(|_| landsby_testkit::channel(run.visitation_addr))
        .collect();
    (0..n)
        .map(|i| {
            Platform::new(
                Kind::Mix,
                run.caseworker_token(),
                cases[i % connections].clone(),
                visits[i % connections].clone(),
                seeded.clone(),
                i as u64 + 1,
            )
        })
        .collect()
}

fn report(phase: &str, outcome: &Outcome) -> Figures {
    let total = outcome.total();
    eprintln!(
        "overload, {phase}: {:.0} answered OK/s; OK p50 {:?}, p99 {:?}; errors p99 {:?}; {}",
        total.per_second,
        total.p50,
        total.p99,
        total.failed_p99,
        total.codes_text()
    );
    for (rpc, f) in outcome.figures() {
        eprintln!(
            "  {rpc}: {:.0}/s, p99 {:?}, errors p99 {:?}: {}",
            f.per_second,
            f.p99,
            f.failed_p99,
            f.codes_text()
        );
    }
    total
}

fn codes(f: &Figures) -> BTreeSet<&str> {
    f.codes.keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_past_capacity_calls_are_refused_quickly_memory_stays_bounded_and_it_recovers() {
    let _machine = super::MACHINE.write().await;
    let run = Running::start(Backend::Postgres).await.unwrap();
    let seeded = Seeded::new(run.seed(40, 10).await);
    assert_eq!(seeded.families.len(), 40);

    // Within capacity.
    let before = drive(
        platforms(&run, &seeded, 16, 2),
        Duration::from_secs(1),
        Duration::from_secs(4),
    )
    .await;
    let before = report("within capacity", &before);
    assert_eq!(codes(&before), BTreeSet::from(["OK"]), "{before:?}");

    // Far past it.
    let cpu_before = run.cpu();
    let own_before = landsby_bench::suite::cpu_seconds(std::process::id());
    let mut heavy = Vec::new();
    for _ in 0..64 {
        heavy.push(Heavy {
            cases: CaseServiceClient::new(landsby_testkit::channel(run.case_addr))
                .max_encoding_message_size(8 << 20),
            token: run.caseworker_token(),
        });
    }
    let heavy = tokio::spawn(drive(heavy, Duration::from_secs(2), Duration::from_secs(8)));
    let past = drive(
        platforms(&run, &seeded, 1_200, 8),
        Duration::from_secs(2),
        Duration::from_secs(8),
    )
    .await;
    let heavy = heavy.await.unwrap();
    let past = report("far past capacity", &past);
    let heavy = report("far past capacity, 3 MiB messages", &heavy);
    let memory = run.memory();
    let own = landsby_bench::suite::cpu_seconds(std::process::id()) - own_before;
    for ((name, after), (_, before)) in run.cpu().iter().zip(&cpu_before) {
        eprintln!("overload: {name} used {:.1} s of CPU", after - before);
    }
    eprintln!("overload: the callers (this test) used {own:.1} s of CPU");
    for (name, m) in &memory {
        eprintln!(
            "overload: {name} resident {:.0} MiB, peak {:.0} MiB",
            m.now, m.peak
        );
    }

    // The load was past capacity: calls were refused, at once rather than after waiting.
    assert!(
        past.codes.get("RESOURCE_EXHAUSTED").copied().unwrap_or(0) > 0,
        "no call was refused: the load did not reach past capacity ({past:?})"
    );
    // Every call let in was answered as it would have been without the load; none failed for it.
    assert!(
        codes(&past).is_subset(&BTreeSet::from(["OK", "RESOURCE_EXHAUSTED"])),
        "{past:?}"
    );
    assert!(
        codes(&heavy).is_subset(&BTreeSet::from(["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"])),
        "{heavy:?}"
    );
    // Memory stays bounded.
    for (name, m) in &memory {
        assert!(
            m.peak < 256.0,
            "{name}: {:.0} MiB at its peak, past 256 MiB",
            m.peak
        );
    }

    // The load drops: everything is answered again.
    let after = drive(
        platforms(&run, &seeded, 16, 2),
        Duration::from_secs(1),
        Duration::from_secs(4),
    )
    .await;
    let after = report("within capacity again", &after);
    assert_eq!(codes(&after), BTreeSet::from(["OK"]), "{after:?}");
}

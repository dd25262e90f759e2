//! One step change is one trace across the four processes: the platform's call that approves the
//! step, the case service handling it, the worker's job for the event it wrote, the visitation
//! service applying the new scope, and the notification service accepting the notices. Spans are
//! caught by an in-memory exporter; none carries personal data.
//!
//! Each test runs in a process of its own (this test binary started again for that one test): the
//! subscriber is that thread's default, but tracing caches per call site whether any subscriber wants
//! it, and a test beside it reaching a shared call site (the RPC span) at the instant this one set its
//! subscriber left that site cached as unwanted: now and then the trace came out empty, only with
//! other tests running (seen beside `flow::postgres::visits_tell_their_participants…`).

use crate::support::*;
use landsby_proto::case as cpb;
use landsby_testkit::Backend;
use opentelemetry::trace::{TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Set in the process [`alone`] starts.
const ALONE: &str = "LANDSBY_TRACE_TEST_ALONE";

/// Runs the test `name` of this binary in a process of its own and fails if it fails.
fn alone(name: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .status()
        .unwrap();
    assert!(status.success(), "{name} failed in its own process");
}

#[test]
fn on_sqlite_a_step_change_is_one_trace_across_the_four_processes() {
    alone("trace::sqlite_in_its_own_process");
}

#[test]
fn on_postgres_a_step_change_is_one_trace_across_the_four_processes() {
    alone("trace::postgres_in_its_own_process");
}

/// The test itself, in the process [`alone`] starts (elsewhere it returns at once).
#[tokio::test]
async fn sqlite_in_its_own_process() {
    if std::env::var_os(ALONE).is_some() {
        a_step_change_is_one_trace_across_the_four_processes(Backend::Sqlite).await
    }
}

/// The test itself, in the process [`alone`] starts (elsewhere it returns at once).
#[tokio::test]
async fn postgres_in_its_own_process() {
    if std::env::var_os(ALONE).is_some() {
        a_step_change_is_one_trace_across_the_four_processes(Backend::Postgres).await
    }
}

fn in_trace(
    (exporter, provider): &(InMemorySpanExporter, SdkTracerProvider),
    trace: TraceId,
) -> Vec<SpanData> {
    let _ = provider.force_flush();
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect()
}

/// What the family of the test is: none of it may be in a span.
const PERSONAL: &[&str] = &[
    "Emma",
    "Nordmann",
    "Bakkeveien",
    "Fosterhjemmet",
    "0150",
    "kari@example.no",
    "91234567",
    "Fosterfar",
    "25-012345NEM-BVHN",
];

async fn a_step_change_is_one_trace_across_the_four_processes(backend: Backend) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _traced = tracing::subscriber::set_default(subscriber);
    let caught = (exporter, provider);
    let env = env(backend).await;
    let mut f = env.suite.family(false).await;
    let mut admin = env.suite.admin();
    admin.settled().await;
    env.suite.seed_readiness(&f).await;

    // The platform traces the caseworker's and the team lead's calls in one trace of its own.
    // (A trace id of its own per database: the two run side by side.)
    let id = match backend {
        Backend::Sqlite => "4bf92f3577b34da6a3ce929d0e0e4736",
        Backend::Postgres => "5bf92f3577b34da6a3ce929d0e0e4737",
    };
    let traceparent = format!("00-{id}-00f067aa0ba902b7-01");
    let trace = TraceId::from_hex(id).unwrap();
    let platform = landsby_platform::telemetry::job_span("platform", "1", Some(&traceparent));
    let case = env.suite.advance(&mut f).instrument(platform).await;
    assert_eq!(case.step(), cpb::Step::Involvement);

    // Wait until the notices of the step change are accepted: the end of the trace.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let want = [
        "landsby.case.v1.CaseService/ApproveDecision",
        "recompute_case",
        "landsby.visitation.v1.VisitationService/BatchApplyComputedScopes",
        "landsby.notification.v1.NotificationService/BatchSendNotifications",
    ];
    let spans = loop {
        let spans = in_trace(&caught, trace);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        if want.iter().all(|w| names.contains(w)) {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trace has {names:?}, not all of {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // Each process's span is a child of the one before it in the chain of causes.
    let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
    let approve = find(want[0]);
    assert!(
        approve.parent_span_is_remote,
        "the case service continued the caller's trace"
    );
    let job = find("recompute_case");
    assert_ne!(job.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    let applied = find(want[2]);
    assert!(applied.parent_span_is_remote);
    let sent = find(want[3]);
    assert!(sent.parent_span_is_remote);
    // The notices to the family, the caseworker and the plan's parent go in batches, not a call
    // each.
    assert!(
        !spans
            .iter()
            .any(|s| s.name == "landsby.notification.v1.NotificationService/SendNotification"),
        "a notice sent on its own"
    );

    // No span carries personal data: only names of RPCs and jobs, codes, ids and kinds.
    let allowed_keys = [
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "rpc.grpc.status_code",
        "trace_id",
        "job.kind",
        "job.id",
        "feed",
        "sequence",
    ];
    for span in &spans {
        for kv in &span.attributes {
            let key = kv.key.as_str();
            let value = kv.value.as_str();
            assert!(
                allowed_keys.contains(&key)
                    || key.starts_with("code.")
                    || key.starts_with("thread.")
                    || key == "level"
                    || key == "target"
                    || key == "busy_ns"
                    || key == "idle_ns",
                "span {} has the attribute {key}={value}",
                span.name
            );
            // The timings tracing adds are numbers of nanoseconds, which can hold a postcode's
            // digits by chance.
            if key == "busy_ns" || key == "idle_ns" {
                assert!(value.chars().all(|c| c.is_ascii_digit()), "{key}={value}");
                continue;
            }
            for word in PERSONAL {
                assert!(
                    !value.contains(word),
                    "span {} carries {word} in {key}",
                    span.name
                );
            }
        }
        for event in span.events.iter() {
            for kv in &event.attributes {
                let value = kv.value.as_str();
                for word in PERSONAL {
                    assert!(
                        !value.contains(word),
                        "an event of span {} carries {word}",
                        span.name
                    );
                }
            }
        }
    }
    let keys: std::collections::BTreeSet<&str> = spans
        .iter()
        .flat_map(|s| s.attributes.iter().map(|kv| kv.key.as_str()))
        .collect();
    assert!(
        keys.contains("rpc.method") && keys.contains("job.kind"),
        "{keys:?}"
    );
    eprintln!(
        "one trace: {} spans across the case, worker, visitation and notification processes; attributes {keys:?}",
        spans.len()
    );
}

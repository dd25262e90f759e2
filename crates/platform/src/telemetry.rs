//! Logs, traces and metrics. Logs go to stderr, as text for people or JSON for collectors; every
//! line written while a request or a job is handled carries its `trace_id`. Traces and metrics go
//! over OTLP/gRPC to `telemetry.otlp_endpoint` (none when it is empty; trace context still flows).
//!
//! One trace follows a change across processes: the W3C `traceparent` goes with every call between
//! services ([`inject`], read by the server's guard with [`server_span`]), with every event a change
//! writes (the feed's messages carry it, `crate::outbox`), and with every job queued while handling
//! one (the worker), so a review completed, the recompute it causes, the scope applied and the
//! notifications sent are one trace.
//!
//! Nothing here carries personal data: spans are named by RPC or job kind, their attributes are
//! RPC names, status codes, job kinds and ids; requests and messages are never recorded.

use crate::config::{LogConfig, LogFormat, TelemetryConfig};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
pub use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The exporters of this process; [`Telemetry::shutdown`] sends what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

impl Telemetry {
    /// Flushes and stops the exporters. Blocks up to a few seconds: call it from
    /// `spawn_blocking` while the runtime still runs (the exporter's connection lives on it).
    pub fn shutdown(self) {
        let _ = self.tracer.shutdown();
        let _ = self.meter.shutdown();
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint: {0}")]
pub struct TelemetryError(String);

/// Installs logging, tracing and metrics for the process `service` (its `service.name`). Call it
/// inside the Tokio runtime (the OTLP exporter's connection is a task). A second call in one process
/// (tests) keeps the first subscriber.
pub fn init(
    log: &LogConfig,
    telemetry: &TelemetryConfig,
    service: &str,
) -> Result<Telemetry, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meter = SdkMeterProvider::builder().with_resource(resource);
    let endpoint = telemetry.otlp_endpoint.trim();
    if !endpoint.is_empty() {
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        tracer = tracer.with_batch_exporter(spans);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        meter = meter.with_reader(
            PeriodicReader::builder(metrics)
                .with_interval(telemetry.metrics_interval)
                .build(),
        );
    }
    let tracer = tracer.build();
    let meter = meter.build();
    global::set_meter_provider(meter.clone());
    install(log, &tracer);
    Ok(Telemetry { tracer, meter })
}

/// Installs the subscriber: the log filter, the log lines, and spans into `tracer`'s provider; and
/// the W3C propagator. [`init`] calls it; tests call it with an in-memory exporter's provider.
pub fn install(log: &LogConfig, tracer: &SdkTracerProvider) {
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(tracer.clone());
    let _ = tracing_subscriber::registry()
        .with(filter(&log.level))
        .with(lines(log.format))
        .with(tracing_opentelemetry::layer().with_tracer(tracer.tracer("landsby")))
        .try_init();
}

/// The log filter. The HTTP/2 stack stays quiet whatever the level says: its own spans would trace
/// the exporter's calls, which would trace themselves.
fn filter(level: &str) -> EnvFilter {
    let quiet = "h2=warn,hyper=warn,hyper_util=warn,tower=warn,tonic=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";
    EnvFilter::try_new(format!("{level},{quiet}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{quiet}")))
}

fn lines<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let builder = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.boxed(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
}

/// The span a request is handled in: named by its RPC, a child of the caller's trace when the
/// request carries a `traceparent`. Its `trace_id` field puts the trace in every log line.
pub fn server_span(headers: &http::HeaderMap, path: &str) -> tracing::Span {
    let parent = global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    // `landsby.case.v1.CaseService/GetCase`, as OpenTelemetry names gRPC spans.
    let name = path.trim_start_matches('/');
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    record_trace_id(&span);
    span
}

/// The span a job runs in: named by its kind, a child of the trace that queued it (`traceparent`,
/// as [`traceparent`] gave it then).
pub fn job_span(kind: &'static str, job_id: &str, traceparent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        otel.name = kind,
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job.kind = kind,
        job.id = job_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = traceparent {
        let _ = span.set_parent(extract(parent));
    }
    record_trace_id(&span);
    span
}

/// The span an event read from a feed is handled in, a child of the change that wrote it.
pub fn event_span(feed: &'static str, sequence: i64, traceparent: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "event",
        otel.name = feed,
        otel.kind = "consumer",
        feed = feed,
        sequence = sequence,
        trace_id = tracing::field::Empty,
    );
    if !traceparent.is_empty() {
        let _ = span.set_parent(extract(traceparent));
    }
    record_trace_id(&span);
    span
}

fn extract(traceparent: &str) -> opentelemetry::Context {
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    global::get_text_map_propagator(|p| p.extract(&carrier))
}

fn record_trace_id(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
}

/// The W3C `traceparent` of the current span, if it is part of a trace: stored with an event or a
/// job, so the work it causes joins the trace.
pub fn traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// Puts the current span's trace context on an outgoing call.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut Metadata(metadata)));
}

/// Marks `span` as failed: an error the operator should see (OpenTelemetry status ERROR).
pub fn record_error(span: &tracing::Span) {
    span.record("otel.status_code", "ERROR");
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::AsciiMetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The instruments every process records into (OpenTelemetry metrics; docs/operations.md says what
/// each means). Made after [`init`], from the global meter provider.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `rpc.server.duration` (s): each RPC handled, by `rpc.method` and `rpc.grpc.status_code`.
    pub rpc_duration: opentelemetry::metrics::Histogram<f64>,
    /// `landsby.jobs` : jobs finished, by `job.kind` and `outcome` (done, retry, dead).
    pub jobs: opentelemetry::metrics::Counter<u64>,
    /// `landsby.job.duration` (s): one attempt of a job, by `job.kind` and `outcome`.
    pub job_duration: opentelemetry::metrics::Histogram<f64>,
    /// `landsby.deliveries`: delivery attempts ended, by `channel` and `outcome`.
    pub deliveries: opentelemetry::metrics::Counter<u64>,
    /// `landsby.feed.lag` (s): from an event's commit to the worker queuing its jobs, by `feed`.
    pub feed_lag: opentelemetry::metrics::Histogram<f64>,
}

impl Metrics {
    /// The instruments, from the global meter provider.
    pub fn get() -> &'static Metrics {
        static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
        METRICS.get_or_init(|| {
            let meter = global::meter("landsby");
            let seconds = vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            Metrics {
                rpc_duration: meter
                    .f64_histogram("rpc.server.duration")
                    .with_unit("s")
                    .with_description("RPCs handled, by method and gRPC status code")
                    .with_boundaries(seconds.clone())
                    .build(),
                jobs: meter
                    .u64_counter("landsby.jobs")
                    .with_description("Job attempts ended, by kind and outcome")
                    .build(),
                job_duration: meter
                    .f64_histogram("landsby.job.duration")
                    .with_unit("s")
                    .with_description("One attempt of a job, by kind and outcome")
                    .with_boundaries(seconds.clone())
                    .build(),
                deliveries: meter
                    .u64_counter("landsby.deliveries")
                    .with_description("Delivery attempts ended, by channel and outcome")
                    .build(),
                feed_lag: meter
                    .f64_histogram("landsby.feed.lag")
                    .with_unit("s")
                    .with_description("From an event's commit to its jobs queued, by feed")
                    .with_boundaries(seconds)
                    .build(),
            }
        })
    }

    /// Records how long after its commit an event of `feed` was taken up.
    pub fn feed(&self, feed: &'static str, lag: Duration) {
        self.feed_lag
            .record(lag.as_secs_f64(), &[KeyValue::new("feed", feed)]);
    }

    /// Records one attempt of a job of `kind` that ended with `outcome` (done, retry, dead).
    pub fn job(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        let attributes = [
            KeyValue::new("job.kind", kind),
            KeyValue::new("outcome", outcome),
        ];
        self.jobs.add(1, &attributes);
        self.job_duration.record(took.as_secs_f64(), &attributes);
    }

    /// Records one delivery attempt on `channel` that ended with `outcome`.
    pub fn delivery(&self, channel: &'static str, outcome: &'static str) {
        self.deliveries.add(
            1,
            &[
                KeyValue::new("channel", channel),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// Records one RPC.
    pub fn rpc(&self, path: String, code: i32, took: Duration) {
        self.rpc_duration.record(
            took.as_secs_f64(),
            &[
                KeyValue::new("rpc.method", path),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ],
        );
    }
}

/// The worker's queue, as observed gauges: `landsby.queue.depth` (jobs waiting to run, to be
/// retried, or running) and `landsby.jobs.dead` (DEAD jobs kept for operators).
#[derive(Debug, Clone)]
pub struct QueueGauges {
    waiting: std::sync::Arc<std::sync::atomic::AtomicU64>,
    dead: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl QueueGauges {
    /// Registers the gauges with the global meter provider.
    pub fn register() -> Self {
        use std::sync::atomic::Ordering;
        let gauges = Self {
            waiting: Default::default(),
            dead: Default::default(),
        };
        let meter = global::meter("landsby");
        let waiting = gauges.waiting.clone();
        let _ = meter
            .u64_observable_gauge("landsby.queue.depth")
            .with_description("Jobs waiting to run, to be retried, or running")
            .with_callback(move |o| o.observe(waiting.load(Ordering::Relaxed), &[]))
            .build();
        let dead = gauges.dead.clone();
        let _ = meter
            .u64_observable_gauge("landsby.jobs.dead")
            .with_description("DEAD jobs kept for operators to look at and retry")
            .with_callback(move |o| o.observe(dead.load(Ordering::Relaxed), &[]))
            .build();
        gauges
    }

    /// The latest counts.
    pub fn set(&self, waiting: u64, dead: u64) {
        use std::sync::atomic::Ordering;
        self.waiting.store(waiting, Ordering::Relaxed);
        self.dead.store(dead, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_reach_the_exporter_with_their_names_and_attributes() {
        use opentelemetry_sdk::metrics::InMemoryMetricExporter;
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        // The only test in this binary that records metrics: the instruments are made once, from
        // the meter provider set here.
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        global::set_meter_provider(provider.clone());
        let m = Metrics::get();
        m.rpc(
            "/landsby.case.v1.CaseService/GetCase".into(),
            0,
            Duration::from_millis(3),
        );
        m.rpc(
            "/landsby.case.v1.CaseService/GetCase".into(),
            5,
            Duration::from_millis(1),
        );
        m.job("recompute_case", "done", Duration::from_millis(40));
        m.job("recompute_case", "dead", Duration::from_millis(2));
        m.delivery("sms", "delivered");
        m.feed("case", Duration::from_millis(120));
        let gauges = QueueGauges::register();
        gauges.set(7, 2);
        provider.force_flush().unwrap();

        let mut seen = std::collections::BTreeMap::new();
        for rm in exporter.get_finished_metrics().unwrap() {
            for sm in rm.scope_metrics() {
                for metric in sm.metrics() {
                    let points: Vec<(String, f64)> = match metric.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                            .data_points()
                            .map(|p| (attrs(p.attributes()), p.value() as f64))
                            .collect(),
                        AggregatedMetrics::U64(MetricData::Gauge(g)) => g
                            .data_points()
                            .map(|p| (attrs(p.attributes()), p.value() as f64))
                            .collect(),
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                            .data_points()
                            .map(|p| (attrs(p.attributes()), p.count() as f64))
                            .collect(),
                        _ => Vec::new(),
                    };
                    for (a, v) in points {
                        seen.insert(format!("{} {a}", metric.name()), v);
                    }
                }
            }
        }
        let want = [
            (
                "rpc.server.duration rpc.grpc.status_code=0,rpc.method=/landsby.case.v1.CaseService/GetCase",
                1.0,
            ),
            (
                "rpc.server.duration rpc.grpc.status_code=5,rpc.method=/landsby.case.v1.CaseService/GetCase",
                1.0,
            ),
            ("landsby.jobs job.kind=recompute_case,outcome=done", 1.0),
            ("landsby.jobs job.kind=recompute_case,outcome=dead", 1.0),
            (
                "landsby.job.duration job.kind=recompute_case,outcome=done",
                1.0,
            ),
            ("landsby.deliveries channel=sms,outcome=delivered", 1.0),
            ("landsby.feed.lag feed=case", 1.0),
            ("landsby.queue.depth ", 7.0),
            ("landsby.jobs.dead ", 2.0),
        ];
        for (key, value) in want {
            assert_eq!(seen.get(key), Some(&value), "{key} in {seen:#?}");
        }
        let _ = provider.shutdown();
    }

    fn attrs<'a>(kvs: impl Iterator<Item = &'a KeyValue>) -> String {
        let mut v: Vec<String> = kvs.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
        v.sort();
        v.join(",")
    }

    #[test]
    fn a_traceparent_goes_out_and_comes_back_as_the_parent() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let span = job_span("recompute_case", "1", Some(incoming));
            let _entered = span.enter();
            let out = traceparent().expect("in a trace");
            assert!(
                out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{out}"
            );
            assert!(!out.contains("00f067aa0ba902b7"), "a new span id: {out}");
            let mut metadata = tonic::metadata::MetadataMap::new();
            inject(&mut metadata);
            assert_eq!(
                metadata.get("traceparent").and_then(|v| v.to_str().ok()),
                Some(out.as_str())
            );
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", out.parse().unwrap());
            let child = server_span(&headers, "/landsby.case.v1.CaseService/GetCase");
            let _in_child = child.enter();
            assert!(
                traceparent()
                    .unwrap()
                    .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            );
        });
        // Outside any span there is no trace to carry.
        assert_eq!(traceparent(), None);
        let _ = provider.shutdown();
    }
}

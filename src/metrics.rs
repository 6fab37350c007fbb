//! Metric names, their descriptions and histogram buckets, and the one
//! Prometheus recorder of the process.
//!
//! Code anywhere records with the `metrics` facade's macros and a name from
//! here (`metrics::counter!(metrics::EVENTS_APPENDED)` from a module that
//! does not shadow the crate). [`install`] puts the recorder behind those
//! macros once per process; until it runs, or when `METRICS_ENABLED` is
//! false, they record nothing and cost next to nothing. This module uses no
//! other module of the crate, so every module may use it.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ::metrics::{
    Gauge, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    set_global_recorder,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Jobs by `state` (queued, running, completed, failed, cancelled), counted
/// in the database at scrape time.
pub const JOBS: &str = "reelay_jobs";
/// Jobs waiting for a worker slot, counted at scrape time.
pub const QUEUE_DEPTH: &str = "reelay_queue_depth";
/// How long each run of a stage took, by `stage` and `outcome`.
pub const STAGE_DURATION: &str = "reelay_stage_duration_seconds";
/// Events committed to the log.
pub const EVENTS_APPENDED: &str = "reelay_events_appended_total";
/// Requests the writer applied in one commit.
pub const COMMIT_BATCH_SIZE: &str = "reelay_commit_batch_size";
/// How long one commit took, from its first statement to its end.
pub const COMMIT_DURATION: &str = "reelay_commit_duration_seconds";
/// Event streams open now, by `dialect`.
pub const OPEN_STREAMS: &str = "reelay_open_streams";
/// Times a stream fell behind the live broadcast and caught up from the
/// store.
pub const STREAM_CATCH_UPS: &str = "reelay_stream_catch_ups_total";
/// Webhook delivery attempts, by `outcome`.
pub const WEBHOOK_DELIVERIES: &str = "reelay_webhook_deliveries_total";
/// How long one webhook delivery attempt took.
pub const WEBHOOK_DELIVERY_DURATION: &str = "reelay_webhook_delivery_duration_seconds";
/// HTTP requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "reelay_http_requests_total";
/// How long HTTP requests took until their response head, by `method` and
/// `route`.
pub const HTTP_REQUEST_DURATION: &str = "reelay_http_request_duration_seconds";

/// The `stage` outcome of a stage that finished its work.
pub const OUTCOME_COMPLETED: &str = "completed";
/// The outcome of a stage that decided it had nothing to do.
pub const OUTCOME_SKIPPED: &str = "skipped";
/// The outcome of a stage that failed.
pub const OUTCOME_ERROR: &str = "error";
/// The outcome of a stage stopped by a cancel or a shutdown.
pub const OUTCOME_CANCELLED: &str = "cancelled";

/// The `route` of a request no route matched: one label for every such
/// path, so that random URLs cannot add series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Buckets of latencies measured in milliseconds to seconds (HTTP,
/// commits, webhook deliveries).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of stage runs, from instant to a long render.
const STAGE_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Buckets of requests per commit, up to the writer's batch limit.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often histogram samples are folded into their buckets between
/// scrapes, so that memory stays flat under load.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder: `None` inside when another recorder was
/// installed first (by a program that embeds Reelay).
static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// One scrape at a time, so that the values set at scrape time are the
/// ones rendered (several servers may share the process in tests).
static SCRAPE: Mutex<()> = Mutex::new(());

/// Installs the Prometheus recorder as the process's global recorder, with
/// every description and bucket, once; later calls do nothing. Returns
/// false when another recorder was there first, and nothing is recorded
/// for Reelay then.
pub fn install() -> bool {
    RECORDER.get_or_init(build).is_some()
}

fn build() -> Option<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (STAGE_DURATION, &STAGE_BUCKETS[..]),
        (COMMIT_BATCH_SIZE, &BATCH_BUCKETS[..]),
        (COMMIT_DURATION, &LATENCY_BUCKETS[..]),
        (WEBHOOK_DELIVERY_DURATION, &LATENCY_BUCKETS[..]),
        (HTTP_REQUEST_DURATION, &LATENCY_BUCKETS[..]),
    ] {
        // Fails only for an empty list.
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            .ok()?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Fails when a program that embeds Reelay installed its own first.
    set_global_recorder(recorder).ok()?;
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        // Scrapes still fold the samples; only memory between them grows.
        tracing::warn!(error = %err, "could not start the metrics upkeep thread");
    }
    Some(handle)
}

fn describe() {
    describe_gauge!(JOBS, "Jobs by state, counted in the database.");
    describe_gauge!(QUEUE_DEPTH, "Jobs waiting for a worker slot.");
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "How long each run of a pipeline stage took, by stage and outcome."
    );
    describe_counter!(EVENTS_APPENDED, "Events committed to the log.");
    describe_histogram!(
        COMMIT_BATCH_SIZE,
        Unit::Count,
        "Requests applied in one database commit (group commit)."
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "How long one database commit of the event log took."
    );
    describe_gauge!(OPEN_STREAMS, "Event streams open now, by dialect.");
    describe_counter!(
        STREAM_CATCH_UPS,
        "Times a stream fell behind the live broadcast and caught up from the store."
    );
    // Shown from the start, at 0, so that a rate over it never lacks a
    // first sample.
    counter!(STREAM_CATCH_UPS).increment(0);
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by outcome.");
    describe_histogram!(
        WEBHOOK_DELIVERY_DURATION,
        Unit::Seconds,
        "How long one webhook delivery attempt took."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "How long HTTP requests took until their response head, by method and route template."
    );
}

/// Renders every metric in the Prometheus text format, after `before` sets
/// the values that are read at scrape time. `None` when no recorder of
/// Reelay's is installed.
pub fn render(before: impl FnOnce()) -> Option<String> {
    let handle = RECORDER.get()?.as_ref()?;
    let _one_at_a_time = SCRAPE.lock().unwrap_or_else(|e| e.into_inner());
    before();
    Some(handle.render())
}

/// Counts an open event stream of `dialect` in [`OPEN_STREAMS`] until it
/// is dropped, however the stream ends.
pub struct OpenStream(Gauge);

impl OpenStream {
    /// Counts one more open stream.
    pub fn new(dialect: &'static str) -> Self {
        let open = gauge!(OPEN_STREAMS, "dialect" => dialect);
        open.increment(1.0);
        OpenStream(open)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

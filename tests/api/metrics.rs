//! `GET /metrics`: every family in a valid Prometheus exposition, read
//! with a real parser, with values that follow what the server did.
//!
//! The recorder is global to the process, and every in-process test server
//! records into it, so the in-process test asserts with deltas and lower
//! bounds (its stages carry names of their own); the exact figures come
//! from a real binary, which has the process to itself.

use std::sync::Arc;
use std::time::Duration;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Api, Binary, TestServer, eventually};
use crate::stages::{Emit, Skip, pipeline};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

const WAIT: Duration = Duration::from_secs(10);

/// Scrapes `/metrics` and parses the whole answer, failing on anything the
/// exposition format does not allow.
async fn scrape(api: &Api) -> Exposition {
    let res = api.client.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4",
        "the Prometheus text format's content type"
    );
    let text = res.text().await.unwrap();
    parse_prometheus(&text).unwrap_or_else(|err| panic!("not a valid exposition: {err}\n{text}"))
}

/// Asserts that `name` is a family of `kind`.
fn family_of(expo: &Exposition, name: &str, kind: PrometheusType) {
    let family = expo
        .families
        .get(name)
        .unwrap_or_else(|| panic!("no family {name}; have {:?}", expo.families.keys()));
    assert_eq!(family.family_type, kind, "{name}");
}

/// Whether a sample's labels include every pair of `labels`.
fn has_labels(
    sample: &openmetrics_parser::Sample<PrometheusValue>,
    labels: &[(&str, &str)],
) -> bool {
    let set = sample.get_labelset().expect("labels");
    labels
        .iter()
        .all(|(name, value)| set.get_label_value(name) == Some(value))
}

/// The value of the counter or gauge sample with `labels`, 0 when absent.
fn value(expo: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = expo.families.get(name) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|sample| has_labels(sample, labels))
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(counter) => counter.value.as_f64(),
            PrometheusValue::Gauge(gauge) => gauge.as_f64(),
            other => panic!("{name} is not a counter or a gauge: {other:?}"),
        })
        .sum()
}

/// The observation count of the histogram sample with `labels`, 0 when
/// absent.
fn observations(expo: &Exposition, name: &str, labels: &[(&str, &str)]) -> u64 {
    let Some(family) = expo.families.get(name) else {
        return 0;
    };
    family
        .iter_samples()
        .filter(|sample| has_labels(sample, labels))
        .map(|sample| match &sample.value {
            PrometheusValue::Histogram(histogram) => histogram.count.unwrap_or(0),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

/// Every value that label `label` takes in any family.
fn label_values(expo: &Exposition, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for family in expo.families.values() {
        for sample in family.iter_samples() {
            let set = sample.get_labelset().expect("labels");
            if let Some(value) = set.get_label_value(label) {
                out.push(value.to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_job_polls_and_a_stream_show_in_every_family_of_a_valid_exposition() {
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "metrics_work",
            count: 3,
        }),
        Arc::new(Skip {
            name: "metrics_nothing",
        }),
    ]))
    .await;
    let before = scrape(&server).await;

    let id = server.submit("Metrics").await;
    server.wait_state(&id, "completed", WAIT).await;
    let polls = 5;
    for _ in 0..polls {
        let (status, _) = server.get(&format!("/api/jobs/{id}/events?after=0")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let events = server.all_events(&id).await.len() as f64;
    // A stream that waits for a job nobody made stays open until it is
    // dropped.
    let stream = server
        .client
        .get(server.url("/api/progress/metrics_nobody_made_this"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (status, _) = server.get("/metrics/no/such/page-4f1c").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let open = scrape(&server).await;
    drop(stream);

    use PrometheusType::{Counter, Gauge, Histogram};
    for (name, kind) in [
        ("reelay_jobs", Gauge),
        ("reelay_queue_depth", Gauge),
        ("reelay_stage_duration_seconds", Histogram),
        ("reelay_events_appended_total", Counter),
        ("reelay_commit_batch_size", Histogram),
        ("reelay_commit_duration_seconds", Histogram),
        ("reelay_open_streams", Gauge),
        ("reelay_stream_catch_ups_total", Counter),
        ("reelay_http_requests_total", Counter),
        ("reelay_http_request_duration_seconds", Histogram),
    ] {
        family_of(&open, name, kind);
    }

    // Job figures are this server's own, counted at scrape time.
    assert_eq!(value(&open, "reelay_jobs", &[("state", "completed")]), 1.0);
    for state in ["queued", "running", "failed", "cancelled"] {
        assert_eq!(
            value(&open, "reelay_jobs", &[("state", state)]),
            0.0,
            "{state}"
        );
    }
    assert_eq!(value(&open, "reelay_queue_depth", &[]), 0.0);

    // Each stage ran once, with the outcome it had.
    let stage = "reelay_stage_duration_seconds";
    let ran = |name, outcome| [("stage", name), ("outcome", outcome)];
    assert_eq!(
        observations(&open, stage, &ran("metrics_work", "completed")),
        1
    );
    assert_eq!(
        observations(&open, stage, &ran("metrics_nothing", "skipped")),
        1
    );
    assert_eq!(observations(&open, stage, &ran("metrics_work", "error")), 0);

    // The writer's figures went up by at least this job's log.
    let appended = "reelay_events_appended_total";
    assert!(value(&open, appended, &[]) - value(&before, appended, &[]) >= events);
    for histogram in ["reelay_commit_batch_size", "reelay_commit_duration_seconds"] {
        assert!(observations(&open, histogram, &[]) > observations(&before, histogram, &[]));
    }

    // Requests are counted by route template, never by path.
    let polled = [
        ("method", "GET"),
        ("route", "/api/jobs/{id}/events"),
        ("status", "200"),
    ];
    let requests = "reelay_http_requests_total";
    assert!(value(&open, requests, &polled) - value(&before, requests, &polled) >= polls as f64);
    let timed = [("method", "GET"), ("route", "/api/jobs/{id}/events")];
    let durations = "reelay_http_request_duration_seconds";
    assert!(observations(&open, durations, &timed) >= polls);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert!(value(&open, requests, &unmatched) > value(&before, requests, &unmatched));
    let routes = label_values(&open, "route");
    assert!(
        routes
            .iter()
            .all(|route| !route.contains(&id) && !route.contains("4f1c")),
        "a path became a label: {routes:?}"
    );

    // The stream counts while it is open (other tests' streams may too).
    let streams = "reelay_open_streams";
    assert!(value(&open, streams, &[("dialect", "aivideogen")]) >= 1.0);
}

/// Opens a stream on the hyper path (HTTP/1.0 never goes lean) and waits
/// for its head.
async fn open_on_hyper(addr: &str, path: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: reelay\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(WAIT, socket.read(&mut head))
        .await
        .expect("a stream head")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    socket
}

#[tokio::test]
async fn a_real_binary_counts_exactly_and_open_streams_return_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let api = &server.api;
    for _ in 0..2 {
        let (status, _) = api.get("/health").await;
        assert_eq!(status, StatusCode::OK);
    }
    for n in 0..3 {
        let (status, _) = api.get(&format!("/random-{n}-a9e3/x")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // One stream on the lean path, one on hyper's.
    let lean = api
        .client
        .get(api.url("/api/progress/nobody_made_this"))
        .send()
        .await
        .unwrap();
    assert_eq!(lean.status(), StatusCode::OK);
    let addr = api.base.trim_start_matches("http://").to_string();
    let hyper = open_on_hyper(&addr, "/api/progress/nor_this").await;
    let open = |want: f64| async move {
        let expo = scrape(api).await;
        value(&expo, "reelay_open_streams", &[("dialect", "aivideogen")]) == want
    };
    eventually(WAIT, "two open streams", || open(2.0)).await;

    let expo = scrape(api).await;
    let health = [("method", "GET"), ("route", "/health"), ("status", "200")];
    assert_eq!(value(&expo, "reelay_http_requests_total", &health), 2.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(value(&expo, "reelay_http_requests_total", &unmatched), 3.0);
    let routes = label_values(&expo, "route");
    assert!(
        routes.iter().all(|route| !route.contains("a9e3")),
        "a path became a label: {routes:?}"
    );
    // The same count as the health report's.
    let (_, report) = api.get("/health").await;
    assert_eq!(
        value(&expo, "reelay_stream_catch_ups_total", &[]),
        report["streamCatchUps"].as_f64().unwrap()
    );
    assert_eq!(value(&expo, "reelay_jobs", &[("state", "queued")]), 0.0);

    drop(lean);
    drop(hyper);
    eventually(WAIT, "no open streams", || open(0.0)).await;
}

#[tokio::test]
async fn with_metrics_disabled_the_route_is_unknown() {
    let server = TestServer::start_with(pipeline(vec![]), |c| c.metrics_enabled = false).await;
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["message"], "No such route.", "{body}");
}

#[tokio::test]
async fn metrics_enabled_false_in_the_environment_turns_the_route_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start_with(dir.path(), |cmd| {
        cmd.env("METRICS_ENABLED", "false");
    });
    let (status, body) = server.api.get("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "error", "{body}");
}

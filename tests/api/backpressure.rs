//! Backpressure: a full queue and a caller over its rate get 429 with
//! `Retry-After`, in the route's envelope.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::stages::{Gate, pipeline};

/// One job runs (held at a gate), and up to `max` wait.
async fn busy_server(max: u64) -> (TestServer, Arc<Gate>) {
    let gate = Arc::new(Gate::new("research"));
    let server = TestServer::start_with(pipeline(vec![gate.clone()]), |c| {
        c.worker_concurrency = 1;
        c.max_queued_jobs = max;
    })
    .await;
    (server, gate)
}

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Option<String>, Value) {
    let res = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status(), retry, res.json().await.unwrap())
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_in_each_envelope() {
    let (server, _gate) = busy_server(2).await;
    let running = server.submit("Running").await;
    server
        .wait_state(&running, "running", Duration::from_secs(5))
        .await;
    let first = server.submit("Queued one").await;
    server.submit("Queued two").await;

    let (status, retry, body) =
        post(&server, "/api/generate", json!({ "videoSubject": "Third" })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(body["status"], "error", "{body}");
    let (status, retry, body) = post(&server, "/api/v1/jobs", json!({ "topic": "Third" })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some());
    assert_eq!(body["error"]["code"], "QUEUE_FULL", "{body}");
    let (status, retry, body) = post(
        &server,
        "/api/generate",
        json!({ "topic": "Third", "num_slides": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some());
    assert!(body["detail"].is_string(), "{body}");
    let (_, list) = server.get("/api/v1/jobs").await;
    assert_eq!(list["total"], 3, "refused submits created nothing: {list}");

    // A place in the queue frees up: submits are taken again.
    let (status, _) = server
        .post(&format!("/api/jobs/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    server.submit("Fits again").await;
}

#[tokio::test]
async fn past_the_rate_limit_a_client_gets_429_with_retry_after_and_health_still_answers() {
    let server = TestServer::start_with(crate::stages::quick(), |c| c.rate_limit_per_min = 3).await;
    for _ in 0..3 {
        let (status, _) = server.get("/api/v1/jobs").await;
        assert_eq!(status, StatusCode::OK);
    }
    let res = server
        .client
        .get(server.url("/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    let (status, body) = server
        .post("/api/generate", json!({ "videoSubject": "x" }))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["status"], "error", "MoneyPrinter envelope: {body}");
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn with_keys_on_the_rate_limit_counts_each_key_apart() {
    let server = TestServer::start_with(crate::stages::quick(), |c| {
        c.rate_limit_per_min = 2;
        c.api_keys = "alpha,beta".into();
    })
    .await;
    let status_as = |key: &'static str| {
        let api = server.api.clone();
        async move {
            api.client
                .get(api.url("/api/v1/jobs"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status_as("alpha").await, StatusCode::OK);
    assert_eq!(status_as("alpha").await, StatusCode::OK);
    assert_eq!(status_as("alpha").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status_as("beta").await, StatusCode::OK);
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestServer;
use crate::stages::{Emit, Gate, Stubborn, pipeline};

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once() {
    let server = TestServer::start_with(pipeline(vec![Arc::new(Gate::new("research"))]), |c| {
        c.worker_concurrency = 1
    })
    .await;
    let running = server.submit("running").await;
    server
        .wait_state(&running, "running", Duration::from_secs(5))
        .await;
    let queued = server.submit("queued").await;
    let (status, body) = server
        .post(&format!("/api/jobs/{queued}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "status": "success", "message": "Cancellation requested." })
    );
    let job = server.job(&queued).await;
    assert_eq!(job["state"], "cancelled");
    assert_eq!(job["cancelRequested"], true);
    assert!(job["completedAt"].is_string());
    assert!(job["startedAt"].is_null());
    let events = server.all_events(&queued).await;
    assert_eq!(events.last().unwrap()["message"], "Job cancelled.");
}

#[tokio::test]
async fn a_running_job_stops_within_a_second_even_when_its_stage_ignores_cancel() {
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(Stubborn { name: "assembly" }),
    ]))
    .await;
    let id = server.submit("stubborn").await;
    server
        .wait_job(&id, Duration::from_secs(5), |j| {
            j["currentStage"] == "assembly"
        })
        .await;
    let asked = Instant::now();
    let (status, _) = server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let job = server
        .wait_state(&id, "cancelled", Duration::from_secs(3))
        .await;
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    assert_eq!(job["cancelRequested"], true);
    assert!(job["currentStage"].is_null());
    assert!(job["completedAt"].is_string());
    assert_eq!(job["stages"]["assembly"]["status"], "error");
    let events = server.all_events(&id).await;
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"Cancellation requested."));
    assert_eq!(*messages.last().unwrap(), "Job cancelled.");
}

#[tokio::test]
async fn a_cooperative_stage_is_cancelled_promptly() {
    let server = TestServer::start(pipeline(vec![Arc::new(Gate::new("tts"))])).await;
    let id = server.submit("gate").await;
    server
        .wait_state(&id, "running", Duration::from_secs(5))
        .await;
    let asked = Instant::now();
    server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    server
        .wait_state(&id, "cancelled", Duration::from_secs(3))
        .await;
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "took {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn cancelling_twice_is_harmless() {
    let server = TestServer::start(pipeline(vec![Arc::new(Gate::new("tts"))])).await;
    let id = server.submit("twice").await;
    server
        .wait_state(&id, "running", Duration::from_secs(5))
        .await;
    for _ in 0..2 {
        let (status, body) = server
            .post(&format!("/api/jobs/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server
        .wait_state(&id, "cancelled", Duration::from_secs(3))
        .await;
    let (status, body) = server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.job(&id).await["state"], "cancelled");
    let events = server.all_events(&id).await;
    let requested = events
        .iter()
        .filter(|e| e["message"] == "Cancellation requested.")
        .count();
    assert_eq!(requested, 1);
    assert_eq!(events.last().unwrap()["message"], "Job cancelled.");
}

#[tokio::test]
async fn cancel_active_prefers_the_running_job_and_404s_when_idle() {
    let server = TestServer::start_with(pipeline(vec![Arc::new(Gate::new("tts"))]), |c| {
        c.worker_concurrency = 1
    })
    .await;
    let (status, body) = server.post("/api/cancel", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "status": "error", "message": "No active job found." })
    );

    let running = server.submit("running").await;
    server
        .wait_state(&running, "running", Duration::from_secs(5))
        .await;
    let queued = server.submit("queued").await;
    let (status, body) = server.post("/api/cancel", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Cancellation requested.");
    assert_eq!(body["jobId"], running);
    server
        .wait_state(&running, "cancelled", Duration::from_secs(3))
        .await;
    // The queued job now runs; cancel it through the same route.
    server
        .wait_state(&queued, "running", Duration::from_secs(5))
        .await;
    let (_, body) = server.post("/api/cancel", json!({})).await;
    assert_eq!(body["jobId"], queued);
    server
        .wait_state(&queued, "cancelled", Duration::from_secs(3))
        .await;
    let (status, _) = server.post("/api/cancel", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shutdown_returns_running_jobs_to_the_queue_and_a_restart_finishes_them() {
    let gate = Gate::new("tts");
    let server = TestServer::start(pipeline(vec![Arc::new(gate)])).await;
    let id = server.submit("interrupted").await;
    server
        .wait_state(&id, "running", Duration::from_secs(5))
        .await;
    let dir = server.dir.clone();
    let took = server.stop().await;
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");

    let server = TestServer::start_in(
        dir,
        pipeline(vec![Arc::new(Emit {
            name: "tts",
            count: 2,
        })]),
        |_| {},
    )
    .await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(5))
        .await;
    assert_eq!(job["cancelRequested"], false);
    let events = server.all_events(&id).await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "requeued" && e["level"] == "warning")
    );
    assert_eq!(events.iter().filter(|e| e["kind"] == "started").count(), 2);
}

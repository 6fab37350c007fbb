use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use crate::helpers::{TestServer, eventually};
use crate::stages::{Emit, Fail, Gate, Rich, Skip, pipeline};

fn ts(job: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = job[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {job}"));
    assert!(text.ends_with('Z'), "{field} is not UTC with Z: {text}");
    assert_eq!(
        text.len(),
        24,
        "{field} is not RFC 3339 with milliseconds: {text}"
    );
    DateTime::parse_from_rfc3339(text).unwrap()
}

#[tokio::test]
async fn a_job_goes_queued_running_completed_with_timestamps_and_progress() {
    let gate = Gate::new("director");
    let release = gate.gate.clone();
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 2,
        }),
        Arc::new(gate),
        Arc::new(Skip { name: "critic" }),
    ]))
    .await;
    let id = server.submit("Lifecycle").await;
    let running = server
        .wait_job(&id, Duration::from_secs(5), |j| {
            j["currentStage"] == "director"
        })
        .await;
    assert_eq!(running["state"], "running");
    assert!(running["startedAt"].is_string());
    assert!(running["completedAt"].is_null());
    assert_eq!(running["stages"]["research"]["status"], "done");
    assert_eq!(running["stages"]["research"]["detail"], "2 steps");
    assert!(running["stages"]["research"]["durationSec"].is_number());
    assert_eq!(running["stages"]["director"]["status"], "running");
    assert_eq!(running["stages"]["critic"]["status"], "pending");
    let mid = running["progress"].as_u64().unwrap();
    assert!(mid > 0 && mid < 100);

    release.add_permits(1);
    let done = server
        .wait_state(&id, "completed", Duration::from_secs(5))
        .await;
    assert_eq!(done["progress"], 100);
    assert!(done["currentStage"].is_null());
    assert!(done["errorMessage"].is_null());
    assert_eq!(done["cancelRequested"], false);
    assert_eq!(done["stages"]["critic"]["status"], "skipped");
    assert_eq!(done["stages"]["critic"]["detail"], "not needed");
    let (created, started, completed) = (
        ts(&done, "createdAt"),
        ts(&done, "startedAt"),
        ts(&done, "completedAt"),
    );
    assert!(created <= started && started <= completed);
    ts(&done, "updatedAt");

    // Progress, as the events report it, never goes down.
    let events = server.all_events(&id).await;
    let mut last = 0.0;
    for e in events.iter().filter(|e| e["type"] == "progress") {
        let p = e["payload"]["progress"].as_f64().unwrap();
        assert!(p >= last, "progress went from {last} to {p}");
        last = p;
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "queued",
            "started",
            "start",
            "complete",
            "start",
            "complete",
            "start",
            "skipped",
            "completed"
        ]
    );
}

#[tokio::test]
async fn a_queued_job_has_no_start_time() {
    let gate = Gate::new("research");
    let server =
        TestServer::start_with(pipeline(vec![Arc::new(gate)]), |c| c.worker_concurrency = 1).await;
    let first = server.submit("first").await;
    server
        .wait_state(&first, "running", Duration::from_secs(5))
        .await;
    let second = server.submit("second").await;
    let job = server.job(&second).await;
    assert_eq!(job["state"], "queued");
    assert!(job["startedAt"].is_null());
    assert!(job["completedAt"].is_null());
    assert_eq!(job["progress"], 0);
    assert!(job["currentStage"].is_null());
    ts(&job, "createdAt");
}

#[tokio::test]
async fn a_failing_stage_fails_the_job_with_its_message() {
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(Fail {
            name: "visuals",
            message: "Rate limit exceeded",
        }),
        Arc::new(Emit {
            name: "assembly",
            count: 1,
        }),
    ]))
    .await;
    let id = server.submit("Failure").await;
    let job = server
        .wait_state(&id, "failed", Duration::from_secs(5))
        .await;
    assert_eq!(job["errorMessage"], "Rate limit exceeded");
    assert!(job["completedAt"].is_string());
    assert!(job["resultPath"].is_null());
    assert!(job["currentStage"].is_null());
    assert!(job["progress"].as_u64().unwrap() < 100);
    assert_eq!(job["stages"]["visuals"]["status"], "error");
    assert_eq!(job["stages"]["assembly"]["status"], "pending");
    let events = server.all_events(&id).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["level"], "error");
    assert_eq!(last["message"], "Rate limit exceeded");
    assert!(
        events
            .iter()
            .any(|e| e["level"] == "warning" && e["message"] == "about to fail")
    );
    assert!(
        events
            .iter()
            .any(|e| e["stage"] == "visuals" && e["kind"] == "error")
    );
}

#[tokio::test]
async fn a_server_without_stages_fails_jobs_with_a_clear_message() {
    let server = TestServer::start(reelay::pipeline::Pipeline::default()).await;
    let id = server.submit("Nothing installed").await;
    let job = server
        .wait_state(&id, "failed", Duration::from_secs(5))
        .await;
    assert!(
        job["errorMessage"]
            .as_str()
            .unwrap()
            .contains("No media pipeline is installed"),
        "{job}"
    );
}

#[tokio::test]
async fn rich_stage_data_is_kept_on_the_job() {
    let server = TestServer::start(pipeline(vec![Arc::new(Rich::Research)])).await;
    let id = server.submit("Rich").await;
    server
        .wait_state(&id, "completed", Duration::from_secs(5))
        .await;
    let events = server.all_events(&id).await;
    let rich = events
        .iter()
        .find(|e| e["kind"] == "results")
        .expect("results event");
    assert_eq!(rich["stage"], "research");
    assert_eq!(rich["payload"]["summary"], "test data");
    let state = server.state.clone();
    eventually(Duration::from_secs(1), "researchData on the row", || {
        let state = state.clone();
        let id = uuid::Uuid::parse_str(&id).unwrap();
        async move {
            let job = state.engine.job(id).await.unwrap().unwrap();
            job.data.research_data.is_some()
        }
    })
    .await;
}

#[tokio::test]
async fn a_panicking_stage_fails_its_job_instead_of_leaving_it_running() {
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(crate::stages::Panics),
    ]))
    .await;
    let id = server.submit("Panics").await;
    let job = server
        .wait_state(&id, "failed", Duration::from_secs(5))
        .await;
    assert!(
        job["errorMessage"]
            .as_str()
            .unwrap()
            .contains("internal error"),
        "{job}"
    );
    assert!(job["currentStage"].is_null());
    assert_eq!(server.state.engine.stats().running, 0);
    // The worker goes on with the next job.
    let next = server.submit("After the panic").await;
    server
        .wait_state(&next, "failed", Duration::from_secs(5))
        .await;
}

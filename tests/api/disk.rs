//! Disk space: refusing work when the disk is low, deleting jobs, keeping
//! them only as long as configured, and a render that runs out of room.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::faults::Tmpfs;
use crate::helpers::{TestServer, eventually, execute_on_database, require_media_tools};
use crate::stages::{FileResult, Gate, pipeline, quick};

#[tokio::test]
async fn new_jobs_get_507_in_each_dialect_while_the_disk_is_low() {
    let server = TestServer::start_with(quick(), |c| c.min_free_disk_mb = 1 << 40).await;
    let (status, body) = server
        .post("/api/generate", json!({ "videoSubject": "Full" }))
        .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["status"], "error");
    assert!(
        body["message"].as_str().unwrap().contains("MiB free"),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/jobs", json!({ "topic": "Full" }))
        .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "INSUFFICIENT_STORAGE");
    let (status, body) = server
        .post("/api/generate", json!({ "topic": "Full", "num_slides": 1 }))
        .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    // Reading goes on.
    let (status, _) = server.get("/api/v1/jobs").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn delete_removes_a_finished_job_with_its_events_and_folder_but_not_a_running_one() {
    let gate = Gate::new("tts");
    let server = TestServer::start(pipeline(vec![
        Arc::new(FileResult { size: 1000 }),
        Arc::new(gate),
    ]))
    .await;
    let running = server.submit("Still running").await;
    server
        .wait_job(&running, Duration::from_secs(10), |j| {
            j["currentStage"] == "tts"
        })
        .await;
    let folder = server.dir.path().join("data/jobs").join(&running);
    assert!(folder.join("output.mp4").is_file());
    let res = server
        .client
        .delete(server.url(&format!("/api/v1/jobs/{running}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "JOB_ACTIVE");

    let (status, _) = server
        .post(&format!("/api/v1/jobs/{running}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    server
        .wait_state(&running, "cancelled", Duration::from_secs(5))
        .await;
    let res = server
        .client
        .delete(server.url(&format!("/api/v1/jobs/{running}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["job_id"], running.as_str());
    assert!(!folder.exists(), "the job's folder is still there");
    for path in [
        format!("/api/v1/jobs/{running}"),
        format!("/api/jobs/{running}/events"),
    ] {
        let (status, _) = server.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let res = server
        .client
        .delete(server.url(&format!("/api/v1/jobs/{running}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn finished_jobs_past_their_retention_are_deleted_in_the_background() {
    let server = TestServer::start(pipeline(vec![Arc::new(FileResult { size: 100 })])).await;
    let old = server.submit("Old").await;
    let recent = server.submit("Recent").await;
    for id in [&old, &recent] {
        server
            .wait_state(id, "completed", Duration::from_secs(10))
            .await;
    }
    let dir = server.dir.clone();
    server.stop().await;
    // The first job ended long ago.
    let backdate = "UPDATE jobs SET completed_at = '2020-01-01T00:00:00.000Z' WHERE id = $1";
    execute_on_database(dir.path(), backdate, &old).await;

    let server = TestServer::start_in(
        dir.clone(),
        pipeline(vec![Arc::new(FileResult { size: 100 })]),
        |c| c.job_retention_days = 7,
    )
    .await;
    let api = server.api.clone();
    let path = format!("/api/v1/jobs/{old}");
    eventually(Duration::from_secs(10), "the old job deleted", || {
        let (api, path) = (api.clone(), path.clone());
        async move { api.get(&path).await.0 == StatusCode::NOT_FOUND }
    })
    .await;
    assert!(!dir.path().join("data/jobs").join(&old).exists());
    assert_eq!(server.job(&recent).await["state"], "completed");
    assert!(dir.path().join("data/jobs").join(&recent).exists());
}

#[tokio::test]
async fn a_render_that_runs_out_of_space_fails_clearly_and_leaves_no_partial_file() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let data = Tmpfs::mount(&dir.path().join("data"), "64m");
    let data_dir = data.path.clone();
    let server = TestServer::start_media(move |c| {
        c.data_dir = data_dir;
        c.min_free_disk_mb = 0;
    })
    .await;
    let script = "Deep oceans hold many secrets. ".repeat(8);
    let id = server
        .submit_body(json!({ "videoSubject": "No room", "script": script, "paragraphNumber": 2 }))
        .await;
    server
        .wait_event(&id, Duration::from_secs(60), |e| {
            e["stage"] == "assembly" && e["kind"] == "start"
        })
        .await;
    let filler = data.fill();
    let job = server
        .wait_job(&id, Duration::from_secs(60), |j| j["state"] != "running")
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    let message = job["errorMessage"].as_str().unwrap();
    assert!(message.contains("disk is full"), "{message}");
    let folder = data.path.join("jobs").join(&id);
    assert!(!folder.join("output.part.mp4").exists());
    assert!(!folder.join("output.mp4").exists());
    std::fs::remove_file(filler).unwrap();
}

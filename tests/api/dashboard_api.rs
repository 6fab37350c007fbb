//! What the dashboard needs from the server: its page and assets, the
//! voices, the job list by state, and running a job again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, require_media_tools};
use crate::stages::{Fail, pipeline, quick};

const LONG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_key_and_revalidate() {
    let server = TestServer::start_with(quick(), |c| c.api_keys = "k1".into()).await;
    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let answer = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let headers = answer.headers().clone();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let tag = headers["etag"].clone();
        assert!(!answer.text().await.unwrap().is_empty());
        let again = client
            .get(server.url(path))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let page = client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/dashboard/app.js") && page.contains("submit-form"));
    // The data behind it still needs the key.
    let answer = client.get(server.url("/api/v1/jobs")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn voices_are_the_installed_ones_with_the_default() {
    require_media_tools();
    let server = TestServer::start(quick()).await;
    let (status, body) = server.get("/api/v1/voices").await;
    assert_eq!(status, StatusCode::OK);
    let data = &body["data"];
    assert_eq!(data["engine"], "espeak-ng");
    assert_eq!(data["default"], "en-us");
    let names: Vec<&str> = data["voices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"en-us") && names.len() > 20, "{names:?}");
    let label = data["voices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "en-us")
        .unwrap()["label"]
        .clone();
    assert!(label.as_str().unwrap().contains("English"), "{label}");
}

#[tokio::test]
async fn the_list_filters_by_state_and_refuses_unknown_ones() {
    let server = TestServer::start(pipeline(vec![std::sync::Arc::new(Fail {
        name: "research",
        message: "no",
    })]))
    .await;
    let failed = server.submit("One").await;
    server.wait_state(&failed, "failed", LONG).await;
    let (_, all) = server.get("/api/v1/jobs").await;
    assert_eq!(all["total"], 1);
    let (status, some) = server.get("/api/v1/jobs?status=failed,cancelled").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(some["total"], 1);
    assert_eq!(some["jobs"][0]["job_id"], failed.as_str());
    let (_, none) = server.get("/api/v1/jobs?status=processing").await;
    assert_eq!(none["total"], 0);
    assert_eq!(none["jobs"], json!([]));
    for bad in ["sleeping", "", "failed,", "failed, cancelled"] {
        let (status, body) = server.get(&format!("/api/v1/jobs?status={bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(body["success"], false);
    }
}

#[tokio::test]
async fn run_again_queues_a_new_job_with_the_same_request_once_per_key() {
    let server = TestServer::start(quick()).await;
    let (status, created) = server
        .post(
            "/api/v1/jobs",
            json!({ "topic": "Tides", "scene_count": 2, "aspect_ratio": "16:9" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let first = created["data"]["job_id"].as_str().unwrap().to_string();
    server.wait_state(&first, "completed", LONG).await;

    let client = reqwest::Client::new();
    let rerun = || {
        client
            .post(server.url(&format!("/api/v1/jobs/{first}/rerun")))
            .header("idempotency-key", "again-1")
            .send()
    };
    let answer = rerun().await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let body: Value = answer.json().await.unwrap();
    let second = body["data"]["job_id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(body["data"]["topic"], "Tides");
    // The same key again: the same answer, no third job.
    let body: Value = rerun().await.unwrap().json().await.unwrap();
    assert_eq!(body["data"]["job_id"], second.as_str());
    server.wait_state(&second, "completed", LONG).await;
    let (_, list) = server.get("/api/v1/jobs").await;
    assert_eq!(list["total"], 2);
    let request = |id: &str| {
        let id: uuid::Uuid = id.parse().unwrap();
        let engine = server.state.engine.clone();
        async move { engine.job(id).await.unwrap().unwrap().request }
    };
    let (one, two) = (request(&first).await, request(&second).await);
    assert_eq!(one.subject, two.subject);
    assert_eq!(one.aspect, two.aspect);
    assert_eq!(one.scene_count, Some(2));
    assert_eq!(two.scene_count, Some(2));

    let (status, body) = server
        .post(
            "/api/v1/jobs/00000000-0000-0000-0000-000000000000/rerun",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);
}

//! The v1 job API (seed 004) and the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::stages::{Emit, FileResult, Gate, pipeline};

const LONG: Duration = Duration::from_secs(20);

fn assert_v1_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(body["error"]["detail"], body["message"]);
}

fn with_file() -> reelay::pipeline::Pipeline {
    pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(FileResult { size: 1000 }),
    ])
}

#[tokio::test]
async fn create_status_and_result_use_the_v1_envelope() {
    let server = TestServer::start(with_file()).await;
    let (status, body) = server
        .post(
            "/api/v1/jobs",
            json!({ "topic": "Volcanoes", "scene_count": 3, "use_music": false }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["success"], true);
    let job = body["data"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["status"], "queued");
    assert!(body["data"]["current_stage"].is_null());
    assert_eq!(body["data"]["generation_id"], "Volcanoes");

    let (status, body) = server.get(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    for field in [
        "job_id",
        "status",
        "progress_percent",
        "current_stage",
        "created_at",
        "updated_at",
        "stages",
    ] {
        assert!(body["data"].get(field).is_some(), "{field} missing: {body}");
    }

    let done = server
        .wait_job(&job, LONG, |j| j["state"] == "completed")
        .await;
    assert!(done["resultPath"].is_string());
    let (status, body) = server.get(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["progress_percent"], 100);
    assert!(body["data"]["current_stage"].is_null());

    let (status, body) = server.get(&format!("/api/v1/jobs/{job}/result")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Job result retrieved");
    let data = &body["data"];
    assert_eq!(data["status"], "completed");
    assert!(data["processing_time_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(data["video"]["width"], 360);
    assert_eq!(data["style_json"]["aspect_ratio"], "9:16");
    let url = data["output_video_url"].as_str().unwrap();
    assert_eq!(url, server.url(&format!("/api/v1/jobs/{job}/video")));

    // The URL serves the file, with Range support.
    let full = server.client.get(url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    let bytes = full.bytes().await.unwrap();
    assert_eq!(bytes.len(), 1000);
    let part = server
        .client
        .get(url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(10..20));
    let beyond = server
        .client
        .get(url)
        .header("range", "bytes=5000-6000")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], "bytes */1000");
    let body: Value = beyond.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RANGE_NOT_SATISFIABLE");
}

#[tokio::test]
async fn a_result_before_completion_is_a_409_with_a_code() {
    let gate = Gate::new("research");
    let server = TestServer::start(pipeline(vec![Arc::new(gate)])).await;
    let (_, body) = server
        .post("/api/v1/jobs", json!({ "script": "Just a script." }))
        .await;
    let job = body["data"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["topic"], "Just a script.");
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "research")
        .await;
    let (status, body) = server.get(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["status"], "processing");
    assert_eq!(body["data"]["current_stage"], "research");
    let (status, body) = server.get(&format!("/api/v1/jobs/{job}/result")).await;
    assert_v1_error(status, &body, StatusCode::CONFLICT, "RESULT_NOT_READY");
    let (status, body) = server.get(&format!("/api/v1/jobs/{job}/video")).await;
    assert_v1_error(status, &body, StatusCode::CONFLICT, "RESULT_NOT_READY");
    let (status, body) = server
        .post(&format!("/api/v1/jobs/{job}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["cancel_requested"], true);
    server
        .wait_job(&job, LONG, |j| j["state"] == "cancelled")
        .await;
    let (_, body) = server.get(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(body["data"]["status"], "cancelled");
    let (status, body) = server.get(&format!("/api/v1/jobs/{job}/result")).await;
    assert_v1_error(status, &body, StatusCode::CONFLICT, "RESULT_NOT_READY");
}

#[tokio::test]
async fn listing_pages_newest_first_and_rejects_bad_sizes() {
    let server = TestServer::start(pipeline(vec![Arc::new(Emit {
        name: "research",
        count: 1,
    })]))
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, body) = server
            .post("/api/v1/jobs", json!({ "topic": format!("Topic {i}") }))
            .await;
        ids.push(body["data"]["job_id"].as_str().unwrap().to_string());
    }
    let (status, body) = server.get("/api/v1/jobs?page=1&page_size=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 5);
    assert_eq!(body["page"], 1);
    assert_eq!(body["page_size"], 2);
    let page: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [ids[4].as_str(), ids[3].as_str()]);
    let (_, body) = server.get("/api/v1/jobs?page=3&page_size=2").await;
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
    let (status, body) = server.get("/api/v1/jobs?page=9&page_size=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"], json!([]));
    assert_eq!(body["total"], 5);
    let (_, body) = server.get("/api/v1/jobs").await;
    assert_eq!(body["page_size"], 10);
    assert_eq!(body["jobs"].as_array().unwrap().len(), 5);
    for query in [
        "page_size=0",
        "page_size=101",
        "page=0",
        "page=-1",
        "page=abc",
        "page_size=1.5",
    ] {
        let (status, body) = server.get(&format!("/api/v1/jobs?{query}")).await;
        assert_v1_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        );
    }
    let (_, body) = server.get("/api/v1/jobs?page_size=100").await;
    assert_eq!(body["page_size"], 100);
}

#[tokio::test]
async fn bad_v1_input_gets_the_v1_envelope_with_codes() {
    let server = TestServer::start(with_file()).await;
    for body in [
        json!({}),
        json!({ "topic": "  " }),
        json!({ "topic": "x", "scene_count": 0 }),
        json!({ "topic": "x", "scene_count": "three" }),
        json!({ "topic": "x", "aspect_ratio": "4:3" }),
        json!({ "topic": "x", "width": 360 }),
    ] {
        let (status, reply) = server.post("/api/v1/jobs", body.clone()).await;
        assert_v1_error(
            status,
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        );
    }
    let res = server
        .client
        .post(server.url("/api/v1/jobs"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_v1_error(
        status,
        &res.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    );
    let res = server
        .client
        .post(server.url("/api/v1/jobs"))
        .body("topic=x")
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_v1_error(
        status,
        &res.json().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    for path in [
        "/api/v1/jobs/7f1c1b9e-1111-4222-8333-444455556666",
        "/api/v1/jobs/nope",
        "/api/v1/jobs/nope/result",
    ] {
        let (status, body) = server.get(path).await;
        assert_v1_error(status, &body, StatusCode::NOT_FOUND, "JOB_NOT_FOUND");
    }
    let (status, body) = server.post("/api/v1/jobs/nope/cancel", json!({})).await;
    assert_v1_error(status, &body, StatusCode::NOT_FOUND, "JOB_NOT_FOUND");
    let res = server
        .client
        .delete(server.url("/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_v1_error(
        status,
        &res.json().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_docs_are_served() {
    let server = TestServer::start(with_file()).await;
    let (status, doc) = server.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/generate", "post"),
        ("/api/jobs/{id}", "get"),
        ("/api/jobs/{id}/events", "get"),
        ("/api/jobs/{id}/cancel", "post"),
        ("/api/cancel", "post"),
        ("/api/v1/jobs/{id}/events", "get"),
        ("/api/progress/{generation_id}", "get"),
        ("/api/status/{generation_id}", "get"),
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}/result", "get"),
        ("/api/v1/jobs/{id}/video", "get"),
        ("/api/v1/jobs/{id}/cancel", "post"),
        ("/health", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let sse = &paths["/api/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"];
    assert!(sse.get("text/event-stream").is_some());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "GenerateBody",
        "MpJob",
        "EventJson",
        "CreateJob",
        "V1Job",
        "ResultView",
        "JobList",
        "Status",
        "V1ErrorBody",
        "MpErrorBody",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    let res = server
        .client
        .get(server.url("/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger"));
}

/// The result's video URL when the request says `Host: host`.
async fn video_url(server: &TestServer, job: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/jobs/{job}/result HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    body["data"]["output_video_url"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn video_urls_trust_only_a_plain_host_or_the_configured_public_url() {
    let server = TestServer::start(with_file()).await;
    let (_, body) = server
        .post("/api/v1/jobs", json!({ "topic": "Links" }))
        .await;
    let job = body["data"]["job_id"].as_str().unwrap().to_string();
    server.wait_state(&job, "completed", LONG).await;
    let path = format!("/api/v1/jobs/{job}/video");
    assert_eq!(
        video_url(&server, &job, "media.example.com:8443").await,
        format!("http://media.example.com:8443{path}")
    );
    for hostile in ["evil.com?x=", "evil.com#", "user@evil.com", "evil.com/x"] {
        assert_eq!(video_url(&server, &job, hostile).await, path, "{hostile}");
    }
    let dir = server.dir.clone();
    server.stop().await;
    let server = TestServer::start_in(dir, with_file(), |c| {
        c.public_url = "https://videos.example.org/".into()
    })
    .await;
    assert_eq!(
        video_url(&server, &job, "evil.com?x=").await,
        format!("https://videos.example.org{path}")
    );
}

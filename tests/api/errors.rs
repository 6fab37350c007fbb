use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::stages::quick;

fn assert_mp_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .request(method.parse().unwrap(), server.url(path))
        .body(body.to_string());
    if let Some(ctype) = ctype {
        req = req.header("content-type", ctype);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ctype.starts_with("application/json"),
        "{method} {path}: content-type {ctype}"
    );
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn unknown_jobs_and_non_uuid_ids_get_404_job_not_found() {
    let server = TestServer::start(quick()).await;
    for path in [
        "/api/jobs/7f1c1b9e-1111-4222-8333-444455556666",
        "/api/jobs/not-a-uuid",
        "/api/jobs/7f1c1b9e-1111-4222-8333-444455556666/events",
        "/api/jobs/123/events?after=0",
        "/api/jobs/%00%ff",
        "/api/jobs/%ff%fe/events",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            body,
            json!({ "status": "error", "message": "Job not found." }),
            "{path}"
        );
    }
    for path in [
        "/api/jobs/nope/cancel",
        "/api/jobs/7f1c1b9e-1111-4222-8333-444455556666/cancel",
    ] {
        let (status, body) = server.post(path, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "Job not found.");
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_json() {
    let server = TestServer::start(quick()).await;
    let (status, body) = raw(&server, "GET", "/api/nothing-here", None, "").await;
    assert_mp_error(status, &body, StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/nothing-here",
        "/api/v1/",
        "/api/v1",
        "/api/v1/jobs/x/nope",
    ] {
        let (status, body) = raw(&server, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["success"], false, "{path}: {body}");
        assert_eq!(body["error"]["code"], "ROUTE_NOT_FOUND", "{path}");
    }
    let (status, body) = raw(&server, "DELETE", "/api/v1/jobs", None, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["success"], false, "{body}");
    let (status, body) = raw(&server, "GET", "/api/generate", None, "").await;
    assert_mp_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = raw(&server, "DELETE", "/api/jobs/x", None, "").await;
    assert_mp_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn malformed_bodies_get_400_415_and_413_in_the_envelope() {
    let server = TestServer::start_with(quick(), |c| c.max_body_bytes = 4096).await;
    let json_ct = Some("application/json");
    for body in [
        "{",
        "not json",
        "{\"videoSubject\": }",
        "[1,2]",
        "\"text\"",
        "42",
        "null",
    ] {
        let (status, reply) = raw(&server, "POST", "/api/generate", json_ct, body).await;
        assert_mp_error(status, &reply, StatusCode::BAD_REQUEST);
    }
    let (status, reply) = raw(
        &server,
        "POST",
        "/api/generate",
        Some("text/plain"),
        "{\"videoSubject\":\"x\"}",
    )
    .await;
    assert_mp_error(status, &reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, reply) = raw(
        &server,
        "POST",
        "/api/generate",
        None,
        "{\"videoSubject\":\"x\"}",
    )
    .await;
    assert_mp_error(status, &reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"videoSubject\":\"{}\"}}", "a".repeat(10_000));
    let (status, reply) = raw(&server, "POST", "/api/generate", json_ct, &big).await;
    assert_mp_error(status, &reply, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply["message"].as_str().unwrap().contains("4096"),
        "{reply}"
    );
}

#[tokio::test]
async fn blank_or_wrongly_typed_fields_get_400() {
    let server = TestServer::start(quick()).await;
    for body in [
        json!({}),
        json!({ "videoSubject": "" }),
        json!({ "videoSubject": "   " }),
        json!({ "videoSubject": "\u{0}\t" }),
        json!({ "videoSubject": null }),
        json!({ "videoSubject": 12 }),
        json!({ "videoSubject": "x", "paragraphNumber": "many" }),
        json!({ "videoSubject": "x", "paragraphNumber": 0 }),
        json!({ "videoSubject": "x", "threads": -1 }),
        json!({ "videoSubject": "x", "useMusic": "sometimes" }),
        json!({ "videoSubject": "x", "color": "not a colour" }),
        json!({ "videoSubject": "x", "subtitlesPosition": "sideways" }),
        json!({ "videoSubject": "x", "width": 361, "height": 640 }),
    ] {
        let (status, reply) = server.post("/api/generate", body.clone()).await;
        assert_mp_error(status, &reply, StatusCode::BAD_REQUEST);
        let _ = body;
    }
}

#[tokio::test]
async fn numeric_strings_are_accepted_as_the_original_front_end_sends_them() {
    let server = TestServer::start(quick()).await;
    let (status, body) = server
        .post(
            "/api/generate",
            json!({
                "videoSubject": "Why is the sky blue?",
                "paragraphNumber": "3",
                "threads": "2",
                "useMusic": false,
                "subtitlesPosition": "center,bottom",
                "color": "#FFFF00",
                "aiModel": "llama3.2",
                "voice": "en-us",
                "customPrompt": ""
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Video generation queued.");
    assert_eq!(body["generationId"], "Why_is_the_sky_blue");
    assert!(uuid::Uuid::parse_str(body["jobId"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn bad_event_query_parameters_get_400() {
    let server = TestServer::start(quick()).await;
    let id = server.submit("query").await;
    for query in [
        "after=-1",
        "after=abc",
        "after=1.5",
        "limit=0",
        "limit=100000",
        "limit=x",
        "level=loud",
    ] {
        let (status, body) = server.get(&format!("/api/jobs/{id}/events?{query}")).await;
        assert_mp_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn an_overlong_script_is_refused_in_both_dialects() {
    let server = TestServer::start_with(quick(), |c| c.max_body_bytes = 200_000).await;
    let script = "word ".repeat(5000);
    let (status, body) = server
        .post(
            "/api/generate",
            json!({ "videoSubject": "x", "script": script }),
        )
        .await;
    assert_mp_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("too long"),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/jobs", json!({ "script": script }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
}

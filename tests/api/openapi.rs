//! The OpenAPI document against the server it describes: its examples work
//! offline, and the statuses a client meets are the ones it lists. (The
//! exhaustive check is `.ci/openapi-check`, which runs schemathesis.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use std::sync::Arc;

use crate::helpers::TestServer;
use crate::stages::{Gate, pipeline, quick};

const RENDER: Duration = Duration::from_secs(120);

/// The request body example of `method path`.
fn example(doc: &Value, path: &str, method: &str) -> Value {
    doc["paths"][path][method]["requestBody"]["content"]["application/json"]["example"].clone()
}

#[tokio::test]
async fn the_documents_example_makes_a_video_offline() {
    // No LLM is configured: the example's script is all the job needs.
    let server = TestServer::start_media(|c| c.llm_base_url = "http://127.0.0.1:9/v1".into()).await;
    let (_, doc) = server.get("/api/openapi.json").await;

    let body = example(&doc, "/api/v1/jobs", "post");
    assert!(body["script"].is_string(), "{body}");
    let (status, created) = server.post("/api/v1/jobs", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["job_id"].as_str().unwrap();
    let job = server
        .wait_job(id, RENDER, |j| {
            j["state"] != "queued" && j["state"] != "running"
        })
        .await;
    assert_eq!(job["state"], "completed", "{job:#}");
    let video = server
        .client
        .get(server.url(&format!("/api/v1/jobs/{id}/video")))
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), StatusCode::OK);
    assert_eq!(video.headers()["content-type"], "video/mp4");

    // MoneyPrinter's example is accepted as it stands.
    let body = example(&doc, "/api/generate", "post");
    let (status, reply) = server.post("/api/generate", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let id = reply["jobId"].as_str().unwrap();
    server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
}

#[tokio::test]
async fn every_status_a_client_meets_is_documented() {
    // The job waits at its gate, so it is still active when deleted.
    let server = TestServer::start(pipeline(vec![Arc::new(Gate::new("research"))])).await;
    let (_, doc) = server.get("/api/openapi.json").await;
    let job = server.submit("Documented").await;
    let big = json!({ "videoSubject": "x".repeat(2 * 1024 * 1024) }).to_string();
    let cases: Vec<(Method, String, Option<&str>, StatusCode)> = vec![
        (
            Method::POST,
            "/api/v1/jobs".into(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/api/v1/jobs".into(),
            Some("{"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/jobs".into(),
            Some("{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/jobs".into(),
            Some(r#"{"topic":"t","width":100}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/generate".into(),
            Some("{}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/generate".into(),
            Some(r#"{"topic":" "}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/generate".into(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/api/generate".into(),
            Some(&big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::GET,
            "/api/v1/jobs?page=1&page=2".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/jobs?page=0".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            "/api/v1/jobs?page=%201".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            format!("/api/jobs/{job}/events?after="),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/api/jobs/{job}/events?level=info,"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/api/v1/jobs/{job}"),
            None,
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "/api/upload-songs".into(),
            Some("{}"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, uri, body, expected) in cases {
        let mut request = server.client.request(method.clone(), server.url(&uri));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), expected, "{method} {uri}");
        let reply: Value = res.json().await.unwrap_or(Value::Null);
        assert!(reply.is_object(), "{method} {uri}: the error is JSON");
        let path = uri.split('?').next().unwrap().replace(&job, "{id}");
        let responses = &doc["paths"][&path][method.as_str().to_lowercase()]["responses"];
        assert!(
            responses.get(expected.as_str()).is_some(),
            "{method} {path} answers {expected} but documents {:?}",
            responses.as_object().map(|r| r.keys().collect::<Vec<_>>())
        );
    }
}

#[tokio::test]
async fn query_parameters_and_limits_are_typed() {
    let server = TestServer::start(quick()).await;
    let (_, doc) = server.get("/api/openapi.json").await;
    let list = &doc["paths"]["/api/v1/jobs"]["get"]["parameters"];
    let page_size = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page_size")
        .unwrap();
    assert_eq!(page_size["in"], "query");
    assert_eq!(
        page_size["schema"],
        json!({"type": "integer", "minimum": 1, "maximum": 100})
    );
    let create = &doc["components"]["schemas"]["CreateJob"];
    assert_eq!(create["properties"]["topic"]["maxLength"], 500);
    assert_eq!(create["properties"]["scene_count"]["maximum"], 20);
    // A topic or a script is required.
    let required: Vec<&Value> = create["allOf"][0]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|branch| &branch["required"][0])
        .collect();
    assert_eq!(required, [&json!("topic"), &json!("script")]);
    // The upload's file limit follows the configuration.
    let server = TestServer::start_with(quick(), |c| c.max_upload_files = 3).await;
    let (_, doc) = server.get("/api/openapi.json").await;
    let form =
        &doc["paths"]["/api/upload-songs"]["post"]["requestBody"]["content"]["multipart/form-data"];
    assert_eq!(form["schema"]["properties"]["songs"]["maxItems"], 3);
}

//! API keys: off by default; when set, every route but `/health` (and CORS
//! preflight) needs one, refusals come in the route's envelope, event
//! streams take `?access_token=`, and `/metrics` may have its own key.

use std::time::Duration;

use reelay::Reelay;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{Api, Binary, TestServer, config_in};
use crate::stages::quick;

const KEYS: &str = "key-one, key-two";

async fn with_keys() -> TestServer {
    TestServer::start_with(quick(), |c| c.api_keys = KEYS.into()).await
}

/// A GET with an optional bearer key: status, `WWW-Authenticate`, body.
async fn get_as(api: &Api, path: &str, key: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut req = api.client.get(api.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.send().await.expect("GET");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let status = res.status();
    (status, challenge, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn without_a_key_every_route_but_health_answers_401_in_its_envelope() {
    let server = with_keys().await;
    let (status, challenge, body) = get_as(&server, "/api/jobs/nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["status"], "error", "MoneyPrinter envelope: {body}");
    let (status, challenge, body) = get_as(&server, "/api/v1/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["success"], false, "v1 envelope: {body}");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (status, _, body) = get_as(&server, "/api/status/some_topic", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].is_string(), "AI-Video-Gen envelope: {body}");
    // Unknown routes and the docs need a key too; only /health does not.
    let (status, _, _) = get_as(&server, "/no/such/route", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get_as(&server, "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = get_as(&server, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing is created without a key.
    let res = server
        .client
        .post(server.url("/api/generate"))
        .json(&json!({ "videoSubject": "No key" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (_, _, list) = get_as(&server, "/api/v1/jobs", Some("key-one")).await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn a_configured_key_opens_every_route_and_a_wrong_one_does_not() {
    let server = with_keys().await;
    for key in ["key-one", "key-two"] {
        let (status, _, body) = get_as(&server, "/api/v1/jobs", Some(key)).await;
        assert_eq!(status, StatusCode::OK, "{key}: {body}");
    }
    for wrong in ["key-on", "key-onex", "KEY-ONE", "key-one,key-two", ""] {
        let (status, _, _) = get_as(&server, "/api/v1/jobs", Some(wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?} was let in");
    }
    let res = server
        .client
        .post(server.url("/api/v1/jobs"))
        .bearer_auth("key-two")
        .json(&json!({ "topic": "With a key" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn cors_preflight_needs_no_key() {
    let server = with_keys().await;
    let res = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/jobs"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert!(res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn event_streams_take_the_key_as_access_token_and_other_routes_do_not() {
    let server = with_keys().await;
    let id = {
        let res = server
            .client
            .post(server.url("/api/generate"))
            .bearer_auth("key-one")
            .json(&json!({ "videoSubject": "Streamed" }))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["jobId"].as_str().unwrap().to_string()
    };
    let stream = |path: String| {
        let client = server.client.clone();
        let url = server.url(&path);
        async move {
            client
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap()
        }
    };
    let res = stream(format!("/api/v1/jobs/{id}/events?access_token=key-one")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = tokio::time::timeout(Duration::from_secs(10), res.text())
        .await
        .expect("the stream ends with the job")
        .unwrap();
    assert!(text.contains("job:completed"), "{text}");
    let res = stream(format!(
        "/api/jobs/{id}/events?access_token=key-two&after=0"
    ))
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = stream(format!("/api/v1/jobs/{id}/events?access_token=wrong")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Only streams take it: a plain poll needs the header.
    let (status, _, _) = get_as(
        &server,
        &format!("/api/jobs/{id}/events?access_token=key-one"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_metrics_key_opens_metrics_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(&dir);
    config.api_keys = "api-key".into();
    config.metrics_api_key = "scraper-key".into();
    let reelay = Reelay::start(config, quick()).await.unwrap();
    let router = reelay.router();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(format!("http://{}", listener.local_addr().unwrap()));
    tokio::spawn(reelay.serve_router(listener, router, std::future::pending()));
    let metrics_as = |key: Option<&'static str>| {
        let api = api.clone();
        async move {
            let mut req = api.client.get(api.url("/metrics"));
            if let Some(key) = key {
                req = req.bearer_auth(key);
            }
            req.send().await.unwrap().status()
        }
    };
    assert_eq!(metrics_as(Some("scraper-key")).await, StatusCode::OK);
    assert_eq!(metrics_as(Some("api-key")).await, StatusCode::OK);
    assert_eq!(metrics_as(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(metrics_as(Some("other")).await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get_as(&api, "/api/v1/jobs", Some("scraper-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_access_token_never_reaches_the_log_and_request_ids_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start_with(dir.path(), |cmd| {
        cmd.env("API_KEYS", "very-secret-token")
            .env("RUST_LOG", "info,tower_http=debug")
            .env("MIN_FREE_DISK_MB", "0");
    });
    let api = &server.api;
    let id = "00000000-0000-4000-8000-000000000000";
    let res = api
        .client
        .get(api.url(&format!(
            "/api/v1/jobs/{id}/events?access_token=very-secret-token"
        )))
        .header("accept", "text/event-stream")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the key was taken");
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let line = server
        .log_line("trace-me-42", Duration::from_secs(10))
        .await;
    assert!(line.contains("access_token=[redacted]"), "{line}");
    let res = api
        .client
        .get(api.url("/api/v1/jobs?access_token=very-secret-token"))
        .header("x-request-id", "second-request")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    server
        .log_line("second-request", Duration::from_secs(10))
        .await;
    assert!(
        !server.log_contains("very-secret-token"),
        "the access token was logged"
    );
}

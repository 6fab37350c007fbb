//! Idempotent submits: one job per Idempotency-Key, the same answer to a
//! retry, 422 for a key reused with another body, and keys that survive a
//! restart.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Api, TestServer};
use crate::stages::{Gate, pipeline, quick};

/// A POST with an Idempotency-Key (and maybe a bearer key): status, the
/// `idempotent-replayed` header, body.
pub(crate) async fn post_keyed(
    api: &Api,
    path: &str,
    key: &str,
    bearer: Option<&str>,
    body: Value,
) -> (StatusCode, bool, Value) {
    let mut req = api
        .client
        .post(api.url(path))
        .header("idempotency-key", key);
    if let Some(bearer) = bearer {
        req = req.bearer_auth(bearer);
    }
    let res = req.json(&body).send().await.unwrap();
    let replayed = res.headers().contains_key("idempotent-replayed");
    (res.status(), replayed, res.json().await.unwrap())
}

pub(crate) async fn total_jobs(api: &Api, bearer: Option<&str>) -> u64 {
    let mut req = api.client.get(api.url("/api/v1/jobs"));
    if let Some(bearer) = bearer {
        req = req.bearer_auth(bearer);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    body["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_gets_the_first_answer_and_no_new_job() {
    let server = TestServer::start(quick()).await;
    let body = json!({ "videoSubject": "Once", "paragraphNumber": 2 });
    let (status, replayed, first) =
        post_keyed(&server, "/api/generate", "k-1", None, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(!replayed);
    // The same fields in another order are the same request.
    let reordered = json!({ "paragraphNumber": 2, "videoSubject": "Once" });
    let (status, replayed, again) =
        post_keyed(&server, "/api/generate", "k-1", None, reordered).await;
    assert_eq!(status, StatusCode::OK);
    assert!(replayed);
    assert_eq!(again, first);
    assert_eq!(total_jobs(&server, None).await, 1);

    // v1 answers 201 with the job as it was when created, every time.
    let v1 = json!({ "topic": "Once in v1" });
    let (status, _, created) = post_keyed(&server, "/api/v1/jobs", "k-1", None, v1.clone()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a key is scoped to its route: {created}"
    );
    let id = created["data"]["job_id"].as_str().unwrap().to_string();
    server
        .wait_state(&id, "completed", Duration::from_secs(10))
        .await;
    let (status, replayed, again) = post_keyed(&server, "/api/v1/jobs", "k-1", None, v1).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(replayed);
    assert_eq!(again, created);
    assert_eq!(total_jobs(&server, None).await, 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_in_the_routes_envelope() {
    let server = TestServer::start(quick()).await;
    let (status, _, _) = post_keyed(
        &server,
        "/api/generate",
        "reused",
        None,
        json!({ "videoSubject": "First" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = post_keyed(
        &server,
        "/api/generate",
        "reused",
        None,
        json!({ "videoSubject": "Second" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    let (status, _, _) = post_keyed(
        &server,
        "/api/v1/jobs",
        "v1-key",
        None,
        json!({ "topic": "A" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = post_keyed(
        &server,
        "/api/v1/jobs",
        "v1-key",
        None,
        json!({ "topic": "B" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "IDEMPOTENCY_KEY_REUSED", "{body}");
    assert_eq!(total_jobs(&server, None).await, 2);
}

#[tokio::test]
async fn keys_longer_than_255_characters_are_400() {
    let server = TestServer::start(quick()).await;
    let long = "k".repeat(256);
    let (status, _, body) = post_keyed(
        &server,
        "/api/generate",
        &long,
        None,
        json!({ "videoSubject": "Long key" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["status"], "error");
    let (status, _, body) = post_keyed(
        &server,
        "/api/v1/jobs",
        &long,
        None,
        json!({ "topic": "Long" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["success"], false);
    let (status, _, _) = post_keyed(
        &server,
        "/api/v1/jobs",
        &"k".repeat(255),
        None,
        json!({ "topic": "Longest" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(total_jobs(&server, None).await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_job() {
    let server = TestServer::start(quick()).await;
    let body = json!({ "videoSubject": "Raced" });
    let answers =
        join_all((0..16).map(|_| post_keyed(&server, "/api/generate", "race", None, body.clone())))
            .await;
    let first = &answers[0].2;
    for (status, _, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer, first);
    }
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
    assert_eq!(total_jobs(&server, None).await, 1);
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let server = TestServer::start(quick()).await;
    let body = json!({ "topic": "Before the restart" });
    let (status, _, first) =
        post_keyed(&server, "/api/v1/jobs", "durable", None, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let dir = server.dir.clone();
    server.stop().await;
    let server = TestServer::start_in(dir, quick(), |_| {}).await;
    let (status, replayed, again) =
        post_keyed(&server, "/api/v1/jobs", "durable", None, body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(replayed);
    assert_eq!(again, first);
    assert_eq!(total_jobs(&server, None).await, 1);
}

#[tokio::test]
async fn a_key_belongs_to_the_api_key_that_used_it() {
    let server = TestServer::start_with(quick(), |c| c.api_keys = "alice,bob".into()).await;
    let body = json!({ "topic": "Shared key" });
    for bearer in ["alice", "bob"] {
        let (status, replayed, _) =
            post_keyed(&server, "/api/v1/jobs", "same", Some(bearer), body.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(!replayed, "{bearer} got another caller's answer");
    }
    assert_eq!(total_jobs(&server, Some("alice")).await, 2);
}

#[tokio::test]
async fn a_waiting_generate_holds_its_key_and_a_failure_after_the_job_is_kept() {
    let gate = Arc::new(Gate::new("research"));
    let server =
        TestServer::start_with(pipeline(vec![gate]), |c| c.idempotency_wait_secs = 1).await;
    let body = json!({ "topic": "Slow slides", "num_slides": 1 });
    let first = tokio::spawn({
        let api = server.api.clone();
        let body = body.clone();
        async move { post_keyed(&api, "/api/generate", "avg", None, body).await }
    });
    crate::helpers::eventually(Duration::from_secs(5), "the job to run", || async {
        let (_, list) = server.get("/api/v1/jobs").await;
        list["jobs"][0]["status"] == "processing"
    })
    .await;
    let (status, _, busy) = post_keyed(&server, "/api/generate", "avg", None, body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert!(busy["detail"].is_string(), "AI-Video-Gen envelope: {busy}");

    // The job is cancelled: the waiting generate fails with a 500 that
    // names its job, and a retry gets that same answer.
    let (_, list) = server.get("/api/v1/jobs").await;
    let id = list["jobs"][0]["job_id"].as_str().unwrap().to_string();
    server
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!({}))
        .await;
    let (status, _, failed) = first.await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{failed}");
    let (status, replayed, again) = post_keyed(&server, "/api/generate", "avg", None, body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(replayed);
    assert_eq!(again, failed);
    assert_eq!(total_jobs(&server, None).await, 1);
}

#[tokio::test]
async fn an_answer_that_only_says_try_later_is_not_kept() {
    let gate = Arc::new(Gate::new("research"));
    let server = TestServer::start_with(pipeline(vec![gate]), |c| {
        c.worker_concurrency = 1;
        c.max_queued_jobs = 1;
    })
    .await;
    let running = server.submit("Running").await;
    server
        .wait_state(&running, "running", Duration::from_secs(5))
        .await;
    let queued = server.submit("Queued").await;
    let body = json!({ "videoSubject": "Later" });
    let (status, _, _) = post_keyed(&server, "/api/generate", "later", None, body.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server
        .post(&format!("/api/jobs/{queued}/cancel"), json!({}))
        .await;
    let (status, replayed, answer) =
        post_keyed(&server, "/api/generate", "later", None, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!replayed);
    assert_eq!(total_jobs(&server, None).await, 3);
}

//! Request ids: taken from the client when sane, made otherwise, returned
//! on every answer, and kept on the job the request creates.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::stages::quick;

#[tokio::test]
async fn a_sane_client_id_comes_back_and_is_kept_on_the_job() {
    let server = TestServer::start(quick()).await;
    let res = server
        .client
        .post(server.url("/api/v1/jobs"))
        .header("x-request-id", "client-req-7")
        .json(&json!({ "topic": "Traced" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["x-request-id"], "client-req-7");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["request_id"], "client-req-7", "{body}");
    let id = body["data"]["job_id"].as_str().unwrap();
    let (_, view) = server.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(view["data"]["request_id"], "client-req-7", "{view}");

    // MoneyPrinter's submit keeps it too.
    let res = server
        .client
        .post(server.url("/api/generate"))
        .header("x-request-id", "mp-req-8")
        .json(&json!({ "videoSubject": "Traced too" }))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let id = body["jobId"].as_str().unwrap();
    let (_, view) = server.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(view["data"]["request_id"], "mp-req-8", "{view}");
}

#[tokio::test]
async fn a_missing_or_unfit_id_is_replaced_by_a_uuid_on_every_answer() {
    let server = TestServer::start(quick()).await;
    let unfit = ["", "has spaces", &"x".repeat(129)];
    for sent in unfit.iter().map(|s| Some(s.to_string())).chain([None]) {
        let mut req = server.client.get(server.url("/api/jobs/not-a-job"));
        if let Some(sent) = &sent {
            req = req.header("x-request-id", sent.as_str());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "errors carry it too");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{sent:?} gave {id:?}");
    }
}

#[tokio::test]
async fn event_streams_on_the_lean_path_carry_the_request_id() {
    let server = TestServer::start(quick()).await;
    let id = server.submit("Streamed").await;
    let res = server
        .client
        .get(server.url(&format!("/api/v1/jobs/{id}/events")))
        .header("x-request-id", "stream-req-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "stream-req-9");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
}

//! `GET /api/v1/events`: the job-level events of every job, live, with ids,
//! resumable without a gap, behind the API keys.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestServer;
use crate::sse::{self, SseStream, data, id};
use crate::stages::{Fail, pipeline, quick};

const LONG: Duration = Duration::from_secs(20);

/// Reads messages until `job` has one of type `last`; returns them all.
async fn until(stream: &mut SseStream, job: &str, last: &str) -> Vec<eventsource_stream::Event> {
    let mut seen = Vec::new();
    loop {
        let event = stream.next(LONG).await.expect("the stream ended early");
        let done = event.event == last && data(&event)["job_id"] == job;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn of_job<'a>(
    events: &'a [eventsource_stream::Event],
    job: &str,
) -> Vec<&'a eventsource_stream::Event> {
    events.iter().filter(|e| data(e)["job_id"] == job).collect()
}

#[tokio::test]
async fn a_job_shows_up_from_creation_to_completion_with_stages_and_states() {
    let server = TestServer::start(quick()).await;
    let client = reqwest::Client::new();
    let mut stream = sse::open(&client, &server.url("/api/v1/events"), None).await;
    assert_eq!(stream.status, StatusCode::OK);
    let job = server.submit("Tides").await;
    let events = until(&mut stream, &job, "job.completed").await;
    let mine = of_job(&events, &job);
    let names: Vec<&str> = mine.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"job.created"));
    assert!(names.contains(&"job.started"), "{names:?}");
    for stage in ["research", "director"] {
        let started = mine
            .iter()
            .position(|e| e.event == "stage.started" && data(e)["stage"] == stage);
        let completed = mine
            .iter()
            .position(|e| e.event == "stage.completed" && data(e)["stage"] == stage);
        assert!(
            started < completed && started.is_some(),
            "{stage}: {names:?}"
        );
    }
    // No log lines: only what a job list needs.
    assert!(
        mine.iter()
            .all(|e| e.event.starts_with("job.") || e.event.starts_with("stage."))
    );
    let states: Vec<Value> = mine
        .iter()
        .filter_map(|e| data(e).get("state").cloned())
        .collect();
    assert_eq!(states.first(), Some(&Value::from("queued")));
    assert_eq!(states.last(), Some(&Value::from("completed")));
    // Every message's `id:` is its event id, increasing.
    let ids: Vec<i64> = events.iter().map(id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(events.iter().all(|e| data(e)["id"].as_i64() == Some(id(e))));
}

#[tokio::test]
async fn a_failed_job_says_why() {
    let server = TestServer::start(pipeline(vec![std::sync::Arc::new(Fail {
        name: "research",
        message: "no facts today",
    })]))
    .await;
    let client = reqwest::Client::new();
    let mut stream = sse::open(&client, &server.url("/api/v1/events"), None).await;
    let job = server.submit("Doomed").await;
    let events = until(&mut stream, &job, "job.failed").await;
    let failed = events.last().unwrap();
    assert_eq!(data(failed)["state"], "failed");
    assert_eq!(data(failed)["level"], "error");
    assert!(
        of_job(&events, &job)
            .iter()
            .any(|e| e.event == "stage.failed" && data(e)["stage"] == "research")
    );
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_resumes_without_a_gap_or_a_repeat() {
    let server = TestServer::start(quick()).await;
    let client = reqwest::Client::new();
    let url = server.url("/api/v1/events");
    // Everything from the start of the log, as one reference.
    let first = server.submit("One").await;
    server.wait_state(&first, "completed", LONG).await;
    let second = server.submit("Two").await;
    server.wait_state(&second, "completed", LONG).await;
    let mut whole = sse::open(&client, &format!("{url}?after=0"), None).await;
    let reference = until(&mut whole, &second, "job.completed").await;
    assert!(reference.len() >= 10, "{}", reference.len());

    // Cut after a few messages, resume from the last id seen.
    let mut part = sse::open(&client, &format!("{url}?after=0"), None).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(part.next(LONG).await.unwrap());
    }
    drop(part);
    let mut rest = sse::open(&client, &url, Some(id(got.last().unwrap()))).await;
    got.extend(until(&mut rest, &second, "job.completed").await);
    let ids = |events: &[eventsource_stream::Event]| events.iter().map(id).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&reference));
}

#[tokio::test]
async fn without_a_cursor_the_stream_starts_at_the_newest_event() {
    let server = TestServer::start(quick()).await;
    let old = server.submit("Old").await;
    server.wait_state(&old, "completed", LONG).await;
    let client = reqwest::Client::new();
    let mut stream = sse::open(&client, &server.url("/api/v1/events"), None).await;
    let new = server.submit("New").await;
    let first = stream.next(LONG).await.unwrap();
    assert_eq!(data(&first)["job_id"], new.as_str());
    assert_eq!(first.event, "job.created");
}

#[tokio::test]
async fn a_bad_cursor_is_a_v1_error_and_keys_are_honoured() {
    let server = TestServer::start_with(quick(), |c| c.api_keys = "k1".into()).await;
    let client = reqwest::Client::new();
    let answer = client
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["success"], false);

    // EventSource cannot send headers: the key goes in the query.
    let stream = sse::open(&client, &server.url("/api/v1/events?access_token=k1"), None).await;
    assert_eq!(stream.status, StatusCode::OK);

    let answer = client
        .get(server.url("/api/v1/events?after=soon"))
        .bearer_auth("k1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn the_stream_ends_when_the_server_shuts_down() {
    let server = TestServer::start(quick()).await;
    let client = reqwest::Client::new();
    let mut stream = sse::open(&client, &server.url("/api/v1/events"), None).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(stream.rest(LONG).await.is_empty());
}

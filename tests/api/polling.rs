use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestServer, strictly_increasing_ids};
use crate::stages::{Emit, pipeline, quick};

#[tokio::test]
async fn incremental_polling_sees_every_event_once_in_order() {
    let server = TestServer::start(quick()).await;
    let id = server.submit("Black holes").await;
    let mut seen = Vec::new();
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the job never completed");
        let (status, body) = server
            .get(&format!("/api/jobs/{id}/events?after={after}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "success");
        for event in body["events"].as_array().unwrap() {
            assert!(
                event["id"].as_i64().unwrap() > after,
                "event at or before the cursor"
            );
            for field in ["id", "type", "level", "message", "payload", "timestamp"] {
                assert!(event.get(field).is_some(), "missing {field} in {event}");
            }
            after = event["id"].as_i64().unwrap();
            seen.push(event.clone());
        }
        let job = server.job(&id).await;
        if job["state"] == "completed" {
            // One more poll picks up anything written before the state flip.
            let (_, body) = server
                .get(&format!("/api/jobs/{id}/events?after={after}"))
                .await;
            seen.extend(body["events"].as_array().unwrap().iter().cloned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    strictly_increasing_ids(&seen);
    assert_eq!(
        seen,
        server.all_events(&id).await,
        "polled log differs from stored log"
    );
    assert_eq!(seen.first().unwrap()["message"], "Job queued.");
    assert_eq!(seen[1]["message"], "Starting video generation...");
    assert_eq!(seen.last().unwrap()["message"], "Video generation complete");

    let last = seen.last().unwrap()["id"].as_i64().unwrap();
    let (_, body) = server
        .get(&format!("/api/jobs/{id}/events?after={last}"))
        .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn limit_pages_through_a_long_log_without_loss() {
    let server = TestServer::start(pipeline(vec![Arc::new(Emit {
        name: "research",
        count: 1200,
    })]))
    .await;
    let id = server.submit("Long log").await;
    server
        .wait_state(&id, "completed", Duration::from_secs(30))
        .await;
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (_, body) = server
            .get(&format!("/api/jobs/{id}/events?after={after}&limit=7"))
            .await;
        let page = body["events"].as_array().unwrap().clone();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last["id"].as_i64().unwrap();
        paged.extend(page);
    }
    let ids = strictly_increasing_ids(&paged);
    assert!(ids.len() > 1200, "only {} events", ids.len());
    // The default page is bounded.
    let (_, body) = server.get(&format!("/api/jobs/{id}/events")).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 200);
    // Events of a restarted server come from SQLite, not memory: same log.
    let dir = server.dir.clone();
    let before = server.all_events(&id).await;
    server.stop().await;
    let server = TestServer::start_in(dir, quick(), |_| {}).await;
    assert_eq!(server.all_events(&id).await, before);
    assert_eq!(before, paged);
}

#[tokio::test]
async fn level_filter_returns_only_those_levels() {
    let server = TestServer::start(quick()).await;
    let id = server.submit("Filter").await;
    server
        .wait_state(&id, "completed", Duration::from_secs(10))
        .await;
    let (_, body) = server
        .get(&format!("/api/jobs/{id}/events?level=success"))
        .await;
    let events = body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["level"] == "success"));
    let (_, body) = server
        .get(&format!("/api/jobs/{id}/events?level=success,info"))
        .await;
    assert!(body["events"].as_array().unwrap().len() > events.len());
}

#[tokio::test]
async fn event_ids_increase_across_jobs() {
    let server = TestServer::start(quick()).await;
    let a = server.submit("first").await;
    let b = server.submit("second").await;
    for id in [&a, &b] {
        server
            .wait_state(id, "completed", Duration::from_secs(10))
            .await;
    }
    let mut all: Vec<i64> = Vec::new();
    for id in [&a, &b] {
        all.extend(strictly_increasing_ids(&server.all_events(id).await));
    }
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        server.all_events(&a).await.len() + server.all_events(&b).await.len()
    );
}

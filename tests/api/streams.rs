//! The three SSE streams: exact sequences, resume, slow readers, fan-out,
//! disconnects and shutdown.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, eventually};
use crate::sse::{self, data, id};
use crate::stages::{Bulk, Emit, Fail, Gate, Rich, pipeline, quick};

const LONG: Duration = Duration::from_secs(20);

fn names(events: &[eventsource_stream::Event]) -> Vec<String> {
    events.iter().map(|e| e.event.clone()).collect()
}

fn ids_of(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

/// research (2 logs) → director (gate) → critic (review data).
fn gated() -> (reelay::pipeline::Pipeline, Arc<tokio::sync::Semaphore>) {
    let gate = Gate::new("director");
    let release = gate.gate.clone();
    let p = pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 2,
        }),
        Arc::new(gate),
        Arc::new(Rich::Review),
    ]);
    (p, release)
}

#[tokio::test]
async fn openreels_stream_follows_a_running_job_with_snapshot_stages_and_completed() {
    let (p, release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Streams").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        None,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache, no-transform");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    let snapshot = stream.next(LONG).await.unwrap();
    assert_eq!(snapshot.event, "job:snapshot");
    let snap = data(&snapshot);
    assert_eq!(snap["status"], "running");
    assert_eq!(snap["stages"]["research"]["status"], "done");
    assert_eq!(snap["stages"]["director"]["status"], "running");
    assert_eq!(snap["stages"]["critic"]["status"], "pending");
    // The snapshot's id is the last event it reflects.
    let log = server.all_events(&job).await;
    assert_eq!(id(&snapshot), log.last().unwrap()["id"].as_i64().unwrap());

    release.add_permits(1);
    let rest = stream.rest(LONG).await;
    assert_eq!(
        names(&rest),
        [
            "stage:director",
            "stage:critic",
            "stage:critic",
            "stage:critic",
            "job:completed"
        ]
    );
    let types: Vec<Value> = rest.iter().map(|e| data(e)["type"].clone()).collect();
    assert_eq!(
        types,
        [
            json!("complete"),
            json!("start"),
            json!("review"),
            json!("complete"),
            Value::Null
        ]
    );
    let complete = data(&rest[0]);
    assert_eq!(complete["stage"], "director");
    assert_eq!(complete["detail"], "released");
    assert!(complete["durationSec"].is_number());
    assert_eq!(data(&rest[2])["strengths"][0], "test data");
    assert_eq!(data(rest.last().unwrap()), json!({}));
    let ids: Vec<i64> = rest.iter().map(id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > id(&snapshot));
}

#[tokio::test]
async fn openreels_stream_of_a_finished_job_is_snapshot_then_terminal() {
    let server = TestServer::start(quick()).await;
    let job = server.submit("Done already").await;
    server.wait_state(&job, "completed", LONG).await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        None,
    )
    .await;
    let all = stream.rest(LONG).await;
    assert_eq!(names(&all), ["job:snapshot", "job:completed"]);
    let snap = data(&all[0]);
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["progress"], 100);
    let log = server.all_events(&job).await;
    let terminal = log.last().unwrap()["id"].as_i64().unwrap();
    assert_eq!(id(&all[1]), terminal);
    assert_eq!(id(&all[0]), log[log.len() - 2]["id"].as_i64().unwrap());
    // Resuming from the end finds nothing: 204 stops EventSource.
    let again = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        Some(terminal),
    )
    .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    // Resuming from the snapshot gives exactly the terminal event.
    let mut resumed = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        Some(id(&all[0])),
    )
    .await;
    assert_eq!(names(&resumed.rest(LONG).await), ["job:completed"]);
}

#[tokio::test]
async fn openreels_stream_reports_failures_and_cancels_as_job_failed() {
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(Fail {
            name: "visuals",
            message: "Rate limit exceeded",
        }),
    ]))
    .await;
    let job = server.submit("Fails").await;
    server.wait_state(&job, "failed", LONG).await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events?after=0")),
        None,
    )
    .await;
    let all = stream.rest(LONG).await;
    assert_eq!(
        names(&all),
        [
            "stage:research",
            "stage:research",
            "stage:visuals",
            "stage:visuals",
            "job:failed"
        ]
    );
    assert_eq!(
        data(&all[3]),
        json!({ "stage": "visuals", "type": "error", "error": "Rate limit exceeded" })
    );
    assert_eq!(data(&all[4]), json!({ "error": "Rate limit exceeded" }));

    let (p, _release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Cancelled").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        None,
    )
    .await;
    assert_eq!(stream.next(LONG).await.unwrap().event, "job:snapshot");
    server
        .post(&format!("/api/v1/jobs/{job}/cancel"), json!({}))
        .await;
    let rest = stream.rest(LONG).await;
    assert_eq!(names(&rest), ["stage:director", "job:failed"]);
    assert_eq!(
        data(&rest[1]),
        json!({ "error": "Job cancelled.", "status": "cancelled" })
    );
    assert!(!names(&rest).contains(&"job:completed".to_string()));
}

#[tokio::test]
async fn unknown_jobs_get_404_json_on_every_stream() {
    let server = TestServer::start(quick()).await;
    for path in [
        "/api/v1/jobs/7f1c1b9e-1111-4222-8333-444455556666/events",
        "/api/v1/jobs/not-a-job/events",
    ] {
        let res = server
            .client
            .get(server.url(path))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "JOB_NOT_FOUND");
    }
    let res = server
        .client
        .get(server.url("/api/jobs/7f1c1b9e-1111-4222-8333-444455556666/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Job not found."
    );
    let res = server
        .client
        .get(server.url("/api/v1/jobs/1/events"))
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_log_stream_sends_the_poll_objects_with_ids_and_closes_at_the_end() {
    let server = TestServer::start(quick()).await;
    let job = server.submit("Log stream").await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        None,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    let all = stream.rest(LONG).await;
    let streamed: Vec<Value> = all.iter().map(data).collect();
    assert_eq!(streamed, server.all_events(&job).await);
    for (event, object) in all.iter().zip(&streamed) {
        assert_eq!(event.event, "message");
        assert_eq!(id(event), object["id"].as_i64().unwrap());
    }
    assert_eq!(
        streamed.last().unwrap()["message"],
        "Video generation complete"
    );
}

/// Reads `count` events of a stream, drops it, and reads the rest from
/// the last id; the union must be the stored log.
async fn resume_in_two_parts(server_a: &TestServer, job: &str, count: usize) -> (Vec<i64>, i64) {
    let url = server_a.url(&format!("/api/jobs/{job}/events"));
    let mut first = sse::open(&server_a.client, &url, None).await;
    let mut part = Vec::new();
    for _ in 0..count {
        let event = first.next(LONG).await.expect("stream ended early");
        part.push(id(&event));
    }
    drop(first);
    let last = *part.last().unwrap();
    (part, last)
}

#[tokio::test]
async fn a_dropped_stream_resumes_with_last_event_id_without_gap_or_duplicate() {
    let gate = Gate::new("director");
    let release = gate.gate.clone();
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 30,
        }),
        Arc::new(gate),
        Arc::new(Emit {
            name: "critic",
            count: 30,
        }),
    ]))
    .await;
    let job = server.submit("Resume").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let (part, last) = resume_in_two_parts(&server, &job, 25).await;
    release.add_permits(1);
    let mut second = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        Some(last),
    )
    .await;
    let rest: Vec<i64> = second.rest(LONG).await.iter().map(id).collect();
    let union: Vec<i64> = part.iter().chain(&rest).copied().collect();
    assert_eq!(union, ids_of(&server.all_events(&job).await));

    // `?after=` works the same for the openreels stream: no snapshot,
    // exactly the stage events after the cursor.
    let mut after = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events?after={last}")),
        None,
    )
    .await;
    let resumed = after.rest(LONG).await;
    assert!(resumed.iter().all(|e| e.event != "job:snapshot"));
    assert!(resumed.iter().all(|e| id(e) > last));
    assert_eq!(resumed.last().unwrap().event, "job:completed");
}

#[tokio::test]
async fn a_stream_resumes_across_a_server_restart() {
    let gate = Gate::new("director");
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 20,
        }),
        Arc::new(gate),
    ]))
    .await;
    let job = server.submit("Restart").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let (part, last) = resume_in_two_parts(&server, &job, 15).await;
    let dir = server.dir.clone();
    server.stop().await;
    // The restarted server runs the requeued job to the end.
    let server = TestServer::start_in(
        dir,
        pipeline(vec![
            Arc::new(Emit {
                name: "research",
                count: 20,
            }),
            Arc::new(Emit {
                name: "director",
                count: 5,
            }),
        ]),
        |_| {},
    )
    .await;
    let mut second = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        Some(last),
    )
    .await;
    let rest: Vec<i64> = second.rest(LONG).await.iter().map(id).collect();
    let union: Vec<i64> = part.iter().chain(&rest).copied().collect();
    let stored = server.all_events(&job).await;
    assert_eq!(union, ids_of(&stored));
    assert_eq!(
        stored.last().unwrap()["message"],
        "Video generation complete"
    );
}

#[tokio::test]
async fn a_slow_reader_still_receives_thousands_of_events_in_order() {
    let gate = Gate::new("tts");
    let release = gate.gate.clone();
    // About 8 MB of events: more than socket buffers absorb, so the
    // stream stalls and its subscription falls behind the broadcast.
    let server = TestServer::start(pipeline(vec![
        Arc::new(gate),
        Arc::new(Bulk {
            name: "assembly",
            count: 4000,
            pad: 2000,
        }),
    ]))
    .await;
    let job = server.submit("Firehose").await;
    server.wait_state(&job, "running", LONG).await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        None,
    )
    .await;
    let first = stream.next(LONG).await.unwrap();
    release.add_permits(1);
    // Stall while thousands of events are published: far more than the
    // broadcast buffer holds.
    server
        .wait_state(&job, "completed", Duration::from_secs(60))
        .await;
    let mut received = vec![id(&first)];
    for event in stream.rest(Duration::from_secs(60)).await {
        received.push(id(&event));
    }
    let stored = ids_of(&server.all_events(&job).await);
    assert!(stored.len() > 4000);
    assert_eq!(received, stored);
    assert!(
        server.state.engine.stats().catch_ups > 0,
        "the reader never fell behind; the test proves nothing"
    );
}

#[tokio::test]
async fn two_hundred_subscribers_all_receive_the_complete_sequence() {
    let gate = Gate::new("tts");
    let release = gate.gate.clone();
    let server = TestServer::start(pipeline(vec![
        Arc::new(gate),
        Arc::new(Emit {
            name: "assembly",
            count: 100,
        }),
    ]))
    .await;
    let job = server.submit("Fan-out").await;
    server.wait_state(&job, "running", LONG).await;
    let url = server.url(&format!("/api/jobs/{job}/events"));
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(sse::open(&server.client, &url, None).await);
    }
    let hub = server.state.engine.clone();
    eventually(LONG, "200 subscriptions", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers >= 200 }
    })
    .await;
    release.add_permits(1);
    let results = futures_util::future::join_all(streams.iter_mut().map(|s| s.rest(LONG))).await;
    let stored = ids_of(&server.all_events(&job).await);
    for events in results {
        assert_eq!(events.iter().map(id).collect::<Vec<_>>(), stored);
    }
    eventually(LONG, "subscriptions released", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
}

#[tokio::test]
async fn a_client_that_disconnects_releases_its_subscription_at_once() {
    let (p, _release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Leaving").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let hub = server.state.engine.clone();
    assert_eq!(hub.stats().subscribers, 0);
    let mut streams = Vec::new();
    for path in [
        format!("/api/v1/jobs/{job}/events"),
        format!("/api/jobs/{job}/events"),
        "/api/progress/Leaving".to_string(),
        "/api/progress/nobody-yet".to_string(),
    ] {
        let mut s = sse::open(&server.client, &server.url(&path), None).await;
        s.next(LONG).await.expect("a first event");
        streams.push(s);
    }
    assert_eq!(hub.stats().subscribers, 4);
    let (_, health) = server.get("/health").await;
    assert_eq!(health["subscribers"], 4);
    drop(streams);
    eventually(Duration::from_secs(2), "released subscriptions", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
}

#[tokio::test]
async fn shutdown_with_fifty_open_streams_completes_quickly() {
    let (p, _release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Shutdown").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut streams = Vec::new();
    for i in 0..50 {
        let path = match i % 3 {
            0 => format!("/api/v1/jobs/{job}/events"),
            1 => format!("/api/jobs/{job}/events"),
            _ => "/api/progress/Shutdown".to_string(),
        };
        let mut s = sse::open(&server.client, &server.url(&path), None).await;
        s.next(LONG).await.expect("a first event");
        streams.push(s);
    }
    let started = Instant::now();
    let took = server.stop().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    // Every stream was ended by the server.
    for s in &mut streams {
        s.rest(Duration::from_secs(5)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn progress_stream_connected_before_the_job_exists_follows_it_to_done() {
    let server = TestServer::start(quick()).await;
    let mut stream = sse::open(
        &server.client,
        &server.url("/api/progress/Why_the_sky_is_blue"),
        None,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["content-encoding"], "none");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    assert_eq!(stream.headers["cache-control"], "no-cache, no-transform");
    let first = stream.next(LONG).await.unwrap();
    let second = stream.next(LONG).await.unwrap();
    assert_eq!(data(&first)["status"], "connected");
    assert_eq!(data(&second)["status"], "waiting");
    let (status, _) = server
        .post(
            "/api/generate",
            json!({ "videoSubject": "Why the sky is blue?" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let rest: Vec<Value> = stream.rest(LONG).await.iter().map(data).collect();
    let statuses: Vec<&str> = rest.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.last(), Some(&"done"));
    assert_eq!(statuses[statuses.len() - 2], "completed");
    for expected in ["started", "generating_content", "generating_scripts"] {
        assert!(statuses.contains(&expected), "{statuses:?}");
    }
    let mut last = 0;
    for m in &rest {
        let p = m["progress"].as_u64().unwrap();
        assert!(p >= last, "progress went down: {rest:#?}");
        last = p;
        let ts = m["timestamp"].as_str().unwrap();
        assert!(
            chrono::NaiveTime::parse_from_str(ts, "%H:%M:%S").is_ok(),
            "{ts}"
        );
        assert!(m["message"].is_string());
    }
    assert_eq!(last, 100);
}

#[tokio::test]
async fn progress_stream_repeats_the_status_every_two_seconds_and_times_out() {
    let (p, _release) = gated();
    let server = TestServer::start_with(p, |c| c.progress_timeout_secs = 5).await;
    let job = server.submit("Heartbeat").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let opened = Instant::now();
    let mut stream = sse::open(&server.client, &server.url("/api/progress/Heartbeat"), None).await;
    let mut arrivals = Vec::new();
    let all = loop {
        match stream.next(Duration::from_secs(10)).await {
            Some(event) => arrivals.push((Instant::now(), data(&event))),
            None => break arrivals,
        }
    };
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(4800) && lasted < Duration::from_secs(8),
        "{lasted:?}"
    );
    // After the replay, the running stage's status repeats about every 2 s.
    let (_, last) = all
        .iter()
        .rev()
        .find(|(_, m)| m["status"] == "generating_scripts")
        .unwrap()
        .clone();
    let repeats: Vec<&Instant> = all
        .iter()
        .filter(|(_, m)| m["status"] == last["status"] && m["message"] == last["message"])
        .map(|(at, _)| at)
        .collect();
    assert!(repeats.len() >= 2, "no heartbeat: {all:#?}");
    for pair in repeats.windows(2) {
        let gap = *pair[1] - *pair[0];
        assert!(
            gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(2600),
            "gap {gap:?}"
        );
    }
}

#[tokio::test]
async fn progress_stream_for_an_unknown_id_waits_then_times_out() {
    let server = TestServer::start_with(quick(), |c| c.progress_timeout_secs = 3).await;
    let opened = Instant::now();
    let mut stream = sse::open(
        &server.client,
        &server.url("/api/progress/never_submitted"),
        None,
    )
    .await;
    let all: Vec<Value> = stream
        .rest(Duration::from_secs(10))
        .await
        .iter()
        .map(data)
        .collect();
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(2800) && lasted < Duration::from_secs(6),
        "{lasted:?}"
    );
    assert_eq!(all[0]["status"], "connected");
    assert!(
        all[1..].iter().all(|m| m["status"] == "waiting"),
        "{all:#?}"
    );
    assert!(all.len() >= 2);
}

#[tokio::test]
async fn status_route_gives_the_latest_status_or_404() {
    let server = TestServer::start(quick()).await;
    let res = server
        .client
        .get(server.url("/api/status/nothing_here"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "detail": "Generation ID not found" })
    );
    let job = server.submit("Status check").await;
    server.wait_state(&job, "completed", LONG).await;
    let (status, body) = server.get("/api/status/Status_check").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["progress"], 100);
    let (_, by_id) = server.get(&format!("/api/status/{job}")).await;
    assert_eq!(by_id["status"], "completed");
    let seen: HashSet<&str> = ["status", "progress", "message", "timestamp"]
        .into_iter()
        .collect();
    assert_eq!(
        body.as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<HashSet<_>>(),
        seen
    );
}

/// Reads from a raw socket until `needle` shows up (or 10 s pass).
async fn read_until(socket: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(&seen)
        );
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn a_stream_request_sent_in_pieces_gets_a_complete_sse_answer_with_cors() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(quick()).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /api/progress/not_yet HTTP/1.1\r\nHost: reelay\r\nOri")
        .await
        .unwrap();
    // A pause, not a wait: the head must reach the server in two reads.
    tokio::time::sleep(Duration::from_millis(50)).await;
    socket
        .write_all(b"gin: http://localhost:5173\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut socket, "\"status\":\"waiting\"").await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(head.contains("content-encoding: none"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(body.contains("\"status\":\"connected\""), "{body}");

    // An unknown job on the same path family: a complete JSON answer.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /api/v1/jobs/7f1c1b9e-1111-4222-8333-444455556666/events HTTP/1.1\r\nHost: reelay\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut socket, "JOB_NOT_FOUND").await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found"), "{answer}");
    let length: usize = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    assert_eq!(length, answer.split_once("\r\n\r\n").unwrap().1.len());
}

#[tokio::test]
async fn requests_on_a_kept_alive_connection_still_stream() {
    // One client, one pooled connection: an ordinary request first, then
    // a stream on the same connection.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let server = TestServer::start(quick()).await;
    let job = server.submit("Pooled").await;
    server.wait_state(&job, "completed", LONG).await;
    let status = client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let mut stream = sse::open(
        &client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        None,
    )
    .await;
    assert_eq!(
        names(&stream.rest(LONG).await),
        ["job:snapshot", "job:completed"]
    );
    let status = client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn quiet_streams_get_keep_alive_comments_and_a_retry_hint() {
    use tokio::io::AsyncWriteExt;
    let (p, _release) = gated();
    let server = TestServer::start_with(p, |c| c.sse_keepalive_secs = 1).await;
    let job = server.submit("Quiet").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET /api/v1/jobs/{job}/events HTTP/1.1\r\nHost: reelay\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let opened = Instant::now();
    let seen = read_until(&mut socket, ": keep-alive").await;
    assert!(
        opened.elapsed() >= Duration::from_millis(800),
        "{:?}",
        opened.elapsed()
    );
    assert!(seen.contains("retry: 2000"), "{seen}");
    assert!(seen.contains("event: job:snapshot"), "{seen}");
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_up_shutdown() {
    let server = TestServer::start(quick()).await;
    // Connected, but never sends a request.
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A pause, not a wait: time for the server to accept the connection,
    // which nothing a client can see reports.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
}

#[tokio::test]
async fn a_level_filtered_stream_still_ends_with_the_terminal_event() {
    let server = TestServer::start(pipeline(vec![Arc::new(Fail {
        name: "tts",
        message: "boom",
    })]))
    .await;
    let job = server.submit("Filtered").await;
    server.wait_state(&job, "failed", LONG).await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events?level=warning")),
        None,
    )
    .await;
    let all = stream.rest(LONG).await;
    let levels: Vec<Value> = all.iter().map(|e| data(e)["level"].clone()).collect();
    assert_eq!(levels, [json!("warning"), json!("error")]);
    assert_eq!(data(all.last().unwrap())["kind"], "failed");
    // From the end there is nothing more: 204, with no body and no length.
    let terminal = id(all.last().unwrap());
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "GET /api/jobs/{job}/events HTTP/1.1\r\nHost: r\r\nAccept: Text/Event-Stream\r\nLast-Event-ID: {terminal}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until(&mut socket, "\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("\r\ncontent-length:"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_cursor_beyond_the_log_still_follows_the_job_to_its_end() {
    let (p, release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Far cursor").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut stream = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events?after=999999999")),
        None,
    )
    .await;
    release.add_permits(1);
    let rest = stream.rest(LONG).await;
    assert_eq!(rest.last().unwrap().event, "job:completed");
}

#[tokio::test]
async fn the_log_and_progress_streams_end_right_for_failed_and_cancelled_jobs() {
    // Failed: the log stream is the stored log, ending with the failure;
    // the progress stream ends with `error` then `done`.
    let server = TestServer::start(pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 1,
        }),
        Arc::new(Fail {
            name: "tts",
            message: "boom",
        }),
    ]))
    .await;
    let job = server.submit("Fails here").await;
    server.wait_state(&job, "failed", LONG).await;
    let mut log = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        None,
    )
    .await;
    let streamed: Vec<Value> = log.rest(LONG).await.iter().map(data).collect();
    assert_eq!(streamed, server.all_events(&job).await);
    assert_eq!(streamed.last().unwrap()["kind"], "failed");
    assert_eq!(streamed.last().unwrap()["message"], "boom");
    let mut progress = sse::open(
        &server.client,
        &server.url("/api/progress/Fails_here"),
        None,
    )
    .await;
    let statuses: Vec<Value> = progress.rest(LONG).await.iter().map(data).collect();
    let tail: Vec<&str> = statuses[statuses.len() - 2..]
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["error", "done"]);
    assert_eq!(statuses[statuses.len() - 2]["message"], "❌ Error: boom");
    assert_eq!(statuses[0]["status"], "connected");

    // Cancelled while running: the same, with the cancel.
    let (p, _release) = gated();
    let server = TestServer::start(p).await;
    let job = server.submit("Stopped here").await;
    server
        .wait_job(&job, LONG, |j| j["currentStage"] == "director")
        .await;
    let mut log = sse::open(
        &server.client,
        &server.url(&format!("/api/jobs/{job}/events")),
        None,
    )
    .await;
    let mut progress = sse::open(
        &server.client,
        &server.url("/api/progress/Stopped_here"),
        None,
    )
    .await;
    server
        .post(&format!("/api/jobs/{job}/cancel"), json!({}))
        .await;
    let streamed: Vec<Value> = log.rest(LONG).await.iter().map(data).collect();
    assert_eq!(streamed, server.all_events(&job).await);
    let kinds: Vec<&str> = streamed
        .iter()
        .rev()
        .take(3)
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds[0], "cancelled");
    assert!(
        kinds.contains(&"cancel_requested")
            || streamed.iter().any(|e| e["kind"] == "cancel_requested")
    );
    let statuses: Vec<Value> = progress.rest(LONG).await.iter().map(data).collect();
    let tail: Vec<&str> = statuses[statuses.len() - 2..]
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["error", "done"]);
    assert!(
        statuses[statuses.len() - 2]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
}

//! The real binary, killed with SIGKILL mid-job and started again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Api, Binary, require_media_tools};

/// Submits a script job of `sentence` repeated, long enough to be killed
/// mid-run, and returns its id.
async fn submit(api: &Api, subject: &str, sentence: &str) -> String {
    api.submit_body(
        json!({ "videoSubject": subject, "script": sentence.repeat(12), "paragraphNumber": 3 }),
    )
    .await
}

/// Running and well under way: narration done, rendering soon.
fn under_way(job: &Value) -> bool {
    job["state"] == "running" && job["progress"].as_u64().unwrap() >= 20
}

#[tokio::test]
async fn sigkill_mid_job_then_restart_requeues_and_finishes_it_without_losing_events() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let id = submit(
        &server.api,
        "Rivers",
        "Rivers carve valleys over millions of years. ",
    )
    .await;

    // Kill it once the job is well under way.
    server
        .api
        .wait_job(&id, Duration::from_secs(60), |job| {
            assert_ne!(
                job["state"], "completed",
                "the job finished before the kill"
            );
            under_way(job)
        })
        .await;
    let seen = server.api.all_events(&id).await;
    server.kill();
    assert!(seen.len() > 3);

    let server = Binary::start(dir.path());
    let finished = server
        .api
        .wait_job(&id, Duration::from_secs(120), |job| {
            assert!(
                matches!(
                    job["state"].as_str(),
                    Some("queued" | "running" | "completed")
                ),
                "the job did not recover: {job}"
            );
            job["state"] == "completed"
        })
        .await;
    assert!(finished["resultPath"].is_string());
    let after = server.api.all_events(&id).await;
    assert_eq!(
        &after[..seen.len()],
        &seen[..],
        "events seen before the kill changed or vanished"
    );
    let ids: Vec<i64> = after.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not strictly increasing: {ids:?}"
    );
    let requeued: Vec<&Value> = after.iter().filter(|e| e["kind"] == "requeued").collect();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0]["level"], "warning");
    assert_eq!(after.iter().filter(|e| e["kind"] == "started").count(), 2);
    assert_eq!(
        after.last().unwrap()["message"],
        "Video generation complete"
    );
}

#[tokio::test]
async fn a_job_interrupted_twice_fails_with_a_clear_message() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Binary::start(dir.path());
    let id = submit(
        &server.api,
        "Glaciers",
        "Glaciers move slowly but shape whole mountain ranges. ",
    )
    .await;
    for round in 0..2 {
        server
            .api
            .wait_job(&id, Duration::from_secs(60), |job| {
                if job["state"] == "running" {
                    return true;
                }
                assert_eq!(job["state"], "queued", "round {round}: {job}");
                false
            })
            .await;
        server.kill();
        server = Binary::start(dir.path());
    }
    let job = server.api.job(&id).await;
    assert_eq!(job["state"], "failed");
    assert!(
        job["errorMessage"]
            .as_str()
            .unwrap()
            .contains("stopped twice"),
        "{job}"
    );
    let all = server.api.all_events(&id).await;
    assert_eq!(all.last().unwrap()["level"], "error");
}

#[tokio::test]
async fn sigterm_returns_the_running_job_to_the_queue_and_exits_quickly() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Binary::start(dir.path());
    let id = submit(
        &server.api,
        "Forests",
        "Forests breathe for the whole planet every single day. ",
    )
    .await;
    server
        .api
        .wait_job(&id, Duration::from_secs(60), under_way)
        .await;
    let asked = Instant::now();
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");

    let server = Binary::start(dir.path());
    server
        .api
        .wait_job(&id, Duration::from_secs(120), |job| {
            job["state"] == "completed"
        })
        .await;
    let all = server.api.all_events(&id).await;
    let requeued: Vec<&Value> = all.iter().filter(|e| e["kind"] == "requeued").collect();
    assert_eq!(requeued.len(), 1);
    assert!(
        requeued[0]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{}",
        requeued[0]
    );
    assert!(all.iter().all(|e| e["kind"] != "failed"));
}

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::helpers::{TestServer, eventually, throughout};
use crate::stages::{Emit, Gate, pipeline};

#[tokio::test]
async fn two_jobs_run_at_once_and_a_third_waits() {
    let gate = Gate::new("tts");
    let (release, inside, peak) = (gate.gate.clone(), gate.inside.clone(), gate.peak.clone());
    let server =
        TestServer::start_with(pipeline(vec![Arc::new(gate)]), |c| c.worker_concurrency = 2).await;
    let ids = [
        server.submit("one").await,
        server.submit("two").await,
        server.submit("three").await,
    ];
    eventually(Duration::from_secs(5), "two jobs inside the stage", || {
        let inside = inside.clone();
        async move { inside.load(Ordering::SeqCst) == 2 }
    })
    .await;
    // The worker had every chance to claim the third job: it must not.
    let states = || async {
        futures_util::future::join_all(ids.iter().map(|id| server.job(id)))
            .await
            .iter()
            .map(|j| j["state"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    throughout(
        Duration::from_millis(300),
        "two running and the third queued",
        || async { states().await == ["running", "running", "queued"] },
    )
    .await;
    release.add_permits(3);
    for id in &ids {
        server
            .wait_state(id, "completed", Duration::from_secs(5))
            .await;
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn no_job_is_claimed_twice_when_many_are_queued() {
    let server = TestServer::start_with(
        pipeline(vec![Arc::new(Emit {
            name: "research",
            count: 2,
        })]),
        |c| c.worker_concurrency = 4,
    )
    .await;
    let submits = (0..40).map(|i| {
        let server = &server;
        async move { server.submit(&format!("job {i}")).await }
    });
    let ids = futures_util::future::join_all(submits).await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 40);
    for id in &ids {
        server
            .wait_state(id, "completed", Duration::from_secs(20))
            .await;
        let events = server.all_events(id).await;
        let started = events.iter().filter(|e| e["kind"] == "started").count();
        assert_eq!(started, 1, "job {id} started {started} times");
    }
}

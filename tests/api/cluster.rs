//! Two real server processes on one PostgreSQL database: shared work,
//! rescue after SIGKILL, streams and cancels across instances, and the
//! event order when a commit is slow.
//!
//! They run against `REELAY_TEST_DATABASE` when it names a PostgreSQL
//! server, else against the local one at 127.0.0.1:5432, each test in a
//! schema of its own.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{
    Api, Binary, require_media_tools, schema_url, strictly_increasing_ids, test_postgres,
};
use crate::idempotency::{post_keyed, total_jobs};
use crate::sse;
use crate::webhooks::{Receiver, create_job};

const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server of these tests.
fn server() -> String {
    test_postgres().unwrap_or_else(|| LOCAL_POSTGRES.to_string())
}

/// The database URL of the cluster rooted in `dir`, named `name` in
/// `pg_stat_activity`.
fn cluster_url(dir: &Path, name: &str) -> String {
    format!("{}&application_name={name}", schema_url(&server(), dir))
}

/// Instance `name` of the cluster in `dir`, running `workers` jobs at once.
fn instance(dir: &Path, name: &str, workers: usize) -> Binary {
    Binary::start_with(dir, |cmd| {
        // Webhook receivers in these tests are on this machine.
        cmd.env("WEBHOOK_ALLOW_PRIVATE", "true")
            .env("DATABASE_URL", cluster_url(dir, &app_name(dir, name)))
            .env("INSTANCE_ID", name)
            .env("WORKER_CONCURRENCY", workers.to_string())
            .env("DATA_DIR", dir.join("data"))
            .env("FOOTAGE_DIR", dir.join("footage"))
            .env("MUSIC_DIR", dir.join("music"));
    })
}

/// A name unique to this cluster's instance, for `pg_stat_activity`.
fn app_name(dir: &Path, name: &str) -> String {
    let tail = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(['.', '-'], "");
    format!("reelay_{tail}_{name}")
}

async fn connect(dir: &Path) -> PgConnection {
    PgConnection::connect(&schema_url(&server(), dir))
        .await
        .expect("connect to PostgreSQL (start it, or set REELAY_TEST_DATABASE)")
}

/// A script job long enough to be caught running.
async fn submit_long(api: &Api, subject: &str) -> String {
    let sentence = "Rivers carve valleys over millions of years. ";
    api.submit_body(json!({ "videoSubject": subject, "script": sentence.repeat(12) }))
        .await
}

/// A short script job with still scenes.
async fn submit_short(api: &Api, subject: &str) -> String {
    api.submit_body(json!({
        "videoSubject": subject,
        "script": "Stars are born in clouds of gas.",
        "motion": false,
    }))
    .await
}

/// True when `binary` logged that it started job `id`.
fn ran(binary: &Binary, id: &str) -> bool {
    binary.log_contains(&format!("id={id}}}: reelay::worker: job started"))
}

/// Event ids in log order, checked to rise with no repeat.
fn ids_of(events: &[Value]) -> Vec<i64> {
    let ids = strictly_increasing_ids(events);
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event id is repeated");
    ids
}

#[tokio::test]
async fn jobs_spread_over_both_instances() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 1);
    let b = instance(dir.path(), "b", 1);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(submit_short(&a.api, &format!("Stars {n}")).await);
    }
    for id in &ids {
        a.api
            .wait_state(id, "completed", Duration::from_secs(120))
            .await;
        ids_of(&b.api.all_events(id).await);
        assert!(
            ran(&a, id) != ran(&b, id),
            "job {id} ran on exactly one instance"
        );
    }
    let on_b = ids.iter().filter(|id| ran(&b, id)).count();
    assert!(
        on_b > 0 && on_b < ids.len(),
        "both instances took jobs ({on_b} of {} on b)",
        ids.len()
    );
    // Either instance serves any job's video from the shared folder.
    let video = reqwest::get(b.api.url(&format!("/api/v1/jobs/{}/video", ids[0])))
        .await
        .unwrap();
    assert_eq!(video.status(), StatusCode::OK);
}

#[tokio::test]
async fn after_sigkill_the_other_instance_rescues_the_job_and_keeps_every_event() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 1);
    let b = instance(dir.path(), "b", 1);
    let id = submit_long(&a.api, "Rivers").await;
    a.api
        .wait_job(&id, Duration::from_secs(60), |job| {
            assert_ne!(
                job["state"], "completed",
                "the job finished before the kill"
            );
            job["state"] == "running" && job["progress"].as_u64().unwrap() >= 20
        })
        .await;
    let seen = a.api.all_events(&id).await;
    let (victim, survivor) = if ran(&a, &id) { (a, b) } else { (b, a) };
    let killed = Instant::now();
    victim.kill();

    let requeued = survivor
        .api
        .wait_event(&id, Duration::from_secs(40), |e| e["kind"] == "requeued")
        .await;
    let rescue = killed.elapsed();
    assert!(rescue < Duration::from_secs(30), "rescued after {rescue:?}");
    eprintln!("rescued {rescue:?} after the kill");
    survivor
        .api
        .wait_state(&id, "completed", Duration::from_secs(180))
        .await;
    assert!(ran(&survivor, &id));

    let events = survivor.api.all_events(&id).await;
    let ids = ids_of(&events);
    for before in &seen {
        assert!(events.contains(before), "lost {before}");
    }
    assert!(requeued["id"].as_i64().unwrap() > ids_of(&seen).last().copied().unwrap());
    assert_eq!(events.last().unwrap()["kind"], "completed");
    let (_, health) = survivor.api.get("/health").await;
    assert_eq!(health["backend"], "postgres");
    assert_eq!(health["lease"]["rescuedJobs"], 1, "{health}");
    assert!(ids.len() > seen.len());
}

#[tokio::test]
async fn a_stream_on_one_instance_follows_a_job_on_the_other_and_resumes_there() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    // a runs no jobs, so b runs this one.
    let a = instance(dir.path(), "a", 0);
    let b = instance(dir.path(), "b", 1);
    let id = submit_short(&a.api, "Comets").await;
    let client = reqwest::Client::new();
    let path = format!("/api/v1/jobs/{id}/events");

    // The whole stream from a, as the reference.
    let mut whole = sse::open(&client, &a.api.url(&path), None).await;
    // A second stream from a, broken off after three events...
    let mut first = sse::open(&client, &a.api.url(&path), None).await;
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let event = first.next(Duration::from_secs(60)).await.expect("an event");
        ids.push(sse::id(&event));
    }
    drop(first);
    // ...and resumed on b.
    let last = *ids.last().unwrap();
    let mut resumed = sse::open(&client, &b.api.url(&path), Some(last)).await;
    assert_eq!(resumed.status, StatusCode::OK);
    for event in resumed.rest(Duration::from_secs(120)).await {
        ids.push(sse::id(&event));
    }
    // The reference from where the broken stream began: each stream opens
    // with a snapshot of the job as it is then.
    let reference: Vec<i64> = whole
        .rest(Duration::from_secs(120))
        .await
        .iter()
        .map(sse::id)
        .filter(|id| *id >= ids[0])
        .collect();
    assert_eq!(ids, reference, "a resumed stream has a gap or a repeat");
    assert!(ran(&b, &id) && !ran(&a, &id));
    let (_, job) = a.api.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["data"]["status"], "completed", "{job}");
}

#[tokio::test]
async fn a_cancel_sent_to_one_instance_stops_the_job_on_the_other_within_a_second() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 0);
    let b = instance(dir.path(), "b", 1);
    let id = submit_long(&a.api, "Glaciers").await;
    a.api
        .wait_job(&id, Duration::from_secs(60), |job| {
            job["state"] == "running" && job["progress"].as_u64().unwrap() >= 20
        })
        .await;
    let sent = Instant::now();
    let (status, body) = a
        .api
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = a
        .api
        .wait_job(&id, Duration::from_secs(5), |job| job["state"] != "running")
        .await;
    let took = sent.elapsed();
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(
        took < Duration::from_secs(1),
        "the job stopped after {took:?}"
    );
    assert!(ran(&b, &id));
}

#[tokio::test]
async fn idle_streams_hold_no_database_connection() {
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 0);
    let id = a.api.submit("Waiting").await;
    let mut conn = connect(dir.path()).await;
    let name = app_name(dir.path(), "a");
    let client = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..200 {
        let url = a.api.url(&format!("/api/v1/jobs/{id}/events"));
        streams.push(sse::open(&client, &url, None).await);
    }
    for stream in &mut streams {
        stream
            .next(Duration::from_secs(10))
            .await
            .expect("a snapshot");
    }
    let (_, health) = a.api.get("/health").await;
    assert!(health["subscribers"].as_u64().unwrap() >= 200, "{health}");
    let open: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    // The writer, the listener and at most the read pool's eight.
    assert!(
        (1..=10).contains(&open),
        "{open} connections for 200 streams"
    );
}

/// Holds the event-order lock like a writer whose commit is slow (when
/// `locked`), inserts one event of `job`, and commits after `hold`.
/// Returns its id.
async fn slow_commit(dir: &Path, job: &str, locked: bool, hold: Duration) -> i64 {
    let mut conn = connect(dir).await;
    let mut tx = conn.begin().await.unwrap();
    if locked {
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(reelay::store::LockKeys::of_schema(&schema).event_order)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (job_id, type, level, message, timestamp) \
         VALUES ($1, 'log', 'info', 'A slow commit.', 0) RETURNING id",
    )
    .bind(job)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tokio::time::sleep(hold).await;
    tx.commit().await.unwrap();
    id
}

/// Reads the whole log the way instances do (`id > cursor`) every few
/// milliseconds until `stop`, and returns every id it saw.
async fn follow_log(dir: &Path, stop: tokio_util::sync::CancellationToken) -> Vec<i64> {
    let mut conn = connect(dir).await;
    let (mut cursor, mut seen) = (0, Vec::new());
    loop {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM events WHERE id > $1 ORDER BY id")
            .bind(cursor)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        if let Some(last) = ids.last() {
            cursor = *last;
        }
        seen.extend(ids);
        if stop.is_cancelled() {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One slow commit and twenty fast ones from two instances, with a reader
/// of `id > cursor` throughout: the ids it saw, the slow commit's id, and
/// every id in the log.
async fn interleave(locked: bool) -> (Vec<i64>, i64, Vec<i64>, Binary) {
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 0);
    let b = instance(dir.path(), "b", 0);
    let job = a.api.submit("Slow").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let reader = tokio::spawn({
        let (path, stop) = (dir.path().to_path_buf(), stop.clone());
        async move { follow_log(&path, stop).await }
    });
    let slow = tokio::spawn({
        let (path, job) = (dir.path().to_path_buf(), job.clone());
        async move { slow_commit(&path, &job, locked, Duration::from_millis(1500)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast: Vec<_> = (0..20)
        .map(|n| {
            let api = if n % 2 == 0 {
                a.api.clone()
            } else {
                b.api.clone()
            };
            tokio::spawn(async move { api.submit(&format!("Fast {n}")).await })
        })
        .collect();
    for submit in fast {
        submit.await.unwrap();
    }
    let slow_id = slow.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    let seen = reader.await.unwrap();
    let mut conn = connect(dir.path()).await;
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    drop(b);
    // The job whose log got the slow event, read through instance a.
    let events = a.api.all_events(&job).await;
    assert_eq!(
        events.iter().any(|e| e["id"] == slow_id),
        locked,
        "instance a's log of the job {} the slow event",
        if locked { "lacks" } else { "has" }
    );
    (seen, slow_id, all, a)
}

#[tokio::test]
async fn a_reader_never_skips_an_event_that_commits_late() {
    let (seen, slow, all, _a) = interleave(true).await;
    assert_eq!(seen, all, "the reader skipped an event");
    assert!(
        all.iter().filter(|id| **id > slow).count() >= 20,
        "the fast commits waited for the slow one and took later ids"
    );
}

#[tokio::test]
async fn without_the_event_order_lock_a_reader_would_skip_a_late_commit() {
    // The hazard the lock exists for, shown with a writer that bypasses
    // it: the fast commits overtake the slow one, and a reader whose
    // cursor passed its id never sees it.
    let (seen, slow, all, _a) = interleave(false).await;
    assert!(all.contains(&slow));
    assert!(!seen.contains(&slow), "the reader saw the late commit");
}

/// Waits until a job's log ends, and returns its last event's kind.
async fn wait_end(api: &Api, id: &str) -> Value {
    let ended = |e: &Value| {
        matches!(
            e["kind"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    };
    api.wait_event(id, Duration::from_secs(60), ended).await["kind"].clone()
}

#[tokio::test]
async fn one_instance_at_a_time_sends_webhooks_and_another_takes_over() {
    require_media_tools();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 1);
    let b = instance(dir.path(), "b", 1);
    let body = |topic: &str| json!({"topic": topic, "webhook": rx.url("127.0.0.1")});
    // Topic jobs fail at once without an LLM: each sends a few messages.
    for n in 0..3 {
        let id = create_job(&a.api, body(&format!("First {n}"))).await;
        wait_end(&a.api, &id).await;
    }
    let sent = || {
        let arrivals = rx.arrivals();
        let unique: HashSet<String> = arrivals.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            arrivals.len(),
            "a message went out twice: {arrivals:?}"
        );
        arrivals.len()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = sent();
    assert!(first >= 3, "{first} messages");

    // Whichever instance sent them, the other takes over once it is gone.
    let (gone, left) = if a.log_contains("now queues and sends webhooks") {
        (a, b)
    } else {
        (b, a)
    };
    gone.kill();
    let id = create_job(&left.api, body("After")).await;
    wait_end(&left.api, &id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent() == first {
        assert!(
            Instant::now() < deadline,
            "no instance took the webhooks over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_sent_to_both_instances_at_once_makes_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), "a", 0);
    let b = instance(dir.path(), "b", 0);
    for n in 0..10 {
        let key = format!("both-{n}");
        let body = json!({ "videoSubject": format!("Twice {n}") });
        let (first, second) = tokio::join!(
            post_keyed(&a.api, "/api/generate", &key, None, body.clone()),
            post_keyed(&b.api, "/api/generate", &key, None, body),
        );
        assert_eq!(first.0, StatusCode::OK, "{}", first.2);
        assert_eq!(second.0, StatusCode::OK, "{}", second.2);
        assert_eq!(first.2, second.2, "two answers to one key");
        assert!(first.1 != second.1, "exactly one of the two is a replay");
    }
    assert_eq!(total_jobs(&a.api, None).await, 10);
}

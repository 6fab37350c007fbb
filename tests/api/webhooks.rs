//! Webhooks against a local receiver that checks every signature with the
//! Standard Webhooks algorithm, written here from the specification.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reelay::Config;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Api, Binary, TestServer, eventually, require_media_tools, spawn_router};
use crate::stages::quick;

/// One message as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: i64,
    signature: String,
    raw: Bytes,
    body: Value,
    /// What the receiver answered.
    status: u16,
}

#[derive(Default)]
struct Inbox {
    /// Answer 503 to everything.
    down: bool,
    /// Wait this long before answering.
    delay: Duration,
    /// Never answer the first message (it is killed with the server).
    hang_first: bool,
    /// Ids as they arrive, before any answer.
    arrivals: Vec<String>,
    /// Messages with the answer given.
    got: Vec<Got>,
}

/// A receiver on 127.0.0.1; `url(host)` names it through `host`.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    port: u16,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let (delay, hang) = {
        let mut inbox = rx.inbox.lock().unwrap();
        let hang = inbox.hang_first && inbox.arrivals.is_empty();
        inbox.arrivals.push(id.clone());
        (inbox.delay, hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(delay).await;
    let mut inbox = rx.inbox.lock().unwrap();
    let status = if inbox.down { 503 } else { 200 };
    inbox.got.push(Got {
        id,
        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
        signature: header("webhook-signature"),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let mut rx = Receiver::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        rx.port = listener.local_addr().unwrap().port();
        drop(listener);
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(rx.clone());
        let addr = spawn_router(router).await;
        rx.port = addr.port();
        rx
    }

    pub(crate) fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.port)
    }

    fn set(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut self.inbox.lock().unwrap());
    }

    fn got(&self) -> Vec<Got> {
        self.inbox.lock().unwrap().got.clone()
    }

    fn accepted(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.status == 200).collect()
    }

    pub(crate) fn arrivals(&self) -> Vec<String> {
        self.inbox.lock().unwrap().arrivals.clone()
    }
}

/// The Standard Webhooks check: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the secret's base64 key, among the
/// space-separated signatures, and a timestamp within five minutes.
fn verify(secret: &str, got: &Got) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", got.id, got.timestamp).as_bytes());
    mac.update(&got.raw);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = (chrono::Utc::now().timestamp() - got.timestamp).abs() < 300;
    fresh && got.signature.split(' ').any(|s| s == expected)
}

fn quick_retries(config: &mut Config) {
    config.webhook_allow_private = true;
    config.webhook_retry_schedule = "100ms,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms"
        .parse()
        .unwrap();
}

async fn default_secret(api: &Api) -> String {
    let (status, body) = api.get("/api/v1/webhooks/default/secret").await;
    assert_eq!(status, 200, "{body}");
    body["data"]["key"].as_str().unwrap().to_string()
}

pub(crate) async fn create_job(api: &Api, body: Value) -> String {
    let (status, reply) = api.post("/api/v1/jobs", body).await;
    assert_eq!(status, 201, "{reply}");
    reply["data"]["job_id"].as_str().unwrap().to_string()
}

/// Every event of the job was accepted, in id order, each under its own
/// id, and every signature checks out.
fn assert_every_event_delivered_in_order(rx: &Receiver, secret: &str, events: &[Value]) {
    let accepted = rx.accepted();
    let ids: Vec<i64> = accepted
        .iter()
        .map(|g| g.body["data"]["event"]["id"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, expected, "accepted deliveries, in order");
    for got in rx.got() {
        assert!(verify(secret, &got), "bad signature on {got:?}");
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_a_while_gets_every_event_in_order_under_the_same_ids() {
    let rx = Receiver::start().await;
    rx.set(|i| i.down = true);
    let server = TestServer::start_with(quick(), quick_retries).await;
    let secret = default_secret(&server).await;
    let id = create_job(
        &server,
        json!({"topic": "Tides", "script": "The moon pulls the sea.", "webhook": rx.url("127.0.0.1"),
               "webhook_events_filter": ["start", "stage", "logs", "completed"]}),
    )
    .await;
    // Refused at least three times, then back.
    eventually(
        Duration::from_secs(10),
        "three refused attempts",
        || async { rx.got().len() >= 3 },
    )
    .await;
    let refused: Vec<String> = rx.got().iter().map(|g| g.id.clone()).collect();
    rx.set(|i| i.down = false);
    server
        .wait_state(&id, "completed", Duration::from_secs(10))
        .await;
    let events = server.all_events(&id).await;
    eventually(Duration::from_secs(20), "every event delivered", || async {
        rx.accepted().len() >= events.len()
    })
    .await;
    assert_every_event_delivered_in_order(&rx, &secret, &events);
    // Retries of the first message kept its id.
    let first = &rx.accepted()[0];
    assert!(refused.iter().all(|r| *r == first.id), "{refused:?}");
    assert_eq!(first.body["type"], "job.log");
    let last = rx.accepted().last().unwrap().clone();
    assert_eq!(last.body["type"], "job.completed");
    assert_eq!(last.body["data"]["job_id"], id.as_str());
    assert_eq!(last.body["data"]["status"], "completed");
    // The history shows the refusals and the success.
    let hook = format!("job_{}", id.replace('-', ""));
    let (status, history) = server
        .get(&format!("/api/v1/webhooks/{hook}/deliveries?limit=1000"))
        .await;
    assert_eq!(status, 200, "{history}");
    let oldest = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["id"], first.id.as_str());
    assert_eq!(oldest["status"], "delivered");
    let attempts = oldest["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 4, "{oldest}");
    assert_eq!(attempts[0]["status_code"], 503);
    assert!(attempts[0]["error"].as_str().unwrap().contains("503"));
    assert_eq!(attempts.last().unwrap()["status_code"], 200);
}

#[tokio::test]
async fn a_global_subscription_is_signed_with_its_own_secret_rotates_and_keeps_a_history() {
    let rx = Receiver::start().await;
    let server = TestServer::start_with(quick(), quick_retries).await;
    let (status, created) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("127.0.0.1"), "events": ["completed"], "description": "ci"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let hook = created["data"]["id"].as_str().unwrap().to_string();
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let (_, shown) = server.get(&format!("/api/v1/webhooks/{hook}")).await;
    assert!(shown["data"].get("secret").is_none(), "{shown}");
    let (_, list) = server.get("/api/v1/webhooks").await;
    assert_eq!(list["data"][0]["id"], hook.as_str());

    let first = server.submit("First").await;
    server
        .wait_state(&first, "completed", Duration::from_secs(10))
        .await;
    eventually(Duration::from_secs(10), "the completed message", || async {
        !rx.accepted().is_empty()
    })
    .await;
    let got = rx.accepted()[0].clone();
    assert_eq!(got.body["type"], "job.completed");
    assert_eq!(got.body["data"]["job_id"], first.as_str());
    assert!(verify(&secret, &got));
    assert_eq!(got.signature.split(' ').count(), 1);

    // During a rotation both secrets sign.
    let (status, rotated) = server
        .post(&format!("/api/v1/webhooks/{hook}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["data"]["key"].as_str().unwrap().to_string();
    let second = server.submit("Second").await;
    server
        .wait_state(&second, "completed", Duration::from_secs(10))
        .await;
    eventually(Duration::from_secs(10), "the second message", || async {
        rx.accepted().len() >= 2
    })
    .await;
    let got = rx.accepted()[1].clone();
    assert_eq!(got.signature.split(' ').count(), 2);
    assert!(verify(&secret, &got) && verify(&new_secret, &got));

    let path = format!("/api/v1/webhooks/{hook}/deliveries");
    // The receiver has answered; the attempt is recorded right after.
    eventually(
        Duration::from_secs(5),
        "both deliveries recorded",
        || async {
            let (_, history) = server.get(&path).await;
            let all = history["data"].as_array().unwrap().clone();
            all.len() == 2 && all.iter().all(|d| d["status"] == "delivered")
        },
    )
    .await;
    let (_, history) = server.get(&path).await;
    let deliveries = history["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{history}");
    let attempt = &deliveries[0]["attempts"][0];
    assert_eq!(attempt["status_code"], 200);
    assert!(attempt["latency_ms"].as_f64().unwrap() > 0.0);

    let (status, _) = api_delete(&server, &format!("/api/v1/webhooks/{hook}")).await;
    assert_eq!(status, 200);
    let (status, gone) = server.get(&format!("/api/v1/webhooks/{hook}")).await;
    assert_eq!(status, 404);
    assert_eq!(gone["success"], false);
}

async fn api_delete(api: &Api, path: &str) -> (reqwest::StatusCode, Value) {
    let res = api.client.delete(api.url(path)).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_delivery_that_runs_out_of_retries_fails_can_be_sent_again_and_a_failing_subscription_is_disabled()
 {
    let rx = Receiver::start().await;
    rx.set(|i| i.down = true);
    let server = TestServer::start_with(quick(), |config| {
        config.webhook_allow_private = true;
        config.webhook_retry_schedule = "100ms".parse().unwrap();
        config.webhook_disable_after = "1s".parse().unwrap();
    })
    .await;
    let (_, created) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("127.0.0.1"), "events": ["completed"]}),
        )
        .await;
    let hook = created["data"]["id"].as_str().unwrap().to_string();
    let job = server.submit("Down").await;
    server
        .wait_state(&job, "completed", Duration::from_secs(10))
        .await;
    let history = format!("/api/v1/webhooks/{hook}/deliveries");
    eventually(Duration::from_secs(10), "the delivery failed", || async {
        server.get(&history).await.1["data"][0]["status"] == "failed"
    })
    .await;
    let (_, listed) = server.get(&history).await;
    let delivery = listed["data"][0].clone();
    assert_eq!(
        delivery["attempts"].as_array().unwrap().len(),
        2,
        "{delivery}"
    );
    // A second job keeps it failing past WEBHOOK_DISABLE_AFTER.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = server.submit("Still down").await;
    server
        .wait_state(&again, "completed", Duration::from_secs(10))
        .await;
    eventually(
        Duration::from_secs(10),
        "the subscription is disabled",
        || async {
            server.get(&format!("/api/v1/webhooks/{hook}")).await.1["data"]["disabled_at"]
                .is_string()
        },
    )
    .await;

    // Back up: a resend goes out under the same id, and enables it again.
    rx.set(|i| i.down = false);
    let msg = delivery["id"].as_str().unwrap();
    let (status, body) = server
        .post(&format!("{history}/{msg}/resend"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(10), "the resent delivery", || async {
        rx.accepted().iter().any(|g| g.id == msg)
    })
    .await;
    let (_, shown) = server.get(&format!("/api/v1/webhooks/{hook}")).await;
    assert!(shown["data"]["disabled_at"].is_null(), "{shown}");
    let (status, body) = server
        .post(&format!("{history}/msg_nope/resend"), json!({}))
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (404, &json!("NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_slow_receiver_slows_neither_the_job_nor_another_receiver() {
    let slow = Receiver::start().await;
    slow.set(|i| i.delay = Duration::from_secs(3));
    let fast = Receiver::start().await;
    let server = TestServer::start_with(quick(), |config| {
        quick_retries(config);
        config.webhook_max_per_host = 1;
    })
    .await;
    // Different hosts: the slow one is reached as localhost.
    server
        .post(
            "/api/v1/webhooks",
            json!({"url": fast.url("127.0.0.1"), "events": ["completed"]}),
        )
        .await;
    let started = Instant::now();
    let id = create_job(
        &server,
        json!({"topic": "Slow", "webhook": slow.url("localhost"),
               "webhook_events_filter": ["start", "stage", "logs", "completed"]}),
    )
    .await;
    server
        .wait_state(&id, "completed", Duration::from_secs(5))
        .await;
    let job_time = started.elapsed();
    eventually(
        Duration::from_secs(3),
        "the fast receiver's message",
        || async { !fast.accepted().is_empty() },
    )
    .await;
    assert!(
        job_time < Duration::from_secs(2),
        "the job took {job_time:?}"
    );
    assert!(
        slow.arrivals().len() <= 1,
        "one slow delivery at a time: {:?}",
        slow.arrivals()
    );
}

#[tokio::test]
async fn private_addresses_and_bad_filters_are_refused_unless_allowed() {
    let rx = Receiver::start().await;
    let server = TestServer::start(quick()).await;
    for url in [
        rx.url("127.0.0.1"),
        rx.url("localhost"),
        "http://169.254.169.254/latest".into(),
        "http://[::1]/".into(),
        "http://10.0.0.1/".into(),
    ] {
        let (status, body) = server
            .post("/api/v1/jobs", json!({"topic": "Private", "webhook": url}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("webhook points to a loopback"),
            "{body}"
        );
        let (status, body) = server.post("/api/v1/webhooks", json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("url points to"),
            "{body}"
        );
    }
    // In each dialect's envelope.
    let (status, body) = server
        .post(
            "/api/generate",
            json!({"videoSubject": "P", "webhook": rx.url("127.0.0.1")}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &body["status"]),
        (400, &json!("error")),
        "{body}"
    );
    let (status, body) = server
        .post(
            "/api/generate",
            json!({"topic": "P", "webhook": rx.url("127.0.0.1")}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("webhook"),
        "{body}"
    );
    for (body, word) in [
        (
            json!({"topic": "F", "webhook": "ftp://example.com/"}),
            "http",
        ),
        (
            json!({"topic": "F", "webhook": "https://example.com/", "webhook_events_filter": ["everything"]}),
            "webhook_events_filter",
        ),
        (
            json!({"topic": "F", "webhook": "https://example.com/", "webhook_events_filter": "start"}),
            "webhook_events_filter",
        ),
    ] {
        let (status, reply) = server.post("/api/v1/jobs", body).await;
        assert_eq!(status, 422, "{reply}");
        assert!(reply["message"].as_str().unwrap().contains(word), "{reply}");
    }
    // Nothing was queued by the refused requests.
    let (_, list) = server.get("/api/v1/jobs").await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn a_server_killed_mid_delivery_sends_it_again_after_restart_and_drops_nothing() {
    require_media_tools();
    let rx = Receiver::start().await;
    rx.set(|i| i.hang_first = true);
    let dir = tempfile::tempdir().unwrap();
    let start = |dir: &std::path::Path| {
        Binary::start_with(dir, |cmd| {
            cmd.env("WEBHOOK_ALLOW_PRIVATE", "true").env(
                "WEBHOOK_RETRY_SCHEDULE",
                "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s",
            );
        })
    };
    let server = start(dir.path());
    let id = create_job(
        &server.api,
        json!({"topic": "Kill", "script": "Sand dunes move with the wind. ".repeat(8),
               "scene_count": 2, "width": 320, "height": 240, "webhook": rx.url("127.0.0.1"),
               "webhook_events_filter": ["start", "stage", "logs", "completed"]}),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the first delivery in flight",
        || async { !rx.arrivals().is_empty() },
    )
    .await;
    let in_flight = rx.arrivals()[0].clone();
    server.kill();

    let server = start(dir.path());
    eventually(Duration::from_secs(120), "the job to end", || async {
        let job = server.api.job(&id).await;
        matches!(job["state"].as_str(), Some("completed" | "failed"))
    })
    .await;
    let events = server.api.all_events(&id).await;
    eventually(Duration::from_secs(30), "every event delivered", || async {
        rx.accepted().len() >= events.len()
    })
    .await;
    let secret = default_secret(&server.api).await;
    assert_every_event_delivered_in_order(&rx, &secret, &events);
    assert_eq!(
        rx.accepted()[0].id,
        in_flight,
        "the in-flight message was sent again"
    );
}

#[tokio::test]
async fn ended_messages_leave_the_history_after_webhook_history_days() {
    let rx = Receiver::start().await;
    let server = TestServer::start_with(quick(), quick_retries).await;
    let (_, created) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": rx.url("127.0.0.1"), "events": ["completed"]}),
        )
        .await;
    let hook = created["data"]["id"].as_str().unwrap().to_string();
    let job = server.submit("Kept").await;
    server
        .wait_state(&job, "completed", Duration::from_secs(10))
        .await;
    let path = format!("/api/v1/webhooks/{hook}/deliveries");
    eventually(Duration::from_secs(10), "the delivery", || async {
        server.get(&path).await.1["data"][0]["status"] == "delivered"
    })
    .await;
    let dir = server.dir.clone();
    server.stop().await;

    // Kept across a restart; gone on one that keeps no history.
    let server = TestServer::start_in(dir.clone(), quick(), quick_retries).await;
    assert_eq!(
        server.get(&path).await.1["data"].as_array().unwrap().len(),
        1
    );
    server.stop().await;
    let server = TestServer::start_in(dir, quick(), |config| {
        quick_retries(config);
        config.webhook_history_days = 0;
    })
    .await;
    eventually(Duration::from_secs(5), "the history pruned", || async {
        server.get(&path).await.1["data"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
}

//! Webhook deliveries per second to a local receiver.
//!
//!     cargo bench --bench server -- webhook-receiver [ADDR]
//!     cargo bench --bench server -- webhooks [RECEIVER_URL] [JOBS] [EVENTS_PER_JOB] [PER_HOST]
//!
//! `webhooks` starts the engine with one global subscription for every
//! event, appends EVENTS_PER_JOB events to each of JOBS running jobs as
//! fast as the store takes them, and times how long it takes until the
//! receiver has taken every message (its `GET /count`). A job's messages
//! go out in order, one at a time, so JOBS bounds the concurrency, and so
//! does PER_HOST (`WEBHOOK_MAX_PER_HOST`). Without RECEIVER_URL the
//! receiver runs in this process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use reelay::Reelay;
use reelay::engine::JobPatch;
use reelay::model::{Level, NewEvent};
use reelay::pipeline::Pipeline;
use serde_json::json;
use tokio::net::TcpListener;

use super::{Idle, config_in, engine, submit, topic, wait_for};

/// Counts messages and answers 204, as a receiver that queues them would.
pub async fn receiver(addr: &str) {
    let count = Arc::new(AtomicU64::new(0));
    let router =
        Router::new()
            .route(
                "/hook",
                post(|State(n): State<Arc<AtomicU64>>| async move {
                    n.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::NO_CONTENT
                }),
            )
            .route(
                "/count",
                get(|State(n): State<Arc<AtomicU64>>| async move {
                    n.load(Ordering::Relaxed).to_string()
                }),
            )
            .with_state(count);
    let listener = TcpListener::bind(addr).await.expect("bind the receiver");
    println!(
        "{}",
        json!({ "receiver": listener.local_addr().unwrap().to_string() })
    );
    axum::serve(listener, router).await.expect("serve");
}

async fn received(client: &reqwest::Client, base: &str) -> u64 {
    match client.get(format!("{base}/count")).send().await {
        Ok(res) => res
            .text()
            .await
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

pub async fn run(args: &[String]) {
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let base = match args.first().filter(|a| a.starts_with("http")) {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            drop(listener);
            let serve = addr.clone();
            tokio::spawn(async move { receiver(&serve).await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            format!("http://{addr}")
        }
    };
    let (jobs, per_job, per_host) = (arg(1, 32), arg(2, 250), arg(3, 4));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(dir.path());
    config.worker_concurrency = jobs;
    config.webhook_allow_private = true;
    config.webhook_max_per_host = per_host;
    let reelay = Reelay::start(config, Pipeline::new(vec![Arc::new(Idle)]))
        .await
        .expect("start");
    let hooks = engine(&reelay).webhooks().clone();
    hooks
        .create(
            format!("{base}/hook"),
            Some(reelay::model::WebhookEvent::ALL.to_vec()),
            None,
        )
        .await
        .expect("subscribe");
    let mut ids = Vec::new();
    for i in 0..jobs {
        let id = submit(&reelay, topic(&format!("webhooks {i}"))).await;
        wait_for(&reelay, id, |j| j.current_stage.is_some()).await;
        ids.push(id);
    }
    let client = reqwest::Client::new();
    // The jobs' own queued, started and stage events are messages too.
    let before = loop {
        let settled = received(&client, &base).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if received(&client, &base).await == settled {
            break settled;
        }
    };
    let start = Instant::now();
    let writers: Vec<_> = ids
        .iter()
        .map(|&id| {
            let engine = engine(&reelay).clone();
            tokio::spawn(async move {
                for i in 0..per_job {
                    let event = NewEvent::log(Level::Info, format!("Rendering: {i}"));
                    engine
                        .append(id, vec![event], JobPatch::default())
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let appended = start.elapsed();
    let total = (jobs * per_job) as u64;
    while received(&client, &base).await < before + total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = total as f64 / elapsed;
    println!(
        "webhooks: {total} messages ({jobs} jobs x {per_job}, {per_host} per host) appended in \
         {:.2} s, all delivered in {elapsed:.2} s: {rate:.0} deliveries/s",
        appended.as_secs_f64()
    );
    println!(
        "{}",
        json!({ "bench": "webhooks", "deliveries_per_s": rate.round(), "jobs": jobs, "per_host": per_host })
    );
}

//! Benchmarks that drive the real server, and the SSE load client and
//! reference server they are compared with. Run them through
//! `benches/run.sh`, which pins the server and the load tools to separate
//! cores; each mode can also be run alone:
//!
//!     cargo bench --bench server -- append [SINGLE_EVENTS] [EVENTS_PER_WRITER] [WRITERS]
//!     cargo bench --bench server -- fixture [ADDR [ADDR_WITH_METRICS ADDR_WITHOUT]]
//!     cargo bench --bench server -- router-cost [BLOCKS] [PER_BLOCK]    (see router_cost.rs)
//!     cargo bench --bench server -- render [SECONDS] [ROUNDS]    (see render.rs)
//!     cargo bench --bench server -- sseload --url URL -n N ...   (see sseload.rs)
//!     cargo bench --bench server -- reference [ADDR]              (see reference.rs)
//!     cargo bench --bench server -- chaos [--kills 50]            (see chaos.rs)
//!     cargo bench --bench server -- webhooks ...                  (see webhooks.rs)
//!
//! `append` measures committed events per second from one writer and from
//! many concurrent ones. `append` and `fixture` run on SQLite, or on the
//! PostgreSQL server `BENCH_DATABASE` names (a fresh schema each run). `fixture` serves a job with 1,000 events (for
//! polling), and a running job whose events are appended by
//! `POST /bench/publish` (for SSE fan-out latency); with `PEER_ADDR` set
//! (and `BENCH_DATABASE` naming a PostgreSQL server) a second instance on
//! the same database serves there, for the cross-instance delay. It prints
//! one JSON line
//! with their ids and serves until SIGINT or SIGTERM; `METRICS_ENABLED=false`
//! in its environment turns metrics off. Given two more addresses, it also
//! serves the same engine there, with request metrics and without, in the
//! same way, so that one process answers both sides of the metrics
//! comparison. `render` makes the standard 1080×1920 video with motion and
//! without, and reports where the time went.

mod chaos;
mod reference;
mod render;
mod router_cost;
mod sseload;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use reelay::engine::{Engine, JobPatch};
use reelay::model::{JobRequest, Level, NewEvent};
use reelay::pipeline::{Pipeline, Stage, StageContext, StageError, StageOutcome, StageResult};
use reelay::{Config, Reelay};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

fn config_in(dir: &std::path::Path) -> Config {
    Config {
        database_url: format!("sqlite://{}", dir.join("bench.db").display()),
        data_dir: dir.join("data"),
        footage_dir: dir.join("footage"),
        music_dir: dir.join("music"),
        ..Config::default()
    }
}

/// [`config_in`], on the PostgreSQL server `BENCH_DATABASE` names when it
/// is set: in a fresh schema of this process, so every run starts empty.
async fn bench_config(dir: &std::path::Path) -> Config {
    let mut config = config_in(dir);
    if let Ok(server) = std::env::var("BENCH_DATABASE")
        && server.starts_with("postgres")
    {
        use sqlx::Connection;
        let schema = format!("bench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .expect("connect to BENCH_DATABASE");
        for statement in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            // The schema name is made here from the process id.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .expect("make the bench schema");
        }
        let joiner = if server.contains('?') { '&' } else { '?' };
        config.database_url = format!("{server}{joiner}options=-c%20search_path%3D{schema}");
    }
    config
}

/// Serves `reelay`'s engine at `addr` through a router with request
/// metrics or without, until the process ends; returns the address.
async fn serve_copy(reelay: &Reelay, addr: &str, metrics: bool) -> String {
    let state = state_with_metrics(reelay, metrics);
    let listener = TcpListener::bind(addr).await.expect("bind");
    let bound = listener.local_addr().expect("addr").to_string();
    let settings = reelay::serve::Settings {
        is_stream: reelay::api::is_event_stream,
        idle_timeout: state.config.idle_timeout(),
        max_connections: state.config.max_connections,
    };
    let router = reelay::app(state);
    tokio::spawn(reelay::serve::run(
        listener,
        router,
        settings,
        std::future::pending(),
    ));
    bound
}

/// `reelay`'s state, with request metrics on or off in its configuration.
fn state_with_metrics(reelay: &Reelay, metrics: bool) -> reelay::AppState {
    let mut state = reelay.state().clone();
    let mut config = (*state.config).clone();
    config.metrics_enabled = metrics;
    state.config = Arc::new(config);
    state
}

/// A server whose jobs write 996 events in their first stage, then idle.
async fn bursting(config: Config) -> Reelay {
    Reelay::start(
        config,
        Pipeline::new(vec![Arc::new(Burst(996)), Arc::new(Idle)]),
    )
    .await
    .expect("start")
}

/// Submits a job to a [`bursting`] server and waits until its burst is
/// committed; returns its id.
async fn burst_job(reelay: &Reelay, subject: &str) -> Uuid {
    let id = submit(reelay, topic(subject)).await;
    wait_for(reelay, id, |j| {
        j.current_stage.as_deref() == Some("director")
    })
    .await;
    id
}

/// Every event of `job` so far.
async fn log_of(reelay: &Reelay, job: Uuid) -> Vec<Arc<reelay::model::Event>> {
    engine(reelay)
        .events(job, 0, 10_000, None)
        .await
        .expect("events")
        .unwrap_or_default()
}

/// Emits `count` events as fast as the store takes them.
struct Burst(usize);

#[async_trait]
impl Stage for Burst {
    fn name(&self) -> &str {
        "research"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        for i in 0..self.0 {
            ctx.info(format!(
                "Burst event {i} of a long job log, about as long as real ones"
            ))
            .await?;
        }
        Ok(StageOutcome::done("burst"))
    }
}

/// Waits until the job is cancelled, keeping it running.
struct Idle;

#[async_trait]
impl Stage for Idle {
    fn name(&self) -> &str {
        "director"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        ctx.cancelled().await;
        Err(StageError::Cancelled)
    }
}

fn engine(reelay: &Reelay) -> &Engine {
    &reelay.state().engine
}

async fn wait_for(reelay: &Reelay, id: Uuid, done: impl Fn(&reelay::model::Job) -> bool) {
    loop {
        if let Ok(Some(job)) = engine(reelay).job(id).await
            && done(&job)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn submit(reelay: &Reelay, request: JobRequest) -> Uuid {
    engine(reelay)
        .submit(request)
        .await
        .expect("submit a job")
        .id
}

fn topic(subject: &str) -> JobRequest {
    JobRequest {
        subject: subject.into(),
        ..JobRequest::default()
    }
}

async fn append_bench(n: usize, per: usize, writers: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = bench_config(dir.path()).await;
    config.worker_concurrency = 64;
    let reelay = Reelay::start(config, Pipeline::new(vec![Arc::new(Idle)]))
        .await
        .expect("start");
    let store = engine(&reelay).clone();
    let mut jobs = Vec::new();
    for i in 0..64 {
        let id = submit(&reelay, topic(&format!("append {i}"))).await;
        wait_for(&reelay, id, |j| j.current_stage.is_some()).await;
        jobs.push(id);
    }
    let event =
        || NewEvent::log(Level::Info, "Rendering: 42%").with_payload(json!({ "progress": 0.42 }));

    // One writer, each append awaited before the next.
    let start = Instant::now();
    for _ in 0..n {
        store
            .append(jobs[0], vec![event()], JobPatch::default())
            .await
            .expect("append");
    }
    let single = n as f64 / start.elapsed().as_secs_f64();

    // Many writers at once (several per job): their appends share commits.
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let job = jobs[w % jobs.len()];
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    store
                        .append(job, vec![event()], JobPatch::default())
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    let concurrent = (per * writers) as f64 / start.elapsed().as_secs_f64();
    println!("single writer: {single:.0} events/s committed ({n} events)");
    println!(
        "{writers} concurrent writers on {} jobs: {concurrent:.0} events/s committed ({} events)",
        jobs.len(),
        per * writers
    );
    println!(
        "{}",
        json!({ "bench": "append", "single_per_s": single.round(), "concurrent_per_s": concurrent.round() })
    );
}

async fn publish(
    State(state): State<(reelay::AppState, Uuid)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let (state, job) = state;
    let event = NewEvent::log(Level::Info, "tick").with_payload(body);
    let events = state
        .engine
        .append(job, vec![event], JobPatch::default())
        .await
        .expect("append");
    Json(json!({ "id": events[0].id }))
}

async fn fixture(addr: &str, pair: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = bench_config(dir.path()).await;
    // A second instance on the same database, serving at PEER_ADDR and
    // running no jobs: streams there follow the jobs of the first.
    let peer = match std::env::var("PEER_ADDR") {
        Ok(peer_addr) => {
            let mut peer_config = config.clone();
            peer_config.worker_concurrency = 0;
            let peer = Reelay::start(peer_config, Pipeline::new(vec![Arc::new(Idle)]))
                .await
                .expect("start the peer");
            let bound = serve_copy(&peer, &peer_addr, false).await;
            Some((peer, bound))
        }
        Err(_) => None,
    };
    if let Ok(value) = std::env::var("METRICS_ENABLED") {
        config.metrics_enabled = value != "false";
    }
    if pair.is_some() {
        config.metrics_enabled = true;
    }
    let reelay = bursting(config).await;
    // A job whose log holds 1,000 events once its first stage is done.
    let poll_job = burst_job(&reelay, "polling").await;
    let live_job = burst_job(&reelay, "live").await;
    let live_last = log_of(&reelay, live_job).await.last().map_or(0, |e| e.id);
    let events = log_of(&reelay, poll_job).await;
    let router = reelay.router().merge(
        Router::new()
            .route("/bench/publish", post(publish))
            .with_state((reelay.state().clone(), live_job)),
    );
    let listener = TcpListener::bind(addr).await.expect("bind");
    // `benches/run.sh metrics` compares the same load with metrics on and
    // off: the same engine, the router built without request metrics.
    let pair = match pair {
        Some((with, without)) => Some((
            serve_copy(&reelay, with, true).await,
            serve_copy(&reelay, without, false).await,
        )),
        None => None,
    };
    println!(
        "{}",
        json!({
            "addr": listener.local_addr().expect("addr").to_string(),
            "pair": pair,
            "peer": peer.as_ref().map(|(_, addr)| addr),
            "pid": std::process::id(),
            "poll_job": poll_job,
            "poll_events": events.len(),
            "first_id": events.first().map(|e| e.id),
            "last_id": events.last().map(|e| e.id),
            "live_job": live_job,
            "live_last_id": live_last,
        })
    );
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    reelay
        .serve_router(listener, router, shutdown)
        .await
        .expect("serve");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    match args.first().map(String::as_str) {
        Some("append") => {
            let arg =
                |i: usize, default| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
            runtime.block_on(append_bench(arg(1, 20_000), arg(2, 5_000), arg(3, 64)))
        }
        Some("fixture") => runtime.block_on(fixture(
            args.get(1).map_or("127.0.0.1:3901", String::as_str),
            args.get(2)
                .zip(args.get(3))
                .map(|(a, b)| (a.as_str(), b.as_str())),
        )),
        Some("router-cost") => {
            let arg =
                |i: usize, default| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
            runtime.block_on(router_cost::run(arg(1, 200), arg(2, 2_000)))
        }
        Some("render") => runtime.block_on(render::run(
            args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30.0),
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2),
        )),
        Some("sseload") => runtime.block_on(sseload::run(&args[1..])),
        Some("chaos") => runtime.block_on(chaos::run(&args[1..])),
        Some("webhooks") => runtime.block_on(webhooks::run(&args[1..])),
        Some("webhook-receiver") => runtime.block_on(webhooks::receiver(
            args.get(1).map_or("127.0.0.1:3902", String::as_str),
        )),
        Some("reference") => runtime.block_on(reference::serve(
            args.get(1).map_or("127.0.0.1:3900", String::as_str),
        )),
        _ => eprintln!(
            "usage: server (append | fixture [ADDR [ADDR ADDR]] | router-cost [BLOCKS] [PER_BLOCK] | render [SECONDS] [ROUNDS] | sseload ... | reference [ADDR] | chaos ... | webhooks ... | webhook-receiver [ADDR])"
        ),
    }
}

//! Reelay: a self-hosted server for video-generation jobs.
//!
//! [`Reelay::start`] opens the engine, recovers jobs a crash interrupted and
//! starts the worker; [`Reelay::serve`] answers HTTP on a bound listener
//! until its shutdown future resolves. [`app`] builds the router alone.
//! `ARCHITECTURE.md` maps the layers.

#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod serve;
pub mod store;
pub mod tools;
pub mod webhooks;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
use engine::Engine;
use pipeline::Pipeline;
use worker::Worker;

/// How long shutdown waits for running stages to stop and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Jobs and their logs.
    pub engine: Engine,
    /// The server's configuration.
    pub config: Arc<Config>,
}

/// The router with every route and middleware, for a running state.
pub fn app(state: AppState) -> Router {
    api::router(state)
}

/// A started server: engine open, worker running, not yet listening.
pub struct Reelay {
    state: AppState,
    worker: Worker,
    /// Stops the background tasks (the retention sweep).
    background: tokio_util::sync::CancellationToken,
}

impl Reelay {
    /// Opens the engine, requeues or fails jobs a crash left running, and
    /// starts the worker with `pipeline`.
    pub async fn start(config: Config, pipeline: Pipeline) -> anyhow::Result<Reelay> {
        let config = Arc::new(config.with_absolute_paths());
        // The libraries' folders exist from the start, so that the README's
        // "put tracks in music/" works before the first upload.
        for folder in [&config.data_dir, &config.music_dir, &config.footage_dir] {
            std::fs::create_dir_all(folder).map_err(|err| {
                anyhow::anyhow!("could not create the folder {}: {err}", folder.display())
            })?;
        }
        if config.metrics_enabled && !crate::metrics::install() {
            tracing::warn!("another metrics recorder was installed first; /metrics shows nothing");
        }
        let engine = Engine::open(config.clone(), pipeline.initial_stages()).await?;
        let recovery = worker::lifecycle::recover_interrupted(&engine, true).await?;
        if !recovery.requeued.is_empty()
            || !recovery.failed.is_empty()
            || !recovery.cancelled.is_empty()
        {
            tracing::warn!(
                requeued = recovery.requeued.len(),
                failed = recovery.failed.len(),
                cancelled = recovery.cancelled.len(),
                "recovered jobs interrupted by a crash"
            );
        }
        let worker = Worker::start(
            engine.clone(),
            pipeline,
            config.data_dir.join("jobs"),
            config.worker_concurrency,
        );
        let background = tokio_util::sync::CancellationToken::new();
        engine.webhooks().start(
            Arc::new(|job| {
                serde_json::to_value(api::clipzy::views::V1Job::from(job)).unwrap_or_default()
            }),
            background.clone(),
        );
        tokio::spawn(worker::lifecycle::rescue_orphans(
            engine.clone(),
            background.clone(),
        ));
        if config.job_retention_days > 0 {
            tokio::spawn(engine::keep_retention(
                engine.clone(),
                config.job_retention_days,
                background.clone(),
            ));
        }
        Ok(Reelay {
            state: AppState { engine, config },
            worker,
            background,
        })
    }

    /// The state the router serves, for tests and benchmarks that drive
    /// the engine directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router for this server.
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Serves HTTP until `shutdown` resolves. Then open streams end, new
    /// connections are refused, running jobs return to the queue, and this
    /// returns once in-flight requests and job records are done.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        self.serve_router(listener, router, shutdown).await
    }

    /// [`Reelay::serve`] with a router of the caller's, usually
    /// [`Reelay::router`] with routes of its own merged in.
    pub async fn serve_router(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let engine = self.state.engine.clone();
        let worker = self.worker.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down");
            engine.close_streams();
            worker.begin_shutdown();
        };
        let settings = serve::Settings {
            is_stream: api::is_event_stream,
            idle_timeout: self.state.config.idle_timeout(),
            max_connections: self.state.config.max_connections,
        };
        let result = serve::run(listener, router, settings, signal).await;
        self.background.cancel();
        self.worker.shutdown(SHUTDOWN_GRACE).await;
        self.state.engine.close().await;
        result
    }
}

/// Logs what a newcomer needs to know: where the database and the
/// folders are, which media tools were found (or how to install them),
/// and where the docs and the health report are served.
pub async fn log_startup(state: AppState, addr: std::net::SocketAddr) {
    let config = &state.config;
    match config.database_file() {
        Some(file) => tracing::info!(file = %file.display(), "database"),
        None => tracing::info!(url = %config.database_url, "database"),
    }
    tracing::info!(path = %config.data_dir.display(), "data folder (one folder per job under jobs/)");
    tracing::info!(path = %config.music_dir.display(), "music library");
    tracing::info!(path = %config.footage_dir.display(), "footage library");
    if let serde_json::Value::Object(tools) = state.engine.tool_report().await {
        for (name, tool) in tools {
            match (tool["path"].as_str(), tool["version"].as_str()) {
                (Some(path), version) => {
                    tracing::info!(path, version = version.unwrap_or("unknown"), "found {name}")
                }
                (None, _) => tracing::warn!("{}", tool["error"].as_str().unwrap_or(&name)),
            }
        }
    }
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new([127, 0, 0, 1].into(), addr.port())
    } else {
        addr
    };
    tracing::info!("API docs at http://{host}/docs, health at http://{host}/health");
}

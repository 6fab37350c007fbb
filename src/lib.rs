//! Reelay: a self-hosted server for video-generation jobs.
//!
//! [`Reelay::start`] opens the store, recovers jobs a crash interrupted and
//! starts the worker; [`Reelay::serve`] answers HTTP on a bound listener
//! until its shutdown future resolves. [`app`] builds the router alone.

pub mod api;
pub mod config;
pub mod feed;
pub mod hub;
pub mod model;
pub mod pipeline;
pub mod serve;
pub mod store;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
use hub::Hub;
use pipeline::Pipeline;
use pipeline::media::Tools;
use store::Store;
use worker::Worker;

/// How long shutdown waits for running stages to stop and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub worker: Worker,
    pub config: Arc<Config>,
    pub tools: Arc<Tools>,
    /// For calls the API makes itself (the LLM server's model list).
    pub http: reqwest::Client,
}

/// The router with every route and middleware, for a running state.
pub fn app(state: AppState) -> Router {
    api::router(state)
}

/// A started server: store open, worker running, not yet listening.
pub struct Reelay {
    state: AppState,
}

impl Reelay {
    /// Opens the store, requeues or fails jobs a crash left running, and
    /// starts the worker with `pipeline`.
    pub async fn start(config: Config, pipeline: Pipeline) -> anyhow::Result<Reelay> {
        let hub = Hub::new();
        let store =
            Store::open(&config.database_url, hub.clone(), config.event_cache_events).await?;
        let recovery = store.recover_interrupted().await?;
        if !recovery.requeued.is_empty() || !recovery.failed.is_empty() {
            tracing::warn!(
                requeued = recovery.requeued.len(),
                failed = recovery.failed.len(),
                cancelled = recovery.cancelled.len(),
                "recovered jobs interrupted by a crash"
            );
        }
        let worker = Worker::start(
            store.clone(),
            pipeline,
            config.data_dir.join("jobs"),
            config.worker_concurrency,
        );
        Ok(Reelay {
            state: AppState {
                store,
                hub,
                worker,
                tools: Arc::new(Tools::new(&config)),
                http: reqwest::Client::new(),
                config: Arc::new(config),
            },
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

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
        let state = self.state.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down");
            state.hub.close();
            state.worker.begin_shutdown();
        };
        let result = serve::run(listener, router, api::is_event_stream, signal).await;
        self.state.worker.shutdown(SHUTDOWN_GRACE).await;
        self.state.store.close().await;
        result
    }
}

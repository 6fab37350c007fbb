//! HTTP: one module per dialect, each named after its product, merged into
//! one router.
//!
//! Each dialect ([`moneyprinter`], [`openreels`], [`aivideogen`],
//! [`clipzy`]) only renames request fields into the engine's terms and
//! projects jobs and events out into its seed's shapes, and its router
//! carries its error envelope. The shared pieces are here: errors,
//! extractors, field parsing, SSE plumbing, the stream route table, video
//! serving, the `/api/generate` dispatcher, the OpenAPI document,
//! `/health`, and `/metrics` with the request metrics middleware.

pub mod aivideogen;
pub mod clipzy;
pub mod dashboard;
pub mod deadline;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod fields;
pub mod generate;
pub mod guard;
pub mod job_events;
pub mod moneyprinter;
mod openapi;
pub mod openreels;
pub mod prometheus;
pub mod request_id;
pub mod request_metrics;
pub mod sse;
pub mod streams;
pub mod video;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower::ServiceBuilder;
use tower::util::MapRequestLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;
use dialect::with_dialect;
use error::ApiError;
pub use streams::is_event_stream;

/// Every route with its middleware. Paths no route has answer 404 in the
/// MoneyPrinter envelope (under `/api/v1`, in the v1 one: see [`clipzy`]).
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let cors = cors(&state.config.cors_allowed_origins);
    let guard = Arc::new(guard::Guard::new(&state.config));
    let deadlines = deadline::Deadlines {
        body: state.config.body_timeout(),
        upload_min_bytes_per_sec: state.config.upload_min_kib_per_sec.saturating_mul(1024),
    };
    let mut operations = Router::new()
        .merge(openapi::router(&state.config))
        .route("/health", get(health));
    if state.config.metrics_enabled {
        operations = operations.route("/metrics", get(prometheus::scrape));
    }
    let operations = operations.fallback(|| async { ApiError::RouteNotFound });
    let router = Router::new()
        .merge(generate::router())
        .merge(moneyprinter::router(&state.config))
        .merge(openreels::router())
        .merge(aivideogen::router())
        .merge(clipzy::router())
        .merge(webhooks::router())
        .merge(job_events::router())
        .merge(dashboard::router())
        .merge(with_dialect(operations, moneyprinter::DIALECT));
    // Every layer in one `layer` call: axum boxes each route once per call,
    // and each box costs every request an allocation and a clone. The
    // first layer listed is the outermost.
    let layers = ServiceBuilder::new()
        // Outermost, so that it counts every answer, the layers' own
        // included.
        .option_layer(
            state
                .config
                .metrics_enabled
                .then_some(request_metrics::TrackLayer),
        )
        .layer(request_id::RequestIdLayer)
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        .layer(cors)
        // Keys and rate: refusals are answered by the dialect's layer.
        .layer(MapRequestLayer::new(move |req| guard.check(req)))
        // A body that dribbles in is cut off at its deadline.
        .layer(MapRequestLayer::new(move |req| {
            deadline::limit_body(req, deadlines)
        }))
        .layer(DefaultBodyLimit::max(limit));
    let router = router.layer(layers);
    router.with_state(state)
}

/// Open to every origin by default, as both seed front ends are served from
/// another origin than the API.
fn cors(origins: &str) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::RETRY_AFTER,
            request_id::HEADER,
        ]);
    let origins = origins.trim();
    if origins.is_empty() || origins == "*" {
        return layer.allow_origin(Any);
    }
    let list: Vec<HeaderValue> = origins
        .split(',')
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(list))
}

#[utoipa::path(get, path = "/health", tag = "server", operation_id = "health",
    responses((status = 200, description = "Worker, stream and cache figures, and each media tool's path and version or install hint", body = Object)))]
/// The server's figures and its media tools.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.engine.stats();
    let (instance, lease) = state.engine.instance_report();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "backend": state.engine.backend().as_str(),
        "instance": instance,
        "lease": lease,
        "worker": {
            "running": stats.running,
            "concurrency": state.config.worker_concurrency,
        },
        "subscribers": stats.subscribers,
        "streamCatchUps": stats.catch_ups,
        "cachedEvents": stats.cached_events,
        "cachedEventBytes": stats.cached_bytes,
        "tools": state.engine.tool_report().await,
    }))
}

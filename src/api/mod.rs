//! HTTP: one module per dialect, merged into one router.
//!
//! Each dialect is a thin projection of the same job rows and event log.
//! This module holds what they share: job submission, id parsing, the
//! middleware stack and `/health`.

pub mod aivideogen;
pub mod error;
mod fields;
pub mod moneyprinter;
mod openapi;
mod openreels;
pub mod sse;
mod v1;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::AppState;
use crate::model::{Job, JobRequest, generation_id};
use crate::store::NewJob;
pub use error::{ApiError, ApiResult, Dialect, JsonBody};

/// Longest wait for the next piece of a request body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let cors = cors(&state.config.cors_allowed_origins);
    Router::new()
        .merge(moneyprinter::router(&state.config))
        .merge(openreels::router())
        .merge(aivideogen::router())
        .merge(v1::router())
        .merge(openapi::router())
        .route("/health", get(health))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(limit, error::json_errors))
        .layer(DefaultBodyLimit::max(limit))
        // A client that stops sending its body mid-way is cut off.
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// True for requests answered with a long-lived event stream: the seed 001
/// and 002 streams, and the event log when asked for as SSE. The server
/// serves these on a lean path (see [`crate::serve`]).
pub fn is_event_stream(path: &str, accept: Option<&[u8]>) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let sse = || {
        accept.is_some_and(|a| {
            a.windows(17)
                .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
        })
    };
    match segments.as_slice() {
        ["api", "v1", "jobs", _, "events"] => true,
        ["api", "progress", _] => true,
        ["api", "jobs", _, "events"] => sse(),
        _ => false,
    }
}

/// Open to every origin by default, as both seed front ends are served from
/// another origin than the API.
fn cors(origins: &str) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([header::CONTENT_RANGE, header::CONTENT_LENGTH]);
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

/// The `{id}` of a job route. Anything that is not a UUID (including
/// bytes that are not even text) names no job: 404 `Job not found.`
pub struct JobId(pub Uuid);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Ok(axum::extract::Path(raw)) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await
        else {
            return Err(ApiError::JobNotFound);
        };
        Uuid::parse_str(&raw)
            .map(JobId)
            .map_err(|_| ApiError::JobNotFound)
    }
}

/// Queues a job and wakes the worker.
pub async fn submit(state: &AppState, request: JobRequest) -> ApiResult<Job> {
    let job = state
        .store
        .create_job(NewJob {
            id: Uuid::new_v4(),
            generation_id: generation_id(&request.subject),
            stages: state.worker.pipeline().initial_stages(),
            request,
        })
        .await?;
    state.worker.notify();
    Ok(job)
}

/// Asks a job to stop: a queued job is cancelled at once, a running one at
/// its next checkpoint (the worker cancels its stage now). `false` when there
/// is no such job. The work runs in its own task, so that a client that
/// disconnects mid-request cannot leave a recorded cancel unacted on.
pub async fn cancel(state: &AppState, id: Uuid) -> ApiResult<bool> {
    let (store, worker) = (state.store.clone(), state.worker.clone());
    let task = tokio::spawn(async move {
        let found = store.request_cancel(id).await?.is_some();
        if found {
            worker.cancel(id);
        }
        Ok::<_, crate::store::StoreError>(found)
    });
    match task.await {
        Ok(result) => Ok(result?),
        Err(err) => {
            tracing::error!(error = %err, "cancel task failed");
            Err(ApiError::Internal)
        }
    }
}

#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, description = "Worker, stream and cache figures, and each media tool's path and version or install hint", body = Object)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "worker": {
            "running": state.worker.running(),
            "concurrency": state.config.worker_concurrency,
        },
        "subscribers": state.hub.subscriber_count(),
        "streamCatchUps": state.hub.catch_ups(),
        "cachedEvents": state.store.cached_events(),
        "tools": state.tools.report().await,
    }))
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn event_stream_routes_are_recognised() {
        let sse = Some(&b"text/event-stream"[..]);
        assert!(is_event_stream("/api/v1/jobs/abc/events", None));
        assert!(is_event_stream("/api/progress/Black_holes", None));
        assert!(is_event_stream("/api/jobs/abc/events", sse));
        assert!(is_event_stream(
            "/api/jobs/abc/events",
            Some(&b"application/json, Text/Event-Stream"[..])
        ));
        assert!(!is_event_stream("/api/jobs/abc/events", None));
        assert!(!is_event_stream("/api/jobs/abc", sse));
        assert!(!is_event_stream("/api/v1/jobs", sse));
        assert!(!is_event_stream("/api/progress/a/b", None));
    }
}

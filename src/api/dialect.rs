//! Dialects' envelopes: the error bodies of the seeds, each dialect's names
//! for request fields, and the layer that renders a router's errors.
//!
//! Each dialect's router carries its [`Dialect`] in the layer that
//! [`with_dialect`] puts around it. The layer refuses a request that the
//! guard refused (a missing key, a caller over its rate: see
//! [`super::guard`]) in that envelope, renders every [`ApiError`]
//! its routes return in it, and turns any other error response
//! of its routes (axum's 405, a file service's 416, a panic's 500) into
//! JSON, so no client ever sees an HTML or plain-text error.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::error::ApiError;
use super::guard::Verdict;
use crate::AppState;
use crate::model::Field;

/// The error envelopes of the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `{"status":"error","message":...}` (MoneyPrinter, seeds 000 and 003).
    MoneyPrinter,
    /// `{"success":false,"message":...,"error":{"detail":...,"code":...}}`
    /// (seed 004, and every route under `/api/v1`).
    V1,
    /// `{"detail":...}` (AI-Video-Gen's FastAPI, seed 002).
    Detail,
}

/// How one dialect answers errors: its envelope's style, and its names for
/// the request fields.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The JSON shape.
    pub style: Style,
    /// The dialect's name for each request field.
    pub field_name: fn(Field) -> &'static str,
}

/// A request field's plain snake_case name, for dialects whose names
/// follow the engine's.
pub fn snake_case_name(field: Field) -> &'static str {
    match field {
        Field::Subject => "subject",
        Field::Script => "script",
        Field::Voice => "voice",
        Field::AiModel => "ai_model",
        Field::SceneCount => "scene_count",
        Field::CustomPrompt => "custom_prompt",
        Field::Tone => "tone",
        Field::Language => "language",
        Field::SubtitlesPosition => "subtitles_position",
        Field::Color => "color",
        Field::UseMusic => "use_music",
        Field::Motion => "motion",
        Field::Threads => "threads",
        Field::Aspect => "aspect_ratio",
        Field::Width => "width",
        Field::Height => "height",
        Field::Size => "width and height",
        Field::Webhook => "webhook",
        Field::WebhookEventsFilter => "webhook_events_filter",
    }
}

/// MoneyPrinter's error envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MpErrorBody {
    /// Always `error`.
    pub status: String,
    /// What went wrong.
    pub message: String,
}

/// The v1 error envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1ErrorBody {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub message: String,
    /// The same, with a machine-readable code.
    pub error: V1ErrorDetail,
}

/// The detail of a v1 error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1ErrorDetail {
    /// What went wrong.
    pub detail: String,
    /// `JOB_NOT_FOUND`, `VALIDATION_ERROR`, `RESULT_NOT_READY`, ...
    pub code: String,
}

/// AI-Video-Gen's (FastAPI's) error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetailBody {
    /// What went wrong.
    pub detail: String,
}

impl Style {
    /// The error body in this style.
    pub fn body(self, message: String, code: &str) -> Value {
        let body = match self {
            Style::MoneyPrinter => serde_json::to_value(MpErrorBody {
                status: "error".into(),
                message,
            }),
            Style::V1 => serde_json::to_value(V1ErrorBody {
                success: false,
                message: message.clone(),
                error: V1ErrorDetail {
                    detail: message,
                    code: code.to_string(),
                },
            }),
            Style::Detail => serde_json::to_value(DetailBody { detail: message }),
        };
        body.unwrap_or(Value::Null)
    }
}

/// Puts `router`'s routes in `dialect`: their errors are rendered in its
/// envelope, and a panic in one of them becomes a 500 in it.
pub fn with_dialect(router: Router<AppState>, dialect: Dialect) -> Router<AppState> {
    // One `layer` call, so that each route is boxed once more, not twice.
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(dialect, render_errors))
            .layer(CatchPanicLayer::new()),
    )
}

/// Refuses what the guard refused, and renders every error response of
/// the routes below it in `dialect`'s envelope.
async fn render_errors(State(dialect): State<Dialect>, req: Request, next: Next) -> Response {
    match req.extensions().get::<Verdict>() {
        Some(Verdict::Unauthorized) => return ApiError::Unauthorized.render(dialect),
        Some(Verdict::Limited(secs)) => return ApiError::RateLimited(*secs).render(dialect),
        Some(Verdict::Pass) | None => {}
    }
    render(next.run(req).await, dialect)
}

/// `response` with its error, if it is one, in `dialect`'s envelope.
pub fn render(mut response: Response, dialect: Dialect) -> Response {
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        return keep_headers(response, err.render(dialect));
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (message, code) = match status {
        StatusCode::NOT_FOUND => ("No such route.".to_string(), "ROUTE_NOT_FOUND"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed for this route.".to_string(),
            "METHOD_NOT_ALLOWED",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "Request body is too large.".to_string(),
            "PAYLOAD_TOO_LARGE",
        ),
        StatusCode::RANGE_NOT_SATISFIABLE => (
            "The requested range is not satisfiable.".to_string(),
            "RANGE_NOT_SATISFIABLE",
        ),
        s if s.is_server_error() => ("Internal server error.".to_string(), "INTERNAL_ERROR"),
        s => (
            s.canonical_reason().unwrap_or("Bad request").to_string() + ".",
            "BAD_REQUEST",
        ),
    };
    let err = ApiError::Http {
        status,
        message,
        code,
    };
    keep_headers(response, err.render(dialect))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"))
}

/// Carries the headers of the original error (`Allow`, `Content-Range`,
/// `Retry-After`) over to the rendered one.
fn keep_headers(original: Response, mut rendered: Response) -> Response {
    for name in [
        header::ALLOW,
        header::CONTENT_RANGE,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(value) = original.headers().get(&name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}

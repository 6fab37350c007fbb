//! Errors of every route, rendered as JSON in the envelope of the dialect
//! whose router the route belongs to.
//!
//! Each dialect's router carries its [`Dialect`] in the layer that
//! [`with_dialect`] puts around it. Handlers and extractors return
//! [`ApiError`]; its response carries the error itself and no body, and
//! the router's layer renders it in that router's envelope. The same layer
//! turns any other error response of its routes (axum's 405, a file
//! service's 416) into JSON, so no client ever sees an HTML or plain-text
//! error. A handler that answers in another dialect than its router's (the
//! `/api/generate` dispatcher) renders with [`ApiError::render`] itself.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::engine::{EngineError, UploadError};
use crate::model::{Field, Invalid};

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
        Field::Threads => "threads",
        Field::Aspect => "aspect_ratio",
        Field::Width => "width",
        Field::Height => "height",
        Field::Size => "width and height",
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
    fn body(self, message: String, code: &str) -> Value {
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

/// Everything a route can answer with instead of success.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No job has that id.
    #[error("Job not found.")]
    JobNotFound,
    /// `/api/cancel` found nothing to cancel.
    #[error("No active job found.")]
    NoActiveJob,
    /// No job has that generation id.
    #[error("Generation ID not found")]
    GenerationNotFound,
    /// Something else the client named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No route has that path.
    #[error("No such route.")]
    RouteNotFound,
    /// Malformed input: bad JSON, bad query syntax.
    #[error("{0}")]
    BadRequest(String),
    /// A request field breaks a rule; worded with the dialect's field
    /// names. 400 in the MoneyPrinter envelope, 422 in the others (as
    /// FastAPI answers).
    #[error("invalid request field")]
    Invalid(Invalid),
    /// A well-formed value that is not allowed (a body whose values do not
    /// fit its fields, a page number out of range); 400 or 422 as
    /// [`ApiError::Invalid`].
    #[error("{0}")]
    Validation(String),
    /// The body is not JSON.
    #[error("Request body must be JSON; send Content-Type: application/json.")]
    UnsupportedMediaType,
    /// The body is larger than the limit, in bytes.
    #[error("Request body is too large; the limit is {0} bytes.")]
    PayloadTooLarge(usize),
    /// The job is not in a state that allows this.
    #[error("{message}")]
    Conflict {
        /// What is in the way.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
    /// The server is shutting down.
    #[error("The server is shutting down; try again shortly.")]
    Unavailable,
    /// Logged where it happens; the client gets no internals.
    #[error("Internal server error.")]
    Internal,
    /// A 500 with a message the client is meant to read (AI-Video-Gen's
    /// failed generation, a missing tool).
    #[error("{0}")]
    Failed(String),
    /// Any other status, for error responses made outside the handlers.
    #[error("{message}")]
    Http {
        /// The status.
        status: StatusCode,
        /// What went wrong.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Malformed input, with what is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    /// The status in a dialect of this style.
    pub fn status(&self, style: Style) -> StatusCode {
        match self {
            ApiError::JobNotFound
            | ApiError::NoActiveJob
            | ApiError::GenerationNotFound
            | ApiError::NotFound(_)
            | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::Validation(_) if style == Style::MoneyPrinter => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Invalid(_) | ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal | ApiError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Http { status, .. } => *status,
        }
    }

    /// The machine-readable code the v1 envelope carries.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::JobNotFound => "JOB_NOT_FOUND",
            ApiError::NoActiveJob => "NO_ACTIVE_JOB",
            ApiError::GenerationNotFound | ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::RouteNotFound => "ROUTE_NOT_FOUND",
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Invalid(_) | ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::Conflict { code, .. } | ApiError::Http { code, .. } => code,
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::Internal | ApiError::Failed(_) => "INTERNAL_ERROR",
        }
    }

    /// The whole response in `dialect`'s envelope.
    pub fn render(&self, dialect: Dialect) -> Response {
        let message = match self {
            ApiError::Invalid(invalid) => invalid.message(dialect.field_name),
            other => other.to_string(),
        };
        let body = dialect.style.body(message, self.code());
        let mut response = (self.status(dialect.style), Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered by the router's layer, which knows its envelope.
        let mut response = self.status(Style::MoneyPrinter).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::JobNotFound => ApiError::JobNotFound,
            EngineError::Invalid(invalid) => ApiError::Invalid(invalid),
            EngineError::ShuttingDown => ApiError::Unavailable,
            EngineError::Finished => ApiError::Conflict {
                message: "The job has already finished.".into(),
                code: "JOB_FINISHED",
            },
            err @ (EngineError::Internal | EngineError::Store(_)) => {
                tracing::error!(error = %err, "engine error");
                ApiError::Internal
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::Invalid(invalid)
    }
}

impl From<UploadError> for ApiError {
    fn from(err: UploadError) -> Self {
        match err {
            UploadError::TooLarge(limit) => ApiError::PayloadTooLarge(limit),
            UploadError::ToolMissing(why) => ApiError::Failed(why),
            UploadError::Io => ApiError::Internal,
            other @ (UploadError::NoFiles | UploadError::NoMp3 | UploadError::NotMp3(_)) => {
                ApiError::BadRequest(other.to_string())
            }
        }
    }
}

/// Puts `router`'s routes in `dialect`: their errors are rendered in its
/// envelope, and a panic in one of them becomes a 500 in it.
pub fn with_dialect(router: Router<AppState>, dialect: Dialect) -> Router<AppState> {
    router
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(dialect, render_errors))
}

/// Renders every error response of the routes below it in `dialect`'s
/// envelope.
async fn render_errors(State(dialect): State<Dialect>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
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
    for name in [header::ALLOW, header::CONTENT_RANGE, header::RETRY_AFTER] {
        if let Some(value) = original.headers().get(&name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}

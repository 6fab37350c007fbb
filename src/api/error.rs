//! Errors of every route, rendered as JSON in the route's envelope.
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the
//! error itself as an extension and no body; the [`json_errors`] middleware
//! renders it in the envelope of the route's dialect. The same middleware
//! turns any other error response (axum's 405, a file service's 416, a
//! panic's 500) into JSON, so no client ever sees an HTML or plain-text
//! error.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store::StoreError;

/// The error envelopes of the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"status":"error","message":...}` (MoneyPrinter, seeds 000 and 003).
    MoneyPrinter,
    /// `{"success":false,"message":...,"error":{"detail":...,"code":...}}` (seed 004).
    V1,
    /// `{"detail":...}` (AI-Video-Gen's FastAPI, seed 002).
    Detail,
}

impl Dialect {
    /// The envelope used when the handler does not choose one.
    pub fn of_path(path: &str) -> Self {
        if path == "/api/v1" || path.starts_with("/api/v1/") {
            Dialect::V1
        } else if ["/api/progress/", "/api/status/", "/api/video/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            Dialect::Detail
        } else {
            Dialect::MoneyPrinter
        }
    }

    fn body(self, message: &str, code: &str) -> Value {
        let message = message.to_string();
        let body = match self {
            Dialect::MoneyPrinter => serde_json::to_value(MpErrorBody {
                status: "error".into(),
                message,
            }),
            Dialect::V1 => serde_json::to_value(V1ErrorBody {
                success: false,
                message: message.clone(),
                error: V1ErrorDetail {
                    detail: message,
                    code: code.to_string(),
                },
            }),
            Dialect::Detail => serde_json::to_value(DetailBody { detail: message }),
        };
        body.unwrap_or(Value::Null)
    }
}

/// MoneyPrinter's error envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MpErrorBody {
    /// Always `error`.
    pub status: String,
    pub message: String,
}

/// The v1 error envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1ErrorBody {
    /// Always false.
    pub success: bool,
    pub message: String,
    pub error: V1ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V1ErrorDetail {
    pub detail: String,
    /// `JOB_NOT_FOUND`, `VALIDATION_ERROR`, `RESULT_NOT_READY`, ...
    pub code: String,
}

/// AI-Video-Gen's (FastAPI's) error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetailBody {
    pub detail: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("Job not found.")]
    JobNotFound,
    #[error("No active job found.")]
    NoActiveJob,
    #[error("Generation ID not found")]
    GenerationNotFound,
    #[error("{0}")]
    NotFound(String),
    /// Malformed input: bad JSON, bad query syntax.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input with values that are not allowed. 400 in the
    /// MoneyPrinter envelope, 422 in the others (as FastAPI answers).
    #[error("{message}")]
    Validation { message: String, code: &'static str },
    #[error("Request body must be JSON; send Content-Type: application/json.")]
    UnsupportedMediaType,
    #[error("Request body is too large; the limit is {0} bytes.")]
    PayloadTooLarge(usize),
    #[error("{message}")]
    Conflict { message: String, code: &'static str },
    #[error("The server is shutting down; try again shortly.")]
    Unavailable,
    /// Logged where it happens; the client gets no internals.
    #[error("Internal server error.")]
    Internal,
    /// An error whose envelope the handler chooses.
    #[error("{0}")]
    InDialect(Box<ApiError>, Dialect),
    /// A 500 with a message the client is meant to read (AI-Video-Gen's
    /// failed generation).
    #[error("{0}")]
    Failed(String),
    /// Any other status, for errors raised outside the handlers.
    #[error("{message}")]
    Http {
        status: StatusCode,
        message: String,
        code: &'static str,
    },
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            code: "VALIDATION_ERROR",
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    /// Answers in `dialect`'s envelope whatever the route.
    pub fn in_dialect(self, dialect: Dialect) -> Self {
        match self {
            ApiError::InDialect(inner, _) => ApiError::InDialect(inner, dialect),
            other => ApiError::InDialect(Box::new(other), dialect),
        }
    }

    pub fn status(&self, dialect: Dialect) -> StatusCode {
        match self {
            ApiError::JobNotFound
            | ApiError::NoActiveJob
            | ApiError::GenerationNotFound
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            // As FastAPI answers, which the v1 and AI-Video-Gen clients know.
            ApiError::Validation { .. } if dialect != Dialect::MoneyPrinter => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal | ApiError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InDialect(inner, _) => inner.status(dialect),
            ApiError::Http { status, .. } => *status,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::JobNotFound => "JOB_NOT_FOUND",
            ApiError::NoActiveJob => "NO_ACTIVE_JOB",
            ApiError::GenerationNotFound | ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Validation { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Http { code, .. } => code,
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::Internal | ApiError::Failed(_) => "INTERNAL_ERROR",
            ApiError::InDialect(inner, _) => inner.code(),
        }
    }

    fn render(&self, route_dialect: Dialect) -> Response {
        let dialect = match self {
            ApiError::InDialect(_, dialect) => *dialect,
            _ => route_dialect,
        };
        let message = self.to_string();
        let body = dialect.body(&message, self.code());
        (self.status(dialect), Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered by `json_errors`, which knows the route's dialect.
        let mut response = self.status(Dialect::MoneyPrinter).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::JobNotFound,
            StoreError::Closed => ApiError::Unavailable,
            err => {
                tracing::error!(error = %err, "store error");
                ApiError::Internal
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(0),
            _ => match rejection {
                JsonRejection::JsonSyntaxError(err) => ApiError::bad_request(format!(
                    "Request body is not valid JSON: {}",
                    source(&err)
                )),
                JsonRejection::JsonDataError(err) => ApiError::bad_request(format!(
                    "Request body is not valid JSON: {}",
                    source(&err)
                )),
                other => ApiError::bad_request(format!("Could not read the request body: {other}")),
            },
        }
    }
}

/// The innermost cause of an extractor error, which is the part that tells
/// a client what is wrong ("expected value at line 1 column 2").
fn source(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// JSON body extractor: any JSON object, deserialised into `T`, with every
/// failure as an [`ApiError`].
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::bad_request("Request body must be a JSON object."));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|err| ApiError::validation(format!("Invalid request body: {err}")))
    }
}

/// Renders every error response as JSON in the route's envelope. The state
/// is the configured body limit, quoted in 413 answers.
pub async fn json_errors(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let dialect = Dialect::of_path(req.uri().path());
    let mut response = next.run(req).await;
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        let err = match err {
            ApiError::PayloadTooLarge(0) => ApiError::PayloadTooLarge(limit),
            other => other,
        };
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
            ApiError::PayloadTooLarge(limit).to_string(),
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
/// CORS) over to the rendered one.
fn keep_headers(original: Response, mut rendered: Response) -> Response {
    for name in [header::ALLOW, header::CONTENT_RANGE, header::RETRY_AFTER] {
        if let Some(value) = original.headers().get(&name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rendered
}

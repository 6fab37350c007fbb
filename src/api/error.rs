//! Everything a route can answer with instead of success: [`ApiError`],
//! its status and code, and its body in a [`Dialect`]'s envelope.
//!
//! Handlers and extractors return [`ApiError`]; its response carries the
//! error itself and no body, and the layer of the router it came from
//! renders it in that dialect's envelope (see [`super::dialect`]). A
//! handler that answers in another dialect than its router's (the
//! `/api/generate` dispatcher) renders with [`ApiError::render`] itself.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::dialect::{Dialect, Style};
use crate::engine::{EngineError, UploadError};
use crate::model::Invalid;

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
    /// The body did not arrive in time.
    #[error("The request body did not arrive in time.")]
    BodyTimeout,
    /// The body is not JSON.
    #[error("Request body must be JSON; send Content-Type: application/json.")]
    UnsupportedMediaType,
    /// The body is larger than the limit, in bytes.
    #[error("Request body is too large; the limit is {0} bytes.")]
    PayloadTooLarge(usize),
    /// A multipart upload with more parts than allowed.
    #[error("{0}")]
    TooManyParts(String),
    /// The job is not in a state that allows this.
    #[error("{message}")]
    Conflict {
        /// What is in the way.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
    /// No API key, or not one of the configured keys.
    #[error("A valid API key is required: send Authorization: Bearer <key>.")]
    Unauthorized,
    /// Past `RATE_LIMIT_PER_MIN`; the client may try again after this many
    /// seconds.
    #[error("Too many requests; try again in {0} s.")]
    RateLimited(u64),
    /// `MAX_QUEUED_JOBS` jobs are waiting already.
    #[error("The queue is full ({0} jobs are waiting); try again later.")]
    QueueFull(u64),
    /// An Idempotency-Key used before with another body.
    #[error("This Idempotency-Key was used with a different request body.")]
    IdempotencyMismatch,
    /// An earlier request with the same Idempotency-Key has not answered
    /// yet.
    #[error("A request with this Idempotency-Key is still being processed; try again shortly.")]
    IdempotencyBusy,
    /// The server is shutting down.
    #[error("The server is shutting down; try again shortly.")]
    Unavailable,
    /// The data folder's disk has less room than new jobs need.
    #[error(
        "The server's disk is nearly full: {free_mb} MiB free, and new jobs need \
         {min_mb} MiB. Delete finished jobs or free space, then try again."
    )]
    InsufficientStorage {
        /// MiB free.
        free_mb: u64,
        /// MiB needed.
        min_mb: u64,
    },
    /// The database cannot be written right now (a full disk, an I/O
    /// error).
    #[error("The server cannot write to its database right now; try again shortly.")]
    StoreUnavailable,
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

/// Marks a rendered error that [`ApiError::passes`]: an Idempotency-Key
/// does not keep it.
#[derive(Debug, Clone, Copy)]
pub struct Passing;

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
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) | ApiError::TooManyParts(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Conflict { .. } | ApiError::IdempotencyBusy => StatusCode::CONFLICT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited(_) | ApiError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable | ApiError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
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
            ApiError::BodyTimeout => "BODY_TIMEOUT",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::TooManyParts(_) => "TOO_MANY_PARTS",
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::QueueFull(_) => "QUEUE_FULL",
            ApiError::IdempotencyMismatch => "IDEMPOTENCY_KEY_REUSED",
            ApiError::IdempotencyBusy => "IDEMPOTENCY_KEY_IN_USE",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::StoreUnavailable => "STORE_UNAVAILABLE",
            ApiError::InsufficientStorage { .. } => "INSUFFICIENT_STORAGE",
            ApiError::Internal | ApiError::Failed(_) => "INTERNAL_ERROR",
        }
    }

    /// Seconds a client should wait before it tries again, for errors that
    /// pass.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable | ApiError::StoreUnavailable | ApiError::QueueFull(_) => Some(5),
            ApiError::IdempotencyBusy => Some(1),
            ApiError::RateLimited(secs) => Some(*secs),
            _ => None,
        }
    }

    /// True for answers that say nothing lasting about the request (the
    /// server could not take it right now), which an Idempotency-Key does
    /// not keep: a retry with the same key tries again.
    pub fn passes(&self) -> bool {
        self.retry_after().is_some()
            || matches!(
                self,
                ApiError::Internal | ApiError::BodyTimeout | ApiError::InsufficientStorage { .. }
            )
            || matches!(self, ApiError::Http { status, .. } if status.is_server_error())
    }

    /// The whole response in `dialect`'s envelope.
    pub fn render(&self, dialect: Dialect) -> Response {
        let message = match self {
            ApiError::Invalid(invalid) => invalid.message(dialect.field_name),
            other => other.to_string(),
        };
        let body = dialect.style.body(message, self.code());
        let mut response = (self.status(dialect.style), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.passes() {
            response.extensions_mut().insert(Passing);
        }
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
            EngineError::QueueFull(max) => ApiError::QueueFull(max),
            EngineError::StoreUnavailable => ApiError::StoreUnavailable,
            EngineError::DiskLow { free_mb, min_mb } => {
                ApiError::InsufficientStorage { free_mb, min_mb }
            }
            EngineError::JobActive(state) => ApiError::Conflict {
                message: format!(
                    "The job is {}; cancel it before deleting it.",
                    state.as_str()
                ),
                code: "JOB_ACTIVE",
            },
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
            other @ UploadError::TooManyFiles(_) => ApiError::TooManyParts(other.to_string()),
            UploadError::ToolMissing(why) => ApiError::Failed(why),
            UploadError::Io => ApiError::Internal,
            other @ (UploadError::NoFiles | UploadError::NoMp3 | UploadError::NotMp3(_)) => {
                ApiError::BadRequest(other.to_string())
            }
        }
    }
}

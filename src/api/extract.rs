//! Extractors whose every failure is an [`ApiError`], so that it comes back
//! in the route's envelope and not as axum's plain text, and the
//! [`Submission`] every job-creating route takes (request id and
//! Idempotency-Key).

pub mod submission;

pub use submission::Submission;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use super::error::ApiError;
use crate::AppState;

/// JSON body extractor: any JSON object, deserialised into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let Json(value) = Json::<Value>::from_request(req, state)
            .await
            .map_err(|rejection| rejected(rejection, limit))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("Request body must be a JSON object."));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|err| ApiError::Validation(format!("Invalid request body: {err}")))
    }
}

/// What a failed JSON extraction tells the client.
fn rejected(rejection: JsonRejection, limit: usize) -> ApiError {
    if super::deadline::is_timeout(&rejection) {
        return ApiError::BodyTimeout;
    }
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        _ => match rejection {
            JsonRejection::JsonSyntaxError(err) => ApiError::bad_request(format!(
                "Request body is not valid JSON: {}",
                innermost(&err)
            )),
            JsonRejection::JsonDataError(err) => ApiError::bad_request(format!(
                "Request body is not valid JSON: {}",
                innermost(&err)
            )),
            other => ApiError::bad_request(format!("Could not read the request body: {other}")),
        },
    }
}

/// The innermost cause of an extractor error, which is the part that tells
/// a client what is wrong ("expected value at line 1 column 2").
fn innermost(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Query string extractor: a query that does not fit `T` (a parameter given
/// twice, say) is a 400 that says why.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| QueryParams(query))
            .map_err(|err| {
                ApiError::bad_request(format!("Invalid query string: {}", innermost(&err)))
            })
    }
}

/// The `{id}` of a job route. Anything that is not a UUID (including
/// bytes that are not even text) names no job: 404 `Job not found.`
pub struct JobId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(Path(raw)) = Path::<String>::from_request_parts(parts, state).await else {
            return Err(ApiError::JobNotFound);
        };
        Uuid::parse_str(&raw)
            .map(JobId)
            .map_err(|_| ApiError::JobNotFound)
    }
}

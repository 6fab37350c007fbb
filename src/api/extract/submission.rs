//! What a job-creating request carries besides its body: the request id
//! that the job keeps, and the Idempotency-Key under which its answer is
//! kept for 24 hours, scoped to the route and the caller's API key.
//!
//! [`Submission::answer`] runs a submit once per key: the same key with
//! the same body gets the kept answer (same status, same body, same job)
//! and creates nothing; with another body, 422. A request that comes
//! while the first with its key is still running waits for that answer,
//! at most `IDEMPOTENCY_WAIT_SECS`, then gets 409. Answers that say the
//! server could not take the request right now (429, 503, 507, 500
//! internal) are not kept, so a retry tries again.

use std::future::Future;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::AppState;
use crate::api::dialect::{Dialect, render};
use crate::api::error::{ApiError, Passing};
use crate::api::guard::Caller;
use crate::api::request_id;
use crate::engine::{KeptAnswer, KeyState};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Set on an answer that was kept from an earlier request.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest Idempotency-Key, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// The Idempotency-Key as sent.
enum Key {
    None,
    Valid(String),
    Invalid,
}

/// The request id and the Idempotency-Key of a submit.
pub struct Submission {
    request_id: Option<String>,
    key: Key,
    /// The route and the caller a key belongs to.
    scope: String,
}

impl FromRequestParts<AppState> for Submission {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let request_id = parts
            .headers
            .get(&request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut keys = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (None, _) => Key::None,
            (Some(key), None) if is_valid_key(key.as_bytes()) => {
                Key::Valid(String::from_utf8_lossy(key.as_bytes()).into_owned())
            }
            _ => Key::Invalid,
        };
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or(parts.uri.path(), MatchedPath::as_str);
        let caller = parts
            .extensions
            .get::<Caller>()
            .map_or("-", |Caller(id)| id.as_str());
        Ok(Submission {
            request_id,
            key,
            scope: format!("{} {route} {caller}", parts.method),
        })
    }
}

/// 1 to 255 visible ASCII characters.
pub fn is_valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl Submission {
    /// The request's `x-request-id`, for the job to keep.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }

    /// Runs `work`, the submit of `body`, and answers in `dialect`: once
    /// per Idempotency-Key, when the request has one.
    pub async fn answer<F>(
        self,
        state: &AppState,
        body: &Value,
        dialect: Dialect,
        work: F,
    ) -> Response
    where
        F: Future<Output = Response> + Send + 'static,
    {
        let key = match self.key {
            Key::None => return work.await,
            Key::Invalid => {
                let why = format!(
                    "Idempotency-Key must be one header of 1 to {MAX_KEY_LEN} visible ASCII characters."
                );
                return ApiError::bad_request(why).render(dialect);
            }
            Key::Valid(key) => key,
        };
        let fingerprint = fingerprint(body);
        let wait = Duration::from_secs(state.config.idempotency_wait_secs);
        let claim = match state.engine.claim_key(&self.scope, &key, wait).await {
            Err(err) => return ApiError::from(err).render(dialect),
            Ok(KeyState::Busy) => return ApiError::IdempotencyBusy.render(dialect),
            Ok(KeyState::Kept(kept)) if kept.fingerprint == fingerprint => return replay(kept),
            Ok(KeyState::Kept(_)) => return ApiError::IdempotencyMismatch.render(dialect),
            Ok(KeyState::Mine(claim)) => claim,
        };
        // The work and the keeping of its answer run in a task of their
        // own: a client that goes away (AI-Video-Gen's waits for the whole
        // render) does not take the answer its retry will get with it.
        let engine = state.engine.clone();
        let scope = self.scope;
        let task = async move {
            let response = render(work.await, dialect);
            if response.extensions().get::<Passing>().is_some() {
                return response;
            }
            let (parts, body) = response.into_parts();
            let Ok(bytes) = to_bytes(body, usize::MAX).await else {
                return ApiError::Internal.render(dialect);
            };
            let kept = KeptAnswer {
                scope,
                key,
                fingerprint,
                status: parts.status.as_u16(),
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body: bytes.to_vec(),
            };
            if let Err(err) = claim.keep(&engine, kept).await {
                tracing::warn!(error = %err, "could not keep an answer under its Idempotency-Key");
            }
            Response::from_parts(parts, Body::from(bytes))
        };
        let task = tokio::spawn(task.instrument(tracing::Span::current()));
        task.await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "a submit task failed");
            ApiError::Internal.render(dialect)
        })
    }
}

/// The kept answer, said again.
fn replay(kept: KeptAnswer) -> Response {
    let mut response = Response::new(Body::from(kept.body));
    *response.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if let Some(value) = kept
        .content_type
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// SHA-256 of the body in a canonical form (object keys sorted, no
/// spaces), so that a retry that orders its fields differently is the
/// same request.
fn fingerprint(body: &Value) -> String {
    let mut canonical = Vec::new();
    write_canonical(body, &mut canonical);
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, name);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_that_differ_only_in_field_order_are_the_same_request() {
        let a = json!({"videoSubject": "x", "opts": {"a": 1, "b": [1, {"c": 2, "d": 3}]}});
        let b = json!({"opts": {"b": [1, {"d": 3, "c": 2}], "a": 1}, "videoSubject": "x"});
        let c = json!({"opts": {"b": [{"d": 3, "c": 2}, 1], "a": 1}, "videoSubject": "x"});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(is_valid_key(b"order-42"));
        assert!(is_valid_key(&[b'k'; 255]));
        assert!(!is_valid_key(&[b'k'; 256]));
        assert!(!is_valid_key(b""));
        assert!(!is_valid_key(b"a b"));
    }
}

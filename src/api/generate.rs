//! `POST /api/generate`, which two front ends share. MoneyPrinter's sends
//! `videoSubject` and gets the queued job at once; AI-Video-Gen's sends
//! `topic` and waits for the finished video. This module tells them apart
//! and answers each in its own envelope.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::aivideogen::{self, generate::AvgBody, generate::AvgReply};
use super::dialect::{DetailBody, MpErrorBody, with_dialect};
use super::extract::JsonBody;
use super::moneyprinter::{self, request::GenerateBody, request::GenerateReply};
use crate::AppState;

/// The shared route; malformed bodies are answered in MoneyPrinter's
/// envelope, as before the dialect is known.
pub fn router() -> Router<AppState> {
    with_dialect(
        Router::new().route("/api/generate", post(generate)),
        moneyprinter::DIALECT,
    )
}

/// `/api/generate` takes either body; this names both for the OpenAPI
/// document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GenerateRequest {
    /// MoneyPrinter's.
    MoneyPrinter(Box<GenerateBody>),
    /// AI-Video-Gen's.
    AiVideoGen(AvgBody),
}

/// True for AI-Video-Gen's body: it has `topic` and no `videoSubject`.
fn is_aivideogen(body: &Value) -> bool {
    body.get("videoSubject").is_none() && body.get("topic").is_some()
}

#[utoipa::path(post, path = "/api/generate", tag = "moneyprinter",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "MoneyPrinter body: the job is queued (`GenerateReply`). AI-Video-Gen body (`topic` and no `videoSubject`): the answer comes when the video is done (`AvgReply`); a failed job gives 500 `{\"detail\":\"Error: ...\"}`.",
         content((GenerateReply = "application/json"), (AvgReply = "application/json"))),
        (status = 400, description = "Malformed body or bad values", body = MpErrorBody),
        (status = 413, description = "Body over MAX_BODY_BYTES", body = MpErrorBody),
        (status = 415, description = "Not JSON", body = MpErrorBody),
        (status = 500, description = "AI-Video-Gen body: the generation failed", body = DetailBody),
    ))]
/// Queues a video, or makes one and answers when it is done.
pub async fn generate(State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> Response {
    if is_aivideogen(&body) {
        return match aivideogen::generate::generate_and_wait(&state, body).await {
            Ok(reply) => reply.into_response(),
            Err(err) => err.render(aivideogen::DIALECT),
        };
    }
    match moneyprinter::request::generate(&state, body).await {
        Ok(reply) => reply.into_response(),
        Err(err) => err.into_response(),
    }
}

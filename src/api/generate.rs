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
use super::extract::{JsonBody, Submission};
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

/// The answer of `/api/generate`: the queued job for MoneyPrinter's body,
/// the finished video for AI-Video-Gen's.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GenerateAnswer {
    /// For a MoneyPrinter body.
    Queued(GenerateReply),
    /// For an AI-Video-Gen body.
    Finished(Box<AvgReply>),
}

/// An error from `/api/generate`: MoneyPrinter's envelope for its body,
/// FastAPI's for AI-Video-Gen's.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GenerateError {
    /// For a MoneyPrinter body.
    MoneyPrinter(MpErrorBody),
    /// For an AI-Video-Gen body.
    AiVideoGen(DetailBody),
}

/// True for AI-Video-Gen's body: it has `topic` and no `videoSubject`.
fn is_aivideogen(body: &Value) -> bool {
    body.get("videoSubject").is_none() && body.get("topic").is_some()
}

#[utoipa::path(post, path = "/api/generate", tag = "moneyprinter", operation_id = "generate",
    request_body(content = GenerateRequest,
        description = "MoneyPrinter's body (`videoSubject`) queues a job and answers at once. AI-Video-Gen's body (`topic` and no `videoSubject`) waits for the finished video. With a `script` the job runs offline: no LLM is asked.",
        example = json!({
            "videoSubject": "Why the sea is salty",
            "script": "Rain washes salt out of rocks. Rivers carry it to the sea. The water leaves as vapour, and the salt stays behind.",
            "paragraphNumber": "3",
            "aspectRatio": "16:9"
        })),
    responses(
        (status = 200, description = "MoneyPrinter body: the job is queued (`GenerateReply`). AI-Video-Gen body: the video is done (`AvgReply`).",
         body = GenerateAnswer, links(
            ("job" = (operation_id = "mp_get_job", parameters(("id" = "$response.body#/jobId")))),
            ("events" = (operation_id = "mp_job_events", parameters(("id" = "$response.body#/jobId")))),
            ("cancel" = (operation_id = "mp_cancel_job", parameters(("id" = "$response.body#/jobId")))),
            ("v1_job" = (operation_id = "v1_get_job", parameters(("id" = "$response.body#/jobId")))),
            ("status" = (operation_id = "avg_status", parameters(("generation_id" = "$response.body#/generationId")))),
        )),
        (status = 400, description = "MoneyPrinter body: malformed, or a value breaks its rule", body = MpErrorBody),
        (status = 422, description = "AI-Video-Gen body: a value breaks its rule. Either body: the Idempotency-Key was used before with another body", body = GenerateError),
        (status = 500, description = "AI-Video-Gen body: the generation failed, `{\"detail\":\"Error: ...\"}`. Either body: an internal error.", body = GenerateError),
        (status = 503, description = "The database cannot be written right now, or the server is stopping; try again after `Retry-After` seconds", body = GenerateError,
         headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 507, description = "The data folder's disk has less free space than MIN_FREE_DISK_MB", body = GenerateError),
    ))]
/// Queues a video, or makes one and answers when it is done; once per
/// Idempotency-Key.
pub async fn generate(
    State(state): State<AppState>,
    submission: Submission,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let request_id = submission.request_id();
    let (state_, body_) = (state.clone(), body.clone());
    if is_aivideogen(&body) {
        let work = async move {
            match aivideogen::generate::generate_and_wait(&state_, body_, request_id).await {
                Ok(reply) => reply.into_response(),
                Err(err) => err.render(aivideogen::DIALECT),
            }
        };
        return submission
            .answer(&state, &body, aivideogen::DIALECT, work)
            .await;
    }
    let work = async move {
        match moneyprinter::request::generate(&state_, body_, request_id).await {
            Ok(reply) => reply.into_response(),
            Err(err) => err.into_response(),
        }
    };
    submission
        .answer(&state, &body, moneyprinter::DIALECT, work)
        .await
}

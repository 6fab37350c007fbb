//! The MoneyPrinter dialect (seeds 000 and 003): submit, job status, event
//! polling and cancel in the `{"status":"success",...}` envelope, plus the
//! model list and song upload its front end calls.

pub mod events;
pub mod jobs;
pub mod llm_models;
pub mod request;
pub mod songs;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::dialect::{Dialect, Style, with_dialect};
use super::streams::MONEYPRINTER_EVENTS;
use crate::model::Field;
use crate::{AppState, Config};

/// MoneyPrinter's errors: `{"status":"error","message":...}`, with its
/// front end's field names.
pub const DIALECT: Dialect = Dialect {
    style: Style::MoneyPrinter,
    field_name,
};

/// MoneyPrinter's name for a request field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Subject => "videoSubject",
        Field::Script => "script",
        Field::Voice => "voice",
        Field::AiModel => "aiModel",
        Field::SceneCount => "paragraphNumber",
        Field::CustomPrompt => "customPrompt",
        Field::Tone => "tone",
        Field::Language => "language",
        Field::SubtitlesPosition => "subtitlesPosition",
        Field::Color => "color",
        Field::UseMusic => "useMusic",
        Field::Motion => "motion",
        Field::Threads => "threads",
        Field::Aspect => "aspectRatio",
        Field::Width => "width",
        Field::Height => "height",
        Field::Size => "width and height",
        Field::Webhook => "webhook",
        Field::WebhookEventsFilter => "webhook_events_filter",
    }
}

/// Every MoneyPrinter route but `/api/generate`, which two dialects share
/// (see [`crate::api::generate`]).
pub fn router(config: &Config) -> Router<AppState> {
    let routes = Router::new()
        .route("/api/models", get(llm_models::models))
        .route(
            "/api/upload-songs",
            post(songs::upload).layer(DefaultBodyLimit::max(config.max_upload_bytes)),
        )
        .route("/api/jobs/{id}", get(jobs::job))
        .route(MONEYPRINTER_EVENTS.path, get(events::events))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/api/cancel", post(jobs::cancel_active));
    with_dialect(routes, DIALECT)
}

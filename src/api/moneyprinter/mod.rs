//! The MoneyPrinter dialect (seeds 000 and 003): submit, job status, event
//! polling and cancel, in the `{"status":"success",...}` envelope.

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{BufMut, BytesMut};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

pub mod models;
mod request;
pub mod songs;

use models::models;
pub use request::GenerateBody;
use songs::upload;

use crate::AppState;
use crate::Config;
use crate::api::aivideogen::generate::{AvgReply, GenerateRequest, generate_and_wait};
use crate::api::error::{DetailBody, MpErrorBody};
use crate::api::{ApiError, ApiResult, JobId, JsonBody, sse};
use crate::feed::Feed;
use crate::model::{Event, EventJson, FrameKind, Job, JobState, Level, rfc3339};
use crate::store::Filter;

/// Events per page when the client sets no `limit`.
pub const DEFAULT_PAGE: usize = 200;
/// Largest `limit` a client may ask for.
pub const MAX_PAGE: usize = 1000;

pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/api/generate", post(generate))
        .route("/api/models", get(models))
        .route(
            "/api/upload-songs",
            post(upload).layer(DefaultBodyLimit::max(config.max_upload_bytes)),
        )
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/cancel", post(cancel_active))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateReply {
    /// Always `success`.
    pub status: &'static str,
    pub message: &'static str,
    pub job_id: String,
    /// The seed 002 slug of the topic, for `/api/progress/{generation_id}`.
    pub generation_id: String,
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
pub async fn generate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    // AI-Video-Gen's front end sends `topic` and waits for the video.
    if body.get("videoSubject").is_none() && body.get("topic").is_some() {
        return generate_and_wait(&state, body)
            .await
            .map(IntoResponse::into_response);
    }
    let body: GenerateBody = serde_json::from_value(body)
        .map_err(|err| ApiError::validation(format!("Invalid request body: {err}")))?;
    let job = super::submit(&state, body.into_request()?).await?;
    Ok(Json(GenerateReply {
        status: "success",
        message: "Video generation queued.",
        job_id: job.id.to_string(),
        generation_id: job.generation_id,
    })
    .into_response())
}

/// The seed 003 job object, with progress, stages and the result added.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MpJob {
    pub id: String,
    pub state: JobState,
    pub cancel_requested: bool,
    /// The MP4 on the server, once completed.
    pub result_path: Option<String>,
    pub error_message: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub updated_at: String,
    /// 0–100; 100 exactly when completed.
    pub progress: u8,
    pub current_stage: Option<String>,
    pub generation_id: String,
    pub subject: String,
    /// Stage name → `{status, detail, durationSec}`, in pipeline order.
    #[schema(value_type = Object)]
    pub stages: Map<String, Value>,
    /// Measured metadata of the output: duration, width, height, fps, size.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

impl From<&Job> for MpJob {
    fn from(job: &Job) -> Self {
        MpJob {
            id: job.id.to_string(),
            state: job.state,
            cancel_requested: job.cancel_requested,
            result_path: job.result_path.clone(),
            error_message: job.error_message.clone(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            completed_at: job.completed_at.map(rfc3339),
            updated_at: rfc3339(job.updated_at),
            progress: job.progress,
            current_stage: job.current_stage.clone(),
            generation_id: job.generation_id.clone(),
            subject: job.request.subject.clone(),
            stages: job.stages.clone(),
            result: job.result.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobReply {
    pub status: &'static str,
    pub job: MpJob,
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "moneyprinter",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobReply),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
pub async fn job(State(state): State<AppState>, JobId(id): JobId) -> ApiResult<Json<JobReply>> {
    let job = state.store.job(id).await?.ok_or(ApiError::JobNotFound)?;
    Ok(Json(JobReply {
        status: "success",
        job: MpJob::from(&job),
    }))
}

/// Query of the event poll. Everything arrives as text so that a bad value
/// gets a message naming the parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub struct EventsQuery {
    /// Only events with a larger id. Default 0.
    after: Option<String>,
    /// Page size, 1 to 1000. Default 200.
    limit: Option<String>,
    /// `info`, `success`, `warning` or `error`; comma-separated for several.
    level: Option<String>,
}

/// The poll's answer. (The handler writes each event's pre-rendered JSON.)
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EventsReply {
    status: String,
    events: Vec<EventJson<'static>>,
}

/// A parsed event poll.
pub struct EventsParams {
    pub after: i64,
    pub limit: usize,
    pub levels: Option<Vec<Level>>,
}

impl EventsQuery {
    pub fn parse(&self) -> ApiResult<EventsParams> {
        let after =
            match self.after.as_deref().map(str::trim) {
                None | Some("") => 0,
                Some(raw) => raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request("after must be a non-negative integer.")
                })?,
            };
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_PAGE}."))
                })?,
        };
        let levels = match self.level.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                raw.split(',')
                    .map(|l| Level::parse(l.trim()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "level must be info, success, warning or error (comma-separated for several).",
                        )
                    })?,
            ),
        };
        Ok(EventsParams {
            after,
            limit,
            levels,
        })
    }
}

#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "moneyprinter",
    params(("id" = String, Path, description = "Job id"), EventsQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "SSE resume cursor")),
    responses(
        (status = 200, description = "Events with ids above `after`, oldest first. With `Accept: text/event-stream` the same event objects stream as SSE (`id: <event id>`, `data: <event>`), from the cursor (or the start) to the job's terminal event.",
         content((EventsReply = "application/json"), (String = "text/event-stream"))),
        (status = 204, description = "SSE only: the cursor is past the end of a finished job"),
        (status = 400, description = "Bad `after`, `limit` or `level`", body = MpErrorBody),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    JobId(id): JobId,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let params = query.parse()?;
    if sse::wants_stream(&headers) {
        let cursor = sse::cursor(&headers, query.after.as_deref())?;
        let cursor = sse::clamp(&state.store, cursor).await?.unwrap_or(0);
        return log_stream(&state, id, cursor, params.levels).await;
    }
    let filter = Filter {
        levels: params.levels.as_deref(),
    };
    let events = state
        .store
        .events_after(id, params.after, params.limit, filter)
        .await?
        .ok_or(ApiError::JobNotFound)?;
    // Each event's JSON is rendered once and shared; a page is a concatenation.
    const HEAD: &[u8] = br#"{"status":"success","events":["#;
    let size = HEAD.len() + 2 + events.iter().map(|e| e.json().len() + 1).sum::<usize>();
    let mut body = BytesMut::with_capacity(size);
    body.put_slice(HEAD);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(event.json());
    }
    body.put_slice(b"]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body.freeze()).into_response())
}

/// The event log as SSE: the same event objects as the poll, each with its
/// id, from the cursor (or the start) to the terminal event.
async fn log_stream(
    state: &AppState,
    id: Uuid,
    cursor: i64,
    levels: Option<Vec<Level>>,
) -> ApiResult<Response> {
    // Subscribe before looking at the job, so nothing slips between.
    let feed = Feed::new(&state.hub, state.store.clone(), id, cursor);
    let job = state.store.job(id).await?.ok_or(ApiError::JobNotFound)?;
    if sse::finished_before(&state.store, &job, cursor).await? {
        return Ok(sse::finished());
    }
    let frame = |e: &Event| e.frame(FrameKind::Log, |e| sse::frame(Some(e.id), None, e.json()));
    let events = stream::unfold(Some((feed, levels)), move |state| async move {
        let (mut feed, levels) = state?;
        loop {
            let event = feed.next().await?;
            let wanted = levels.as_ref().is_none_or(|l| l.contains(&event.level));
            if event.is_terminal() {
                // Always sent, filter or not: it tells the client the job is
                // over, so that it does not reconnect forever.
                return Some((frame(&event), None));
            }
            if wanted {
                return Some((frame(&event), Some((feed, levels))));
            }
        }
    });
    let frames = stream::once(async { sse::retry_hint() }).chain(events);
    Ok(sse::response(
        Box::pin(frames),
        Some(state.config.sse_keepalive()),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelReply {
    pub status: &'static str,
    /// Always `Cancellation requested.`
    pub message: &'static str,
    /// The job that was asked to stop (`/api/cancel` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "moneyprinter",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "A queued job is cancelled at once, a running one within about a second; repeating it is harmless", body = CancelReply),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
pub async fn cancel_job(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<CancelReply>> {
    if !super::cancel(&state, id).await? {
        return Err(ApiError::JobNotFound);
    }
    Ok(Json(CancelReply {
        status: "success",
        message: "Cancellation requested.",
        job_id: None,
    }))
}

#[utoipa::path(post, path = "/api/cancel", tag = "moneyprinter",
    responses(
        (status = 200, description = "Cancels the newest running job, else the newest queued one", body = CancelReply),
        (status = 404, description = "`No active job found.`", body = MpErrorBody),
    ))]
pub async fn cancel_active(State(state): State<AppState>) -> ApiResult<Json<CancelReply>> {
    let job = state
        .store
        .newest_active()
        .await?
        .ok_or(ApiError::NoActiveJob)?;
    super::cancel(&state, job.id).await?;
    Ok(Json(CancelReply {
        status: "success",
        message: "Cancellation requested.",
        job_id: Some(job.id.to_string()),
    }))
}

//! The MoneyPrinter dialect (seeds 000 and 003): submit, job status, event
//! polling and cancel, in the `{"status":"success",...}` envelope.

use axum::extract::{Path, Query, State};
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

use super::error::MpErrorBody;
use super::{ApiError, ApiResult, JsonBody, job_id, sse};
use crate::AppState;
use crate::feed::Feed;
use crate::model::{
    Aspect, Event, EventJson, FrameKind, Job, JobRequest, JobState, Level, rfc3339,
};
use crate::store::Filter;

/// Events per page when the client sets no `limit`.
pub const DEFAULT_PAGE: usize = 200;
/// Largest `limit` a client may ask for.
pub const MAX_PAGE: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/generate", post(generate))
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/cancel", post(cancel_active))
}

/// A body field that the original front end sends as a string or a number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Loose {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Loose {
    fn as_u32(&self, field: &str, min: u32, max: u32) -> ApiResult<u32> {
        let n = match self {
            Loose::Int(n) => Some(*n),
            Loose::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Loose::Text(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (i64::from(min)..=i64::from(max)).contains(&n) => Ok(n as u32),
            _ => Err(ApiError::validation(format!(
                "{field} must be a whole number from {min} to {max}."
            ))),
        }
    }

    fn as_bool(&self, field: &str) -> ApiResult<bool> {
        match self {
            Loose::Bool(b) => Ok(*b),
            Loose::Int(0) => Ok(false),
            Loose::Int(1) => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => {
                Ok(false)
            }
            _ => Err(ApiError::validation(format!(
                "{field} must be true or false."
            ))),
        }
    }
}

/// `POST /api/generate` as MoneyPrinter's front end sends it. Unknown fields
/// are ignored, as the original does. Numbers and booleans may come as
/// strings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateBody {
    /// The topic. Required (or `topic`).
    video_subject: Option<String>,
    /// Same as `videoSubject`.
    topic: Option<String>,
    /// Narration to use as is; research is skipped.
    script: Option<String>,
    /// espeak-ng voice (`en-us`), or the speech API's voice.
    voice: Option<String>,
    /// LLM model for research and the scene plan.
    ai_model: Option<String>,
    /// Number of scenes, 1 to 20.
    paragraph_number: Option<Loose>,
    /// Extra instructions for the script writer.
    custom_prompt: Option<String>,
    /// `top`, `center`, `bottom`, or `"<h>,<v>"` such as `center,bottom`.
    subtitles_position: Option<String>,
    /// Subtitle colour: `#rrggbb`, `#rgb` or a basic colour name.
    color: Option<String>,
    /// Mix a track from the music library under the narration.
    use_music: Option<Loose>,
    /// ffmpeg threads for the render, 1 to 64.
    threads: Option<Loose>,
    /// `9:16` (default), `16:9` or `1:1`.
    aspect_ratio: Option<String>,
    /// Exact frame width (even, 64 to 3840); needs `height`.
    width: Option<Loose>,
    /// Exact frame height (even, 64 to 3840); needs `width`.
    height: Option<Loose>,
}

/// Trims a text field; blank counts as absent.
pub fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl GenerateBody {
    fn into_request(self) -> ApiResult<JobRequest> {
        let subject = text(self.video_subject)
            .or(text(self.topic))
            .ok_or_else(|| {
                ApiError::validation("videoSubject is required and must not be blank.")
            })?;
        let mut request = JobRequest {
            subject,
            script: text(self.script),
            voice: text(self.voice),
            ai_model: text(self.ai_model),
            custom_prompt: text(self.custom_prompt),
            dialect: Some("moneyprinter".into()),
            ..JobRequest::default()
        };
        if let Some(n) = &self.paragraph_number {
            request.paragraph_number = Some(n.as_u32("paragraphNumber", 1, 20)?);
        }
        if let Some(n) = &self.threads {
            request.threads = Some(n.as_u32("threads", 1, 64)?);
        }
        if let Some(b) = &self.use_music {
            request.use_music = b.as_bool("useMusic")?;
        }
        if let Some(pos) = text(self.subtitles_position) {
            request.subtitles_position = Some(subtitle_position(&pos)?);
        }
        if let Some(color) = text(self.color) {
            request.color = Some(checked_color(&color)?);
        }
        if let Some(aspect) = text(self.aspect_ratio) {
            request.aspect = Some(Aspect::parse(&aspect).ok_or_else(|| {
                ApiError::validation("aspectRatio must be one of 9:16, 16:9 or 1:1.")
            })?);
        }
        let size = |v: &Option<Loose>, f| v.as_ref().map(|v| v.as_u32(f, 64, 3840)).transpose();
        request.width = size(&self.width, "width")?;
        request.height = size(&self.height, "height")?;
        check_size(&request)?;
        Ok(request)
    }
}

/// Width and height come together and must be even, as H.264 needs.
pub fn check_size(request: &JobRequest) -> ApiResult<()> {
    match (request.width, request.height) {
        (None, None) => Ok(()),
        (Some(w), Some(h)) if w % 2 == 0 && h % 2 == 0 => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "width and height must be even numbers.",
        )),
        _ => Err(ApiError::validation(
            "width and height must be given together.",
        )),
    }
}

/// MoneyPrinter sends positions as `"<horizontal>,<vertical>"`; the
/// vertical part decides where subtitles go.
pub fn subtitle_position(raw: &str) -> ApiResult<String> {
    let vertical = raw
        .rsplit(',')
        .next()
        .unwrap_or(raw)
        .trim()
        .to_ascii_lowercase();
    match vertical.as_str() {
        "top" => Ok("top".into()),
        "center" | "centre" | "middle" => Ok("center".into()),
        "bottom" => Ok("bottom".into()),
        _ => Err(ApiError::validation(
            "subtitlesPosition must be top, center or bottom (optionally as \"center,bottom\").",
        )),
    }
}

/// Colour names ffmpeg and libass both understand, or `#rgb` / `#rrggbb`.
pub fn checked_color(raw: &str) -> ApiResult<String> {
    const NAMES: &[&str] = &[
        "white", "black", "yellow", "red", "green", "blue", "cyan", "magenta", "orange", "gray",
        "grey", "pink", "purple",
    ];
    let lower = raw.trim().to_ascii_lowercase();
    let hex = lower.strip_prefix('#').unwrap_or("");
    let is_hex = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if is_hex || NAMES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ApiError::validation(
            "color must be #rrggbb, #rgb or a basic colour name such as white or yellow.",
        ))
    }
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
    request_body = GenerateBody,
    responses(
        (status = 200, description = "Queued. A body with `topic` and no `videoSubject` is AI-Video-Gen's generate instead: see that tag.", body = GenerateReply),
        (status = 400, description = "Malformed body or bad values", body = MpErrorBody),
        (status = 413, description = "Body over MAX_BODY_BYTES", body = MpErrorBody),
        (status = 415, description = "Not JSON", body = MpErrorBody),
    ))]
pub async fn generate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<GenerateBody>,
) -> ApiResult<Json<GenerateReply>> {
    let job = super::submit(&state, body.into_request()?).await?;
    Ok(Json(GenerateReply {
        status: "success",
        message: "Video generation queued.",
        job_id: job.id.to_string(),
        generation_id: job.generation_id,
    }))
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
pub async fn job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobReply>> {
    let job = state
        .store
        .job(job_id(&id)?)
        .await?
        .ok_or(ApiError::JobNotFound)?;
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
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = job_id(&id)?;
    let params = query.parse()?;
    if sse::wants_stream(&headers) {
        let cursor = sse::cursor(&headers, query.after.as_deref())?.unwrap_or(0);
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
    if job.state.is_terminal()
        && state
            .store
            .events_after(id, cursor, 1, Filter::default())
            .await?
            .unwrap_or_default()
            .is_empty()
    {
        return Ok(sse::finished());
    }
    let frame = |e: &Event| e.frame(FrameKind::Log, |e| sse::frame(Some(e.id), None, e.json()));
    let events = stream::unfold(Some((feed, levels)), move |state| async move {
        let (mut feed, levels) = state?;
        loop {
            let event = feed.next().await?;
            let wanted = levels.as_ref().is_none_or(|l| l.contains(&event.level));
            if event.is_terminal() {
                // The stream ends here, whether or not the filter shows it.
                return wanted.then(|| (frame(&event), None));
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
    Path(id): Path<String>,
) -> ApiResult<Json<CancelReply>> {
    if !super::cancel(&state, job_id(&id)?).await? {
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

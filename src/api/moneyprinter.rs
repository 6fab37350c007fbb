//! The MoneyPrinter dialect (seeds 000 and 003): submit, job status, event
//! polling and cancel, in the `{"status":"success",...}` envelope.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiResult, JsonBody, job_id};
use crate::AppState;
use crate::model::{Aspect, Job, JobRequest, Level, rfc3339};
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
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Loose {
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
/// are ignored, as the original does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateBody {
    video_subject: Option<String>,
    topic: Option<String>,
    script: Option<String>,
    voice: Option<String>,
    ai_model: Option<String>,
    paragraph_number: Option<Loose>,
    custom_prompt: Option<String>,
    subtitles_position: Option<String>,
    color: Option<String>,
    use_music: Option<Loose>,
    threads: Option<Loose>,
    aspect_ratio: Option<String>,
    width: Option<Loose>,
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

async fn generate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<GenerateBody>,
) -> ApiResult<Json<Value>> {
    let job = super::submit(&state, body.into_request()?).await?;
    Ok(Json(json!({
        "status": "success",
        "message": "Video generation queued.",
        "jobId": job.id,
        "generationId": job.generation_id,
    })))
}

/// The seed 003 job object, with progress and stages added.
pub fn job_json(job: &Job) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), job.id.to_string().into());
    obj.insert("state".into(), job.state.as_str().into());
    obj.insert("cancelRequested".into(), job.cancel_requested.into());
    obj.insert("resultPath".into(), json!(job.result_path));
    obj.insert("errorMessage".into(), json!(job.error_message));
    obj.insert("createdAt".into(), rfc3339(job.created_at).into());
    obj.insert("startedAt".into(), json!(job.started_at.map(rfc3339)));
    obj.insert("completedAt".into(), json!(job.completed_at.map(rfc3339)));
    obj.insert("updatedAt".into(), rfc3339(job.updated_at).into());
    obj.insert("progress".into(), job.progress.into());
    obj.insert("currentStage".into(), json!(job.current_stage));
    obj.insert("generationId".into(), job.generation_id.clone().into());
    obj.insert("subject".into(), job.request.subject.clone().into());
    obj.insert("stages".into(), Value::Object(job.stages.clone()));
    obj.insert("result".into(), job.result.clone().unwrap_or(Value::Null));
    Value::Object(obj)
}

async fn job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let job = state
        .store
        .job(job_id(&id)?)
        .await?
        .ok_or(ApiError::JobNotFound)?;
    Ok(Json(json!({ "status": "success", "job": job_json(&job) })))
}

/// Query of the event poll. Everything arrives as text so that a bad value
/// gets a message naming the parameter.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
    level: Option<String>,
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

async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<Response> {
    let id = job_id(&id)?;
    let params = query.parse()?;
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

async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if !super::cancel(&state, job_id(&id)?).await? {
        return Err(ApiError::JobNotFound);
    }
    Ok(Json(
        json!({ "status": "success", "message": "Cancellation requested." }),
    ))
}

async fn cancel_active(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let job = state
        .store
        .newest_active()
        .await?
        .ok_or(ApiError::NoActiveJob)?;
    super::cancel(&state, job.id).await?;
    Ok(Json(json!({
        "status": "success",
        "message": "Cancellation requested.",
        "jobId": job.id,
    })))
}

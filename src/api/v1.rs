//! The v1 job API (seed 004): create, status, result, list and cancel in
//! the `{"success":true,"data":...}` envelope, snake_case, with
//! machine-readable error codes. The video itself is served with Range
//! support from `/api/v1/jobs/:id/video`.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::V1ErrorBody;
use super::fields::{check_size, checked_color, checked_script, subtitle_position, text};
use super::{ApiError, ApiResult, JobId, JsonBody};
use crate::AppState;
use crate::model::{Aspect, Job, JobRequest, JobState, rfc3339};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", post(create).get(list))
        .route("/api/v1/jobs/{id}", get(status))
        .route("/api/v1/jobs/{id}/result", get(result))
        .route("/api/v1/jobs/{id}/video", get(video))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
}

/// `POST /api/v1/jobs`: a topic, a script, or both, plus options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateJob {
    /// What the video is about. Required unless `script` is given.
    pub topic: Option<String>,
    /// Narration to use as is; research is skipped.
    pub script: Option<String>,
    /// espeak-ng voice (`en-us`) or speech API voice.
    pub voice: Option<String>,
    /// Narration language; picks a matching voice.
    pub language: Option<String>,
    /// Tone for the script writer.
    pub tone: Option<String>,
    /// LLM model for research and the scene plan.
    pub ai_model: Option<String>,
    /// Number of scenes, 1 to 20.
    #[serde(alias = "num_scenes", alias = "paragraph_number")]
    pub scene_count: Option<u32>,
    /// Extra instructions for the script writer.
    pub custom_prompt: Option<String>,
    /// `top`, `center` or `bottom`.
    pub subtitles_position: Option<String>,
    /// `#rrggbb`, `#rgb` or a basic colour name.
    pub subtitle_color: Option<String>,
    /// Mix a track from the music library under the narration.
    pub use_music: bool,
    /// `9:16` (default), `16:9` or `1:1`.
    pub aspect_ratio: Option<String>,
    /// Exact frame width; needs `height`.
    pub width: Option<u32>,
    /// Exact frame height; needs `width`.
    pub height: Option<u32>,
    /// ffmpeg threads for the render.
    pub threads: Option<u32>,
}

impl CreateJob {
    fn into_request(self) -> ApiResult<JobRequest> {
        let script = checked_script(self.script)?;
        let subject = match (text(self.topic), &script) {
            (Some(topic), _) => topic,
            (None, Some(script)) => script
                .chars()
                .take(60)
                .collect::<String>()
                .trim()
                .to_string(),
            (None, None) => return Err(ApiError::validation("topic or script is required.")),
        };
        if let Some(n) = self.scene_count
            && !(1..=20).contains(&n)
        {
            return Err(ApiError::validation("scene_count must be from 1 to 20."));
        }
        if let Some(n) = self.threads
            && !(1..=64).contains(&n)
        {
            return Err(ApiError::validation("threads must be from 1 to 64."));
        }
        let size_ok = |v: Option<u32>| v.is_none_or(|v| (64..=3840).contains(&v));
        if !size_ok(self.width) || !size_ok(self.height) {
            return Err(ApiError::validation(
                "width and height must be from 64 to 3840.",
            ));
        }
        let request = JobRequest {
            subject,
            script,
            voice: text(self.voice),
            ai_model: text(self.ai_model),
            paragraph_number: self.scene_count,
            custom_prompt: text(self.custom_prompt),
            tone: text(self.tone),
            language: text(self.language),
            subtitles_position: text(self.subtitles_position)
                .map(|p| subtitle_position(&p))
                .transpose()?,
            color: text(self.subtitle_color)
                .map(|c| checked_color(&c))
                .transpose()?,
            use_music: self.use_music,
            threads: self.threads,
            aspect: text(self.aspect_ratio)
                .map(|a| {
                    Aspect::parse(&a).ok_or_else(|| {
                        ApiError::validation("aspect_ratio must be one of 9:16, 16:9 or 1:1.")
                    })
                })
                .transpose()?,
            width: self.width,
            height: self.height,
            dialect: Some("v1".into()),
        };
        check_size(&request)?;
        Ok(request)
    }
}

/// A stage of the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    pub name: String,
    /// `pending`, `running`, `done`, `skipped` or `error`.
    pub status: String,
    /// 100 once the stage is over, 0 before it starts.
    pub progress_percent: Option<u8>,
    pub detail: Option<String>,
    pub duration_seconds: Option<f64>,
}

/// A job as seed 004 shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct V1Job {
    pub job_id: String,
    pub generation_id: String,
    pub topic: String,
    /// `queued`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    pub progress_percent: u8,
    /// The running stage; null unless the job is processing.
    pub current_stage: Option<String>,
    pub stages: Vec<StageView>,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

/// Seed 004's status words.
pub fn status_word(state: JobState) -> &'static str {
    match state {
        JobState::Running => "processing",
        other => other.as_str(),
    }
}

impl From<&Job> for V1Job {
    fn from(job: &Job) -> Self {
        let stages = job
            .stages
            .iter()
            .map(|(name, record)| {
                let status = record["status"].as_str().unwrap_or("pending").to_string();
                let progress_percent = match status.as_str() {
                    "done" | "skipped" | "error" => Some(100),
                    "pending" => Some(0),
                    _ => None,
                };
                StageView {
                    name: name.clone(),
                    progress_percent,
                    detail: record["detail"].as_str().map(str::to_string),
                    duration_seconds: record["durationSec"].as_f64(),
                    status,
                }
            })
            .collect();
        V1Job {
            job_id: job.id.to_string(),
            generation_id: job.generation_id.clone(),
            topic: job.request.subject.clone(),
            status: status_word(job.state),
            progress_percent: job.progress,
            current_stage: job
                .current_stage
                .clone()
                .filter(|_| job.state == JobState::Running),
            stages,
            cancel_requested: job.cancel_requested,
            error: job.error_message.clone(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            started_at: job.started_at.map(rfc3339),
            completed_at: job.completed_at.map(rfc3339),
        }
    }
}

/// `{"success": true, "message": ..., "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
    pub data: T,
}

fn ok<T>(message: Option<&'static str>, data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        success: true,
        message,
        data,
    })
}

#[utoipa::path(post, path = "/api/v1/jobs", tag = "v1",
    request_body = CreateJob,
    responses(
        (status = 201, description = "Job created", body = Envelope<V1Job>),
        (status = 400, description = "Malformed JSON", body = V1ErrorBody),
        (status = 422, description = "Invalid values", body = V1ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateJob>,
) -> ApiResult<(StatusCode, Json<Envelope<V1Job>>)> {
    let job = super::submit(&state, body.into_request()?).await?;
    Ok((
        StatusCode::CREATED,
        ok(Some("Job created"), V1Job::from(&job)),
    ))
}

async fn load(state: &AppState, id: Uuid) -> ApiResult<Job> {
    state.store.job(id).await?.ok_or(ApiError::JobNotFound)
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "v1",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Envelope<V1Job>),
        (status = 404, description = "No such job", body = V1ErrorBody),
    ))]
pub async fn status(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<Envelope<V1Job>>> {
    let job = load(&state, id).await?;
    Ok(ok(None, V1Job::from(&job)))
}

/// Measured properties of the video.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoInfo {
    pub duration_seconds: Option<f64>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub fps: Option<f64>,
    pub size_bytes: Option<u64>,
}

/// What seed 004 calls style data, limited to what was measured.
#[derive(Debug, Serialize, ToSchema)]
pub struct StyleJson {
    pub version: &'static str,
    pub aspect_ratio: Option<String>,
    pub frame_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    pub job_id: String,
    pub status: &'static str,
    pub progress_percent: u8,
    /// Absolute URL of the MP4 on this server; supports Range requests.
    pub output_video_url: String,
    /// Seconds from the start of the run to its end.
    pub processing_time_seconds: Option<f64>,
    pub video: VideoInfo,
    pub style_json: StyleJson,
    /// The quality check's score, strengths and weaknesses.
    #[schema(value_type = Object)]
    pub review: Option<Value>,
}

/// The base URL clients reach this server at.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.config.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
        .map(str::to_string)
        .unwrap_or_else(|| state.config.bind_addr.to_string());
    format!("http://{host}")
}

fn not_ready(job: &Job) -> ApiError {
    ApiError::Conflict {
        message: format!(
            "The job has no result yet: its status is {}.",
            status_word(job.state)
        ),
        code: "RESULT_NOT_READY",
    }
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/result", tag = "v1",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The finished video", body = Envelope<ResultView>),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 409, description = "Not completed (code RESULT_NOT_READY)", body = V1ErrorBody),
    ))]
pub async fn result(
    State(state): State<AppState>,
    JobId(id): JobId,
    headers: HeaderMap,
) -> ApiResult<Json<Envelope<ResultView>>> {
    let job = load(&state, id).await?;
    if job.state != JobState::Completed || job.result_path.is_none() {
        return Err(not_ready(&job));
    }
    let meta = job.result.clone().unwrap_or(Value::Null);
    let (width, height) = (meta["width"].as_u64(), meta["height"].as_u64());
    let aspect = match (width, height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => {
            let g = gcd(w, h);
            Some(format!("{}:{}", w / g, h / g))
        }
        _ => None,
    };
    let view = ResultView {
        job_id: job.id.to_string(),
        status: status_word(job.state),
        progress_percent: job.progress,
        output_video_url: format!(
            "{}/api/v1/jobs/{}/video",
            base_url(&state, &headers),
            job.id
        ),
        processing_time_seconds: job.processing_seconds(),
        video: VideoInfo {
            duration_seconds: meta["duration"].as_f64(),
            width,
            height,
            fps: meta["fps"].as_f64(),
            size_bytes: meta["size"].as_u64(),
        },
        style_json: StyleJson {
            version: "1.0",
            aspect_ratio: aspect,
            frame_rate: meta["fps"].as_f64(),
        },
        review: job.data.get("criticReview").cloned(),
    };
    Ok(ok(Some("Job result retrieved"), view))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Serves a finished job's MP4, with Range support.
pub async fn serve_video(job: &Job, request: Request) -> ApiResult<Response> {
    let path = job
        .result_path
        .as_deref()
        .filter(|_| job.state == JobState::Completed)
        .ok_or_else(|| not_ready(job))?;
    if !std::path::Path::new(path).is_file() {
        return Err(ApiError::NotFound(
            "The video file is no longer on the server.".into(),
        ));
    }
    let response = ServeFile::new_with_mime(path, &"video/mp4".parse().expect("valid mime"))
        .oneshot(request)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "could not serve a video");
            ApiError::Internal
        })?;
    Ok(response.map(Body::new).into_response())
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/video", tag = "v1",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The MP4", content_type = "video/mp4"),
        (status = 206, description = "A byte range of the MP4 (`Range` request)", content_type = "video/mp4"),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 409, description = "Not completed", body = V1ErrorBody),
        (status = 416, description = "Range not satisfiable", body = V1ErrorBody),
    ))]
pub async fn video(
    State(state): State<AppState>,
    JobId(id): JobId,
    request: Request,
) -> ApiResult<Response> {
    let job = load(&state, id).await?;
    serve_video(&job, request).await
}

/// Query of the job list. Values arrive as text so that bad ones get a
/// message naming the parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub struct ListQuery {
    /// Page number, from 1. Default 1.
    pub page: Option<String>,
    /// Jobs per page, 1 to 100. Default 10.
    pub page_size: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub status: &'static str,
    pub progress_percent: u8,
    pub current_stage: Option<String>,
    pub topic: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Seed 004's list shape: no envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

fn number(raw: Option<&str>, name: &str, default: u64, max: u64) -> ApiResult<u64> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::validation(format!("{name} must be an integer from 1 to {max}."))
            }),
    }
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "v1",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs, newest first", body = JobList),
        (status = 422, description = "Bad page or page_size", body = V1ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<JobList>> {
    let page = number(query.page.as_deref(), "page", 1, 1_000_000)?;
    let page_size = number(query.page_size.as_deref(), "page_size", 10, 100)?;
    let found = state
        .store
        .list_jobs((page - 1) * page_size, page_size)
        .await?;
    let jobs = found
        .jobs
        .iter()
        .map(|job| JobSummary {
            job_id: job.id.to_string(),
            status: status_word(job.state),
            progress_percent: job.progress,
            current_stage: job
                .current_stage
                .clone()
                .filter(|_| job.state == JobState::Running),
            topic: job.request.subject.clone(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
        })
        .collect();
    Ok(Json(JobList {
        jobs,
        total: found.total,
        page,
        page_size,
    }))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "v1",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancel recorded; a queued job is cancelled at once", body = Envelope<V1Job>),
        (status = 404, description = "No such job", body = V1ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<Envelope<V1Job>>> {
    if !super::cancel(&state, id).await? {
        return Err(ApiError::JobNotFound);
    }
    let job = state.store.job(id).await?.ok_or(ApiError::JobNotFound)?;
    Ok(ok(Some("Cancellation requested"), V1Job::from(&job)))
}

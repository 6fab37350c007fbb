//! The AI-Video-Gen dialect (seed 002): the [`progress`] stream, the status
//! route, the video by name, and the waiting [`generate`] that its front
//! end posts to `/api/generate`. Statuses come from the [`projector`].

pub mod generate;
pub mod progress;
pub mod projector;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::{DetailBody, Dialect, Style, snake_case_name, with_dialect};
use super::error::{ApiError, ApiResult};
use super::streams::AIVIDEOGEN_PROGRESS;
use super::video;
use crate::AppState;
use crate::model::{Field, Job, JobState};
use projector::{Projector, Status};

/// AI-Video-Gen's errors: FastAPI's `{"detail":...}`, with its front end's
/// field names.
pub const DIALECT: Dialect = Dialect {
    style: Style::Detail,
    field_name,
};

/// AI-Video-Gen's name for a request field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Subject => "topic",
        Field::SceneCount => "num_slides",
        other => snake_case_name(other),
    }
}

/// The progress stream, the status route and the video route.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route(AIVIDEOGEN_PROGRESS.path, get(progress::progress))
        .route("/api/status/{generation_id}", get(status_of))
        .route("/api/video/{filename}", get(video_file));
    with_dialect(routes, DIALECT)
}

/// The job a generation id (or a job id) names, if it names one yet. A
/// job that finished before the client connected does not count during
/// the grace period: the client is probably about to submit a new one.
async fn resolve(
    state: &AppState,
    target: &str,
    connected_at: Option<DateTime<Utc>>,
) -> ApiResult<Option<Job>> {
    if let Ok(id) = Uuid::parse_str(target)
        && let Some(job) = state.engine.job(id).await?
    {
        return Ok(Some(job));
    }
    let Some(job) = state.engine.newest_by_generation(target).await? else {
        return Ok(None);
    };
    let stale = job.state.is_terminal()
        && matches!((job.completed_at, connected_at), (Some(done), Some(at)) if done <= at);
    Ok((!stale).then_some(job))
}

/// The status a job's log has reached.
async fn latest_status(state: &AppState, job: &Job) -> ApiResult<Status> {
    let mut projector = Projector::default();
    let mut after = 0;
    loop {
        let page = state
            .engine
            .events(job.id, after, 1000, None)
            .await?
            .unwrap_or_default();
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in &page {
            projector.apply(event);
        }
    }
    Ok(projector.current().clone())
}

#[utoipa::path(get, path = "/api/video/{filename}", tag = "aivideogen", operation_id = "avg_video",
    params(("filename" = String, Path, description = "`video_filename` from the generate answer: `<job id>.mp4`")),
    responses(
        (status = 200, description = "The MP4", content_type = "video/mp4"),
        (status = 206, description = "A byte range (`Range` request)", content_type = "video/mp4"),
        (status = 404, description = "No finished video by that name", body = DetailBody),
        (status = 416, description = "Range not satisfiable", body = DetailBody),
    ))]
/// A finished video, by the file name the waiting generate answered with.
pub async fn video_file(
    State(state): State<AppState>,
    Path(filename): Path<String>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    // The name only ever selects a job; it is never used as a path.
    let not_found = || ApiError::NotFound(format!("Video not found: {filename}"));
    let id = filename
        .strip_suffix(".mp4")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(not_found)?;
    let job = state.engine.job(id).await?.ok_or_else(not_found)?;
    let path = job
        .result_path
        .as_deref()
        .filter(|_| job.state == JobState::Completed)
        .ok_or_else(not_found)?;
    video::serve(path, request).await
}

#[utoipa::path(get, path = "/api/status/{generation_id}", tag = "aivideogen", operation_id = "avg_status",
    params(("generation_id" = String, Path, description = "Generation id or job id")),
    responses(
        (status = 200, description = "The latest status of the newest job with this generation id", body = Status),
        (status = 404, description = "`Generation ID not found`", body = DetailBody),
    ))]
/// The latest seed 002 status of a job.
pub async fn status_of(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Status>> {
    let job = resolve(&state, &target, None)
        .await?
        .ok_or(ApiError::GenerationNotFound)?;
    Ok(Json(latest_status(&state, &job).await?))
}

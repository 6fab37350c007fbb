//! The Clipzy dialect (seed 004): create, status, result, list and cancel
//! under `/api/v1`, in the `{"success":true,"data":...}` envelope,
//! snake_case, with machine-readable error codes. The video itself is
//! served with Range support from `/api/v1/jobs/{id}/video`.

pub mod extras;
pub mod request;
pub mod views;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::dialect::{Dialect, Style, V1ErrorBody, snake_case_name, with_dialect};
use super::error::{ApiError, ApiResult};
use super::extract::{JobId, JsonBody, QueryParams, Submission};
use super::fields::{host_and_port, whole_number};
use super::video;
use crate::AppState;
use crate::model::{Field, Job, JobState};
use request::CreateJob;
use views::{
    Envelope, JobList, JobSummary, ListQuery, ResultView, V1Job, ok, status_word, wanted_states,
};

/// Seed 004's errors: `{"success":false,...,"error":{"detail","code"}}`.
pub const DIALECT: Dialect = Dialect {
    style: Style::V1,
    field_name,
};

/// Seed 004's name for a request field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Subject => "topic",
        Field::Color => "subtitle_color",
        other => snake_case_name(other),
    }
}

/// Every seed 004 route, and a v1 answer for any other path under
/// `/api/v1`.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/api/v1/jobs", post(create).get(list))
        .route("/api/v1/jobs/{id}", get(status).delete(delete))
        .route("/api/v1/jobs/{id}/result", get(result))
        .route("/api/v1/jobs/{id}/video", get(video_file))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
        .route("/api/v1/jobs/{id}/rerun", post(extras::rerun))
        .route("/api/v1/voices", get(extras::voices))
        .route("/api/v1", any(no_route))
        .route("/api/v1/", any(no_route))
        .route("/api/v1/{*rest}", any(no_route));
    with_dialect(routes, DIALECT)
}

/// A path under `/api/v1` that no route has.
async fn no_route() -> ApiError {
    ApiError::RouteNotFound
}

#[utoipa::path(post, path = "/api/v1/jobs", tag = "v1", operation_id = "v1_create_job",
    request_body(content = CreateJob,
        description = "A topic, a script, or both. With a script the job runs offline: no LLM is asked.",
        example = json!({
            "topic": "Why the sea is salty",
            "script": "Rain washes salt out of rocks. Rivers carry it to the sea. The water leaves as vapour, and the salt stays behind.",
            "aspect_ratio": "16:9",
            "scene_count": 3
        })),
    responses(
        (status = 201, description = "Job created", body = Envelope<V1Job>, links(
            ("job" = (operation_id = "v1_get_job", parameters(("id" = "$response.body#/data/job_id")))),
            ("result" = (operation_id = "v1_job_result", parameters(("id" = "$response.body#/data/job_id")))),
            ("video" = (operation_id = "v1_job_video", parameters(("id" = "$response.body#/data/job_id")))),
            ("cancel" = (operation_id = "v1_cancel_job", parameters(("id" = "$response.body#/data/job_id")))),
            ("delete" = (operation_id = "v1_delete_job", parameters(("id" = "$response.body#/data/job_id")))),
            ("events" = (operation_id = "mp_job_events", parameters(("id" = "$response.body#/data/job_id")))),
            ("status" = (operation_id = "avg_status", parameters(("generation_id" = "$response.body#/data/generation_id")))),
        )),
        (status = 400, description = "Malformed JSON", body = V1ErrorBody),
        (status = 422, description = "A value breaks its rule, or neither topic nor script is given, or the Idempotency-Key was used before with another body", body = V1ErrorBody),
    ))]
/// Queues a job, once per Idempotency-Key.
pub async fn create(
    State(state): State<AppState>,
    submission: Submission,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let work = {
        let (state, body) = (state.clone(), body.clone());
        let request_id = submission.request_id();
        async move { queue(&state, body, request_id).await.into_response() }
    };
    submission.answer(&state, &body, DIALECT, work).await
}

async fn queue(
    state: &AppState,
    body: Value,
    request_id: Option<String>,
) -> ApiResult<(StatusCode, Json<Envelope<V1Job>>)> {
    let body: CreateJob = serde_json::from_value(body)
        .map_err(|err| ApiError::Validation(format!("Invalid request body: {err}")))?;
    let mut request = body.into_request()?;
    request.request_id = request_id;
    let job = state.engine.submit(request).await?;
    Ok((
        StatusCode::CREATED,
        ok(Some("Job created"), V1Job::from(&job)),
    ))
}

async fn load(state: &AppState, id: uuid::Uuid) -> ApiResult<Job> {
    state.engine.job(id).await?.ok_or(ApiError::JobNotFound)
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "v1", operation_id = "v1_get_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Envelope<V1Job>),
        (status = 404, description = "No such job", body = V1ErrorBody),
    ))]
/// One job.
pub async fn status(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<Envelope<V1Job>>> {
    let job = load(&state, id).await?;
    Ok(ok(None, V1Job::from(&job)))
}

/// Where clients reach this server: `PUBLIC_URL`, else `http://` and the
/// request's `Host` when that is a plain `host[:port]`, else nothing, and
/// links stay relative.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.config.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_and_port)
        .map(|host| format!("http://{host}"))
        .unwrap_or_default()
}

/// The path of a finished job's video, or why there is none yet.
fn finished_video(job: &Job) -> ApiResult<&str> {
    job.result_path
        .as_deref()
        .filter(|_| job.state == JobState::Completed)
        .ok_or_else(|| ApiError::Conflict {
            message: format!(
                "The job has no result yet: its status is {}.",
                status_word(job.state)
            ),
            code: "RESULT_NOT_READY",
        })
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/result", tag = "v1", operation_id = "v1_job_result",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The finished video", body = Envelope<ResultView>),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 409, description = "Not completed (code RESULT_NOT_READY)", body = V1ErrorBody),
    ))]
/// A finished job's video and measurements.
pub async fn result(
    State(state): State<AppState>,
    JobId(id): JobId,
    headers: HeaderMap,
) -> ApiResult<Json<Envelope<ResultView>>> {
    let job = load(&state, id).await?;
    finished_video(&job)?;
    let meta = job.result.clone().unwrap_or_default();
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
        video: (&meta).into(),
        style_json: (&meta).into(),
        review: job.data.critic_review.clone(),
    };
    Ok(ok(Some("Job result retrieved"), view))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/video", tag = "v1", operation_id = "v1_job_video",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The MP4", content_type = "video/mp4"),
        (status = 206, description = "A byte range of the MP4 (`Range` request)", content_type = "video/mp4"),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 409, description = "Not completed", body = V1ErrorBody),
        (status = 416, description = "Range not satisfiable", body = V1ErrorBody),
    ))]
/// A finished job's MP4.
pub async fn video_file(
    State(state): State<AppState>,
    JobId(id): JobId,
    request: Request,
) -> ApiResult<Response> {
    let job = load(&state, id).await?;
    video::serve(finished_video(&job)?, request).await
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "v1", operation_id = "v1_list_jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs, newest first", body = JobList, links(
            ("first_job" = (operation_id = "v1_get_job", parameters(("id" = "$response.body#/jobs/0/job_id")))),
        )),
        (status = 422, description = "Bad page, page_size or status", body = V1ErrorBody),
    ))]
/// A page of jobs, newest first.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<JobList>> {
    let number = |raw: Option<&str>, name: &str, default: u64, max: i64| {
        whole_number(raw, 1..=max)
            .map(|n| n.map_or(default, |n| n as u64))
            .map_err(|_| {
                ApiError::Validation(format!("{name} must be an integer from 1 to {max}."))
            })
    };
    let page = number(query.page.as_deref(), "page", 1, MAX_PAGE_NUMBER)?;
    let page_size = number(query.page_size.as_deref(), "page_size", 10, MAX_PAGE_SIZE)?;
    let states = wanted_states(query.status.as_deref()).ok_or_else(|| {
        ApiError::Validation(
            "status must list queued, processing, completed, failed or cancelled, comma-separated."
                .into(),
        )
    })?;
    let found = state
        .engine
        .jobs((page - 1) * page_size, page_size, &states)
        .await?;
    Ok(Json(JobList {
        jobs: found.jobs.iter().map(JobSummary::from).collect(),
        total: found.total,
        page,
        page_size,
    }))
}

/// The last page a list may ask for.
pub const MAX_PAGE_NUMBER: i64 = 1_000_000;
/// The most jobs a page may hold.
pub const MAX_PAGE_SIZE: i64 = 100;

/// What a delete removed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeletedJob {
    /// The job that is gone.
    pub job_id: String,
}

#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "v1", operation_id = "v1_delete_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The finished job, its events and its folder are gone", body = Envelope<DeletedJob>),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 409, description = "The job has not finished (code JOB_ACTIVE); cancel it first", body = V1ErrorBody),
    ))]
/// Deletes a finished job with its events and files.
pub async fn delete(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<Envelope<DeletedJob>>> {
    state.engine.delete(id).await?;
    Ok(ok(
        Some("Job deleted"),
        DeletedJob {
            job_id: id.to_string(),
        },
    ))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "v1", operation_id = "v1_cancel_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancel recorded; a queued job is cancelled at once", body = Envelope<V1Job>),
        (status = 404, description = "No such job", body = V1ErrorBody),
    ))]
/// Cancels a job.
pub async fn cancel(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<Envelope<V1Job>>> {
    state.engine.cancel(id).await?;
    let job = load(&state, id).await?;
    Ok(ok(Some("Cancellation requested"), V1Job::from(&job)))
}

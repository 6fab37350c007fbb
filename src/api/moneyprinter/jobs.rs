//! MoneyPrinter's job routes: the job object of seed 003, and cancel.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::dialect::MpErrorBody;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::JobId;
use crate::model::{Job, JobState, Stages, VideoMeta, rfc3339};

/// The seed 003 job object, with progress, stages and the result added.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MpJob {
    /// The job's id.
    pub id: String,
    /// `queued`, `running`, `completed`, `failed` or `cancelled`.
    pub state: JobState,
    /// A client asked it to stop.
    pub cancel_requested: bool,
    /// The MP4 on the server, once completed.
    pub result_path: Option<String>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; when its run started.
    pub started_at: Option<String>,
    /// RFC 3339; when it ended.
    pub completed_at: Option<String>,
    /// RFC 3339.
    pub updated_at: String,
    /// 0–100; 100 exactly when completed.
    pub progress: u8,
    /// The running stage.
    pub current_stage: Option<String>,
    /// The seed 002 slug of the subject.
    pub generation_id: String,
    /// The topic.
    pub subject: String,
    /// Stage name → `{status, detail, durationSec}`, in pipeline order.
    #[schema(value_type = Object)]
    pub stages: Stages,
    /// Measured metadata of the output: duration, width, height, fps, size.
    #[schema(value_type = Option<Object>)]
    pub result: Option<VideoMeta>,
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

/// `GET /api/jobs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobReply {
    /// Always `success`.
    pub status: &'static str,
    /// The job.
    pub job: MpJob,
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "moneyprinter", operation_id = "mp_get_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobReply),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
/// One job.
pub async fn job(State(state): State<AppState>, JobId(id): JobId) -> ApiResult<Json<JobReply>> {
    let job = state.engine.job(id).await?.ok_or(ApiError::JobNotFound)?;
    Ok(Json(JobReply {
        status: "success",
        job: MpJob::from(&job),
    }))
}

/// The answer to a cancel.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelReply {
    /// Always `success`.
    pub status: &'static str,
    /// Always `Cancellation requested.`
    pub message: &'static str,
    /// The job that was asked to stop (`/api/cancel` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "moneyprinter", operation_id = "mp_cancel_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "A queued job is cancelled at once, a running one within about a second; repeating it is harmless", body = CancelReply),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
/// Cancels one job.
pub async fn cancel_job(
    State(state): State<AppState>,
    JobId(id): JobId,
) -> ApiResult<Json<CancelReply>> {
    state.engine.cancel(id).await?;
    Ok(Json(CancelReply {
        status: "success",
        message: "Cancellation requested.",
        job_id: None,
    }))
}

#[utoipa::path(post, path = "/api/cancel", tag = "moneyprinter", operation_id = "mp_cancel_newest",
    responses(
        (status = 200, description = "Cancels the newest running job, else the newest queued one", body = CancelReply, links(
            ("job" = (operation_id = "mp_get_job", parameters(("id" = "$response.body#/jobId")))),
        )),
        (status = 404, description = "`No active job found.`", body = MpErrorBody),
    ))]
/// Cancels the newest active job.
pub async fn cancel_active(State(state): State<AppState>) -> ApiResult<Json<CancelReply>> {
    let id = state
        .engine
        .cancel_newest()
        .await?
        .ok_or(ApiError::NoActiveJob)?;
    Ok(Json(CancelReply {
        status: "success",
        message: "Cancellation requested.",
        job_id: Some(id.to_string()),
    }))
}

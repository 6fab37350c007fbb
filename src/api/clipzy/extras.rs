//! Reelay's own routes in the v1 envelope: the voices a request may name,
//! and running a job again with the same request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::views::{Envelope, V1Job, ok};
use super::{DIALECT, V1ErrorBody};
use crate::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{JobId, Submission};
use crate::engine::Voices;

#[utoipa::path(get, path = "/api/v1/voices", tag = "v1", operation_id = "v1_voices",
    responses(
        (status = 200, description = "The voices this server can narrate with, and the default", body = Envelope<Voices>),
    ))]
/// The voices a request's `voice` may name.
pub async fn voices(State(state): State<AppState>) -> Json<Envelope<Voices>> {
    ok(None, state.engine.voices().await)
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/rerun", tag = "v1", operation_id = "v1_rerun_job",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 201, description = "A new job with the same request, queued", body = Envelope<V1Job>),
        (status = 404, description = "No such job", body = V1ErrorBody),
        (status = 422, description = "The Idempotency-Key was used before with another request", body = V1ErrorBody),
    ))]
/// Queues a new job with the request of an earlier one (its webhook
/// included); the earlier job stays as it is. Once per Idempotency-Key.
pub async fn rerun(
    State(state): State<AppState>,
    JobId(id): JobId,
    submission: Submission,
) -> Response {
    let work = {
        let state = state.clone();
        let request_id = submission.request_id();
        async move { again(&state, id, request_id).await.into_response() }
    };
    let body = json!({ "rerun": id });
    submission.answer(&state, &body, DIALECT, work).await
}

async fn again(
    state: &AppState,
    id: Uuid,
    request_id: Option<String>,
) -> ApiResult<(StatusCode, Json<Envelope<V1Job>>)> {
    let job = state.engine.job(id).await?.ok_or(ApiError::JobNotFound)?;
    let mut request = job.request;
    request.request_id = request_id;
    let again = state.engine.submit(request).await?;
    Ok((
        StatusCode::CREATED,
        ok(Some("Job created"), V1Job::from(&again)),
    ))
}

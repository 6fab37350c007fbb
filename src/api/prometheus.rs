//! `GET /metrics`: every metric in the Prometheus text format, with the
//! job figures counted in the database at scrape time.
//!
//! The route exists only when `METRICS_ENABLED` is on; otherwise `/metrics`
//! is an unknown route (404). The names are in [`crate::metrics`].

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics::gauge;

use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::metrics as names;
use crate::model::JobState;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

#[utoipa::path(get, path = "/metrics", tag = "server", operation_id = "metrics",
    responses(
        (status = 200, description = "Every metric in the Prometheus text exposition format (0.0.4): \
            jobs by state, queue depth, stage durations, events appended, commit batch sizes and \
            latency, open streams by dialect, stream catch-ups, webhook deliveries, and HTTP \
            requests by method, route template and status with their latency. \
            Absent (404) when METRICS_ENABLED is false.",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "An internal error; the server log has the details",
            body = super::dialect::MpErrorBody),
    ))]
/// Renders every metric for a Prometheus scrape.
pub async fn scrape(State(state): State<AppState>) -> ApiResult<Response> {
    let counts = state.engine.job_counts().await?;
    let text = names::render(|| {
        for (job_state, count) in &counts {
            gauge!(names::JOBS, "state" => job_state.as_str()).set(*count as f64);
            if *job_state == JobState::Queued {
                gauge!(names::QUEUE_DEPTH).set(*count as f64);
            }
        }
    })
    .ok_or_else(|| {
        ApiError::Failed(
            "Metrics are not recorded: another metrics recorder was installed in this \
             process first."
                .into(),
        )
    })?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

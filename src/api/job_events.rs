//! `GET /api/v1/events`: one SSE stream of the job-level events of every
//! job, for job lists (the dashboard's among them) and integrations.
//!
//! Each message is one event of the log: a job created, started, requeued,
//! asked to cancel, finished (completed, failed or cancelled), a stage
//! started or finished, or a new progress figure. Its `id:` is the event's
//! id in the log, so a client that reconnects with `Last-Event-ID` (or
//! `?after=`) gets every job-level event after it, exactly once and in
//! order, as on the per-job streams. Without a cursor the stream starts at
//! the newest event. The stream never ends on its own; it closes when the
//! server shuts down, and EventSource reconnects.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream;
use serde::Serialize;
use uuid::Uuid;

use super::clipzy::DIALECT;
use super::dialect::with_dialect;
use super::error::ApiResult;
use super::extract::QueryParams;
use super::sse;
use super::streams::JOB_EVENTS;
use crate::AppState;
use crate::engine::{LogFeed, job_event_name, state_after};
use crate::model::{Event, EventType, JobState, Level};

/// The route, in the v1 envelope for its errors.
pub fn router() -> Router<AppState> {
    with_dialect(
        Router::new().route(JOB_EVENTS.path, get(job_events)),
        DIALECT,
    )
}

/// The query of `GET /api/v1/events`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (as `Last-Event-ID` does; the header
    /// wins when both are given).
    pub after: Option<String>,
}

/// One message of the stream: an event of a job, with the state it moved
/// the job into.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobEvent<'a> {
    /// The event's id in the log: the SSE `id` and the resume cursor.
    pub id: i64,
    /// The same name as the SSE `event:` line: `job.created`,
    /// `job.started`, `job.requeued`, `job.cancel_requested`,
    /// `job.progress`, `job.completed`, `job.failed`, `job.cancelled`,
    /// `stage.started`, `stage.completed`, `stage.skipped`, `stage.failed`.
    #[serde(rename = "type")]
    pub name: &'static str,
    /// The job.
    pub job_id: Uuid,
    /// The job's state after this event, on events that change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// The stage, on stage events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a str>,
    /// The job's progress from 0 to 1, on `job.progress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Severity.
    pub level: Level,
    /// Human text.
    pub message: &'a str,
    /// Unix seconds.
    pub timestamp: f64,
}

impl<'a> JobEvent<'a> {
    fn of(event: &'a Event, name: &'static str) -> Self {
        let progress = (event.ty == EventType::Progress)
            .then(|| event.payload.as_ref()?.get("progress")?.as_f64())
            .flatten();
        JobEvent {
            id: event.id,
            name,
            job_id: event.job_id,
            state: state_after(event),
            stage: event.stage.as_deref(),
            progress,
            level: event.level,
            message: &event.message,
            timestamp: event.timestamp,
        }
    }
}

/// The SSE frame of a job-level event.
fn frame(event: &Event) -> Option<Bytes> {
    let name = job_event_name(event)?;
    let data = serde_json::to_vec(&JobEvent::of(event, name)).ok()?;
    Some(sse::frame(Some(event.id), Some(name), &data))
}

/// Job-level events of every job, live, resumable.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "jobs",
    params(EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id.")),
    responses(
        (status = 200, description = "`text/event-stream`: one message per job-level event, each with `id:`, `event:` (its `type`) and `data:` (a JobEvent).", content_type = "text/event-stream", body = JobEvent),
        (status = 400, description = "A cursor that is not a whole number.", body = super::dialect::V1ErrorBody),
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<EventsQuery>,
) -> ApiResult<Response> {
    let cursor = sse::resume_from(&state.engine, &headers, query.after.as_deref()).await?;
    let feed = state.engine.follow_jobs(cursor).await?;
    let opening = stream::iter([sse::retry_hint()]);
    let frames = stream::unfold(feed, |mut feed: LogFeed| async move {
        loop {
            match feed.next().await {
                Ok(Some(event)) => {
                    if let Some(frame) = frame(&event) {
                        return Some((frame, feed));
                    }
                }
                Ok(None) => return None,
                Err(err) => {
                    // The client reconnects from its last id.
                    tracing::warn!(error = %err, after = feed.last_id(), "job event stream ends");
                    return None;
                }
            }
        }
    });
    let frames = futures_util::StreamExt::chain(opening, frames);
    Ok(sse::response(
        Box::pin(frames),
        Some(state.config.sse_keepalive()),
        "v1",
    ))
}

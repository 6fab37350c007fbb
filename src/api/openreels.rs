//! The OpenReels event stream (seed 001): `GET /api/v1/jobs/:id/events`.
//!
//! Without a cursor it opens with `job:snapshot`, whose `id` is the last
//! event the snapshot reflects, then sends `stage:<name>` events and ends
//! with `job:completed` or `job:failed`. With a cursor (`Last-Event-ID` or
//! `?after=`) it sends no snapshot and simply continues. Unlike the
//! original, every event carries an id, a reconnect resumes without a gap,
//! and a cancelled job never reports `job:completed`.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dialect::{Dialect, Style, V1ErrorBody, snake_case_name, with_dialect};
use super::error::{ApiError, ApiResult};
use super::extract::{JobId, QueryParams};
use super::sse;
use super::streams::OPENREELS_EVENTS;
use crate::AppState;
use crate::model::{Event, EventKind, FrameKind, Job, rfc3339};

/// Errors in the v1 envelope, as every route under `/api/v1`.
pub const DIALECT: Dialect = Dialect {
    style: Style::V1,
    field_name: snake_case_name,
};

/// The stream's one route.
pub fn router() -> Router<AppState> {
    with_dialect(
        Router::new().route(OPENREELS_EVENTS.path, get(events)),
        DIALECT,
    )
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
/// The stream's query.
pub struct CursorQuery {
    /// Resume after this event id (same as the `Last-Event-ID` header).
    pub after: Option<String>,
}

/// The whole job as the seed's web client reconstructs it: status, stages
/// and every piece of rich data produced so far.
pub fn snapshot(job: &Job) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), job.id.to_string().into());
    obj.insert("topic".into(), job.request.subject.clone().into());
    obj.insert("status".into(), job.state.as_str().into());
    obj.insert("progress".into(), job.progress.into());
    obj.insert("currentStage".into(), json!(job.current_stage));
    obj.insert("cancelRequested".into(), job.cancel_requested.into());
    obj.insert("createdAt".into(), rfc3339(job.created_at).into());
    obj.insert("startedAt".into(), json!(job.started_at.map(rfc3339)));
    obj.insert("completedAt".into(), json!(job.completed_at.map(rfc3339)));
    obj.insert("updatedAt".into(), rfc3339(job.updated_at).into());
    obj.insert("stages".into(), json!(job.stages));
    if let Ok(Value::Object(data)) = serde_json::to_value(&job.data) {
        obj.extend(data);
    }
    if let Some(error) = &job.error_message {
        obj.insert("error".into(), error.clone().into());
    }
    if let Some(path) = &job.result_path {
        obj.insert("resultPath".into(), path.clone().into());
        obj.insert("result".into(), json!(job.result));
    }
    Value::Object(obj)
}

/// The seed 001 frame of an event, or nothing for events it does not show.
fn frame_of(event: &Event) -> Bytes {
    let id = Some(event.id);
    if event.is_terminal() {
        let (name, data) = match event.kind {
            Some(EventKind::Completed) => ("job:completed", json!({})),
            Some(EventKind::Cancelled) => (
                "job:failed",
                json!({ "error": "Job cancelled.", "status": "cancelled" }),
            ),
            _ => ("job:failed", json!({ "error": event.message })),
        };
        return sse::frame(id, Some(name), data.to_string().as_bytes());
    }
    let (Some(stage), Some(kind)) = (&event.stage, event.kind) else {
        return Bytes::new();
    };
    if !kind.is_seed001_stage_kind() {
        return Bytes::new();
    }
    let mut data = Map::new();
    data.insert("stage".into(), stage.clone().into());
    data.insert("type".into(), kind.as_str().into());
    if let Some(Value::Object(fields)) = &event.payload {
        for (key, value) in fields {
            data.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    sse::frame(
        id,
        Some(&format!("stage:{stage}")),
        Value::Object(data).to_string().as_bytes(),
    )
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "openreels", operation_id = "openreels_job_events",
    params(("id" = String, Path, description = "Job id"), CursorQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "Server-Sent Events. Without a cursor: `job:snapshot` (the whole job; its `id` is the last event it reflects), then `stage:<name>` events with data `{\"stage\",\"type\",...}` (`type`: start, complete, skipped, error, results, score, cost_estimate, music, music_resolved, asset, review), then `job:completed` `{}` or `job:failed` `{\"error\"}` (a cancelled job: `{\"error\":\"Job cancelled.\",\"status\":\"cancelled\"}`), and the stream closes. With a cursor: every event after it, no snapshot. Every event has an `id`; keep-alive comments come every SSE_KEEPALIVE_SECS.",
         content_type = "text/event-stream", body = String),
        (status = 204, description = "The cursor is past the end of a finished job"),
        (status = 404, description = "No such job", body = V1ErrorBody),
    ))]
/// A job's stage events, from a snapshot or a cursor to its end.
pub async fn events(
    State(state): State<AppState>,
    JobId(id): JobId,
    QueryParams(query): QueryParams<CursorQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cursor = sse::resume_from(&state.engine, &headers, query.after.as_deref()).await?;
    let mut feed = state.engine.follow(id, cursor.unwrap_or(0));
    let head = match cursor {
        None => {
            let (job, last) = state
                .engine
                .snapshot(id)
                .await?
                .ok_or(ApiError::JobNotFound)?;
            feed.skip_to(last);
            Some(sse::frame(
                Some(last),
                Some("job:snapshot"),
                snapshot(&job).to_string().as_bytes(),
            ))
        }
        Some(cursor) => {
            let job = state.engine.job(id).await?.ok_or(ApiError::JobNotFound)?;
            if state.engine.finished_before(&job, cursor).await? {
                return Ok(sse::finished());
            }
            None
        }
    };
    let events = stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        loop {
            let event = feed.next().await?;
            let bytes = event.frame(FrameKind::Stage, frame_of);
            if event.is_terminal() {
                return Some((bytes, None));
            }
            if !bytes.is_empty() {
                return Some((bytes, Some(feed)));
            }
        }
    });
    let frames = stream::once(async { sse::retry_hint() })
        .chain(stream::iter(head))
        .chain(events);
    Ok(sse::response(
        Box::pin(frames),
        Some(state.config.sse_keepalive()),
        "openreels",
    ))
}

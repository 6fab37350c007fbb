//! MoneyPrinter's event log: `GET /api/jobs/{id}/events`, polled with
//! `after` (seeds 000 and 003), or streamed as SSE when the client asks
//! for `text/event-stream`.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::api::dialect::MpErrorBody;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{JobId, QueryParams};
use crate::api::fields::whole_number;
use crate::api::sse;
use crate::model::{Event, EventJson, FrameKind, Level};

/// Events per page when the client sets no `limit`.
pub const DEFAULT_PAGE: usize = 200;
/// Largest `limit` a client may ask for.
pub const MAX_PAGE: usize = 1000;

/// Query of the event poll. Everything arrives as text so that a bad value
/// gets a message naming the parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// Always `success`.
    status: String,
    /// The events, oldest first.
    events: Vec<EventJson<'static>>,
}

/// A parsed event poll.
pub struct EventsParams {
    /// Only events with a larger id.
    pub after: i64,
    /// At most this many.
    pub limit: usize,
    /// Only these levels.
    pub levels: Option<Vec<Level>>,
}

impl EventsQuery {
    /// Checks the parameters.
    pub fn parse(&self) -> ApiResult<EventsParams> {
        let after = whole_number(self.after.as_deref(), 0..=i64::MAX)
            .map_err(|_| ApiError::bad_request("after must be a non-negative integer."))?
            .unwrap_or(0);
        let limit = whole_number(self.limit.as_deref(), 1..=MAX_PAGE as i64)
            .map_err(|_| {
                ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_PAGE}."))
            })?
            .map_or(DEFAULT_PAGE, |n| n as usize);
        let levels = match self.level.as_deref() {
            None => None,
            Some(raw) => Some(
                raw.split(',')
                    .map(Level::parse)
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

#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "moneyprinter", operation_id = "mp_job_events",
    params(("id" = String, Path, description = "Job id"), EventsQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "SSE resume cursor")),
    responses(
        (status = 200, description = "Events with ids above `after`, oldest first. With `Accept: text/event-stream` the same event objects stream as SSE (`id: <event id>`, `data: <event>`), from the cursor (or the start) to the job's terminal event.",
         content((EventsReply = "application/json"), (String = "text/event-stream"))),
        (status = 204, description = "SSE only: the cursor is past the end of a finished job"),
        (status = 400, description = "Bad `after`, `limit` or `level`", body = MpErrorBody),
        (status = 404, description = "`Job not found.`", body = MpErrorBody),
    ))]
/// A page of a job's events, or all of them as a stream.
pub async fn events(
    State(state): State<AppState>,
    JobId(id): JobId,
    QueryParams(query): QueryParams<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let params = query.parse()?;
    if sse::wants_stream(&headers) {
        let cursor = sse::resume_from(&state.engine, &headers, query.after.as_deref())
            .await?
            .unwrap_or(0);
        return log_stream(&state, id, cursor, params.levels).await;
    }
    let events = state
        .engine
        .events(id, params.after, params.limit, params.levels.as_deref())
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
    let feed = state.engine.follow(id, cursor);
    let job = state.engine.job(id).await?.ok_or(ApiError::JobNotFound)?;
    if state.engine.finished_before(&job, cursor).await? {
        return Ok(sse::finished());
    }
    let frame = |e: &Event| e.frame(FrameKind::Log, |e| sse::frame(Some(e.id), None, e.json()));
    let events = stream::unfold(Some((feed, levels)), move |state| async move {
        let (mut feed, levels) = state?;
        loop {
            let event = feed.next().await?;
            let wanted = levels.as_ref().is_none_or(|l| l.contains(&event.level));
            if event.is_terminal() {
                // Always sent, filter or not: it tells the client the job is
                // over, so that it does not reconnect forever.
                return Some((frame(&event), None));
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
        "moneyprinter",
    ))
}

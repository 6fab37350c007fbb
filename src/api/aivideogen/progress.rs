//! AI-Video-Gen's progress stream, `GET /api/progress/{generation_id}`.
//!
//! The seed's clients open the stream before they submit, and they know a
//! job only by its generation id (the slug of its topic). So the stream
//! waits for the id to appear, follows the newest job with that slug, and
//! keeps an old finished job with the same slug from answering for the new
//! one during a short grace period.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};

use super::projector::{Projector, Status};
use super::resolve;
use crate::AppState;
use crate::api::error::ApiResult;
use crate::api::sse;
use crate::engine::{Feed, JobCreated};
use crate::model::Job;

/// Seconds between repeats of the current status.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a stream waits for a new job before it reports an old finished
/// job with the same generation id.
const GRACE: Duration = Duration::from_secs(5);

enum Phase {
    Connect,
    Resolve,
    Waiting(broadcast::Receiver<JobCreated>),
    Following(Box<Feed>, Projector),
    Done(u8),
    Over,
}

struct Progress {
    state: AppState,
    target: Arc<str>,
    connected_at: DateTime<Utc>,
    grace_until: Instant,
    deadline: Instant,
    heartbeat: Instant,
    cursor: Option<i64>,
    created: Option<broadcast::Receiver<JobCreated>>,
    last: Status,
    phase: Phase,
}

fn message(id: Option<i64>, status: &Status) -> Bytes {
    sse::frame(id, None, &status.json())
}

impl Progress {
    fn send(&mut self, id: Option<i64>, status: Status) -> Option<Bytes> {
        self.heartbeat = Instant::now() + HEARTBEAT;
        let bytes = message(id, &status);
        self.last = status;
        Some(bytes)
    }

    async fn find(&self) -> Option<Job> {
        let connected = (Instant::now() < self.grace_until).then_some(self.connected_at);
        // A store error is retried at the next heartbeat.
        resolve(&self.state, &self.target, connected)
            .await
            .unwrap_or_default()
    }

    fn follow(&mut self, job: Job) {
        let feed = self.state.engine.follow(job.id, self.cursor.unwrap_or(0));
        let projector = match self.cursor {
            Some(_) => Projector::from_job(&job),
            None => Projector::default(),
        };
        self.created = None;
        self.phase = Phase::Following(Box::new(feed), projector);
    }

    /// The next message, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            match &mut self.phase {
                Phase::Over => return None,
                Phase::Connect => {
                    // Listen for new jobs before the first lookup, so one
                    // created in between is not missed.
                    self.created = Some(self.state.engine.job_created());
                    self.phase = Phase::Resolve;
                    return self.send(None, Status::connected());
                }
                Phase::Resolve => match self.find().await {
                    Some(job) => self.follow(job),
                    None => {
                        let created = self.created.take()?;
                        self.phase = Phase::Waiting(created);
                        return self.send(None, Status::waiting());
                    }
                },
                Phase::Waiting(created) => {
                    let (heartbeat, deadline) = (self.heartbeat, self.deadline);
                    let target = self.target.clone();
                    let recheck = tokio::select! {
                        notice = created.recv() => match notice {
                            Ok(n) => *n.generation_id == *target || n.id.to_string() == *target,
                            Err(broadcast::error::RecvError::Lagged(_)) => true,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                        _ = sleep_until(heartbeat) => {
                            if let Some(job) = self.find().await {
                                self.follow(job);
                                continue;
                            }
                            return self.send(None, Status::waiting());
                        }
                        _ = sleep_until(deadline) => return None,
                    };
                    if recheck && let Some(job) = self.find().await {
                        self.follow(job);
                    }
                }
                Phase::Following(feed, projector) => {
                    let (heartbeat, deadline) = (self.heartbeat, self.deadline);
                    tokio::select! {
                        event = feed.next() => {
                            let event = event?;
                            let Some(status) = projector.apply(&event) else { continue };
                            if status.is_final() {
                                self.phase = Phase::Done(status.progress);
                            }
                            return self.send(Some(event.id), status);
                        }
                        _ = sleep_until(heartbeat) => {
                            let again = self.last.again();
                            return self.send(None, again);
                        }
                        _ = sleep_until(deadline) => return None,
                    }
                }
                Phase::Done(progress) => {
                    let done = Status::done(*progress);
                    self.phase = Phase::Over;
                    return self.send(None, done);
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/progress/{generation_id}", tag = "aivideogen", operation_id = "avg_progress",
    params(("generation_id" = String, Path, description = "Generation id (slug of the topic; the newest job with it) or job id"),
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "Server-Sent Events, unnamed: each `data:` is a status object. `connected` first; `waiting` while the id is unknown or the job is queued (a job created after connecting is picked up); then the stage statuses (generating_content, generating_scripts, generating_audio, combining_audio, generating_media, fetching_image, generating_slide, composing_video) with progress; the current status again every 2 s; `completed` or `error`, then `done`, and the stream closes. It also closes after PROGRESS_TIMEOUT_SECS. Messages from the event log carry `id:`.",
         content_type = "text/event-stream", body = Status),
        (status = 204, description = "The cursor is past the end of a finished job"),
    ))]
/// The progress stream of the newest job with a generation id.
pub async fn progress(
    State(state): State<AppState>,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cursor = sse::resume_from(&state.engine, &headers, None).await?;
    // A reconnect after the end has nothing more to hear.
    if let Some(cursor) = cursor
        && let Some(job) = resolve(&state, &target, None).await?
        && state.engine.finished_before(&job, cursor).await?
    {
        return Ok(sse::finished());
    }
    let now = Instant::now();
    let progress = Progress {
        deadline: now + state.config.progress_timeout(),
        state,
        target: target.into(),
        connected_at: Utc::now(),
        grace_until: now + GRACE,
        heartbeat: now + HEARTBEAT,
        cursor,
        created: None,
        last: Status::connected(),
        phase: Phase::Connect,
    };
    let messages = stream::unfold(progress, |mut progress| async move {
        let bytes = progress.next().await?;
        Some((bytes, progress))
    });
    let mut response = sse::response(Box::pin(messages), None, "aivideogen");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("none"));
    Ok(response)
}

//! The job-level events of every job, from a cursor on, exactly once and in
//! order: what a job list needs to stay current without following each job.
//!
//! The feed reads the committed log from the store after its cursor, and
//! when it has read everything, waits for the hub's next commit. It marks
//! the commit it has seen before each read, so a commit that lands between
//! a read and the wait still wakes it. Events of a job that the list does
//! not need (log lines, stage results) are passed over.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Engine, Result};
use crate::hub::Hub;
use crate::model::{Event, EventKind, EventType, JobState};
use crate::store::Store;

/// Events read from the store per round trip.
const PAGE: i64 = 500;

/// What a job-level event says happened, as the stream names it.
pub fn job_event_name(event: &Event) -> Option<&'static str> {
    let name = match event.kind {
        Some(EventKind::Queued) => "job.created",
        Some(EventKind::Started) => "job.started",
        Some(EventKind::CancelRequested) => "job.cancel_requested",
        Some(EventKind::Requeued) => "job.requeued",
        Some(EventKind::Completed) => "job.completed",
        Some(EventKind::Failed) => "job.failed",
        Some(EventKind::Cancelled) => "job.cancelled",
        Some(EventKind::Start) => "stage.started",
        Some(EventKind::Complete) => "stage.completed",
        Some(EventKind::Skipped) => "stage.skipped",
        Some(EventKind::Error) => "stage.failed",
        _ if event.ty == EventType::Progress => "job.progress",
        _ => return None,
    };
    Some(name)
}

/// The state a job-level event moves its job into, if it moves it.
pub fn state_after(event: &Event) -> Option<JobState> {
    match event.kind? {
        EventKind::Queued | EventKind::Requeued => Some(JobState::Queued),
        EventKind::Started => Some(JobState::Running),
        EventKind::Completed => Some(JobState::Completed),
        EventKind::Failed => Some(JobState::Failed),
        EventKind::Cancelled => Some(JobState::Cancelled),
        _ => None,
    }
}

/// Job-level events of every job after a cursor.
pub struct LogFeed {
    store: Store,
    hub: Arc<Hub>,
    committed: watch::Receiver<i64>,
    last: i64,
    backlog: VecDeque<Event>,
}

impl LogFeed {
    /// The id of the last event read (or the starting cursor).
    pub fn last_id(&self) -> i64 {
        self.last
    }

    /// The next job-level event, or `None` once the hub is closed (server
    /// shutdown).
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Ok(Some(event));
            }
            self.committed.borrow_and_update();
            let page = self.store.log_after(self.last, PAGE).await?;
            let full = page.len() as i64 == PAGE;
            if let Some(newest) = page.last() {
                self.last = newest.id;
            }
            self.backlog
                .extend(page.into_iter().filter(|e| job_event_name(e).is_some()));
            if full || !self.backlog.is_empty() {
                continue;
            }
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                }
                () = self.hub.closed() => return Ok(None),
            }
        }
    }
}

impl Engine {
    /// The job-level events of every job after `after`, then live ones;
    /// from the newest event on when `after` is `None`.
    pub async fn follow_jobs(&self, after: Option<i64>) -> Result<LogFeed> {
        let committed = self.inner.hub.watch_committed();
        let last = match after {
            Some(after) => after,
            None => self.inner.store.last_event_id().await?,
        };
        Ok(LogFeed {
            store: self.inner.store.clone(),
            hub: self.inner.hub.clone(),
            committed,
            last,
            backlog: VecDeque::new(),
        })
    }
}

//! What a running stage sees of its job, and how it reports back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use uuid::Uuid;

use super::StageError;
use crate::engine::{Engine, JobPatch};
use crate::model::{
    EventKind, EventType, Job, JobRequest, Level, NewEvent, Payload, Progress, VideoMeta, round3,
};

/// Values stages of one job hand to later stages (the scene plan, audio
/// files, ...), keyed by type.
pub type Scratch = axum::http::Extensions;

/// At most this many progress events per second and job.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// One job's view for its stages. The worker creates it when the job starts
/// and moves it from stage to stage.
pub struct StageContext {
    job: Job,
    engine: Engine,
    token: CancellationToken,
    work_dir: PathBuf,
    stage: String,
    range: (u8, u8),
    last_progress: Option<Instant>,
    scratch: Scratch,
}

impl StageContext {
    pub(crate) fn new(
        job: Job,
        engine: Engine,
        token: CancellationToken,
        work_dir: PathBuf,
    ) -> Self {
        StageContext {
            job,
            engine,
            token,
            work_dir,
            stage: String::new(),
            range: (0, 0),
            last_progress: None,
            scratch: Scratch::new(),
        }
    }

    pub(crate) fn enter(&mut self, stage: &str, range: (u8, u8)) {
        self.stage = stage.to_string();
        self.range = range;
        self.last_progress = None;
        self.job.progress = self.job.progress.max(range.0);
    }

    /// The job as it was when its run started.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's id.
    pub fn job_id(&self) -> Uuid {
        self.job.id
    }

    /// What the client asked for.
    pub fn request(&self) -> &JobRequest {
        &self.job.request
    }

    /// Name of the running stage.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The job's artifact folder; created by the worker before the first stage.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Values earlier stages of this run left for later ones.
    pub fn scratch(&mut self) -> &mut Scratch {
        &mut self.scratch
    }

    /// The job's cancellation token, for child processes and long waits.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Resolves when the job is cancelled or the server shuts down.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// `Err(Cancelled)` once the job should stop: a checkpoint.
    pub fn checkpoint(&self) -> Result<(), StageError> {
        if self.token.is_cancelled() {
            Err(StageError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Records an event of this stage. While the database cannot be
    /// written the stage waits here, retrying, unless the job is stopped.
    async fn append(&self, event: NewEvent, patch: JobPatch) -> Result<(), StageError> {
        let event = event.with_stage(self.stage.clone());
        match self
            .engine
            .append_until_written(self.job.id, vec![event], patch, &self.token)
            .await
        {
            Ok(_) => Ok(()),
            Err(_) if self.token.is_cancelled() => Err(StageError::Cancelled),
            Err(err) => {
                tracing::error!(job = %self.job.id, error = %err, "could not record an event");
                Err(StageError::failed("The job's event could not be recorded."))
            }
        }
    }

    /// Records a message of this stage, with optional data that no dialect
    /// interprets (it is shown as the event's payload).
    pub async fn log(
        &mut self,
        level: Level,
        message: impl Into<String>,
        payload: Option<Value>,
    ) -> Result<(), StageError> {
        let mut event = NewEvent::log(level, message);
        event.payload = payload;
        self.append(event, JobPatch::default()).await
    }

    /// Records an info message.
    pub async fn info(&mut self, message: impl Into<String>) -> Result<(), StageError> {
        self.log(Level::Info, message, None).await
    }

    /// Records a success message.
    pub async fn success(&mut self, message: impl Into<String>) -> Result<(), StageError> {
        self.log(Level::Success, message, None).await
    }

    /// Records a warning: something went less well than asked.
    pub async fn warn(&mut self, message: impl Into<String>) -> Result<(), StageError> {
        self.log(Level::Warning, message, None).await
    }

    /// Records an info message that marks a step of the stage (`kind`), so
    /// that progress views can follow the step without reading the text.
    pub async fn mark(
        &mut self,
        kind: EventKind,
        message: impl Into<String>,
    ) -> Result<(), StageError> {
        let event = NewEvent::log(Level::Info, message).with_kind(kind);
        self.append(event, JobPatch::default()).await
    }

    /// Reports progress within the stage, `fraction` from 0 to 1. Sent as a
    /// `progress` event when the job's percentage rises, at most four times
    /// a second.
    pub async fn progress(
        &mut self,
        fraction: f64,
        message: impl Into<String>,
    ) -> Result<(), StageError> {
        let (start, end) = self.range;
        let span = f64::from(end.saturating_sub(start));
        let percent = (f64::from(start) + span * fraction.clamp(0.0, 1.0)).floor() as u8;
        let too_soon = self
            .last_progress
            .is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL);
        if percent <= self.job.progress || too_soon {
            return Ok(());
        }
        self.last_progress = Some(Instant::now());
        self.job.progress = percent;
        let payload = Progress {
            progress: round3(f64::from(percent) / 100.0),
            stage_progress: Some(round3(fraction.clamp(0.0, 1.0))),
        };
        let event = NewEvent::log(Level::Info, message)
            .with_type(EventType::Progress)
            .with_payload(serde_json::to_value(payload).unwrap_or(Value::Null));
        let patch = JobPatch {
            progress: Some(percent),
            ..JobPatch::default()
        };
        self.append(event, patch).await
    }

    /// Records typed stage data (seed 001's rich kinds: `results`, `score`,
    /// `cost_estimate`, `music`, `asset`, `review`, ...). Payloads that the
    /// job row keeps are kept in the same commit, so the row never changes
    /// without an event.
    pub async fn emit<P: Payload>(
        &mut self,
        message: impl Into<String>,
        payload: &P,
    ) -> Result<(), StageError> {
        let event = NewEvent::typed(Level::Info, message, payload);
        let patch = JobPatch {
            data: payload.kept(),
            ..JobPatch::default()
        };
        self.append(event, patch).await
    }

    /// Records the finished video and its measured metadata.
    pub async fn set_result(
        &mut self,
        message: impl Into<String>,
        path: String,
        metadata: VideoMeta,
    ) -> Result<(), StageError> {
        let event = NewEvent::typed(Level::Success, message, &metadata);
        let patch = JobPatch {
            result: Some((path, metadata)),
            ..JobPatch::default()
        };
        self.append(event, patch).await
    }
}

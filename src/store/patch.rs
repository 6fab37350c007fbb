//! The values the job SQL takes and gives: the time of a batch, a change
//! to a job's row, a job about to be inserted, and what a cancel or a
//! delete found.

use uuid::Uuid;

use crate::model::{JobData, JobRequest, JobState, StageRecord, Stages, VideoMeta};

/// The time of a batch: every row and event it writes carries it.
#[derive(Debug, Clone)]
pub struct Now {
    /// RFC 3339, for job columns.
    pub stamp: String,
    /// Unix seconds, for events.
    pub ts: f64,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        let t = chrono::Utc::now();
        Now {
            stamp: crate::model::rfc3339(t),
            ts: t.timestamp_micros() as f64 / 1e6,
        }
    }
}

/// A change to one job's row, applied together with its events.
/// Unset fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    /// The new state.
    pub state: Option<JobState>,
    /// Raised to at least this value; progress never goes down.
    pub progress: Option<u8>,
    /// `Some(None)` clears the current stage.
    pub current_stage: Option<Option<String>>,
    /// Replaces one stage's record.
    pub stage: Option<(String, StageRecord)>,
    /// Replaces all stage records (when a job is requeued).
    pub stages: Option<Stages>,
    /// Sets the fields of the job's rich data that are set here.
    pub data: Option<JobData>,
    /// The output file and its measured metadata.
    pub result: Option<(String, VideoMeta)>,
    /// Why the job failed.
    pub error_message: Option<String>,
    /// Sets or clears the cancel request.
    pub cancel_requested: Option<bool>,
    /// Sets or clears the start of the run.
    pub started: Option<Stamp>,
    /// Stamps the end of the job.
    pub completed: bool,
    /// Counts one recovery from a crash.
    pub recovered: bool,
    /// Applies only while the job is owned by this instance (a rescue of
    /// a dead instance's job; another rescuer may have been first).
    pub fence: Option<String>,
    /// Clears the job's owner (a job going back to the queue).
    pub release: bool,
}

impl JobPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        let JobPatch {
            state,
            progress,
            current_stage,
            stage,
            stages,
            data,
            result,
            error_message,
            cancel_requested,
            started,
            completed,
            recovered,
            fence: _,
            release,
        } = self;
        state.is_none()
            && progress.is_none()
            && current_stage.is_none()
            && stage.is_none()
            && stages.is_none()
            && data.is_none()
            && result.is_none()
            && error_message.is_none()
            && cancel_requested.is_none()
            && started.is_none()
            && !completed
            && !recovered
            && !release
    }
}

/// What to do with a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Set it to the batch's time.
    Now,
    /// Clear it.
    Clear,
}

/// A job about to be inserted.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub id: Uuid,
    /// The slug of its subject.
    pub generation_id: String,
    /// What was asked for, validated.
    pub request: JobRequest,
    /// Every stage pending, in pipeline order.
    pub stages: Stages,
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled.
    CancelledQueued,
    /// The job is running; it will stop at its next checkpoint.
    Requested,
    /// The job had already finished; nothing changed.
    AlreadyFinished(JobState),
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The job and its events are gone.
    Gone,
    /// The job has not finished; nothing changed.
    Active(JobState),
}

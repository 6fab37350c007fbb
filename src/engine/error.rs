//! What the engine answers when it cannot do what was asked. Each caller
//! turns these into its own terms: the API into each dialect's envelope,
//! the worker into job events.

use crate::model::{Invalid, JobState};
use crate::store::StoreError;

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No job has that id.
    #[error("job not found")]
    JobNotFound,
    /// The job is finished; nothing more may be recorded for it.
    #[error("job has already finished")]
    Finished,
    /// The job has not finished, so it cannot be deleted.
    #[error("the job is {}", .0.as_str())]
    JobActive(JobState),
    /// The data folder's disk has less room than new jobs need.
    #[error("the disk has {free_mb} MiB free; new jobs need {min_mb} MiB")]
    DiskLow {
        /// MiB free.
        free_mb: u64,
        /// MiB needed (`MIN_FREE_DISK_MB`).
        min_mb: u64,
    },
    /// The queue holds `MAX_QUEUED_JOBS` jobs already.
    #[error("the queue is full: {0} jobs are waiting")]
    QueueFull(u64),
    /// The request breaks a rule.
    #[error("invalid request: {0:?}")]
    Invalid(Invalid),
    /// The server is shutting down and takes no more work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The database cannot be written right now (a full disk, an I/O
    /// error); the same request may succeed in a moment.
    #[error("the database cannot be written right now")]
    StoreUnavailable,
    /// A task of the engine's own failed; logged where it happened.
    #[error("an internal task failed")]
    Internal,
    /// The store failed; the details are for the log, not for clients.
    #[error(transparent)]
    Store(StoreError),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => EngineError::JobNotFound,
            StoreError::Finished => EngineError::Finished,
            StoreError::Closed => EngineError::ShuttingDown,
            StoreError::CommitFailed => EngineError::StoreUnavailable,
            other => EngineError::Store(other),
        }
    }
}

impl From<Invalid> for EngineError {
    fn from(invalid: Invalid) -> Self {
        EngineError::Invalid(invalid)
    }
}

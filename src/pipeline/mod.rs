//! Pipelines: an ordered list of named stages behind one trait.
//!
//! The worker runs a job's stages in order. Each stage owns a slice of the
//! job's progress and reports through a [`StageContext`]: messages, progress
//! within its slice, structured stage data, and cancellation. The built-in
//! media pipeline lives in [`media`]; tests define their own stages.

mod context;
pub mod media;

use std::sync::Arc;

use async_trait::async_trait;

pub use context::{Scratch, StageContext};

use crate::model::{StageRecord, Stages};
use crate::tools::ToolError;

/// How a stage ended when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    /// Finished.
    Done {
        /// A short human summary ("5 key facts").
        detail: String,
    },
    /// Not needed for this job.
    Skipped {
        /// Why not.
        reason: String,
    },
}

impl StageOutcome {
    /// Finished, with a short summary.
    pub fn done(detail: impl Into<String>) -> Self {
        StageOutcome::Done {
            detail: detail.into(),
        }
    }

    /// Not needed, and why.
    pub fn skipped(reason: impl Into<String>) -> Self {
        StageOutcome::Skipped {
            reason: reason.into(),
        }
    }
}

/// Why a stage stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    /// The job's cancellation token fired (cancel request or shutdown).
    #[error("cancelled")]
    Cancelled,
    /// The stage failed; the message becomes the job's `errorMessage`.
    #[error("{0}")]
    Failed(String),
}

impl StageError {
    /// A failure with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        StageError::Failed(message.into())
    }

    /// A file operation that failed, `what` saying which ("Could not write
    /// score.json"). A full disk says so plainly, with what to do about it.
    pub fn io(what: impl std::fmt::Display, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::StorageFull {
            StageError::Failed(format!(
                "{what}: the disk is full. Free some space or delete finished jobs, \
                 then submit the job again."
            ))
        } else {
            StageError::Failed(format!("{what}: {err}"))
        }
    }
}

impl From<ToolError> for StageError {
    fn from(err: ToolError) -> Self {
        match err {
            ToolError::Cancelled => StageError::Cancelled,
            ToolError::Failed(message) => StageError::Failed(message),
        }
    }
}

/// What a stage's `run` returns.
pub type StageResult = Result<StageOutcome, StageError>;

/// One step of a pipeline.
#[async_trait]
pub trait Stage: Send + Sync {
    /// Stable name: it appears in events, stage maps and SSE event names.
    fn name(&self) -> &str;

    /// Runs the stage for one job. It should return `Err(Cancelled)` soon
    /// after `ctx.cancelled()` fires; the worker stops waiting for it about
    /// a second later either way.
    async fn run(&self, ctx: &mut StageContext) -> StageResult;
}

/// A stage and the share of job progress it owns.
#[derive(Clone)]
pub struct StageSlot {
    /// The stage.
    pub stage: Arc<dyn Stage>,
    /// Progress percent at the start and end of the stage.
    pub range: (u8, u8),
}

/// An ordered list of stages.
#[derive(Clone, Default)]
pub struct Pipeline {
    slots: Vec<StageSlot>,
}

impl Pipeline {
    /// A pipeline with explicit progress ranges.
    pub fn with_ranges(slots: Vec<(Arc<dyn Stage>, (u8, u8))>) -> Self {
        Pipeline {
            slots: slots
                .into_iter()
                .map(|(stage, (start, end))| StageSlot {
                    stage,
                    range: (start.min(99), end.clamp(start.min(99), 99)),
                })
                .collect(),
        }
    }

    /// A pipeline whose stages share 0–99 % evenly; 100 % means completed.
    pub fn new(stages: Vec<Arc<dyn Stage>>) -> Self {
        let n = stages.len().max(1) as u32;
        let slots = stages
            .into_iter()
            .enumerate()
            .map(|(i, stage)| {
                let start = (i as u32 * 99 / n) as u8;
                let end = ((i as u32 + 1) * 99 / n) as u8;
                (stage, (start, end))
            })
            .collect();
        Pipeline::with_ranges(slots)
    }

    /// The stages in order, with their progress ranges.
    pub fn slots(&self) -> &[StageSlot] {
        &self.slots
    }

    /// The stage map of a new job: every stage pending, in order.
    pub fn initial_stages(&self) -> Stages {
        self.slots
            .iter()
            .map(|slot| (slot.stage.name().to_string(), StageRecord::pending()))
            .collect()
    }

    /// True for a pipeline with no stages, which cannot run a job.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

//! A job row: its state, its stages, the rich data its stages produced and
//! its result.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::media::{CostEstimate, MusicTrack, NarrationTimeline, Plan, Research, Review};
use super::{JobRequest, VideoMeta};

/// Where a job is in its life. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker slot.
    Queued,
    /// A worker runs its stages.
    Running,
    /// Every stage finished; the result is there.
    Completed,
    /// A stage failed, or the server stopped twice while it ran.
    Failed,
    /// A client asked it to stop.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of a job's life.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The word stored in the database and shown by the seed 003 routes.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state a stored word names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Completed, failed and cancelled jobs are finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }
}

/// Per-stage status inside a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// Not started in this run.
    Pending,
    /// Running now.
    Running,
    /// Finished.
    Done,
    /// Not needed for this job.
    Skipped,
    /// Failed or was cancelled.
    Error,
}

impl StageStatus {
    /// True once the stage has nothing more to do in this run.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            StageStatus::Done | StageStatus::Skipped | StageStatus::Error
        )
    }
}

/// What the job row records about one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    /// Where the stage is.
    pub status: StageStatus,
    /// Its summary when done, its reason when skipped, its error when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long it ran, in seconds, once it is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<f64>,
}

impl StageRecord {
    /// A stage that has not started.
    pub fn pending() -> Self {
        StageRecord::new(StageStatus::Pending, None, None)
    }

    /// A record with every field given.
    pub fn new(status: StageStatus, detail: Option<String>, duration_sec: Option<f64>) -> Self {
        StageRecord {
            status,
            detail,
            duration_sec,
        }
    }
}

/// Stage name → record, in pipeline order. Every dialect shows stages in
/// the order the pipeline runs them, so the map keeps insertion order.
pub type Stages = IndexMap<String, StageRecord>;

/// Output frame shape of the rendered video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Aspect {
    /// 9:16, the short-video default.
    #[serde(rename = "9:16")]
    Portrait,
    /// 16:9.
    #[serde(rename = "16:9")]
    Landscape,
    /// 1:1.
    #[serde(rename = "1:1")]
    Square,
}

impl Aspect {
    /// Every word a client may use for a shape.
    pub const WORDS: [(&str, Aspect); 8] = [
        ("9:16", Aspect::Portrait),
        ("portrait", Aspect::Portrait),
        ("vertical", Aspect::Portrait),
        ("16:9", Aspect::Landscape),
        ("landscape", Aspect::Landscape),
        ("horizontal", Aspect::Landscape),
        ("1:1", Aspect::Square),
        ("square", Aspect::Square),
    ];

    /// The shape a client's word names: `9:16`, `portrait`, `16:9`, ...
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::WORDS
            .iter()
            .find(|(word, _)| *word == s)
            .map(|(_, aspect)| *aspect)
    }

    /// The ratio as clients write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::Portrait => "9:16",
            Aspect::Landscape => "16:9",
            Aspect::Square => "1:1",
        }
    }

    /// The full-size frame for this shape.
    pub fn frame(self) -> (u32, u32) {
        match self {
            Aspect::Portrait => (1080, 1920),
            Aspect::Landscape => (1920, 1080),
            Aspect::Square => (1080, 1080),
        }
    }
}

/// Rich data that stages keep on the job row, so that a snapshot shows it
/// without replaying the log. Each field is set by the stage named beside
/// it; the JSON keys are seed 001's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobData {
    /// research: key facts and mood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub research_data: Option<Research>,
    /// director: the scene plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<Plan>,
    /// director: tokens and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_estimate: Option<CostEstimate>,
    /// tts: when each scene is spoken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narration: Option<NarrationTimeline>,
    /// visuals: the music bed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub music_track: Option<MusicTrack>,
    /// critic: the review of the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critic_review: Option<Review>,
}

/// A job row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// UUID v4, the id every route takes.
    pub id: Uuid,
    /// The seed 002 slug of the topic; not unique.
    pub generation_id: String,
    /// What the client asked for, normalised.
    pub request: JobRequest,
    /// Where the job is.
    pub state: JobState,
    /// A client asked it to stop; a running job stops at its next checkpoint.
    pub cancel_requested: bool,
    /// 0–100; never decreases within a run, 100 exactly when completed.
    pub progress: u8,
    /// The running stage, or `None` when the job is not running.
    pub current_stage: Option<String>,
    /// Every stage's record, in pipeline order.
    pub stages: Stages,
    /// Rich data produced by stages.
    pub data: JobData,
    /// The output file, once rendered.
    pub result_path: Option<String>,
    /// The output's measured metadata, once rendered.
    pub result: Option<VideoMeta>,
    /// Why the job failed.
    pub error_message: Option<String>,
    /// How often a crash interrupted it and it was requeued.
    pub recoveries: u32,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its current (or last) run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub completed_at: Option<DateTime<Utc>>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// Seconds from the start of the last run to its end.
    pub fn processing_seconds(&self) -> Option<f64> {
        let (start, end) = (self.started_at?, self.completed_at?);
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }

    /// The running stage, but only while the job runs: a finished job has
    /// none, whatever its row last said.
    pub fn running_stage(&self) -> Option<&str> {
        self.current_stage
            .as_deref()
            .filter(|_| self.state == JobState::Running)
    }
}

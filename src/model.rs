//! The job and event types every dialect projects from.
//!
//! A job row and its append-only event log are the whole state of the
//! system. The API modules translate these into each seed's shapes; nothing
//! here knows about HTTP.

use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Where a job is in its life. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

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

/// Severity of an event, as seed 000 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Success,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Level::Info,
            "success" => Level::Success,
            "warning" => Level::Warning,
            "error" => Level::Error,
            _ => return None,
        })
    }
}

/// Per-stage status inside a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    Pending,
    Running,
    Done,
    Skipped,
    Error,
}

/// What the job row records about one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    pub status: StageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<f64>,
}

impl StageRecord {
    pub fn pending() -> Self {
        StageRecord {
            status: StageStatus::Pending,
            detail: None,
            duration_sec: None,
        }
    }
}

/// Output frame shape of the rendered video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Aspect {
    #[serde(rename = "9:16")]
    Portrait,
    #[serde(rename = "16:9")]
    Landscape,
    #[serde(rename = "1:1")]
    Square,
}

impl Aspect {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "9:16" | "portrait" | "vertical" => Aspect::Portrait,
            "16:9" | "landscape" | "horizontal" => Aspect::Landscape,
            "1:1" | "square" => Aspect::Square,
            _ => return None,
        })
    }

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

/// What a client asked for, normalised from whichever dialect it spoke.
/// Stored with the job as JSON, so fields only ever get added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct JobRequest {
    /// The topic of the video.
    pub subject: String,
    /// A narration script; when present, research is skipped.
    pub script: Option<String>,
    /// espeak-ng voice (or speech API voice) for the narration.
    pub voice: Option<String>,
    /// LLM model name for research and the scene plan.
    pub ai_model: Option<String>,
    /// Number of scenes the director should plan.
    pub paragraph_number: Option<u32>,
    /// Extra instructions for the director.
    pub custom_prompt: Option<String>,
    /// Tone of the narration (AI-Video-Gen's `tone`).
    pub tone: Option<String>,
    /// Language of the narration (AI-Video-Gen's `language`).
    pub language: Option<String>,
    /// Subtitle position: `top`, `center` or `bottom`.
    pub subtitles_position: Option<String>,
    /// Subtitle colour, `#rrggbb` or a colour name.
    pub color: Option<String>,
    /// Mix a music track from the library under the narration.
    pub use_music: bool,
    /// ffmpeg threads for the render.
    pub threads: Option<u32>,
    /// Output frame shape.
    pub aspect: Option<Aspect>,
    /// Exact output size, overriding the aspect's full-size frame.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Which API created the job (`moneyprinter`, `aivideogen`, `v1`).
    pub dialect: Option<String>,
}

/// A job row.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub generation_id: String,
    pub request: JobRequest,
    pub state: JobState,
    pub cancel_requested: bool,
    pub progress: u8,
    pub current_stage: Option<String>,
    /// Stage name → record, in pipeline order.
    pub stages: Map<String, Value>,
    /// Rich data produced by stages (`researchData`, `score`, ...).
    pub data: Map<String, Value>,
    pub result_path: Option<String>,
    pub result: Option<Value>,
    pub error_message: Option<String>,
    pub recoveries: u32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// Seconds from the start of the last run to its end.
    pub fn processing_seconds(&self) -> Option<f64> {
        let (start, end) = (self.started_at?, self.completed_at?);
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }
}

/// RFC 3339 UTC with milliseconds and `Z`, the one timestamp format of the API.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The seed 002 rule for a generation id: first 30 characters of the topic,
/// spaces and slashes become `_`, and `: " ' ? !` are removed.
pub fn generation_id(topic: &str) -> String {
    topic
        .chars()
        .take(30)
        .filter(|c| !matches!(c, ':' | '"' | '\'' | '?' | '!'))
        .map(|c| {
            if matches!(c, ' ' | '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Markers that tie an event to a stage or to the job's life cycle, used by
/// the SSE dialects to project the log.
pub mod kind {
    pub const QUEUED: &str = "queued";
    pub const STARTED: &str = "started";
    pub const CANCEL_REQUESTED: &str = "cancel_requested";
    pub const REQUEUED: &str = "requeued";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const START: &str = "start";
    pub const COMPLETE: &str = "complete";
    pub const SKIPPED: &str = "skipped";
    pub const ERROR: &str = "error";
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub ty: String,
    pub level: Level,
    pub message: String,
    pub stage: Option<String>,
    pub kind: Option<String>,
    pub payload: Option<Value>,
}

impl NewEvent {
    /// A plain `log` event.
    pub fn log(level: Level, message: impl Into<String>) -> Self {
        NewEvent {
            ty: "log".into(),
            level,
            message: message.into(),
            stage: None,
            kind: None,
            payload: None,
        }
    }

    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    pub fn with_type(mut self, ty: impl Into<String>) -> Self {
        self.ty = ty.into();
        self
    }
}

/// An event as the API shows it (seeds 000 and 003), with the stage it
/// belongs to and its kind when it has them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventJson<'a> {
    /// Global, strictly increasing; the `after` cursor and the SSE `id`.
    pub id: i64,
    /// `log`, `progress`, `error`, ...
    #[serde(rename = "type")]
    pub ty: &'a str,
    pub level: Level,
    pub message: &'a str,
    /// Structured data; `{"progress": 0.42}` for `progress` events.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<&'a Value>,
    /// Unix seconds.
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a str>,
    /// `queued`, `started`, `start`, `complete`, `results`, `completed`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
}

/// A committed event. Immutable once created; its JSON form is rendered once
/// and shared by every poll and stream that sends it.
#[derive(Debug)]
pub struct Event {
    pub id: i64,
    pub job_id: Uuid,
    pub ty: String,
    pub level: Level,
    pub message: String,
    pub stage: Option<String>,
    pub kind: Option<String>,
    pub payload: Option<Value>,
    /// Unix seconds.
    pub timestamp: f64,
    json: OnceLock<Bytes>,
    frames: [OnceLock<Bytes>; 2],
}

/// Which pre-rendered SSE frame of an event is wanted.
#[derive(Debug, Clone, Copy)]
pub enum FrameKind {
    /// Seed 000 as SSE: `id` + `data` of the event object.
    Log = 0,
    /// Seed 001: `id` + `event: stage:<name>` + the stage data.
    Stage = 1,
}

impl Event {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: i64,
        job_id: Uuid,
        ty: String,
        level: Level,
        message: String,
        stage: Option<String>,
        kind: Option<String>,
        payload: Option<Value>,
        timestamp: f64,
    ) -> Self {
        Event {
            id,
            job_id,
            ty,
            level,
            message,
            stage,
            kind,
            payload,
            timestamp,
            json: OnceLock::new(),
            frames: Default::default(),
        }
    }

    /// The seed 000 event object as JSON bytes, rendered once.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            let view = EventJson {
                id: self.id,
                ty: &self.ty,
                level: self.level,
                message: &self.message,
                payload: self.payload.as_ref(),
                timestamp: self.timestamp,
                stage: self.stage.as_deref(),
                kind: self.kind.as_deref(),
            };
            Bytes::from(serde_json::to_vec(&view).unwrap_or_default())
        })
    }

    /// A cached SSE frame, built by `build` the first time it is asked for.
    /// Every subscriber of a job shares the same bytes.
    pub fn frame(&self, which: FrameKind, build: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.frames[which as usize]
            .get_or_init(|| build(self))
            .clone()
    }

    /// True for the event that ends a job's log.
    pub fn is_terminal(&self) -> bool {
        self.stage.is_none()
            && matches!(
                self.kind.as_deref(),
                Some(kind::COMPLETED | kind::FAILED | kind::CANCELLED)
            )
    }
}

/// A float as JSON, rounded to milliseconds so timestamps print compactly.
pub fn json_f64(x: f64) -> Value {
    let rounded = (x * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(rounded)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_id_follows_the_seed_rule() {
        assert_eq!(
            generation_id("Introduction to Machine Learning basics"),
            "Introduction_to_Machine_Learni"
        );
        assert_eq!(
            generation_id("What's up? A/B \"test\"!"),
            "Whats_up_A_B_test"
        );
        assert_eq!(generation_id("a:b"), "ab");
    }

    #[test]
    fn event_json_has_the_seed_fields() {
        let ev = Event::new(
            7,
            Uuid::nil(),
            "log".into(),
            Level::Info,
            "hello".into(),
            None,
            None,
            None,
            1710499805.1234,
        );
        let v: Value = serde_json::from_slice(ev.json()).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["type"], "log");
        assert_eq!(v["payload"], Value::Null);
        assert_eq!(v["timestamp"], 1710499805.1234);
    }
}

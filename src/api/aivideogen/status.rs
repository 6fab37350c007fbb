//! The seed 002 view of a job: its event log folded into status objects
//! `{"status","progress","message","timestamp"}`, following the stage table
//! of the design (research → generating_content, director →
//! generating_scripts, tts → generating_audio / combining_audio, visuals →
//! generating_media / fetching_image / generating_slide, assembly and critic
//! → composing_video).

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::model::{Event, Job, JobState, Level, kind};

/// One seed 002 message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `connected`, `waiting`, `started`, `generating_content`, ...,
    /// `completed`, `error` or `done`.
    pub status: &'static str,
    /// 0–100.
    pub progress: u8,
    pub message: String,
    /// `HH:MM:SS`, UTC.
    pub timestamp: String,
}

impl Status {
    pub fn now(status: &'static str, progress: u8, message: impl Into<String>) -> Self {
        Status {
            status,
            progress,
            message: message.into(),
            timestamp: Utc::now().format("%H:%M:%S").to_string(),
        }
    }

    /// The same status with the current time, for heartbeats.
    pub fn again(&self) -> Self {
        Status::now(self.status, self.progress, self.message.clone())
    }

    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn connected() -> Self {
        Status::now("connected", 0, "📡 Connected to progress stream")
    }

    pub fn waiting() -> Self {
        Status::now("waiting", 0, "⏳ Waiting for generation to start...")
    }

    pub fn done(progress: u8) -> Self {
        Status::now("done", progress, "✅ Stream ended")
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status, "completed" | "error")
    }
}

fn icon(status: &str) -> &'static str {
    match status {
        "generating_content" => "📝",
        "generating_scripts" => "📜",
        "generating_audio" => "🎤",
        "combining_audio" => "🎧",
        "generating_media" | "fetching_image" => "🔎",
        "generating_slide" => "🖼️",
        "composing_video" => "🎞️",
        _ => "⚙️",
    }
}

/// The seed 002 status of a stage of the built-in pipeline.
fn stage_status(stage: &str, event: &Event) -> &'static str {
    match stage {
        "research" => "generating_content",
        "director" => "generating_scripts",
        "tts" if event.message.starts_with("Combining") => "combining_audio",
        "tts" => "generating_audio",
        "visuals" if event.kind.as_deref() == Some("asset") => {
            match event
                .payload
                .as_ref()
                .and_then(|p| p["visualType"].as_str())
            {
                Some("title_card") => "generating_slide",
                _ => "fetching_image",
            }
        }
        "visuals" if event.message.starts_with("Searching for footage") => "fetching_image",
        "visuals" => "generating_media",
        "assembly" | "critic" => "composing_video",
        _ => "processing",
    }
}

/// Folds events into statuses, remembering where the job is.
#[derive(Debug, Clone)]
pub struct Projector {
    progress: u8,
    current: Status,
}

impl Default for Projector {
    fn default() -> Self {
        Projector {
            progress: 0,
            current: Status::waiting(),
        }
    }
}

impl Projector {
    /// Starts from a job row, for a stream that resumes mid-log.
    pub fn from_job(job: &Job) -> Self {
        let progress = job.progress;
        let current = match (job.state, job.current_stage.as_deref()) {
            (JobState::Queued, _) => Status::waiting(),
            (JobState::Running, Some(stage)) => {
                let probe = Event::new(
                    0,
                    job.id,
                    "log".into(),
                    Level::Info,
                    String::new(),
                    None,
                    None,
                    None,
                    0.0,
                );
                let status = stage_status(stage, &probe);
                Status::now(
                    status,
                    progress,
                    format!("{} Working on {stage}...", icon(status)),
                )
            }
            (JobState::Running, None) => {
                Status::now("started", progress, "🚀 Starting generation...")
            }
            (JobState::Completed, _) => {
                Status::now("completed", 100, "✅ Video generation complete!")
            }
            (JobState::Failed, _) => Status::now(
                "error",
                progress,
                format!(
                    "❌ Error: {}",
                    job.error_message.as_deref().unwrap_or("generation failed")
                ),
            ),
            (JobState::Cancelled, _) => Status::now("error", progress, "❌ Error: Job cancelled."),
        };
        Projector { progress, current }
    }

    /// The latest status.
    pub fn current(&self) -> &Status {
        &self.current
    }

    /// The status an event produces, if it produces one.
    pub fn apply(&mut self, event: &Event) -> Option<Status> {
        if let Some(p) = event
            .payload
            .as_ref()
            .and_then(|p| p.get("jobProgress"))
            .and_then(Value::as_u64)
        {
            self.progress = self.progress.max(p.min(100) as u8);
        }
        if event.ty == "progress"
            && let Some(p) = event
                .payload
                .as_ref()
                .and_then(|p| p.get("progress"))
                .and_then(Value::as_f64)
        {
            self.progress = self
                .progress
                .max((p * 100.0).round().clamp(0.0, 100.0) as u8);
        }
        let status = match (event.stage.as_deref(), event.kind.as_deref()) {
            (None, Some(kind::QUEUED)) => Status::now(
                "waiting",
                self.progress,
                "⏳ Waiting for generation to start...",
            ),
            (None, Some(kind::REQUEUED)) => {
                // The next run starts from the beginning.
                self.progress = 0;
                Status::now("waiting", 0, format!("⏳ {}", event.message))
            }
            (None, Some(kind::STARTED)) => {
                Status::now("started", self.progress, "🚀 Starting generation...")
            }
            (None, Some(kind::COMPLETED)) => {
                self.progress = 100;
                Status::now("completed", 100, "✅ Video generation complete!")
            }
            (None, Some(kind::FAILED)) => Status::now(
                "error",
                self.progress,
                format!("❌ Error: {}", event.message),
            ),
            (None, Some(kind::CANCELLED)) => {
                Status::now("error", self.progress, "❌ Error: Job cancelled.")
            }
            (None, _) if event.level == Level::Warning => Status::now(
                self.current.status,
                self.progress,
                format!("⚠️ {}", event.message),
            ),
            (None, _) => return None,
            (Some(stage), _) => {
                let status = stage_status(stage, event);
                let icon = if event.level == Level::Warning {
                    "⚠️"
                } else {
                    icon(status)
                };
                Status::now(status, self.progress, format!("{icon} {}", event.message))
            }
        };
        self.current = status.clone();
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn ev(
        stage: Option<&str>,
        kind: Option<&str>,
        ty: &str,
        message: &str,
        payload: Option<Value>,
    ) -> Event {
        Event::new(
            1,
            Uuid::nil(),
            ty.into(),
            Level::Info,
            message.into(),
            stage.map(Into::into),
            kind.map(Into::into),
            payload,
            0.0,
        )
    }

    #[test]
    fn the_stage_table_maps_to_seed_statuses_with_progress() {
        let mut p = Projector::default();
        let statuses: Vec<(&str, u8)> = [
            ev(None, Some("queued"), "log", "Job queued.", None),
            ev(None, Some("started"), "log", "Starting", None),
            ev(
                Some("research"),
                Some("start"),
                "log",
                "x",
                Some(json!({"jobProgress": 0})),
            ),
            ev(
                Some("director"),
                Some("start"),
                "log",
                "x",
                Some(json!({"jobProgress": 10})),
            ),
            ev(
                Some("tts"),
                None,
                "log",
                "Generating audio for scene 1/2",
                None,
            ),
            ev(
                Some("tts"),
                None,
                "progress",
                "x",
                Some(json!({"progress": 0.35})),
            ),
            ev(Some("tts"), None, "log", "Combining narration audio", None),
            ev(
                Some("visuals"),
                None,
                "log",
                "Searching for footage: sea",
                None,
            ),
            ev(
                Some("visuals"),
                Some("asset"),
                "log",
                "x",
                Some(json!({"visualType": "title_card"})),
            ),
            ev(
                Some("assembly"),
                Some("start"),
                "log",
                "x",
                Some(json!({"jobProgress": 80})),
            ),
            ev(
                None,
                Some("completed"),
                "log",
                "Video generation complete",
                None,
            ),
        ]
        .iter()
        .filter_map(|e| p.apply(e))
        .map(|s| (s.status, s.progress))
        .collect();
        assert_eq!(
            statuses,
            [
                ("waiting", 0),
                ("started", 0),
                ("generating_content", 0),
                ("generating_scripts", 10),
                ("generating_audio", 10),
                ("generating_audio", 35),
                ("combining_audio", 35),
                ("fetching_image", 35),
                ("generating_slide", 35),
                ("composing_video", 80),
                ("completed", 100),
            ]
        );
        assert!(p.current().is_final());
        assert_eq!(Status::waiting().timestamp.len(), 8);
    }
}

//! The seed 002 view of a job: its event log folded into status objects
//! `{"status","progress","message","timestamp"}`, following the stage table
//! of the design (research → generating_content, director →
//! generating_scripts, tts → generating_audio / combining_audio, visuals →
//! generating_media / fetching_image / generating_slide, assembly and critic
//! → composing_video).
//!
//! Statuses and progress come from event kinds and typed payloads only.
//! Messages are passed through as text and never read, so rewording a log
//! line cannot change a status.

use chrono::Utc;
use serde::Serialize;

use crate::model::{
    Asset, Event, EventKind, Job, JobState, Level, StageCompleted, StageSkipped, StageStarted,
    VisualType,
};

/// One seed 002 message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `connected`, `waiting`, `started`, `generating_content`, ...,
    /// `completed`, `error` or `done`.
    pub status: &'static str,
    /// 0–100.
    pub progress: u8,
    /// What is happening, for a person.
    pub message: String,
    /// `HH:MM:SS`, UTC.
    pub timestamp: String,
}

impl Status {
    /// A status stamped with the current time.
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

    /// The message as JSON bytes.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The first message of every stream.
    pub fn connected() -> Self {
        Status::now("connected", 0, "📡 Connected to progress stream")
    }

    /// While the job is unknown or queued.
    pub fn waiting() -> Self {
        Status::now("waiting", 0, "⏳ Waiting for generation to start...")
    }

    /// The last message of a stream.
    pub fn done(progress: u8) -> Self {
        Status::now("done", progress, "✅ Stream ended")
    }

    /// True for `completed` and `error`, after which only `done` follows.
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

/// The seed 002 status of a stage of the built-in pipeline, refined by the
/// event's kind where the stage has several steps. Without an event, the
/// stage's usual status.
fn stage_status(stage: &str, event: Option<&Event>) -> &'static str {
    let kind = event.and_then(|e| e.kind);
    match stage {
        "research" => "generating_content",
        "director" => "generating_scripts",
        "tts" if kind == Some(EventKind::AudioJoin) => "combining_audio",
        "tts" => "generating_audio",
        "visuals" if kind == Some(EventKind::Asset) => {
            match event.and_then(Event::decode::<Asset>) {
                Some(asset) if asset.visual_type == VisualType::TitleCard => "generating_slide",
                _ => "fetching_image",
            }
        }
        "visuals" if kind == Some(EventKind::FootageSearch) => "fetching_image",
        "visuals" => "generating_media",
        "assembly" | "critic" => "composing_video",
        _ => "processing",
    }
}

/// The job progress a stage event reports, if it reports one.
fn stage_progress(event: &Event) -> Option<u8> {
    match event.kind? {
        EventKind::Start => event.decode::<StageStarted>().map(|p| p.job_progress),
        EventKind::Complete => event.decode::<StageCompleted>().map(|p| p.job_progress),
        EventKind::Skipped => event.decode::<StageSkipped>().map(|p| p.job_progress),
        _ => None,
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
                let status = stage_status(stage, None);
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
        if let Some(p) = stage_progress(event) {
            self.progress = self.progress.max(p.min(100));
        }
        if let Some(p) = event.progress() {
            self.progress = self
                .progress
                .max((p * 100.0).round().clamp(0.0, 100.0) as u8);
        }
        let status = match (event.stage.as_deref(), event.kind) {
            (None, Some(EventKind::Queued)) => Status::now(
                "waiting",
                self.progress,
                "⏳ Waiting for generation to start...",
            ),
            (None, Some(EventKind::Requeued)) => {
                // The next run starts from the beginning.
                self.progress = 0;
                Status::now("waiting", 0, format!("⏳ {}", event.message))
            }
            (None, Some(EventKind::Started)) => {
                Status::now("started", self.progress, "🚀 Starting generation...")
            }
            (None, Some(EventKind::Completed)) => {
                self.progress = 100;
                Status::now("completed", 100, "✅ Video generation complete!")
            }
            (None, Some(EventKind::Failed)) => Status::now(
                "error",
                self.progress,
                format!("❌ Error: {}", event.message),
            ),
            (None, Some(EventKind::Cancelled)) => {
                Status::now("error", self.progress, "❌ Error: Job cancelled.")
            }
            (None, _) if event.level == Level::Warning => Status::now(
                self.current.status,
                self.progress,
                format!("⚠️ {}", event.message),
            ),
            (None, _) => return None,
            (Some(stage), _) => {
                let status = stage_status(stage, Some(event));
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
    use crate::model::{AssetSource, NewEvent, Payload, Progress};
    use uuid::Uuid;

    fn ev(stage: Option<&str>, kind: Option<EventKind>, message: &str) -> Event {
        let mut new = NewEvent::log(Level::Info, message);
        new.stage = stage.map(Into::into);
        new.kind = kind;
        Event::committed(1, Uuid::nil(), new, 0.0)
    }

    fn typed<P: Payload>(stage: &str, payload: &P, message: &str) -> Event {
        let new = NewEvent::typed(Level::Info, message, payload).with_stage(stage);
        Event::committed(1, Uuid::nil(), new, 0.0)
    }

    fn progress(stage: &str, fraction: f64, message: &str) -> Event {
        let payload = serde_json::to_value(Progress {
            progress: fraction,
            stage_progress: None,
        })
        .unwrap();
        let new = NewEvent::log(Level::Info, message)
            .with_type(crate::model::EventType::Progress)
            .with_stage(stage)
            .with_payload(payload);
        Event::committed(1, Uuid::nil(), new, 0.0)
    }

    /// A run through every stage, with `say` giving each event its text.
    fn run(say: impl Fn(&str) -> String) -> Vec<Event> {
        let start =
            |stage: &str, p: u8| typed(stage, &StageStarted { job_progress: p }, &say("start"));
        let asset = Asset {
            scene_index: 0,
            visual_type: VisualType::TitleCard,
            path: "scene-001.png".into(),
            source: AssetSource::Generated,
            query: "sea".into(),
        };
        vec![
            ev(None, Some(EventKind::Queued), &say("queued")),
            ev(None, Some(EventKind::Started), &say("started")),
            start("research", 0),
            start("director", 10),
            ev(Some("tts"), None, &say("Generating audio for scene 1/2")),
            progress("tts", 0.35, &say("progress")),
            ev(
                Some("tts"),
                Some(EventKind::AudioJoin),
                &say("Combining narration audio"),
            ),
            ev(
                Some("visuals"),
                Some(EventKind::FootageSearch),
                &say("Searching for footage: sea"),
            ),
            typed("visuals", &asset, &say("asset")),
            start("assembly", 80),
            ev(
                None,
                Some(EventKind::Completed),
                &say("Video generation complete"),
            ),
        ]
    }

    fn statuses(events: &[Event]) -> Vec<(&'static str, u8)> {
        let mut p = Projector::default();
        events
            .iter()
            .filter_map(|e| p.apply(e))
            .map(|s| (s.status, s.progress))
            .collect()
    }

    #[test]
    fn the_stage_table_maps_to_seed_statuses_with_progress() {
        let events = run(str::to_string);
        assert_eq!(
            statuses(&events),
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
        let mut p = Projector::default();
        events.iter().for_each(|e| {
            p.apply(e);
        });
        assert!(p.current().is_final());
        assert_eq!(Status::waiting().timestamp.len(), 8);
    }

    #[test]
    fn rewording_every_message_changes_no_status() {
        let plain = statuses(&run(str::to_string));
        let reworded = statuses(&run(|m| format!("Reworded: {}", m.len())));
        assert_eq!(plain, reworded);
    }
}

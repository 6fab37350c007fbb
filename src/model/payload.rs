//! Typed event payloads: what the worker and the stages write, and what
//! the dialects project from. Each payload belongs to one [`EventKind`];
//! its JSON is the wire shape seed 001 clients read, so field names follow
//! the seed, not Rust. The worker's stage payloads are here; what the
//! media stages produce is in [`super::media`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{EventKind, JobData};

/// A struct that travels as the payload of one kind of event.
pub trait Payload: Serialize + DeserializeOwned {
    /// The kind of the events that carry it.
    const KIND: EventKind;

    /// This payload as the job row keeps it, for the payloads that a
    /// snapshot must show without replaying the log.
    fn kept(&self) -> Option<JobData> {
        None
    }
}

/// Implements [`Payload`] for a struct, optionally kept in one field of
/// [`JobData`] (cloned from the payload, or from one of its fields).
macro_rules! payload {
    ($ty:ty, $kind:ident) => {
        impl Payload for $ty {
            const KIND: EventKind = EventKind::$kind;
        }
    };
    ($ty:ty, $kind:ident, |$p:ident| $field:ident = $value:expr) => {
        impl Payload for $ty {
            const KIND: EventKind = EventKind::$kind;

            fn kept(&self) -> Option<JobData> {
                let $p = self;
                Some(JobData {
                    $field: Some($value),
                    ..JobData::default()
                })
            }
        }
    };
}

pub(super) use payload;

/// A stage began; where the job's progress stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStarted {
    /// Job progress at the start of the stage.
    pub job_progress: u8,
}
payload!(StageStarted, Start);

/// A stage finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageCompleted {
    /// Short human summary ("5 key facts").
    pub detail: String,
    /// How long it ran.
    pub duration_sec: f64,
    /// Job progress at the end of the stage.
    pub job_progress: u8,
}
payload!(StageCompleted, Complete);

/// A stage was not needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSkipped {
    /// Why not.
    pub reason: String,
    /// Job progress at the end of the stage.
    pub job_progress: u8,
}
payload!(StageSkipped, Skipped);

/// A stage failed or was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFailed {
    /// What went wrong (`Cancelled.` for a cancel).
    pub error: String,
}
payload!(StageFailed, Error);

/// The payload of a `progress` event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Job progress from 0 to 1.
    pub progress: f64,
    /// How far the event's stage is, from 0 to 1, for clients that draw
    /// one bar per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_progress: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Asset, AssetSource, NarrationTimeline, Plan, Research, ScoreEvent, VideoMeta, VisualType,
    };
    use serde_json::{Value, json};

    /// A kept payload must read back from the row's JSON into the field it
    /// was kept in.
    fn kept_round_trip<P: Payload>(payload: P) -> JobData {
        let data = payload.kept().expect("kept");
        let json = serde_json::to_string(&data).unwrap();
        let back: JobData = serde_json::from_str(&json).unwrap();
        assert_eq!(back, data);
        back
    }

    #[test]
    fn kept_payloads_land_in_their_own_fields() {
        let research = Research {
            summary: "s".into(),
            ..Research::default()
        };
        assert_eq!(
            kept_round_trip(research.clone()).research_data,
            Some(research)
        );
        let plan = Plan {
            title: "t".into(),
            ..Plan::default()
        };
        let data = kept_round_trip(ScoreEvent {
            score: plan.clone(),
        });
        assert_eq!(data.score, Some(plan));
        assert!(Asset::KIND.is_seed001_stage_kind());
        assert!(VideoMeta::default().kept().is_none());
    }

    #[test]
    fn wire_shapes_follow_the_seeds() {
        let asset = Asset {
            scene_index: 1,
            visual_type: VisualType::TitleCard,
            path: "scene-002.png".into(),
            source: AssetSource::Generated,
            query: "sea".into(),
        };
        assert_eq!(
            serde_json::to_value(&asset).unwrap(),
            json!({"sceneIndex": 1, "visualType": "title_card", "path": "scene-002.png",
                   "source": "generated", "query": "sea"})
        );
        let done = StageCompleted {
            detail: "d".into(),
            duration_sec: 1.5,
            job_progress: 20,
        };
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            json!({"detail": "d", "durationSec": 1.5, "jobProgress": 20})
        );
        let data = JobData {
            narration: Some(NarrationTimeline::default()),
            ..JobData::default()
        };
        let keys: Vec<String> = match serde_json::to_value(&data).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        assert_eq!(keys, ["narration"]);
    }
}

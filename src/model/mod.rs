//! The records every layer shares: jobs, events, requests and the typed
//! payloads that stages write and dialects read.
//!
//! A job row and its append-only event log are the whole state of the
//! system. The API modules translate these into each seed's shapes; nothing
//! here knows about HTTP, SQL or ffmpeg.

mod event;
mod job;
mod kind;
mod media;
mod payload;
mod request;
mod webhook;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub use event::{Event, EventJson, EventType, FrameKind, Level, NewEvent};
pub use job::{Aspect, Job, JobData, JobState, StageRecord, StageStatus, Stages};
pub use kind::EventKind;
pub use media::{
    Asset, AssetSource, CostBreakdown, CostEstimate, CostEstimateEvent, LlmCost, MusicFile,
    MusicResolved, MusicTrack, NarrationTimeline, Plan, PlannedScene, Research, Review,
    ReviewMeasurements, SceneTiming, ScoreEvent, ServiceCost, VideoMeta, VisualType, WordTiming,
};
pub use payload::{Payload, Progress, StageCompleted, StageFailed, StageSkipped, StageStarted};
pub use request::{Field, Invalid, JobRequest, Problem, aspect, limits, non_blank};
pub use webhook::{JobWebhook, WebhookEvent};

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

/// A float as JSON, rounded to milliseconds so that timestamps and
/// measurements print compactly.
pub fn json_f64(x: f64) -> Value {
    serde_json::Number::from_f64(round3(x))
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// `x` rounded to three decimals, the precision every measurement is
/// reported with.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
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
}

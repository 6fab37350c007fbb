//! Event kinds: what an event means, beyond its text.

use serde::Serialize;

/// What an event means, beyond its text. Dialects project the log from
/// kinds and payloads only, never from messages, so a message can be
/// reworded freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The job was submitted.
    Queued,
    /// A worker claimed the job and began a run.
    Started,
    /// A client asked a running job to stop.
    CancelRequested,
    /// The run was interrupted and the job went back to the queue.
    Requeued,
    /// The job finished with a result. Terminal.
    Completed,
    /// The job failed. Terminal.
    Failed,
    /// The job stopped on a client's request. Terminal.
    Cancelled,
    /// A stage began ([`super::StageStarted`]).
    Start,
    /// A stage finished ([`super::StageCompleted`]).
    Complete,
    /// A stage was not needed ([`super::StageSkipped`]).
    Skipped,
    /// A stage failed or was cut off ([`super::StageFailed`]).
    Error,
    /// research: key facts and mood ([`super::Research`]).
    Results,
    /// director: the scene plan ([`super::ScoreEvent`]).
    Score,
    /// director: tokens and cost ([`super::CostEstimateEvent`]).
    CostEstimate,
    /// visuals: the chosen music track ([`super::MusicTrack`]).
    Music,
    /// visuals: where the music came from ([`super::MusicResolved`]).
    MusicResolved,
    /// visuals: the visual of one scene ([`super::Asset`]).
    Asset,
    /// critic: the review ([`super::Review`]).
    Review,
    /// visuals: a search for footage began.
    FootageSearch,
    /// tts: the scenes' narration is being joined into one track.
    AudioJoin,
    /// tts: when each scene is spoken ([`super::NarrationTimeline`]).
    Narration,
    /// assembly: the video is rendered ([`super::VideoMeta`]).
    Rendered,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 22] = [
        EventKind::Queued,
        EventKind::Started,
        EventKind::CancelRequested,
        EventKind::Requeued,
        EventKind::Completed,
        EventKind::Failed,
        EventKind::Cancelled,
        EventKind::Start,
        EventKind::Complete,
        EventKind::Skipped,
        EventKind::Error,
        EventKind::Results,
        EventKind::Score,
        EventKind::CostEstimate,
        EventKind::Music,
        EventKind::MusicResolved,
        EventKind::Asset,
        EventKind::Review,
        EventKind::FootageSearch,
        EventKind::AudioJoin,
        EventKind::Narration,
        EventKind::Rendered,
    ];

    /// The word stored and shown (seed 001's `type` for stage events).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Started => "started",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Requeued => "requeued",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
            EventKind::Cancelled => "cancelled",
            EventKind::Start => "start",
            EventKind::Complete => "complete",
            EventKind::Skipped => "skipped",
            EventKind::Error => "error",
            EventKind::Results => "results",
            EventKind::Score => "score",
            EventKind::CostEstimate => "cost_estimate",
            EventKind::Music => "music",
            EventKind::MusicResolved => "music_resolved",
            EventKind::Asset => "asset",
            EventKind::Review => "review",
            EventKind::FootageSearch => "footage_search",
            EventKind::AudioJoin => "audio_join",
            EventKind::Narration => "narration",
            EventKind::Rendered => "rendered",
        }
    }

    /// The kind a stored word names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds that end a job's log.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventKind::Completed | EventKind::Failed | EventKind::Cancelled
        )
    }

    /// The kinds seed 001 shows as `stage:<name>` events.
    pub fn is_seed001_stage_kind(self) -> bool {
        matches!(
            self,
            EventKind::Start
                | EventKind::Complete
                | EventKind::Skipped
                | EventKind::Error
                | EventKind::Results
                | EventKind::Score
                | EventKind::CostEstimate
                | EventKind::Music
                | EventKind::MusicResolved
                | EventKind::Asset
                | EventKind::Review
        )
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_word() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("made-up"), None);
    }
}

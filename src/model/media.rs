//! What the media stages produce: research, the scene plan, its cost, the
//! music, each scene's visual, the narration's timeline, the review and
//! the rendered video. Each travels as an event payload; the ones a
//! snapshot shows are also kept on the job row.

use serde::{Deserialize, Serialize};

use super::payload::{Payload, payload};
use super::{EventKind, JobData};

/// research: what the LLM found about the topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Research {
    /// Two sentences about the topic.
    pub summary: String,
    /// Facts a short video could narrate.
    pub key_facts: Vec<String>,
    /// A snake_case mood word such as `calm_ambient`.
    pub mood: String,
}
payload!(Research, Results, |p| research_data = p.clone());

/// One scene of the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlannedScene {
    /// Position in the video, from 0.
    pub index: usize,
    /// What is spoken.
    pub narration: String,
    /// Words to search footage with.
    pub visual_query: String,
    /// A snake_case mood word.
    pub mood: String,
    /// The line shown on the scene's title card.
    pub key_line: String,
}

/// director: the scene plan (seed 001's DirectorScore).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan {
    /// The video's title.
    pub title: String,
    /// How the mood develops.
    pub emotional_arc: String,
    /// The kind of video.
    pub archetype: String,
    /// The mood the music is picked by.
    pub music_mood: String,
    /// The scenes, in order.
    pub scenes: Vec<PlannedScene>,
}

/// The `score` event: the plan under seed 001's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreEvent {
    /// The plan.
    pub score: Plan,
}
payload!(ScoreEvent, Score, |p| score = p.score.clone());

/// What one service cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceCost {
    /// Who did the work.
    pub provider: String,
    /// USD; `None` when the price is not known.
    pub cost: Option<f64>,
}

/// What the LLM cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LlmCost {
    /// The API's base URL, or why none was asked.
    pub provider: String,
    /// The model, when one was asked.
    pub model: Option<String>,
    /// Tokens sent.
    pub prompt_tokens: u64,
    /// Tokens received.
    pub completion_tokens: u64,
    /// USD; `None` when the price is not known.
    pub cost: Option<f64>,
}

/// Cost per part of the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostBreakdown {
    /// Research and planning.
    pub llm: LlmCost,
    /// Narration.
    pub tts: ServiceCost,
    /// The ffmpeg render.
    pub render: ServiceCost,
}

/// director: what the job costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CostEstimate {
    /// USD; `None` when any part's price is not known.
    pub total_cost: Option<f64>,
    /// Always `USD`.
    pub currency: String,
    /// Per part.
    pub breakdown: CostBreakdown,
}

/// The `cost_estimate` event: the estimate under seed 001's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimateEvent {
    /// The estimate.
    pub estimate: CostEstimate,
}
payload!(CostEstimateEvent, CostEstimate, |p| cost_estimate =
    p.estimate.clone());

/// visuals: the music bed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MusicTrack {
    /// The track's name (its file name without extension).
    pub track: String,
    /// The mood it was picked for, or `any` for a fallback.
    pub mood: String,
    /// The mood the plan asked for.
    pub requested_mood: String,
    /// True when no track matched the mood.
    pub fallback: bool,
    /// The file on the server.
    pub file: String,
}
payload!(MusicTrack, Music, |p| music_track = p.clone());

/// The file a resolved music track came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MusicFile {
    /// Its file name.
    pub file: Option<String>,
}

/// visuals: where the music came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MusicResolved {
    /// `library`.
    pub provider: String,
    /// The mood it was asked for.
    pub prompt: String,
    /// The file.
    pub metadata: MusicFile,
    /// True when no track matched the mood.
    pub fallback: bool,
}
payload!(MusicResolved, MusicResolved);

/// What a scene shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisualType {
    /// A clip.
    StockVideo,
    /// A photo.
    StockImage,
    /// A generated card with the scene's key line.
    TitleCard,
}

impl VisualType {
    /// The word seed 001 clients read.
    pub fn as_str(self) -> &'static str {
        match self {
            VisualType::StockVideo => "stock_video",
            VisualType::StockImage => "stock_image",
            VisualType::TitleCard => "title_card",
        }
    }
}

/// Where a scene's visual came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetSource {
    /// The local footage library.
    Library,
    /// Pexels.
    Pexels,
    /// Rendered by the pipeline.
    Generated,
}

impl AssetSource {
    /// The word seed 001 clients read.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetSource::Library => "library",
            AssetSource::Pexels => "pexels",
            AssetSource::Generated => "generated",
        }
    }
}

/// visuals: the visual of one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    /// The scene, from 0.
    pub scene_index: usize,
    /// What it is.
    pub visual_type: VisualType,
    /// The library file, or the file name in the job folder.
    pub path: String,
    /// Where it came from.
    pub source: AssetSource,
    /// The query it was searched with.
    pub query: String,
}
payload!(Asset, Asset);

/// When one scene is spoken, measured from its audio.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SceneTiming {
    /// The scene, from 0.
    pub index: usize,
    /// Seconds from the start of the video.
    pub start: f64,
    /// When its speech ends.
    pub end: f64,
    /// Length of its speech.
    pub duration: f64,
    /// What is spoken.
    pub text: String,
    /// When each word is spoken, in seconds from the start of the video.
    pub words: Vec<WordTiming>,
}

/// One spoken word of the narration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WordTiming {
    /// The word as written in the narration.
    pub word: String,
    /// When it starts, seconds from the start of the video.
    pub start: f64,
    /// When the next word starts, or the speech ends.
    pub end: f64,
}

/// tts: the narration's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NarrationTimeline {
    /// Length of the joined narration.
    pub total_duration: f64,
    /// The voice that spoke it.
    pub voice: String,
    /// Its measured integrated loudness, LUFS.
    pub loudness: Option<f64>,
    /// The gain the render applies to reach the target loudness.
    pub gain_db: f64,
    /// Where the word times come from: `espeak-ng`, `speech-api` or
    /// `syllables` (the audio's pauses and a syllable count).
    pub word_source: String,
    /// Each scene, in order.
    pub scenes: Vec<SceneTiming>,
}
payload!(NarrationTimeline, Narration, |p| narration = p.clone());

/// What the critic measured on the output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReviewMeasurements {
    /// Length of the video.
    pub duration: f64,
    /// Length of the narration it should match.
    pub narration_duration: f64,
    /// Whether it has sound.
    pub has_audio: bool,
    /// Frame width.
    pub width: Option<u32>,
    /// Frame height.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Black stretches, `[start, end]` in seconds.
    pub black_stretches: Vec<(f64, f64)>,
    /// Silent stretches, `[start, end]` in seconds.
    pub silent_stretches: Vec<(f64, f64)>,
    /// Integrated loudness, LUFS.
    pub integrated_loudness: Option<f64>,
    /// Loudness range, LU.
    pub loudness_range: Option<f64>,
    /// True peak, dBTP.
    pub true_peak: Option<f64>,
    /// The frame's safe area, `[left, top, right, bottom]` in pixels.
    pub safe_area: Option<[f64; 4]>,
    /// The zone captions keep to, `[left, top, right, bottom]` in pixels.
    pub caption_zone: Option<[f64; 4]>,
    /// Whether every caption page and key line lies in the safe area and
    /// key lines stay out of the caption zone.
    pub captions_in_safe_area: bool,
}

/// critic: a score out of 10, every point of it explained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Review {
    /// 0 to 10.
    pub score: f64,
    /// What is right, each quoting a measurement.
    pub strengths: Vec<String>,
    /// What cost points, each quoting a measurement.
    pub weaknesses: Vec<String>,
    /// The measurements themselves.
    pub measurements: ReviewMeasurements,
}
payload!(Review, Review, |p| critic_review = p.clone());

/// assembly: the rendered video, as ffprobe measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoMeta {
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `h264`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// Whether it has sound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_audio: Option<bool>,
    /// Length of the narration in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narration_duration: Option<f64>,
    /// Number of subtitle cues drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle_cues: Option<usize>,
}
payload!(VideoMeta, Rendered);

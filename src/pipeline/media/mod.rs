//! The built-in media pipeline: a narrated short video from a topic or a
//! script, made with ffmpeg, ffprobe and espeak-ng, offline by default.
//!
//! | stage    | progress | work |
//! |----------|----------|------|
//! | research | 0–10     | key facts and mood from an LLM; skipped for a script |
//! | director | 10–20    | scene plan (narration, visual query, mood, key line) |
//! | tts      | 20–50    | narration per scene, measured, then joined |
//! | visuals  | 50–80    | footage per scene or a title card; music |
//! | assembly | 80–95    | subtitles and the ffmpeg render |
//! | critic   | 95–99    | measurements of the output and a score |
//!
//! Stages hand their results to later stages through the job's scratch
//! space, and leave every artifact in the job's folder.

mod assembly;
mod critic;
mod director;
mod llm;
mod research;
mod text;
pub mod tools;
mod tts;
mod visuals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::Config;
use crate::model::{Aspect, JobRequest};
use crate::pipeline::{Pipeline, Stage};
pub use tools::{Tool, Tools};

/// Frames per second of every rendered video.
pub const FPS: u32 = 30;

/// What the media stages share: configuration, tools and an HTTP client.
pub struct MediaEnv {
    pub config: Arc<Config>,
    pub tools: Arc<Tools>,
    pub http: reqwest::Client,
    voices: OnceCell<Vec<tts::Voice>>,
}

impl MediaEnv {
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        let tools = Arc::new(Tools::new(&config));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("reelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new(MediaEnv {
            config,
            tools,
            http,
            voices: OnceCell::new(),
        })
    }

    /// The LLM a job uses: the request's `aiModel`, else `LLM_MODEL`.
    fn llm(&self, request: &JobRequest) -> llm::Llm<'_> {
        llm::Llm {
            http: &self.http,
            base_url: &self.config.llm_base_url,
            api_key: &self.config.llm_api_key,
            model: request
                .ai_model
                .clone()
                .unwrap_or_else(|| self.config.llm_model.clone()),
            timeout: Duration::from_secs(self.config.llm_timeout_secs.max(1)),
        }
    }

    /// Tools every job needs; espeak-ng only without a speech API.
    fn needed_tools(&self) -> Vec<Tool> {
        let mut needed = vec![Tool::Ffmpeg, Tool::Ffprobe];
        if self.config.tts_base_url.trim().is_empty() {
            needed.push(Tool::Espeak);
        }
        needed
    }

    /// The output frame of a job.
    fn frame(&self, request: &JobRequest) -> (u32, u32) {
        if let (Some(w), Some(h)) = (request.width, request.height) {
            return (w, h);
        }
        request
            .aspect
            .or_else(|| Aspect::parse(&self.config.default_aspect))
            .unwrap_or(Aspect::Portrait)
            .frame()
    }
}

/// The built-in six-stage pipeline.
pub fn pipeline(env: Arc<MediaEnv>) -> Pipeline {
    let stages: Vec<(Arc<dyn Stage>, (u8, u8))> = vec![
        (Arc::new(research::Research(env.clone())), (0, 10)),
        (Arc::new(director::Director(env.clone())), (10, 20)),
        (Arc::new(tts::Tts(env.clone())), (20, 50)),
        (Arc::new(visuals::Visuals(env.clone())), (50, 80)),
        (Arc::new(assembly::Assembly(env.clone())), (80, 95)),
        (Arc::new(critic::Critic(env)), (95, 99)),
    ];
    Pipeline::with_ranges(stages)
}

/// Research results, as seed 001's `results` event carries them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResearchData {
    pub summary: String,
    pub key_facts: Vec<String>,
    pub mood: String,
}

/// One scene of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenePlan {
    pub index: usize,
    pub narration: String,
    pub visual_query: String,
    pub mood: String,
    pub key_line: String,
}

/// The director's plan (seed 001's DirectorScore).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub title: String,
    pub emotional_arc: String,
    pub archetype: String,
    pub music_mood: String,
    pub scenes: Vec<ScenePlan>,
}

/// Tokens spent on LLM calls so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

/// Narration audio of one scene, placed on the video's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct SceneAudio {
    pub file: PathBuf,
    /// Seconds from the start of the video.
    pub start: f64,
    /// Measured length of the spoken audio.
    pub duration: f64,
    /// Time the scene stays on screen: the audio plus the pause after it.
    pub span: f64,
}

/// The joined narration.
#[derive(Debug, Clone)]
pub struct Narration {
    pub file: PathBuf,
    pub scenes: Vec<SceneAudio>,
    pub total: f64,
    /// Gain that brings the narration to the target loudness without
    /// clipping, from its measured loudness and peak.
    pub gain_db: f64,
}

/// Loudness the narration is brought to, LUFS.
pub const TARGET_LUFS: f64 = -16.0;
/// Highest sample peak after the gain, dBFS.
pub const MAX_PEAK_DB: f64 = -1.0;

/// What a scene shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisualKind {
    Still,
    Clip,
}

#[derive(Debug, Clone)]
pub struct SceneVisual {
    pub file: PathBuf,
    pub kind: VisualKind,
}

/// The picked music track.
#[derive(Debug, Clone)]
pub struct MusicPick {
    pub file: PathBuf,
}

/// The rendered file, for the critic.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub file: PathBuf,
}

//! The built-in media pipeline: a narrated short video from a topic or a
//! script, made with ffmpeg, ffprobe and espeak-ng, offline by default.
//!
//! | stage    | progress | work |
//! |----------|----------|------|
//! | research | 0–10     | key facts and mood from an LLM; skipped for a script |
//! | director | 10–20    | scene plan (narration, visual query, mood, key line) |
//! | tts      | 20–50    | narration per scene, measured, then joined |
//! | visuals  | 50–80    | footage per scene or a title card; music |
//! | assembly | 80–95    | word-timed captions and the ffmpeg render, which also measures it |
//! | critic   | 95–99    | a score from the render's measurements |
//!
//! Stages hand their results to later stages through the job's scratch
//! space, and leave every artifact in the job's folder.

mod ass;
mod assembly;
mod captions;
mod critic;
mod director;
mod fonts;
mod layout;
mod research;
mod text;
mod tts;
mod visuals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::Config;
use crate::model::{Aspect, JobRequest};
use crate::pipeline::{Pipeline, Stage};
use crate::tools::llm::Llm;
use crate::tools::{Tool, Tools};

/// Frames per second of every rendered video.
pub const FPS: u32 = 30;

/// What the media stages share: configuration, tools and an HTTP client.
pub struct MediaEnv {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// Where ffmpeg, ffprobe and espeak-ng are.
    pub tools: Arc<Tools>,
    /// For the LLM, the speech API and Pexels.
    pub http: reqwest::Client,
    voices: OnceCell<Vec<crate::tools::voices::Voice>>,
}

impl MediaEnv {
    /// The environment for `config`, with its paths made absolute: tools
    /// run in each job's folder.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        let config = Arc::new(Config::clone(&config).with_absolute_paths());
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
    fn llm(&self, request: &JobRequest) -> Llm<'_> {
        Llm {
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

/// Tokens spent on LLM calls so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenUsage {
    /// Tokens sent.
    pub prompt: u64,
    /// Tokens received.
    pub completion: u64,
}

/// Narration audio of one scene, placed on the video's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct SceneAudio {
    /// The scene's WAV file.
    pub file: PathBuf,
    /// Seconds from the start of the video.
    pub start: f64,
    /// Measured length of the spoken audio.
    pub duration: f64,
    /// Time the scene stays on screen: the audio plus the pause after it.
    pub span: f64,
    /// When each word is spoken, from the start of the video.
    pub words: Vec<crate::model::WordTiming>,
}

/// The joined narration.
#[derive(Debug, Clone)]
pub struct Narration {
    /// The joined WAV file.
    pub file: PathBuf,
    /// Each scene's audio, in order.
    pub scenes: Vec<SceneAudio>,
    /// Its measured length, in seconds.
    pub total: f64,
    /// Gain that brings the narration to the target loudness without
    /// clipping, from its measured loudness and peak.
    pub gain_db: f64,
}

/// Integrated loudness of the finished video, LUFS: where short-form
/// platforms normalise to.
pub const TARGET_LUFS: f64 = -14.0;
/// Highest true peak of the finished video, dBTP.
pub const MAX_TRUE_PEAK_DB: f64 = -1.0;

/// What a scene shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisualKind {
    /// An image, held for the whole scene.
    Still,
    /// A video, looped or cut to the scene's length.
    Clip,
}

/// The visual of one scene.
#[derive(Debug, Clone)]
pub struct SceneVisual {
    /// Its file.
    pub file: PathBuf,
    /// Still or clip.
    pub kind: VisualKind,
    /// A generated title card, which shows the scene's key line.
    pub title_card: bool,
}

/// The picked music track.
#[derive(Debug, Clone)]
pub struct MusicPick {
    /// Its file in the music library.
    pub file: PathBuf,
}

/// The rendered file, and what the render measured, for the critic.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `output.mp4` in the job folder.
    pub file: PathBuf,
    /// What ffprobe says of it.
    pub probe: crate::tools::probe::Probe,
    /// The render's log, with the analysis filters' reports.
    pub log: String,
    /// Where the captions and key lines were placed.
    pub layout: CaptionLayout,
}

/// Where text went in the frame.
#[derive(Debug, Clone, Default)]
pub struct CaptionLayout {
    /// The frame's safe area.
    pub safe: layout::Rect,
    /// The zone captions keep to.
    pub zone: layout::Rect,
    /// Each caption page's box.
    pub pages: Vec<layout::Rect>,
    /// Each key line's box.
    pub key_lines: Vec<layout::Rect>,
}

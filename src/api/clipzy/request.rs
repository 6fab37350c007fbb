//! The body of `POST /api/v1/jobs`, renamed into a [`JobRequest`].

use serde::Deserialize;
use utoipa::ToSchema;

use crate::model::{Aspect, Field, Invalid, JobRequest, Problem, non_blank};

/// `POST /api/v1/jobs`: a topic, a script, or both, plus options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateJob {
    /// What the video is about. Required unless `script` is given.
    pub topic: Option<String>,
    /// Narration to use as is; research is skipped.
    pub script: Option<String>,
    /// espeak-ng voice (`en-us`) or speech API voice.
    pub voice: Option<String>,
    /// Narration language; picks a matching voice.
    pub language: Option<String>,
    /// Tone for the script writer.
    pub tone: Option<String>,
    /// LLM model for research and the scene plan.
    pub ai_model: Option<String>,
    /// Number of scenes, 1 to 20.
    #[serde(alias = "num_scenes", alias = "paragraph_number")]
    pub scene_count: Option<u32>,
    /// Extra instructions for the script writer.
    pub custom_prompt: Option<String>,
    /// `top`, `center` or `bottom`.
    pub subtitles_position: Option<String>,
    /// `#rrggbb`, `#rgb` or a basic colour name.
    pub subtitle_color: Option<String>,
    /// Mix a track from the music library under the narration.
    pub use_music: bool,
    /// `9:16` (default), `16:9` or `1:1`.
    pub aspect_ratio: Option<String>,
    /// Exact frame width, 64 to 3840 and even; needs `height`.
    pub width: Option<u32>,
    /// Exact frame height, 64 to 3840 and even; needs `width`.
    pub height: Option<u32>,
    /// ffmpeg threads for the render, 1 to 64.
    pub threads: Option<u32>,
}

/// Characters of a script that name a job that has no topic.
const TOPIC_FROM_SCRIPT: usize = 60;

impl CreateJob {
    /// The request in the engine's terms; the engine checks the limits.
    /// Without a topic, the script's opening words name the job.
    pub fn into_request(self) -> Result<JobRequest, Invalid> {
        let script = non_blank(self.script);
        if script.is_none() && non_blank(self.topic.clone()).is_none() {
            return Err(Invalid::new(
                Field::Subject,
                Problem::RequiredOr(Field::Script),
            ));
        }
        let subject = non_blank(self.topic)
            .or_else(|| {
                let opening: String = script.as_deref()?.chars().take(TOPIC_FROM_SCRIPT).collect();
                Some(opening.trim().to_string())
            })
            .unwrap_or_default();
        let aspect = match non_blank(self.aspect_ratio) {
            None => None,
            Some(raw) => Some(Aspect::parse(&raw).ok_or_else(|| Invalid::of(Field::Aspect))?),
        };
        Ok(JobRequest {
            subject,
            script,
            voice: self.voice,
            ai_model: self.ai_model,
            scene_count: self.scene_count,
            custom_prompt: self.custom_prompt,
            tone: self.tone,
            language: self.language,
            subtitles_position: self.subtitles_position,
            color: self.subtitle_color,
            use_music: self.use_music,
            threads: self.threads,
            aspect,
            width: self.width,
            height: self.height,
            dialect: Some("clipzy".into()),
        })
    }
}

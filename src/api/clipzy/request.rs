//! The body of `POST /api/v1/jobs`, renamed into a [`JobRequest`].

use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::fields::{optional_whole, webhook};

use crate::model::{Field, Invalid, JobRequest, Problem, WebhookEvent, aspect, limits, non_blank};

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
    #[serde(deserialize_with = "optional_whole")]
    pub scene_count: Option<u32>,
    /// Extra instructions for the script writer.
    pub custom_prompt: Option<String>,
    /// `top`, `center` or `bottom`.
    pub subtitles_position: Option<String>,
    /// `#rrggbb`, `#rgb` or a basic colour name.
    pub subtitle_color: Option<String>,
    /// Mix a track from the music library under the narration.
    pub use_music: bool,
    /// Stills drift and zoom and scenes cross-fade (default); `false`
    /// renders still scenes, the fastest render.
    pub motion: Option<bool>,
    /// `9:16` (default), `16:9` or `1:1`.
    pub aspect_ratio: Option<String>,
    /// Exact frame width, 64 to 3840 and even; needs `height`.
    #[serde(deserialize_with = "optional_whole")]
    pub width: Option<u32>,
    /// Exact frame height, 64 to 3840 and even; needs `width`.
    #[serde(deserialize_with = "optional_whole")]
    pub height: Option<u32>,
    /// ffmpeg threads for the render, 1 to 64.
    #[serde(deserialize_with = "optional_whole")]
    pub threads: Option<u32>,
    /// A URL that gets this job's events as signed webhooks.
    pub webhook: Option<String>,
    /// Which events the webhook gets: any of `start`, `stage`, `logs` and
    /// `completed`. Default: `start` and `completed`.
    #[schema(value_type = Option<Vec<WebhookEvent>>)]
    pub webhook_events_filter: Option<serde_json::Value>,
}

/// Characters of a script that name a job that has no topic.
const TOPIC_FROM_SCRIPT: usize = 60;

impl CreateJob {
    /// The request in the engine's terms; the engine checks the limits.
    /// Without a topic, the script's opening words name the job.
    pub fn into_request(self) -> Result<JobRequest, Invalid> {
        if self
            .topic
            .as_ref()
            .is_some_and(|t| t.chars().count() > limits::SUBJECT_CHARS)
        {
            return Err(Invalid::new(
                Field::Subject,
                Problem::TooLong(limits::SUBJECT_CHARS),
            ));
        }
        let script = non_blank(self.script.clone());
        let topic = self.topic.filter(|t| non_blank(Some(t.clone())).is_some());
        if script.is_none() && topic.is_none() {
            return Err(Invalid::new(
                Field::Subject,
                Problem::RequiredOr(Field::Script),
            ));
        }
        // Limits are checked on what was sent; without a topic, the
        // script's opening words name the job.
        let subject = topic
            .or_else(|| {
                let opening: String = script.as_deref()?.chars().take(TOPIC_FROM_SCRIPT).collect();
                Some(opening.trim().to_string())
            })
            .unwrap_or_default();
        let aspect = aspect(self.aspect_ratio)?;
        let webhook = webhook(self.webhook, self.webhook_events_filter)?;
        Ok(JobRequest {
            subject,
            script: self.script,
            voice: self.voice,
            ai_model: self.ai_model,
            scene_count: self.scene_count,
            custom_prompt: self.custom_prompt,
            tone: self.tone,
            language: self.language,
            subtitles_position: self.subtitles_position,
            color: self.subtitle_color,
            use_music: self.use_music,
            motion: self.motion,
            threads: self.threads,
            aspect,
            width: self.width,
            height: self.height,
            dialect: Some("clipzy".into()),
            webhook,
            ..JobRequest::default()
        })
    }
}

//! The body of MoneyPrinter's `POST /api/generate`, renamed into a
//! [`JobRequest`], and the answer to it.

use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::fields::{Loose, webhook};
use crate::model::{Field, Invalid, JobRequest, WebhookEvent, aspect};

/// `POST /api/generate` as MoneyPrinter's front end sends it. Unknown fields
/// are ignored, as the original does. Numbers and booleans may come as
/// strings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateBody {
    /// The topic. Required. (A body with `topic` and no `videoSubject` is
    /// AI-Video-Gen's generate, which waits for the video.)
    video_subject: Option<String>,
    /// Narration to use as is; research is skipped.
    script: Option<String>,
    /// espeak-ng voice (`en-us`), or the speech API's voice.
    voice: Option<String>,
    /// LLM model for research and the scene plan.
    ai_model: Option<String>,
    /// Number of scenes, 1 to 20.
    paragraph_number: Option<Loose>,
    /// Extra instructions for the script writer.
    custom_prompt: Option<String>,
    /// `top`, `center`, `bottom`, or `"<h>,<v>"` such as `center,bottom`.
    subtitles_position: Option<String>,
    /// Subtitle colour: `#rrggbb`, `#rgb` or a basic colour name.
    color: Option<String>,
    /// Mix a track from the music library under the narration.
    use_music: Option<Loose>,
    /// ffmpeg threads for the render, 1 to 64.
    threads: Option<Loose>,
    /// Stills drift and zoom and scenes cross-fade (default); `false`
    /// renders still scenes.
    motion: Option<Loose>,
    /// `9:16` (default), `16:9` or `1:1`.
    aspect_ratio: Option<String>,
    /// Exact frame width (even, 64 to 3840); needs `height`.
    width: Option<Loose>,
    /// Exact frame height (even, 64 to 3840); needs `width`.
    height: Option<Loose>,
    /// A URL that gets this job's events as signed webhooks.
    webhook: Option<String>,
    /// Which events the webhook gets: any of `start`, `stage`, `logs` and
    /// `completed`. Default: `start` and `completed`.
    #[serde(rename = "webhook_events_filter", alias = "webhookEventsFilter")]
    #[schema(value_type = Option<Vec<WebhookEvent>>)]
    webhook_events_filter: Option<serde_json::Value>,
}

impl GenerateBody {
    /// The request in the engine's terms; the engine checks the limits.
    pub fn into_request(self) -> Result<JobRequest, Invalid> {
        let number =
            |value: &Option<Loose>, field| value.as_ref().map(|v| v.as_u32(field)).transpose();
        let aspect = aspect(self.aspect_ratio)?;
        Ok(JobRequest {
            subject: self.video_subject.unwrap_or_default(),
            script: self.script,
            voice: self.voice,
            ai_model: self.ai_model,
            scene_count: number(&self.paragraph_number, Field::SceneCount)?,
            custom_prompt: self.custom_prompt,
            subtitles_position: self.subtitles_position,
            color: self.color,
            use_music: match &self.use_music {
                Some(flag) => flag.as_bool(Field::UseMusic)?,
                None => false,
            },
            threads: number(&self.threads, Field::Threads)?,
            motion: self
                .motion
                .as_ref()
                .map(|flag| flag.as_bool(Field::Motion))
                .transpose()?,
            aspect,
            width: number(&self.width, Field::Width)?,
            height: number(&self.height, Field::Height)?,
            dialect: Some("moneyprinter".into()),
            webhook: webhook(self.webhook, self.webhook_events_filter)?,
            ..JobRequest::default()
        })
    }
}

/// The answer to a MoneyPrinter generate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateReply {
    /// Always `success`.
    pub status: &'static str,
    /// `Video generation queued.`
    pub message: &'static str,
    /// The new job.
    pub job_id: String,
    /// The seed 002 slug of the topic, for `/api/progress/{generation_id}`.
    pub generation_id: String,
}

/// Queues the job a MoneyPrinter body asks for; the job keeps the
/// request's id.
pub async fn generate(
    state: &AppState,
    body: Value,
    request_id: Option<String>,
) -> ApiResult<Json<GenerateReply>> {
    let body: GenerateBody = serde_json::from_value(body)
        .map_err(|err| ApiError::Validation(format!("Invalid request body: {err}")))?;
    let mut request = body.into_request()?;
    request.request_id = request_id;
    let job = state.engine.submit(request).await?;
    Ok(Json(GenerateReply {
        status: "success",
        message: "Video generation queued.",
        job_id: job.id.to_string(),
        generation_id: job.generation_id,
    }))
}

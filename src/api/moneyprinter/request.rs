//! The body of MoneyPrinter's `POST /api/generate`.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::fields::{
    Loose, check_size, checked_color, checked_script, subtitle_position, text,
};
use crate::api::{ApiError, ApiResult};
use crate::model::{Aspect, JobRequest};

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
    /// `9:16` (default), `16:9` or `1:1`.
    aspect_ratio: Option<String>,
    /// Exact frame width (even, 64 to 3840); needs `height`.
    width: Option<Loose>,
    /// Exact frame height (even, 64 to 3840); needs `width`.
    height: Option<Loose>,
}

impl GenerateBody {
    pub fn into_request(self) -> ApiResult<JobRequest> {
        let subject = text(self.video_subject)
            .ok_or_else(|| ApiError::validation("videoSubject is required."))?;
        let mut request = JobRequest {
            subject,
            script: checked_script(self.script)?,
            voice: text(self.voice),
            ai_model: text(self.ai_model),
            custom_prompt: text(self.custom_prompt),
            dialect: Some("moneyprinter".into()),
            ..JobRequest::default()
        };
        if let Some(n) = &self.paragraph_number {
            request.paragraph_number = Some(n.as_u32("paragraphNumber", 1, 20)?);
        }
        if let Some(n) = &self.threads {
            request.threads = Some(n.as_u32("threads", 1, 64)?);
        }
        if let Some(b) = &self.use_music {
            request.use_music = b.as_bool("useMusic")?;
        }
        if let Some(pos) = text(self.subtitles_position) {
            request.subtitles_position = Some(subtitle_position(&pos)?);
        }
        if let Some(color) = text(self.color) {
            request.color = Some(checked_color(&color)?);
        }
        if let Some(aspect) = text(self.aspect_ratio) {
            request.aspect = Some(Aspect::parse(&aspect).ok_or_else(|| {
                ApiError::validation("aspectRatio must be one of 9:16, 16:9 or 1:1.")
            })?);
        }
        let size = |v: &Option<Loose>, f| v.as_ref().map(|v| v.as_u32(f, 64, 3840)).transpose();
        request.width = size(&self.width, "width")?;
        request.height = size(&self.height, "height")?;
        check_size(&request)?;
        Ok(request)
    }
}

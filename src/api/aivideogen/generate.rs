//! AI-Video-Gen's `POST /api/generate`: `{"topic","num_slides","language",
//! "tone"}`, answered only when the video is done.
//!
//! The original ran the whole generation inside the request. Here the job
//! is queued and run by the worker like any other; only the HTTP request
//! waits for it. A client that disconnects does not cancel the job, which
//! stays visible through every other route.

use std::collections::HashMap;

use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::fields::{Loose, webhook};
use crate::model::{
    Asset, EventKind, Field, Invalid, Job, JobRequest, JobState, VisualType, WebhookEvent,
};

/// Slides when the body names no number.
const DEFAULT_SLIDES: u32 = 5;

/// The body AI-Video-Gen's front end sends.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct AvgBody {
    /// What the video is about.
    pub topic: Option<String>,
    /// Number of slides (scenes), 1 to 20. Default 5.
    pub num_slides: Option<Loose>,
    /// Narration language (`english`, `hindi`, ...); picks a matching voice.
    pub language: Option<String>,
    /// `formal`, `casual`, `enthusiastic`, ...: goes into the script prompt.
    pub tone: Option<String>,
    /// A URL that gets this job's events as signed webhooks.
    pub webhook: Option<String>,
    /// Which events the webhook gets: any of `start`, `stage`, `logs` and
    /// `completed`. Default: `start` and `completed`.
    #[schema(value_type = Option<Vec<WebhookEvent>>)]
    pub webhook_events_filter: Option<serde_json::Value>,
}

impl AvgBody {
    /// The request in the engine's terms; the engine checks the limits.
    fn into_request(self) -> Result<JobRequest, Invalid> {
        let slides = match &self.num_slides {
            Some(n) => n.as_u32(Field::SceneCount)?,
            None => DEFAULT_SLIDES,
        };
        Ok(JobRequest {
            subject: self.topic.unwrap_or_default(),
            scene_count: Some(slides),
            language: self.language,
            tone: self.tone,
            dialect: Some("aivideogen".into()),
            webhook: webhook(self.webhook, self.webhook_events_filter)?,
            ..JobRequest::default()
        })
    }
}

/// One scene as a slide.
#[derive(Debug, Serialize, ToSchema)]
pub struct Slide {
    /// From 1.
    pub slide_number: usize,
    /// The scene's key line.
    pub title: String,
    /// The scene's narration.
    pub content_text: String,
    /// True when the scene shows footage rather than a generated card.
    pub needs_image: bool,
    /// The scene's visual query.
    pub image_keyword: String,
    /// Always false: scenes are not animated.
    pub needs_animation: bool,
    /// Always empty.
    pub animation_description: String,
    /// Seconds of narration.
    pub duration: f64,
}

/// The slides of the presentation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentData {
    /// The topic.
    pub topic: String,
    /// How many slides.
    pub total_slides: usize,
    /// One per scene.
    pub slides: Vec<Slide>,
}

/// When one slide's narration is spoken.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlideScript {
    /// From 1.
    pub slide_number: usize,
    /// Seconds from the start of the video, measured from the narration.
    pub start_time: f64,
    /// When its speech ends.
    pub end_time: f64,
    /// What is spoken.
    pub narration_text: String,
}

/// The narration's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptData {
    /// The topic.
    pub topic: String,
    /// Length of the video, in seconds.
    pub total_duration: f64,
    /// The narration's language.
    pub language: String,
    /// One per slide.
    pub slide_scripts: Vec<SlideScript>,
}

/// The original's answer, one slide per scene.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvgReply {
    /// Always `success`.
    pub status: &'static str,
    /// `Presentation video generated successfully`.
    pub message: &'static str,
    /// The slides.
    pub content_data: ContentData,
    /// The narration.
    pub script_data: ScriptData,
    /// The MP4 on the server.
    pub video_path: String,
    /// `<job id>.mp4`, for `GET /api/video/{filename}`.
    pub video_filename: String,
    /// The job.
    pub job_id: String,
    /// The seed 002 slug of the topic.
    pub generation_id: String,
}

/// The file name the video is served under.
pub fn video_filename(job: &Job) -> String {
    format!("{}.mp4", job.id)
}

/// The original's answer, built from the job's plan, its narration
/// timeline and the visual each scene got.
async fn reply(state: &AppState, job: &Job) -> ApiResult<AvgReply> {
    let events = state
        .engine
        .events(job.id, 0, usize::MAX, None)
        .await?
        .unwrap_or_default();
    let visual_types: HashMap<usize, VisualType> = events
        .iter()
        .filter(|e| e.kind == Some(EventKind::Asset))
        .filter_map(|e| e.decode::<Asset>())
        .map(|asset| (asset.scene_index, asset.visual_type))
        .collect();
    let plan = job.data.score.clone().unwrap_or_default();
    let timeline = job.data.narration.clone().unwrap_or_default();
    let slides = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(i, scene)| Slide {
            slide_number: i + 1,
            title: scene.key_line.clone(),
            content_text: scene.narration.clone(),
            needs_image: visual_types
                .get(&i)
                .is_some_and(|t| *t != VisualType::TitleCard),
            image_keyword: scene.visual_query.clone(),
            needs_animation: false,
            animation_description: String::new(),
            duration: timeline.scenes.get(i).map_or(0.0, |t| t.duration),
        })
        .collect::<Vec<_>>();
    let slide_scripts = timeline
        .scenes
        .iter()
        .enumerate()
        .map(|(i, t)| SlideScript {
            slide_number: i + 1,
            start_time: t.start,
            end_time: t.end,
            narration_text: t.text.clone(),
        })
        .collect();
    let topic = job.request.subject.clone();
    let total_duration = job
        .result
        .as_ref()
        .and_then(|r| r.duration)
        .unwrap_or(timeline.total_duration);
    Ok(AvgReply {
        status: "success",
        message: "Presentation video generated successfully",
        content_data: ContentData {
            topic: topic.clone(),
            total_slides: slides.len(),
            slides,
        },
        script_data: ScriptData {
            topic,
            total_duration,
            language: job
                .request
                .language
                .clone()
                .unwrap_or_else(|| "english".into()),
            slide_scripts,
        },
        video_path: job.result_path.clone().unwrap_or_default(),
        video_filename: video_filename(job),
        job_id: job.id.to_string(),
        generation_id: job.generation_id.clone(),
    })
}

/// Queues the job (which keeps the request's id) and answers when it has
/// ended.
pub async fn generate_and_wait(
    state: &AppState,
    body: Value,
    request_id: Option<String>,
) -> ApiResult<Json<AvgReply>> {
    let body: AvgBody = serde_json::from_value(body)
        .map_err(|err| ApiError::Validation(format!("Invalid request body: {err}")))?;
    let mut request = body.into_request()?;
    request.request_id = request_id;
    let job = state.engine.submit(request).await?;
    // Follow the log to its terminal event; the feed subscribes first, so
    // an end that comes quickly is not missed.
    let mut feed = state.engine.follow(job.id, 0);
    loop {
        match feed.next().await {
            Some(event) if event.is_terminal() => break,
            Some(_) => continue,
            None => return Err(ApiError::Unavailable),
        }
    }
    let job = state
        .engine
        .job(job.id)
        .await?
        .ok_or(ApiError::JobNotFound)?;
    match job.state {
        JobState::Completed => Ok(Json(reply(state, &job).await?)),
        _ => {
            let why = job
                .error_message
                .clone()
                .unwrap_or_else(|| "Job cancelled.".into());
            Err(ApiError::Failed(format!("Error: {why}")))
        }
    }
}

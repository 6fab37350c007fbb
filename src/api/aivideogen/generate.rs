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
use crate::api::fields::{Loose, text};
use crate::api::{ApiError, ApiResult, Dialect, submit};
use crate::feed::Feed;
use crate::model::{Job, JobRequest, JobState};
use crate::store::Filter;

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
}

impl AvgBody {
    fn into_request(self) -> ApiResult<JobRequest> {
        let subject = text(self.topic).ok_or_else(|| ApiError::validation("topic is required."))?;
        let slides = match &self.num_slides {
            Some(n) => n.as_u32("num_slides", 1, 20)?,
            None => 5,
        };
        Ok(JobRequest {
            subject,
            paragraph_number: Some(slides),
            language: text(self.language),
            tone: text(self.tone),
            dialect: Some("aivideogen".into()),
            ..JobRequest::default()
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Slide {
    pub slide_number: usize,
    pub title: String,
    pub content_text: String,
    /// True when the scene shows footage rather than a generated card.
    pub needs_image: bool,
    pub image_keyword: String,
    pub needs_animation: bool,
    pub animation_description: String,
    /// Seconds of narration.
    pub duration: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContentData {
    pub topic: String,
    pub total_slides: usize,
    pub slides: Vec<Slide>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlideScript {
    pub slide_number: usize,
    /// Seconds from the start of the video, measured from the narration.
    pub start_time: f64,
    pub end_time: f64,
    pub narration_text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptData {
    pub topic: String,
    pub total_duration: f64,
    pub language: String,
    pub slide_scripts: Vec<SlideScript>,
}

/// The original's answer, one slide per scene.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvgReply {
    pub status: &'static str,
    pub message: &'static str,
    pub content_data: ContentData,
    pub script_data: ScriptData,
    /// The MP4 on the server.
    pub video_path: String,
    /// `<job id>.mp4`, for `GET /api/video/{filename}`.
    pub video_filename: String,
    pub job_id: String,
    pub generation_id: String,
}

/// The file name the video is served under.
pub fn video_filename(job: &Job) -> String {
    format!("{}.mp4", job.id)
}

async fn reply(state: &AppState, job: &Job) -> ApiResult<AvgReply> {
    let empty = Vec::new();
    let scenes = job
        .data
        .get("score")
        .and_then(|s| s["scenes"].as_array())
        .unwrap_or(&empty);
    let timing = job
        .data
        .get("narration")
        .and_then(|n| n["scenes"].as_array())
        .unwrap_or(&empty);
    let mut visual_types = HashMap::new();
    for event in state
        .store
        .events_after(job.id, 0, usize::MAX, Filter::default())
        .await?
        .unwrap_or_default()
        .iter()
        .filter(|e| e.kind.as_deref() == Some("asset"))
    {
        if let Some(p) = &event.payload {
            visual_types.insert(
                p["sceneIndex"].as_u64().unwrap_or(0),
                p["visualType"].as_str().unwrap_or("").to_string(),
            );
        }
    }
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    let slides = scenes
        .iter()
        .enumerate()
        .map(|(i, scene)| Slide {
            slide_number: i + 1,
            title: scene["key_line"].as_str().unwrap_or_default().to_string(),
            content_text: scene["narration"].as_str().unwrap_or_default().to_string(),
            needs_image: visual_types
                .get(&(i as u64))
                .is_some_and(|t| t != "title_card"),
            image_keyword: scene["visual_query"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            needs_animation: false,
            animation_description: String::new(),
            duration: timing.get(i).map(|t| number(&t["duration"])).unwrap_or(0.0),
        })
        .collect::<Vec<_>>();
    let slide_scripts = timing
        .iter()
        .enumerate()
        .map(|(i, t)| SlideScript {
            slide_number: i + 1,
            start_time: number(&t["start"]),
            end_time: number(&t["end"]),
            narration_text: t["text"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    let topic = job.request.subject.clone();
    let total_duration = job
        .result
        .as_ref()
        .and_then(|r| r["duration"].as_f64())
        .or_else(|| {
            job.data
                .get("narration")
                .and_then(|n| n["total_duration"].as_f64())
        })
        .unwrap_or(0.0);
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

/// Queues the job and answers when it has ended.
pub async fn generate_and_wait(state: &AppState, body: Value) -> ApiResult<Json<AvgReply>> {
    let in_dialect = |err: ApiError| err.in_dialect(Dialect::Detail);
    let body: AvgBody = serde_json::from_value(body)
        .map_err(|err| in_dialect(ApiError::validation(format!("Invalid request body: {err}"))))?;
    let job = submit(state, body.into_request().map_err(in_dialect)?)
        .await
        .map_err(in_dialect)?;
    // Follow the log to its terminal event; the feed subscribes first, so
    // an end that comes quickly is not missed.
    let mut feed = Feed::new(&state.hub, state.store.clone(), job.id, 0);
    loop {
        match feed.next().await {
            Some(event) if event.is_terminal() => break,
            Some(_) => continue,
            None => {
                return Err(in_dialect(ApiError::Unavailable));
            }
        }
    }
    let job = state
        .store
        .job(job.id)
        .await
        .map_err(|e| in_dialect(e.into()))?
        .ok_or_else(|| in_dialect(ApiError::JobNotFound))?;
    match job.state {
        JobState::Completed => reply(state, &job).await.map(Json).map_err(in_dialect),
        _ => {
            let why = job
                .error_message
                .clone()
                .unwrap_or_else(|| "Job cancelled.".into());
            Err(in_dialect(ApiError::Failed(format!("Error: {why}"))))
        }
    }
}

/// `/api/generate` takes either body; this names both for the OpenAPI
/// document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GenerateRequest {
    MoneyPrinter(Box<crate::api::moneyprinter::GenerateBody>),
    AiVideoGen(AvgBody),
}

//! Seed 004's shapes: the job, its stages, its result and the job list.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Job, JobState, Review, StageStatus, VideoMeta, rfc3339};

/// A stage of the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    /// The stage's name.
    pub name: String,
    /// `pending`, `running`, `done`, `skipped` or `error`.
    pub status: StageStatus,
    /// 100 once the stage is over, 0 before it starts.
    pub progress_percent: Option<u8>,
    /// Its summary, skip reason or error.
    pub detail: Option<String>,
    /// How long it ran.
    pub duration_seconds: Option<f64>,
}

/// A job as seed 004 shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct V1Job {
    /// The job's id.
    pub job_id: String,
    /// The seed 002 slug of the topic.
    pub generation_id: String,
    /// The topic.
    pub topic: String,
    /// `queued`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    /// 0–100.
    pub progress_percent: u8,
    /// The running stage; null unless the job is processing.
    pub current_stage: Option<String>,
    /// Every stage, in order.
    pub stages: Vec<StageView>,
    /// A client asked it to stop.
    pub cancel_requested: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339; when its run started.
    pub started_at: Option<String>,
    /// RFC 3339; when it ended.
    pub completed_at: Option<String>,
    /// The `x-request-id` of the request that created the job.
    pub request_id: Option<String>,
}

/// Seed 004's status words.
pub fn status_word(state: JobState) -> &'static str {
    match state {
        JobState::Running => "processing",
        other => other.as_str(),
    }
}

impl From<&Job> for V1Job {
    fn from(job: &Job) -> Self {
        let stages = job
            .stages
            .iter()
            .map(|(name, record)| StageView {
                name: name.clone(),
                status: record.status,
                progress_percent: match record.status {
                    StageStatus::Pending => Some(0),
                    StageStatus::Running => None,
                    _ => Some(100),
                },
                detail: record.detail.clone(),
                duration_seconds: record.duration_sec,
            })
            .collect();
        V1Job {
            job_id: job.id.to_string(),
            generation_id: job.generation_id.clone(),
            topic: job.request.subject.clone(),
            status: status_word(job.state),
            progress_percent: job.progress,
            current_stage: job.running_stage().map(str::to_string),
            stages,
            cancel_requested: job.cancel_requested,
            error: job.error_message.clone(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            started_at: job.started_at.map(rfc3339),
            completed_at: job.completed_at.map(rfc3339),
            request_id: job.request.request_id.clone(),
        }
    }
}

/// `{"success": true, "message": ..., "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always true.
    pub success: bool,
    /// What happened, for routes that say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
    /// The answer.
    pub data: T,
}

/// `data` in the success envelope.
pub fn ok<T>(message: Option<&'static str>, data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        success: true,
        message,
        data,
    })
}

/// Measured properties of the video.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoInfo {
    /// Seconds.
    pub duration_seconds: Option<f64>,
    /// Pixels.
    pub width: Option<u32>,
    /// Pixels.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Bytes.
    pub size_bytes: Option<u64>,
}

impl From<&VideoMeta> for VideoInfo {
    fn from(meta: &VideoMeta) -> Self {
        VideoInfo {
            duration_seconds: meta.duration,
            width: meta.width,
            height: meta.height,
            fps: meta.fps,
            size_bytes: meta.size,
        }
    }
}

/// What seed 004 calls style data, limited to what was measured.
#[derive(Debug, Serialize, ToSchema)]
pub struct StyleJson {
    /// Always `1.0`.
    pub version: &'static str,
    /// The frame's ratio in lowest terms, such as `9:16`.
    pub aspect_ratio: Option<String>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
}

impl From<&VideoMeta> for StyleJson {
    fn from(meta: &VideoMeta) -> Self {
        let aspect_ratio = match (meta.width, meta.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => {
                let g = gcd(w, h);
                Some(format!("{}:{}", w / g, h / g))
            }
            _ => None,
        };
        StyleJson {
            version: "1.0",
            aspect_ratio,
            frame_rate: meta.fps,
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A finished job's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    /// The job's id.
    pub job_id: String,
    /// Always `completed`.
    pub status: &'static str,
    /// Always 100.
    pub progress_percent: u8,
    /// URL of the MP4 on this server, absolute when the server knows its
    /// address (`PUBLIC_URL`, or a plain `Host`), else relative; supports
    /// Range requests.
    pub output_video_url: String,
    /// Seconds from the start of the run to its end.
    pub processing_time_seconds: Option<f64>,
    /// What the video measures.
    pub video: VideoInfo,
    /// Its frame.
    pub style_json: StyleJson,
    /// The quality check's score, strengths and weaknesses.
    #[schema(value_type = Object)]
    pub review: Option<Review>,
}

/// Query of the job list. Values arrive as text so that bad ones get a
/// message naming the parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct ListQuery {
    /// Page number, from 1. Default 1.
    pub page: Option<String>,
    /// Jobs per page, 1 to 100. Default 10.
    pub page_size: Option<String>,
    /// Only jobs in these states, comma-separated: `queued`,
    /// `processing`, `completed`, `failed`, `cancelled`. Default: all.
    #[param(
        pattern = r"^(queued|processing|running|completed|failed|cancelled)(,(queued|processing|running|completed|failed|cancelled))*$"
    )]
    pub status: Option<String>,
}

/// The states a list's `status` names (empty for every state when it is
/// absent); `None` when it names anything else.
pub fn wanted_states(status: Option<&str>) -> Option<Vec<JobState>> {
    let mut states = Vec::new();
    let Some(status) = status else {
        return Some(states);
    };
    for word in status.split(',') {
        let state = match word {
            "processing" | "running" => JobState::Running,
            "queued" => JobState::Queued,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        };
        if !states.contains(&state) {
            states.push(state);
        }
    }
    Some(states)
}

/// One job in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    /// The job's id.
    pub job_id: String,
    /// Seed 004's status word.
    pub status: &'static str,
    /// 0–100.
    pub progress_percent: u8,
    /// The running stage; null unless the job is processing.
    pub current_stage: Option<String>,
    /// The topic.
    pub topic: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&Job> for JobSummary {
    fn from(job: &Job) -> Self {
        JobSummary {
            job_id: job.id.to_string(),
            status: status_word(job.state),
            progress_percent: job.progress,
            current_stage: job.running_stage().map(str::to_string),
            topic: job.request.subject.clone(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
        }
    }
}

/// Seed 004's list shape: no envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// This page's jobs, newest first.
    pub jobs: Vec<JobSummary>,
    /// Jobs in all.
    pub total: u64,
    /// The page number.
    pub page: u64,
    /// Jobs per page.
    pub page_size: u64,
}

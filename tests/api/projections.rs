//! Every dialect projects the log from event kinds and typed payloads,
//! never from message text: the same run with every message reworded must
//! look the same through every dialect.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reelay::model::{
    Asset, AssetSource, CostEstimate, CostEstimateEvent, EventKind, NarrationTimeline, Plan,
    PlannedScene, Research, Review, SceneTiming, ScoreEvent, VideoMeta, VisualType,
};
use reelay::pipeline::{Pipeline, Stage, StageContext, StageOutcome, StageResult};
use serde_json::{Value, json};

use crate::helpers::TestServer;
use crate::sse::{self, data};

const LONG: Duration = Duration::from_secs(20);
const TOPIC: &str = "Reworded oceans";

/// How a run words its messages.
type Wording = fn(&str) -> String;

fn plain(message: &str) -> String {
    message.to_string()
}

fn reworded(message: &str) -> String {
    format!("Said differently ({} letters)", message.len())
}

/// One stage of the media pipeline's shape: the kinds and payloads its
/// real counterpart writes, with messages worded by `say`.
struct Shaped {
    name: &'static str,
    say: Wording,
}

fn plan() -> Plan {
    let scene = |index: usize, narration: &str| PlannedScene {
        index,
        narration: narration.into(),
        visual_query: "sea waves".into(),
        mood: "calm".into(),
        key_line: format!("Line {index}"),
    };
    Plan {
        title: TOPIC.into(),
        music_mood: "calm".into(),
        scenes: vec![scene(0, "The sea is wide."), scene(1, "Waves never rest.")],
        ..Plan::default()
    }
}

#[async_trait]
impl Stage for Shaped {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let say = self.say;
        match self.name {
            "research" => {
                let research = Research {
                    summary: "The sea.".into(),
                    key_facts: vec!["It is wide.".into()],
                    mood: "calm".into(),
                };
                ctx.emit(say("Research complete"), &research).await?;
            }
            "director" => {
                ctx.emit(say("Scene plan ready"), &ScoreEvent { score: plan() })
                    .await?;
                let estimate = CostEstimate {
                    total_cost: Some(0.0),
                    currency: "USD".into(),
                    ..CostEstimate::default()
                };
                ctx.emit(say("Cost estimate ready"), &CostEstimateEvent { estimate })
                    .await?;
            }
            "tts" => {
                ctx.info(say("Generating audio for scene 1/2")).await?;
                ctx.progress(0.5, say("Generated audio for scene 1/2"))
                    .await?;
                ctx.mark(EventKind::AudioJoin, say("Combining narration audio"))
                    .await?;
                let timing = |index: usize, start: f64| SceneTiming {
                    index,
                    start,
                    end: start + 1.5,
                    duration: 1.5,
                    text: plan().scenes[index].narration.clone(),
                    words: Vec::new(),
                };
                let timeline = NarrationTimeline {
                    total_duration: 3.3,
                    voice: "en-us".into(),
                    loudness: Some(-20.0),
                    gain_db: 4.0,
                    word_source: "espeak-ng".into(),
                    scenes: vec![timing(0, 0.0), timing(1, 1.8)],
                };
                ctx.emit(say("Narration ready"), &timeline).await?;
            }
            "visuals" => {
                for (index, visual_type, source) in [
                    (0, VisualType::StockImage, AssetSource::Library),
                    (1, VisualType::TitleCard, AssetSource::Generated),
                ] {
                    ctx.mark(EventKind::FootageSearch, say("Searching for footage"))
                        .await?;
                    let asset = Asset {
                        scene_index: index,
                        visual_type,
                        path: format!("scene-{index}.png"),
                        source,
                        query: "sea waves".into(),
                    };
                    ctx.emit(say("Scene visual"), &asset).await?;
                }
                ctx.warn(say("Fewer video clips found than requested"))
                    .await?;
            }
            "assembly" => {
                ctx.progress(0.5, say("Rendering: 50%")).await?;
                let path = ctx.work_dir().join("output.mp4");
                tokio::fs::write(&path, b"not really a video")
                    .await
                    .expect("write the output");
                let meta = VideoMeta {
                    duration: Some(3.3),
                    width: Some(360),
                    height: Some(640),
                    fps: Some(30.0),
                    size: Some(18),
                    ..VideoMeta::default()
                };
                ctx.set_result(say("Rendered"), path.display().to_string(), meta)
                    .await?;
            }
            _ => {
                let review = Review {
                    score: 9.5,
                    strengths: vec!["Good.".into()],
                    ..Review::default()
                };
                ctx.emit(say("Quality check"), &review).await?;
            }
        }
        Ok(StageOutcome::done("shaped"))
    }
}

fn shaped(say: Wording) -> Pipeline {
    let stage = |name| Arc::new(Shaped { name, say }) as Arc<dyn Stage>;
    Pipeline::with_ranges(vec![
        (stage("research"), (0, 10)),
        (stage("director"), (10, 20)),
        (stage("tts"), (20, 50)),
        (stage("visuals"), (50, 80)),
        (stage("assembly"), (80, 95)),
        (stage("critic"), (95, 99)),
    ])
}

/// Drops what differs between any two runs: ids, times and paths.
fn steady(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for key in [
                "job_id",
                "request_id",
                "jobId",
                "id",
                "timestamp",
                "generation_id",
                "video_path",
                "video_filename",
                "createdAt",
                "startedAt",
                "completedAt",
                "updatedAt",
                "created_at",
                "updated_at",
                "started_at",
                "completed_at",
                "durationSec",
                "duration_seconds",
                "processing_time_seconds",
                "output_video_url",
                "resultPath",
                "file",
                "path",
            ] {
                map.remove(key);
            }
            for v in map.values_mut() {
                *v = steady(v.take());
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = steady(v.take());
            }
        }
        _ => {}
    }
    value
}

/// What every dialect shows of one run of the shaped pipeline.
async fn every_view(say: Wording) -> Vec<Value> {
    let server = TestServer::start(shaped(say)).await;
    // AI-Video-Gen's client opens its progress stream first, then waits for
    // the video on its generate.
    let slug = reelay::model::generation_id(TOPIC);
    let mut progress = sse::open(
        &server.client,
        &server.url(&format!("/api/progress/{slug}")),
        None,
    )
    .await;
    let (status, generated) = server
        .post("/api/generate", json!({ "topic": TOPIC, "num_slides": 2 }))
        .await;
    assert_eq!(status, 200, "{generated}");
    let job = generated["job_id"].as_str().unwrap().to_string();
    let statuses: Vec<Value> = progress
        .rest(LONG)
        .await
        .iter()
        .filter(|e| !e.id.is_empty())
        .map(|e| {
            let d = data(e);
            json!([d["status"], d["progress"]])
        })
        .collect();
    let mut openreels = sse::open(
        &server.client,
        &server.url(&format!("/api/v1/jobs/{job}/events")),
        Some(0),
    )
    .await;
    let stages: Vec<Value> = openreels
        .rest(LONG)
        .await
        .iter()
        .map(|e| json!([e.event, steady(data(e))]))
        .collect();
    let (_, status_now) = server.get(&format!("/api/status/{slug}")).await;
    let (_, clipzy_job) = server.get(&format!("/api/v1/jobs/{job}")).await;
    let (_, clipzy_result) = server.get(&format!("/api/v1/jobs/{job}/result")).await;
    let mp_job = server.job(&job).await;
    vec![
        json!(statuses),
        json!(stages),
        json!([status_now["status"], status_now["progress"]]),
        steady(generated),
        steady(clipzy_job),
        steady(clipzy_result),
        steady(mp_job),
    ]
}

#[tokio::test]
async fn rewording_every_message_changes_no_dialect_s_output() {
    let plain_views = every_view(plain).await;
    let reworded_views = every_view(reworded).await;
    let names = [
        "seed 002 progress stream",
        "seed 001 stage events",
        "seed 002 status",
        "AI-Video-Gen's generate answer",
        "seed 004 job",
        "seed 004 result",
        "seed 003 job",
    ];
    for ((name, a), b) in names.iter().zip(&plain_views).zip(&reworded_views) {
        assert_eq!(a, b, "{name} changed when messages were reworded");
    }
    // The views are not empty: the run went through every phase.
    let statuses = plain_views[0].to_string();
    for phase in [
        "generating_content",
        "combining_audio",
        "fetching_image",
        "generating_slide",
        "composing_video",
        "completed",
    ] {
        assert!(statuses.contains(phase), "no {phase} in {statuses}");
    }
    assert_eq!(
        plain_views[3]["content_data"]["slides"][0]["needs_image"],
        true
    );
    assert_eq!(
        plain_views[3]["content_data"]["slides"][1]["needs_image"],
        false
    );
    assert_eq!(
        plain_views[3]["script_data"]["slide_scripts"][1]["start_time"],
        1.8
    );
}

//! The built-in media pipeline against the real tools.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::FakeLlm;
use crate::helpers::{TestServer, ffprobe, make_fixture, make_lavfi, spawn_router};

const SCRIPT: &str = "The ocean covers most of our planet. Its deepest trench reaches eleven \
kilometres down. Whales sing to each other across whole ocean basins. Waves carry energy \
for thousands of kilometres before they break on a shore.";

fn small(body: Value) -> Value {
    let mut body = body;
    body["width"] = json!(360);
    body["height"] = json!(640);
    body
}

async fn submit(server: &TestServer, body: Value) -> String {
    let (status, reply) = server.post("/api/generate", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["jobId"].as_str().unwrap().to_string()
}

fn work_dir(server: &TestServer, id: &str) -> PathBuf {
    server.dir.path().join("data").join("jobs").join(id)
}

fn duration_of(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Processes whose working directory is `dir` (ffmpeg runs in the job folder).
fn processes_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        if std::fs::read_link(path.join("cwd")).is_ok_and(|cwd| cwd == dir) {
            let cmd = std::fs::read(path.join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    found
}

#[tokio::test]
async fn a_script_renders_to_a_video_with_narration_subtitles_and_every_stage() {
    let server = TestServer::start_media(|_| {}).await;
    let id = submit(
        &server,
        small(
            json!({ "videoSubject": "Oceans", "script": SCRIPT, "paragraphNumber": 2,
                       "subtitlesPosition": "center,top", "color": "#ffff00" }),
        ),
    )
    .await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    assert_eq!(job["progress"], 100);

    let path = job["resultPath"].as_str().expect("resultPath");
    let probe = ffprobe(path);
    let streams = probe["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert!(
        streams.iter().any(|s| s["codec_type"] == "audio"),
        "no audio stream"
    );
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(360), Some(640))
    );

    // The narration's measured length, from the per-scene audio files.
    let dir = work_dir(&server, &id);
    let narration = duration_of(&ffprobe(dir.join("narration.wav").to_str().unwrap()));
    let duration = duration_of(&probe);
    assert!(
        (duration - narration).abs() <= 0.5,
        "video {duration} s, narration {narration} s"
    );

    // The result metadata is ffprobe's.
    let result = &job["result"];
    assert!((result["duration"].as_f64().unwrap() - duration).abs() < 0.01);
    assert_eq!(result["width"], 360);
    assert_eq!(result["height"], 640);
    assert_eq!(result["fps"], 30.0);
    assert_eq!(
        result["size"].as_u64().unwrap(),
        std::fs::metadata(path).unwrap().len()
    );

    for artifact in [
        "scene-001.wav",
        "scene-002.wav",
        "scene-001.png",
        "narration.wav",
        "subtitles.srt",
        "score.json",
        "output.mp4",
    ] {
        assert!(dir.join(artifact).is_file(), "{artifact} missing");
    }
    assert!(!dir.join("output.part.mp4").exists());
    let srt = std::fs::read_to_string(dir.join("subtitles.srt")).unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
    assert!(srt.contains("The ocean"), "{srt}");
    assert!(dir.join("captions.ass").is_file());

    let events = server.all_events(&id).await;
    let stage_events: Vec<(String, String)> = events
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("start" | "complete" | "skipped")))
        .map(|e| {
            (
                e["stage"].as_str().unwrap().into(),
                e["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("research", "start"),
        ("research", "skipped"),
        ("director", "start"),
        ("director", "complete"),
        ("tts", "start"),
        ("tts", "complete"),
        ("visuals", "start"),
        ("visuals", "complete"),
        ("assembly", "start"),
        ("assembly", "complete"),
        ("critic", "start"),
        ("critic", "complete"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(stage_events, expected);
    let mut last = 0.0;
    for e in events.iter().filter(|e| e["type"] == "progress") {
        let p = e["payload"]["progress"].as_f64().unwrap();
        assert!(p >= last, "progress went down from {last} to {p}");
        last = p;
    }
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for expected in [
        "Starting video generation...",
        "Script generated successfully",
        "Generating audio for scene 1/2",
        "Generating audio for scene 2/2",
        "Generating subtitles",
        "Rendering final video with subtitles...",
        "Video generation complete",
    ] {
        assert!(
            messages.contains(&expected),
            "no \"{expected}\" in {messages:#?}"
        );
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["score", "cost_estimate", "asset", "review"] {
        assert!(kinds.contains(&kind), "no {kind} event");
    }
    let review = events.iter().find(|e| e["kind"] == "review").unwrap();
    let score = review["payload"]["score"].as_f64().unwrap();
    assert!((0.0..=10.0).contains(&score));
    assert!(
        !review["payload"]["strengths"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(review["payload"]["measurements"]["integratedLoudness"].is_number());
    // No footage library: the warning says so.
    assert!(events.iter().any(|e| {
        e["level"] == "warning"
            && e["message"]
                .as_str()
                .unwrap()
                .starts_with("Fewer video clips found than requested")
    }));
}

#[tokio::test]
async fn cancel_during_render_kills_ffmpeg_and_ends_cancelled() {
    let server = TestServer::start_media(|_| {}).await;
    // Full-size frames and a long script keep ffmpeg busy for several seconds.
    let script = SCRIPT.repeat(4);
    let id = submit(
        &server,
        json!({ "videoSubject": "Long oceans", "script": script, "paragraphNumber": 3 }),
    )
    .await;
    let dir = work_dir(&server, &id);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rendering = processes_in(&dir)
            .iter()
            .any(|cmd| cmd.contains("render.filtergraph"));
        if rendering {
            break;
        }
        let job = server.job(&id).await;
        assert!(
            matches!(job["state"].as_str(), Some("queued" | "running")),
            "the job ended before its render was seen: {job}"
        );
        assert!(Instant::now() < deadline, "ffmpeg never started rendering");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-render: ffmpeg has reported progress.
    server
        .wait_event(&id, Duration::from_secs(60), |e| {
            e["stage"] == "assembly" && e["type"] == "progress"
        })
        .await;
    let asked = Instant::now();
    let (status, _) = server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let job = server
        .wait_state(&id, "cancelled", Duration::from_secs(5))
        .await;
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    assert_eq!(job["stages"]["assembly"]["status"], "error");
    let left = processes_in(&dir);
    assert!(left.is_empty(), "processes left running: {left:?}");
    assert!(!dir.join("output.mp4").exists());
}

#[tokio::test]
async fn a_topic_is_researched_and_planned_by_an_openai_compatible_llm() {
    let llm = FakeLlm::default();
    let addr = llm.spawn().await;
    let server = TestServer::start_media(|c| c.llm_base_url = format!("http://{addr}/v1")).await;
    let id = submit(
        &server,
        small(
            json!({ "videoSubject": "Octopuses", "aiModel": "tiny-model", "paragraphNumber": "2",
                       "customPrompt": "Keep it short." }),
        ),
    )
    .await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    assert_eq!(*llm.models.lock().unwrap(), ["tiny-model", "tiny-model"]);
    assert_eq!(job["stages"]["research"]["status"], "done");
    assert_eq!(job["stages"]["research"]["detail"], "3 key facts");

    let events = server.all_events(&id).await;
    let results = events
        .iter()
        .find(|e| e["kind"] == "results")
        .expect("results event");
    assert_eq!(results["stage"], "research");
    assert_eq!(results["payload"]["key_facts"].as_array().unwrap().len(), 3);
    assert_eq!(results["payload"]["mood"], "calm_ambient");
    let score = events
        .iter()
        .find(|e| e["kind"] == "score")
        .expect("score event");
    assert_eq!(
        score["payload"]["score"]["scenes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(score["payload"]["score"]["music_mood"], "calm_ambient");
    let cost = events
        .iter()
        .find(|e| e["kind"] == "cost_estimate")
        .expect("cost event");
    let estimate = &cost["payload"]["estimate"];
    assert_eq!(estimate["totalCost"], 0.0);
    assert_eq!(estimate["breakdown"]["llm"]["promptTokens"], 200);
    assert_eq!(estimate["breakdown"]["llm"]["completionTokens"], 100);
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "Generating script with model: tiny-model")
    );
}

#[tokio::test]
async fn without_a_script_or_an_llm_the_job_fails_naming_the_url() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let server = TestServer::start_media(|c| c.llm_base_url = url.clone()).await;
    let id = submit(&server, small(json!({ "videoSubject": "Nobody home" }))).await;
    let job = server
        .wait_state(&id, "failed", Duration::from_secs(30))
        .await;
    let message = job["errorMessage"].as_str().unwrap();
    assert!(
        message.contains(&format!("{url}/chat/completions")),
        "{message}"
    );
    assert!(message.contains("pass a `script`"), "{message}");
    assert_eq!(job["stages"]["research"]["status"], "error");
}

#[tokio::test]
async fn a_matching_library_clip_and_music_track_are_used() {
    let server = TestServer::start_media(|_| {}).await;
    let footage = server.dir.path().join("footage");
    let music = server.dir.path().join("music");
    std::fs::create_dir_all(&footage).unwrap();
    std::fs::create_dir_all(&music).unwrap();
    let clip = footage.join("ocean-waves.mp4");
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            clip.to_str().unwrap(),
        ],
    );
    let track = music.join("calm-sea.mp3");
    make_lavfi("sine=frequency=330:duration=4", &track);
    let script = "The ocean is calm and its waves roll in.";
    let id = submit(
        &server,
        small(json!({ "videoSubject": "Sea", "script": script, "useMusic": true })),
    )
    .await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    let events = server.all_events(&id).await;
    let asset = events.iter().find(|e| e["kind"] == "asset").unwrap();
    assert_eq!(asset["payload"]["source"], "library");
    assert_eq!(asset["payload"]["visualType"], "stock_video");
    assert_eq!(asset["payload"]["path"], clip.display().to_string());
    let music_event = events
        .iter()
        .find(|e| e["kind"] == "music")
        .expect("music event");
    assert_eq!(music_event["payload"]["track"], "calm-sea");
    assert_eq!(music_event["payload"]["fallback"], false);
    assert!(events.iter().any(|e| e["kind"] == "music_resolved"));
    assert!(
        events.iter().all(|e| e["level"] != "warning"),
        "unexpected warning"
    );
    let probe = ffprobe(job["resultPath"].as_str().unwrap());
    assert!(
        probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["codec_type"] == "audio")
    );
}

#[tokio::test]
async fn missing_footage_and_music_give_warnings_not_failures() {
    let server = TestServer::start_media(|_| {}).await;
    let id = submit(
        &server,
        small(json!({ "videoSubject": "Sea", "script": "Waves roll in.", "useMusic": "true" })),
    )
    .await;
    server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    let warnings: Vec<String> = server
        .all_events(&id)
        .await
        .iter()
        .filter(|e| e["level"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("Fewer video clips found than requested")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("No music track is available")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_unknown_voice_warns_and_uses_the_default() {
    let server = TestServer::start_media(|_| {}).await;
    let id = submit(
        &server,
        small(json!({ "videoSubject": "Voices", "script": "Hello there.", "voice": "en_us_001" })),
    )
    .await;
    server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    let events = server.all_events(&id).await;
    let warning = events
        .iter()
        .find(|e| e["level"] == "warning" && e["message"].as_str().unwrap().contains("en_us_001"))
        .expect("a warning about the voice");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("default voice")
    );
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "Generating voiceover with espeak-ng (voice en-us)")
    );
}

#[tokio::test]
async fn a_missing_ffmpeg_fails_the_job_with_the_install_hint() {
    let server =
        TestServer::start_media(|c| c.ffmpeg_path = "/nonexistent/bin/ffmpeg".into()).await;
    let id = submit(
        &server,
        small(json!({ "videoSubject": "No tools", "script": "Hello." })),
    )
    .await;
    let job = server
        .wait_state(&id, "failed", Duration::from_secs(30))
        .await;
    let message = job["errorMessage"].as_str().unwrap();
    assert!(message.contains("ffmpeg was not found"), "{message}");
    assert!(message.contains("/nonexistent/bin/ffmpeg"), "{message}");
    assert!(message.contains("apt-get install -y ffmpeg"), "{message}");
    let (_, health) = server.get("/health").await;
    assert_eq!(health["tools"]["ffmpeg"]["available"], false);
    assert_eq!(health["tools"]["ffprobe"]["available"], true);
}

#[tokio::test]
async fn a_speech_api_and_pexels_are_used_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    make_lavfi("sine=frequency=220:duration=1.5", &wav);
    let clip = dir.path().join("clip.mp4");
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=240x426:rate=25",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            clip.to_str().unwrap(),
        ],
    );
    let (wav, clip) = (std::fs::read(wav).unwrap(), std::fs::read(clip).unwrap());
    let speech_calls = Arc::new(Mutex::new(Vec::<Value>::new()));
    let calls = speech_calls.clone();
    let stand_in = Router::new()
        .route(
            "/v1/audio/speech",
            post(move |Json(body): Json<Value>| {
                let wav = wav.clone();
                calls.lock().unwrap().push(body);
                async move { wav }
            }),
        )
        .route(
            "/files/clip.mp4",
            get(move || {
                let clip = clip.clone();
                async move { clip }
            }),
        );
    let addr = spawn_router(stand_in).await;
    // Pexels answers with links to files on another host.
    let search_addr = spawn_router(Router::new().route(
        "/videos/search",
        get(move |headers: axum::http::HeaderMap| async move {
            assert_eq!(headers["authorization"], "test-key");
            Json(json!({ "videos": [{ "video_files": [
                { "link": format!("http://{addr}/files/clip.mp4"), "height": 426, "width": 240, "file_type": "video/mp4" }
            ]}]}))
        }),
    ))
    .await;
    let server = TestServer::start_media(|c| {
        c.tts_base_url = format!("http://{addr}/v1");
        c.pexels_api_key = "test-key".into();
        c.pexels_base_url = format!("http://{search_addr}");
    })
    .await;
    let id = submit(&server, small(json!({ "videoSubject": "APIs", "script": "First scene here. Second scene here.", "paragraphNumber": 2, "voice": "nova" }))).await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    let calls = speech_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["voice"], "nova");
    assert_eq!(calls[0]["input"], "First scene here.");
    let events = server.all_events(&id).await;
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "Generating voiceover with the speech API (voice nova)")
    );
    let sources: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "asset")
        .map(|e| e["payload"]["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["pexels", "pexels"]);
    // Two 1.5 s clips of speech with a pause between them.
    let duration = job["result"]["duration"].as_f64().unwrap();
    assert!((duration - 3.3).abs() < 0.3, "{duration}");
    // A plain audio answer has no word times: the syllables share the
    // measured speech.
    let narration = events.iter().find(|e| e["kind"] == "narration").unwrap();
    assert_eq!(narration["payload"]["word_source"], "syllables");
    let words = &narration["payload"]["scenes"][1]["words"];
    assert_eq!(words.as_array().unwrap().len(), 3, "{words}");
    assert!(
        (words[0]["start"].as_f64().unwrap() - 1.8).abs() < 0.01,
        "{words}"
    );
    assert!(words[2]["start"].as_f64().unwrap() > words[1]["start"].as_f64().unwrap());
}

#[tokio::test]
async fn the_aspect_ratio_selects_the_frame() {
    let server = TestServer::start_media(|_| {}).await;
    let id = submit(
        &server,
        json!({ "videoSubject": "Wide", "script": "Wide screens.", "aspectRatio": "16:9" }),
    )
    .await;
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    let probe = ffprobe(job["resultPath"].as_str().unwrap());
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
        .clone();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    let (_, v1) = server
        .post(
            "/api/v1/jobs",
            json!({ "script": "Square frames.", "aspect_ratio": "1:1" }),
        )
        .await;
    let id = v1["data"]["job_id"].as_str().unwrap().to_string();
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(90))
        .await;
    assert_eq!(
        (
            job["result"]["width"].as_u64(),
            job["result"]["height"].as_u64()
        ),
        (Some(1080), Some(1080))
    );
}

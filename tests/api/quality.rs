//! What a finished video is like, measured on the file itself: loudness,
//! sync, black frames, caption placement, word timing, ducking and motion.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, ffprobe, make_lavfi, spawn_router};

const SCRIPT: &str = "Rivers carve deep valleys through ancient stone. They shape the land \
slowly and patiently. Fish rest in the cool shade of the banks. Birds follow the water south \
every autumn.";

/// ffmpeg's log for `args`, which must succeed.
fn ffmpeg_log(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg {args:?}: {log}");
    log
}

/// The number after `key` in the last line of `log` that has it.
fn last_number(log: &str, key: &str) -> Option<f64> {
    log.lines().rev().find_map(|line| {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn job_dir(server: &TestServer, id: &str) -> PathBuf {
    server.dir.path().join("data").join("jobs").join(id)
}

async fn render(server: &TestServer, body: Value) -> (String, PathBuf) {
    let (status, reply) = server.post("/api/v1/jobs", body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let id = reply["data"]["job_id"].as_str().unwrap().to_string();
    let job = server
        .wait_state(&id, "completed", Duration::from_secs(120))
        .await;
    (id, PathBuf::from(job["resultPath"].as_str().unwrap()))
}

/// RMS level, dBFS, of `file`'s sound above 11 kHz from `from` for `secs`
/// seconds. espeak-ng speaks at 22,050 Hz, so nothing of the voice is up
/// there; a 12 kHz music bed is.
fn band_level(file: &Path, from: f64, secs: f64) -> f64 {
    let filter = format!(
        "atrim=start={from}:duration={secs},highpass=f=11000:poles=2,highpass=f=11000:poles=2,\
         astats=metadata=0:measure_overall=RMS_level:measure_perchannel=none"
    );
    let log = ffmpeg_log(&[
        "-i",
        file.to_str().unwrap(),
        "-af",
        &filter,
        "-f",
        "null",
        "-",
    ]);
    last_number(&log, "RMS level dB:").expect("an RMS level")
}

#[tokio::test]
async fn the_video_is_loud_enough_in_sync_captioned_in_the_safe_area_and_ducks_its_music() {
    let server = TestServer::start_media(|_| {}).await;
    let music = server.dir.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    let bed = music.join("bed.wav");
    make_lavfi("sine=frequency=12000:duration=30:sample_rate=48000", &bed);
    let (id, output) = render(
        &server,
        json!({ "topic": "Rivers", "script": SCRIPT, "scene_count": 2, "use_music": true,
                "width": 360, "height": 640, "subtitle_color": "#ff8000" }),
    )
    .await;
    let file = output.to_str().unwrap();

    // Loudness and true peak of the file as published.
    let log = ffmpeg_log(&[
        "-i",
        file,
        "-af",
        "ebur128=peak=true:framelog=verbose",
        "-f",
        "null",
        "-",
    ]);
    let integrated = last_number(&log, "I:").expect("integrated loudness");
    let peak = last_number(&log, "Peak:").expect("true peak");
    assert!((integrated + 14.0).abs() <= 1.0, "{integrated} LUFS");
    assert!(peak <= -1.0, "true peak {peak} dBTP");

    // Sound and picture end together.
    let probe = ffprobe(file);
    let length = |kind: &str| -> f64 {
        let stream = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == kind)
            .unwrap();
        stream["duration"].as_str().unwrap().parse().unwrap()
    };
    let (video, audio) = (length("video"), length("audio"));
    assert!(
        (video - audio).abs() <= 0.1,
        "video {video} s, audio {audio} s"
    );

    // No black stretch, not even half a second.
    let log = ffmpeg_log(&[
        "-i",
        file,
        "-vf",
        "blackdetect=d=0.5:pix_th=0.10",
        "-f",
        "null",
        "-",
    ]);
    assert!(!log.contains("black_start"), "{log}");

    // Every caption and key line libass draws from the job's ASS script
    // falls inside the safe area: the union of all lit pixels over the
    // whole video, on a black frame.
    let dir = job_dir(&server, &id);
    let canvas = format!("color=black:s=360x640:r=10:d={video}");
    let log = Command::new("ffmpeg")
        .current_dir(&dir)
        .args(["-hide_banner", "-nostats", "-f", "lavfi", "-i", &canvas])
        .args([
            "-vf",
            "ass=captions.ass:fontsdir=fonts,cropdetect=limit=0.08:round=2:reset=0",
        ])
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&log.stderr);
    let spaced = log.replace(':', ": ");
    let bounds = |key: &str| last_number(&spaced, key).expect(key);
    let (x1, x2, y1, y2) = (bounds("x1:"), bounds("x2:"), bounds("y1:"), bounds("y2:"));
    assert!(x2 > x1 && y2 > y1, "nothing drawn: {log}");
    // Safe area of 360x640: 6 % left, 14 % right, 10 % top, 20 % bottom.
    assert!(x1 >= 21.6 && x2 <= 309.6, "x {x1}..{x2}");
    assert!(y1 >= 64.0 && y2 <= 512.0, "y {y1}..{y2}");
    let script = std::fs::read_to_string(dir.join("captions.ass")).unwrap();
    assert!(script.contains("{\\1c&H0080FF&}"), "highlight colour");

    let events = server.all_events(&id).await;
    let review = events.iter().find(|e| e["kind"] == "review").unwrap();
    assert_eq!(
        review["payload"]["measurements"]["captionsInSafeArea"],
        true
    );
    assert!(
        review["payload"]["measurements"]["truePeak"]
            .as_f64()
            .unwrap()
            <= -1.0
    );

    // Word times come from libespeak-ng, rise, and stay inside each
    // scene's speech.
    let narration = &events.iter().find(|e| e["kind"] == "narration").unwrap()["payload"];
    assert_eq!(narration["word_source"], "espeak-ng");
    let mut spoken = 0;
    for scene in narration["scenes"].as_array().unwrap() {
        let (start, end) = (
            scene["start"].as_f64().unwrap(),
            scene["end"].as_f64().unwrap(),
        );
        let words = scene["words"].as_array().unwrap();
        let text = scene["text"].as_str().unwrap();
        assert_eq!(words.len(), text.split_whitespace().count(), "{scene}");
        let mut last = start - 1e-9;
        for word in words {
            let (a, b) = (
                word["start"].as_f64().unwrap(),
                word["end"].as_f64().unwrap(),
            );
            assert!(
                a > last && b > a && a >= start - 1e-9 && b <= end + 0.002,
                "{scene}"
            );
            last = a;
        }
        spoken += words.len();
    }
    assert_eq!(spoken, SCRIPT.split_whitespace().count());

    // The music bed is ducked at least 12 dB under the speech: its band in
    // the middle of the first scene against the bed's own level.
    let first = &narration["scenes"][0];
    let words = first["words"].as_array().unwrap();
    let (from, to) = (
        words[1]["start"].as_f64().unwrap(),
        words[words.len() - 2]["end"].as_f64().unwrap(),
    );
    let bed_level = band_level(&bed, 0.0, 5.0) + 20.0 * 0.35f64.log10();
    let ducked = band_level(&output, from, to - from);
    assert!(
        ducked <= bed_level - 12.0,
        "music at {ducked:.1} dB under speech, {bed_level:.1} dB undocked"
    );
}

/// Raw RGB of the top tenth of the frame at `secs`: no text goes there.
fn top_band(file: &Path, secs: f64) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &secs.to_string(), "-i"])
        .arg(file)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "crop=iw:ih/10:0:0",
            "-f",
            "rawvideo",
        ])
        .args(["-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success() && !out.stdout.is_empty());
    out.stdout
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

#[tokio::test]
async fn stills_move_by_default_and_stay_still_with_motion_off() {
    let server = TestServer::start_media(|_| {}).await;
    let body = |motion: Option<bool>| {
        let mut body = json!({ "topic": "Rivers", "script": SCRIPT, "scene_count": 2,
                               "width": 360, "height": 640 });
        if let Some(motion) = motion {
            body["motion"] = json!(motion);
        }
        body
    };
    let (_, moving) = render(&server, body(None)).await;
    let (_, still) = render(&server, body(Some(false))).await;
    let moved = mean_difference(&top_band(&moving, 0.5), &top_band(&moving, 2.5));
    let held = mean_difference(&top_band(&still, 0.5), &top_band(&still, 2.5));
    assert!(moved > 0.5, "the default render did not move ({moved})");
    assert!(held < 0.5, "motion:false moved ({held})");

    // A bad flag is a clear error in the route's envelope.
    let mut bad = body(None);
    bad["motion"] = json!("sometimes");
    let (status, reply) = server.post("/api/v1/jobs", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["success"], false, "{reply}");
}

#[tokio::test]
async fn a_speech_api_with_word_timestamps_times_the_captions() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    make_lavfi("sine=frequency=220:duration=2", &wav);
    let audio = base64::engine::general_purpose::STANDARD.encode(std::fs::read(wav).unwrap());
    let stand_in = Router::new().route(
        "/v1/dev/captioned_speech",
        post(move || {
            let audio = audio.clone();
            async move {
                axum::Json(
                    json!({ "audio": audio, "audio_format": "wav", "timestamps": [
                        { "word": "Rivers", "start_time": 0.10, "end_time": 0.5 },
                        { "word": "run", "start_time": 0.60, "end_time": 0.9 },
                        { "word": "far", "start_time": 1.25, "end_time": 1.6 },
                        { "word": ".", "start_time": 1.6, "end_time": 1.6 },
                    ]}),
                )
            }
        }),
    );
    let addr = spawn_router(stand_in).await;
    let server = TestServer::start_media(|c| {
        c.tts_base_url = format!("http://{addr}/v1");
        c.tts_speech_path = "dev/captioned_speech".into();
    })
    .await;
    let (id, _) = render(
        &server,
        json!({ "topic": "Rivers", "script": "Rivers run far.", "width": 360, "height": 640 }),
    )
    .await;
    let events = server.all_events(&id).await;
    let narration = &events.iter().find(|e| e["kind"] == "narration").unwrap()["payload"];
    assert_eq!(narration["word_source"], "speech-api");
    let starts: Vec<f64> = narration["scenes"][0]["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["start"].as_f64().unwrap())
        .collect();
    assert_eq!(starts, [0.1, 0.6, 1.25]);
}

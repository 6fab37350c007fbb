//! The seeds' own front ends against Reelay: MoneyPrinter's model picker
//! and song upload, AI-Video-Gen's waiting generate, video and status
//! routes, and CORS preflight for all of them.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::fakes::FakeLlm;
use crate::helpers::{TestServer, eventually, make_fixture, spawn_stoppable};
use crate::sse::{self, data};
use crate::stages::quick;

const LONG: Duration = Duration::from_secs(90);

/// A real MP3 of `secs` seconds, as bytes.
fn mp3(secs: f64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.mp3");
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:duration={secs}"),
            path.to_str().unwrap(),
        ],
    );
    std::fs::read(path).unwrap()
}

async fn upload(server: &TestServer, files: Vec<(&str, Vec<u8>)>) -> (StatusCode, Value) {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part("songs", Part::bytes(bytes).file_name(name.to_string()));
    }
    let res = server
        .client
        .post(server.url("/api/upload-songs"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn music_files(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.dir.path().join("music"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn models_come_from_the_llm_server_and_fall_back_when_it_is_down() {
    let (addr, handle) = spawn_stoppable(Router::new().route(
        "/v1/models",
        get(|| async {
            axum::Json(
                json!({ "object": "list", "data": [{ "id": "llama3.2" }, { "id": "qwen2.5:7b" }] }),
            )
        }),
    ))
    .await;
    let base = format!("http://{addr}/v1");
    let server = TestServer::start_with(quick(), |c| {
        c.llm_base_url = base.clone();
        c.llm_model = "qwen2.5:7b".into();
    })
    .await;
    let (status, body) = server.get("/api/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "status": "success", "models": ["llama3.2", "qwen2.5:7b"], "default": "qwen2.5:7b" })
    );

    handle.abort();
    let _ = handle.await;
    let (status, body) = server.get("/api/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "error");
    assert_eq!(body["models"], json!(["qwen2.5:7b"]));
    assert_eq!(body["default"], "qwen2.5:7b");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&format!("{base}/models")), "{message}");
}

#[tokio::test]
async fn uploaded_songs_are_kept_and_picked_by_a_music_job() {
    let server = TestServer::start_media(|_| {}).await;
    let (status, body) = upload(
        &server,
        vec![("calm-sea.mp3", mp3(3.0)), ("Second Song.mp3", mp3(2.0))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "status": "success", "message": "Uploaded 2 song(s)." })
    );
    // A second upload adds to the library instead of replacing it.
    let (status, _) = upload(&server, vec![("calm-sea.mp3", mp3(1.0))]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        music_files(&server),
        ["Second Song.mp3", "calm-sea-2.mp3", "calm-sea.mp3"]
    );

    let (_, reply) = server
        .post(
            "/api/generate",
            json!({ "videoSubject": "Sea", "script": "The calm sea rests.", "useMusic": true,
                                         "width": 360, "height": 640 }),
        )
        .await;
    let id = reply["jobId"].as_str().unwrap().to_string();
    server.wait_state(&id, "completed", LONG).await;
    let events = server.all_events(&id).await;
    let music = events
        .iter()
        .find(|e| e["kind"] == "music")
        .expect("music event");
    let track = music["payload"]["track"].as_str().unwrap();
    assert!(
        ["calm-sea", "Second Song", "calm-sea-2"].contains(&track),
        "{track}"
    );
}

#[tokio::test]
async fn uploads_are_checked_flattened_and_limited() {
    let server = TestServer::start_with(quick(), |c| c.max_upload_bytes = 60_000).await;
    let (status, body) = upload(&server, vec![("../../escape.mp3", mp3(1.0))]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(music_files(&server), ["escape.mp3"]);
    assert!(!server.dir.path().join("escape.mp3").exists());
    assert!(
        !server
            .dir
            .path()
            .parent()
            .unwrap()
            .join("escape.mp3")
            .exists()
    );

    let (status, body) = upload(
        &server,
        vec![("fake.mp3", b"this is not audio at all".to_vec())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "error");
    assert!(
        body["message"].as_str().unwrap().contains("fake.mp3"),
        "{body}"
    );
    // All or nothing: a good file next to a bad one is not kept either.
    let (status, _) = upload(
        &server,
        vec![("good.mp3", mp3(1.0)), ("bad.mp3", b"nope".to_vec())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(music_files(&server), ["escape.mp3"]);

    // Audio, but not MP3.
    let wav_dir = tempfile::tempdir().unwrap();
    let wav = wav_dir.path().join("tone.wav");
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1:sample_rate=8000",
            wav.to_str().unwrap(),
        ],
    );
    let (status, body) = upload(&server, vec![("tone.mp3", std::fs::read(&wav).unwrap())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = upload(&server, vec![("notes.txt", b"hello".to_vec())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "status": "error", "message": "No MP3 files found." })
    );
    let empty = Form::new().text("other", "x");
    let res = server
        .client
        .post(server.url("/api/upload-songs"))
        .multipart(empty)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "status": "error", "message": "No files uploaded." })
    );

    let (status, body) = upload(&server, vec![("big.mp3", vec![0u8; 200_000])]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["status"], "error");
    assert!(
        body["message"].as_str().unwrap().contains("60000"),
        "{body}"
    );
    let res = server
        .client
        .post(server.url("/api/upload-songs"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "error");
    assert_eq!(music_files(&server), ["escape.mp3"]);
}

#[tokio::test]
async fn ai_video_gen_flow_waits_for_the_video_and_streams_progress() {
    let llm = FakeLlm::default();
    let addr = llm.spawn().await;
    let server = TestServer::start_media(|c| c.llm_base_url = format!("http://{addr}/v1")).await;
    let topic = "Why octopuses are smart";
    let slug = "Why_octopuses_are_smart";
    // The front end opens the progress stream first, then posts.
    let mut progress = sse::open(
        &server.client,
        &server.url(&format!("/api/progress/{slug}")),
        None,
    )
    .await;
    assert_eq!(
        data(&progress.next(LONG).await.unwrap())["status"],
        "connected"
    );
    assert_eq!(
        data(&progress.next(LONG).await.unwrap())["status"],
        "waiting"
    );
    let collector = tokio::spawn(async move { progress.rest(LONG).await });

    let started = Instant::now();
    let res = server
        .client
        .post(server.url("/api/generate"))
        .json(&json!({ "topic": topic, "num_slides": 2, "language": "english", "tone": "casual" }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let waited = started.elapsed();
    assert_eq!(body["status"], "success");
    let job = body["job_id"].as_str().unwrap().to_string();
    // It answered only once the job was done.
    assert_eq!(server.job(&job).await["state"], "completed");
    assert!(waited > Duration::from_millis(200), "{waited:?}");

    let content = &body["content_data"];
    assert_eq!(content["topic"], topic);
    assert_eq!(content["total_slides"], 2);
    let slides = content["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 2);
    assert_eq!(slides[0]["slide_number"], 1);
    assert_eq!(slides[0]["title"], "Fact 1");
    assert!(
        slides[0]["content_text"]
            .as_str()
            .unwrap()
            .contains("octopus")
    );
    assert!(slides[0]["duration"].as_f64().unwrap() > 0.0);
    let script = &body["script_data"];
    assert_eq!(script["language"], "english");
    let scripts = script["slide_scripts"].as_array().unwrap();
    assert_eq!(scripts.len(), 2);
    assert_eq!(scripts[0]["start_time"], 0.0);
    assert!(scripts[1]["start_time"].as_f64().unwrap() >= scripts[0]["end_time"].as_f64().unwrap());
    assert!(
        script["total_duration"].as_f64().unwrap()
            >= scripts[1]["end_time"].as_f64().unwrap() - 0.1
    );
    assert_eq!(body["video_filename"], format!("{job}.mp4"));
    assert!(body["video_path"].as_str().unwrap().ends_with("output.mp4"));
    // The voice came from the language.
    let events = server.all_events(&job).await;
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "Generating voiceover with espeak-ng (voice en-gb)")
    );

    // The player page fetches the video by that name, with Range.
    let url = server.url(&format!("/api/video/{job}.mp4"));
    let full = server.client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    let size = full.bytes().await.unwrap().len();
    let part = server
        .client
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-99/{size}")
    );
    let beyond = server
        .client
        .get(&url)
        .header("range", format!("bytes={}-", size + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(beyond.json::<Value>().await.unwrap()["detail"].is_string());

    let statuses: Vec<String> = collector
        .await
        .unwrap()
        .iter()
        .map(|e| data(e)["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses.last().map(String::as_str), Some("done"));
    assert_eq!(statuses[statuses.len() - 2], "completed");
    for expected in [
        "started",
        "generating_content",
        "generating_scripts",
        "generating_audio",
        "composing_video",
    ] {
        assert!(
            statuses.iter().any(|s| s == expected),
            "{expected} missing from {statuses:?}"
        );
    }
    let (_, status) = server.get(&format!("/api/status/{slug}")).await;
    assert_eq!(status["status"], "completed");
}

#[tokio::test]
async fn ai_video_gen_failures_are_500_with_detail_and_bad_names_404() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server =
        TestServer::start_media(|c| c.llm_base_url = format!("http://127.0.0.1:{port}/v1")).await;
    let res = server
        .client
        .post(server.url("/api/generate"))
        .json(&json!({ "topic": "Nobody answers", "num_slides": 3, "language": "english", "tone": "formal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("Error: No LLM answered"), "{detail}");
    assert_eq!(body.as_object().unwrap().len(), 1);

    let res = server
        .client
        .post(server.url("/api/generate"))
        .json(&json!({ "topic": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.json::<Value>().await.unwrap()["detail"].is_string());
    let res = server
        .client
        .post(server.url("/api/generate"))
        .json(&json!({ "topic": "x", "num_slides": "many" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    for name in [
        "nothing.mp4",
        "7f1c1b9e-1111-4222-8333-444455556666.mp4",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "reelay.db",
    ] {
        let res = server
            .client
            .get(server.url(&format!("/api/video/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{name}");
        assert!(res.json::<Value>().await.unwrap()["detail"].is_string());
    }
}

#[tokio::test]
async fn a_client_that_leaves_mid_wait_does_not_stop_the_job() {
    let llm = FakeLlm::default();
    let addr = llm.spawn().await;
    let server = TestServer::start_media(|c| c.llm_base_url = format!("http://{addr}/v1")).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let res = impatient
        .post(server.url("/api/generate"))
        .json(&json!({ "topic": "Leaving early", "num_slides": 2 }))
        .send()
        .await;
    assert!(
        res.is_err(),
        "the request should have timed out, got {res:?}"
    );
    let (_, list) = server.get("/api/v1/jobs").await;
    let job = list["jobs"][0]["job_id"].as_str().unwrap().to_string();
    let done = server
        .wait_job(&job, LONG, |j| {
            matches!(
                j["state"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["cancelRequested"], false);
}

#[tokio::test]
async fn preflight_requests_succeed_for_the_front_end_routes() {
    let server = TestServer::start(quick()).await;
    for (path, method) in [
        ("/api/models", "GET"),
        ("/api/upload-songs", "POST"),
        ("/api/generate", "POST"),
        ("/api/video/x.mp4", "GET"),
        ("/api/status/x", "GET"),
        ("/api/progress/x", "GET"),
        ("/api/jobs/x/events", "GET"),
        ("/api/jobs/x/cancel", "POST"),
        ("/api/v1/jobs", "POST"),
    ] {
        let res = server
            .client
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "http://localhost:5173")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        let methods = res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(methods.contains(method), "{path}: {methods}");
        assert!(
            res.headers().contains_key("access-control-allow-headers"),
            "{path}"
        );
    }
    // A simple cross-origin GET carries the header too.
    let res = server
        .client
        .get(server.url("/api/models"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_can_be_limited_to_listed_origins() {
    let server = TestServer::start_with(quick(), |c| {
        c.cors_allowed_origins = "http://localhost:5173, http://127.0.0.1:5173".into()
    })
    .await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.url("/api/generate"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let res = preflight("http://127.0.0.1:5173").await.unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    let res = preflight("http://evil.example").await.unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn too_many_upload_parts_are_refused_with_413_and_leave_no_file() {
    let server = TestServer::start(quick()).await;
    let song = mp3(0.5);
    let parts: Vec<(&str, Vec<u8>)> = (0..21).map(|_| ("one.mp3", song.clone())).collect();
    let (status, body) = upload(&server, parts).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["status"], "error");
    assert!(
        body["message"].as_str().unwrap().contains("at most 20"),
        "{body}"
    );
    // Nothing stays, not even the staged copies (removed off the runtime).
    let dir = server.dir.clone();
    eventually(Duration::from_secs(5), "no file left", || {
        let dir = dir.clone();
        async move {
            std::fs::read_dir(dir.path().join("music"))
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        }
    })
    .await;

    // Twenty of one name: each gets a name of its own, in one pass.
    let parts: Vec<(&str, Vec<u8>)> = (0..20).map(|_| ("one.mp3", song.clone())).collect();
    let (status, body) = upload(&server, parts).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut expected: Vec<String> = std::iter::once("one.mp3".to_string())
        .chain((2..=20).map(|n| format!("one-{n}.mp3")))
        .collect();
    expected.sort();
    assert_eq!(music_files(&server), expected);
}

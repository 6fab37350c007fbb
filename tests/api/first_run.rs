//! The real binary as a newcomer meets it: run in a folder with the
//! default, relative settings, as the README says.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Binary, make_fixture, require_media_tools};

const SCRIPT: &str = "Ocean waves roll in from far away. Calm seas rest under the moon.";

#[tokio::test]
async fn with_the_default_relative_folders_music_and_footage_reach_the_render() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start_as_user(dir.path(), |_| {});
    // The libraries exist from the start, as the README promises.
    server
        .log_line("footage library", Duration::from_secs(10))
        .await;
    let (music, footage) = (dir.path().join("music"), dir.path().join("footage"));
    assert!(music.is_dir() && footage.is_dir());
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=4",
            music.join("calm-piano.mp3").to_str().unwrap(),
        ],
    );
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=navy:s=320x240:d=1",
            "-frames:v",
            "1",
            footage.join("ocean-waves.png").to_str().unwrap(),
        ],
    );
    let id = server
        .api
        .submit_body(
            json!({ "videoSubject": "Calm ocean", "script": SCRIPT, "paragraphNumber": 1,
                             "width": 360, "height": 640, "useMusic": true }),
        )
        .await;
    let job = server
        .api
        .wait_job(&id, Duration::from_secs(90), |j| {
            j["state"] != "queued" && j["state"] != "running"
        })
        .await;
    assert_eq!(job["state"], "completed", "{job}");
    let events = server.api.all_events(&id).await;
    let music = events
        .iter()
        .find(|e| e["kind"] == "music")
        .expect("a music event");
    assert_eq!(music["payload"]["track"], "calm-piano");
    let asset = events
        .iter()
        .find(|e| e["kind"] == "asset")
        .expect("an asset event");
    assert_eq!(asset["payload"]["source"], "library", "{asset}");
}

#[tokio::test]
async fn the_startup_log_names_the_database_the_folders_the_tools_and_the_urls() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start_as_user(dir.path(), |_| {});
    let wait = Duration::from_secs(10);
    let cwd = dir.path().canonicalize().unwrap();
    let database = server.log_line("database", wait).await;
    assert!(
        database.contains(&cwd.join("data/reelay.db").display().to_string()),
        "{database}"
    );
    let data = server.log_line("data folder", wait).await;
    assert!(
        data.contains(&cwd.join("data").display().to_string()),
        "{data}"
    );
    for tool in ["ffmpeg", "ffprobe", "espeak-ng"] {
        // Found with its path and version, or named with its install command.
        let line = server.log_line(tool, wait).await;
        assert!(
            line.contains("version=") || line.contains("apt-get install"),
            "{line}"
        );
    }
    let urls = server.log_line("API docs at", wait).await;
    let base = &server.api.base;
    assert!(urls.contains(&format!("{base}/docs")), "{urls}");
    assert!(urls.contains(&format!("{base}/health")), "{urls}");
    let (status, _) = server.api.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_taken_port_is_named_with_the_setting_that_changes_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIND_ADDR", &addr)
        .current_dir(dir.path())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(
        stderr.contains("BIND_ADDR") && stderr.contains("--bind-addr"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

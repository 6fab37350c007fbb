//! The terminal client: the real binary's commands against the real
//! binary's server. Output is not a terminal here, so `watch` prints plain
//! lines (or JSON lines with `--json`).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::helpers::{Binary, free_port, require_media_tools};

const LONG: Duration = Duration::from_secs(120);

/// A short script: a job of a few seconds.
const SHORT: &str = "Salt comes from rocks. Rivers carry it to the sea. The sun lifts the water and leaves the salt behind.";

/// The client, with only `PATH` and the server's URL from the environment.
fn reelay(server: &Binary, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REELAY_URL", server.api.url(""))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn run(server: &Binary, args: &[&str]) -> Output {
    tokio::time::timeout(LONG, reelay(server, args).output())
        .await
        .expect("the client did not finish in time")
        .expect("run the client")
}

async fn finish(child: Child) -> Output {
    tokio::time::timeout(LONG, child.wait_with_output())
        .await
        .expect("the client did not finish in time")
        .expect("wait for the client")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    text(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect()
}

/// Submits `script` without following and returns the job id it printed.
async fn submit(server: &Binary, script: &str) -> String {
    let out = run(server, &["submit", "--script", script]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("the client is running") as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

#[tokio::test]
async fn watch_prints_plain_lines_or_json_lines_and_exits_0_when_the_job_completes() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let out = run(&server, &["submit", "--script", SHORT, "--follow"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let id = lines[0].trim();
    let line = regex::Regex::new(r"^\d\d:\d\d:\d\d (info|success|warning|error) +\S+ +\S").unwrap();
    let events = &lines[1..lines.len() - 2];
    assert!(events.len() > 20, "{stdout}");
    assert!(events.iter().all(|l| line.is_match(l)), "{stdout}");
    assert!(
        events
            .iter()
            .any(|l| l.ends_with("Video generation complete"))
    );
    let path = lines[lines.len() - 2]
        .strip_prefix("completed: ")
        .expect("the result's path");
    assert!(Path::new(path).is_file(), "{path}");
    assert_eq!(
        lines[lines.len() - 1],
        server.api.url(&format!("/api/v1/jobs/{id}/video"))
    );

    // The same job again, as JSON lines: every event once, in order, then
    // how it ended.
    let out = run(&server, &["watch", id, "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out.stdout);
    let (end, events) = lines.split_last().unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let all: Vec<i64> = server
        .api
        .all_events(id)
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, all);
    assert_eq!(end["status"], "completed");
    assert_eq!(end["result_path"], path);

    // Logs by level, the job list and the dashboard link.
    let out = run(&server, &["logs", id, "--level", "warning", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let levels: Vec<Value> = json_lines(&out.stdout)
        .iter()
        .map(|e| e["level"].clone())
        .collect();
    assert!(
        levels.iter().all(|l| l == "warning" || l == "error"),
        "{levels:?}"
    );
    let out = run(&server, &["jobs", "--json"]).await;
    assert!(json_lines(&out.stdout).iter().any(|j| j["job_id"] == id));
    let out = run(&server, &["open", id]).await;
    assert_eq!(
        text(&out.stdout).trim(),
        server.api.url(&format!("/#/jobs/{id}"))
    );
}

#[tokio::test]
async fn exit_codes_tell_failed_cancelled_and_unreachable_apart() {
    require_media_tools();
    // No ffmpeg: the job fails at its first tool.
    let dir = tempfile::tempdir().unwrap();
    let broken = Binary::start_with(dir.path(), |cmd| {
        cmd.env("FFMPEG_PATH", "/nonexistent/ffmpeg");
    });
    let out = run(&broken, &["submit", "--script", SHORT, "--follow"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .starts_with("failed: ")
    );
    drop(broken);

    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let id = submit(&server, &SHORT.repeat(12)).await;
    let watch = reelay(&server, &["watch", &id]).spawn().unwrap();
    server
        .api
        .wait_job(&id, LONG, |j| j["state"] == "running")
        .await;
    let out = run(&server, &["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = finish(watch).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));

    let out = run(&server, &["watch", "no-such-job"]).await;
    assert_eq!(out.status.code(), Some(3));
    let mut nowhere = reelay(&server, &["jobs"]);
    nowhere.env("REELAY_URL", "http://127.0.0.1:9");
    let out = nowhere.output().await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("nothing answers there"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn watch_resumes_across_a_server_restart_with_no_missing_or_repeated_line() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    // One port for both lives of the server, so the client finds it again.
    let port = free_port();
    let start = || {
        Binary::start_with(dir.path(), |cmd| {
            cmd.env("BIND_ADDR", format!("127.0.0.1:{port}"));
        })
    };
    let server = start();
    let id = submit(&server, &SHORT.repeat(12)).await;
    let watch = reelay(&server, &["watch", &id, "--json"]).spawn().unwrap();
    server
        .api
        .wait_job(&id, LONG, |j| {
            j["state"] == "running" && j["progress"].as_u64().unwrap() >= 20
        })
        .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let server = start();
    let out = finish(watch).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("reconnecting"),
        "{}",
        text(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let (end, events) = lines.split_last().unwrap();
    assert_eq!(end["status"], "completed");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let all: Vec<i64> = server
        .api
        .all_events(&id)
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, all, "every event once, in order");
}

#[tokio::test]
async fn ctrl_c_stops_watching_and_cancels_the_job_only_when_asked() {
    require_media_tools();
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let id = submit(&server, &SHORT.repeat(12)).await;
    server
        .api
        .wait_job(&id, LONG, |j| j["state"] == "running")
        .await;

    let watch = reelay(&server, &["watch", &id]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    interrupt(&watch);
    assert_eq!(finish(watch).await.status.code(), Some(130));
    assert_eq!(server.api.job(&id).await["state"], "running");

    let watch = reelay(&server, &["watch", &id, "--cancel-on-interrupt"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    interrupt(&watch);
    let out = finish(watch).await;
    assert_eq!(out.status.code(), Some(130));
    assert!(
        text(&out.stderr).contains("cancelled job"),
        "{}",
        text(&out.stderr)
    );
    server
        .api
        .wait_job(&id, LONG, |j| j["state"] == "cancelled")
        .await;
}

#[tokio::test]
async fn the_key_comes_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start_with(dir.path(), |cmd| {
        cmd.env("API_KEYS", "k1");
    });
    let out = run(&server, &["jobs"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("--api-key"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&server, &["jobs", "--api-key", "k1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ID"));
    let mut with_env = reelay(&server, &["jobs", "--json"]);
    with_env.env("REELAY_API_KEY", "k1");
    let out = with_env.output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

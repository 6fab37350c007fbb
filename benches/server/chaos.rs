//! Crash safety, measured: runs the real `reelay` binary on real media jobs
//! and kills it with SIGKILL at random moments spread across every stage,
//! restarting it each time. Before each kill it records what a client has
//! seen; after each restart it checks that:
//!
//! - every job a client was given an id for still exists;
//! - every event a client saw is still there, unchanged, and no event id
//!   appears twice;
//! - ids increase strictly, within each job and across the restart;
//! - each job that was running is requeued on its first interruption and
//!   failed on its second, and nothing else ever fails;
//! - no ffmpeg, ffprobe or espeak-ng outlives the killed server.
//!
//!     server chaos [--kills 50] [--in-flight 3] [--seed 7] [--binary target/release/reelay]
//!
//! Topic jobs ask a local stand-in LLM (answers after 300 ms, so research
//! and director take long enough to be hit); script jobs skip research.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[path = "chaos_check.rs"]
mod check;

use check::{Ledger, Snapshot};

/// The stages of the media pipeline, in order.
const STAGES: [&str; 6] = [
    "research", "director", "tts", "visuals", "assembly", "critic",
];

/// A small xorshift generator: reproducible runs without another crate.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The server process under test.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(binary: &Path, dir: &Path, port: u16, llm: &str) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("server log");
        let child = Command::new(binary)
            .current_dir(dir)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("LLM_BASE_URL", llm)
            .env("WORKER_CONCURRENCY", "2")
            .env("MIN_FREE_DISK_MB", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the server");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn kill(&mut self) {
        // SAFETY: a plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Options from the command line.
struct Options {
    kills: usize,
    in_flight: usize,
    seed: u64,
    binary: PathBuf,
}

fn options(args: &[String]) -> Options {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let number =
        |name: &str, default: u64| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    Options {
        kills: number("--kills", 50) as usize,
        in_flight: number("--in-flight", 3) as usize,
        seed: number("--seed", 7).max(1),
        binary: value("--binary").map_or("target/release/reelay".into(), PathBuf::from),
    }
}

/// A stand-in for an OpenAI-compatible LLM: research, then a two-scene
/// plan, each after 300 ms.
async fn chat(Json(body): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let content = if system.contains("research") {
        json!({ "summary": "Tides follow the moon.", "mood": "Calm ambient",
                "key_facts": ["The moon pulls the sea.", "Most coasts see two tides a day."] })
        .to_string()
    } else {
        let scene = |n: u32| {
            json!({ "narration": format!("Scene {n}: the moon pulls the sea, and the tide turns."),
                                      "visual_query": "tide", "mood": "calm", "key_line": format!("Tide {n}") })
        };
        json!({ "title": "Tides", "emotional_arc": "wonder", "archetype": "explainer",
                "music_mood": "calm_ambient", "scenes": [scene(1), scene(2)] })
        .to_string()
    };
    Json(json!({ "choices": [{ "index": 0, "finish_reason": "stop",
                               "message": { "role": "assistant", "content": content } }] }))
}

/// Submits jobs until `in_flight` are queued or running.
async fn top_up(client: &reqwest::Client, base: &str, ledger: &mut Ledger, in_flight: usize) {
    while ledger.active() < in_flight {
        let n = ledger.jobs.len();
        let (path, body) = if n.is_multiple_of(2) {
            (
                "/api/v1/jobs",
                json!({ "topic": format!("Tides {n}"), "scene_count": 2, "width": 360, "height": 640 }),
            )
        } else {
            (
                "/api/generate",
                json!({ "videoSubject": format!("Rain {n}"), "width": 360, "height": 640,
                "script": "Rain begins as vapour. It cools into drops. The drops fall and feed the rivers." }),
            )
        };
        let Ok(res) = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
        else {
            return;
        };
        let reply: Value = res.json().await.unwrap_or_default();
        let id = reply["jobId"].as_str().or(reply["data"]["job_id"].as_str());
        match id {
            Some(id) => ledger.submitted(id),
            None => return,
        }
    }
}

/// Waits until some job is running `stage`, submitting as jobs finish.
async fn wait_for_stage(
    client: &reqwest::Client,
    base: &str,
    ledger: &mut Ledger,
    stage: &str,
    in_flight: usize,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        top_up(client, base, ledger, in_flight).await;
        for id in ledger.active_ids() {
            let Ok(res) = client.get(format!("{base}/api/jobs/{id}")).send().await else {
                continue;
            };
            let job: Value = res.json().await.unwrap_or_default();
            ledger.observe_state(&id, &job["job"]);
            if job["job"]["state"] == "running" && job["job"]["currentStage"] == stage {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Waits until no job is queued or running.
async fn settle(client: &reqwest::Client, base: &str, ledger: &mut Ledger) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while ledger.active() > 0 && Instant::now() < deadline {
        for id in ledger.active_ids() {
            if let Ok(res) = client.get(format!("{base}/api/jobs/{id}")).send().await {
                let job: Value = res.json().await.unwrap_or_default();
                ledger.observe_state(&id, &job["job"]);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Media tools still running whose working folder is under `dir`.
fn media_processes(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
            ["ffmpeg", "ffprobe", "espeak-ng"].contains(&comm.trim()) && cwd.starts_with(dir)
        })
        .count()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(res) = client.get(format!("{base}/health")).send().await
            && res.status().is_success()
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the server did not come back within 30 s");
}

pub async fn run(args: &[String]) {
    let options = options(args);
    let binary = std::fs::canonicalize(&options.binary).unwrap_or_else(|_| {
        panic!(
            "{} not found: run cargo build --release",
            options.binary.display()
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = std::fs::canonicalize(dir.path()).expect("dir");
    let llm_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let llm = format!("http://{}/v1", llm_listener.local_addr().expect("addr"));
    let stand_in = Router::new().route("/v1/chat/completions", post(chat));
    tokio::spawn(async move { axum::serve(llm_listener, stand_in).await });
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        probe.local_addr().expect("addr").port()
    };
    let client = reqwest::Client::new();
    let mut random = Random(options.seed);
    let mut ledger = Ledger::default();
    let mut server = Server::start(&binary, &dir, port, &llm);
    let mut restarts = Vec::new();
    restarts.push(wait_healthy(&client, &server.base).await);
    let (mut kills_by_stage, mut leftovers, mut tools_killed) = (BTreeMap::new(), 0, 0);
    let started = Instant::now();
    for k in 0..options.kills {
        let target = STAGES[k % STAGES.len()];
        wait_for_stage(
            &client,
            &server.base,
            &mut ledger,
            target,
            options.in_flight,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(random.below(120))).await;
        let snapshot = Snapshot::take(&client, &server.base, &ledger).await;
        tools_killed += media_processes(&dir);
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        leftovers += media_processes(&dir);
        for stage in snapshot.running_stages() {
            *kills_by_stage.entry(stage).or_insert(0usize) += 1;
        }
        if snapshot.running_stages().is_empty() {
            *kills_by_stage
                .entry("(between jobs)".to_string())
                .or_insert(0) += 1;
        }
        server = Server::start(&binary, &dir, port, &llm);
        restarts.push(wait_healthy(&client, &server.base).await);
        ledger
            .verify_after_restart(&client, &server.base, &snapshot)
            .await;
        // Every other round, the requeued jobs get to finish before the
        // next kill, so that both ends of the rule are exercised.
        if random.below(2) == 0 {
            settle(&client, &server.base, &mut ledger).await;
        }
    }
    // No more kills: every job must now end, and end as the rule says.
    settle(&client, &server.base, &mut ledger).await;
    let summary = ledger.verify_end(&client, &server.base).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    leftovers += media_processes(&dir);
    restarts.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} kills in {:.0} s; the running jobs they hit, by stage: {kills_by_stage:?}",
        options.kills,
        started.elapsed().as_secs_f64()
    );
    println!(
        "jobs: {} submitted, {} completed, {} failed after two interruptions; {} requeued once; \
         {} events checked after every restart",
        ledger.jobs.len(),
        summary.completed,
        summary.failed_twice,
        summary.requeued,
        summary.events
    );
    println!(
        "media tools running at a kill: {tools_killed}; left running after it: {leftovers}; \
         restart to healthy: median {:.0} ms, max {:.0} ms",
        ms(&restarts[restarts.len() / 2]),
        ms(restarts.last().expect("restarts"))
    );
    assert_eq!(leftovers, 0, "media tools outlived the server");
    println!("all checks passed");
}

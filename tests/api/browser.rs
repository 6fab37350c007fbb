//! The dashboard in a real Chromium, driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`), against the real binary. Screenshots
//! land in `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{Binary, free_port, require_media_tools};

const LONG: Duration = Duration::from_secs(120);

/// A script of a few seconds of narration.
const SCRIPT: &str = "Salt comes from rocks. Rivers carry it to the sea. The sun lifts the water and leaves the salt behind. ";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_browser() {
    for program in ["chromium", "chromedriver"] {
        let found = Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{program} is missing; install it with: apt-get install -y chromium chromium-driver"
        );
    }
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                format!("--window-size={width},{height}"),
                "--autoplay-policy=no-user-gesture-required", "--mute-audio",
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("open a Chromium session")
}

/// Runs `script` (a function body) in the page and returns its value.
async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("run script")
}

/// Polls `script` until it returns something truthy, and returns it.
async fn until(client: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let value = js(client, script).await;
        let truthy = !matches!(value, Value::Null | Value::Bool(false))
            && value != json!(0)
            && value != json!("");
        if truthy {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(name), png).unwrap();
}

/// Submits `script` through the form; returns the new job's id once the
/// page shows it.
async fn submit_script(client: &Client, script: &str) -> String {
    client
        .find(Locator::Id("mode-script"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Typing 1,000 characters key by key is slow; set the value instead.
    js(client, &format!(
        "const s = document.getElementById('script'); s.value = {}; s.dispatchEvent(new Event('input')); return true;",
        json!(script)
    ))
    .await;
    client
        .find(Locator::Id("submit-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let id = until(
        client,
        "the job page opens",
        "const m = location.hash.match(/^#\\/jobs\\/([0-9a-f-]{36})$/); return m && m[1];",
    )
    .await;
    id.as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_dashboard_submits_follows_plays_cancels_fails_and_catches_up() {
    require_media_tools();
    require_browser();
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path());
    let driver = start_driver().await;
    let page = browser(&driver, 1280, 1000).await;
    page.goto(&server.api.url("/")).await.unwrap();
    until(
        &page,
        "the voices load",
        "return document.querySelector('#voice option[value=\"en-us\"]') !== null",
    )
    .await;
    until(
        &page,
        "the event stream is live",
        "return document.getElementById('connection').dataset.state === 'live'",
    )
    .await;

    // A form the server refuses says why.
    client_topic_error(&page).await;

    // Submit from the form, then watch the list move without a reload.
    js(&page, "window.noReload = true; return true;").await;
    let first = submit_script(&page, &SCRIPT.repeat(4)).await;
    js(&page, "location.hash = '#/'; return true;").await;
    let row = format!(".job-row[data-job-id=\"{first}\"]");
    let mut statuses = Vec::new();
    let mut stages = Vec::new();
    let deadline = Instant::now() + LONG;
    loop {
        let seen = js(
            &page,
            &format!(
                "const r = document.querySelector('{row}'); if (!r) return null; \
             return [r.querySelector('.job-status').dataset.status, r.textContent];"
            ),
        )
        .await;
        if let Some([status, text]) = seen.as_array().map(|a| [a[0].clone(), a[1].clone()]) {
            if statuses.last() != Some(&status) {
                statuses.push(status.clone());
            }
            for stage in ["tts", "visuals", "assembly", "critic"] {
                if text.as_str().unwrap().contains(stage) && !stages.contains(&stage) {
                    stages.push(stage);
                }
            }
            if status == "completed" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the row never completed: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        statuses.len() >= 2,
        "the row did not change live: {statuses:?}"
    );
    assert!(
        stages.len() >= 2,
        "the row did not move through stages: {stages:?}"
    );
    assert_eq!(
        js(&page, "return window.noReload === true").await,
        json!(true)
    );
    screenshot(&page, "dashboard-list.png").await;

    // The finished job: video that plays and seeks, and the review.
    page.goto(&server.api.url(&format!("/#/jobs/{first}")))
        .await
        .unwrap();
    until(&page, "the review shows", "const s = document.getElementById('review-score'); return s && s.textContent.includes('/ 10');").await;
    let video = page
        .execute_async(
            "const done = arguments[0]; const v = document.getElementById('video'); \
             v.muted = true; \
             v.play().then(() => { v.addEventListener('seeked', () => done([v.currentTime, v.duration, v.readyState, v.error]), { once: true }); v.currentTime = 3.0; }) \
              .catch(e => done(['play failed', String(e)]));",
            vec![],
        )
        .await
        .expect("play and seek");
    let at = video[0].as_f64().unwrap_or_else(|| panic!("{video}"));
    assert!(
        (at - 3.0).abs() < 0.5 && video[1].as_f64().unwrap() > 4.0,
        "{video}"
    );
    assert!(
        video[2].as_u64().unwrap() >= 1 && video[3].is_null(),
        "{video}"
    );
    let href = js(&page, "return document.getElementById('download').href").await;
    assert!(
        href.as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/jobs/{first}/video"))
    );
    screenshot(&page, "dashboard-job.png").await;

    // Cancel a running job from its page.
    page.goto(&server.api.url("/")).await.unwrap();
    until(
        &page,
        "the form is ready",
        "return document.getElementById('submit-form') !== null",
    )
    .await;
    let second = submit_script(&page, &SCRIPT.repeat(12)).await;
    until(&page, "the job runs", "const s = document.getElementById('job-status'); return s && s.dataset.status === 'processing';").await;
    // The running stage's bar shows the stage's own fraction.
    until(&page, "a running stage shows how far it is", "const b = document.querySelector('#stages .stage[data-status=\"running\"] progress'); return b && b.hasAttribute('value') && b.value > 0;").await;
    page.find(Locator::Id("cancel-job"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &page,
        "the job is cancelled",
        "return document.getElementById('job-status').dataset.status === 'cancelled';",
    )
    .await;
    assert_eq!(server.api.job(&second).await["state"], "cancelled");

    // Reload in the middle of a job: the page catches up, no line twice.
    page.goto(&server.api.url("/")).await.unwrap();
    until(
        &page,
        "the form is ready",
        "return document.getElementById('submit-form') !== null",
    )
    .await;
    let third = submit_script(&page, &SCRIPT.repeat(8)).await;
    until(
        &page,
        "the log fills",
        "return document.querySelectorAll('#log .log-line').length > 8",
    )
    .await;
    page.refresh().await.unwrap();
    until(&page, "the job completes after the reload", "const s = document.getElementById('job-status'); return s && s.dataset.status === 'completed';").await;
    let events = server.api.all_events(&third).await.len();
    let shown = until(&page, "the log catches up", &format!(
        "const ids = [...document.querySelectorAll('#log .log-line')].map(l => l.dataset.eventId); \
         return ids.length >= {events} && ids;")).await;
    let ids = shown.as_array().unwrap();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), events, "every event once");
    assert_eq!(unique.len(), events, "no line twice");

    // Phone width: the list fits, nothing scrolls sideways.
    let phone = browser(&driver, 390, 844).await;
    phone.goto(&server.api.url("/")).await.unwrap();
    until(
        &phone,
        "the list loads",
        "return document.querySelectorAll('.job-row').length >= 3",
    )
    .await;
    let overflow = js(
        &phone,
        "return document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "scrolls sideways by {overflow}"
    );
    screenshot(&phone, "dashboard-phone.png").await;
    phone.close().await.unwrap();
    page.close().await.unwrap();

    // A job that fails shows its error: a server without ffmpeg.
    let dir = tempfile::tempdir().unwrap();
    let broken = Binary::start_with(dir.path(), |cmd| {
        cmd.env("FFMPEG_PATH", "/nonexistent/ffmpeg");
    });
    let page = browser(&driver, 1280, 900).await;
    page.goto(&broken.api.url("/")).await.unwrap();
    until(
        &page,
        "the form is ready",
        "return document.getElementById('submit-form') !== null",
    )
    .await;
    submit_script(&page, SCRIPT).await;
    let error = until(
        &page,
        "the error shows",
        "const e = document.getElementById('job-error'); return e && e.textContent;",
    )
    .await;
    assert!(error.as_str().unwrap().contains("ffmpeg"), "{error}");
    screenshot(&page, "dashboard-failed.png").await;
    page.close().await.unwrap();
}

/// A topic longer than the server allows: its 422 message is shown.
async fn client_topic_error(page: &Client) {
    page.find(Locator::Id("mode-topic"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    js(
        page,
        &format!(
            "document.getElementById('topic').value = {}; return true;",
            json!("a".repeat(501))
        ),
    )
    .await;
    page.find(Locator::Id("submit-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let message = until(
        page,
        "the form says what is wrong",
        "const e = document.getElementById('form-error'); return e && !e.hidden && e.textContent;",
    )
    .await;
    assert!(message.as_str().unwrap().contains("500"), "{message}");
}

#[tokio::test]
async fn the_dashboard_asks_for_a_key_and_rides_out_a_server_restart() {
    require_media_tools();
    require_browser();
    let dir = tempfile::tempdir().unwrap();
    // One port for both lives of the server; the defaults a user gets
    // (relative folders in the working directory), with keys on.
    let port = free_port();
    let start = || {
        Binary::start_with(dir.path(), |cmd| {
            cmd.env("BIND_ADDR", format!("127.0.0.1:{port}"))
                .env("API_KEYS", "k1");
        })
    };
    let server = start();
    let driver = start_driver().await;
    let page = browser(&driver, 1280, 1000).await;
    page.goto(&server.api.url("/")).await.unwrap();
    until(
        &page,
        "the page asks for a key",
        "const k = document.getElementById('api-key'); return k && k.offsetParent !== null;",
    )
    .await;
    page.find(Locator::Id("api-key"))
        .await
        .unwrap()
        .send_keys("k1")
        .await
        .unwrap();
    page.find(Locator::Id("save-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &page,
        "the voices load with the key",
        "return document.querySelector('#voice option[value=\"en-us\"]') !== null",
    )
    .await;
    until(
        &page,
        "the event stream is live",
        "return document.getElementById('connection').dataset.state === 'live'",
    )
    .await;

    let id = submit_script(&page, &SCRIPT.repeat(12)).await;
    until(
        &page,
        "the log fills",
        "return document.querySelectorAll('#log .log-line').length > 8",
    )
    .await;
    server.kill();
    until(
        &page,
        "the page notices",
        "return document.getElementById('connection').dataset.state === 'reconnecting'",
    )
    .await;
    let server = start();
    until(
        &page,
        "the page is live again",
        "return document.getElementById('connection').dataset.state === 'live'",
    )
    .await;
    until(&page, "the job completes after the restart", "const s = document.getElementById('job-status'); return s && s.dataset.status === 'completed';").await;
    let events = server.api.with_key("k1").all_events(&id).await;
    assert!(
        events.iter().any(|e| e["kind"] == "requeued"),
        "the run was interrupted"
    );
    let shown = until(&page, "the log catches up", &format!(
        "const ids = [...document.querySelectorAll('#log .log-line')].map(l => Number(l.dataset.eventId)); \
         return ids.length >= {} && ids;", events.len())).await;
    let expected: Vec<Value> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(
        shown.as_array().unwrap(),
        &expected,
        "every line once, in order"
    );
    screenshot(&page, "dashboard-after-restart.png").await;
    page.close().await.unwrap();
}

//! Following a job to its end over its event stream
//! (`GET /api/jobs/{id}/events` as SSE), for `watch`, `submit --follow` and
//! `logs --follow`.
//!
//! The stream sends the job's log from the start and ends after its last
//! event. When the connection drops (the server restarts, the network
//! blinks), the client reconnects with `Last-Event-ID` and skips any id it
//! has already shown, so no line is missed or repeated. Ctrl-C stops
//! watching (exit 130), and with `--cancel-on-interrupt` cancels the job
//! first.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::client::{Client, ClientError, error_message};
use super::render::View;
use super::{EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};

/// How long the client keeps reconnecting to a server that is gone.
const RECONNECT_FOR: Duration = Duration::from_secs(600);
/// The pause between reconnects.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One live progress bar per stage, log lines above them.
    Bars,
    /// One plain line per event.
    Plain,
    /// One JSON event per line.
    Json,
}

impl Mode {
    /// JSON when asked for; bars when allowed and stdout is a terminal;
    /// plain lines otherwise.
    pub fn choose(json: bool, bars: bool) -> Mode {
        if json {
            Mode::Json
        } else if bars && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

/// Why following stopped early.
enum Stop {
    Interrupted,
    Failed(ClientError),
}

/// One job being followed.
pub struct Follow {
    client: Client,
    id: String,
    mode: Mode,
    cancel_on_interrupt: bool,
    levels: Option<Vec<&'static str>>,
    /// The id of the last event shown.
    last: i64,
}

impl Follow {
    /// Follows job `id`.
    pub fn new(client: Client, id: &str, mode: Mode, cancel_on_interrupt: bool) -> Self {
        Follow {
            client,
            id: id.to_string(),
            mode,
            cancel_on_interrupt,
            levels: None,
            last: 0,
        }
    }

    /// Shows only events of these levels (and the job's last event).
    pub fn with_levels(mut self, levels: Vec<&'static str>) -> Self {
        self.levels = Some(levels);
        self
    }

    /// Follows the job to its end and returns the exit code.
    pub async fn run(mut self) -> u8 {
        let mut view = View::new(self.mode);
        let outcome = tokio::select! {
            outcome = self.stream(&mut view) => outcome,
            _ = tokio::signal::ctrl_c() => Err(Stop::Interrupted),
        };
        view.close();
        match outcome {
            Ok(()) => self.finish().await,
            Err(Stop::Interrupted) => {
                if self.cancel_on_interrupt {
                    let path = format!("/api/v1/jobs/{}/cancel", self.id);
                    match self.client.post(&path, None).await {
                        Ok(_) => eprintln!("cancelled job {}", self.id),
                        Err(err) => eprintln!("could not cancel job {}: {err}", self.id),
                    }
                }
                EXIT_INTERRUPTED
            }
            Err(Stop::Failed(err)) => err.report(),
        }
    }

    fn path(&self) -> String {
        match &self.levels {
            Some(levels) => format!("/api/jobs/{}/events?level={}", self.id, levels.join(",")),
            None => format!("/api/jobs/{}/events", self.id),
        }
    }

    /// Reads the stream, reconnecting as needed, until the job's last
    /// event.
    async fn stream(&mut self, view: &mut View) -> Result<(), Stop> {
        let mut lost_since: Option<Instant> = None;
        loop {
            let mut request = self
                .client
                .request(Method::GET, &self.path())
                .header(header::ACCEPT, "text/event-stream");
            if self.last > 0 {
                request = request.header("last-event-id", self.last.to_string());
            }
            match request.send().await {
                Ok(answer) if answer.status() == StatusCode::OK => {
                    if lost_since.take().is_some() {
                        view.note("reconnected");
                    }
                    let mut events = answer.bytes_stream().eventsource();
                    while let Some(Ok(event)) = events.next().await {
                        if self.take(&event.id, &event.data, view) {
                            return Ok(());
                        }
                    }
                }
                // Nothing after our cursor: the job is over.
                Ok(answer) if answer.status() == StatusCode::NO_CONTENT => return Ok(()),
                Ok(answer) if !answer.status().is_server_error() => {
                    let status = answer.status();
                    let body: Value = answer.json().await.unwrap_or(Value::Null);
                    let message = error_message(&body, status);
                    return Err(Stop::Failed(ClientError::Answer(status, message)));
                }
                Ok(_) | Err(_) => {}
            }
            let since = *lost_since.get_or_insert_with(|| {
                view.note("connection lost; reconnecting…");
                Instant::now()
            });
            if since.elapsed() > RECONNECT_FOR {
                return Err(Stop::Failed(ClientError::Unreachable(format!(
                    "{}: no answer for {} s",
                    self.client.url(""),
                    RECONNECT_FOR.as_secs()
                ))));
            }
            tokio::time::sleep(RECONNECT_EVERY).await;
        }
    }

    /// Shows one event unless it was shown before; true for the job's
    /// last event.
    fn take(&mut self, id: &str, data: &str, view: &mut View) -> bool {
        let id = id.trim().parse::<i64>().unwrap_or(0);
        if id != 0 && id <= self.last {
            return false;
        }
        self.last = self.last.max(id);
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return false;
        };
        view.show(&event);
        matches!(
            event["kind"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    }

    /// Prints how the job ended and returns its exit code.
    async fn finish(&self) -> u8 {
        let job = match self.client.get(&format!("/api/v1/jobs/{}", self.id)).await {
            Ok(answer) => answer["data"].clone(),
            Err(err) => return err.report(),
        };
        let status = job["status"].as_str().unwrap_or("unknown");
        let path = self
            .client
            .get(&format!("/api/jobs/{}", self.id))
            .await
            .ok()
            .and_then(|j| j["job"]["resultPath"].as_str().map(str::to_string));
        let url = self.client.url(&format!("/api/v1/jobs/{}/video", self.id));
        let error = job["error"].as_str().unwrap_or("");
        if self.mode == Mode::Json {
            let end = json!({
                "job_id": self.id, "status": status, "error": job["error"],
                "result_path": path, "video_url": (status == "completed").then_some(&url),
            });
            println!("{end}");
        } else {
            match status {
                "completed" => {
                    println!("completed: {}", path.as_deref().unwrap_or("(no file)"));
                    println!("{url}");
                }
                "failed" => println!("failed: {error}"),
                other => println!("{other}"),
            }
        }
        match status {
            "completed" => EXIT_OK,
            "failed" => EXIT_FAILED,
            "cancelled" => EXIT_CANCELLED,
            _ => EXIT_ERROR,
        }
    }
}

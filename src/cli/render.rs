//! What the terminal client prints: events as bars, lines or JSON, the job
//! table, and log pages.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{Local, TimeZone};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::client::Client;
use super::follow::Mode;
use super::{EXIT_ERROR, EXIT_OK};

/// Every level, mildest first.
const LEVELS: [&str; 4] = ["info", "success", "warning", "error"];

/// The levels at least as severe as `mildest`.
pub fn levels_from(mildest: &str) -> Option<Vec<&'static str>> {
    let from = LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(mildest))?;
    Some(LEVELS[from..].to_vec())
}

/// One event as a line: local time, level, stage, message.
fn line(event: &Value) -> String {
    let time = event["timestamp"]
        .as_f64()
        .and_then(|t| Local.timestamp_millis_opt((t * 1000.0) as i64).single())
        .map_or_else(|| "--:--:--".into(), |t| t.format("%H:%M:%S").to_string());
    let level = event["level"].as_str().unwrap_or("info");
    let stage = event["stage"].as_str().unwrap_or("-");
    let message = event["message"].as_str().unwrap_or("");
    format!("{time} {level:<7} {stage:<9} {message}")
}

/// Where a followed job's events go.
pub struct View {
    mode: Mode,
    bars: Option<Bars>,
}

/// One bar per stage, with log lines printed above them.
struct Bars {
    multi: MultiProgress,
    stages: HashMap<String, ProgressBar>,
    /// When each stage started, by the server's clock, so that a log
    /// replayed after the fact shows the real durations.
    started: HashMap<String, f64>,
}

impl View {
    /// A view in `mode`.
    pub fn new(mode: Mode) -> Self {
        let bars = (mode == Mode::Bars).then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            stages: HashMap::new(),
            started: HashMap::new(),
        });
        View { mode, bars }
    }

    /// Shows one event.
    pub fn show(&mut self, event: &Value) {
        match (&mut self.bars, self.mode) {
            (Some(bars), _) => bars.show(event),
            (None, Mode::Json) => println!("{event}"),
            (None, _) => println!("{}", line(event)),
        }
    }

    /// A note about the connection: above the bars, or on stderr so that
    /// stdout holds only events.
    pub fn note(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.multi.println(format!("-- {text}"));
            }
            None => eprintln!("-- {text}"),
        }
    }

    /// Leaves the bars drawn as they are, for the lines that follow.
    pub fn close(&mut self) {
        if let Some(bars) = &self.bars {
            for bar in bars.stages.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>9.bold} [{bar:30.cyan/blue}] {pos:>3}% {elapsed:>4} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn ended_style(color: &str) -> ProgressStyle {
    let template = format!("{{prefix:>9.bold}} [{{bar:30.{color}}}] {{wide_msg}}");
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    fn bar(&mut self, stage: &str) -> ProgressBar {
        if let Some(bar) = self.stages.get(stage) {
            return bar.clone();
        }
        let bar = self.multi.add(ProgressBar::new(100));
        bar.set_style(running_style());
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.stages.insert(stage.to_string(), bar.clone());
        bar
    }

    fn show(&mut self, event: &Value) {
        let stage = event["stage"].as_str();
        let message = event["message"].as_str().unwrap_or("");
        let at = event["timestamp"].as_f64();
        match (event["kind"].as_str(), stage) {
            (Some("start"), Some(stage)) => {
                if let Some(at) = at {
                    self.started.insert(stage.to_string(), at);
                }
                // A stage that runs again (after a restart) starts over.
                let bar = self.bar(stage);
                bar.reset();
                bar.set_style(running_style());
                bar.set_message(String::new());
            }
            (Some("complete"), Some(stage)) => {
                let bar = self.bar(stage);
                let took = match (self.started.get(stage), at) {
                    (Some(start), Some(end)) => end - start,
                    _ => bar.elapsed().as_secs_f64(),
                };
                bar.set_style(ended_style("green"));
                bar.set_position(100);
                bar.finish_with_message(format!("done in {took:.1} s"));
            }
            (Some("skipped"), Some(stage)) => {
                let bar = self.bar(stage);
                bar.set_style(ended_style("white"));
                bar.finish_with_message(format!("skipped: {message}"));
            }
            (Some("error"), Some(stage)) => {
                let bar = self.bar(stage);
                bar.set_style(ended_style("red"));
                bar.abandon_with_message(format!("failed: {message}"));
            }
            _ if event["type"] == "progress" => {
                let fraction = event["payload"]["stage_progress"].as_f64();
                if let (Some(stage), Some(fraction)) = (stage, fraction) {
                    let bar = self.bar(stage);
                    bar.set_position((fraction * 100.0).round() as u64);
                    bar.set_message(message.to_string());
                }
            }
            _ => {
                let _ = self.multi.println(line(event));
            }
        }
    }
}

/// `reelay jobs`: a table, or JSON lines.
pub async fn jobs(
    client: &Client,
    status: Option<String>,
    page: u32,
    limit: u32,
    json: bool,
) -> u8 {
    let mut path = format!("/api/v1/jobs?page={page}&page_size={limit}");
    if let Some(status) = status {
        path.push_str("&status=");
        path.push_str(&status);
    }
    let list = match client.get(&path).await {
        Ok(list) => list,
        Err(err) => return err.report(),
    };
    let jobs = list["jobs"].as_array().cloned().unwrap_or_default();
    if json {
        for job in &jobs {
            println!("{job}");
        }
        return EXIT_OK;
    }
    println!(
        "{:<36}  {:<10}  {:>4}  {:<9}  {:<16}  TOPIC",
        "ID", "STATUS", "%", "STAGE", "CREATED"
    );
    for job in &jobs {
        let created = job["created_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(String::new, |t| {
                t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
            });
        println!(
            "{:<36}  {:<10}  {:>4}  {:<9}  {:<16}  {}",
            job["job_id"].as_str().unwrap_or(""),
            job["status"].as_str().unwrap_or(""),
            job["progress_percent"].as_u64().unwrap_or(0),
            job["current_stage"].as_str().unwrap_or("-"),
            created,
            job["topic"].as_str().unwrap_or(""),
        );
    }
    let total = list["total"].as_u64().unwrap_or(0);
    println!("page {page}, {} of {total} jobs", jobs.len());
    EXIT_OK
}

/// `reelay cancel`.
pub async fn cancel(client: &Client, id: &str) -> u8 {
    match client
        .post(&format!("/api/v1/jobs/{id}/cancel"), None)
        .await
    {
        Ok(answer) => {
            let message = answer["message"].as_str().unwrap_or("cancel requested");
            println!("{id}: {message}");
            EXIT_OK
        }
        Err(err) => err.report(),
    }
}

/// `reelay logs` without `--follow`: every event so far, page by page.
pub async fn log_pages(client: &Client, id: &str, levels: &[&str], json: bool) -> u8 {
    let mut after = 0;
    loop {
        let path = format!(
            "/api/jobs/{id}/events?after={after}&limit=1000&level={}",
            levels.join(",")
        );
        let page = match client.get(&path).await {
            Ok(page) => page,
            Err(err) => return err.report(),
        };
        let Some(events) = page["events"].as_array().filter(|e| !e.is_empty()) else {
            return EXIT_OK;
        };
        for event in events {
            if json {
                println!("{event}");
            } else {
                println!("{}", line(event));
            }
            after = after.max(event["id"].as_i64().unwrap_or(after));
        }
        if after == 0 {
            return EXIT_ERROR;
        }
    }
}

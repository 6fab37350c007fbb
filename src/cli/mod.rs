//! The command line: `reelay serve` (the default) runs the server, and the
//! other commands are a terminal client of a running server, over the same
//! HTTP API every other client uses.
//!
//! Exit codes: 0 when the job completed (or the command did its work), 1
//! when it failed, 2 when it was cancelled, 3 when the command could not
//! do its work (bad arguments, no server, an error answer), 130 on Ctrl-C.

mod client;
mod follow;
mod render;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};

use crate::Config;
pub use client::Client;
use follow::{Follow, Mode};

/// Exit code of a completed job or a command that did its work.
pub const EXIT_OK: u8 = 0;
/// Exit code of a failed job.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a cancelled job.
pub const EXIT_CANCELLED: u8 = 2;
/// Exit code of a command that could not do its work.
pub const EXIT_ERROR: u8 = 3;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// `reelay`: with no command (or `serve`), the server; otherwise a client.
#[derive(Debug, Parser)]
#[command(
    name = "reelay",
    version,
    about = "Self-hosted server for video-generation jobs, and its terminal client",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; the server when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's settings, for `reelay` with no command.
    #[command(flatten)]
    pub serve: Config,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what plain `reelay` does).
    Serve(Box<Config>),
    /// Submit a job; with --follow, watch it to the end.
    Submit(SubmitArgs),
    /// Follow a job to the end with one progress bar per stage.
    Watch {
        /// The job's id.
        id: String,
        /// How to follow it.
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// List jobs, newest first.
    Jobs {
        /// Only these states: queued, processing, completed, failed,
        /// cancelled (comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Jobs per page, 1 to 100.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Where the server is.
        #[command(flatten)]
        server: Server,
    },
    /// Print a job's log; with --follow, until the job ends.
    Logs {
        /// The job's id.
        id: String,
        /// Keep printing new lines until the job ends.
        #[arg(long, short)]
        follow: bool,
        /// The mildest level shown: info, success, warning or error.
        #[arg(long, default_value = "info")]
        level: String,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
        /// Where the server is.
        #[command(flatten)]
        server: Server,
    },
    /// Cancel a job.
    Cancel {
        /// The job's id.
        id: String,
        /// Where the server is.
        #[command(flatten)]
        server: Server,
    },
    /// Print the dashboard's URL of a job.
    Open {
        /// The job's id.
        id: String,
        /// Where the server is.
        #[command(flatten)]
        server: Server,
    },
}

/// Where the server is, and the key it needs.
#[derive(Debug, Clone, Args)]
pub struct Server {
    /// The server's base URL.
    #[arg(
        long = "server",
        env = "REELAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// An API key, when the server has API_KEYS set.
    #[arg(long, env = "REELAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// How a followed job is shown.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// One JSON event per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// On Ctrl-C, cancel the job as well as stop watching.
    #[arg(long)]
    pub cancel_on_interrupt: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: Server,
}

/// `reelay submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// What the video is about.
    #[arg(long, required_unless_present = "script")]
    pub topic: Option<String>,
    /// Narration to use as is (research is skipped).
    #[arg(long)]
    pub script: Option<String>,
    /// Voice, as `GET /api/v1/voices` lists them (e.g. en-us).
    #[arg(long)]
    pub voice: Option<String>,
    /// Narration language.
    #[arg(long)]
    pub language: Option<String>,
    /// 9:16, 16:9 or 1:1.
    #[arg(long)]
    pub aspect_ratio: Option<String>,
    /// Number of scenes, 1 to 20.
    #[arg(long)]
    pub scenes: Option<u32>,
    /// Mix a track from the music library under the narration.
    #[arg(long)]
    pub music: bool,
    /// top, center or bottom.
    #[arg(long)]
    pub subtitles_position: Option<String>,
    /// Watch the job to the end, as `reelay watch` does.
    #[arg(long)]
    pub follow: bool,
    /// How to follow it.
    #[command(flatten)]
    pub watch: WatchArgs,
}

impl SubmitArgs {
    /// The body of `POST /api/v1/jobs`.
    fn body(&self) -> Value {
        let mut body = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(name.into(), value);
            }
        };
        put("topic", self.topic.clone().map(Value::from));
        put("script", self.script.clone().map(Value::from));
        put("voice", self.voice.clone().map(Value::from));
        put("language", self.language.clone().map(Value::from));
        put("aspect_ratio", self.aspect_ratio.clone().map(Value::from));
        put("scene_count", self.scenes.map(Value::from));
        put(
            "subtitles_position",
            self.subtitles_position.clone().map(Value::from),
        );
        put("use_music", Some(Value::from(self.music)));
        Value::Object(body)
    }
}

/// Runs a client command and returns its exit code.
pub async fn run(command: Command) -> ExitCode {
    let code = match command {
        Command::Serve(_) => unreachable_serve(),
        Command::Submit(args) => submit(args).await,
        Command::Watch { id, watch } => watch_job(&id, &watch).await,
        Command::Jobs {
            status,
            page,
            limit,
            json,
            server,
        } => render::jobs(&Client::new(&server), status, page, limit, json).await,
        Command::Logs {
            id,
            follow,
            level,
            json,
            server,
        } => logs(&id, follow, &level, json, &server).await,
        Command::Cancel { id, server } => render::cancel(&Client::new(&server), &id).await,
        Command::Open { id, server } => {
            println!("{}", Client::new(&server).dashboard_url(&id));
            EXIT_OK
        }
    };
    ExitCode::from(code)
}

/// `serve` never reaches the client: the binary serves it.
fn unreachable_serve() -> u8 {
    eprintln!("error: `serve` runs the server, not a client command");
    EXIT_ERROR
}

async fn submit(args: SubmitArgs) -> u8 {
    let client = Client::new(&args.watch.server);
    let job = match client.post("/api/v1/jobs", Some(args.body())).await {
        Ok(answer) => answer["data"].clone(),
        Err(err) => return err.report(),
    };
    let id = job["job_id"].as_str().unwrap_or_default().to_string();
    if args.watch.json {
        println!("{}", json!({ "job": job }));
    } else {
        println!("{id}");
    }
    if !args.follow {
        return EXIT_OK;
    }
    watch_job(&id, &args.watch).await
}

async fn watch_job(id: &str, watch: &WatchArgs) -> u8 {
    let client = Client::new(&watch.server);
    let mode = Mode::choose(watch.json, true);
    Follow::new(client, id, mode, watch.cancel_on_interrupt)
        .run()
        .await
}

async fn logs(id: &str, follow: bool, level: &str, json: bool, server: &Server) -> u8 {
    let Some(levels) = render::levels_from(level) else {
        eprintln!("error: --level must be info, success, warning or error");
        return EXIT_ERROR;
    };
    let client = Client::new(server);
    if follow {
        let mode = Mode::choose(json, false);
        return Follow::new(client, id, mode, false)
            .with_levels(levels)
            .run()
            .await;
    }
    render::log_pages(&client, id, &levels, json).await
}

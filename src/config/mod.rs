//! One typed configuration, read from the environment, `.env` and flags.
//!
//! Every field has an environment variable whose name operators and scripts
//! rely on, and a long flag of the same name in kebab case. `.env.example`
//! lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

mod durations;
pub use durations::Durations;

/// Server configuration. Build it with [`Config::from_env`] in the binary and
/// with [`Config::default`] plus field updates in tests.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "reelay",
    version,
    about = "Self-hosted server for video-generation jobs"
)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0:8080")]
    pub bind_addr: SocketAddr,

    /// `sqlite://<file>` (the file and its folder are created if missing)
    /// or `postgres://...`, which any number of instances may share.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/reelay.db")]
    pub database_url: String,

    /// This instance's name in job leases and `/health`; empty: a fresh
    /// random one at each start.
    #[arg(long, env = "INSTANCE_ID", default_value = "")]
    pub instance_id: String,

    /// Folder for job artifacts (one sub-folder per job).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// How many jobs run at once in this instance; 0 runs none (an
    /// instance that only serves the API, beside others that run jobs).
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2)]
    pub worker_concurrency: usize,

    /// Comma-separated origins allowed by CORS, or `*` for any.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*")]
    pub cors_allowed_origins: String,

    /// Comma-separated API keys. Empty: no key is needed. Set: every route
    /// but `/health` needs `Authorization: Bearer <key>` (event streams
    /// also take `?access_token=<key>`).
    #[arg(long, env = "API_KEYS", default_value = "")]
    pub api_keys: String,

    /// A key that `/metrics` accepts besides the API keys; empty: none.
    #[arg(long, env = "METRICS_API_KEY", default_value = "")]
    pub metrics_api_key: String,

    /// Jobs that may wait in the queue; past it submits get 429.
    #[arg(long, env = "MAX_QUEUED_JOBS", default_value_t = 1000)]
    pub max_queued_jobs: u64,

    /// Requests a minute per API key (per client IP when keys are off);
    /// past it 429. 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_MIN", default_value_t = 0)]
    pub rate_limit_per_min: u32,

    /// Seconds a submit waits for an earlier request with the same
    /// Idempotency-Key to answer before it gets 409.
    #[arg(long, env = "IDEMPOTENCY_WAIT_SECS", default_value_t = 60)]
    pub idempotency_wait_secs: u64,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest song upload (all files of one request), in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Most files one song upload may carry.
    #[arg(long, env = "MAX_UPLOAD_FILES", default_value_t = 20)]
    pub max_upload_files: usize,

    /// Slowest an upload may arrive, in KiB per second, once its first
    /// BODY_TIMEOUT_SECS are used up.
    #[arg(long, env = "UPLOAD_MIN_KIB_PER_SEC", default_value_t = 64)]
    pub upload_min_kib_per_sec: u64,

    /// Seconds a request body may take to arrive whole, counted from the end
    /// of its head.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Seconds a connection may sit idle (no request in flight) before it
    /// is closed, for HTTP/1 and HTTP/2 alike.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub idle_timeout_secs: u64,

    /// Most connections open at once; past it the server waits for one to
    /// close before it accepts the next.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 25_000)]
    pub max_connections: usize,

    /// Serve `GET /metrics` in the Prometheus text format and record the
    /// figures it shows. When false the route answers 404 and nothing is
    /// recorded. Takes true or false (also 1/0, yes/no, on/off).
    #[arg(
        long,
        env = "METRICS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub metrics_enabled: bool,

    /// New jobs are refused (507) while the data folder's filesystem has
    /// less free space than this, in MiB.
    #[arg(long, env = "MIN_FREE_DISK_MB", default_value_t = 500)]
    pub min_free_disk_mb: u64,

    /// Finished jobs older than this many days are deleted with their
    /// events and folder, in the background; 0 keeps them.
    #[arg(long, env = "JOB_RETENTION_DAYS", default_value_t = 0)]
    pub job_retention_days: u64,

    /// Send webhooks to loopback, private and link-local addresses too.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Waits before each webhook retry; after the last, a delivery fails.
    #[arg(
        long,
        env = "WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h"
    )]
    pub webhook_retry_schedule: Durations,

    /// A webhook subscription that keeps failing this long is disabled.
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER", default_value = "5d")]
    pub webhook_disable_after: Durations,

    /// Days a delivered or failed webhook message stays in the history.
    #[arg(long, env = "WEBHOOK_HISTORY_DAYS", default_value_t = 30)]
    pub webhook_history_days: u64,

    /// Seconds one webhook attempt may take.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 15)]
    pub webhook_timeout_secs: u64,

    /// Most webhook deliveries in flight to one host.
    #[arg(long, env = "WEBHOOK_MAX_PER_HOST", default_value_t = 4)]
    pub webhook_max_per_host: usize,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,

    /// Seconds a `/api/progress` stream stays open before it closes.
    #[arg(long, env = "PROGRESS_TIMEOUT_SECS", default_value_t = 300)]
    pub progress_timeout_secs: u64,

    /// How many events the in-memory log cache holds before it evicts jobs.
    #[arg(long, env = "EVENT_CACHE_EVENTS", default_value_t = 200_000)]
    pub event_cache_events: usize,

    /// How many bytes of events the in-memory log cache holds before it
    /// evicts jobs.
    #[arg(long, env = "EVENT_CACHE_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub event_cache_bytes: usize,

    /// Base URL clients use to reach this server, for absolute links such as
    /// `output_video_url`. Empty: taken from the request's `Host` header.
    #[arg(long, env = "PUBLIC_URL", default_value = "")]
    pub public_url: String,

    /// ffmpeg executable (a name on PATH or a path).
    #[arg(long, env = "FFMPEG_PATH", default_value = "ffmpeg")]
    pub ffmpeg_path: String,

    /// ffprobe executable (a name on PATH or a path).
    #[arg(long, env = "FFPROBE_PATH", default_value = "ffprobe")]
    pub ffprobe_path: String,

    /// espeak-ng executable (a name on PATH or a path).
    #[arg(long, env = "ESPEAK_PATH", default_value = "espeak-ng")]
    pub espeak_path: String,

    /// TrueType font for title cards and subtitles.
    #[arg(
        long,
        env = "FONT_PATH",
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    )]
    pub font_path: PathBuf,

    /// OpenAI-compatible API used for research and scene plans.
    #[arg(
        long,
        env = "LLM_BASE_URL",
        default_value = "http://localhost:11434/v1"
    )]
    pub llm_base_url: String,

    /// Model name sent to the LLM; a request's `aiModel` overrides it.
    #[arg(long, env = "LLM_MODEL", default_value = "llama3.2")]
    pub llm_model: String,

    /// Bearer token for the LLM API, if it needs one.
    #[arg(long, env = "LLM_API_KEY", default_value = "")]
    pub llm_api_key: String,

    /// Seconds one LLM request may take.
    #[arg(long, env = "LLM_TIMEOUT_SECS", default_value_t = 120)]
    pub llm_timeout_secs: u64,

    /// OpenAI-compatible speech API (`{base}/audio/speech`); empty uses espeak-ng.
    #[arg(long, env = "TTS_BASE_URL", default_value = "")]
    pub tts_base_url: String,

    /// Path of the speech endpoint under `TTS_BASE_URL`. One that answers
    /// JSON with base64 audio and word timestamps (Kokoro's
    /// `dev/captioned_speech`) gives captions the API's own word times.
    #[arg(long, env = "TTS_SPEECH_PATH", default_value = "audio/speech")]
    pub tts_speech_path: String,

    /// Model name sent to the speech API.
    #[arg(long, env = "TTS_MODEL", default_value = "tts-1")]
    pub tts_model: String,

    /// Voice for the speech API when the request names none.
    #[arg(long, env = "TTS_VOICE", default_value = "alloy")]
    pub tts_voice: String,

    /// Bearer token for the speech API, if it needs one.
    #[arg(long, env = "TTS_API_KEY", default_value = "")]
    pub tts_api_key: String,

    /// espeak-ng voice used when the request names none or an unknown one.
    #[arg(long, env = "DEFAULT_VOICE", default_value = "en-us")]
    pub default_voice: String,

    /// Pexels API key for stock footage; empty disables Pexels.
    #[arg(long, env = "PEXELS_API_KEY", default_value = "")]
    pub pexels_api_key: String,

    /// Pexels API base URL.
    #[arg(
        long,
        env = "PEXELS_BASE_URL",
        default_value = "https://api.pexels.com"
    )]
    pub pexels_base_url: String,

    /// Local footage library: videos and images matched by file name.
    #[arg(long, env = "FOOTAGE_DIR", default_value = "footage")]
    pub footage_dir: PathBuf,

    /// Music library: tracks picked by mood; uploads land here.
    #[arg(long, env = "MUSIC_DIR", default_value = "music")]
    pub music_dir: PathBuf,

    /// Output frame when a request names none: `9:16`, `16:9` or `1:1`.
    #[arg(long, env = "DEFAULT_ASPECT", default_value = "9:16")]
    pub default_aspect: String,

    /// x264 preset for the final render.
    #[arg(long, env = "X264_PRESET", default_value = "veryfast")]
    pub x264_preset: String,

    /// Extra x264 options for the render. The default suits still scenes:
    /// a short lookahead and no B-frames cost little quality there and
    /// save a fifth of the encode time.
    #[arg(long, env = "X264_PARAMS", default_value = "rc-lookahead=5:bframes=0")]
    pub x264_params: String,
}

impl Default for Config {
    /// The documented defaults. The process environment is ignored, so tests
    /// that build a config this way are not affected by the shell they run in.
    fn default() -> Self {
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command.get_matches_from(["reelay"]);
        Config::from_arg_matches(&matches).expect("the defaults form a valid config")
    }
}

impl Config {
    /// Reads `.env` (if present), then the environment and the command line.
    pub fn from_env() -> Self {
        let _ = dotenvy::dotenv();
        Config::parse()
    }

    /// The same configuration with every path absolute, resolved against
    /// the working directory: the data, music and footage folders, the
    /// font, and a relative SQLite database. Jobs run their tools in their
    /// own folders, where a relative path would point nowhere.
    pub fn with_absolute_paths(mut self) -> Self {
        for path in [
            &mut self.data_dir,
            &mut self.music_dir,
            &mut self.footage_dir,
            &mut self.font_path,
        ] {
            if let Ok(absolute) = std::path::absolute(&*path) {
                *path = absolute;
            }
        }
        self.database_url = absolute_sqlite_url(&self.database_url);
        self
    }

    /// The SQLite database file, or `None` for an in-memory database.
    pub fn database_file(&self) -> Option<PathBuf> {
        let (path, _) = sqlite_path(&self.database_url)?;
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// How long a connection may sit idle.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// How long a request body may take.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    /// Interval between SSE keep-alive comments.
    pub fn sse_keepalive(&self) -> Duration {
        Duration::from_secs(self.sse_keepalive_secs.max(1))
    }

    /// How long a seed 002 progress stream stays open.
    pub fn progress_timeout(&self) -> Duration {
        Duration::from_secs(self.progress_timeout_secs)
    }
}

/// The path part of a `sqlite:` URL and what follows it (`?mode=...`).
fn sqlite_path(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.find('?') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    })
}

/// A `sqlite:` URL whose relative file path is made absolute.
fn absolute_sqlite_url(url: &str) -> String {
    match sqlite_path(url) {
        Some((path, query)) if !path.is_empty() && path != ":memory:" && !path.starts_with('/') => {
            match std::path::absolute(path) {
                Ok(absolute) => format!("sqlite://{}{query}", absolute.display()),
                Err(_) => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_and_others_stay() {
        let cwd = std::env::current_dir().unwrap();
        let config = Config::default().with_absolute_paths();
        assert_eq!(config.music_dir, cwd.join("music"));
        assert_eq!(config.data_dir, cwd.join("data"));
        assert_eq!(
            config.database_url,
            format!("sqlite://{}", cwd.join("data/reelay.db").display())
        );
        assert_eq!(config.database_file(), Some(cwd.join("data/reelay.db")));
        assert_eq!(absolute_sqlite_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            absolute_sqlite_url("sqlite:///srv/r.db?mode=rwc"),
            "sqlite:///srv/r.db?mode=rwc"
        );
        assert_eq!(
            absolute_sqlite_url("sqlite:x.db?mode=rwc"),
            format!("sqlite://{}?mode=rwc", cwd.join("x.db").display())
        );
    }
}

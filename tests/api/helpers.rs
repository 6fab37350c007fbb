//! A real server on 127.0.0.1:0 with its own temp database and data folder,
//! and a client that talks to it over HTTP.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use reelay::pipeline::Pipeline;
use reelay::pipeline::media::{self, MediaEnv};
use reelay::{AppState, Config, Reelay};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A client of one running server, in this process or a real binary: the
/// one place tests talk HTTP and wait for a job.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `http://host:port`.
    pub base: String,
}

impl Api {
    pub fn new(base: String) -> Self {
        Api {
            client: reqwest::Client::new(),
            base,
        }
    }

    /// The same server, every request carrying `key` as its bearer token.
    pub fn with_key(&self, key: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {key}").parse().expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Api {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client"),
            base: self.base.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self.client.get(self.url(path)).send().await.expect("GET");
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = res.status();
        (status, res.json().await.expect("JSON body"))
    }

    /// Submits a MoneyPrinter body and returns the job's id.
    pub async fn submit_body(&self, body: Value) -> String {
        let (status, reply) = self.post("/api/generate", body).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        reply["jobId"].as_str().expect("jobId").to_string()
    }

    /// Submits a MoneyPrinter job about `subject` and returns its id.
    pub async fn submit(&self, subject: &str) -> String {
        self.submit_body(serde_json::json!({ "videoSubject": subject }))
            .await
    }

    pub async fn job(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["job"].clone()
    }

    /// Polls the job until `done` holds (it may assert on the way),
    /// failing after `timeout`.
    pub async fn wait_job(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "timed out; job is {job:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        self.wait_job(id, timeout, |job| job["state"] == state)
            .await
    }

    /// Polls the job's log until an event matches `wanted`, failing after
    /// `timeout`, and returns it.
    pub async fn wait_event(
        &self,
        id: &str,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.all_events(id).await.into_iter().find(&wanted) {
                return event;
            }
            assert!(Instant::now() < deadline, "timed out waiting for an event");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every event of a job, read page by page with `after`.
    pub async fn all_events(&self, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (status, body) = self
                .get(&format!("/api/jobs/{id}/events?after={after}&limit=1000"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body["events"].as_array().expect("events").clone();
            let Some(last) = page.last() else { return out };
            after = last["id"].as_i64().expect("id");
            out.extend(page);
        }
    }
}

/// A server in this process, with its own temp database and data folder.
/// It derefs to its [`Api`].
pub struct TestServer {
    pub addr: SocketAddr,
    pub api: Api,
    pub state: AppState,
    pub dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The PostgreSQL server the tests run against instead of SQLite files,
/// when `REELAY_TEST_DATABASE` names one (`postgres://...`).
pub fn test_postgres() -> Option<String> {
    std::env::var("REELAY_TEST_DATABASE")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// The database of the test rooted in `dir`: a SQLite file in it, or on
/// PostgreSQL a schema of its own, named after the folder, so that two
/// servers on one folder share a database as two instances would.
pub fn database_url(dir: &Path) -> String {
    match test_postgres() {
        Some(server) => schema_url(&server, dir),
        None => format!("sqlite://{}", dir.join("reelay.db").display()),
    }
}

/// `server` (a `postgres://` URL) with a schema of its own for `dir`,
/// created if missing.
pub fn schema_url(server: &str, dir: &Path) -> String {
    let schema = format!("t_{}", schema_suffix(dir));
    let statement = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
    let admin = server.to_string();
    // The tests' runtime may be a current-thread one: run the statement
    // on a thread of its own.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("REELAY_TEST_DATABASE: connect to PostgreSQL");
            // The schema name is hex made here, not input.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .expect("create the test's schema");
        })
    })
    .join()
    .expect("schema thread");
    let joiner = if server.contains('?') { '&' } else { '?' };
    format!("{server}{joiner}options=-c%20search_path%3D{schema}")
}

/// Runs `sql` with one text parameter on the database of the test rooted
/// in `dir` (its SQLite file, or its PostgreSQL schema), as an operator
/// would by hand.
pub async fn execute_on_database(dir: &Path, sql: &'static str, param: &str) {
    use sqlx::Connection;
    let url = database_url(dir);
    if test_postgres().is_some() {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sql).bind(param).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(sql).bind(param).execute(&mut db).await.unwrap();
    }
}

/// A short name for a folder, stable for the folder.
fn schema_suffix(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A config rooted in `dir`, ignoring the environment. A restart on the
/// same folder is the same instance.
pub fn config_in(dir: &TempDir) -> Config {
    Config {
        database_url: database_url(dir.path()),
        instance_id: format!("test-{}", schema_suffix(dir.path())),
        data_dir: dir.path().join("data"),
        footage_dir: dir.path().join("footage"),
        music_dir: dir.path().join("music"),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start(pipeline: Pipeline) -> Self {
        Self::start_with(pipeline, |_| {}).await
    }

    pub async fn start_with(pipeline: Pipeline, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, pipeline, tweak).await
    }

    /// Starts on an existing folder: a restart on the same database.
    pub async fn start_in(
        dir: Arc<TempDir>,
        pipeline: Pipeline,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_built(dir, |_| pipeline, tweak).await
    }

    /// Starts with the built-in media pipeline, configured like the server.
    pub async fn start_media(tweak: impl FnOnce(&mut Config)) -> Self {
        require_media_tools();
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_built(
            dir,
            |config| media::pipeline(MediaEnv::new(Arc::new(config.clone()))),
            tweak,
        )
        .await
    }

    async fn start_built(
        dir: Arc<TempDir>,
        pipeline: impl FnOnce(&Config) -> Pipeline,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = config_in(&dir);
        tweak(&mut config);
        let pipeline = pipeline(&config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reelay = Reelay::start(config, pipeline).await.expect("start");
        let state = reelay.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(reelay.serve(listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            api: Api::new(format!("http://{addr}")),
            state,
            dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server as SIGTERM would and returns how long it took.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("serve");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The real `reelay` binary on port 0, its log collected.
pub struct Binary {
    pub child: Child,
    pub api: Api,
    log: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Everything under `dir`, given as absolute paths.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, |cmd| {
            cmd.env("DATABASE_URL", database_url(dir))
                .env("INSTANCE_ID", format!("test-{}", schema_suffix(dir)))
                .env("DATA_DIR", dir.join("data"))
                .env("FOOTAGE_DIR", dir.join("footage"))
                .env("MUSIC_DIR", dir.join("music"));
        })
    }

    /// Run in `dir` with only `PATH`, `BIND_ADDR` and `RUST_LOG` set, and
    /// whatever `configure` adds: the defaults a user gets, except that
    /// with `REELAY_TEST_DATABASE` the database is the test's PostgreSQL
    /// schema (`configure` may still name another).
    pub fn start_with(dir: &Path, configure: impl FnOnce(&mut Command)) -> Self {
        Self::start_as_user(dir, |cmd| {
            if test_postgres().is_some() {
                cmd.env("DATABASE_URL", database_url(dir))
                    .env("INSTANCE_ID", format!("test-{}", schema_suffix(dir)));
            }
            configure(cmd);
        })
    }

    /// Run in `dir` with only `PATH`, `BIND_ADDR` and `RUST_LOG` set, and
    /// whatever `configure` adds: exactly the defaults a user gets, the
    /// SQLite database under `data/` included.
    pub fn start_as_user(dir: &Path, configure: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("start the reelay binary");
        // The first log line with an address says where it listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .expect("read the server log");
            log.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Binary {
            child,
            api: Api::new(format!("http://{addr}")),
            log,
        }
    }

    /// Waits until a log line contains `needle`, and returns it.
    pub async fn log_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// True when any log line so far contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that `check` holds for the whole of `window`, polling it: how a
/// test shows that something does not happen.
pub async fn throughout<F, Fut>(window: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(check().await, "{what} stopped holding");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `check` holds, polling every 10 ms, failing after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ids of events, asserting they strictly increase.
pub fn strictly_increasing_ids(events: &[Value]) -> Vec<i64> {
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    for pair in ids.windows(2) {
        assert!(pair[0] < pair[1], "ids not strictly increasing: {ids:?}");
    }
    ids
}

/// Fails, with the install command, when the media tools are missing.
pub fn require_media_tools() {
    for tool in ["ffmpeg", "ffprobe", "espeak-ng"] {
        let found = std::process::Command::new(tool)
            .arg(if tool == "espeak-ng" {
                "--version"
            } else {
                "-version"
            })
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is needed by this test. Install the media tools with: \
             sudo apt-get install -y ffmpeg espeak-ng fonts-dejavu-core"
        );
    }
}

/// Serves `router` on 127.0.0.1:0 for the rest of the test.
pub async fn spawn_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Runs a command to make a test fixture, failing loudly if it fails.
pub fn make_fixture(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `out` from one of ffmpeg's lavfi sources (`sine=...`).
pub fn make_lavfi(source: &str, out: &std::path::Path) {
    make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            source,
            out.to_str().unwrap(),
        ],
    );
}

/// What ffprobe says of a file, as JSON.
pub fn ffprobe(path: &str) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            path,
        ])
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {path}");
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Like [`spawn_router`], with a handle that stops the server.
pub async fn spawn_stoppable(router: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, handle)
}

/// A port free a moment ago, for a server that must come back on the same
/// one after a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

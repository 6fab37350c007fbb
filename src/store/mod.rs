//! Jobs and events in SQLite or PostgreSQL: the one source of truth.
//!
//! Reads go through a small pool of read-only connections; every write goes
//! through the single writer task in [`writer`], whose job SQL lives in
//! [`jobs`]. Event logs are served from [`cache`] once loaded. Nothing in
//! here knows about HTTP, and nothing in here decides policy such as when
//! a job is retried.

mod apply;
mod cache;
mod db;
mod figures;
mod hook_reads;
mod hook_writes;
mod hooks;
mod idempotency;
mod inserts;
mod jobs;
mod leases;
mod listing;
mod patch;
mod reads;
mod rows;
mod sequencer;
mod states;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use apply::Op;
pub use cache::Filter;
use cache::LogCache;
pub use db::Backend;
use db::Pool;
pub use hook_writes::{CursorMove, DefaultSecret, NewDelivery};
pub use hooks::{
    Attempt, AttemptOutcome, AttemptRecord, Delivery, Endpoint, NewEndpoint, job_endpoint_id,
};
pub use idempotency::KeptAnswer;
pub use jobs::{CancelOutcome, Deleted, JobPatch, NewJob, Stamp};
pub use leases::{HEARTBEAT, Held, LEASE, LeaseReport, LockKeys};
use sequencer::Sequencer;
pub use sequencer::Signal;
use states::States;
use writer::{Link, Sinks};

use crate::hub::Hub;
use crate::model::{Event, Job, NewEvent};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How many requests may wait for the writer before callers wait too.
const WRITER_QUEUE: usize = 8192;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration could not run.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database's folder could not be made.
    #[error("could not create the database folder: {0}")]
    Folder(#[from] std::io::Error),
    /// No job has that id.
    #[error("job not found")]
    NotFound,
    /// The job is terminal; nothing may be added to it.
    #[error("job has already finished")]
    Finished,
    /// The batch the request was in did not commit: the database cannot
    /// be written right now (a full disk, an I/O error).
    #[error("the database cannot be written right now")]
    CommitFailed,
    /// The writer has stopped.
    #[error("the store is shut down")]
    Closed,
    /// A value could not be turned into JSON.
    #[error("could not encode a value for storage")]
    Encode,
    /// A stored value does not read back.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of jobs, newest first.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The jobs on this page.
    pub jobs: Vec<Job>,
    /// Jobs in all.
    pub total: u64,
}

/// Cheap handle to the store; clone it freely.
#[derive(Clone)]
pub struct Store {
    read: Pool,
    writer: mpsc::Sender<Op>,
    cache: Arc<LogCache>,
    backend: Backend,
    instance: Arc<str>,
    /// What other instances did, for the engine; taken once.
    signals: Arc<Mutex<Option<mpsc::UnboundedReceiver<Signal>>>>,
    leases: Arc<leases::Leases>,
    /// On PostgreSQL, the advisory-lock keys of the schema.
    locks: LockKeys,
}

impl Store {
    /// Opens (creating if needed) the database at `url`, SQLite or
    /// PostgreSQL, runs its migrations and starts the writer. Committed
    /// events are published on `hub`. Jobs this process claims are owned
    /// by `instance`.
    pub async fn open(
        url: &str,
        instance: &str,
        hub: Arc<Hub>,
        cache_events: usize,
        cache_bytes: usize,
    ) -> Result<Store> {
        let cache = Arc::new(LogCache::new(cache_events, cache_bytes));
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let (signal_tx, signal_rx) = mpsc::unbounded_channel();
        let backend = Backend::of_url(url);
        let leases = Arc::new(leases::Leases::default());
        let mut locks = LockKeys::of_schema("");
        let read = match backend {
            Backend::Sqlite => {
                let (read, link) = open_sqlite(url).await?;
                let sinks = Sinks {
                    cache: cache.clone(),
                    hub,
                    sequencer: None,
                };
                let states = States::new(None);
                tokio::spawn(writer::run(link, rx, sinks, instance.to_string(), states));
                read
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)?;
                let mut conn = PgConnection::connect_with(&options).await?;
                POSTGRES_MIGRATOR.run(&mut conn).await?;
                let read = PgPoolOptions::new()
                    .min_connections(1)
                    .max_connections(8)
                    .connect_with(options.clone())
                    .await?;
                locks = LockKeys::of(&read).await?;
                let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
                    .fetch_one(&read)
                    .await?;
                let sequencer = Arc::new(Sequencer::new(
                    last,
                    read.clone(),
                    cache.clone(),
                    hub.clone(),
                    signal_tx,
                ));
                let listen = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with(options.clone());
                tokio::spawn(sequencer::listen(sequencer.clone(), listen, hub.clone()));
                leases::beat(&read, instance).await?;
                tokio::spawn(leases::keep(
                    read.clone(),
                    instance.to_string(),
                    leases.clone(),
                    hub.clone(),
                ));
                let sinks = Sinks {
                    cache: cache.clone(),
                    hub,
                    sequencer: Some(sequencer),
                };
                let link = Link::Postgres {
                    options,
                    conn: Some(conn),
                    lock: locks.event_order,
                };
                let states = States::new(Some(instance.to_string()));
                tokio::spawn(writer::run(link, rx, sinks, instance.to_string(), states));
                Pool::Postgres(read)
            }
        };
        Ok(Store {
            read,
            writer: tx,
            cache,
            backend,
            instance: instance.into(),
            signals: Arc::new(Mutex::new(Some(signal_rx))),
            leases,
            locks,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The instance that owns the jobs this process claims.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What other instances did that this one acts on. The receiver is
    /// handed out once; later calls get `None`.
    pub fn take_signals(&self) -> Option<mpsc::UnboundedReceiver<Signal>> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Counts jobs of dead instances this one rescued.
    pub fn count_rescued(&self, jobs: u64) {
        self.leases.rescued(jobs);
    }

    /// Waits until this instance may queue and send webhooks alone (at
    /// once on SQLite); `None` when `stop` fires first.
    pub async fn hold_webhooks(&self, stop: &tokio_util::sync::CancellationToken) -> Option<Held> {
        let pool = match &self.read {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        };
        leases::hold(pool, self.locks.webhooks, stop).await
    }

    /// This instance's lease, for the health report.
    pub fn lease_report(&self) -> LeaseReport {
        self.leases.report(self.backend)
    }

    /// Sends `op` to the writer and waits for its answer.
    async fn write<T>(&self, op: impl FnOnce(apply::Reply<T>) -> Op) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(op(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Inserts a queued job and its first event.
    pub async fn create_job(&self, job: NewJob) -> Result<Job> {
        self.write(|reply| Op::Create(Box::new(job), reply)).await
    }

    /// Moves the oldest queued job to `running`, atomically.
    pub async fn claim_next(&self) -> Result<Option<Job>> {
        self.write(Op::Claim).await
    }

    /// Commits events and a change to their job in one step, and returns the
    /// committed events. Fails with [`StoreError::Finished`] once the job is
    /// terminal, so the terminal event is always the last of a log.
    pub async fn append(
        &self,
        job: Uuid,
        events: Vec<NewEvent>,
        patch: JobPatch,
    ) -> Result<Vec<Arc<Event>>> {
        let patch = (!patch.is_empty()).then(|| Box::new(patch));
        self.write(|reply| Op::Append {
            job,
            events,
            patch,
            reply,
        })
        .await
    }

    /// Records a cancel request. `None` when there is no such job.
    pub async fn request_cancel(&self, job: Uuid) -> Result<Option<CancelOutcome>> {
        self.write(|reply| Op::Cancel(job, reply)).await
    }

    /// Deletes a finished job and its events.
    pub async fn delete_job(&self, job: Uuid) -> Result<Deleted> {
        self.write(|reply| Op::Delete(job, reply)).await
    }

    /// Claims an Idempotency-Key for a request about to run; false while
    /// another request (here or on another instance) holds it, or its
    /// answer is kept. See [`idempotency::take`].
    pub async fn take_key(&self, scope: &str, key: &str, stale_secs: i64) -> Result<bool> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.run(move |mut conn| {
            Box::pin(async move { idempotency::take(&mut conn, &scope, &key, stale_secs).await })
        })
        .await
    }

    /// Lets go of a key claimed by [`Store::take_key`] whose request kept
    /// no answer.
    pub async fn release_key(&self, scope: &str, key: &str) -> Result<()> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.run(move |mut conn| {
            Box::pin(async move { idempotency::release(&mut conn, &scope, &key).await })
        })
        .await
    }

    /// Keeps a submit's answer under its Idempotency-Key for 24 hours.
    pub async fn keep_answer(&self, answer: KeptAnswer) -> Result<()> {
        self.run(move |mut conn| {
            Box::pin(async move { idempotency::keep(&mut conn, &answer).await })
        })
        .await
    }

    /// Events held in memory, and their approximate bytes, for the health
    /// report.
    pub fn cached(&self) -> (usize, usize) {
        (self.cache.len(), self.cache.bytes())
    }

    /// Closes the read pool. The writer finishes what is queued and stops
    /// when the last handle is dropped. On PostgreSQL the instance's row
    /// goes, so that other instances rescue its running jobs at once.
    pub async fn close(&self) {
        if let Pool::Postgres(pool) = &self.read {
            leases::leave(pool, &self.instance).await;
        }
        self.read.close().await;
    }
}

/// Opens the SQLite file: the read pool and the writer's connection.
async fn open_sqlite(url: &str) -> Result<(Pool, Link)> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL loses nothing on a process crash (kill -9);
        // only an OS crash or power cut can drop the last commits.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    if let Some(folder) = options.get_filename().parent()
        && !folder.as_os_str().is_empty()
        && !is_memory(options.get_filename())
    {
        std::fs::create_dir_all(folder)?;
    }
    let mut conn = SqliteConnection::connect_with(&options).await?;
    SQLITE_MIGRATOR.run(&mut conn).await?;
    let read = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(4)
        .connect_with(options.clone().pragma("query_only", "ON"))
        .await?;
    let link = Link::Sqlite {
        options: options.pragma("query_only", "OFF"),
        conn: Some(conn),
    };
    Ok((Pool::Sqlite(read), link))
}

fn is_memory(path: &Path) -> bool {
    path.as_os_str() == ":memory:"
}

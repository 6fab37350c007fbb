//! Jobs and events in SQLite: the one source of truth.
//!
//! Reads go through a small pool of read-only connections; every write goes
//! through the single writer task in [`writer`], whose job SQL lives in
//! [`jobs`]. Event logs are served from [`cache`] once loaded. Nothing in
//! here knows about HTTP, and nothing in here decides policy such as when
//! a job is retried.

mod cache;
mod figures;
mod hook_writes;
mod hooks;
mod idempotency;
mod inserts;
mod jobs;
mod listing;
mod rows;
mod states;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use cache::Filter;
use cache::{LogCache, Lookup};
pub use hook_writes::{CursorMove, DefaultSecret, NewDelivery};
pub use hooks::{
    Attempt, AttemptOutcome, AttemptRecord, Delivery, Endpoint, NewEndpoint, job_endpoint_id,
};
pub use idempotency::KeptAnswer;
pub use jobs::{CancelOutcome, Deleted, JobPatch, NewJob, Stamp};
use rows::{job_by_id, job_from_row, select_jobs};
use writer::{Op, Sinks};

use crate::hub::Hub;
use crate::model::{Event, Job, JobState, NewEvent};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many requests may wait for the writer before callers wait too.
const WRITER_QUEUE: usize = 8192;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
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
    read: SqlitePool,
    writer: mpsc::Sender<Op>,
    cache: Arc<LogCache>,
}

impl Store {
    /// Opens (creating if needed) the database, runs migrations and starts
    /// the writer. Committed events are published on `hub`.
    pub async fn open(
        url: &str,
        hub: Arc<Hub>,
        cache_events: usize,
        cache_bytes: usize,
    ) -> Result<Store> {
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
        MIGRATOR.run(&mut conn).await?;
        let read = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .connect_with(options.clone().pragma("query_only", "ON"))
            .await?;
        let cache = Arc::new(LogCache::new(cache_events, cache_bytes));
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let sinks = Sinks {
            cache: cache.clone(),
            hub,
        };
        tokio::spawn(writer::run(
            options.pragma("query_only", "OFF"),
            conn,
            rx,
            sinks,
        ));
        Ok(Store {
            read,
            writer: tx,
            cache,
        })
    }

    /// Sends `op` to the writer and waits for its answer.
    async fn write<T>(&self, op: impl FnOnce(writer::Reply<T>) -> Op) -> Result<T> {
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

    /// Keeps a submit's answer under its Idempotency-Key for 24 hours.
    pub async fn keep_answer(&self, answer: KeptAnswer) -> Result<()> {
        self.run(move |conn| Box::pin(async move { idempotency::keep(conn, &answer).await }))
            .await
    }

    /// The answer kept under an Idempotency-Key, unless it has expired.
    pub async fn kept_answer(&self, scope: &str, key: &str) -> Result<Option<KeptAnswer>> {
        let mut conn = self.read.acquire().await?;
        idempotency::find(&mut conn, scope, key).await
    }

    /// Finished jobs that ended before `cutoff` (RFC 3339), oldest first.
    pub async fn finished_before(&self, cutoff: &str) -> Result<Vec<Uuid>> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(
            "SELECT id FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') \
             AND completed_at < ? ORDER BY seq",
        )
        .bind(cutoff)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("id".into()))
            })
            .collect()
    }

    /// How many jobs are queued (an index range, not a scan).
    pub async fn queued_jobs(&self) -> Result<u64> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// One job.
    pub async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        let mut conn = self.read.acquire().await?;
        job_by_id(&mut conn, id).await
    }

    /// Every job in `state`, oldest first.
    pub async fn jobs_in_state(&self, state: JobState) -> Result<Vec<Job>> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(select_jobs!("WHERE state = ? ORDER BY seq"))
            .bind(state.as_str())
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The job and the id of the last event its row reflects, read in one
    /// snapshot. For a finished job the terminal event is not counted, so a
    /// stream that resumes from this id still receives it.
    pub async fn snapshot(&self, id: Uuid) -> Result<Option<(Job, i64)>> {
        let mut conn = self.read.acquire().await?;
        let mut tx = conn.begin().await?;
        let Some(job) = job_by_id(&mut tx, id).await? else {
            return Ok(None);
        };
        let ids = sqlx::query("SELECT id FROM events WHERE job_id = ? ORDER BY id DESC LIMIT 2")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let ids: Vec<i64> = ids.iter().map(|r| r.get::<i64, _>(0)).collect();
        let last = if job.state.is_terminal() {
            ids.get(1).copied().unwrap_or(0)
        } else {
            ids.first().copied().unwrap_or(0)
        };
        Ok(Some((job, last)))
    }

    /// Up to `limit` events of a job after `after`, oldest first. `None` when
    /// there is no such job.
    pub async fn events_after(
        &self,
        job: Uuid,
        after: i64,
        limit: usize,
        filter: Filter<'_>,
    ) -> Result<Option<Vec<Arc<Event>>>> {
        if let Lookup::Hit(events) = self.cache.read(job, after, limit, filter) {
            return Ok(Some(events));
        }
        let load = self.cache.begin_load(job);
        let mut conn = self.read.acquire().await?;
        if job_by_id(&mut conn, job).await?.is_none() {
            // No such job: dropping the load gives the slot up.
            return Ok(None);
        }
        let events = rows::events_of_job(&mut conn, job, 0).await?;
        self.cache.finish_load(load, events);
        match self.cache.read(job, after, limit, filter) {
            Lookup::Hit(events) => Ok(Some(events)),
            // Evicted between load and read: a cache smaller than one log.
            Lookup::Miss => {
                let events = rows::events_of_job(&mut conn, job, after).await?;
                Ok(Some(
                    events
                        .into_iter()
                        .filter(|e| filter.accepts(e))
                        .take(limit)
                        .collect(),
                ))
            }
        }
    }

    /// How many jobs are in each state; states without jobs are left out.
    /// One pass over the state index.
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.get(0);
                let count: i64 = row.get(1);
                let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(state))?;
                Ok((state, count.max(0) as u64))
            })
            .collect()
    }

    /// The id of the newest event of any job (0 for an empty log).
    pub async fn last_event_id(&self) -> Result<i64> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.get(0))
    }

    /// The newest job that is running, else the newest queued one.
    pub async fn newest_active(&self) -> Result<Option<Job>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(select_jobs!(
            "WHERE state IN ('running', 'queued') \
             ORDER BY state = 'running' DESC, seq DESC LIMIT 1"
        ))
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The newest job with this generation id.
    pub async fn newest_by_generation(&self, generation_id: &str) -> Result<Option<Job>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(select_jobs!(
            "WHERE generation_id = ? ORDER BY seq DESC LIMIT 1"
        ))
        .bind(generation_id)
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Events held in memory, and their approximate bytes, for the health
    /// report.
    pub fn cached(&self) -> (usize, usize) {
        (self.cache.len(), self.cache.bytes())
    }

    /// Closes the read pool. The writer finishes what is queued and stops
    /// when the last handle is dropped.
    pub async fn close(&self) {
        self.read.close().await;
    }
}

fn is_memory(path: &Path) -> bool {
    path.as_os_str() == ":memory:"
}

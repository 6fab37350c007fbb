//! Jobs and events in SQLite: the one source of truth.
//!
//! Reads go through a small pool of read-only connections; every write goes
//! through the single writer task in [`writer`]. Event logs are served from
//! [`cache`] once loaded. Nothing in here knows about HTTP.

mod cache;
mod rows;
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
use rows::{event_from_row, job_by_id, job_from_row, select_jobs};
pub use writer::{
    CancelOutcome, FAILED_AFTER_CRASH, JobPatch, NewJob, REQUEUED_AFTER_CRASH, Recovery, Stamp,
};
use writer::{Done, Op, Output, Request, Sinks};

use crate::hub::Hub;
use crate::model::{Event, Job, NewEvent};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many requests may wait for the writer before callers wait too.
const WRITER_QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not create the database folder: {0}")]
    Folder(#[from] std::io::Error),
    #[error("job not found")]
    NotFound,
    #[error("job has already finished")]
    Finished,
    #[error("the transaction could not be committed")]
    CommitFailed,
    #[error("the store is shut down")]
    Closed,
    #[error("could not encode a value for storage")]
    Encode,
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of jobs, newest first.
#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub total: u64,
}

/// Cheap handle to the store; clone it freely.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    writer: mpsc::Sender<Request>,
    cache: Arc<LogCache>,
}

impl Store {
    /// Opens (creating if needed) the database, runs migrations and starts
    /// the writer. Committed events are published on `hub`.
    pub async fn open(url: &str, hub: Arc<Hub>, cache_events: usize) -> Result<Store> {
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
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        let cache = Arc::new(LogCache::new(cache_events));
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let sinks = Sinks {
            cache: cache.clone(),
            hub,
        };
        tokio::spawn(writer::run(conn, rx, sinks));
        Ok(Store {
            read,
            writer: tx,
            cache,
        })
    }

    async fn write(&self, op: Op) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Request { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Inserts a queued job and its first event.
    pub async fn create_job(&self, job: NewJob) -> Result<Job> {
        match self.write(Op::Create(Box::new(job))).await?.output {
            Output::Job(Some(job)) => Ok(*job),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Moves the oldest queued job to `running`, atomically.
    pub async fn claim_next(&self) -> Result<Option<Job>> {
        match self.write(Op::Claim).await?.output {
            Output::Job(job) => Ok(job.map(|job| *job)),
            _ => Ok(None),
        }
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
        let op = if patch.is_empty() {
            Op::Events { job, events }
        } else {
            Op::Append {
                job,
                events,
                patch: Box::new(patch),
            }
        };
        Ok(self.write(op).await?.events)
    }

    /// Records a cancel request. `None` when there is no such job.
    pub async fn request_cancel(&self, job: Uuid) -> Result<Option<CancelOutcome>> {
        match self.write(Op::Cancel(job)).await?.output {
            Output::Cancel(outcome) => Ok(outcome),
            _ => Ok(None),
        }
    }

    /// Requeues (once) or fails jobs that a crash left `running`.
    pub async fn recover_interrupted(&self) -> Result<Recovery> {
        match self.write(Op::Recover).await?.output {
            Output::Recovered(recovery) => Ok(recovery),
            _ => Ok(Recovery::default()),
        }
    }

    pub async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        let mut conn = self.read.acquire().await?;
        job_by_id(&mut conn, id).await
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
        let events = rows::events_of_job(&mut conn, job).await?;
        self.cache.finish_load(load, events);
        match self.cache.read(job, after, limit, filter) {
            Lookup::Hit(events) => Ok(Some(events)),
            // Evicted between load and read: a cache smaller than one log.
            Lookup::Miss => self
                .events_from_db(job, after, limit, filter)
                .await
                .map(Some),
        }
    }

    async fn events_from_db(
        &self,
        job: Uuid,
        after: i64,
        limit: usize,
        filter: Filter<'_>,
    ) -> Result<Vec<Arc<Event>>> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(
            "SELECT id, job_id, type, level, message, stage, kind, payload, timestamp \
             FROM events WHERE job_id = ? AND id > ? ORDER BY id",
        )
        .bind(job.to_string())
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let event = event_from_row(row)?;
            if filter.levels.is_none_or(|l| l.contains(&event.level)) {
                out.push(Arc::new(event));
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
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

    /// A page of jobs, newest first.
    pub async fn list_jobs(&self, offset: u64, limit: u64) -> Result<JobPage> {
        let mut conn = self.read.acquire().await?;
        let mut tx = conn.begin().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM jobs")
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        let rows = sqlx::query(select_jobs!("ORDER BY seq DESC LIMIT ? OFFSET ?"))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<_>>()?;
        Ok(JobPage {
            jobs,
            total: total.max(0) as u64,
        })
    }

    /// Events held in memory, for the health report.
    pub fn cached_events(&self) -> usize {
        self.cache.len()
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

//! The engine: the one way in to jobs and their logs.
//!
//! Every caller goes through [`Engine`]: the API's dialects submit, cancel
//! and read; the worker claims jobs and records what their stages do; the
//! benchmarks drive it directly. It returns [`EngineError`]s, never HTTP
//! answers, and it hides the store and the hub behind one cheap handle.

mod control;
mod disk;
mod error;
mod feed;
mod idempotency;
mod library;
mod log_feed;
mod voices;
mod work;

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

pub use control::{Claimed, Registration};
pub use disk::{free_bytes, keep_retention, sweep};
pub use error::{EngineError, Result};
pub use feed::Feed;
pub use idempotency::{KeptAnswer, KeyClaim, KeyState};
pub use library::{SongFile, SongUpload, UploadError};
pub use log_feed::{LogFeed, job_event_name, state_after};
pub use voices::{VoiceChoice, Voices};

pub use crate::hub::JobCreated;
use crate::store::Deleted;
pub use crate::store::{CancelOutcome, JobPage, JobPatch, Stamp};

use crate::Config;
use crate::hub::Hub;
use crate::model::{
    Event, Field, Invalid, Job, JobRequest, JobState, Level, Stages, generation_id,
};
use crate::store::{Filter, NewJob, Store};
use crate::tools::Tools;
use crate::webhooks::{Settings as WebhookSettings, Webhooks};
use control::Control;

/// Figures for the health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Jobs running in this process.
    pub running: usize,
    /// Open subscriptions of every kind.
    pub subscribers: usize,
    /// How often a subscriber fell behind and caught up from the store.
    pub catch_ups: u64,
    /// Events held in memory.
    pub cached_events: usize,
    /// Their approximate bytes.
    pub cached_bytes: usize,
}

/// Cheap handle to the engine; clone it freely (one reference count, as
/// every request's state clones it).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    hub: Arc<Hub>,
    control: Arc<Control>,
    /// Idempotency-Keys whose first request is running.
    keys: Arc<idempotency::InFlight>,
    /// The stage map every new job starts with.
    stages: Stages,
    config: Arc<Config>,
    tools: Arc<Tools>,
    /// The installed espeak-ng voices, listed once.
    voices: tokio::sync::OnceCell<Vec<crate::tools::voices::Voice>>,
    http: reqwest::Client,
    webhooks: Webhooks,
}

impl Engine {
    /// Opens the store named by `config`. New jobs get `stages`, every one
    /// pending, in order.
    pub async fn open(config: Arc<Config>, stages: Stages) -> Result<Engine> {
        let hub = Hub::new();
        let instance = match config.instance_id.trim() {
            "" => format!("reelay-{}", &Uuid::new_v4().simple().to_string()[..8]),
            named => named.to_string(),
        };
        let store = Store::open(
            &config.database_url,
            &instance,
            hub.clone(),
            config.event_cache_events,
            config.event_cache_bytes,
        )
        .await?;
        let webhooks = Webhooks::new(store.clone(), hub.clone(), WebhookSettings::of(&config));
        let control = Arc::new(Control::default());
        if let Some(signals) = store.take_signals() {
            tokio::spawn(control.clone().follow(signals));
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                webhooks,
                store,
                hub,
                control,
                keys: Arc::default(),
                stages,
                tools: Arc::new(Tools::new(&config)),
                voices: tokio::sync::OnceCell::new(),
                http: reqwest::Client::new(),
                config,
            }),
        })
    }

    /// Validates `request`, queues it as a new job and wakes the worker.
    /// Refused while the data folder's disk has less room than
    /// `MIN_FREE_DISK_MB` (a job needs room for its files), and while
    /// `MAX_QUEUED_JOBS` jobs wait (concurrent submits are counted one by
    /// one, so a burst may pass the limit by at most its own size).
    pub async fn submit(&self, request: JobRequest) -> Result<Job> {
        let request = request.validate()?;
        if let Some(hook) = &request.webhook {
            self.inner
                .webhooks
                .check_url(&hook.url)
                .await
                .map_err(|refused| {
                    EngineError::Invalid(Invalid::new(Field::Webhook, refused.problem()))
                })?;
        }
        self.check_free_space().await?;
        let max = self.inner.config.max_queued_jobs;
        if self.inner.store.queued_jobs().await? >= max {
            return Err(EngineError::QueueFull(max));
        }
        let job = self
            .inner
            .store
            .create_job(NewJob {
                id: Uuid::new_v4(),
                generation_id: generation_id(&request.subject),
                stages: self.inner.stages.clone(),
                request,
            })
            .await?;
        if job.request.webhook.is_some() {
            self.inner.webhooks.subscribed();
        }
        self.inner.control.wake();
        Ok(job)
    }

    /// Fails with [`EngineError::DiskLow`] when the data folder's disk has
    /// less room than the configured minimum.
    async fn check_free_space(&self) -> Result<()> {
        let min_mb = self.inner.config.min_free_disk_mb;
        if min_mb == 0 {
            return Ok(());
        }
        let folder = self.inner.config.data_dir.clone();
        let free = tokio::task::spawn_blocking(move || free_bytes(&folder)).await;
        match free {
            Ok(Ok(bytes)) if bytes / (1024 * 1024) < min_mb => Err(EngineError::DiskLow {
                free_mb: bytes / (1024 * 1024),
                min_mb,
            }),
            Ok(Ok(_)) => Ok(()),
            // Unknown: do not refuse work for want of a figure.
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not read the data folder's free space");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Deletes a finished job, its events and its folder. A job that has
    /// not finished must be cancelled first ([`EngineError::JobActive`]).
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        match self.inner.store.delete_job(id).await? {
            Deleted::Active(state) => Err(EngineError::JobActive(state)),
            Deleted::Gone => {
                let folder = self.inner.config.data_dir.join("jobs").join(id.to_string());
                match tokio::fs::remove_dir_all(&folder).await {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        tracing::warn!(path = %folder.display(), error = %err, "could not remove a deleted job's folder");
                    }
                }
                Ok(())
            }
        }
    }

    /// Finished jobs that ended before `cutoff`, oldest first.
    pub async fn jobs_finished_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Uuid>> {
        Ok(self
            .inner
            .store
            .finished_before(&crate::model::rfc3339(cutoff))
            .await?)
    }

    /// Asks a job to stop: a queued job is cancelled at once, a running one
    /// at its next checkpoint (its stage is cancelled now). The work runs in
    /// its own task, so that a caller that goes away mid-request cannot
    /// leave a recorded cancel unacted on.
    pub async fn cancel(&self, id: Uuid) -> Result<CancelOutcome> {
        let engine = self.clone();
        let task = tokio::spawn(async move {
            let outcome = engine.inner.store.request_cancel(id).await?;
            let outcome = outcome.ok_or(EngineError::JobNotFound)?;
            engine.inner.control.cancel(id);
            Ok(outcome)
        });
        task.await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "cancel task failed");
            Err(EngineError::Internal)
        })
    }

    /// Cancels the newest running job, else the newest queued one, and
    /// returns it; `None` when no job is active.
    pub async fn cancel_newest(&self) -> Result<Option<Uuid>> {
        let Some(job) = self.inner.store.newest_active().await? else {
            return Ok(None);
        };
        match self.cancel(job.id).await {
            Ok(_) => Ok(Some(job.id)),
            // It ended between the lookup and the cancel: still the one
            // the caller meant, and it is stopped.
            Err(EngineError::JobNotFound) => Ok(Some(job.id)),
            Err(err) => Err(err),
        }
    }

    /// One job.
    pub async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        Ok(self.inner.store.job(id).await?)
    }

    /// A page of jobs, newest first; only those in `states` unless it is
    /// empty.
    pub async fn jobs(&self, offset: u64, limit: u64, states: &[JobState]) -> Result<JobPage> {
        Ok(self.inner.store.list_jobs(offset, limit, states).await?)
    }

    /// The newest job with this generation id.
    pub async fn newest_by_generation(&self, generation_id: &str) -> Result<Option<Job>> {
        Ok(self.inner.store.newest_by_generation(generation_id).await?)
    }

    /// The job and the id of the last event its row reflects. For a
    /// finished job the terminal event is not counted, so a stream that
    /// resumes from this id still receives it.
    pub async fn snapshot(&self, id: Uuid) -> Result<Option<(Job, i64)>> {
        Ok(self.inner.store.snapshot(id).await?)
    }

    /// Up to `limit` events of a job after `after`, oldest first, only of
    /// `levels` when given. `None` when there is no such job.
    pub async fn events(
        &self,
        job: Uuid,
        after: i64,
        limit: usize,
        levels: Option<&[Level]>,
    ) -> Result<Option<Vec<Arc<Event>>>> {
        let filter = Filter { levels };
        Ok(self
            .inner
            .store
            .events_after(job, after, limit, filter)
            .await?)
    }

    /// Every event of a job after `after`, exactly once and in order, then
    /// live ones as they are committed.
    pub fn follow(&self, job: Uuid, after: i64) -> Feed {
        Feed::new(&self.inner.hub, self.inner.store.clone(), job, after)
    }

    /// Announcements of new jobs, for streams that wait for one.
    pub fn job_created(&self) -> broadcast::Receiver<JobCreated> {
        self.inner.hub.subscribe_created()
    }

    /// A resume cursor no larger than the newest event id. A larger one
    /// would skip the job's next events (they get smaller ids) and its end.
    pub async fn clamp_cursor(&self, cursor: Option<i64>) -> Result<Option<i64>> {
        match cursor {
            Some(cursor) if cursor > 0 => {
                Ok(Some(cursor.min(self.inner.store.last_event_id().await?)))
            }
            other => Ok(other),
        }
    }

    /// True when a client resuming from `cursor` has nothing left to hear:
    /// the job is finished and no event follows the cursor.
    pub async fn finished_before(&self, job: &Job, cursor: i64) -> Result<bool> {
        if !job.state.is_terminal() {
            return Ok(false);
        }
        let rest = self.events(job.id, cursor, 1, None).await?;
        Ok(rest.unwrap_or_default().is_empty())
    }

    /// Starts an upload of songs into the music library.
    pub async fn song_upload(&self) -> Result<SongUpload, UploadError> {
        let config = &self.inner.config;
        SongUpload::start(
            config.music_dir.clone(),
            self.inner.tools.clone(),
            config.max_upload_bytes,
            config.max_upload_files,
        )
        .await
    }

    /// The models the configured LLM server offers, or why it could not
    /// be asked.
    pub async fn llm_models(&self) -> std::result::Result<Vec<String>, String> {
        let config = &self.inner.config;
        crate::tools::llm::list_models(&self.inner.http, &config.llm_base_url, &config.llm_api_key)
            .await
    }

    /// Each media tool's path and version, or how to install it.
    pub async fn tool_report(&self) -> serde_json::Value {
        self.inner.tools.report().await
    }

    /// Webhook subscriptions and deliveries.
    pub fn webhooks(&self) -> &Webhooks {
        &self.inner.webhooks
    }

    /// How many jobs are in each state, every state listed, for the
    /// metrics read at scrape time.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, u64)>> {
        let found = self.inner.store.count_by_state().await?;
        Ok(JobState::ALL
            .iter()
            .map(|state| {
                let count = found
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                (*state, count)
            })
            .collect())
    }

    /// Figures for the health report.
    pub fn stats(&self) -> Stats {
        Stats {
            running: self.inner.control.count(),
            subscribers: self.inner.hub.subscriber_count(),
            catch_ups: self.inner.hub.catch_ups(),
            cached_events: self.inner.store.cached().0,
            cached_bytes: self.inner.store.cached().1,
        }
    }

    /// The stage map every new job starts with.
    pub fn initial_stages(&self) -> &Stages {
        &self.inner.stages
    }

    /// Ends every open stream: they finish when the hub closes.
    pub fn close_streams(&self) {
        self.inner.hub.close();
    }

    /// Closes the store's read side. The writer finishes what is queued and
    /// stops when the last handle is dropped.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

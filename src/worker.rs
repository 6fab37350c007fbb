//! Runs jobs: claiming, concurrency, cancellation and shutdown.
//!
//! Up to `WORKER_CONCURRENCY` jobs run at once. Each claimed job gets a
//! cancellation token that is a child of the server's shutdown token, so a
//! cancel request stops one job and a shutdown stops them all. A stopped job
//! ends `cancelled` if a cancel was requested and goes back to `queued` if the
//! server is shutting down.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::model::{Job, JobState, Level, NewEvent, StageRecord, StageStatus, kind};
use crate::pipeline::{Pipeline, StageContext, StageError, StageOutcome};
use crate::store::{JobPatch, Stamp, Store};
use tracing::Instrument;

/// How long a cancelled stage may take to return on its own before the
/// worker drops it (which kills its child processes).
const CANCEL_GRACE: Duration = Duration::from_millis(750);

/// Message of a job run by a server without any stages.
pub const NO_PIPELINE: &str =
    "No media pipeline is installed in this server, so the job cannot run.";

/// Message of the event that returns a job to the queue at shutdown.
pub const REQUEUED_AT_SHUTDOWN: &str =
    "The server is shutting down; the job was returned to the queue and will start again.";

/// Handle to the worker; clones share it.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    pipeline: Pipeline,
    jobs_dir: PathBuf,
    wake: Notify,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    active: Mutex<HashMap<Uuid, CancellationToken>>,
}

impl Inner {
    fn active(&self) -> MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a job's run ended, before it is recorded.
#[derive(Clone)]
enum RunEnd {
    Completed,
    Failed {
        stage: Option<(String, f64)>,
        message: String,
    },
    Stopped {
        stage: Option<(String, f64)>,
    },
}

impl Worker {
    /// Starts claiming jobs. `jobs_dir` holds one artifact folder per job.
    pub fn start(store: Store, pipeline: Pipeline, jobs_dir: PathBuf, concurrency: usize) -> Self {
        // Stages run tools in the job folder; its path must not depend on it.
        let jobs_dir = std::path::absolute(&jobs_dir).unwrap_or(jobs_dir);
        let inner = Arc::new(Inner {
            store,
            pipeline,
            jobs_dir,
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            active: Mutex::new(HashMap::new()),
        });
        inner
            .tracker
            .spawn(claim_loop(inner.clone(), concurrency.max(1)));
        Worker { inner }
    }

    /// The pipeline jobs run through.
    pub fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    /// Tells the worker a job was queued.
    pub fn notify(&self) {
        self.inner.wake.notify_one();
    }

    /// Stops a running job at once (its stage is cancelled). The cancel must
    /// already be recorded in the store.
    pub fn cancel(&self, job: Uuid) {
        if let Some(token) = self.inner.active().get(&job) {
            token.cancel();
        }
    }

    /// Jobs running in this process.
    pub fn running(&self) -> usize {
        self.inner.active().len()
    }

    /// Stops claiming and cancels running stages so that their jobs return
    /// to the queue.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// [`Worker::begin_shutdown`], then waits up to `grace` for the jobs to
    /// be recorded.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("jobs did not stop within {grace:?}; exiting anyway");
        }
    }
}

async fn claim_loop(inner: Arc<Inner>, concurrency: usize) {
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = inner.shutdown.cancelled() => return,
        };
        match inner.store.claim_next().await {
            Ok(Some(job)) => {
                let token = inner.shutdown.child_token();
                inner.active().insert(job.id, token.clone());
                let span = tracing::info_span!("job", id = %job.id);
                inner
                    .tracker
                    .spawn(run_job(inner.clone(), job, token, permit).instrument(span));
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = inner.shutdown.cancelled() => return,
                }
            }
            Err(err) => {
                drop(permit);
                tracing::error!(error = %err, "could not claim a job");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = inner.shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn run_job(
    inner: Arc<Inner>,
    job: Job,
    token: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let id = job.id;
    let _registered = Registered {
        inner: inner.clone(),
        id,
    };
    // A cancel recorded between the claim and the token's registration did
    // not reach the token; the row has it.
    if let Ok(Some(row)) = inner.store.job(id).await
        && row.cancel_requested
    {
        token.cancel();
    }
    tracing::info!("job started");
    let started = Instant::now();
    // A panicking stage fails its job instead of leaving it running.
    let end = match AssertUnwindSafe(drive(&inner, job, &token))
        .catch_unwind()
        .await
    {
        Ok(end) => end,
        Err(_) => {
            tracing::error!(%id, "a stage panicked");
            RunEnd::Failed {
                stage: None,
                message: "The job stopped on an internal error in the server.".into(),
            }
        }
    };
    // The end must be recorded, or the job would look running until the
    // next restart. A store that fails now may recover in a moment.
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match record_end(&inner, id, &end).await {
            Ok(()) => break,
            Err(crate::store::StoreError::Finished) => break,
            Err(err) if attempt < 8 => {
                tracing::warn!(%id, error = %err, attempt, "could not record the end of a job; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(err) => {
                tracing::error!(%id, error = %err, "could not record the end of a job; a restart will recover it");
                break;
            }
        }
    }
    tracing::info!(secs = started.elapsed().as_secs_f64(), "job ended");
}

/// Removes a job from the running set however its task ends.
struct Registered {
    inner: Arc<Inner>,
    id: Uuid,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.inner.active().remove(&self.id);
    }
}

async fn drive(inner: &Inner, job: Job, token: &CancellationToken) -> RunEnd {
    if inner.pipeline.is_empty() {
        return RunEnd::Failed {
            stage: None,
            message: NO_PIPELINE.into(),
        };
    }
    let work_dir = inner.jobs_dir.join(job.id.to_string());
    if let Err(err) = tokio::fs::create_dir_all(&work_dir).await {
        tracing::error!(path = %work_dir.display(), error = %err, "could not create a job folder");
        return RunEnd::Failed {
            stage: None,
            message: format!(
                "Could not create the job folder {}: {}",
                work_dir.display(),
                err.kind()
            ),
        };
    }
    let store = inner.store.clone();
    let id = job.id;
    let mut ctx = StageContext::new(job, store.clone(), token.clone(), work_dir);
    for slot in inner.pipeline.slots() {
        let name = slot.stage.name().to_string();
        if token.is_cancelled() {
            return RunEnd::Stopped { stage: None };
        }
        let start = NewEvent::log(Level::Info, format!("Stage {name} started."))
            .with_stage(name.clone())
            .with_kind(kind::START)
            .with_payload(serde_json::json!({ "jobProgress": slot.range.0 }));
        let patch = JobPatch {
            current_stage: Some(Some(name.clone())),
            stage: Some((name.clone(), record(StageStatus::Running, None, None))),
            progress: Some(slot.range.0),
            ..JobPatch::default()
        };
        if let Err(err) = store.append(id, vec![start], patch).await {
            return RunEnd::Failed {
                stage: None,
                message: format!("Could not record the start of stage {name}: {err}"),
            };
        }
        ctx.enter(&name, slot.range);
        let clock = Instant::now();
        let result = run_stage(slot.stage.run(&mut ctx), token).await;
        let secs = round_secs(clock.elapsed());
        let (event, status, detail) = match result {
            Ok(StageOutcome::Done { detail }) => (
                NewEvent::log(Level::Success, format!("Stage {name} complete: {detail}"))
                    .with_kind(kind::COMPLETE)
                    .with_payload(serde_json::json!({
                        "detail": detail,
                        "durationSec": secs,
                        "jobProgress": slot.range.1,
                    })),
                StageStatus::Done,
                detail,
            ),
            Ok(StageOutcome::Skipped { reason }) => (
                NewEvent::log(Level::Info, format!("Stage {name} skipped: {reason}"))
                    .with_kind(kind::SKIPPED)
                    .with_payload(serde_json::json!({
                        "reason": reason,
                        "jobProgress": slot.range.1,
                    })),
                StageStatus::Skipped,
                reason,
            ),
            Err(StageError::Cancelled) => {
                return RunEnd::Stopped {
                    stage: Some((name, secs)),
                };
            }
            Err(StageError::Failed(_)) if token.is_cancelled() => {
                // The stage failed because its work was cut off.
                return RunEnd::Stopped {
                    stage: Some((name, secs)),
                };
            }
            Err(StageError::Failed(message)) => {
                return RunEnd::Failed {
                    stage: Some((name, secs)),
                    message,
                };
            }
        };
        let patch = JobPatch {
            stage: Some((name.clone(), record(status, Some(detail), Some(secs)))),
            progress: Some(slot.range.1),
            ..JobPatch::default()
        };
        if let Err(err) = store
            .append(id, vec![event.with_stage(name.clone())], patch)
            .await
        {
            return RunEnd::Failed {
                stage: None,
                message: format!("Could not record the end of stage {name}: {err}"),
            };
        }
    }
    if token.is_cancelled() {
        return RunEnd::Stopped { stage: None };
    }
    RunEnd::Completed
}

/// Runs a stage until it returns, or until shortly after cancellation.
async fn run_stage<F>(stage: F, token: &CancellationToken) -> Result<StageOutcome, StageError>
where
    F: Future<Output = Result<StageOutcome, StageError>>,
{
    tokio::pin!(stage);
    tokio::select! {
        result = &mut stage => result,
        _ = token.cancelled() => {
            match tokio::time::timeout(CANCEL_GRACE, &mut stage).await {
                Ok(result) => result,
                Err(_) => Err(StageError::Cancelled),
            }
        }
    }
}

fn record(status: StageStatus, detail: Option<String>, secs: Option<f64>) -> StageRecord {
    StageRecord {
        status,
        detail,
        duration_sec: secs,
    }
}

fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

fn stage_error_event(name: &str, message: &str) -> NewEvent {
    NewEvent::log(Level::Error, format!("Stage {name} failed: {message}"))
        .with_type("error")
        .with_stage(name)
        .with_kind(kind::ERROR)
        .with_payload(serde_json::json!({ "error": message }))
}

async fn record_end(inner: &Inner, id: Uuid, end: &RunEnd) -> crate::store::Result<()> {
    let store = &inner.store;
    let mut events = Vec::new();
    let mut patch = JobPatch {
        current_stage: Some(None),
        ..JobPatch::default()
    };
    match end.clone() {
        RunEnd::Completed => {
            events.push(
                NewEvent::log(Level::Success, "Video generation complete")
                    .with_kind(kind::COMPLETED),
            );
            patch.state = Some(JobState::Completed);
            patch.progress = Some(100);
            patch.completed = true;
        }
        RunEnd::Failed { stage, message } => {
            if let Some((name, secs)) = stage {
                events.push(stage_error_event(&name, &message));
                patch.stage = Some((
                    name,
                    record(StageStatus::Error, Some(message.clone()), Some(secs)),
                ));
            }
            events.push(
                NewEvent::log(Level::Error, message.clone())
                    .with_type("error")
                    .with_kind(kind::FAILED),
            );
            patch.state = Some(JobState::Failed);
            patch.error_message = Some(message);
            patch.completed = true;
        }
        RunEnd::Stopped { stage } => {
            let cancel_requested = store.job(id).await?.is_some_and(|job| job.cancel_requested);
            if cancel_requested || !inner.shutdown.is_cancelled() {
                if let Some((name, secs)) = stage {
                    events.push(stage_error_event(&name, "Cancelled."));
                    patch.stage = Some((
                        name,
                        record(StageStatus::Error, Some("Cancelled.".into()), Some(secs)),
                    ));
                }
                events.push(
                    NewEvent::log(Level::Warning, "Job cancelled.").with_kind(kind::CANCELLED),
                );
                patch.state = Some(JobState::Cancelled);
                patch.completed = true;
            } else {
                events.push(
                    NewEvent::log(Level::Warning, REQUEUED_AT_SHUTDOWN).with_kind(kind::REQUEUED),
                );
                patch.state = Some(JobState::Queued);
                patch.stages = Some(inner.pipeline.initial_stages());
                patch.started = Some(Stamp::Clear);
            }
        }
    }
    store.append(id, events, patch).await.map(drop)
}

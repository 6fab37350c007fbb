//! Runs jobs: claiming, concurrency, cancellation and shutdown.
//!
//! Up to `WORKER_CONCURRENCY` jobs run at once. Each claimed job gets a
//! cancellation token that is a child of the server's shutdown token, so a
//! cancel request stops one job and a shutdown stops them all. What the
//! worker records at each step, and what becomes of interrupted jobs, is
//! the policy in [`lifecycle`].

pub mod lifecycle;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::engine::{Claimed, Engine, EngineError};
use crate::metrics;
use crate::model::Job;
use crate::pipeline::{Pipeline, StageContext, StageError, StageOutcome};
use lifecycle::{NO_PIPELINE, RunEnd};

/// How long a cancelled stage may take to return on its own before the
/// worker drops it (which kills its child processes).
const CANCEL_GRACE: Duration = Duration::from_millis(750);

/// Handle to the worker; clones share it.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pipeline: Pipeline,
    jobs_dir: PathBuf,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Worker {
    /// Starts claiming jobs. `jobs_dir` holds one artifact folder per job.
    pub fn start(
        engine: Engine,
        pipeline: Pipeline,
        jobs_dir: PathBuf,
        concurrency: usize,
    ) -> Self {
        // Stages run tools in the job folder; its path must not depend on it.
        let jobs_dir = std::path::absolute(&jobs_dir).unwrap_or(jobs_dir);
        let inner = Arc::new(Inner {
            engine,
            pipeline,
            jobs_dir,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        // 0: this instance serves the API and runs no jobs (others on the
        // same PostgreSQL database do).
        if concurrency > 0 {
            inner.tracker.spawn(claim_loop(inner.clone(), concurrency));
        }
        Worker { inner }
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
        match inner.engine.claim_next(&inner.shutdown).await {
            Ok(Some(claimed)) => {
                let span = tracing::info_span!("job", id = %claimed.job.id);
                inner
                    .tracker
                    .spawn(run_job(inner.clone(), claimed, permit).instrument(span));
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = inner.engine.work_queued() => {}
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

async fn run_job(inner: Arc<Inner>, claimed: Claimed, _permit: OwnedSemaphorePermit) {
    let Claimed {
        job,
        token,
        registration: _registration,
    } = claimed;
    let id = job.id;
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
    // next restart: through a full disk it is retried until it is written,
    // or until the server stops (then start-up recovery takes the job).
    match record_end(&inner, id, end).await {
        Ok(()) | Err(EngineError::Finished) => {}
        Err(err) => {
            tracing::error!(%id, error = %err, "could not record the end of a job; a restart will recover it");
        }
    }
    tracing::info!(secs = started.elapsed().as_secs_f64(), "job ended");
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
    let engine = &inner.engine;
    let id = job.id;
    let mut ctx = StageContext::new(job, engine.clone(), token.clone(), work_dir);
    for slot in inner.pipeline.slots() {
        let name = slot.stage.name().to_string();
        if token.is_cancelled() {
            return RunEnd::Stopped { stage: None };
        }
        let (event, patch) = lifecycle::stage_started(&name, slot.range);
        if let Err(err) = engine
            .append_until_written(id, vec![event], patch, token)
            .await
        {
            if token.is_cancelled() {
                return RunEnd::Stopped { stage: None };
            }
            return RunEnd::Failed {
                stage: None,
                message: format!("Could not record the start of stage {name}: {err}"),
            };
        }
        ctx.enter(&name, slot.range);
        let clock = Instant::now();
        let result = run_stage(slot.stage.run(&mut ctx), token).await;
        let took = clock.elapsed();
        let secs = round_secs(took);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(StageError::Failed(message)) if !token.is_cancelled() => {
                record_stage(&name, metrics::OUTCOME_ERROR, took);
                return RunEnd::Failed {
                    stage: Some((name, secs)),
                    message,
                };
            }
            // Cancelled, or failed because its work was cut off: stopped.
            Err(_) => {
                record_stage(&name, metrics::OUTCOME_CANCELLED, took);
                return RunEnd::Stopped {
                    stage: Some((name, secs)),
                };
            }
        };
        let label = match outcome {
            StageOutcome::Done { .. } => metrics::OUTCOME_COMPLETED,
            StageOutcome::Skipped { .. } => metrics::OUTCOME_SKIPPED,
        };
        record_stage(&name, label, took);
        let (event, patch) = lifecycle::stage_finished(&name, outcome, secs, slot.range);
        if let Err(err) = engine
            .append_until_written(id, vec![event], patch, token)
            .await
        {
            if token.is_cancelled() {
                return RunEnd::Stopped {
                    stage: Some((name, secs)),
                };
            }
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

/// One run of a stage in [`metrics::STAGE_DURATION`].
fn record_stage(stage: &str, outcome: &'static str, took: Duration) {
    ::metrics::histogram!(metrics::STAGE_DURATION, "stage" => stage.to_string(), "outcome" => outcome)
        .record(took.as_secs_f64());
}

fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

async fn record_end(inner: &Inner, id: Uuid, end: RunEnd) -> crate::engine::Result<()> {
    let engine = &inner.engine;
    let cancel_requested = match &end {
        RunEnd::Stopped { .. } => engine
            .job(id)
            .await?
            .is_some_and(|job| job.cancel_requested),
        _ => false,
    };
    let (events, patch) = lifecycle::end_of_run(
        end,
        cancel_requested,
        inner.shutdown.is_cancelled(),
        &inner.pipeline.initial_stages(),
    );
    engine
        .append_until_written(id, events, patch, &inner.shutdown)
        .await
        .map(drop)
}

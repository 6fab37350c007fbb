//! The life-cycle policy of a job run: what the worker records when a
//! stage starts and ends, how a run ends, and what happens to jobs that a
//! crash or a shutdown interrupted. The rule is: requeue once, then fail.
//! A cancel always wins over a requeue.

use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError, JobPatch, Result, Stamp};
use crate::model::{
    EventKind, EventType, Job, JobState, Level, NewEvent, StageCompleted, StageFailed, StageRecord,
    StageSkipped, StageStarted, StageStatus, Stages,
};
use crate::pipeline::StageOutcome;
use crate::store::HEARTBEAT;

/// Message of a job run by a server without any stages.
pub const NO_PIPELINE: &str =
    "No media pipeline is installed in this server, so the job cannot run.";

/// Message of the event that returns a job to the queue at shutdown.
pub const REQUEUED_AT_SHUTDOWN: &str =
    "The server is shutting down; the job was returned to the queue and will start again.";

/// Message of the event that requeues a job a crash interrupted.
pub const REQUEUED_AFTER_CRASH: &str =
    "The server stopped while this job was running; it was requeued and will start again.";

/// Message of the event that fails a job a crash interrupted twice.
pub const FAILED_AFTER_CRASH: &str =
    "The server stopped twice while this job was running; it was not retried again.";

/// What a cancelled stage records as its error.
const CANCELLED: &str = "Cancelled.";

/// How a job's run ended, before it is recorded.
#[derive(Debug, Clone)]
pub(super) enum RunEnd {
    /// Every stage finished.
    Completed,
    /// A stage (named, with its seconds) or the run itself failed.
    Failed {
        stage: Option<(String, f64)>,
        message: String,
    },
    /// The job's token fired during the named stage, or between stages.
    Stopped { stage: Option<(String, f64)> },
}

/// The event and row change that start a stage.
pub(super) fn stage_started(name: &str, range: (u8, u8)) -> (NewEvent, JobPatch) {
    let payload = StageStarted {
        job_progress: range.0,
    };
    let event =
        NewEvent::typed(Level::Info, format!("Stage {name} started."), &payload).with_stage(name);
    let patch = JobPatch {
        current_stage: Some(Some(name.to_string())),
        stage: Some((
            name.to_string(),
            StageRecord::new(StageStatus::Running, None, None),
        )),
        progress: Some(range.0),
        ..JobPatch::default()
    };
    (event, patch)
}

/// The event and row change that record a stage that did not fail.
pub(super) fn stage_finished(
    name: &str,
    outcome: StageOutcome,
    secs: f64,
    range: (u8, u8),
) -> (NewEvent, JobPatch) {
    let (event, status, detail) = match outcome {
        StageOutcome::Done { detail } => {
            let payload = StageCompleted {
                detail: detail.clone(),
                duration_sec: secs,
                job_progress: range.1,
            };
            let message = format!("Stage {name} complete: {detail}");
            (
                NewEvent::typed(Level::Success, message, &payload),
                StageStatus::Done,
                detail,
            )
        }
        StageOutcome::Skipped { reason } => {
            let payload = StageSkipped {
                reason: reason.clone(),
                job_progress: range.1,
            };
            let message = format!("Stage {name} skipped: {reason}");
            (
                NewEvent::typed(Level::Info, message, &payload),
                StageStatus::Skipped,
                reason,
            )
        }
    };
    let patch = JobPatch {
        stage: Some((
            name.to_string(),
            StageRecord::new(status, Some(detail), Some(secs)),
        )),
        progress: Some(range.1),
        ..JobPatch::default()
    };
    (event.with_stage(name), patch)
}

/// Records the failure of stage `name` in `events` and `patch`.
fn stage_error(
    name: &str,
    message: &str,
    secs: f64,
    events: &mut Vec<NewEvent>,
    patch: &mut JobPatch,
) {
    let payload = StageFailed {
        error: message.to_string(),
    };
    events.push(
        NewEvent::typed(
            Level::Error,
            format!("Stage {name} failed: {message}"),
            &payload,
        )
        .with_type(EventType::Error)
        .with_stage(name),
    );
    patch.stage = Some((
        name.to_string(),
        StageRecord::new(StageStatus::Error, Some(message.to_string()), Some(secs)),
    ));
}

/// The events and row change that end a run. A stopped run is cancelled
/// when a cancel was asked for or the server is not shutting down, and
/// goes back to the queue (with `stages` reset) when it is.
pub(super) fn end_of_run(
    end: RunEnd,
    cancel_requested: bool,
    shutting_down: bool,
    stages: &Stages,
) -> (Vec<NewEvent>, JobPatch) {
    let mut events = Vec::new();
    let mut patch = JobPatch {
        current_stage: Some(None),
        ..JobPatch::default()
    };
    match end {
        RunEnd::Completed => {
            events.push(
                NewEvent::log(Level::Success, "Video generation complete")
                    .with_kind(EventKind::Completed),
            );
            patch.state = Some(JobState::Completed);
            patch.progress = Some(100);
            patch.completed = true;
        }
        RunEnd::Failed { stage, message } => {
            if let Some((name, secs)) = stage {
                stage_error(&name, &message, secs, &mut events, &mut patch);
            }
            events.push(failed(&message));
            patch.state = Some(JobState::Failed);
            patch.error_message = Some(message);
            patch.completed = true;
        }
        RunEnd::Stopped { stage } if cancel_requested || !shutting_down => {
            if let Some((name, secs)) = stage {
                stage_error(&name, CANCELLED, secs, &mut events, &mut patch);
            }
            events.push(cancelled());
            patch.state = Some(JobState::Cancelled);
            patch.completed = true;
        }
        RunEnd::Stopped { .. } => {
            events.push(
                NewEvent::log(Level::Warning, REQUEUED_AT_SHUTDOWN).with_kind(EventKind::Requeued),
            );
            patch.state = Some(JobState::Queued);
            patch.stages = Some(stages.clone());
            patch.started = Some(Stamp::Clear);
            patch.release = true;
        }
    }
    (events, patch)
}

fn failed(message: &str) -> NewEvent {
    NewEvent::log(Level::Error, message)
        .with_type(EventType::Error)
        .with_kind(EventKind::Failed)
}

fn cancelled() -> NewEvent {
    NewEvent::log(Level::Warning, "Job cancelled.").with_kind(EventKind::Cancelled)
}

/// What start-up recovery did with jobs a crash left running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Interrupted once: back in the queue.
    pub requeued: Vec<Uuid>,
    /// Interrupted a second time: failed.
    pub failed: Vec<Uuid>,
    /// A cancel was asked for before the crash: cancelled.
    pub cancelled: Vec<Uuid>,
}

/// Picks the list of a [`Recovery`] a job goes on.
type RecoveryList = fn(&mut Recovery) -> &mut Vec<Uuid>;

/// What to do with one job a crash left running, and the list of the
/// recovery it goes on.
fn after_crash(job: &Job) -> (NewEvent, JobPatch, RecoveryList) {
    let mut patch = JobPatch {
        current_stage: Some(None),
        release: true,
        ..JobPatch::default()
    };
    if job.cancel_requested {
        patch.state = Some(JobState::Cancelled);
        patch.completed = true;
        (cancelled(), patch, |r| &mut r.cancelled)
    } else if job.recoveries == 0 {
        patch.state = Some(JobState::Queued);
        patch.stages = Some(
            job.stages
                .keys()
                .map(|name| (name.clone(), StageRecord::pending()))
                .collect(),
        );
        patch.started = Some(Stamp::Clear);
        patch.recovered = true;
        let event =
            NewEvent::log(Level::Warning, REQUEUED_AFTER_CRASH).with_kind(EventKind::Requeued);
        (event, patch, |r| &mut r.requeued)
    } else {
        patch.state = Some(JobState::Failed);
        patch.completed = true;
        patch.error_message = Some(FAILED_AFTER_CRASH.into());
        (failed(FAILED_AFTER_CRASH), patch, |r| &mut r.failed)
    }
}

/// Requeues (once) or fails the jobs a crash left `running`: on SQLite
/// every such job, before the worker starts; on PostgreSQL the jobs of
/// instances whose lease lapsed, at start-up and then every heartbeat.
/// Each change is fenced by the dead owner, so when two instances rescue
/// at once only one of them does.
pub async fn recover_interrupted(engine: &Engine, at_start: bool) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    for (job, owner) in engine.interrupted_jobs(at_start).await? {
        let (event, mut patch, list) = after_crash(&job);
        patch.fence = owner;
        match engine.append(job.id, vec![event], patch).await {
            Ok(_) => list(&mut recovery).push(job.id),
            // Another instance rescued it first.
            Err(EngineError::Finished) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(recovery)
}

/// Rescues the jobs of instances whose lease lapsed, every heartbeat,
/// until `stop` fires (on a database that one server owns, there are
/// none).
pub async fn rescue_orphans(engine: Engine, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
        match recover_interrupted(&engine, false).await {
            Ok(recovery) => {
                let rescued =
                    recovery.requeued.len() + recovery.failed.len() + recovery.cancelled.len();
                if rescued > 0 {
                    tracing::warn!(
                        requeued = recovery.requeued.len(),
                        failed = recovery.failed.len(),
                        cancelled = recovery.cancelled.len(),
                        "rescued the jobs of an instance whose lease lapsed"
                    );
                    engine.rescued(rescued);
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not rescue orphaned jobs"),
        }
    }
}

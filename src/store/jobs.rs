//! Job SQL: small functions that the writer calls inside its transaction.
//! Each takes the connection and the time of the batch, changes one job
//! row, and inserts the events that report the change. The rules about
//! when a job may change (a finished job never does) live here too,
//! because they must hold inside the same transaction as the change.

use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::rows::{job_by_id, job_from_row, select_jobs};
use super::{Result, StoreError};
use crate::model::{
    Event, EventKind, Job, JobData, JobRequest, JobState, Level, NewEvent, StageRecord, Stages,
    VideoMeta,
};

/// The time of a batch: every row and event it writes carries it.
#[derive(Debug, Clone)]
pub struct Now {
    /// RFC 3339, for job columns.
    pub stamp: String,
    /// Unix seconds, for events.
    pub ts: f64,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        let t = chrono::Utc::now();
        Now {
            stamp: crate::model::rfc3339(t),
            ts: t.timestamp_micros() as f64 / 1e6,
        }
    }
}

/// A change to one job's row, applied together with its events.
/// Unset fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    /// The new state.
    pub state: Option<JobState>,
    /// Raised to at least this value; progress never goes down.
    pub progress: Option<u8>,
    /// `Some(None)` clears the current stage.
    pub current_stage: Option<Option<String>>,
    /// Replaces one stage's record.
    pub stage: Option<(String, StageRecord)>,
    /// Replaces all stage records (when a job is requeued).
    pub stages: Option<Stages>,
    /// Sets the fields of the job's rich data that are set here.
    pub data: Option<JobData>,
    /// The output file and its measured metadata.
    pub result: Option<(String, VideoMeta)>,
    /// Why the job failed.
    pub error_message: Option<String>,
    /// Sets or clears the cancel request.
    pub cancel_requested: Option<bool>,
    /// Sets or clears the start of the run.
    pub started: Option<Stamp>,
    /// Stamps the end of the job.
    pub completed: bool,
    /// Counts one recovery from a crash.
    pub recovered: bool,
}

impl JobPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        let JobPatch {
            state,
            progress,
            current_stage,
            stage,
            stages,
            data,
            result,
            error_message,
            cancel_requested,
            started,
            completed,
            recovered,
        } = self;
        state.is_none()
            && progress.is_none()
            && current_stage.is_none()
            && stage.is_none()
            && stages.is_none()
            && data.is_none()
            && result.is_none()
            && error_message.is_none()
            && cancel_requested.is_none()
            && started.is_none()
            && !completed
            && !recovered
    }
}

/// What to do with a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Set it to the batch's time.
    Now,
    /// Clear it.
    Clear,
}

/// A job about to be inserted.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub id: Uuid,
    /// The slug of its subject.
    pub generation_id: String,
    /// What was asked for, validated.
    pub request: JobRequest,
    /// Every stage pending, in pipeline order.
    pub stages: Stages,
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled.
    CancelledQueued,
    /// The job is running; it will stop at its next checkpoint.
    Requested,
    /// The job had already finished; nothing changed.
    AlreadyFinished(JobState),
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|_| StoreError::Encode)
}

/// Inserts one event of `job`.
pub async fn insert_event(
    conn: &mut SqliteConnection,
    job: Uuid,
    event: NewEvent,
    now: &Now,
) -> Result<Event> {
    let payload = event.payload.as_ref().map(Value::to_string);
    let id = sqlx::query(
        "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(job.to_string())
    .bind(event.ty.as_str())
    .bind(event.level.as_str())
    .bind(&event.message)
    .bind(&event.stage)
    .bind(event.kind.map(EventKind::as_str))
    .bind(payload)
    .bind(now.ts)
    .execute(conn)
    .await?
    .last_insert_rowid();
    Ok(Event::committed(id, job, event, now.ts))
}

/// Inserts a queued job and its `queued` event.
pub async fn create(
    conn: &mut SqliteConnection,
    job: NewJob,
    now: &Now,
    events: &mut Vec<Event>,
) -> Result<Job> {
    sqlx::query(
        "INSERT INTO jobs (id, generation_id, request, state, stages, created_at, updated_at) \
         VALUES (?, ?, ?, 'queued', ?, ?, ?)",
    )
    .bind(job.id.to_string())
    .bind(&job.generation_id)
    .bind(encode(&job.request)?)
    .bind(encode(&job.stages)?)
    .bind(&now.stamp)
    .bind(&now.stamp)
    .execute(&mut *conn)
    .await?;
    let queued = NewEvent::log(Level::Info, "Job queued.").with_kind(EventKind::Queued);
    events.push(insert_event(conn, job.id, queued, now).await?);
    job_by_id(conn, job.id).await?.ok_or(StoreError::NotFound)
}

/// Moves the oldest queued job to `running` and records its start.
pub async fn claim(
    conn: &mut SqliteConnection,
    now: &Now,
    events: &mut Vec<Event>,
) -> Result<Option<Job>> {
    let row = sqlx::query(select_jobs!("WHERE state = 'queued' ORDER BY seq LIMIT 1"))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id = job_from_row(&row)?.id;
    // A requeued job starts its run afresh: nothing of the interrupted run
    // (progress, stage data, result) carries over.
    sqlx::query(
        "UPDATE jobs SET state = 'running', started_at = ?1, completed_at = NULL, \
         current_stage = NULL, progress = 0, data = '{}', result_path = NULL, result = NULL, \
         error_message = NULL, updated_at = ?1 WHERE id = ?2",
    )
    .bind(&now.stamp)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    let started =
        NewEvent::log(Level::Info, "Starting video generation...").with_kind(EventKind::Started);
    events.push(insert_event(conn, id, started, now).await?);
    job_by_id(conn, id).await
}

/// The state of a job, or [`StoreError::NotFound`].
pub async fn state_of(conn: &mut SqliteConnection, job: Uuid) -> Result<(JobState, bool)> {
    let row = sqlx::query("SELECT state, cancel_requested FROM jobs WHERE id = ?")
        .bind(job.to_string())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let state: String = row.try_get(0)?;
    let cancel_requested: i64 = row.try_get(1)?;
    let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt("state".into()))?;
    Ok((state, cancel_requested != 0))
}

/// Applies `patch` to an unfinished job. Fails with
/// [`StoreError::Finished`] once the job is terminal, so that the terminal
/// event is always the last of a log.
pub async fn update(
    conn: &mut SqliteConnection,
    job: Uuid,
    patch: &JobPatch,
    now: &Now,
) -> Result<()> {
    let stage = match &patch.stage {
        Some((name, record)) => Some((json_path(name), encode(record)?)),
        None => None,
    };
    let started = match patch.started {
        None => 0,
        Some(Stamp::Now) => 1,
        Some(Stamp::Clear) => 2,
    };
    let updated = sqlx::query(
        "UPDATE jobs SET \
           state = COALESCE(?2, state), \
           progress = CASE WHEN ?3 IS NULL THEN progress ELSE MAX(progress, ?3) END, \
           current_stage = CASE WHEN ?4 THEN ?5 ELSE current_stage END, \
           stages = CASE WHEN ?6 IS NOT NULL THEN ?6 \
                         WHEN ?7 IS NOT NULL THEN json_set(stages, ?7, json(?8)) \
                         ELSE stages END, \
           result_path = COALESCE(?9, result_path), \
           result = COALESCE(?10, result), \
           error_message = COALESCE(?11, error_message), \
           cancel_requested = COALESCE(?12, cancel_requested), \
           started_at = CASE ?13 WHEN 1 THEN ?15 WHEN 2 THEN NULL ELSE started_at END, \
           completed_at = CASE WHEN ?14 THEN ?15 ELSE completed_at END, \
           recoveries = recoveries + ?16, \
           updated_at = ?15 \
         WHERE id = ?1 AND state NOT IN ('completed', 'failed', 'cancelled')",
    )
    .bind(job.to_string())
    .bind(patch.state.map(JobState::as_str))
    .bind(patch.progress.map(i64::from))
    .bind(patch.current_stage.is_some())
    .bind(patch.current_stage.clone().flatten())
    .bind(patch.stages.as_ref().map(encode).transpose()?)
    .bind(stage.as_ref().map(|(path, _)| path.as_str()))
    .bind(stage.as_ref().map(|(_, record)| record.as_str()))
    .bind(patch.result.as_ref().map(|(path, _)| path.as_str()))
    .bind(
        patch
            .result
            .as_ref()
            .map(|(_, meta)| encode(meta))
            .transpose()?,
    )
    .bind(&patch.error_message)
    .bind(patch.cancel_requested)
    .bind(started)
    .bind(patch.completed)
    .bind(&now.stamp)
    .bind(i64::from(patch.recovered))
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(match state_of(conn, job).await {
            Ok(_) => StoreError::Finished,
            Err(err) => err,
        });
    }
    if let Some(data) = &patch.data {
        set_data(conn, job, data).await?;
    }
    Ok(())
}

/// Sets each field of `data` that is present, leaving the others.
async fn set_data(conn: &mut SqliteConnection, job: Uuid, data: &JobData) -> Result<()> {
    let Value::Object(fields) = serde_json::to_value(data).map_err(|_| StoreError::Encode)? else {
        return Err(StoreError::Encode);
    };
    for (key, value) in fields {
        sqlx::query("UPDATE jobs SET data = json_set(data, ?2, json(?3)) WHERE id = ?1")
            .bind(job.to_string())
            .bind(json_path(&key))
            .bind(value.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// `$."key"`: a JSON path to one object member, whatever the key holds.
fn json_path(key: &str) -> String {
    format!("$.{}", Value::String(key.to_string()))
}

/// Records a cancel request: a queued job is cancelled at once, a running
/// one is marked so that it stops at its next checkpoint, and a finished
/// one is left alone. `None` when there is no such job.
pub async fn cancel(
    conn: &mut SqliteConnection,
    job: Uuid,
    now: &Now,
    events: &mut Vec<Event>,
) -> Result<Option<CancelOutcome>> {
    let (state, already) = match state_of(conn, job).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Ok(None),
        Err(err) => return Err(err),
    };
    let (patch, event, outcome) = match state {
        JobState::Queued => (
            JobPatch {
                state: Some(JobState::Cancelled),
                cancel_requested: Some(true),
                completed: true,
                ..JobPatch::default()
            },
            NewEvent::log(Level::Warning, "Job cancelled.").with_kind(EventKind::Cancelled),
            CancelOutcome::CancelledQueued,
        ),
        JobState::Running if !already => (
            JobPatch {
                cancel_requested: Some(true),
                ..JobPatch::default()
            },
            NewEvent::log(Level::Warning, "Cancellation requested.")
                .with_kind(EventKind::CancelRequested),
            CancelOutcome::Requested,
        ),
        JobState::Running => return Ok(Some(CancelOutcome::Requested)),
        finished => return Ok(Some(CancelOutcome::AlreadyFinished(finished))),
    };
    update(conn, job, &patch, now).await?;
    events.push(insert_event(conn, job, event, now).await?);
    Ok(Some(outcome))
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The job and its events are gone.
    Gone,
    /// The job has not finished; nothing changed.
    Active(JobState),
}

/// Deletes a finished job and, by the foreign key, its events.
pub async fn delete(conn: &mut SqliteConnection, job: Uuid) -> Result<Deleted> {
    let (state, _) = state_of(conn, job).await?;
    if !state.is_terminal() {
        return Ok(Deleted::Active(state));
    }
    sqlx::query("DELETE FROM jobs WHERE id = ?")
        .bind(job.to_string())
        .execute(conn)
        .await?;
    Ok(Deleted::Gone)
}

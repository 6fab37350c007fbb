//! The single writer: every change to jobs and events goes through here.
//!
//! One task owns the write connection. It takes whatever requests are
//! waiting, applies them in one `BEGIN IMMEDIATE` transaction (each in its
//! own savepoint, so one failure does not undo the others), commits once,
//! and only then puts the new events in the cache and on the hub, in id
//! order. Concurrent appends therefore share a commit (group commit), a job
//! change and the event that reports it are atomic, and no one can see an
//! event that a crash could take back.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::StoreError;
use super::cache::LogCache;
use super::rows::{job_by_id, job_from_row, select_jobs};
use crate::hub::{Hub, JobCreated};
use crate::model::{Event, Job, JobRequest, JobState, NewEvent, StageRecord, kind, rfc3339};

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 1024;

/// A change to one job's row, applied together with its events.
/// Unset fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    pub state: Option<JobState>,
    /// Raised to at least this value; progress never goes down.
    pub progress: Option<u8>,
    /// `Some(None)` clears the current stage.
    pub current_stage: Option<Option<String>>,
    /// Replaces one stage's record.
    pub stage: Option<(String, StageRecord)>,
    /// Replaces all stage records (used when a job is requeued).
    pub stages: Option<Map<String, Value>>,
    /// Sets one key of the job's rich data.
    pub data: Option<(String, Value)>,
    pub result: Option<(String, Value)>,
    pub error_message: Option<String>,
    pub cancel_requested: Option<bool>,
    pub started: Option<Stamp>,
    pub completed: bool,
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
    }
}

/// What to do with a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Now,
    Clear,
}

/// A job about to be inserted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub generation_id: String,
    pub request: JobRequest,
    pub stages: Map<String, Value>,
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

/// What start-up recovery did with jobs a crash left running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub requeued: Vec<Uuid>,
    pub failed: Vec<Uuid>,
    pub cancelled: Vec<Uuid>,
}

/// Messages of the recovery events.
pub const REQUEUED_AFTER_CRASH: &str =
    "The server stopped while this job was running; it was requeued and will start again.";
pub const FAILED_AFTER_CRASH: &str =
    "The server stopped twice while this job was running; it was not retried again.";

pub(super) enum Op {
    Create(Box<NewJob>),
    Claim,
    /// Events without any change to their job: the hot path.
    Events {
        job: Uuid,
        events: Vec<NewEvent>,
    },
    Append {
        job: Uuid,
        events: Vec<NewEvent>,
        patch: Box<JobPatch>,
    },
    Cancel(Uuid),
    Recover,
}

pub(super) enum Output {
    Job(Option<Box<Job>>),
    Appended,
    Cancel(Option<CancelOutcome>),
    Recovered(Recovery),
}

pub(super) struct Done {
    pub output: Output,
    pub events: Vec<Arc<Event>>,
}

pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// Where committed events go, in this order.
pub(super) struct Sinks {
    pub cache: Arc<LogCache>,
    pub hub: Arc<Hub>,
}

pub(super) async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Request>, sinks: Sinks) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut states = States::default();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&mut conn, &mut batch, &mut states, &sinks).await;
    }
    let _ = conn.close().await;
}

/// The state of each job the writer has touched. The writer is the only
/// one that changes states, so it can tell a plain event append whether
/// its job is still open without asking SQLite.
#[derive(Default)]
struct States(HashMap<Uuid, JobState>);

impl States {
    async fn get(
        &mut self,
        conn: &mut SqliteConnection,
        job: Uuid,
    ) -> Result<JobState, StoreError> {
        if let Some(state) = self.0.get(&job) {
            return Ok(*state);
        }
        let row = sqlx::query("SELECT state FROM jobs WHERE id = ?")
            .bind(job.to_string())
            .fetch_optional(conn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let state: String = row.try_get(0)?;
        let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt("state".into()))?;
        self.set(job, state);
        Ok(state)
    }

    /// Terminal jobs are forgotten: they are rare to touch again, and a
    /// lookup finds them finished.
    fn set(&mut self, job: Uuid, state: JobState) {
        if state.is_terminal() {
            self.0.remove(&job);
        } else {
            self.0.insert(job, state);
        }
    }
}

/// What one op produced before the commit.
struct Applied {
    output: Output,
    events: Vec<Event>,
    created: Option<JobCreated>,
}

/// A request waiting for its answer, and its result so far.
struct Slot {
    reply: oneshot::Sender<Result<Done, StoreError>>,
    result: Result<Applied, StoreError>,
}

/// Plain event appends (no job change) collected for one multi-row INSERT.
/// They are flushed before any other op, so ids follow request order.
#[derive(Default)]
struct Pending {
    rows: Vec<PendingRow>,
}

/// One event waiting for its INSERT, with its text columns prepared.
struct PendingRow {
    slot: usize,
    job: Uuid,
    job_text: uuid::fmt::Hyphenated,
    payload: Option<String>,
    event: NewEvent,
}

/// Rows per INSERT statement. Batches are split into these sizes so that
/// a handful of prepared statements serve every batch.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// `INSERT INTO events ... VALUES (...)` for `rows` rows, built once.
fn insert_sql(rows: usize) -> &'static str {
    use std::sync::OnceLock;
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=CHUNKS[0])
            .map(|n| {
                let mut sql = String::from(
                    "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) VALUES ",
                );
                for i in 0..n {
                    sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?)" });
                }
                sql
            })
            .collect()
    });
    &all[rows]
}

impl Pending {
    fn push(&mut self, slot: usize, job: Uuid, event: NewEvent) {
        self.rows.push(PendingRow {
            slot,
            job,
            job_text: job.hyphenated(),
            payload: event.payload.as_ref().map(Value::to_string),
            event,
        });
    }

    async fn flush(
        &mut self,
        conn: &mut SqliteConnection,
        slots: &mut [Slot],
        ts: f64,
    ) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        // (rows in the statement, id of its first row)
        let mut statements = Vec::new();
        let mut done = 0;
        while done < rows.len() {
            let left = rows.len() - done;
            let size = CHUNKS.into_iter().find(|size| *size <= left).unwrap_or(1);
            let chunk = &rows[done..done + size];
            let mut texts = [0u8; 36 * CHUNKS[0]];
            let ids: Vec<&str> = chunk
                .iter()
                .zip(texts.chunks_mut(36))
                .map(|(row, buf)| &*row.job_text.encode_lower(buf))
                .collect();
            let mut query = sqlx::query(insert_sql(size));
            for (row, id) in chunk.iter().zip(&ids) {
                let e = &row.event;
                query = query
                    .bind(*id)
                    .bind(e.ty.as_str())
                    .bind(e.level.as_str())
                    .bind(e.message.as_str())
                    .bind(e.stage.as_deref())
                    .bind(e.kind.as_deref())
                    .bind(row.payload.as_deref())
                    .bind(ts);
            }
            // One writer in one statement: the ids are consecutive.
            let last = query.execute(&mut *conn).await?.last_insert_rowid();
            statements.push((size, last - size as i64 + 1));
            done += size;
        }
        let mut rows = rows.into_iter();
        for (size, first) in statements {
            for (id, row) in (first..).zip(rows.by_ref().take(size)) {
                let e = row.event;
                let event = Event::new(
                    id, row.job, e.ty, e.level, e.message, e.stage, e.kind, e.payload, ts,
                );
                if let Ok(applied) = &mut slots[row.slot].result {
                    applied.events.push(event);
                }
            }
        }
        Ok(())
    }
}

fn is_plain(op: &Op) -> bool {
    matches!(op, Op::Events { .. })
}

/// Applies the batch in one transaction. A lone plain append is a single
/// INSERT and needs no explicit transaction.
async fn apply_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Request>,
    states: &mut States,
    slots: &mut Vec<Slot>,
) -> Result<(), StoreError> {
    if batch.len() == 1 && is_plain(&batch[0].op) {
        return apply_ops(conn, batch, states, slots).await;
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    apply_ops(&mut tx, batch, states, slots).await?;
    tx.commit().await?;
    Ok(())
}

async fn apply_ops(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Request>,
    states: &mut States,
    slots: &mut Vec<Slot>,
) -> Result<(), StoreError> {
    let mut pending = Pending::default();
    let (_, _, ts) = now();
    for Request { op, reply } in batch.drain(..) {
        let index = slots.len();
        match op {
            Op::Events { job, events } => {
                let result = match states.get(conn, job).await {
                    Ok(state) if state.is_terminal() => Err(StoreError::Finished),
                    Ok(_) => {
                        for event in events {
                            pending.push(index, job, event);
                        }
                        Ok(Applied {
                            output: Output::Appended,
                            events: Vec::new(),
                            created: None,
                        })
                    }
                    Err(StoreError::NotFound) => Err(StoreError::NotFound),
                    Err(err) => return Err(err),
                };
                slots.push(Slot { reply, result });
            }
            op => {
                pending.flush(conn, slots, ts).await?;
                let result = match apply(conn, op, states).await {
                    Ok(applied) => Ok(applied),
                    // Refused before anything was written: only this op fails.
                    Err(err @ (StoreError::NotFound | StoreError::Finished)) => Err(err),
                    Err(err) => return Err(err),
                };
                slots.push(Slot { reply, result });
            }
        }
    }
    pending.flush(conn, slots, ts).await
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Request>,
    states: &mut States,
    sinks: &Sinks,
) {
    let mut slots = Vec::with_capacity(batch.len());
    if let Err(err) = apply_batch(conn, batch, states, &mut slots).await {
        tracing::error!(error = %err, "event log commit failed");
        // Nothing of this batch is durable (the transaction rolled back as
        // it was dropped): every request fails, and the writer forgets the
        // states it learnt on the way.
        states.0.clear();
        for Slot { reply, .. } in slots {
            let _ = reply.send(Err(StoreError::CommitFailed));
        }
        for Request { reply, .. } in batch.drain(..) {
            let _ = reply.send(Err(StoreError::CommitFailed));
        }
        return;
    }

    // Committed: cache, then publish in id order, then answer.
    let mut all = Vec::new();
    let mut replies = Vec::with_capacity(slots.len());
    for Slot { reply, result } in slots {
        match result {
            Ok(applied) => {
                let events: Vec<Arc<Event>> = applied.events.into_iter().map(Arc::new).collect();
                match &applied.created {
                    // A new job's log starts in the cache with its first events.
                    Some(created) => sinks.cache.create(created.id, events.clone()),
                    None => sinks.cache.push(&events),
                }
                all.extend(events.iter().cloned());
                replies.push((reply, Ok((applied.output, events, applied.created))));
            }
            Err(err) => replies.push((reply, Err(err))),
        }
    }
    sinks.hub.publish(&all);
    for (reply, result) in replies {
        let _ = reply.send(result.map(|(output, events, created)| {
            if let Some(created) = created {
                sinks.hub.announce(created);
            }
            Done { output, events }
        }));
    }
}

fn now() -> (DateTime<Utc>, String, f64) {
    let t = Utc::now();
    let ts = t.timestamp_micros() as f64 / 1e6;
    (t, rfc3339(t), ts)
}

async fn apply(
    conn: &mut SqliteConnection,
    op: Op,
    states: &mut States,
) -> Result<Applied, StoreError> {
    let mut events = Vec::new();
    let mut created = None;
    let output = match op {
        Op::Create(job) => {
            let (generation_id, id) = (job.generation_id.clone(), job.id);
            let job = create(conn, *job, &mut events).await?;
            states.set(id, JobState::Queued);
            created = Some(JobCreated { id, generation_id });
            Output::Job(Some(Box::new(job)))
        }
        Op::Claim => {
            let job = claim(conn, &mut events).await?;
            if let Some(job) = &job {
                states.set(job.id, JobState::Running);
            }
            Output::Job(job.map(Box::new))
        }
        Op::Events { job, events: new } => {
            append(conn, job, &new, &JobPatch::default(), &mut events).await?;
            Output::Appended
        }
        Op::Append {
            job,
            events: new,
            patch,
        } => {
            append(conn, job, &new, &patch, &mut events).await?;
            if let Some(state) = patch.state {
                states.set(job, state);
            }
            Output::Appended
        }
        Op::Cancel(job) => {
            let outcome = cancel(conn, job, &mut events).await?;
            if outcome == Some(CancelOutcome::CancelledQueued) {
                states.set(job, JobState::Cancelled);
            }
            Output::Cancel(outcome)
        }
        Op::Recover => {
            let recovery = recover(conn, &mut events).await?;
            // Recovery changed several states at once; learn them again.
            states.0.clear();
            Output::Recovered(recovery)
        }
    };
    Ok(Applied {
        output,
        events,
        created,
    })
}

async fn insert_event(
    conn: &mut SqliteConnection,
    job: Uuid,
    event: &NewEvent,
    ts: f64,
) -> Result<Event, StoreError> {
    let payload = event.payload.as_ref().map(Value::to_string);
    let id = sqlx::query(
        "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(job.to_string())
    .bind(&event.ty)
    .bind(event.level.as_str())
    .bind(&event.message)
    .bind(&event.stage)
    .bind(&event.kind)
    .bind(payload)
    .bind(ts)
    .execute(conn)
    .await?
    .last_insert_rowid();
    Ok(Event::new(
        id,
        job,
        event.ty.clone(),
        event.level,
        event.message.clone(),
        event.stage.clone(),
        event.kind.clone(),
        event.payload.clone(),
        ts,
    ))
}

async fn create(
    conn: &mut SqliteConnection,
    job: NewJob,
    events: &mut Vec<Event>,
) -> Result<Job, StoreError> {
    let (_, stamp, ts) = now();
    let request = serde_json::to_string(&job.request).map_err(|_| StoreError::Encode)?;
    sqlx::query(
        "INSERT INTO jobs (id, generation_id, request, state, stages, created_at, updated_at) \
         VALUES (?, ?, ?, 'queued', ?, ?, ?)",
    )
    .bind(job.id.to_string())
    .bind(&job.generation_id)
    .bind(request)
    .bind(Value::Object(job.stages).to_string())
    .bind(&stamp)
    .bind(&stamp)
    .execute(&mut *conn)
    .await?;
    let queued = NewEvent::log(crate::model::Level::Info, "Job queued.").with_kind(kind::QUEUED);
    events.push(insert_event(conn, job.id, &queued, ts).await?);
    job_by_id(conn, job.id).await?.ok_or(StoreError::NotFound)
}

async fn claim(
    conn: &mut SqliteConnection,
    events: &mut Vec<Event>,
) -> Result<Option<Job>, StoreError> {
    let (_, stamp, ts) = now();
    let row = sqlx::query(select_jobs!("WHERE state = 'queued' ORDER BY seq LIMIT 1"))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = job_from_row(&row)?;
    // A requeued job starts its run afresh: nothing of the interrupted run
    // (progress, stage data, result) carries over.
    sqlx::query(
        "UPDATE jobs SET state = 'running', started_at = ?, completed_at = NULL, \
         current_stage = NULL, progress = 0, data = '{}', result_path = NULL, result = NULL, \
         error_message = NULL, updated_at = ? WHERE id = ?",
    )
    .bind(&stamp)
    .bind(&stamp)
    .bind(job.id.to_string())
    .execute(&mut *conn)
    .await?;
    let started = NewEvent::log(crate::model::Level::Info, "Starting video generation...")
        .with_kind(kind::STARTED);
    events.push(insert_event(conn, job.id, &started, ts).await?);
    job.state = JobState::Running;
    job.started_at = DateTime::parse_from_rfc3339(&stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    job.updated_at = job.started_at.unwrap_or(job.updated_at);
    job.completed_at = None;
    job.current_stage = None;
    job.progress = 0;
    job.data = Map::new();
    job.result_path = None;
    job.result = None;
    job.error_message = None;
    Ok(Some(job))
}

async fn append(
    conn: &mut SqliteConnection,
    job: Uuid,
    new: &[NewEvent],
    patch: &JobPatch,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let (_, stamp, ts) = now();
    let stage_path = patch.stage.as_ref().map(|(name, _)| json_path(name));
    let stage_value = patch
        .stage
        .as_ref()
        .map(|(_, rec)| serde_json::to_string(rec).unwrap_or_default());
    let data_path = patch.data.as_ref().map(|(key, _)| json_path(key));
    let data_value = patch.data.as_ref().map(|(_, v)| v.to_string());
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
           data = CASE WHEN ?9 IS NULL THEN data ELSE json_set(data, ?9, json(?10)) END, \
           result_path = COALESCE(?11, result_path), \
           result = COALESCE(?12, result), \
           error_message = COALESCE(?13, error_message), \
           cancel_requested = COALESCE(?14, cancel_requested), \
           started_at = CASE ?15 WHEN 1 THEN ?17 WHEN 2 THEN NULL ELSE started_at END, \
           completed_at = CASE WHEN ?16 THEN ?17 ELSE completed_at END, \
           updated_at = ?17 \
         WHERE id = ?1 AND state NOT IN ('completed', 'failed', 'cancelled')",
    )
    .bind(job.to_string())
    .bind(patch.state.map(JobState::as_str))
    .bind(patch.progress.map(i64::from))
    .bind(patch.current_stage.is_some())
    .bind(patch.current_stage.clone().flatten())
    .bind(patch.stages.clone().map(|s| Value::Object(s).to_string()))
    .bind(stage_path)
    .bind(stage_value)
    .bind(data_path)
    .bind(data_value)
    .bind(patch.result.as_ref().map(|(path, _)| path.clone()))
    .bind(patch.result.as_ref().map(|(_, meta)| meta.to_string()))
    .bind(&patch.error_message)
    .bind(patch.cancel_requested)
    .bind(started)
    .bind(patch.completed)
    .bind(&stamp)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        let exists = sqlx::query("SELECT 1 FROM jobs WHERE id = ?")
            .bind(job.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        return Err(if exists {
            StoreError::Finished
        } else {
            StoreError::NotFound
        });
    }
    for event in new {
        events.push(insert_event(conn, job, event, ts).await?);
    }
    Ok(())
}

/// `$."key"`: a JSON path to one object member, whatever the key holds.
fn json_path(key: &str) -> String {
    format!("$.{}", Value::String(key.to_string()))
}

async fn cancel(
    conn: &mut SqliteConnection,
    job: Uuid,
    events: &mut Vec<Event>,
) -> Result<Option<CancelOutcome>, StoreError> {
    let (_, stamp, ts) = now();
    let row = sqlx::query("SELECT state, cancel_requested FROM jobs WHERE id = ?")
        .bind(job.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state")?;
    let already: i64 = row.try_get("cancel_requested")?;
    let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt("state".into()))?;
    let outcome = match state {
        JobState::Queued => {
            sqlx::query(
                "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, completed_at = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(&stamp)
            .bind(&stamp)
            .bind(job.to_string())
            .execute(&mut *conn)
            .await?;
            let event = NewEvent::log(crate::model::Level::Warning, "Job cancelled.")
                .with_kind(kind::CANCELLED);
            events.push(insert_event(conn, job, &event, ts).await?);
            CancelOutcome::CancelledQueued
        }
        JobState::Running => {
            if already == 0 {
                sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?")
                    .bind(&stamp)
                    .bind(job.to_string())
                    .execute(&mut *conn)
                    .await?;
                let event = NewEvent::log(crate::model::Level::Warning, "Cancellation requested.")
                    .with_kind(kind::CANCEL_REQUESTED);
                events.push(insert_event(conn, job, &event, ts).await?);
            }
            CancelOutcome::Requested
        }
        finished => CancelOutcome::AlreadyFinished(finished),
    };
    Ok(Some(outcome))
}

/// Every stage back to `pending`, keeping their order.
fn reset_stages(stages: &Map<String, Value>) -> Map<String, Value> {
    let pending = serde_json::to_value(StageRecord::pending()).unwrap_or(Value::Null);
    stages
        .keys()
        .map(|name| (name.clone(), pending.clone()))
        .collect()
}

async fn recover(
    conn: &mut SqliteConnection,
    events: &mut Vec<Event>,
) -> Result<Recovery, StoreError> {
    let rows = sqlx::query(select_jobs!("WHERE state = 'running' ORDER BY seq"))
        .fetch_all(&mut *conn)
        .await?;
    let mut recovery = Recovery::default();
    for row in &rows {
        let job = job_from_row(row)?;
        let mut patch = JobPatch {
            current_stage: Some(None),
            ..JobPatch::default()
        };
        let event;
        if job.cancel_requested {
            patch.state = Some(JobState::Cancelled);
            patch.completed = true;
            event = NewEvent::log(crate::model::Level::Warning, "Job cancelled.")
                .with_kind(kind::CANCELLED);
            recovery.cancelled.push(job.id);
        } else if job.recoveries == 0 {
            patch.state = Some(JobState::Queued);
            patch.stages = Some(reset_stages(&job.stages));
            patch.started = Some(Stamp::Clear);
            event = NewEvent::log(crate::model::Level::Warning, REQUEUED_AFTER_CRASH)
                .with_kind(kind::REQUEUED);
            recovery.requeued.push(job.id);
        } else {
            patch.state = Some(JobState::Failed);
            patch.completed = true;
            patch.error_message = Some(FAILED_AFTER_CRASH.into());
            event = NewEvent::log(crate::model::Level::Error, FAILED_AFTER_CRASH)
                .with_type("error")
                .with_kind(kind::FAILED);
            recovery.failed.push(job.id);
        }
        append(conn, job.id, &[event], &patch, events).await?;
        if patch.state == Some(JobState::Queued) {
            sqlx::query("UPDATE jobs SET recoveries = recoveries + 1 WHERE id = ?")
                .bind(job.id.to_string())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(recovery)
}

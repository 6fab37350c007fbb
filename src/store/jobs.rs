//! Job SQL: small functions that the writer calls inside its transaction.
//! Each takes the connection and the time of the batch, changes one job
//! row, and inserts the events that report the change. The rules about
//! when a job may change (a finished job never does) live here too,
//! because they must hold inside the same transaction as the change.

use serde_json::Value;
use uuid::Uuid;

use super::db::{Conn, both};
pub use super::patch::{CancelOutcome, Deleted, JobPatch, NewJob, Now, Stamp};
use super::rows::{Columns, job_by_id, job_from_row, select_jobs};
use super::{Result, StoreError};
use crate::model::{Event, EventKind, Job, JobData, JobState, Level, NewEvent};

fn encode<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|_| StoreError::Encode)
}

/// Inserts one event of `job`.
pub async fn insert_event(
    conn: &mut Conn<'_>,
    job: Uuid,
    event: NewEvent,
    now: &Now,
) -> Result<Event> {
    let payload = event.payload.as_ref().map(Value::to_string);
    let id = both!(conn, c => sqlx::query(
        "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(job.to_string())
    .bind(event.ty.as_str())
    .bind(event.level.as_str())
    .bind(&event.message)
    .bind(&event.stage)
    .bind(event.kind.map(EventKind::as_str))
    .bind(payload)
    .bind(now.ts)
    .fetch_one(&mut *c)
    .await?
    .int(0)?);
    Ok(Event::committed(id, job, event, now.ts))
}

/// Inserts a queued job and its `queued` event.
pub async fn create(
    conn: &mut Conn<'_>,
    job: NewJob,
    now: &Now,
    events: &mut Vec<Event>,
) -> Result<Job> {
    let (request, stages) = (encode(&job.request)?, encode(&job.stages)?);
    both!(conn, c => sqlx::query(
        "INSERT INTO jobs (id, generation_id, request, state, stages, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $5)",
    )
    .bind(job.id.to_string())
    .bind(&job.generation_id)
    .bind(request)
    .bind(stages)
    .bind(&now.stamp)
    .execute(&mut *c)
    .await?
    .rows_affected());
    let queued = NewEvent::log(Level::Info, "Job queued.").with_kind(EventKind::Queued);
    events.push(insert_event(conn, job.id, queued, now).await?);
    job_by_id(conn, job.id).await?.ok_or(StoreError::NotFound)
}

/// Moves the oldest queued job to `running`, owned by `owner`, and
/// records its start. On PostgreSQL the row is taken with `FOR UPDATE SKIP
/// LOCKED`, so instances claiming at once never take the same job.
pub async fn claim(
    conn: &mut Conn<'_>,
    owner: &str,
    now: &Now,
    events: &mut Vec<Event>,
) -> Result<Option<Job>> {
    let id = match conn {
        Conn::Sqlite(c) => {
            let sql = select_jobs!("WHERE state = 'queued' ORDER BY seq LIMIT 1");
            let row = sqlx::query(sql).fetch_optional(&mut **c).await?;
            row.as_ref()
                .map(job_from_row)
                .transpose()?
                .map(|job| job.id)
        }
        Conn::Postgres(c) => {
            let sql =
                select_jobs!("WHERE state = 'queued' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED");
            let row = sqlx::query(sql).fetch_optional(&mut **c).await?;
            row.as_ref()
                .map(job_from_row)
                .transpose()?
                .map(|job| job.id)
        }
    };
    let Some(id) = id else { return Ok(None) };
    // A requeued job starts its run afresh: nothing of the interrupted run
    // (progress, stage data, result) carries over.
    both!(conn, c => sqlx::query(
        "UPDATE jobs SET state = 'running', started_at = $1, completed_at = NULL, \
         current_stage = NULL, progress = 0, data = '{}', result_path = NULL, result = NULL, \
         error_message = NULL, updated_at = $1, owner = $3 WHERE id = $2",
    )
    .bind(&now.stamp)
    .bind(id.to_string())
    .bind(owner)
    .execute(&mut *c)
    .await?
    .rows_affected());
    let started =
        NewEvent::log(Level::Info, "Starting video generation...").with_kind(EventKind::Started);
    events.push(insert_event(conn, id, started, now).await?);
    job_by_id(conn, id).await
}

/// The state of a job, or [`StoreError::NotFound`].
pub async fn state_of(conn: &mut Conn<'_>, job: Uuid) -> Result<(JobState, bool)> {
    let (state, _, cancel_requested) = owned_state(conn, job).await?;
    Ok((state, cancel_requested))
}

/// The state of a job, its owner and whether a cancel was asked for, or
/// [`StoreError::NotFound`].
pub async fn owned_state(
    conn: &mut Conn<'_>,
    job: Uuid,
) -> Result<(JobState, Option<String>, bool)> {
    let (state, owner, cancel_requested) = both!(conn, c => {
        let row = sqlx::query("SELECT state, owner, cancel_requested FROM jobs WHERE id = $1")
            .bind(job.to_string())
            .fetch_optional(&mut *c)
            .await?
            .ok_or(StoreError::NotFound)?;
        (row.text(0)?, row.text_opt(1)?, row.int(2)?)
    });
    let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt("state".into()))?;
    Ok((state, owner, cancel_requested != 0))
}

/// `UPDATE jobs` for [`update`], in SQLite's words. PostgreSQL has no
/// `json_set` that keeps key order, so there the merged stages come in as
/// a whole (`$6`) and the stage arm is never taken.
const UPDATE_SQL: &str = "UPDATE jobs SET \
       state = COALESCE($2, state), \
       progress = CASE WHEN $3 IS NULL OR progress > $3 THEN progress ELSE $3 END, \
       current_stage = CASE WHEN $4 THEN $5 ELSE current_stage END, \
       stages = CASE WHEN $6 IS NOT NULL THEN $6 \
                     WHEN $7 IS NOT NULL THEN json_set(stages, $7, json($8)) \
                     ELSE stages END, \
       result_path = COALESCE($9, result_path), \
       result = COALESCE($10, result), \
       error_message = COALESCE($11, error_message), \
       cancel_requested = COALESCE($12, cancel_requested), \
       started_at = CASE $13 WHEN 1 THEN $15 WHEN 2 THEN NULL ELSE started_at END, \
       completed_at = CASE WHEN $14 THEN $15 ELSE completed_at END, \
       recoveries = recoveries + $16, \
       owner = CASE WHEN $18 THEN NULL ELSE owner END, \
       updated_at = $15 \
     WHERE id = $1 AND state NOT IN ('completed', 'failed', 'cancelled') \
       AND ($17 IS NULL OR owner = $17)";

fn update_sql_pg() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| UPDATE_SQL.replace("json_set(stages, $7, json($8))", "COALESCE($8, stages)"))
}

/// Applies `patch` to an unfinished job. Fails with
/// [`StoreError::Finished`] once the job is terminal (or, for a fenced
/// patch, no longer owned by the fence), so that the terminal event is
/// always the last of a log.
pub async fn update(conn: &mut Conn<'_>, job: Uuid, patch: &JobPatch, now: &Now) -> Result<()> {
    let mut stage = match &patch.stage {
        Some((name, record)) => Some((json_path(name), encode(record)?)),
        None => None,
    };
    let mut stages = patch.stages.as_ref().map(encode).transpose()?;
    let sql = match conn {
        Conn::Sqlite(_) => UPDATE_SQL,
        Conn::Postgres(c) => {
            if let (Some((name, record)), None) = (&patch.stage, &stages) {
                let (current, _) = json_columns(c, job).await?;
                stages = Some(merged(&current, [(name.clone(), encode_value(record)?)])?);
                stage = None;
            }
            update_sql_pg()
        }
    };
    let started = match patch.started {
        None => 0,
        Some(Stamp::Now) => 1,
        Some(Stamp::Clear) => 2,
    };
    let result = patch
        .result
        .as_ref()
        .map(|(_, meta)| encode(meta))
        .transpose()?;
    let updated = both!(conn, c => sqlx::query(sql)
        .bind(job.to_string())
        .bind(patch.state.map(JobState::as_str))
        .bind(patch.progress.map(i64::from))
        .bind(patch.current_stage.is_some())
        .bind(patch.current_stage.clone().flatten())
        .bind(&stages)
        .bind(stage.as_ref().map(|(path, _)| path.as_str()))
        .bind(stage.as_ref().map(|(_, record)| record.as_str()))
        .bind(patch.result.as_ref().map(|(path, _)| path.as_str()))
        .bind(&result)
        .bind(&patch.error_message)
        .bind(patch.cancel_requested.map(i64::from))
        .bind(started)
        .bind(patch.completed)
        .bind(&now.stamp)
        .bind(i64::from(patch.recovered))
        .bind(&patch.fence)
        .bind(patch.release)
        .execute(&mut *c)
        .await?
        .rows_affected());
    if updated == 0 {
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

fn encode_value<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|_| StoreError::Encode)
}

/// A job's `stages` and `data` columns, as stored.
async fn json_columns(conn: &mut sqlx::PgConnection, job: Uuid) -> Result<(String, String)> {
    let row = sqlx::query("SELECT stages, data FROM jobs WHERE id = $1")
        .bind(job.to_string())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((row.text(0)?, row.text(1)?))
}

/// `current` (a JSON object) with `fields` set, keeping the order of the
/// keys it has, as SQLite's `json_set` does.
fn merged(current: &str, fields: impl IntoIterator<Item = (String, Value)>) -> Result<String> {
    let mut object: serde_json::Map<String, Value> =
        serde_json::from_str(current).map_err(|_| StoreError::Corrupt("json column".into()))?;
    object.extend(fields);
    encode(&object)
}

/// Sets each field of `data` that is present, leaving the others.
async fn set_data(conn: &mut Conn<'_>, job: Uuid, data: &JobData) -> Result<()> {
    let Value::Object(fields) = encode_value(data)? else {
        return Err(StoreError::Encode);
    };
    match conn {
        Conn::Sqlite(c) => {
            for (key, value) in fields {
                sqlx::query("UPDATE jobs SET data = json_set(data, $2, json($3)) WHERE id = $1")
                    .bind(job.to_string())
                    .bind(json_path(&key))
                    .bind(value.to_string())
                    .execute(&mut **c)
                    .await?;
            }
        }
        Conn::Postgres(c) => {
            let (_, current) = json_columns(c, job).await?;
            sqlx::query("UPDATE jobs SET data = $2 WHERE id = $1")
                .bind(job.to_string())
                .bind(merged(&current, fields)?)
                .execute(&mut **c)
                .await?;
        }
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
    conn: &mut Conn<'_>,
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

/// Deletes a finished job and, by the foreign key, its events.
pub async fn delete(conn: &mut Conn<'_>, job: Uuid) -> Result<Deleted> {
    let (state, _) = state_of(conn, job).await?;
    if !state.is_terminal() {
        return Ok(Deleted::Active(state));
    }
    both!(conn, c => sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job.to_string())
        .execute(&mut *c)
        .await?
    .rows_affected());
    Ok(Deleted::Gone)
}

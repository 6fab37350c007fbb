//! Mapping between SQLite rows and model types, and the read queries that
//! both the read pool and the writer use.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Event, EventKind, EventType, Job, JobState, Level, NewEvent};

/// `SELECT <every job column> FROM jobs <rest>`, as one static string.
macro_rules! select_jobs {
    ($rest:literal) => {
        concat!(
            "SELECT id, generation_id, request, state, cancel_requested, progress, current_stage, ",
            "stages, data, result_path, result, error_message, recoveries, created_at, ",
            "started_at, completed_at, updated_at FROM jobs ",
            $rest
        )
    };
}
pub(crate) use select_jobs;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn time(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| corrupt(col))
    })
    .transpose()
}

/// A JSON column read as `T`.
fn json<T: DeserializeOwned>(row: &SqliteRow, col: &str) -> Result<Option<T>, StoreError> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|_| corrupt(col)))
        .transpose()
}

/// A job from a row of [`select_jobs`].
pub fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let progress: i64 = row.try_get("progress")?;
    let recoveries: i64 = row.try_get("recoveries")?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("id"))?,
        generation_id: row.try_get("generation_id")?,
        request: json(row, "request")?.ok_or_else(|| corrupt("request"))?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("state"))?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        progress: progress.clamp(0, 100) as u8,
        current_stage: row.try_get("current_stage")?,
        stages: json(row, "stages")?.unwrap_or_default(),
        data: json(row, "data")?.unwrap_or_default(),
        result_path: row.try_get("result_path")?,
        result: json(row, "result")?,
        error_message: row.try_get("error_message")?,
        recoveries: recoveries.max(0) as u32,
        created_at: time(row, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        started_at: time(row, "started_at")?,
        completed_at: time(row, "completed_at")?,
        updated_at: time(row, "updated_at")?.ok_or_else(|| corrupt("updated_at"))?,
    })
}

/// An event from a row of the events table.
pub fn event_from_row(row: &SqliteRow) -> Result<Event, StoreError> {
    let job_id: String = row.try_get("job_id")?;
    let ty: String = row.try_get("type")?;
    let level: String = row.try_get("level")?;
    let kind: Option<String> = row.try_get("kind")?;
    let new = NewEvent {
        ty: EventType::parse(&ty),
        level: Level::parse(&level).ok_or_else(|| corrupt("level"))?,
        message: row.try_get("message")?,
        stage: row.try_get("stage")?,
        kind: kind.as_deref().and_then(EventKind::parse),
        payload: json(row, "payload")?,
    };
    Ok(Event::committed(
        row.try_get("id")?,
        Uuid::parse_str(&job_id).map_err(|_| corrupt("job_id"))?,
        new,
        row.try_get("timestamp")?,
    ))
}

/// One job by id.
pub async fn job_by_id(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(select_jobs!("WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// Every event of a job with an id above `after`, oldest first.
pub async fn events_of_job(
    conn: &mut SqliteConnection,
    id: Uuid,
    after: i64,
) -> Result<Vec<Arc<Event>>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, job_id, type, level, message, stage, kind, payload, timestamp \
         FROM events WHERE job_id = ? AND id > ? ORDER BY id",
    )
    .bind(id.to_string())
    .bind(after)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| event_from_row(row).map(Arc::new))
        .collect()
}

//! Mapping between SQLite rows and model types, and the read queries that
//! both the read pool and the writer use.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::model::{Event, Job, JobState, Level};

use super::StoreError;

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

fn object(text: &str, col: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(corrupt(col)),
    }
}

pub fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let request: String = row.try_get("request")?;
    let stages: String = row.try_get("stages")?;
    let data: String = row.try_get("data")?;
    let result: Option<String> = row.try_get("result")?;
    let progress: i64 = row.try_get("progress")?;
    let recoveries: i64 = row.try_get("recoveries")?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("id"))?,
        generation_id: row.try_get("generation_id")?,
        request: serde_json::from_str(&request).map_err(|_| corrupt("request"))?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("state"))?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        progress: progress.clamp(0, 100) as u8,
        current_stage: row.try_get("current_stage")?,
        stages: object(&stages, "stages")?,
        data: object(&data, "data")?,
        result_path: row.try_get("result_path")?,
        result: result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|_| corrupt("result"))?,
        error_message: row.try_get("error_message")?,
        recoveries: recoveries.max(0) as u32,
        created_at: time(row, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        started_at: time(row, "started_at")?,
        completed_at: time(row, "completed_at")?,
        updated_at: time(row, "updated_at")?.ok_or_else(|| corrupt("updated_at"))?,
    })
}

pub fn event_from_row(row: &SqliteRow) -> Result<Event, StoreError> {
    let job_id: String = row.try_get("job_id")?;
    let level: String = row.try_get("level")?;
    let payload: Option<String> = row.try_get("payload")?;
    Ok(Event::new(
        row.try_get("id")?,
        Uuid::parse_str(&job_id).map_err(|_| corrupt("job_id"))?,
        row.try_get("type")?,
        Level::parse(&level).ok_or_else(|| corrupt("level"))?,
        row.try_get("message")?,
        row.try_get("stage")?,
        row.try_get("kind")?,
        payload
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|_| corrupt("payload"))?,
        row.try_get("timestamp")?,
    ))
}

pub async fn job_by_id(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(select_jobs!("WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub async fn events_of_job(
    conn: &mut SqliteConnection,
    id: Uuid,
) -> Result<Vec<Arc<Event>>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, job_id, type, level, message, stage, kind, payload, timestamp \
         FROM events WHERE job_id = ? ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| event_from_row(row).map(Arc::new))
        .collect()
}

//! Mapping between database rows and model types, and the read queries that
//! both the read pool and the writer use.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{ColumnIndex, Row};
use uuid::Uuid;

use super::StoreError;
use super::db::{Conn, both};
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

/// `SELECT <every event column> FROM events <rest>`.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT id, job_id, type, level, message, stage, kind, payload, timestamp FROM events ",
            $rest
        )
    };
}
pub(crate) use select_events;

/// Typed column reads that both drivers' rows share.
pub trait Columns: Row {
    /// A text column.
    fn text<I: ColumnIndex<Self>>(&self, i: I) -> Result<String, sqlx::Error>;
    /// A nullable text column.
    fn text_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<String>, sqlx::Error>;
    /// A 64-bit integer column.
    fn int<I: ColumnIndex<Self>>(&self, i: I) -> Result<i64, sqlx::Error>;
    /// A nullable 64-bit integer column.
    fn int_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<i64>, sqlx::Error>;
    /// A double column.
    fn real<I: ColumnIndex<Self>>(&self, i: I) -> Result<f64, sqlx::Error>;
    /// A nullable double column.
    fn real_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<f64>, sqlx::Error>;
    /// A byte column.
    fn bytes<I: ColumnIndex<Self>>(&self, i: I) -> Result<Vec<u8>, sqlx::Error>;
}

macro_rules! columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text<I: ColumnIndex<Self>>(&self, i: I) -> Result<String, sqlx::Error> {
                self.try_get(i)
            }
            fn text_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<String>, sqlx::Error> {
                self.try_get(i)
            }
            fn int<I: ColumnIndex<Self>>(&self, i: I) -> Result<i64, sqlx::Error> {
                self.try_get(i)
            }
            fn int_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(i)
            }
            fn real<I: ColumnIndex<Self>>(&self, i: I) -> Result<f64, sqlx::Error> {
                self.try_get(i)
            }
            fn real_opt<I: ColumnIndex<Self>>(&self, i: I) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(i)
            }
            fn bytes<I: ColumnIndex<Self>>(&self, i: I) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(i)
            }
        }
    };
}
columns!(SqliteRow);
columns!(PgRow);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn time<R: Columns>(row: &R, col: &'static str) -> Result<Option<DateTime<Utc>>, StoreError>
where
    &'static str: ColumnIndex<R>,
{
    row.text_opt(col)?
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| corrupt(col))
        })
        .transpose()
}

/// A JSON column read as `T`.
fn json<T: DeserializeOwned, R: Columns>(
    row: &R,
    col: &'static str,
) -> Result<Option<T>, StoreError>
where
    &'static str: ColumnIndex<R>,
{
    row.text_opt(col)?
        .map(|t| serde_json::from_str(&t).map_err(|_| corrupt(col)))
        .transpose()
}

/// A job from a row of [`select_jobs`].
pub fn job_from_row<R: Columns>(row: &R) -> Result<Job, StoreError>
where
    &'static str: ColumnIndex<R>,
{
    let id = row.text("id")?;
    let state = row.text("state")?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("id"))?,
        generation_id: row.text("generation_id")?,
        request: json(row, "request")?.ok_or_else(|| corrupt("request"))?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("state"))?,
        cancel_requested: row.int("cancel_requested")? != 0,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        current_stage: row.text_opt("current_stage")?,
        stages: json(row, "stages")?.unwrap_or_default(),
        data: json(row, "data")?.unwrap_or_default(),
        result_path: row.text_opt("result_path")?,
        result: json(row, "result")?,
        error_message: row.text_opt("error_message")?,
        recoveries: row.int("recoveries")?.max(0) as u32,
        created_at: time(row, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        started_at: time(row, "started_at")?,
        completed_at: time(row, "completed_at")?,
        updated_at: time(row, "updated_at")?.ok_or_else(|| corrupt("updated_at"))?,
    })
}

/// An event from a row of [`select_events`].
pub fn event_from_row<R: Columns>(row: &R) -> Result<Event, StoreError>
where
    &'static str: ColumnIndex<R>,
{
    let job_id = row.text("job_id")?;
    let level = row.text("level")?;
    let kind = row.text_opt("kind")?;
    let new = NewEvent {
        ty: EventType::parse(&row.text("type")?),
        level: Level::parse(&level).ok_or_else(|| corrupt("level"))?,
        message: row.text("message")?,
        stage: row.text_opt("stage")?,
        kind: kind.as_deref().and_then(EventKind::parse),
        payload: json(row, "payload")?,
    };
    Ok(Event::committed(
        row.int("id")?,
        Uuid::parse_str(&job_id).map_err(|_| corrupt("job_id"))?,
        new,
        row.real("timestamp")?,
    ))
}

/// One job by id.
pub async fn job_by_id(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<Job>, StoreError> {
    both!(conn, c => {
        let row = sqlx::query(select_jobs!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *c)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    })
}

/// Every event of a job with an id above `after`, oldest first.
pub async fn events_of_job(
    conn: &mut Conn<'_>,
    id: Uuid,
    after: i64,
) -> Result<Vec<Arc<Event>>, StoreError> {
    both!(conn, c => {
        let rows = sqlx::query(select_events!("WHERE job_id = $1 AND id > $2 ORDER BY id"))
            .bind(id.to_string())
            .bind(after)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|row| event_from_row(row).map(Arc::new))
            .collect()
    })
}

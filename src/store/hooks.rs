//! Webhook tables: subscriptions with their cursors, deliveries and
//! attempts, and the server's default signing secret. Reads use the read
//! pool; every write goes through the writer, in a savepoint of its batch.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sqlx::ColumnIndex;
use uuid::Uuid;

use super::apply::Op;
use super::db::{Conn, both};
use super::jobs::Now;
use super::rows::Columns;
use super::{Result, Store, StoreError};
use crate::model::{Job, JobWebhook, WebhookEvent};

/// A subscription, global or one job's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `wh_...` for a global subscription, `job_<job id>` for a job's.
    pub id: String,
    /// Where messages go.
    pub url: String,
    /// The classes of events it gets.
    pub events: Vec<WebhookEvent>,
    /// The job, for a job's own webhook.
    pub job_id: Option<Uuid>,
    /// Its own secret; `None` signs with the server's default secret.
    pub secret: Option<String>,
    /// The secret before a rotation, still used until
    /// `previous_secret_until`.
    pub previous_secret: Option<String>,
    /// Unix seconds.
    pub previous_secret_until: Option<f64>,
    /// The last event id turned into deliveries.
    pub cursor: i64,
    /// The subscriber's note.
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Unix seconds of the first failure since the last success.
    pub failing_since: Option<f64>,
    /// RFC 3339; set when it kept failing too long.
    pub disabled_at: Option<String>,
    /// A job's webhook whose job has ended and been queued in full.
    pub done: bool,
}

/// A message for one endpoint and one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `msg_...`: the `webhook-id`, the same on every attempt.
    pub id: String,
    /// Its subscription.
    pub endpoint_id: String,
    /// The job the event belongs to.
    pub job_id: Uuid,
    /// The event.
    pub event_id: i64,
    /// `job.started`, `job.stage`, ...
    pub event_type: String,
    /// The body, exactly as signed.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix seconds.
    pub next_attempt_at: f64,
    /// RFC 3339.
    pub created_at: String,
}

/// One try at a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// RFC 3339.
    pub attempted_at: String,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Milliseconds until the answer or the error.
    pub latency_ms: f64,
    /// What went wrong, if anything did.
    pub error: Option<String>,
}

/// How an attempt ends a delivery's turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttemptOutcome {
    /// The receiver took it.
    Delivered,
    /// Try again at this Unix time.
    Retry(f64),
    /// No retries are left.
    Failed,
}

/// An attempt to record, with what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: String,
    /// Its subscription.
    pub endpoint_id: String,
    /// What happened.
    pub attempt: Attempt,
    /// What follows.
    pub outcome: AttemptOutcome,
    /// Disable the subscription if it has been failing since before this
    /// Unix time.
    pub disable_failing_since: f64,
}

/// `SELECT <every endpoint column> FROM webhook_endpoints <rest>`.
macro_rules! select_endpoints {
    ($rest:literal) => {
        concat!(
            "SELECT id, url, events, job_id, secret, previous_secret, previous_secret_until, ",
            "cursor, description, created_at, failing_since, disabled_at, done ",
            "FROM webhook_endpoints ",
            $rest
        )
    };
}
pub(super) use select_endpoints;

/// `SELECT <every delivery column> FROM webhook_deliveries d <rest>`.
macro_rules! select_deliveries {
    ($rest:literal) => {
        concat!(
            "SELECT id, endpoint_id, job_id, event_id, event_type, payload, status, attempts, ",
            "next_attempt_at, created_at FROM webhook_deliveries d ",
            $rest
        )
    };
}
pub(super) use select_deliveries;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("webhook row: {what}"))
}

pub(super) fn endpoint_from_row<R: Columns>(row: &R) -> Result<Endpoint>
where
    &'static str: ColumnIndex<R>,
{
    let events = row.text("events")?;
    Ok(Endpoint {
        id: row.text("id")?,
        url: row.text("url")?,
        events: serde_json::from_str(&events).map_err(|_| corrupt("events"))?,
        job_id: row
            .text_opt("job_id")?
            .map(|id| Uuid::parse_str(&id).map_err(|_| corrupt("job_id")))
            .transpose()?,
        secret: row.text_opt("secret")?,
        previous_secret: row.text_opt("previous_secret")?,
        previous_secret_until: row.real_opt("previous_secret_until")?,
        cursor: row.int("cursor")?,
        description: row.text_opt("description")?,
        created_at: row.text("created_at")?,
        failing_since: row.real_opt("failing_since")?,
        disabled_at: row.text_opt("disabled_at")?,
        done: row.int("done")? != 0,
    })
}

pub(super) fn delivery_from_row<R: Columns>(row: &R) -> Result<Delivery>
where
    &'static str: ColumnIndex<R>,
{
    let job_id = row.text("job_id")?;
    Ok(Delivery {
        id: row.text("id")?,
        endpoint_id: row.text("endpoint_id")?,
        job_id: Uuid::parse_str(&job_id).map_err(|_| corrupt("job_id"))?,
        event_id: row.int("event_id")?,
        event_type: row.text("event_type")?,
        payload: row.text("payload")?,
        status: row.text("status")?,
        attempts: row.int("attempts")?.max(0) as u32,
        next_attempt_at: row.real("next_attempt_at")?,
        created_at: row.text("created_at")?,
    })
}

/// The id of a job's own webhook subscription.
pub fn job_endpoint_id(job: Uuid) -> String {
    format!("job_{}", job.simple())
}

/// Inserts a job's own webhook, in the transaction that creates the job, so
/// that no job with a webhook exists without its subscription.
pub(super) async fn insert_job_endpoint(
    conn: &mut Conn<'_>,
    job: &Job,
    hook: &JobWebhook,
    now: &Now,
) -> Result<()> {
    let events = serde_json::to_string(&hook.events).map_err(|_| corrupt("events"))?;
    both!(conn, c => sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, events, job_id, cursor, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(job_endpoint_id(job.id))
    .bind(&hook.url)
    .bind(events)
    .bind(job.id.to_string())
    .bind(&now.stamp)
    .execute(&mut *c)
    .await?
    .rows_affected());
    Ok(())
}

/// A new global subscription.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Its id.
    pub id: String,
    /// Where messages go.
    pub url: String,
    /// The classes of events it gets.
    pub events: Vec<WebhookEvent>,
    /// Its secret.
    pub secret: String,
    /// The subscriber's note.
    pub description: Option<String>,
}

impl Store {
    /// Runs `task` in the writer's next batch, in a savepoint, and returns
    /// its value once the batch has committed.
    pub async fn run<T, F>(&self, task: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Conn<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.write(|reply| {
            Op::Run(
                Box::new(move |conn| {
                    Box::pin(async move {
                        let value = task(conn).await?;
                        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                        Ok(())
                    })
                }),
                reply,
            )
        })
        .await?;
        let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or(StoreError::Closed)
    }
}

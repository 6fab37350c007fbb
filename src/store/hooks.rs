//! Webhook tables: subscriptions with their cursors, deliveries and
//! attempts, and the server's default signing secret. Reads use the read
//! pool; every write goes through the writer, in a savepoint of its batch.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::jobs::Now;
use super::rows::event_from_row;
use super::writer::Op;
use super::{Result, Store, StoreError};
use crate::model::{Event, Job, JobWebhook, WebhookEvent};

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

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("webhook row: {what}"))
}

fn endpoint_from_row(row: &SqliteRow) -> Result<Endpoint> {
    let events: String = row.get("events");
    let job_id: Option<String> = row.get("job_id");
    Ok(Endpoint {
        id: row.get("id"),
        url: row.get("url"),
        events: serde_json::from_str(&events).map_err(|_| corrupt("events"))?,
        job_id: job_id
            .map(|id| Uuid::parse_str(&id).map_err(|_| corrupt("job_id")))
            .transpose()?,
        secret: row.get("secret"),
        previous_secret: row.get("previous_secret"),
        previous_secret_until: row.get("previous_secret_until"),
        cursor: row.get("cursor"),
        description: row.get("description"),
        created_at: row.get("created_at"),
        failing_since: row.get("failing_since"),
        disabled_at: row.get("disabled_at"),
        done: row.get::<i64, _>("done") != 0,
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<Delivery> {
    let job_id: String = row.get("job_id");
    Ok(Delivery {
        id: row.get("id"),
        endpoint_id: row.get("endpoint_id"),
        job_id: Uuid::parse_str(&job_id).map_err(|_| corrupt("job_id"))?,
        event_id: row.get("event_id"),
        event_type: row.get("event_type"),
        payload: row.get("payload"),
        status: row.get("status"),
        attempts: row.get::<i64, _>("attempts") as u32,
        next_attempt_at: row.get("next_attempt_at"),
        created_at: row.get("created_at"),
    })
}

/// The id of a job's own webhook subscription.
pub fn job_endpoint_id(job: Uuid) -> String {
    format!("job_{}", job.simple())
}

/// Inserts a job's own webhook, in the transaction that creates the job, so
/// that no job with a webhook exists without its subscription.
pub(super) async fn insert_job_endpoint(
    conn: &mut SqliteConnection,
    job: &Job,
    hook: &JobWebhook,
    now: &Now,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, events, job_id, cursor, created_at) \
         VALUES (?, ?, ?, ?, 0, ?)",
    )
    .bind(job_endpoint_id(job.id))
    .bind(&hook.url)
    .bind(serde_json::to_string(&hook.events).map_err(|_| corrupt("events"))?)
    .bind(job.id.to_string())
    .bind(&now.stamp)
    .execute(&mut *conn)
    .await?;
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
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
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

    /// Every subscription; with `active`, only those still to be served
    /// (not disabled, and for a job's webhook, not done).
    pub async fn endpoints(&self, active: bool) -> Result<Vec<Endpoint>> {
        let sql = if active {
            select_endpoints!("WHERE done = 0 AND disabled_at IS NULL ORDER BY created_at, id")
        } else {
            select_endpoints!("WHERE job_id IS NULL ORDER BY created_at, id")
        };
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// One subscription.
    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(select_endpoints!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Up to `limit` events of every job after `after`, oldest first.
    pub async fn log_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        let mut conn = self.read.acquire().await?;
        let rows = sqlx::query(
            "SELECT id, job_id, type, level, message, stage, kind, payload, timestamp \
             FROM events WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Pending deliveries due by `now`, each the oldest pending one of its
    /// subscription and job, so that a job's messages go out in order.
    pub async fn due_deliveries(&self, now: f64, limit: i64) -> Result<Vec<Delivery>> {
        let mut conn = self.read.acquire().await?;
        // The head of each lane (subscription and job) from one range of
        // the lanes index, then those heads that are due.
        let sql = select_deliveries!(
            "JOIN (SELECT endpoint_id AS e, job_id AS j, MIN(event_id) AS head \
                   FROM webhook_deliveries WHERE status = 'pending' \
                   GROUP BY endpoint_id, job_id) ON e = d.endpoint_id AND j = d.job_id \
                   AND head = d.event_id \
             WHERE d.next_attempt_at <= ? \
             AND d.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL) \
             ORDER BY d.next_attempt_at, d.event_id LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The oldest pending delivery of one lane (subscription and job), if
    /// it is due by `now`.
    pub async fn next_in_lane(
        &self,
        endpoint: &str,
        job: Uuid,
        now: f64,
    ) -> Result<Option<Delivery>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(select_deliveries!(
            "WHERE status = 'pending' AND endpoint_id = ? AND job_id = ? \
             ORDER BY event_id LIMIT 1"
        ))
        .bind(endpoint)
        .bind(job.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let next = row.as_ref().map(delivery_from_row).transpose()?;
        Ok(next.filter(|d| d.next_attempt_at <= now))
    }

    /// When the next pending delivery falls due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<f64>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.get(0))
    }

    /// A subscription's deliveries, newest first, with their attempts,
    /// oldest first.
    pub async fn deliveries(
        &self,
        endpoint: &str,
        limit: i64,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>> {
        let mut conn = self.read.acquire().await?;
        let sql = select_deliveries!("WHERE endpoint_id = ? ORDER BY event_id DESC LIMIT ?");
        let rows = sqlx::query(sql)
            .bind(endpoint)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from_row(row)?;
            let attempts = sqlx::query(
                "SELECT attempted_at, status_code, latency_ms, error FROM webhook_attempts \
                 WHERE delivery_id = ? ORDER BY id",
            )
            .bind(&delivery.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Attempt {
                attempted_at: row.get("attempted_at"),
                status_code: row.get::<Option<i64>, _>("status_code").map(|c| c as u16),
                latency_ms: row.get("latency_ms"),
                error: row.get("error"),
            })
            .collect();
            out.push((delivery, attempts));
        }
        Ok(out)
    }

    /// A server setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.read.acquire().await?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|row| row.get(0)))
    }
}

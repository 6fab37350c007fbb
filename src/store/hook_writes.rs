//! Writes to the webhook tables, each one a task in the writer's batch:
//! subscriptions and secrets, queued deliveries with their cursors, and
//! attempts with what follows from them.

use super::db::both;
use super::hooks::{AttemptOutcome, AttemptRecord, Endpoint, NewEndpoint};
use super::jobs::Now;
use super::rows::Columns;
use super::{Result, Store};

/// Settings keys of the default signing secret.
const SECRET: &str = "webhook_secret";
const PREVIOUS_SECRET: &str = "webhook_previous_secret";
const PREVIOUS_UNTIL: &str = "webhook_previous_until";

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// `msg_...`.
    pub id: String,
    /// Its subscription.
    pub endpoint_id: String,
    /// The event's job.
    pub job_id: String,
    /// The event.
    pub event_id: i64,
    /// `job.started`, ...
    pub event_type: String,
    /// The body.
    pub payload: String,
}

/// A subscription's cursor after a pass over the log.
#[derive(Debug, Clone)]
pub struct CursorMove {
    /// The subscription.
    pub endpoint_id: String,
    /// The last event id it has seen.
    pub cursor: i64,
    /// A job's webhook whose terminal event is queued: nothing more comes.
    pub done: bool,
}

/// The default signing secret, its predecessor during a rotation, and
/// when that one stops being used (Unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultSecret {
    /// The secret.
    pub secret: String,
    /// The one before a rotation.
    pub previous: Option<String>,
    /// Until when the previous one still signs.
    pub previous_until: Option<f64>,
}

impl Store {
    /// Adds a global subscription that starts with the next event.
    pub async fn create_endpoint(&self, new: NewEndpoint) -> Result<Endpoint> {
        let now = Now::current();
        let events = serde_json::to_string(&new.events).map_err(|_| super::StoreError::Encode)?;
        let id = new.id.clone();
        self.run(move |mut conn| {
            Box::pin(async move { both!(&mut conn, conn => {
                sqlx::query(
                    "INSERT INTO webhook_endpoints \
                     (id, url, events, secret, cursor, description, created_at) \
                     VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(id), 0) FROM events), $5, $6)",
                )
                .bind(&new.id)
                .bind(&new.url)
                .bind(events)
                .bind(&new.secret)
                .bind(&new.description)
                .bind(&now.stamp)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }) })
        })
        .await?;
        self.endpoint(&id).await?.ok_or(super::StoreError::NotFound)
    }

    /// Removes a global subscription with its deliveries; false when there
    /// is none with that id.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.run(move |mut conn| {
            Box::pin(async move { both!(&mut conn, conn => {
                let done =
                    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND job_id IS NULL")
                        .bind(&id)
                        .execute(&mut *conn)
                        .await?;
                Ok(done.rows_affected() > 0)
            }) })
        })
        .await
    }

    /// Gives a global subscription a new secret; the old one keeps
    /// signing until `previous_until`. False when there is no such
    /// subscription.
    pub async fn rotate_endpoint_secret(
        &self,
        id: &str,
        secret: String,
        previous_until: f64,
    ) -> Result<bool> {
        let id = id.to_string();
        self.run(move |mut conn| {
            Box::pin(async move {
                both!(&mut conn, conn => {
                    let done = sqlx::query(
                        "UPDATE webhook_endpoints SET previous_secret = secret, \
                         previous_secret_until = $1, secret = $2 WHERE id = $3 AND job_id IS NULL",
                    )
                    .bind(previous_until)
                    .bind(&secret)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected() > 0)
                })
            })
        })
        .await
    }

    /// The default signing secret, made from `fresh` the first time.
    pub async fn default_secret(&self, fresh: String) -> Result<DefaultSecret> {
        self.run(move |mut conn| {
            Box::pin(async move { both!(&mut conn, conn => {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(SECRET)
                    .bind(&fresh)
                    .execute(&mut *conn)
                    .await?;
                let read = |key: &'static str| {
                    sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key)
                };
                let secret: String = read(SECRET).fetch_one(&mut *conn).await?.text(0)?;
                let previous: Option<String> = read(PREVIOUS_SECRET)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| row.text(0))
                    .transpose()?;
                let until: Option<String> = read(PREVIOUS_UNTIL)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| row.text(0))
                    .transpose()?;
                Ok(DefaultSecret {
                    secret,
                    previous,
                    previous_until: until.and_then(|u| u.parse().ok()),
                })
            }) })
        })
        .await
    }

    /// Replaces the default secret with `secret`; the old one keeps signing
    /// until `previous_until`.
    pub async fn rotate_default_secret(&self, secret: String, previous_until: f64) -> Result<()> {
        self.run(move |mut conn| {
            Box::pin(async move {
                both!(&mut conn, conn => {
                    let upsert = "INSERT INTO settings (key, value) VALUES ($1, $2) \
                                  ON CONFLICT (key) DO UPDATE SET value = excluded.value";
                    sqlx::query(
                        "INSERT INTO settings (key, value) \
                         SELECT $1, value FROM settings WHERE key = $2 \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(PREVIOUS_SECRET)
                    .bind(SECRET)
                    .execute(&mut *conn)
                    .await?;
                    for (key, value) in [
                        (PREVIOUS_UNTIL, previous_until.to_string()),
                        (SECRET, secret),
                    ] {
                        sqlx::query(upsert)
                            .bind(key)
                            .bind(value)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
        })
        .await
    }

    /// Queues deliveries and moves cursors, atomically: a restart neither
    /// loses an event nor queues one twice.
    pub async fn queue_deliveries(
        &self,
        deliveries: Vec<NewDelivery>,
        cursors: Vec<CursorMove>,
        now: f64,
    ) -> Result<()> {
        let stamp = Now::current().stamp;
        self.run(move |mut conn| {
            Box::pin(async move { both!(&mut conn, conn => {
                for d in &deliveries {
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (id, endpoint_id, job_id, \
                         event_id, event_type, payload, status, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&d.id)
                    .bind(&d.endpoint_id)
                    .bind(&d.job_id)
                    .bind(d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.payload)
                    .bind(now)
                    .bind(&stamp)
                    .execute(&mut *conn)
                    .await?;
                }
                for c in &cursors {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET cursor = CASE WHEN cursor > $1 THEN cursor ELSE $1 END, \
                         done = $2 WHERE id = $3",
                    )
                    .bind(c.cursor)
                    .bind(i64::from(c.done))
                    .bind(&c.endpoint_id)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }) })
        })
        .await
    }

    /// Records an attempt and what follows: delivered, retried later, or
    /// failed. A failure starts or continues the subscription's failing
    /// streak, and a streak older than the record's limit disables it; a
    /// success ends the streak. True when the subscription was disabled.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<bool> {
        let now = Now::current();
        self.run(move |mut conn| {
            Box::pin(async move { both!(&mut conn, conn => {
                let a = &record.attempt;
                sqlx::query(
                    "INSERT INTO webhook_attempts \
                     (delivery_id, attempted_at, status_code, latency_ms, error) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&record.delivery_id)
                .bind(&a.attempted_at)
                .bind(a.status_code.map(i64::from))
                .bind(a.latency_ms)
                .bind(&a.error)
                .execute(&mut *conn)
                .await?;
                let (status, next) = match record.outcome {
                    AttemptOutcome::Delivered => ("delivered", now.ts),
                    AttemptOutcome::Retry(at) => ("pending", at),
                    AttemptOutcome::Failed => ("failed", now.ts),
                };
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
                     next_attempt_at = $2 WHERE id = $3",
                )
                .bind(status)
                .bind(next)
                .bind(&record.delivery_id)
                .execute(&mut *conn)
                .await?;
                if record.outcome == AttemptOutcome::Delivered {
                    sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
                        .bind(&record.endpoint_id)
                        .execute(&mut *conn)
                        .await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) \
                     WHERE id = $2",
                )
                .bind(now.ts)
                .bind(&record.endpoint_id)
                .execute(&mut *conn)
                .await?;
                let disabled = sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_at = $1 \
                     WHERE id = $2 AND job_id IS NULL AND disabled_at IS NULL \
                     AND failing_since < $3",
                )
                .bind(&now.stamp)
                .bind(&record.endpoint_id)
                .bind(record.disable_failing_since)
                .execute(&mut *conn)
                .await?;
                Ok(disabled.rows_affected() > 0)
            }) })
        })
        .await
    }

    /// Sends a finished delivery again, now, with a fresh set of retries;
    /// `None` when the subscription has no such delivery, false when it is
    /// still pending.
    pub async fn resend_delivery(&self, endpoint: &str, delivery: &str) -> Result<Option<bool>> {
        let (endpoint, delivery) = (endpoint.to_string(), delivery.to_string());
        let now = Now::current().ts;
        self.run(move |mut conn| {
            Box::pin(async move {
                both!(&mut conn, conn => {
                    let row = sqlx::query(
                        "SELECT status FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2",
                    )
                    .bind(&delivery)
                    .bind(&endpoint)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    if row.text(0)? == "pending" {
                        return Ok(Some(false));
                    }
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
                         next_attempt_at = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(&delivery)
                    .execute(&mut *conn)
                    .await?;
                    // A subscription disabled for failing is enabled again by
                    // a client who asks for a resend.
                    sqlx::query(
                        "UPDATE webhook_endpoints SET disabled_at = NULL, failing_since = NULL \
                         WHERE id = $1",
                    )
                    .bind(&endpoint)
                    .execute(&mut *conn)
                    .await?;
                    Ok(Some(true))
                })
            })
        })
        .await
    }

    /// Deletes delivered and failed messages, with their attempts, that
    /// ended before `before` (Unix seconds); returns how many.
    pub async fn prune_deliveries(&self, before: f64) -> Result<u64> {
        self.run(move |mut conn| {
            Box::pin(async move {
                both!(&mut conn, conn => {
                    let done = sqlx::query(
                        "DELETE FROM webhook_deliveries \
                         WHERE status != 'pending' AND next_attempt_at < $1",
                    )
                    .bind(before)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected())
                })
            })
        })
        .await
    }
}

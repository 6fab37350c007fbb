//! Reads of the webhook tables: subscriptions, due deliveries and their
//! attempts, the log after a cursor, and settings.

use uuid::Uuid;

use super::db::read;
use super::hooks::{
    Attempt, Delivery, Endpoint, delivery_from_row, endpoint_from_row, select_deliveries,
    select_endpoints,
};
use super::rows::{Columns, event_from_row, select_events};
use super::{Result, Store};
use crate::model::Event;

impl Store {
    /// Every subscription; with `active`, only those still to be served
    /// (not disabled, and for a job's webhook, not done).
    pub async fn endpoints(&self, active: bool) -> Result<Vec<Endpoint>> {
        let sql = if active {
            select_endpoints!("WHERE done = 0 AND disabled_at IS NULL ORDER BY created_at, id")
        } else {
            select_endpoints!("WHERE job_id IS NULL ORDER BY created_at, id")
        };
        read!(self, c => {
            let rows = sqlx::query(sql).fetch_all(&mut *c).await?;
            rows.iter().map(endpoint_from_row).collect()
        })
    }

    /// One subscription.
    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        read!(self, c => {
            let row = sqlx::query(select_endpoints!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?;
            row.as_ref().map(endpoint_from_row).transpose()
        })
    }

    /// Up to `limit` events of every job after `after`, oldest first.
    pub async fn log_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        read!(self, c => {
            let rows = sqlx::query(select_events!("WHERE id > $1 ORDER BY id LIMIT $2"))
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Pending deliveries due by `now`, each the oldest pending one of its
    /// subscription and job, so that a job's messages go out in order.
    pub async fn due_deliveries(&self, now: f64, limit: i64) -> Result<Vec<Delivery>> {
        // The head of each lane (subscription and job) from one range of
        // the lanes index, then those heads that are due.
        let sql = select_deliveries!(
            "JOIN (SELECT endpoint_id AS e, job_id AS j, MIN(event_id) AS head \
                   FROM webhook_deliveries WHERE status = 'pending' \
                   GROUP BY endpoint_id, job_id) AS lanes ON e = d.endpoint_id \
                   AND j = d.job_id AND head = d.event_id \
             WHERE d.next_attempt_at <= $1 \
             AND d.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL) \
             ORDER BY d.next_attempt_at, d.event_id LIMIT $2"
        );
        read!(self, c => {
            let rows = sqlx::query(sql)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            rows.iter().map(delivery_from_row).collect()
        })
    }

    /// The oldest pending delivery of one lane (subscription and job), if
    /// it is due by `now`.
    pub async fn next_in_lane(
        &self,
        endpoint: &str,
        job: Uuid,
        now: f64,
    ) -> Result<Option<Delivery>> {
        let next = read!(self, c => {
            let row = sqlx::query(select_deliveries!(
                "WHERE status = 'pending' AND endpoint_id = $1 AND job_id = $2 \
                 ORDER BY event_id LIMIT 1"
            ))
            .bind(endpoint)
            .bind(job.to_string())
            .fetch_optional(&mut *c)
            .await?;
            row.as_ref().map(delivery_from_row).transpose()?
        });
        Ok(next.filter(|d| d.next_attempt_at <= now))
    }

    /// When the next pending delivery falls due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<f64>> {
        read!(self, c => {
            let row = sqlx::query(
                "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
            )
            .fetch_one(&mut *c)
            .await?;
            Ok(row.real_opt(0)?)
        })
    }

    /// A subscription's deliveries, newest first, with their attempts,
    /// oldest first.
    pub async fn deliveries(
        &self,
        endpoint: &str,
        limit: i64,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>> {
        let sql = select_deliveries!("WHERE endpoint_id = $1 ORDER BY event_id DESC LIMIT $2");
        read!(self, c => {
            let rows = sqlx::query(sql)
                .bind(endpoint)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let delivery = delivery_from_row(row)?;
                let attempts = sqlx::query(
                    "SELECT attempted_at, status_code, latency_ms, error FROM webhook_attempts \
                     WHERE delivery_id = $1 ORDER BY id",
                )
                .bind(&delivery.id)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|row| {
                    Ok(Attempt {
                        attempted_at: row.text("attempted_at")?,
                        status_code: row.int_opt("status_code")?.map(|c| c as u16),
                        latency_ms: row.real("latency_ms")?,
                        error: row.text_opt("error")?,
                    })
                })
                .collect::<Result<_>>()?;
                out.push((delivery, attempts));
            }
            Ok(out)
        })
    }

    /// A server setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        read!(self, c => {
            let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *c)
                .await?;
            row.map(|row| row.text(0)).transpose().map_err(Into::into)
        })
    }
}

//! Kept answers of submits that carried an Idempotency-Key: the SQL, run
//! by the writer (claims, inserts, with the purge of expired keys) and by
//! the read pool (lookups). A request that runs first claims its key with
//! a row of status 0, so that instances sharing the database run one
//! request per key; its answer replaces the row.

use super::Result;
use super::db::{Conn, both};
use super::rows::Columns;

/// How long a key is kept, in seconds: 24 hours.
pub const KEEP_SECS: i64 = 24 * 60 * 60;

/// The answer a submit gave, kept under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// The route and the caller the key belongs to.
    pub scope: String,
    /// The client's Idempotency-Key.
    pub key: String,
    /// What identifies the request body.
    pub fingerprint: String,
    /// The HTTP status.
    pub status: u16,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// The answer's body.
    pub body: Vec<u8>,
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Keeps `answer` (replacing an expired one under the same key) and drops
/// the keys older than [`KEEP_SECS`].
pub async fn keep(conn: &mut Conn<'_>, answer: &KeptAnswer) -> Result<()> {
    let now = unix_now();
    both!(conn, c => {
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now - KEEP_SECS)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys \
         (scope, key, fingerprint, status, content_type, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         status = excluded.status, content_type = excluded.content_type, \
         body = excluded.body, created_at = excluded.created_at",
    )
    .bind(&answer.scope)
    .bind(&answer.key)
    .bind(&answer.fingerprint)
    .bind(i64::from(answer.status))
    .bind(&answer.content_type)
    .bind(&answer.body)
    .bind(now)
    .execute(&mut *c)
    .await?;
    });
    Ok(())
}

/// The answer kept under `key` in `scope`, unless it has expired.
pub async fn find(conn: &mut Conn<'_>, scope: &str, key: &str) -> Result<Option<KeptAnswer>> {
    both!(conn, c => {
        let row = sqlx::query(
            "SELECT fingerprint, status, content_type, body FROM idempotency_keys \
             WHERE scope = $1 AND key = $2 AND created_at >= $3 AND status <> 0",
        )
        .bind(scope)
        .bind(key)
        .bind(unix_now() - KEEP_SECS)
        .fetch_optional(&mut *c)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeptAnswer {
            scope: scope.to_string(),
            key: key.to_string(),
            fingerprint: row.text(0)?,
            status: u16::try_from(row.int(1)?).unwrap_or(500),
            content_type: row.text_opt(2)?,
            body: row.bytes(3)?,
        }))
    })
}

/// Claims `key` in `scope` for a request about to run: true when this
/// request may run, false while another one holds the key or its answer
/// is kept. A claim older than `stale_secs` was left by an instance that
/// stopped before answering, and gives way, as does an expired answer.
pub async fn take(conn: &mut Conn<'_>, scope: &str, key: &str, stale_secs: i64) -> Result<bool> {
    let now = unix_now();
    both!(conn, c => {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 \
             AND ((status <> 0 AND created_at < $3) OR (status = 0 AND created_at < $4))",
        )
        .bind(scope)
        .bind(key)
        .bind(now - KEEP_SECS)
        .bind(now - stale_secs)
        .execute(&mut *c)
        .await?;
        let taken = sqlx::query(
            "INSERT INTO idempotency_keys \
             (scope, key, fingerprint, status, content_type, body, created_at) \
             VALUES ($1, $2, '', 0, NULL, $3, $4) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(Vec::<u8>::new())
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
        Ok(taken == 1)
    })
}

/// Lets go of a claim whose request kept no answer.
pub async fn release(conn: &mut Conn<'_>, scope: &str, key: &str) -> Result<()> {
    both!(conn, c => {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 0")
            .bind(scope)
            .bind(key)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

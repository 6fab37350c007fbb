//! Kept answers of submits that carried an Idempotency-Key: the SQL, run
//! by the writer (inserts, with the purge of expired keys) and by the read
//! pool (lookups).

use sqlx::{Row, SqliteConnection};

use super::Result;

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
pub async fn keep(conn: &mut SqliteConnection, answer: &KeptAnswer) -> Result<()> {
    let now = unix_now();
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
        .bind(now - KEEP_SECS)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO idempotency_keys \
         (scope, key, fingerprint, status, content_type, body, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&answer.scope)
    .bind(&answer.key)
    .bind(&answer.fingerprint)
    .bind(i64::from(answer.status))
    .bind(&answer.content_type)
    .bind(&answer.body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The answer kept under `key` in `scope`, unless it has expired.
pub async fn find(
    conn: &mut SqliteConnection,
    scope: &str,
    key: &str,
) -> Result<Option<KeptAnswer>> {
    let row = sqlx::query(
        "SELECT fingerprint, status, content_type, body FROM idempotency_keys \
         WHERE scope = ? AND key = ? AND created_at >= ?",
    )
    .bind(scope)
    .bind(key)
    .bind(unix_now() - KEEP_SECS)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i64 = row.try_get(1)?;
    Ok(Some(KeptAnswer {
        scope: scope.to_string(),
        key: key.to_string(),
        fingerprint: row.try_get(0)?,
        status: u16::try_from(status).unwrap_or(500),
        content_type: row.try_get(2)?,
        body: row.try_get(3)?,
    }))
}

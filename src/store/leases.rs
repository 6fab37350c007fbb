//! Instance leases on PostgreSQL: each instance renews a heartbeat row
//! every [`HEARTBEAT`]; a running job whose owner has not beaten for
//! [`LEASE`] is an orphan, which any other instance may rescue. Work that
//! must run on one instance at a time waits for a session lock ([`hold`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::Result;
use super::db::Backend;
use crate::hub::Hub;

/// How often an instance renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a lease lasts without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(15);

/// The advisory-lock keys of one database schema. Advisory locks are
/// database-wide, so each schema (one Reelay cluster) gets keys of its
/// own, from a stable hash of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockKeys {
    /// Held by every writer from its first event id to its commit.
    pub event_order: i64,
    /// Held by the instance that sends webhooks.
    pub webhooks: i64,
}

impl LockKeys {
    /// The keys of `schema`.
    pub fn of_schema(schema: &str) -> LockKeys {
        // FNV-1a: the same in every build and process.
        let hash = schema
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        LockKeys {
            event_order: (hash & !1) as i64,
            webhooks: (hash | 1) as i64,
        }
    }

    /// The keys of the schema `pool`'s connections use.
    pub(super) async fn of(pool: &PgPool) -> Result<LockKeys> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(pool)
            .await?;
        Ok(LockKeys::of_schema(&schema))
    }
}

/// This instance's lease and what rescues it made, for `/health`.
#[derive(Default)]
pub(super) struct Leases {
    last_beat: Mutex<Option<Instant>>,
    failures: AtomicU64,
    rescued: AtomicU64,
}

/// The lease figures of `/health`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseReport {
    /// False on SQLite, where one server owns the database.
    pub leased: bool,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
    /// Seconds a lease lasts without one.
    pub lease_secs: u64,
    /// Milliseconds since the last heartbeat that landed.
    pub last_heartbeat_ms: Option<u64>,
    /// Heartbeats that failed since start-up.
    pub heartbeat_failures: u64,
    /// Other instances' jobs this instance rescued.
    pub rescued_jobs: u64,
}

impl Leases {
    pub(super) fn report(&self, backend: Backend) -> LeaseReport {
        let last = *self.last_beat.lock().unwrap_or_else(|e| e.into_inner());
        LeaseReport {
            leased: backend == Backend::Postgres,
            heartbeat_secs: HEARTBEAT.as_secs(),
            lease_secs: LEASE.as_secs(),
            last_heartbeat_ms: last.map(|t| t.elapsed().as_millis() as u64),
            heartbeat_failures: self.failures.load(Ordering::Relaxed),
            rescued_jobs: self.rescued.load(Ordering::Relaxed),
        }
    }

    pub(super) fn rescued(&self, jobs: u64) {
        self.rescued.fetch_add(jobs, Ordering::Relaxed);
    }

    fn beaten(&self) {
        *self.last_beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

/// Renews `instance`'s lease (or takes one), by the database's clock.
pub(super) async fn beat(pool: &PgPool, instance: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO instances (id) VALUES ($1) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(instance)
    .execute(pool)
    .await?;
    Ok(())
}

/// Renews the lease every [`HEARTBEAT`] until the hub closes.
pub(super) async fn keep(pool: PgPool, instance: String, leases: Arc<Leases>, hub: Arc<Hub>) {
    leases.beaten();
    let closed = hub.closed();
    tokio::pin!(closed);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut closed => return,
            _ = tick.tick() => {}
        }
        match beat(&pool, &instance).await {
            Ok(()) => leases.beaten(),
            Err(err) => {
                leases.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "could not renew this instance's lease");
            }
        }
    }
}

/// Gives the lease up on a clean shutdown.
pub(super) async fn leave(pool: &PgPool, instance: &str) {
    if let Err(err) = sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(instance)
        .execute(pool)
        .await
    {
        tracing::warn!(error = %err, "could not give up this instance's lease");
    }
}

/// A lock held by this instance alone while its connection lives: how
/// work that must run on one instance at a time (webhook deliveries) picks
/// its instance. `lost` fires when the connection fails, since the lock
/// then goes to another instance.
pub struct Held {
    /// Fires when the lock may have passed to another instance.
    pub lost: CancellationToken,
}

/// Waits until this instance holds the session lock `key` (at once on
/// SQLite, where there is one instance), or `stop` fires (`None`).
pub(super) async fn hold(
    pool: Option<&PgPool>,
    key: i64,
    stop: &CancellationToken,
) -> Option<Held> {
    let lost = stop.child_token();
    let Some(pool) = pool else {
        return Some(Held { lost });
    };
    let options = pool.connect_options();
    loop {
        match take(&options, key).await {
            Ok(Some(conn)) => {
                tokio::spawn(keep_lock(conn, lost.clone()));
                return Some(Held { lost });
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "could not ask for a lock"),
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

/// A connection holding `key`, or `None` when another instance holds it.
async fn take(options: &PgConnectOptions, key: i64) -> Result<Option<PgConnection>> {
    let mut conn = PgConnection::connect_with(options).await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
    Ok(held.then_some(conn))
}

/// Keeps the lock's connection alive until `lost` fires or the connection
/// fails; either way the lock goes with it.
async fn keep_lock(mut conn: PgConnection, lost: CancellationToken) {
    loop {
        tokio::select! {
            _ = lost.cancelled() => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
        if let Err(err) = conn.ping().await {
            tracing::warn!(error = %err, "lost the connection that holds a lock");
            break;
        }
    }
    lost.cancel();
    let _ = conn.close().await;
}

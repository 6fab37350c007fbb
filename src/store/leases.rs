//! Instance leases on PostgreSQL: each instance renews a heartbeat row
//! every [`HEARTBEAT`]; a running job whose owner has not beaten for
//! [`LEASE`] is an orphan, which any other instance may rescue.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;

use super::Result;
use super::db::Backend;
use crate::hub::Hub;

/// How often an instance renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a lease lasts without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(15);

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

//! On PostgreSQL: one feed of the whole event log per instance, in id
//! order, whoever wrote the events.
//!
//! Every instance's writer takes the same lock to draw ids and commit, so
//! id order is commit order, and a read of `id > last` never skips an
//! event that commits later with a lower id. The sequencer remembers the
//! last id it published. Events this instance commits are published at
//! once, after any gap below them (other instances' events) is read from
//! the database. Other instances' events arrive through `LISTEN`: the
//! payload names the job and its newest id, and the rows are read here (or
//! says that the job was deleted, and its cached log goes).
//! A catch-up also runs every second, in case a notification was lost
//! while the listening connection was down.
//!
//! What other instances did that this one must act on comes out as
//! [`Signal`]s: a job was queued (wake the worker), or a cancel was asked
//! for (stop the job if it runs here).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::Result;
use super::cache::LogCache;
use super::rows::{Columns, event_from_row};
use super::writer::deliver;
use crate::hub::{Hub, JobCreated};
use crate::model::{Event, EventKind};

/// The channel every instance notifies and listens on.
pub(super) const NOTIFY_CHANNEL: &str = "reelay_events";

/// The notification of a deleted job: `<job id> deleted`, so that other
/// instances drop its cached log.
pub(super) const DELETED: &str = "deleted";

/// Rows read per catch-up query.
const PAGE: i64 = 512;

/// Something another instance did that this one acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A job was queued or requeued: a worker may claim it.
    Queued,
    /// A cancel was asked for this job.
    Cancel(Uuid),
}

/// Publishes the log in id order; see the module notes.
pub(super) struct Sequencer {
    last: Mutex<i64>,
    read: PgPool,
    cache: Arc<LogCache>,
    hub: Arc<Hub>,
    signals: mpsc::UnboundedSender<Signal>,
}

type Parts = [(Vec<Arc<Event>>, Option<JobCreated>)];

impl Sequencer {
    /// Starts after `last`, the newest id when the instance started.
    pub(super) fn new(
        last: i64,
        read: PgPool,
        cache: Arc<LogCache>,
        hub: Arc<Hub>,
        signals: mpsc::UnboundedSender<Signal>,
    ) -> Self {
        Sequencer {
            last: Mutex::new(last),
            read,
            cache,
            hub,
            signals,
        }
    }

    /// Publishes events this instance has just committed, after the
    /// events of other instances below them.
    pub(super) async fn local(&self, parts: &Parts) {
        let mut last = self.last.lock().await;
        let ids = parts.iter().flat_map(|(events, _)| events).map(|e| e.id);
        let (Some(first), Some(newest)) = (ids.clone().min(), ids.max()) else {
            return;
        };
        let mut gap_read = true;
        if first > *last + 1
            && let Err(err) = self.catch_up(&mut last, first - 1).await
        {
            tracing::warn!(error = %err, "could not read other instances' events");
            gap_read = false;
        }
        deliver(&self.cache, &self.hub, parts, *last);
        // Past an unread gap the next catch-up starts below it again: it
        // reads the gap and these events once more, which the cache and
        // every stream skip by id.
        if gap_read {
            *last = (*last).max(newest);
        }
    }

    /// Forgets the cached log of a job another instance deleted.
    fn deleted(&self, job: Uuid) {
        self.cache.forget(job);
    }

    /// Publishes whatever other instances committed since the last event
    /// published here. Nothing to do when `newest` (from a notification)
    /// is published already.
    pub(super) async fn remote(&self, newest: Option<i64>) -> Result<()> {
        let mut last = self.last.lock().await;
        if newest.is_some_and(|newest| newest <= *last) {
            return Ok(());
        }
        self.catch_up(&mut last, i64::MAX).await
    }

    async fn catch_up(&self, last: &mut i64, upto: i64) -> Result<()> {
        loop {
            let rows = sqlx::query(
                "SELECT e.id, e.job_id, e.type, e.level, e.message, e.stage, e.kind, e.payload, \
                 e.timestamp, j.generation_id FROM events e JOIN jobs j ON j.id = e.job_id \
                 WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3",
            )
            .bind(*last)
            .bind(upto)
            .bind(PAGE)
            .fetch_all(&self.read)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            let mut created = Vec::new();
            for row in &rows {
                let event = Arc::new(event_from_row(row)?);
                match event.kind {
                    Some(EventKind::Queued) => {
                        created.push(JobCreated {
                            id: event.job_id,
                            generation_id: row.text("generation_id")?,
                        });
                        let _ = self.signals.send(Signal::Queued);
                    }
                    Some(EventKind::Requeued) => {
                        let _ = self.signals.send(Signal::Queued);
                    }
                    Some(EventKind::CancelRequested) => {
                        let _ = self.signals.send(Signal::Cancel(event.job_id));
                    }
                    _ => {}
                }
                events.push(event);
            }
            let Some(newest) = events.last().map(|e| e.id) else {
                return Ok(());
            };
            self.cache.push(&events);
            self.hub.publish(&events);
            for created in created {
                self.hub.announce(created);
            }
            *last = newest;
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }
}

/// Listens for other instances' commits until the hub closes. `listen`
/// is a pool of its own (one connection), so that streams never hold a
/// database connection: they wait on the hub.
pub(super) async fn listen(sequencer: Arc<Sequencer>, listen: PgPool, hub: Arc<Hub>) {
    let closed = hub.closed();
    tokio::pin!(closed);
    let mut listener = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        if listener.is_none() {
            match PgListener::connect_with(&listen).await {
                Ok(mut opened) => match opened.listen(NOTIFY_CHANNEL).await {
                    Ok(()) => listener = Some(opened),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not listen for other instances")
                    }
                },
                Err(err) => tracing::warn!(error = %err, "could not listen for other instances"),
            }
        }
        let newest = tokio::select! {
            _ = &mut closed => return,
            _ = tick.tick() => None,
            note = async { listener.as_mut()?.recv().await.ok() }, if listener.is_some() => {
                match note {
                    Some(note) => match note.payload().split_once(' ') {
                        Some((job, DELETED)) => {
                            if let Ok(job) = Uuid::parse_str(job) {
                                sequencer.deleted(job);
                            }
                            None
                        }
                        Some((_, id)) => id.parse().ok(),
                        None => None,
                    },
                    None => {
                        // Reconnected on the next turn; the catch-up below
                        // covers what was said meanwhile.
                        listener = None;
                        None
                    }
                }
            }
        };
        if let Err(err) = sequencer.remote(newest).await {
            tracing::warn!(error = %err, "could not read other instances' events");
        }
    }
}

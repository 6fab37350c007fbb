//! Broadcast fan-out of committed events to live subscribers.
//!
//! Each job has its own channel, created on first subscription and removed
//! when its last subscriber goes, so a subscriber only wakes for its job.
//! The hub only carries events that are already committed and cached; a
//! subscriber that falls behind catches up from the store (see
//! [`crate::feed`]). Closing the hub ends every subscription, which is how
//! open streams finish when the server shuts down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use uuid::Uuid;

use crate::model::Event;

/// Slots per job channel. A subscriber further behind than this gets
/// `Lagged` and refills from the store.
const JOB_CHANNEL_CAPACITY: usize = 512;
const CREATED_CHANNEL_CAPACITY: usize = 256;

/// Announcement of a new job, for streams that wait for a generation id.
#[derive(Debug, Clone)]
pub struct JobCreated {
    /// The new job.
    pub id: Uuid,
    /// Its slug, which seed 002 streams wait for.
    pub generation_id: String,
}

/// Live subscriptions, per job, and announcements of new jobs.
pub struct Hub {
    topics: Mutex<HashMap<Uuid, broadcast::Sender<Arc<Event>>>>,
    created: Mutex<Option<broadcast::Sender<JobCreated>>>,
    closed: AtomicBool,
    catch_ups: AtomicU64,
    /// The id of the newest committed event, for readers of the whole log
    /// (webhook deliveries, the stream of every job).
    committed: watch::Sender<i64>,
    /// Fires when the hub closes, for readers of the whole log.
    closing: CancellationToken,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            topics: Mutex::new(HashMap::new()),
            created: Mutex::new(Some(broadcast::channel(CREATED_CHANNEL_CAPACITY).0)),
            closed: AtomicBool::new(false),
            catch_ups: AtomicU64::new(0),
            committed: watch::channel(0).0,
            closing: CancellationToken::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub with no subscribers.
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    /// Subscribes to one job's live events. After [`Hub::close`] the
    /// subscription reports `Closed` at once.
    pub fn subscribe(self: &Arc<Self>, job: Uuid) -> Subscription {
        let mut topics = lock(&self.topics);
        let rx = if self.closed.load(Ordering::Acquire) {
            broadcast::channel(1).1
        } else {
            topics
                .entry(job)
                .or_insert_with(|| broadcast::channel(JOB_CHANNEL_CAPACITY).0)
                .subscribe()
        };
        Subscription {
            rx: Some(rx),
            job,
            hub: self.clone(),
        }
    }

    /// Subscribes to announcements of new jobs.
    pub fn subscribe_created(&self) -> broadcast::Receiver<JobCreated> {
        match lock(&self.created).as_ref() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Sends committed events, in id order, to their jobs' subscribers.
    pub fn publish(&self, events: &[Arc<Event>]) {
        if let Some(last) = events.last() {
            self.committed.send_replace(last.id);
        }
        let topics = lock(&self.topics);
        if topics.is_empty() {
            return;
        }
        for event in events {
            if let Some(tx) = topics.get(&event.job_id) {
                // An error only means every receiver is gone.
                let _ = tx.send(event.clone());
            }
        }
    }

    /// Wakes on every commit of new events; holds the newest event's id.
    pub fn watch_committed(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Resolves once the hub is closed (at once when it already is).
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.closing.clone().cancelled_owned()
    }

    /// Tells waiting streams that a job was created.
    pub fn announce(&self, created: JobCreated) {
        if let Some(tx) = lock(&self.created).as_ref() {
            let _ = tx.send(created);
        }
    }

    /// Ends every subscription, now and later.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.cancel();
        lock(&self.topics).clear();
        lock(&self.created).take();
    }

    /// Counts a subscriber that fell behind the broadcast and caught up
    /// from the store.
    pub fn count_catch_up(&self) {
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::STREAM_CATCH_UPS).increment(1);
    }

    /// How often subscribers have caught up from the store since start-up.
    pub fn catch_ups(&self) -> u64 {
        self.catch_ups.load(Ordering::Relaxed)
    }

    /// Open subscriptions of all kinds. Streams release theirs as soon as the
    /// client goes away, so this returns to zero when no one is listening.
    pub fn subscriber_count(&self) -> usize {
        let jobs: usize = lock(&self.topics)
            .values()
            .map(|tx| tx.receiver_count())
            .sum();
        let created = lock(&self.created)
            .as_ref()
            .map_or(0, |tx| tx.receiver_count());
        jobs + created
    }
}

/// A live subscription to one job. Dropping it releases the job's channel
/// when it was the last one.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    job: Uuid,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The next live event; `Lagged` when this subscriber fell behind,
    /// `Closed` once the hub is closed.
    pub async fn recv(&mut self) -> Result<Arc<Event>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = lock(&self.hub.topics);
        drop(self.rx.take());
        if topics
            .get(&self.job)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            topics.remove(&self.job);
        }
    }
}

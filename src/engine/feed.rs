//! Subscribe-with-backlog: every event of one job after a cursor, exactly
//! once and in order, then live events as they are committed.
//!
//! The feed subscribes to the hub before it reads anything from the store.
//! Whatever is committed after the subscription arrives live; whatever was
//! committed before it is already in the store's cache (the writer caches
//! before it publishes). Ids at or below the last one delivered are
//! skipped, so the overlap between the two is never sent twice. A
//! subscriber that falls behind the broadcast (`Lagged`) refills from the
//! store instead of being dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::hub::{Hub, Subscription};
use crate::model::Event;
use crate::store::{Filter, Store};

/// Events read from the store per round trip while catching up.
const BACKLOG_PAGE: usize = 1000;

/// One job's events from a cursor on, exactly once and in order.
pub struct Feed {
    hub: Arc<Hub>,
    subscription: Subscription,
    store: Store,
    job: Uuid,
    last: i64,
    backlog: VecDeque<Arc<Event>>,
    caught_up: bool,
}

impl Feed {
    /// Subscribes now; events come from those with ids above `after`.
    pub fn new(hub: &Arc<Hub>, store: Store, job: Uuid, after: i64) -> Self {
        Feed {
            hub: hub.clone(),
            subscription: hub.subscribe(job),
            store,
            job,
            last: after,
            backlog: VecDeque::new(),
            caught_up: false,
        }
    }

    /// The id of the last event delivered (or the starting cursor).
    pub fn last_id(&self) -> i64 {
        self.last
    }

    /// Moves the cursor forward without delivering, e.g. past the events a
    /// snapshot already reflects.
    pub fn skip_to(&mut self, id: i64) {
        self.last = self.last.max(id);
    }

    /// The next event, or `None` once the hub is closed (server shutdown)
    /// or the store fails.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            while let Some(event) = self.backlog.pop_front() {
                if event.id > self.last {
                    self.last = event.id;
                    return Some(event);
                }
            }
            if !self.caught_up {
                // Boxed: an idle stream waits in `recv` below, and should not
                // carry the size of a store read in its state.
                let read = Box::pin(self.store.events_after(
                    self.job,
                    self.last,
                    BACKLOG_PAGE,
                    Filter::default(),
                ));
                match read.await {
                    Ok(Some(page)) if !page.is_empty() => self.backlog.extend(page),
                    Ok(_) => self.caught_up = true,
                    Err(err) => {
                        tracing::error!(job = %self.job, error = %err, "could not read a backlog");
                        return None;
                    }
                }
                continue;
            }
            match self.subscription.recv().await {
                Ok(event) if event.id <= self.last => continue,
                Ok(event) => {
                    self.last = event.id;
                    return Some(event);
                }
                Err(RecvError::Lagged(_)) => {
                    self.hub.count_catch_up();
                    self.caught_up = false;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

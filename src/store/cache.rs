//! In-memory copy of recent jobs' event logs.
//!
//! Events never change once committed, so polls and stream backlogs are
//! answered from memory instead of SQLite. The writer pushes every committed
//! event here before it publishes it, so whatever a subscriber misses on the
//! broadcast hub is already in the cache when it looks.
//!
//! A job's log enters the cache when the job is created, or on first read
//! after a restart. A load races with the writer: while the rows are read,
//! newly committed events are parked in the slot and merged afterwards, so
//! nothing committed during the load is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use crate::model::{Event, Level};

enum Slot {
    /// Readers are fetching the log from SQLite; events committed meanwhile.
    /// Only a load begun under this very slot (same `generation`) may
    /// install its rows: an older one may predate events that were dropped
    /// while no slot existed.
    Loading {
        pending: Vec<Arc<Event>>,
        generation: u64,
        loaders: usize,
    },
    Ready {
        events: Vec<Arc<Event>>,
        used: u64,
        /// Approximate bytes of `events`.
        bytes: usize,
    },
}

/// Approximate bytes of a log.
fn bytes_of(events: &[Arc<Event>]) -> usize {
    events.iter().map(|e| e.approx_size()).sum()
}

struct Inner {
    jobs: HashMap<Uuid, Slot>,
    /// Events held by `Ready` slots.
    total: usize,
    /// Their approximate bytes.
    bytes: usize,
    /// Logical clock for least-recently-used eviction and load generations.
    clock: u64,
}

/// A load in progress, from [`LogCache::begin_load`]. Dropping it without
/// [`LogCache::finish_load`] (an error, or a caller that went away) gives
/// the slot up, so that parked events do not pile up.
pub struct Load<'a> {
    cache: &'a LogCache,
    job: Uuid,
    generation: u64,
    done: bool,
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.give_up(self.job, self.generation);
        }
    }
}

/// Result of a cache read.
pub enum Lookup {
    /// The log is in memory; these are the events asked for.
    Hit(Vec<Arc<Event>>),
    /// The log is not in memory.
    Miss,
}

/// Optional filters of a log read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Only events of these levels.
    pub levels: Option<&'a [Level]>,
}

impl Filter<'_> {
    /// True when `event` passes the filter.
    pub fn accepts(&self, event: &Event) -> bool {
        self.levels
            .is_none_or(|levels| levels.contains(&event.level))
    }
}

/// The logs of recently used jobs, evicted least recently used first.
pub struct LogCache {
    inner: Mutex<Inner>,
    capacity: usize,
    capacity_bytes: usize,
}

impl LogCache {
    /// A cache of at most about `capacity` events and `capacity_bytes`
    /// bytes, whichever comes first.
    pub fn new(capacity: usize, capacity_bytes: usize) -> Self {
        LogCache {
            inner: Mutex::new(Inner {
                jobs: HashMap::new(),
                total: 0,
                bytes: 0,
                clock: 0,
            }),
            capacity: capacity.max(1),
            capacity_bytes: capacity_bytes.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain data that is valid after any panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the log of a job created in this process.
    pub fn create(&self, job: Uuid, events: Vec<Arc<Event>>) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let bytes = bytes_of(&events);
        inner.total += events.len();
        inner.bytes += bytes;
        if let Some(Slot::Ready {
            events: old,
            bytes: old_bytes,
            ..
        }) = inner.jobs.insert(
            job,
            Slot::Ready {
                events,
                used,
                bytes,
            },
        ) {
            inner.total -= old.len();
            inner.bytes -= old_bytes;
        }
        self.evict(&mut inner);
    }

    /// Forgets a deleted job's log.
    pub fn forget(&self, job: Uuid) {
        let mut inner = self.lock();
        if let Some(Slot::Ready { events, bytes, .. }) = inner.jobs.remove(&job) {
            inner.total -= events.len();
            inner.bytes -= bytes;
        }
    }

    /// Records committed events, in id order. A log loaded from SQLite
    /// right after the commit may hold them already; they are not added
    /// twice.
    pub fn push(&self, events: &[Arc<Event>]) {
        let mut inner = self.lock();
        let (mut added, mut added_bytes) = (0, 0);
        for event in events {
            match inner.jobs.get_mut(&event.job_id) {
                Some(Slot::Ready { events, bytes, .. })
                    if events.last().is_none_or(|last| last.id < event.id) =>
                {
                    let size = event.approx_size();
                    events.push(event.clone());
                    *bytes += size;
                    added += 1;
                    added_bytes += size;
                }
                Some(Slot::Loading { pending, .. }) => pending.push(event.clone()),
                Some(Slot::Ready { .. }) | None => {}
            }
        }
        inner.total += added;
        inner.bytes += added_bytes;
        if added > 0 {
            self.evict(&mut inner);
        }
    }

    /// Up to `limit` events of `job` with ids above `after`.
    pub fn read(&self, job: Uuid, after: i64, limit: usize, filter: Filter<'_>) -> Lookup {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let Some(Slot::Ready { events, used, .. }) = inner.jobs.get_mut(&job) else {
            return Lookup::Miss;
        };
        *used = now;
        let start = events.partition_point(|e| e.id <= after);
        let page = events[start..]
            .iter()
            .filter(|e| filter.accepts(e))
            .take(limit)
            .cloned()
            .collect();
        Lookup::Hit(page)
    }

    /// Marks a job's log as being loaded, so that events committed during the
    /// load are kept for [`LogCache::finish_load`].
    pub fn begin_load(&self, job: Uuid) -> Load<'_> {
        let mut inner = self.lock();
        inner.clock += 1;
        let fresh = inner.clock;
        let generation = match inner.jobs.entry(job).or_insert(Slot::Loading {
            pending: Vec::new(),
            generation: fresh,
            loaders: 0,
        }) {
            Slot::Loading {
                generation,
                loaders,
                ..
            } => {
                *loaders += 1;
                *generation
            }
            // Already loaded: a finish will find nothing to do.
            Slot::Ready { .. } => 0,
        };
        Load {
            cache: self,
            job,
            generation,
            done: false,
        }
    }

    /// Installs a log read from SQLite, merged with what was committed since.
    pub fn finish_load(&self, mut load: Load<'_>, loaded: Vec<Arc<Event>>) {
        load.done = true;
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let Some(Slot::Loading {
            pending,
            generation,
            ..
        }) = inner.jobs.get_mut(&load.job)
        else {
            // Another reader finished first, or the job was created meanwhile.
            return;
        };
        if *generation != load.generation {
            return;
        }
        let pending = std::mem::take(pending);
        let mut events = loaded;
        let last = events.last().map_or(0, |e| e.id);
        events.extend(pending.into_iter().filter(|e| e.id > last));
        let bytes = bytes_of(&events);
        inner.total += events.len();
        inner.bytes += bytes;
        inner.jobs.insert(
            load.job,
            Slot::Ready {
                events,
                used,
                bytes,
            },
        );
        self.evict(&mut inner);
    }

    /// A load that will not finish: the last loader of a slot removes it.
    fn give_up(&self, job: Uuid, load_generation: u64) {
        let mut inner = self.lock();
        if let Some(Slot::Loading {
            generation,
            loaders,
            ..
        }) = inner.jobs.get_mut(&job)
            && *generation == load_generation
        {
            *loaders -= 1;
            if *loaders == 0 {
                inner.jobs.remove(&job);
            }
        }
    }

    /// Drops least recently used logs until the cache is below 90 % of both
    /// its capacities. Sorting is fine: it runs once per many thousand
    /// events.
    fn evict(&self, inner: &mut Inner) {
        if inner.total <= self.capacity && inner.bytes <= self.capacity_bytes {
            return;
        }
        let target = self.capacity - self.capacity / 10;
        let target_bytes = self.capacity_bytes - self.capacity_bytes / 10;
        let mut ready: Vec<(u64, Uuid, usize, usize)> = inner
            .jobs
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Ready {
                    events,
                    used,
                    bytes,
                } => Some((*used, *id, events.len(), *bytes)),
                Slot::Loading { .. } => None,
            })
            .collect();
        ready.sort_unstable_by_key(|(used, ..)| *used);
        for (_, id, len, bytes) in ready {
            if inner.total <= target && inner.bytes <= target_bytes {
                break;
            }
            inner.jobs.remove(&id);
            inner.total -= len;
            inner.bytes -= bytes;
        }
    }

    /// Events currently held, for the health report.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    /// Approximate bytes currently held, for the health report.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;

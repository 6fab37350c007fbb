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
    },
}

struct Inner {
    jobs: HashMap<Uuid, Slot>,
    /// Events held by `Ready` slots.
    total: usize,
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
}

impl LogCache {
    /// A cache of at most about `capacity` events.
    pub fn new(capacity: usize) -> Self {
        LogCache {
            inner: Mutex::new(Inner {
                jobs: HashMap::new(),
                total: 0,
                clock: 0,
            }),
            capacity: capacity.max(1),
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
        inner.total += events.len();
        if let Some(Slot::Ready { events: old, .. }) =
            inner.jobs.insert(job, Slot::Ready { events, used })
        {
            inner.total -= old.len();
        }
        self.evict(&mut inner);
    }

    /// Records committed events, in id order. A log loaded from SQLite
    /// right after the commit may hold them already; they are not added
    /// twice.
    pub fn push(&self, events: &[Arc<Event>]) {
        let mut inner = self.lock();
        let mut added = 0;
        for event in events {
            match inner.jobs.get_mut(&event.job_id) {
                Some(Slot::Ready { events, .. })
                    if events.last().is_none_or(|last| last.id < event.id) =>
                {
                    events.push(event.clone());
                    added += 1;
                }
                Some(Slot::Loading { pending, .. }) => pending.push(event.clone()),
                Some(Slot::Ready { .. }) | None => {}
            }
        }
        inner.total += added;
        if added > 0 {
            self.evict(&mut inner);
        }
    }

    /// Up to `limit` events of `job` with ids above `after`.
    pub fn read(&self, job: Uuid, after: i64, limit: usize, filter: Filter<'_>) -> Lookup {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let Some(Slot::Ready { events, used }) = inner.jobs.get_mut(&job) else {
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
        inner.total += events.len();
        inner.jobs.insert(load.job, Slot::Ready { events, used });
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

    /// Drops least recently used logs until the cache is below 90 % of its
    /// capacity. Sorting is fine: it runs once per many thousand events.
    fn evict(&self, inner: &mut Inner) {
        if inner.total <= self.capacity {
            return;
        }
        let target = self.capacity - self.capacity / 10;
        let mut ready: Vec<(u64, Uuid, usize)> = inner
            .jobs
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Ready { events, used } => Some((*used, *id, events.len())),
                Slot::Loading { .. } => None,
            })
            .collect();
        ready.sort_unstable_by_key(|(used, _, _)| *used);
        for (_, id, len) in ready {
            if inner.total <= target {
                break;
            }
            inner.jobs.remove(&id);
            inner.total -= len;
        }
    }

    /// Events currently held, for the health report.
    pub fn len(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewEvent;

    fn ev(id: i64, job: Uuid) -> Arc<Event> {
        Arc::new(Event::committed(
            id,
            job,
            NewEvent::log(Level::Info, format!("event {id}")),
            0.0,
        ))
    }

    fn ids(lookup: Lookup) -> Vec<i64> {
        match lookup {
            Lookup::Hit(events) => events.iter().map(|e| e.id).collect(),
            Lookup::Miss => panic!("expected a hit"),
        }
    }

    #[test]
    fn events_committed_during_a_load_are_merged_without_duplicates() {
        let cache = LogCache::new(100);
        let job = Uuid::new_v4();
        let load = cache.begin_load(job);
        // Committed while the reader's SELECT ran; 3 was also seen by it.
        cache.push(&[ev(3, job), ev(4, job)]);
        cache.finish_load(load, vec![ev(1, job), ev(2, job), ev(3, job)]);
        assert_eq!(ids(cache.read(job, 0, 10, Filter::default())), [1, 2, 3, 4]);
        assert_eq!(ids(cache.read(job, 2, 1, Filter::default())), [3]);
    }

    #[test]
    fn events_a_load_already_saw_are_not_pushed_twice() {
        let cache = LogCache::new(100);
        let job = Uuid::new_v4();
        // The load ran between the writer's commit and its push.
        let load = cache.begin_load(job);
        cache.finish_load(load, vec![ev(1, job), ev(2, job)]);
        cache.push(&[ev(2, job), ev(3, job)]);
        assert_eq!(ids(cache.read(job, 0, 10, Filter::default())), [1, 2, 3]);
    }

    #[test]
    fn a_stale_load_does_not_install_into_a_newer_slot() {
        let cache = LogCache::new(100);
        let job = Uuid::new_v4();
        let stale = cache.begin_load(job);
        // Its caller gave up...
        let stale_generation = stale.generation;
        drop(stale);
        // ...event 5 was committed while no slot existed, and a new load began.
        cache.push(&[ev(5, job)]);
        let fresh = cache.begin_load(job);
        assert_ne!(fresh.generation, stale_generation);
        let late = Load {
            cache: &cache,
            job,
            generation: stale_generation,
            done: false,
        };
        cache.finish_load(late, vec![ev(1, job)]);
        assert!(matches!(
            cache.read(job, 0, 10, Filter::default()),
            Lookup::Miss
        ));
        cache.finish_load(fresh, vec![ev(1, job), ev(5, job)]);
        assert_eq!(ids(cache.read(job, 0, 10, Filter::default())), [1, 5]);
    }

    #[test]
    fn least_recently_used_logs_are_evicted_first() {
        let cache = LogCache::new(10);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        cache.create(a, (1..=5).map(|i| ev(i, a)).collect());
        cache.create(b, (6..=10).map(|i| ev(i, b)).collect());
        let _ = cache.read(a, 0, 1, Filter::default());
        cache.push(&[ev(11, a)]);
        assert!(matches!(
            cache.read(b, 0, 1, Filter::default()),
            Lookup::Miss
        ));
        assert_eq!(ids(cache.read(a, 4, 10, Filter::default())), [5, 11]);
    }
}

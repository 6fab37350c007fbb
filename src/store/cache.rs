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
    /// A reader is fetching the log from SQLite; events committed meanwhile.
    Loading {
        pending: Vec<Arc<Event>>,
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
    /// Logical clock for least-recently-used eviction.
    clock: u64,
}

/// Result of a cache read.
pub enum Lookup {
    Hit(Vec<Arc<Event>>),
    Miss,
}

/// Optional filters of a log read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub levels: Option<&'a [Level]>,
}

impl Filter<'_> {
    fn accepts(&self, event: &Event) -> bool {
        self.levels
            .is_none_or(|levels| levels.contains(&event.level))
    }
}

pub struct LogCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl LogCache {
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

    /// Records committed events, in id order.
    pub fn push(&self, events: &[Arc<Event>]) {
        let mut inner = self.lock();
        let mut added = 0;
        for event in events {
            match inner.jobs.get_mut(&event.job_id) {
                Some(Slot::Ready { events, .. }) => {
                    events.push(event.clone());
                    added += 1;
                }
                Some(Slot::Loading { pending }) => pending.push(event.clone()),
                None => {}
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
    pub fn begin_load(&self, job: Uuid) {
        self.lock().jobs.entry(job).or_insert(Slot::Loading {
            pending: Vec::new(),
        });
    }

    /// Installs a log read from SQLite, merged with what was committed since.
    pub fn finish_load(&self, job: Uuid, loaded: Vec<Arc<Event>>) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        let Some(Slot::Loading { pending }) = inner.jobs.get_mut(&job) else {
            // Another reader finished first, or the job was created meanwhile.
            return;
        };
        let pending = std::mem::take(pending);
        let mut events = loaded;
        let last = events.last().map_or(0, |e| e.id);
        events.extend(pending.into_iter().filter(|e| e.id > last));
        inner.total += events.len();
        inner.jobs.insert(job, Slot::Ready { events, used });
        self.evict(&mut inner);
    }

    /// Forgets a load that found no such job.
    pub fn abandon_load(&self, job: Uuid) {
        let mut inner = self.lock();
        if matches!(inner.jobs.get(&job), Some(Slot::Loading { .. })) {
            inner.jobs.remove(&job);
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

    fn ev(id: i64, job: Uuid) -> Arc<Event> {
        Arc::new(Event::new(
            id,
            job,
            "log".into(),
            Level::Info,
            format!("event {id}"),
            None,
            None,
            None,
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
        cache.begin_load(job);
        // Committed while the reader's SELECT ran; 3 was also seen by it.
        cache.push(&[ev(3, job), ev(4, job)]);
        cache.finish_load(job, vec![ev(1, job), ev(2, job), ev(3, job)]);
        assert_eq!(ids(cache.read(job, 0, 10, Filter::default())), [1, 2, 3, 4]);
        assert_eq!(ids(cache.read(job, 2, 1, Filter::default())), [3]);
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

//! Tests of the log cache: loads racing the writer, eviction by count and
//! by bytes.

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
    let cache = LogCache::new(100, usize::MAX);
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
    let cache = LogCache::new(100, usize::MAX);
    let job = Uuid::new_v4();
    // The load ran between the writer's commit and its push.
    let load = cache.begin_load(job);
    cache.finish_load(load, vec![ev(1, job), ev(2, job)]);
    cache.push(&[ev(2, job), ev(3, job)]);
    assert_eq!(ids(cache.read(job, 0, 10, Filter::default())), [1, 2, 3]);
}

#[test]
fn a_stale_load_does_not_install_into_a_newer_slot() {
    let cache = LogCache::new(100, usize::MAX);
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
fn a_few_large_events_are_evicted_by_their_bytes() {
    let big = |id: i64, job: Uuid| {
        Arc::new(Event::committed(
            id,
            job,
            NewEvent::log(Level::Info, "x".repeat(10_000)),
            0.0,
        ))
    };
    let cache = LogCache::new(1_000_000, 50_000);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    cache.create(a, (1..=3).map(|i| big(i, a)).collect());
    cache.create(b, (4..=6).map(|i| big(i, b)).collect());
    assert!(matches!(
        cache.read(a, 0, 1, Filter::default()),
        Lookup::Miss
    ));
    assert_eq!(ids(cache.read(b, 0, 10, Filter::default())), [4, 5, 6]);
    assert!(cache.bytes() <= 50_000);
    cache.forget(b);
    assert_eq!((cache.len(), cache.bytes()), (0, 0));
}

#[test]
fn least_recently_used_logs_are_evicted_first() {
    let cache = LogCache::new(10, usize::MAX);
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

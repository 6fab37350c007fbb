//! The writer's figures for `/metrics`: events appended, requests per
//! commit and commit latency, recorded once per commit.

use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

use crate::metrics as names;

/// Handles taken once when the writer starts, so that a commit records
/// without looking its metrics up.
pub(super) struct CommitFigures {
    appended: Counter,
    batch_size: Histogram,
    duration: Histogram,
}

impl CommitFigures {
    pub(super) fn new() -> Self {
        CommitFigures {
            appended: counter!(names::EVENTS_APPENDED),
            batch_size: histogram!(names::COMMIT_BATCH_SIZE),
            duration: histogram!(names::COMMIT_DURATION),
        }
    }

    /// One commit of `requests` requests that wrote `events` events.
    pub(super) fn record(&self, requests: usize, events: usize, took: Duration) {
        self.appended.increment(events as u64);
        self.batch_size.record(requests as f64);
        self.duration.record(took.as_secs_f64());
    }
}

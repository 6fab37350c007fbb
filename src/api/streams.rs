//! The routes that answer with long-lived event streams, in one table.
//!
//! The dialects take their stream routes' paths from [`STREAM_ROUTES`], and
//! the server's lean path ([`crate::serve`]) asks [`is_event_stream`],
//! which reads the same table, whether a request head belongs on it. So a
//! stream route cannot be added to the router without the lean path
//! knowing it.

use super::sse::accepts_event_stream;

/// When a stream route answers with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every `GET`.
    Always,
    /// A `GET` whose `Accept` names `text/event-stream` (the same path
    /// answers JSON otherwise).
    AcceptsEventStream,
}

/// A route that answers with an event stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamRoute {
    /// The axum path, with `{param}` segments.
    pub path: &'static str,
    /// When it streams.
    pub when: When,
}

/// OpenReels' stage stream (seed 001).
pub const OPENREELS_EVENTS: StreamRoute = StreamRoute {
    path: "/api/v1/jobs/{id}/events",
    when: When::Always,
};

/// AI-Video-Gen's progress stream (seed 002).
pub const AIVIDEOGEN_PROGRESS: StreamRoute = StreamRoute {
    path: "/api/progress/{generation_id}",
    when: When::Always,
};

/// MoneyPrinter's event log, as SSE when asked for (seeds 000 and 003).
pub const MONEYPRINTER_EVENTS: StreamRoute = StreamRoute {
    path: "/api/jobs/{id}/events",
    when: When::AcceptsEventStream,
};

/// Reelay's job-level events of every job.
pub const JOB_EVENTS: StreamRoute = StreamRoute {
    path: "/api/v1/events",
    when: When::Always,
};

/// Every stream route.
pub const STREAM_ROUTES: [StreamRoute; 4] = [
    OPENREELS_EVENTS,
    AIVIDEOGEN_PROGRESS,
    MONEYPRINTER_EVENTS,
    JOB_EVENTS,
];

impl StreamRoute {
    /// True when `path` is this route's path with its parameters filled in.
    fn matches(&self, path: &str) -> bool {
        let mut wanted = self.path.trim_start_matches('/').split('/');
        let mut given = path.trim_start_matches('/').split('/');
        loop {
            match (wanted.next(), given.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

/// True for a `GET` of `path` (with this `Accept`) that answers with an
/// event stream.
pub fn is_event_stream(path: &str, accept: Option<&[u8]>) -> bool {
    STREAM_ROUTES.iter().any(|route| {
        route.matches(path)
            && match route.when {
                When::Always => true,
                When::AcceptsEventStream => accept.is_some_and(accepts_event_stream),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn event_stream_routes_are_recognised() {
        let sse = Some(&b"text/event-stream"[..]);
        assert!(is_event_stream("/api/v1/jobs/abc/events", None));
        assert!(is_event_stream("/api/progress/Black_holes", None));
        assert!(is_event_stream("/api/jobs/abc/events", sse));
        assert!(is_event_stream(
            "/api/jobs/abc/events",
            Some(&b"application/json, Text/Event-Stream"[..])
        ));
        assert!(!is_event_stream("/api/jobs/abc/events", None));
        assert!(!is_event_stream("/api/jobs/abc", sse));
        assert!(!is_event_stream("/api/v1/jobs", sse));
        assert!(!is_event_stream("/api/progress/a/b", None));
        assert!(!is_event_stream("/api/progress/", None));
        assert!(!is_event_stream("/api/v1/jobs//events", None));
    }
}

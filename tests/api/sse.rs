//! A real SSE client for the tests: reqwest's byte stream through the
//! `eventsource-stream` parser.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub struct SseStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    events: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

/// Opens `url` as an event stream, with `Last-Event-ID` when given.
pub async fn open(client: &reqwest::Client, url: &str, last_event_id: Option<i64>) -> SseStream {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.expect("open the stream");
    let status = response.status();
    let headers = response.headers().clone();
    let events = response
        .bytes_stream()
        .eventsource()
        .filter_map(|e| async move { e.ok() });
    SseStream {
        status,
        headers,
        events: Box::pin(events),
    }
}

impl SseStream {
    /// The next event, or `None` when the server closed the stream.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.next())
            .await
            .expect("timed out waiting for an SSE event")
    }

    /// Every event until the server closes the stream.
    pub async fn rest(&mut self, timeout: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.next()).await {
                Ok(Some(event)) => out.push(event),
                Ok(None) => return out,
                Err(_) => panic!(
                    "the stream did not close within {timeout:?}; got {} events",
                    out.len()
                ),
            }
        }
    }
}

pub fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap_or_else(|_| panic!("not JSON: {}", event.data))
}

pub fn id(event: &Event) -> i64 {
    event
        .id
        .parse()
        .unwrap_or_else(|_| panic!("event without a numeric id: {event:?}"))
}

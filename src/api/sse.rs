//! Server-Sent Events plumbing shared by every stream: the response
//! headers, frame formatting, keep-alive comments and the resume cursor.
//! Which routes stream is in [`super::streams`].

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::error::{ApiError, ApiResult};
use super::fields::whole_number;
use crate::engine::Engine;
use crate::metrics::OpenStream;

/// How long a browser waits before reconnecting, sent as `retry:`.
pub const RETRY_MS: u64 = 2000;

/// A frame stream as the body takes it.
pub type Frames = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// One SSE message. `data` must be a single line (JSON is).
pub fn frame(id: Option<i64>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.to_string().as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(event) = event {
        out.put_slice(b"event: ");
        out.put_slice(event.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// The `retry:` hint that opens every stream.
pub fn retry_hint() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n\n"))
}

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Interleaves a comment whenever `inner` has been quiet for `every`, so
/// that proxies and browsers keep an idle stream open. The stream ends when
/// `inner` does.
pub struct KeepAlive {
    inner: Frames,
    every: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl KeepAlive {
    /// Sends a comment whenever `inner` has been quiet for `every`.
    pub fn new(inner: Frames, every: Duration) -> Self {
        KeepAlive {
            inner,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl Stream for KeepAlive {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(bytes)) => {
                let next = Instant::now() + this.every;
                this.sleep.as_mut().reset(next);
                return Poll::Ready(Some(Ok(bytes)));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            let next = Instant::now() + this.every;
            this.sleep.as_mut().reset(next);
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
        }
        Poll::Pending
    }
}

/// Frames that count as an open stream of their dialect in `/metrics`
/// until the body is dropped: when the stream ends, when its client goes,
/// on the lean path and on hyper's alike.
struct Counted {
    inner: Frames,
    _open: OpenStream,
}

impl Stream for Counted {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A `text/event-stream` response with the headers every stream sends.
/// `dialect` names the stream's dialect in the open streams metric.
pub fn response(frames: Frames, keep_alive: Option<Duration>, dialect: &'static str) -> Response {
    let frames = Box::pin(Counted {
        inner: frames,
        _open: OpenStream::new(dialect),
    });
    let body = match keep_alive {
        Some(every) => Body::from_stream(KeepAlive::new(frames, every)),
        None => Body::from_stream(futures_util::StreamExt::map(frames, Ok::<_, Infallible>)),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Answer to a client whose cursor is already past the end of a finished
/// job: nothing is left, and 204 tells EventSource to stop reconnecting.
pub fn finished() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// True when an `Accept` value names `text/event-stream` (in any case).
pub fn accepts_event_stream(accept: &[u8]) -> bool {
    accept
        .windows(17)
        .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
}

/// True when the client asked for an event stream.
pub fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| accepts_event_stream(v.as_bytes()))
}

/// Where a reconnecting client resumes, clamped to the newest event (a
/// larger cursor would skip the job's next events, which get smaller ids).
/// `None` means the client gave no cursor.
pub async fn resume_from(
    engine: &Engine,
    headers: &HeaderMap,
    after: Option<&str>,
) -> ApiResult<Option<i64>> {
    let cursor = cursor(headers, after)?;
    Ok(engine.clamp_cursor(cursor).await?)
}

/// Where a reconnecting client resumes: `Last-Event-ID`, else `?after=`.
/// `None` means the client gave no cursor.
fn cursor(headers: &HeaderMap, after: Option<&str>) -> ApiResult<Option<i64>> {
    let bad = || ApiError::bad_request("Last-Event-ID and after must be non-negative integers.");
    // An empty header is no cursor: EventSource sends one before it has
    // seen an id.
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| bad())?.trim()).filter(|v| !v.is_empty()),
        None => None,
    };
    let last_event_id = whole_number(last_event_id, 0..=i64::MAX).map_err(|_| bad())?;
    match last_event_id {
        Some(id) => Ok(Some(id)),
        None => whole_number(after, 0..=i64::MAX).map_err(|_| bad()),
    }
}

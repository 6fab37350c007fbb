//! Request bodies must arrive in time. A body gets `BODY_TIMEOUT_SECS`
//! from the end of its request's head to arrive whole, however it is
//! dribbled; an upload (`multipart/form-data`) gets that much plus what it
//! needs at `UPLOAD_MIN_KIB_PER_SEC`, so a large upload on a slow but
//! steady link passes. A body that is late fails its extractor with
//! [`BodyTimedOut`], which the API answers with 408.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Time for a whole body.
    pub body: Duration,
    /// Bytes per second an upload must keep up once `body` is used.
    pub upload_min_bytes_per_sec: u64,
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// True when `err`, or anything it was caused by, is [`BodyTimedOut`].
pub fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Puts a deadline on the request's body, if it has one.
pub fn limit_body(req: Request, limits: Deadlines) -> Request {
    if req.body().is_end_stream() {
        return req;
    }
    let upload = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"multipart/"));
    let (parts, body) = req.into_parts();
    let body = Body::new(LateBody {
        inner: body,
        start: Instant::now(),
        allowed: limits.body,
        per_byte: upload
            .then(|| Duration::from_secs(1).div_f64(limits.upload_min_bytes_per_sec.max(1) as f64)),
        received: 0,
        sleep: None,
    });
    Request::from_parts(parts, body)
}

/// A body that fails once it is late.
struct LateBody {
    inner: Body,
    start: Instant,
    allowed: Duration,
    /// For uploads: the time each byte received adds to the allowance.
    per_byte: Option<Duration>,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl LateBody {
    fn deadline(&self) -> Instant {
        let earned = self.per_byte.map_or(Duration::ZERO, |per| {
            per.saturating_mul(self.received.min(u32::MAX as u64) as u32)
        });
        self.start + self.allowed + earned
    }
}

impl HttpBody for LateBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let deadline = this.deadline();
        if Instant::now() >= deadline {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                sleep.as_mut().reset(deadline);
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! Ordinary connections, served by hyper (HTTP/1 and HTTP/2), and closed
//! once they have been idle for the idle timeout: no request in flight and
//! none for that long. HTTP/2 connections also ping their peer, so a dead
//! one is noticed. Closing is graceful: a response being sent is finished
//! first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use bytes::{Buf, Bytes};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a connection may take to send a request head.
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an HTTP/2 peer is pinged, and how long its answer may take.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long an idle connection's goodbye may take before it is cut off.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Requests in flight on one connection, and when the last one ended.
/// Requests only touch two atomics; the idle check reads them when its
/// timer fires, so a busy connection costs no wake-ups.
struct Activity {
    in_flight: AtomicUsize,
    /// When the connection opened; `last` counts from here.
    opened: Instant,
    /// Milliseconds from `opened` to the end of the last request.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            opened: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    /// Counts a request until the guard is dropped.
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Resolves once the connection has had no request in flight for
    /// `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Acquire));
            let busy = self.in_flight.load(Ordering::Acquire) > 0;
            if !busy && last.elapsed() >= timeout {
                return;
            }
            let next = if busy {
                Instant::now() + timeout
            } else {
                last + timeout
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// A request in flight.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let since = self.0.opened.elapsed().as_millis();
        self.0
            .last
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection with hyper until it ends, is idle for
/// `idle_timeout`, or `stopping` fires. `prefix` is what was already read
/// from it; `peer` is put on each request (the rate limit counts by it).
pub(super) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    prefix: Bytes,
    router: Router,
    idle_timeout: Duration,
    stopping: CancellationToken,
) {
    let io = TokioIo::new(Prefixed { prefix, io: socket });
    let activity = Activity::new();
    let counted = activity.clone();
    let service = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let busy = counted.begin();
        let router = router.clone();
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let response = router.oneshot(req).await;
            // In flight until its body is sent, however long it streams.
            response.map(|r| r.map(|body| Body::new(Tracked { body, _busy: busy })))
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    // A timer lets hyper enforce its header-read timeout, so a client that
    // dribbles headers is cut off.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(PING_EVERY))
        .keep_alive_timeout(PING_EVERY);
    let connection = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    tokio::pin!(connection);
    let idle = tokio::select! {
        ended = connection.as_mut() => {
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            return;
        }
        _ = activity.idle_for(idle_timeout) => true,
        _ = stopping.cancelled() => false,
    };
    connection.as_mut().graceful_shutdown();
    if idle {
        // Nothing is in flight, so a peer that does not take part in the
        // goodbye (an HTTP/2 client that ignores GOAWAY and PING) is cut off.
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    } else {
        // The server stops: responses in flight are finished first (shutdown
        // waits for them only so long).
        let _ = connection.await;
    }
}

/// A response body that keeps its connection busy until it is dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection whose first bytes were already read.
struct Prefixed<T> {
    prefix: Bytes,
    io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

//! The HTTP server: hyper for ordinary requests, and a [`lean`] path for
//! the long-lived event streams.
//!
//! An idle SSE client costs little in Reelay itself, but a hyper connection
//! keeps an 8 KB read buffer (often two) and an 8 KB header buffer for its
//! whole life. So each new connection's request head is read here first,
//! into a small buffer. A plain `GET` to an event-stream route is answered
//! on the lean path; any other connection is handed to hyper together with
//! the bytes already read.

mod lean;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use bytes::{Buf, Bytes, BytesMut};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use lean::Head;

/// Tells from a request's path and `Accept` whether it asks for an event
/// stream (see `crate::api::is_event_stream`).
pub type IsStream = fn(&str, Option<&[u8]>) -> bool;

/// How long a new connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections before it stops waiting.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets hyper finish its connections gracefully and waits for
/// the event streams (which end when the hub closes, and at the latest
/// when the server stops). `is_stream` tells which request heads belong on
/// the lean path.
pub async fn run(
    listener: TcpListener,
    router: Router,
    is_stream: IsStream,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Turn every route into a service once, not per connection.
    let router: Router = router.with_state(());
    let graceful = GracefulShutdown::new();
    // Every connection's task, lean or hyper, so that shutdown can wait
    // for them all.
    let connections = TaskTracker::new();
    // Ends the wait for request heads when the server stops.
    let stopping = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut socket = socket;
            let mut head = BytesMut::with_capacity(1024);
            let kind = tokio::select! {
                kind = lean::read_head(&mut socket, &mut head, is_stream, HEAD_TIMEOUT) => kind,
                _ = stopping.cancelled() => Head::Closed,
            };
            match kind {
                Head::Closed => {}
                Head::Stream(request) => {
                    // Not kept for the life of the stream.
                    drop(head);
                    lean::serve(socket, *request, router, stopping).await;
                }
                Head::Other => {
                    let io = TokioIo::new(Prefixed {
                        prefix: head.freeze(),
                        io: socket,
                    });
                    let service = TowerToHyperService::new(
                        router
                            .map_request(|req: Request<hyper::body::Incoming>| req.map(Body::new)),
                    );
                    // Boxed, so that a stream's task does not carry the size
                    // of hyper's connection state.
                    let connection = Box::pin(async move {
                        let mut builder = Builder::new(TokioExecutor::new());
                        // A timer lets hyper enforce its header-read timeout,
                        // so a client that dribbles headers is cut off.
                        builder
                            .http1()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEAD_TIMEOUT);
                        builder.http2().timer(TokioTimer::new());
                        let connection = builder.serve_connection_with_upgrades(io, service);
                        if let Err(err) = watcher.watch(connection.into_owned()).await {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    });
                    connection.await;
                }
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    let drained = async { tokio::join!(graceful.shutdown(), connections.wait()) };
    if tokio::time::timeout(SHUTDOWN_DEADLINE, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {SHUTDOWN_DEADLINE:?} after shutdown began; closing them"
        );
    }
    Ok(())
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

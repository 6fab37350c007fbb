//! The HTTP server: [`conn`] serves ordinary connections with hyper, and
//! [`lean`] serves the long-lived event streams.
//!
//! An idle SSE client costs little in Reelay itself, but a hyper connection
//! keeps an 8 KB read buffer (often two) and an 8 KB header buffer for its
//! whole life. So each new connection's request head is read here first,
//! into a small buffer. A plain `GET` to an event-stream route is answered
//! on the lean path; any other connection is handed to hyper together with
//! the bytes already read.
//!
//! At most `max_connections` are open at once: past that the server stops
//! accepting until one closes, and new connections wait in the kernel's
//! backlog instead of failing.

mod conn;
mod lean;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::BytesMut;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use lean::Head;

/// Tells from a request's path and `Accept` whether it asks for an event
/// stream (see `crate::api::is_event_stream`).
pub type IsStream = fn(&str, Option<&[u8]>) -> bool;

/// How long shutdown waits for connections before it stops waiting.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// How the server treats its connections.
#[derive(Clone, Copy)]
pub struct Settings {
    /// Which request heads belong on the lean path.
    pub is_stream: IsStream,
    /// How long an ordinary connection may sit idle before it is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets hyper finish its connections gracefully and waits for
/// the event streams (which end when the hub closes, and at the latest
/// when the server stops).
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Turn every route into a service once, not per connection.
    let router: Router = router.with_state(());
    // Every connection's task, lean or hyper, so that shutdown can wait
    // for them all.
    let connections = TaskTracker::new();
    let open = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    // Ends the wait for request heads, and every connection, when the
    // server stops.
    let stopping = CancellationToken::new();
    let mut warned_at: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    warned_at = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        max = settings.max_connections,
                        "at MAX_CONNECTIONS; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let (socket, peer) = tokio::select! {
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
        let stopping = stopping.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut socket = socket;
            let mut head = BytesMut::with_capacity(1024);
            let kind = tokio::select! {
                kind = lean::read_head(&mut socket, &mut head, settings.is_stream, conn::HEAD_TIMEOUT) => kind,
                _ = stopping.cancelled() => Head::Closed,
            };
            match kind {
                Head::Closed => {}
                Head::Stream(mut request) => {
                    // Not kept for the life of the stream.
                    drop(head);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    lean::serve(socket, *request, router, stopping).await;
                }
                Head::Other => {
                    // Boxed, so that a stream's task does not carry the size
                    // of hyper's connection state.
                    Box::pin(conn::serve(
                        socket,
                        peer,
                        head.freeze(),
                        router,
                        settings.idle_timeout,
                        stopping,
                    ))
                    .await;
                }
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {SHUTDOWN_DEADLINE:?} after shutdown began; closing them"
        );
    }
    Ok(())
}

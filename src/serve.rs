//! The HTTP server: hyper for ordinary requests, and a lean path for the
//! long-lived event streams.
//!
//! An idle SSE client costs little in Reelay itself, but a hyper connection
//! keeps an 8 KB read buffer (often two) and an 8 KB header buffer for its
//! whole life. So each new connection's request head is read here first,
//! into a small buffer. A plain `GET` to an event-stream route is answered
//! by the same router (every middleware and handler unchanged), and the
//! response is written straight to the socket, chunked, and the connection
//! closes when the stream ends. Any other connection is handed to hyper
//! together with the bytes already read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Version, header};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Largest request head read before the connection goes to hyper as is.
const MAX_HEAD: usize = 16 * 1024;
/// How long a new connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest non-streaming body the lean path buffers (error answers).
const MAX_SMALL_BODY: usize = 1024 * 1024;
/// How long a stream's client may leave written data unread before it is
/// dropped; a stream that cannot write cannot notice a shutdown either.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections before it stops waiting.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets hyper finish its connections gracefully and waits for
/// the event streams (which end when the hub closes).
pub async fn run(
    listener: TcpListener,
    router: Router,
    is_stream: fn(&str, Option<&[u8]>) -> bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Turn every route into a service once, not per connection.
    let router: Router = router.with_state(());
    let graceful = GracefulShutdown::new();
    let streams = TaskTracker::new();
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
        streams.spawn(async move {
            let mut socket = socket;
            let mut head = BytesMut::with_capacity(1024);
            let kind = tokio::select! {
                kind = read_head(&mut socket, &mut head, is_stream) => kind,
                _ = stopping.cancelled() => Head::Closed,
            };
            match kind {
                Head::Closed => {}
                Head::Stream(request) => {
                    // Not kept for the life of the stream.
                    drop(head);
                    lean(socket, *request, router).await;
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
    streams.close();
    let drained = async { tokio::join!(graceful.shutdown(), streams.wait()) };
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

enum Head {
    /// The client went away (or sent nothing in time).
    Closed,
    /// A plain GET for an event stream, to answer on the lean path.
    Stream(Box<Request>),
    /// Anything else: hyper takes the connection, bytes read so far first.
    Other,
}

async fn read_head(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    is_stream: fn(&str, Option<&[u8]>) -> bool,
) -> Head {
    let read = async {
        loop {
            if buf.len() >= MAX_HEAD {
                return Head::Other;
            }
            buf.reserve(1024.min(MAX_HEAD - buf.len()));
            match socket.read_buf(buf).await {
                Ok(0) | Err(_) => return Head::Closed,
                Ok(_) => {}
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    return classify(&parsed, len == buf.len(), is_stream);
                }
                Ok(httparse::Status::Partial) => continue,
                // hyper answers malformed requests with the right error.
                Err(_) => return Head::Other,
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .unwrap_or(Head::Closed)
}

/// Builds the request when it belongs on the lean path.
fn classify(
    parsed: &httparse::Request<'_, '_>,
    whole: bool,
    is_stream: fn(&str, Option<&[u8]>) -> bool,
) -> Head {
    // Pipelined bytes, a body or an upgrade: leave it to hyper.
    if !whole || parsed.method != Some("GET") || parsed.version != Some(1) {
        return Head::Other;
    }
    let Some(target) = parsed.path else {
        return Head::Other;
    };
    let has = |name: &str| {
        parsed
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    };
    let body = parsed
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
        || has("transfer-encoding");
    if body || has("upgrade") || has("expect") {
        return Head::Other;
    }
    let accept = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("accept"))
        .map(|h| h.value);
    let path = target.split('?').next().unwrap_or(target);
    if !is_stream(path, accept) {
        return Head::Other;
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.version_mut() = Version::HTTP_11;
    match target.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return Head::Other,
    }
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Head::Other;
        };
        request.headers_mut().append(name, value);
    }
    Head::Stream(Box::new(request))
}

/// Answers one request through the router and writes the response on the
/// socket: an event stream chunked, anything else with its length. The
/// connection closes afterwards either way.
async fn lean(mut socket: TcpStream, request: Request, router: Router) {
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let streaming = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        // Framing is this function's business; a stream may keep the
        // handler's Connection header (AI-Video-Gen's sends keep-alive).
        let framing = name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING;
        if framing || (name == header::CONNECTION && !streaming) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    drop(parts);
    if !streaming {
        let bytes = axum::body::to_bytes(body, MAX_SMALL_BODY)
            .await
            .unwrap_or_default();
        // 204 and 304 carry no body and no length (RFC 9110).
        if !matches!(status.as_u16(), 204 | 304) {
            head.extend_from_slice(format!("content-length: {}\r\n", bytes.len()).as_bytes());
        }
        head.extend_from_slice(b"connection: close\r\n\r\n");
        head.extend_from_slice(&bytes);
        let _ = socket.write_all(&head).await;
        let _ = socket.shutdown().await;
        return;
    }
    // Chunked, so that the end of the stream is explicit; the connection
    // still closes after it.
    head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    if socket.write_all(&head).await.is_err() {
        return;
    }
    drop(head);
    let mut frames = body.into_data_stream();
    let mut probe = [0u8; 16];
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Some(Ok(bytes)) => {
                    if !write_frame(&mut socket, &bytes).await {
                        return;
                    }
                }
                _ => {
                    let _ = write_frame(&mut socket, b"").await;
                    break;
                }
            },
            // The client sends nothing more; a read that ends means it left,
            // and the stream (with its subscription) is dropped at once.
            read = socket.read(&mut probe) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        }
    }
    let _ = socket.shutdown().await;
}

/// Writes one frame as an HTTP chunk (an empty frame is the last chunk).
/// Most chunks fit the socket buffer at once; only when it is full does the
/// write wait, and then for at most [`WRITE_TIMEOUT`].
async fn write_frame(socket: &mut TcpStream, bytes: &[u8]) -> bool {
    let size = format!("{:x}\r\n", bytes.len());
    let trailer: &[u8] = b"\r\n";
    let parts = [
        io::IoSlice::new(size.as_bytes()),
        io::IoSlice::new(bytes),
        io::IoSlice::new(trailer),
    ];
    let total = size.len() + bytes.len() + trailer.len();
    let written = match socket.try_write_vectored(&parts) {
        Ok(n) => n,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return false,
    };
    if written == total {
        return true;
    }
    // The socket is full: send the rest in order, with a deadline.
    let mut rest = Vec::with_capacity(total - written);
    rest.extend_from_slice(size.as_bytes());
    rest.extend_from_slice(bytes);
    rest.extend_from_slice(trailer);
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(&rest[written..])).await,
        Ok(Ok(()))
    )
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

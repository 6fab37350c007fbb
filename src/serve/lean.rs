//! The lean path for event streams.
//!
//! A plain `GET` to an event-stream route is answered by the same router
//! as every other request (every middleware and handler unchanged), and
//! the response is written straight to the socket, chunked, with no hyper
//! connection state behind it. The connection closes when the stream ends.
//!
//! The contract: [`classify`] sends only a whole, body-less HTTP/1.1 `GET`
//! that `is_stream` accepts down this path, and everything else to hyper
//! with the bytes already read; [`write_frame`] writes each frame as one
//! chunk and an empty frame as the last chunk; and [`serve`] ends a stream
//! when its body ends, when the client goes, or when the server stops.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Version, header};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::IsStream;

/// Largest request head read before the connection goes to hyper as is.
const MAX_HEAD: usize = 16 * 1024;
/// Largest non-streaming body the lean path buffers (error answers).
const MAX_SMALL_BODY: usize = 1024 * 1024;
/// How long a stream's client may leave written data unread before it is
/// dropped; a stream that cannot write cannot notice a shutdown either.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a new connection's request head asks for.
pub(super) enum Head {
    /// The client went away (or sent nothing in time).
    Closed,
    /// A plain GET for an event stream, to answer on the lean path.
    Stream(Box<Request>),
    /// Anything else: hyper takes the connection, bytes read so far first.
    Other,
}

/// Reads a connection's request head into `buf`, within `timeout`, and
/// tells where the connection goes.
pub(super) async fn read_head(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    is_stream: IsStream,
    timeout: Duration,
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
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Head::Closed)
}

/// Builds the request when it belongs on the lean path.
fn classify(parsed: &httparse::Request<'_, '_>, whole: bool, is_stream: IsStream) -> Head {
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
/// connection closes afterwards either way. A stream ends when its body
/// does, when the client goes, or when `stopping` fires.
pub(super) async fn serve(
    mut socket: TcpStream,
    request: Request,
    router: Router,
    stopping: CancellationToken,
) {
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
        // Framing and the connection's fate are this function's business:
        // the connection closes after one answer, and says so.
        let ours = name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION;
        if ours {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"connection: close\r\n");
    drop(parts);
    if !streaming {
        let bytes = axum::body::to_bytes(body, MAX_SMALL_BODY)
            .await
            .unwrap_or_default();
        // 204 and 304 carry no body and no length (RFC 9110).
        if !matches!(status.as_u16(), 204 | 304) {
            head.extend_from_slice(format!("content-length: {}\r\n", bytes.len()).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
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
            // The server stops: the stream ends cleanly.
            _ = stopping.cancelled() => {
                let _ = write_frame(&mut socket, b"").await;
                break;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn streams(path: &str, _accept: Option<&[u8]>) -> bool {
        path.ends_with("/events")
    }

    fn classified(bytes: &[u8]) -> Head {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let len = match parsed.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("not a whole head: {other:?}"),
        };
        classify(&parsed, len == bytes.len(), streams)
    }

    #[test]
    fn only_a_whole_bodiless_http11_get_of_a_stream_goes_lean() {
        let Head::Stream(request) = classified(
            b"GET /j/events?after=3 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        ) else {
            panic!("a stream request did not go lean");
        };
        assert_eq!(request.uri(), "/j/events?after=3");
        assert_eq!(request.headers()["accept"], "text/event-stream");
        for other in [
            &b"GET /j/other HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /j/events HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /j/events HTTP/1.0\r\nHost: x\r\n\r\n",
            b"GET /j/events HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
            b"GET /j/events HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            b"GET /j/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /j/events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /j/events HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        ] {
            assert!(
                matches!(classified(other), Head::Other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        assert!(matches!(
            classified(b"GET /j/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Head::Stream(_)
        ));
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn frames_are_chunks_and_an_empty_frame_ends_the_body() {
        let (mut server, mut client) = pair().await;
        assert!(write_frame(&mut server, b"data: x\n\n").await);
        assert!(write_frame(&mut server, b"").await);
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"9\r\ndata: x\n\n\r\n0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_socket_buffer_arrives_whole_and_in_order() {
        let (mut server, mut client) = pair().await;
        let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        assert!(write_frame(&mut server, &big).await);
        assert!(write_frame(&mut server, b"end").await);
        drop(server);
        let got = reader.await.unwrap();
        let head = format!("{:x}\r\n", big.len());
        assert!(got.starts_with(head.as_bytes()));
        assert_eq!(&got[head.len()..head.len() + big.len()], &big[..]);
        assert_eq!(&got[head.len() + big.len()..], b"\r\n3\r\nend\r\n");
    }

    #[tokio::test]
    async fn a_write_to_a_client_that_left_fails() {
        let (mut server, client) = pair().await;
        drop(client);
        let mut failed = false;
        // The first writes may still land in the kernel's buffer.
        for _ in 0..100 {
            if !write_frame(&mut server, &[b'x'; 64 * 1024]).await {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}

//! Connections a client can hold open: idle ones close, slow bodies are
//! cut off, the number open is capped, and every answer says whether the
//! connection stays.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestServer;
use crate::stages::quick;

/// Reads until the server closes the connection, failing after `timeout`.
async fn read_to_close(socket: &mut TcpStream, timeout: Duration) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(timeout, socket.read_to_end(&mut seen)).await;
    assert!(
        read.is_ok(),
        "still open after {timeout:?}: {}",
        String::from_utf8_lossy(&seen)
    );
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(quick(), |c| c.idle_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame.
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let opened = Instant::now();
    read_to_close(&mut socket, Duration::from_secs(5)).await;
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "{:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn an_idle_kept_alive_http1_connection_is_closed_too() {
    let server = TestServer::start_with(quick(), |c| c.idle_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: reelay\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut socket, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn a_dribbled_body_gets_408_at_its_deadline_and_the_connection_closes() {
    let server = TestServer::start_with(quick(), |c| c.body_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(
            b"POST /api/generate HTTP/1.1\r\nHost: reelay\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let dribble = async {
        // One byte every 200 ms: each piece arrives well within a second.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if socket.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1600), dribble).await;
    let answer = read_to_close(&mut socket, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(answer.contains("\"status\":\"error\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn past_max_connections_the_next_one_waits_instead_of_failing() {
    let server = TestServer::start_with(quick(), |c| c.max_connections = 3).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    fourth
        .write_all(b"GET /health HTTP/1.1\r\nHost: reelay\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Nothing comes back while three connections are open.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), fourth.peek(&mut byte)).await;
    assert!(
        early.is_err(),
        "the fourth connection was served past the cap"
    );
    silent.clear();
    let answer = read_to_close(&mut fourth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn event_streams_say_they_close_and_http10_clients_get_plain_answers() {
    let server = TestServer::start(quick()).await;
    let job = server.submit("Closing").await;
    server
        .wait_state(&job, "completed", Duration::from_secs(10))
        .await;
    for path in [
        format!("/api/v1/jobs/{job}/events"),
        "/api/progress/not-yet".to_string(),
    ] {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: reelay\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 2048];
        let n = socket.read(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        assert!(head.contains("connection: close"), "{head}");
        assert!(!head.contains("keep-alive"), "{head}");
    }
    // HTTP/1.0 has no chunked encoding: the body ends with the connection.
    for (path, needle) in [
        (format!("/api/v1/jobs/{job}/events"), "event: job:completed"),
        (
            format!("/api/jobs/{job}/events?after=0"),
            "Video generation complete",
        ),
    ] {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let answer = read_to_close(&mut socket, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        assert!(body.contains(needle), "{body}");
    }
    let (status, _) = server.post("/api/cancel", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_upload_may_take_longer_than_the_body_timeout_while_it_keeps_a_steady_rate() {
    let server = TestServer::start_with(quick(), |c| {
        c.body_timeout_secs = 1;
        c.upload_min_kib_per_sec = 4;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.mp3");
    crate::helpers::make_fixture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-b:a",
            "64k",
            song.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&song).unwrap();
    let mut body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"songs\"; filename=\"slow.mp3\"\r\n\
                     Content-Type: audio/mpeg\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/upload-songs HTTP/1.1\r\nHost: reelay\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // About 8 KiB a second, for longer than the one-second body timeout.
    let started = Instant::now();
    for piece in body.chunks(1024) {
        socket.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(125)).await;
    }
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "the fixture is too small"
    );
    let answer = read_to_close(&mut socket, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(server.dir.path().join("music/slow.mp3").is_file());
}

//! The reference for the SSE figures: the smallest axum server that fans
//! events out to streams, one tokio broadcast channel and axum's own `Sse`.
//! `GET /events` streams every message; `POST /publish` sends its body, as
//! is, as the data of one event to every stream. It does nothing else (no
//! store, no backlog, no resume), so it marks what axum itself costs.
//!
//!     server reference [ADDR]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

type Messages = broadcast::Sender<Arc<str>>;

async fn events(
    State(messages): State<Messages>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(messages.subscribe()).filter_map(|message| async move {
        message.ok().map(|data| Ok(Event::default().data(&*data)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn publish(State(messages): State<Messages>, body: String) -> &'static str {
    let _ = messages.send(body.into());
    "ok"
}

/// Serves until killed, after printing one JSON line with its address and
/// process id.
pub async fn serve(addr: &str) {
    let (messages, _) = broadcast::channel(256);
    let app = Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(messages);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    println!(
        "{}",
        serde_json::json!({ "addr": addr.to_string(), "pid": std::process::id() })
    );
    axum::serve(listener, app).await.expect("serve");
}

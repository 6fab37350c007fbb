//! Request ids and the request's log span.
//!
//! Every request has an `x-request-id`: the client's own when it is a sane
//! token (1 to 128 visible ASCII characters), else a new UUID. It comes
//! back on the response (errors and event streams included), it is a field
//! of the span every log line of the request is written in, and a job the
//! request creates keeps it. The span shows the URI with any
//! `access_token` value blotted out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, Uri};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;
use uuid::Uuid;

use super::guard::ACCESS_TOKEN;

/// The header.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
const MAX_LEN: usize = 128;

/// True for an id worth keeping: 1 to 128 visible ASCII characters.
pub fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Keeps each request's id or gives it one, and copies it onto the
/// response: one layer with its own future, in front of every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = WithRequestId<S>;

    fn layer(&self, inner: S) -> WithRequestId<S> {
        WithRequestId { inner }
    }
}

/// The service [`RequestIdLayer`] makes.
#[derive(Debug, Clone)]
pub struct WithRequestId<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for WithRequestId<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Answered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = keep_or_make(req.headers_mut());
        Answered {
            inner: self.inner.call(req),
            id,
        }
    }
}

pin_project! {
    /// A request on its way: its answer gets the id.
    pub struct Answered<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for Answered<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(id)) = (&mut result, this.id.take()) {
            response.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(result)
    }
}

/// The request's id: the client's one when it sent exactly one sane id,
/// else a new UUID, which replaces whatever it sent.
fn keep_or_make(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let mut sent = headers.get_all(&HEADER).iter();
    if let (Some(id), None) = (sent.next(), sent.next())
        && is_sane(id.as_bytes())
    {
        return Some(id.clone());
    }
    let mut text = Uuid::encode_buffer();
    let made = Uuid::new_v4().hyphenated().encode_lower(&mut text);
    let id = HeaderValue::from_str(made).ok()?;
    headers.insert(HEADER, id.clone());
    Some(id)
}

/// The request's id, as a header value (set by [`RequestIdLayer`]).
pub fn of(req: &Request) -> Option<&str> {
    req.headers().get(&HEADER).and_then(|v| v.to_str().ok())
}

/// The span of one request: at `info`, so that its fields are on every
/// line the request logs.
pub fn span(req: &Request) -> Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        uri = %Redacted(req.uri()),
        request_id = of(req).unwrap_or("-"),
    )
}

/// A URI as it may be logged: the value of `access_token` is replaced.
pub struct Redacted<'a>(pub &'a Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        for (i, pair) in query.split('&').enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let secret = form_urlencoded::parse(name.as_bytes())
                .next()
                .is_some_and(|(name, _)| name == ACCESS_TOKEN);
            if secret {
                write!(f, "{name}=[redacted]")?;
            } else {
                f.write_str(pair)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_never_shows_in_a_logged_uri() {
        let uri: Uri = "/api/v1/jobs/x/events?after=3&access_token=s3cr%65t&a%63cess_token=k2"
            .parse()
            .unwrap();
        let shown = Redacted(&uri).to_string();
        assert_eq!(
            shown,
            "/api/v1/jobs/x/events?after=3&access_token=[redacted]&a%63cess_token=[redacted]"
        );
        assert!(!shown.contains("s3cr") && !shown.contains("k2"));
    }

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(is_sane(b"abc-123_X.y"));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"has space"));
        assert!(!is_sane("é".as_bytes()));
        assert!(is_sane(&[b'a'; 128]));
        assert!(!is_sane(&[b'a'; 129]));
    }
}

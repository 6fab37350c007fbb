//! Request ids and the request's log span.
//!
//! Every request has an `x-request-id`: the client's own when it is a sane
//! token (1 to 128 visible ASCII characters), else a new UUID. It comes
//! back on the response (errors and event streams included), it is a field
//! of the span every log line of the request is written in, and a job the
//! request creates keeps it. The span shows the URI with any
//! `access_token` value blotted out.

use std::fmt;

use axum::extract::Request;
use axum::http::{HeaderName, Uri};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Span;

use super::guard::ACCESS_TOKEN;

/// The header.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client.
const MAX_LEN: usize = 128;

/// True for an id worth keeping: 1 to 128 visible ASCII characters.
pub fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Drops a client's request id that is not sane, so that one is made.
pub fn drop_unfit(mut req: Request) -> Request {
    let unfit = req
        .headers()
        .get_all(&HEADER)
        .iter()
        .enumerate()
        .any(|(i, id)| i > 0 || !is_sane(id.as_bytes()));
    if unfit {
        req.headers_mut().remove(&HEADER);
    }
    req
}

/// Sets a request id where the client sent none.
pub fn set_layer() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::x_request_id(MakeRequestUuid)
}

/// Copies the request id onto the response.
pub fn propagate_layer() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::x_request_id()
}

/// The request's id, as a header value (set by [`set_layer`]).
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

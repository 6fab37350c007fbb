//! Who may call, and how often: the API keys and the rate limit.
//!
//! [`Guard::check`] runs in front of every route. It reads the caller's key
//! (`Authorization: Bearer <key>`, or `?access_token=<key>` on an event
//! stream, which EventSource cannot send headers to), compares it in
//! constant time with each configured key, counts the request against the
//! caller's rate, and leaves its [`Verdict`] on the request. It answers
//! nothing itself: the layer of the route's dialect turns a refusal into a
//! 401 or 429 in that dialect's envelope (see [`super::dialect`]). The
//! `access_token` parameter is taken out of the URI here, so no handler,
//! link or later log line sees it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, Uri, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::streams::is_event_stream;
use crate::Config;

/// The query parameter that carries a key on event streams.
pub const ACCESS_TOKEN: &str = "access_token";

/// The routes that need no key: the health report, and the dashboard's
/// page and assets, which hold no data and ask for a key themselves.
fn is_open(path: &str) -> bool {
    path == "/health" || super::dashboard::PATHS.contains(&path)
}

/// The route that also takes `METRICS_API_KEY`.
const METRICS_PATH: &str = "/metrics";

/// What [`check`] decided about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It may go on.
    Pass,
    /// Keys are on and it carries none of them: 401.
    Unauthorized,
    /// Its caller is over `RATE_LIMIT_PER_MIN`: 429, with the seconds to
    /// wait.
    Limited(u64),
}

/// Who a request came from when API keys are on: the start of its key's
/// SHA-256 digest, in hex (never the key). Idempotency-Keys are scoped to
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// The keys and the rate limiter, built once from the configuration.
pub struct Guard {
    /// SHA-256 digests of `API_KEYS`; empty means keys are off.
    keys: Vec<[u8; 32]>,
    /// SHA-256 digest of `METRICS_API_KEY`.
    metrics_key: Option<[u8; 32]>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    /// Requests counted, to forget idle callers now and then.
    counted: AtomicU64,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Guard {
    /// The guard `config` asks for.
    pub fn new(config: &Config) -> Self {
        let keys = config
            .api_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(digest)
            .collect();
        let metrics_key = Some(config.metrics_api_key.trim())
            .filter(|k| !k.is_empty())
            .map(digest);
        let limiter = NonZeroU32::new(config.rate_limit_per_min)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Guard {
            keys,
            metrics_key,
            limiter,
            clock: DefaultClock::default(),
            counted: AtomicU64::new(0),
        }
    }

    /// True when nothing is to be checked: no keys and no rate limit.
    fn is_off(&self) -> bool {
        self.keys.is_empty() && self.metrics_key.is_none() && self.limiter.is_none()
    }

    /// Which configured key `presented` is, compared in constant time
    /// (digests of equal length, every key compared, no early exit).
    fn identify(&self, presented: &str, path: &str) -> Option<Caller> {
        let given = digest(presented);
        let metrics = self.metrics_key.filter(|_| path == METRICS_PATH);
        let mut found = None;
        for known in self.keys.iter().chain(metrics.iter()) {
            if bool::from(known.ct_eq(&given)) {
                found = Some(known);
            }
        }
        found.map(|known| Caller(hex(&known[..8])))
    }

    /// The verdict on `req`, and the caller it names.
    fn judge(&self, req: &Request, token: Option<&str>) -> (Verdict, Option<Caller>) {
        let path = req.uri().path();
        if req.method() == Method::OPTIONS || is_open(path) {
            return (Verdict::Pass, None);
        }
        let keys_on = !self.keys.is_empty() || (path == METRICS_PATH && self.metrics_key.is_some());
        let caller = match token {
            Some(token) if keys_on => self.identify(token, path),
            _ => None,
        };
        if keys_on && caller.is_none() {
            return (Verdict::Unauthorized, None);
        }
        let Some(limiter) = &self.limiter else {
            return (Verdict::Pass, caller);
        };
        let who = match (&caller, req.extensions().get::<ConnectInfo<SocketAddr>>()) {
            (Some(Caller(id)), _) => id.clone(),
            (None, Some(ConnectInfo(peer))) => peer.ip().to_string(),
            (None, None) => String::new(),
        };
        if self.counted.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        match limiter.check_key(&who) {
            Ok(()) => (Verdict::Pass, caller),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                (Verdict::Limited(secs.max(1)), caller)
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a request presents: its bearer token, or on an event stream its
/// `access_token`.
fn presented(req: &Request, query_token: Option<String>) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let accept = req.headers().get(header::ACCEPT).map(|v| v.as_bytes());
    bearer.or_else(|| query_token.filter(|_| is_event_stream(req.uri().path(), accept)))
}

/// Takes `access_token` out of the URI, and returns the URI without it
/// and the token (decoded); `None` when the URI has none.
fn take_access_token(uri: &Uri) -> Option<(Uri, String)> {
    let query = uri.query()?;
    // The name may be percent-encoded, but then it holds a `%`.
    if !query.contains(ACCESS_TOKEN) && !query.contains('%') {
        return None;
    }
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(
            |pair| match form_urlencoded::parse(pair.as_bytes()).next() {
                Some((name, value)) if name == ACCESS_TOKEN => {
                    token = Some(value.into_owned());
                    false
                }
                _ => true,
            },
        )
        .collect();
    let token = token?;
    let path = uri.path();
    let rebuilt = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    Some((rebuilt.parse().ok()?, token))
}

impl Guard {
    /// `req` with its `access_token` taken out of the URI, and the
    /// [`Verdict`] (and the [`Caller`]) left on it when anything is to be
    /// checked; no verdict means [`Verdict::Pass`]. Synchronous, so that it
    /// runs as a plain request map with no future of its own: it is in
    /// front of the poll path.
    pub fn check(&self, mut req: Request) -> Request {
        let query_token = take_access_token(req.uri()).map(|(uri, token)| {
            *req.uri_mut() = uri;
            token
        });
        if self.is_off() {
            return req;
        }
        let token = presented(&req, query_token);
        let (verdict, caller) = self.judge(&req, token.as_deref());
        req.extensions_mut().insert(verdict);
        if let Some(caller) = caller {
            req.extensions_mut().insert(caller);
        }
        req
    }
}

//! HTTP request metrics: a middleware that counts every answer by method,
//! route template and status, and times it.
//!
//! The route is the template that matched (axum's `MatchedPath`, such as
//! `/api/v1/jobs/{id}`), never the path itself, and every request that no
//! route matched shares one label, so random URLs add no series. Methods
//! outside the standard ones share one label too.
//!
//! The metric handles of each route are looked up once and kept, so that a
//! request costs a read lock, a string hash and two atomic updates, with no
//! allocation: the poll path is the hottest in the server.

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::Instant;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode};
use metrics::{Counter, Histogram, counter, histogram};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::metrics as names;

/// Counts and times every request of the routes it wraps. Added around
/// the router only when `METRICS_ENABLED` is on. A plain tower layer with
/// its own future: no boxing and no clone of the inner service per
/// request, as a `from_fn` middleware would have.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// The service [`TrackLayer`] makes.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        let route = request.extensions().get::<MatchedPath>().cloned();
        Tracked {
            inner: self.inner.call(request),
            started,
            method,
            route,
        }
    }
}

pin_project! {
    /// A request on its way: recorded when its answer is ready.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: &'static str,
        route: Option<MatchedPath>,
    }
}

impl<F, R, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let route = this
                .route
                .as_ref()
                .map_or(names::UNMATCHED_ROUTE, MatchedPath::as_str);
            record(route, this.method, response.status(), *this.started);
        }
        Poll::Ready(result)
    }
}

/// The handles of one route: a duration per method, a count per method
/// and status. Few of each, so a list beats a map.
#[derive(Default)]
struct RouteHandles {
    durations: Vec<(&'static str, Histogram)>,
    counts: Vec<(&'static str, StatusCode, Counter)>,
}

impl RouteHandles {
    fn find(&self, method: &str, status: StatusCode) -> Option<(&Histogram, &Counter)> {
        let duration = self.durations.iter().find(|(m, _)| *m == method)?;
        let count = self
            .counts
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)?;
        Some((&duration.1, &count.2))
    }

    fn add(&mut self, route: &str, method: &'static str, status: StatusCode) {
        if !self.durations.iter().any(|(m, _)| *m == method) {
            let route = route.to_string();
            let duration =
                histogram!(names::HTTP_REQUEST_DURATION, "method" => method, "route" => route);
            self.durations.push((method, duration));
        }
        if !self
            .counts
            .iter()
            .any(|(m, s, _)| *m == method && *s == status)
        {
            let (route, code) = (route.to_string(), status.as_u16().to_string());
            let count = counter!(names::HTTP_REQUESTS,
                "method" => method, "route" => route, "status" => code);
            self.counts.push((method, status, count));
        }
    }
}

/// Every route's handles. Bounded: routes are templates, methods and
/// statuses are few.
static HANDLES: LazyLock<RwLock<HashMap<Box<str>, RouteHandles>>> = LazyLock::new(Default::default);

fn record(route: &str, method: &'static str, status: StatusCode, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    {
        let handles = HANDLES.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((duration, count)) = handles.get(route).and_then(|h| h.find(method, status)) {
            duration.record(seconds);
            count.increment(1);
            return;
        }
    }
    let mut handles = HANDLES.write().unwrap_or_else(PoisonError::into_inner);
    let entry = handles.entry(route.into()).or_default();
    entry.add(route, method, status);
    if let Some((duration, count)) = entry.find(method, status) {
        duration.record(seconds);
        count.increment(1);
    }
}

/// The method's name, for the standard methods; `other` for the rest.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

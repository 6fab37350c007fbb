//! HTTP request metrics: a middleware that counts every answer by method,
//! route template and status, and times it.
//!
//! The route is the template that matched (axum's `MatchedPath`, such as
//! `/api/v1/jobs/{id}`), never the path itself, and every request that no
//! route matched shares one label, so random URLs add no series. Methods
//! outside the standard ones share one label too.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};

use crate::metrics as names;

/// Counts and times one request. Added around the router only when
/// `METRICS_ENABLED` is on.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route
        .as_ref()
        .map_or(names::UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let status = response.status().as_u16().to_string();
    histogram!(names::HTTP_REQUEST_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(names::HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
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

//! The dashboard at `/`: one HTML page, its script and its style sheet,
//! compiled into the binary (no CDN, no build step), so it works offline
//! and always matches the server it comes from.
//!
//! The page holds no data: it asks the API for everything, with the key
//! the user gives it when keys are on, so these three routes need no key
//! (see [`super::guard`]). Their `ETag` is the build's, so a browser
//! revalidates them and never runs a stale script after an upgrade.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/style.css");

/// The paths the dashboard is served at.
pub const PATHS: [&str; 3] = ["/", "/dashboard/app.js", "/dashboard/style.css"];

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            PATHS[0],
            get(|h: HeaderMap| async move { asset(&h, INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            PATHS[1],
            get(|h: HeaderMap| async move { asset(&h, SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            PATHS[2],
            get(|h: HeaderMap| async move { asset(&h, STYLE, "text/css; charset=utf-8") }),
        )
}

/// The build's tag: the package version and a hash of the three files.
fn etag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        // FNV-1a: stable across builds, unlike the standard hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in [INDEX, SCRIPT, STYLE].iter().flat_map(|s| s.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("\"{}-{hash:016x}\"", env!("CARGO_PKG_VERSION"))
    })
}

fn asset(headers: &HeaderMap, body: &'static str, content_type: &'static str) -> Response {
    let tag = etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

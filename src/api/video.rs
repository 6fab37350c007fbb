//! Serving a finished video, with Range support so that players can seek.
//! Each dialect decides which job's video a request names; this only
//! serves the file.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::error::{ApiError, ApiResult};

/// The MP4 at `path`, or the byte range the request asks for.
pub async fn serve(path: &str, request: Request) -> ApiResult<Response> {
    if !std::path::Path::new(path).is_file() {
        return Err(ApiError::NotFound(
            "The video file is no longer on the server.".into(),
        ));
    }
    // Jobs write `output.mp4`; the type comes from the extension.
    let response = ServeFile::new(path).oneshot(request).await.map_err(|err| {
        tracing::error!(error = %err, "could not serve a video");
        ApiError::Internal
    })?;
    Ok(response.map(Body::new).into_response())
}

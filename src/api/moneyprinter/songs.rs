//! `POST /api/upload-songs`: MP3 files for the music library, as
//! MoneyPrinter's front end uploads them (multipart field `songs`). The
//! library's rules (names, checks, all or nothing) are the engine's; this
//! reads the form.

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::dialect::MpErrorBody;
use crate::api::error::{ApiError, ApiResult};
use crate::engine::SongUpload;

/// The answer to an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadReply {
    /// Always `success`.
    pub status: &'static str,
    /// `Uploaded N song(s).`
    pub message: String,
}

fn unreadable(err: &MultipartError, limit: usize) -> ApiError {
    if crate::api::deadline::is_timeout(err) {
        ApiError::BodyTimeout
    } else if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::bad_request(format!("Could not read the upload: {}", err.body_text()))
    }
}

/// Reads every `songs` part of the form into `upload`.
async fn receive(multipart: &mut Multipart, upload: &mut SongUpload) -> ApiResult<()> {
    let limit = upload.limit();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|err| unreadable(&err, limit))?
    {
        if field.name() != Some("songs") {
            continue;
        }
        let Some(name) = field
            .file_name()
            .map(str::to_string)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let mut file = upload.file(&name).await?;
        while let Some(chunk) = field.chunk().await.map_err(|err| unreadable(&err, limit))? {
            file.write(&chunk).await?;
        }
        file.close().await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/upload-songs", tag = "moneyprinter", operation_id = "mp_upload_songs",
    request_body(content_type = "multipart/form-data", description = "One or more `songs` fields, each an .mp3 file"),
    responses(
        (status = 200, description = "Saved into MUSIC_DIR", body = UploadReply),
        (status = 400, description = "`No files uploaded.`, `No MP3 files found.`, or a file that is not audio", body = MpErrorBody),
        (status = 413, description = "Over MAX_UPLOAD_BYTES", body = MpErrorBody),
    ))]
/// Adds songs to the music library.
pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<UploadReply>> {
    let mut multipart = multipart.map_err(|err| {
        ApiError::bad_request(format!(
            "Expected a multipart/form-data upload: {}",
            err.body_text()
        ))
    })?;
    let mut upload = state.engine.song_upload().await?;
    if let Err(err) = receive(&mut multipart, &mut upload).await {
        upload.discard().await;
        return Err(err);
    }
    let saved = upload.finish().await?;
    Ok(Json(UploadReply {
        status: "success",
        message: format!("Uploaded {saved} song(s)."),
    }))
}

//! `POST /api/upload-songs`: MP3 files for the music library, as
//! MoneyPrinter's front end uploads them (multipart field `songs`).
//!
//! Unlike the original, the songs already in `MUSIC_DIR` stay. Names are
//! reduced to a plain file name (no folders, no hidden files), every file
//! must really be MP3 audio (ffprobe), and a request is all or nothing:
//! files are written to hidden temporary names first and only moved into
//! place once all of them have passed.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::api::error::MpErrorBody;
use crate::api::{ApiError, ApiResult};
use crate::pipeline::StageError;
use crate::pipeline::media::tools;

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadReply {
    pub status: &'static str,
    /// `Uploaded N song(s).`
    pub message: String,
}

/// A plain, visible `.mp3` file name from whatever the client sent, or
/// `None` when nothing usable is left.
pub fn safe_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem = cleaned.strip_suffix(".mp3").or_else(|| {
        cleaned
            .to_ascii_lowercase()
            .ends_with(".mp3")
            .then(|| &cleaned[..cleaned.len() - 4])
    })?;
    // At most 100 bytes, cut on a character boundary: file names are
    // limited in bytes.
    let mut stem = stem.trim().to_string();
    while stem.len() > 100 {
        stem.pop();
    }
    let stem = stem.trim();
    (!stem.is_empty()).then(|| format!("{stem}.mp3"))
}

/// Moves `temp` to `name` in `dir`, or `name-2`, `name-3`, ... when taken.
/// A hard link never replaces an existing file, so two uploads of one name
/// at the same time both keep their songs.
async fn place(dir: &Path, temp: &Path, name: &str) -> std::io::Result<PathBuf> {
    let stem = name.trim_end_matches(".mp3");
    for n in 1..10_000 {
        let target = if n == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}.mp3"))
        };
        match tokio::fs::hard_link(temp, &target).await {
            Ok(()) => {
                let _ = tokio::fs::remove_file(temp).await;
                return Ok(target);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other("no free name"))
}

fn too_large(err: &MultipartError, limit: usize) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::bad_request(format!("Could not read the upload: {}", err.body_text()))
    }
}

/// Streams one field into `path`, counting towards the request's limit.
async fn save(field: &mut Field<'_>, path: &Path, used: &mut usize, limit: usize) -> ApiResult<()> {
    let mut file = tokio::fs::File::create(path).await.map_err(|err| {
        tracing::error!(path = %path.display(), error = %err, "could not create an upload");
        ApiError::Internal
    })?;
    while let Some(chunk) = field.chunk().await.map_err(|err| too_large(&err, limit))? {
        *used += chunk.len();
        if *used > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        file.write_all(&chunk).await.map_err(|err| {
            tracing::error!(error = %err, "could not write an upload");
            ApiError::Internal
        })?;
    }
    file.flush().await.map_err(|_| ApiError::Internal)
}

/// Files written so far, removed unless the upload succeeds.
struct Pending(Vec<(PathBuf, String)>);

impl Drop for Pending {
    fn drop(&mut self) {
        for (temp, _) in &self.0 {
            let _ = std::fs::remove_file(temp);
        }
    }
}

#[utoipa::path(post, path = "/api/upload-songs", tag = "moneyprinter",
    request_body(content_type = "multipart/form-data", description = "One or more `songs` fields, each an .mp3 file"),
    responses(
        (status = 200, description = "Saved into MUSIC_DIR", body = UploadReply),
        (status = 400, description = "`No files uploaded.`, `No MP3 files found.`, or a file that is not audio", body = MpErrorBody),
        (status = 413, description = "Over MAX_UPLOAD_BYTES", body = MpErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Json<UploadReply>> {
    let mut multipart = multipart.map_err(|err| {
        ApiError::bad_request(format!(
            "Expected a multipart/form-data upload: {}",
            err.body_text()
        ))
    })?;
    let limit = state.config.max_upload_bytes;
    let dir = state.config.music_dir.clone();
    tokio::fs::create_dir_all(&dir).await.map_err(|err| {
        tracing::error!(path = %dir.display(), error = %err, "could not create the music folder");
        ApiError::Internal
    })?;
    let mut files = 0;
    let mut used = 0;
    let mut pending = Pending(Vec::new());
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|err| too_large(&err, limit))?
    {
        if field.name() != Some("songs") {
            continue;
        }
        let Some(raw) = field
            .file_name()
            .map(str::to_string)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        files += 1;
        let Some(name) = safe_name(&raw) else {
            // Drain it so its bytes count towards the limit.
            while field
                .chunk()
                .await
                .map_err(|err| too_large(&err, limit))?
                .is_some()
            {}
            continue;
        };
        let temp = dir.join(format!(".upload-{}.part", Uuid::new_v4()));
        pending.0.push((temp.clone(), name));
        save(&mut field, &temp, &mut used, limit).await?;
    }
    if files == 0 {
        return Err(ApiError::bad_request("No files uploaded."));
    }
    if pending.0.is_empty() {
        return Err(ApiError::bad_request("No MP3 files found."));
    }
    let never = CancellationToken::new();
    for (temp, name) in &pending.0 {
        match tools::probe(&state.tools, temp, &never).await {
            Ok(probe) if probe.has_audio && probe.duration > 0.0 && probe.format == "mp3" => {}
            Ok(_) | Err(StageError::Cancelled) => {
                return Err(ApiError::bad_request(format!(
                    "{name} is not an MP3 audio file."
                )));
            }
            Err(StageError::Failed(why)) if why.contains("was not found") => {
                return Err(ApiError::Failed(why));
            }
            Err(StageError::Failed(_)) => {
                return Err(ApiError::bad_request(format!(
                    "{name} is not an MP3 audio file."
                )));
            }
        }
    }
    let saved = pending.0.len();
    // All or nothing: songs already placed are taken back if one fails.
    let mut placed = Vec::with_capacity(saved);
    while let Some((temp, name)) = pending.0.pop() {
        match place(&dir, &temp, &name).await {
            Ok(target) => placed.push(target),
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                for target in placed {
                    let _ = tokio::fs::remove_file(target).await;
                }
                tracing::error!(error = %err, "could not move an upload into place");
                return Err(ApiError::Internal);
            }
        }
    }
    Ok(Json(UploadReply {
        status: "success",
        message: format!("Uploaded {saved} song(s)."),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_flattened_and_checked() {
        assert_eq!(safe_name("calm.mp3").as_deref(), Some("calm.mp3"));
        assert_eq!(safe_name("../../etc/evil.mp3").as_deref(), Some("evil.mp3"));
        assert_eq!(
            safe_name("C:\\music\\Song One.MP3").as_deref(),
            Some("Song One.mp3")
        );
        assert_eq!(safe_name(".hidden.mp3").as_deref(), Some("hidden.mp3"));
        assert_eq!(safe_name("a/b;rm -rf.mp3").as_deref(), Some("b_rm -rf.mp3"));
        assert_eq!(safe_name("notes.txt"), None);
        assert_eq!(safe_name(".mp3"), None);
        assert_eq!(safe_name("../"), None);
        let long = format!("{}.mp3", "é".repeat(80));
        let name = safe_name(&long).unwrap();
        assert!(name.len() <= 104, "{}", name.len());
    }
}

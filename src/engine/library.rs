//! The music library's uploads: songs that later jobs pick by mood.
//!
//! Names are reduced to a plain file name (no folders, no hidden files),
//! every file must really be MP3 audio (ffprobe), and an upload is all or
//! nothing: files are written to hidden temporary names first and only
//! moved into place once all of them have passed. Songs already in the
//! library stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::tools::{ToolError, Tools, probe};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The upload is larger than the limit, in bytes.
    #[error("Request body is too large; the limit is {0} bytes.")]
    TooLarge(usize),
    /// It held no files at all.
    #[error("No files uploaded.")]
    NoFiles,
    /// None of its files had an `.mp3` name.
    #[error("No MP3 files found.")]
    NoMp3,
    /// This file is not MP3 audio.
    #[error("{0} is not an MP3 audio file.")]
    NotMp3(String),
    /// ffprobe, needed to check the files, is missing; the message says how
    /// to install it.
    #[error("{0}")]
    ToolMissing(String),
    /// The library folder could not be written; logged where it happened.
    #[error("Internal server error.")]
    Io,
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

fn io_error(what: &str, path: &Path, err: std::io::Error) -> UploadError {
    tracing::error!(path = %path.display(), error = %err, "{what}");
    UploadError::Io
}

/// One upload in progress. Files written so far are removed unless
/// [`SongUpload::finish`] places them.
pub struct SongUpload {
    dir: PathBuf,
    tools: Arc<Tools>,
    limit: usize,
    used: usize,
    files: usize,
    /// Temporary file and the name it will get.
    pending: Vec<(PathBuf, String)>,
}

impl SongUpload {
    /// Starts an upload into `dir` of at most `limit` bytes in all.
    pub(super) async fn start(
        dir: PathBuf,
        tools: Arc<Tools>,
        limit: usize,
    ) -> Result<Self, UploadError> {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|err| io_error("could not create the music folder", &dir, err))?;
        Ok(SongUpload {
            dir,
            tools,
            limit,
            used: 0,
            files: 0,
            pending: Vec::new(),
        })
    }

    /// The upload's limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Starts the next file, sent under `raw_name`. A file whose name is not
    /// a usable `.mp3` name is read and counted, but not kept.
    pub async fn file(&mut self, raw_name: &str) -> Result<SongFile<'_>, UploadError> {
        self.files += 1;
        let Some(name) = safe_name(raw_name) else {
            return Ok(SongFile {
                upload: self,
                file: None,
            });
        };
        let temp = self.dir.join(format!(".upload-{}.part", Uuid::new_v4()));
        self.pending.push((temp.clone(), name));
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|err| io_error("could not create an upload", &temp, err))?;
        Ok(SongFile {
            upload: self,
            file: Some(file),
        })
    }

    /// Checks every file and moves them all into the library, or none.
    /// Returns how many songs were saved.
    pub async fn finish(mut self) -> Result<usize, UploadError> {
        if self.files == 0 {
            return Err(UploadError::NoFiles);
        }
        if self.pending.is_empty() {
            return Err(UploadError::NoMp3);
        }
        let never = CancellationToken::new();
        for (temp, name) in &self.pending {
            match probe::probe(&self.tools, temp, &never).await {
                Ok(p) if p.has_audio && p.duration > 0.0 && p.format == "mp3" => {}
                Err(ToolError::Failed(why)) if why.contains("was not found") => {
                    return Err(UploadError::ToolMissing(why));
                }
                Ok(_) | Err(_) => return Err(UploadError::NotMp3(name.clone())),
            }
        }
        let saved = self.pending.len();
        let mut placed = Vec::with_capacity(saved);
        while let Some((temp, name)) = self.pending.pop() {
            match place(&self.dir, &temp, &name).await {
                Ok(target) => placed.push(target),
                Err(err) => {
                    let _ = tokio::fs::remove_file(&temp).await;
                    // All or nothing: songs already placed are taken back.
                    for target in placed {
                        let _ = tokio::fs::remove_file(target).await;
                    }
                    return Err(io_error("could not move an upload into place", &temp, err));
                }
            }
        }
        Ok(saved)
    }
}

impl Drop for SongUpload {
    fn drop(&mut self) {
        for (temp, _) in &self.pending {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// One file of an upload, being written.
pub struct SongFile<'a> {
    upload: &'a mut SongUpload,
    file: Option<tokio::fs::File>,
}

impl SongFile<'_> {
    /// Writes the next piece, counting it towards the upload's limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.upload.used += chunk.len();
        if self.upload.used > self.upload.limit {
            return Err(UploadError::TooLarge(self.upload.limit));
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk).await.map_err(|err| {
                tracing::error!(error = %err, "could not write an upload");
                UploadError::Io
            })?;
        }
        Ok(())
    }

    /// Flushes the file once its last piece is written.
    pub async fn close(mut self) -> Result<(), UploadError> {
        if let Some(file) = self.file.as_mut() {
            file.flush().await.map_err(|_| UploadError::Io)?;
        }
        Ok(())
    }
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

//! The music library's uploads: songs that later jobs pick by mood.
//!
//! Names are reduced to a plain file name (no folders, no hidden files),
//! every file must really be MP3 audio (ffprobe), and an upload is all or
//! nothing: files are written to hidden temporary names first and only
//! moved into place once all of them have passed. Songs already in the
//! library stay.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

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
    /// The upload carries more files than the limit.
    #[error("Too many files: an upload may carry at most {0}.")]
    TooManyFiles(usize),
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

/// Places each staged file under its name in `dir`, or `name-2`,
/// `name-3`, ... when taken. The names in use are read once, so a batch of
/// files with one name costs one listing, not a link attempt per taken
/// name. A hard link never replaces an existing file, so an upload running
/// at the same time keeps its songs too (a name it took meanwhile is
/// passed over).
async fn place_all(dir: &Path, staged: &[(PathBuf, String)]) -> std::io::Result<Vec<PathBuf>> {
    let mut taken = HashSet::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        taken.insert(entry.file_name().to_string_lossy().into_owned());
    }
    let mut placed = Vec::with_capacity(staged.len());
    for (temp, name) in staged {
        let stem = name.trim_end_matches(".mp3");
        let candidates =
            std::iter::once(name.clone()).chain((2..).map(|n| format!("{stem}-{n}.mp3")));
        for candidate in candidates {
            if taken.contains(&candidate) {
                continue;
            }
            let target = dir.join(&candidate);
            match tokio::fs::hard_link(temp, &target).await {
                Ok(()) => {
                    taken.insert(candidate);
                    placed.push(target);
                    break;
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    taken.insert(candidate);
                }
                Err(err) => {
                    remove_off_runtime(placed);
                    return Err(err);
                }
            }
        }
    }
    Ok(placed)
}

/// Removes files on a blocking thread, so that a large cleanup never holds
/// up the runtime.
fn remove_off_runtime(files: Vec<PathBuf>) {
    if files.is_empty() {
        return;
    }
    let remove = move || {
        for file in files {
            let _ = std::fs::remove_file(file);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(remove)),
        Err(_) => remove(),
    }
}

/// Files checked by ffprobe at once.
const CHECKS_AT_ONCE: usize = 4;

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
    max_files: usize,
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
        max_files: usize,
    ) -> Result<Self, UploadError> {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|err| io_error("could not create the music folder", &dir, err))?;
        Ok(SongUpload {
            dir,
            tools,
            limit,
            max_files,
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
        if self.files > self.max_files {
            return Err(UploadError::TooManyFiles(self.max_files));
        }
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
    pub async fn finish(self) -> Result<usize, UploadError> {
        if self.files == 0 {
            return Err(UploadError::NoFiles);
        }
        if self.pending.is_empty() {
            return Err(UploadError::NoMp3);
        }
        if let Err(err) = self.check_all().await {
            self.discard().await;
            return Err(err);
        }
        let placed = place_all(&self.dir, &self.pending).await;
        // The staged names go either way; placed songs are links of their own.
        let dir = self.dir.clone();
        self.discard().await;
        match placed {
            Ok(placed) => Ok(placed.len()),
            Err(err) => Err(io_error("could not move an upload into place", &dir, err)),
        }
    }

    /// Checks that every staged file is MP3 audio, a few at a time.
    async fn check_all(&self) -> Result<(), UploadError> {
        let checks: Vec<_> = self
            .pending
            .iter()
            .map(|(temp, name)| {
                let (tools, temp, name) = (self.tools.clone(), temp.clone(), name.clone());
                async move {
                    let never = CancellationToken::new();
                    match probe::probe(&tools, &temp, &never).await {
                        Ok(p) if p.has_audio && p.duration > 0.0 && p.format == "mp3" => Ok(()),
                        Err(ToolError::Failed(why)) if why.contains("was not found") => {
                            Err(UploadError::ToolMissing(why))
                        }
                        Ok(_) | Err(_) => Err(UploadError::NotMp3(name)),
                    }
                }
            })
            .collect();
        let mut results = futures_util::stream::iter(checks).buffered(CHECKS_AT_ONCE);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(())
    }
}

impl SongUpload {
    /// Removes every staged file, on a blocking thread, and waits for it:
    /// a refused upload leaves nothing behind by the time it is answered.
    pub async fn discard(mut self) {
        let files: Vec<PathBuf> = self.pending.drain(..).map(|(temp, _)| temp).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for file in files {
                let _ = std::fs::remove_file(file);
            }
        })
        .await;
    }
}

impl Drop for SongUpload {
    /// A handler that went away (its client left) still cleans up.
    fn drop(&mut self) {
        remove_off_runtime(self.pending.drain(..).map(|(temp, _)| temp).collect());
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

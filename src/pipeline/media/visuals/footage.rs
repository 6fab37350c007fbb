//! The local footage library: clips and images named by what they show,
//! matched against a scene's visual query by the words of their names.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::pipeline::media::VisualKind;
use crate::pipeline::media::text::{self, stem};

const VIDEO_EXTS: &[&str] = &["mp4", "mov", "m4v", "webm", "mkv"];
const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

/// A file of a media library with the words of its name.
pub struct LibraryItem {
    /// The file.
    pub path: PathBuf,
    /// Stemmed words of its name.
    pub words: HashSet<String>,
    /// Still or clip, by extension.
    pub kind: VisualKind,
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Words of a file name, stemmed, for matching against queries and moods.
pub fn name_words(path: &Path) -> HashSet<String> {
    let stem_name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    text::words(&stem_name.replace(['_', '-'], " "))
        .iter()
        .map(|w| stem(w))
        .collect()
}

/// Regular, visible files of `dir` and its sub-folders (one level) whose
/// extension is in `exts`, sorted by path so that picks are repeatable.
pub async fn list_media(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&folder).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let Ok(kind) = entry.file_type().await else {
                continue;
            };
            if hidden {
                continue;
            }
            if kind.is_dir() && depth == 0 {
                folders.push((path, 1));
            } else if kind.is_file() && exts.contains(&extension(&path).as_str()) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub async fn footage_library(dir: &Path) -> Vec<LibraryItem> {
    let mut exts: Vec<&str> = VIDEO_EXTS.to_vec();
    exts.extend(IMAGE_EXTS);
    list_media(dir, &exts)
        .await
        .into_iter()
        .map(|path| LibraryItem {
            kind: if VIDEO_EXTS.contains(&extension(&path).as_str()) {
                VisualKind::Clip
            } else {
                VisualKind::Still
            },
            words: name_words(&path),
            path,
        })
        .collect()
}

/// The library items that share words with `query`, best first; among
/// equals, ones not used yet come first.
pub fn rank<'a>(
    items: &'a [LibraryItem],
    query: &str,
    used: &HashSet<PathBuf>,
) -> Vec<&'a LibraryItem> {
    let wanted: HashSet<String> = text::words(query).iter().map(|w| stem(w)).collect();
    let mut scored: Vec<(usize, bool, &LibraryItem)> = items
        .iter()
        .map(|item| {
            (
                item.words.intersection(&wanted).count(),
                used.contains(&item.path),
                item,
            )
        })
        .filter(|(score, _, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_items_rank_by_shared_words() {
        let items: Vec<LibraryItem> = ["ocean-waves.mp4", "city_night.mp4", "Ocean Sunset.jpg"]
            .iter()
            .map(|name| LibraryItem {
                path: PathBuf::from(name),
                words: name_words(Path::new(name)),
                kind: VisualKind::Clip,
            })
            .collect();
        let used = HashSet::new();
        let ranked = rank(&items, "oceans waves", &used);
        assert_eq!(ranked[0].path, PathBuf::from("ocean-waves.mp4"));
        assert_eq!(ranked.len(), 2);
        assert!(rank(&items, "mountains", &used).is_empty());
    }
}

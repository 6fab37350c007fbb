//! visuals: something to show for each scene, and the music bed.
//!
//! For each scene, in order of preference: a clip or image from the local
//! footage library whose file name matches the scene's visual query, a clip
//! from Pexels when an API key is set, and otherwise a title card rendered
//! with ffmpeg (a mood-coloured gradient with the scene's key line).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::process::Command;

use super::text::{self, stem};
use super::tools::{self, Tool};
use super::{MediaEnv, MusicPick, Plan, ScenePlan, SceneVisual, VisualKind};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};

pub struct Visuals(pub Arc<MediaEnv>);

const VIDEO_EXTS: &[&str] = &["mp4", "mov", "m4v", "webm", "mkv"];
const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];
pub const AUDIO_EXTS: &[&str] = &["mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"];

/// Largest stock clip downloaded, in bytes.
const MAX_DOWNLOAD: u64 = 200 * 1024 * 1024;

/// A file of a media library with the words of its name.
struct LibraryItem {
    path: PathBuf,
    words: HashSet<String>,
    kind: VisualKind,
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

async fn footage_library(dir: &Path) -> Vec<LibraryItem> {
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
fn rank<'a>(
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

/// Gradient colours of a title card by mood.
fn palette(mood: &str) -> (&'static str, &'static str) {
    const PALETTES: &[(&str, (&str, &str))] = &[
        ("epic", ("0x1a0b2e", "0xd9480f")),
        ("calm", ("0x0b3d5c", "0x5fb3b3")),
        ("upbeat", ("0xff6b6b", "0xffb347")),
        ("dark", ("0x0f0f1a", "0x4a1c40")),
        ("neutral", ("0x1e3c72", "0x2a5298")),
    ];
    PALETTES
        .iter()
        .find(|(key, _)| mood.contains(key))
        .map(|(_, p)| *p)
        .unwrap_or_else(|| {
            let hash = mood
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            PALETTES[hash % PALETTES.len()].1
        })
}

/// Links the configured font into the job folder as `font.ttf`, so that
/// filter graphs can name it without escaping.
pub async fn ensure_font(env: &MediaEnv, work_dir: &Path) -> Result<(), StageError> {
    let font = &env.config.font_path;
    if !font.is_file() {
        return Err(StageError::failed(format!(
            "The font {} was not found. Install it with: sudo apt-get install -y fonts-dejavu-core \
             (or set FONT_PATH to a TrueType font).",
            font.display()
        )));
    }
    let link = work_dir.join("font.ttf");
    if tokio::fs::symlink_metadata(&link).await.is_ok() {
        return Ok(());
    }
    if tokio::fs::symlink(font, &link).await.is_err() {
        tokio::fs::copy(font, &link)
            .await
            .map_err(|err| StageError::failed(format!("Could not copy the font: {err}")))?;
    }
    Ok(())
}

/// Font size for card text, relative to the frame.
pub fn card_font_size(frame: (u32, u32)) -> u32 {
    (frame.0.min(frame.1) / 11).max(12)
}

/// Characters per line that fit across the frame at `font_size`.
pub fn chars_per_line(frame: (u32, u32), font_size: u32) -> usize {
    ((f64::from(frame.0) * 0.86) / (f64::from(font_size) * 0.6))
        .floor()
        .max(8.0) as usize
}

impl Visuals {
    /// Renders a title card for `scene` into the job folder.
    async fn title_card(
        &self,
        ctx: &StageContext,
        scene: &ScenePlan,
        frame: (u32, u32),
        out: &Path,
    ) -> Result<(), StageError> {
        let env = &self.0;
        ensure_font(env, ctx.work_dir()).await?;
        let (w, h) = frame;
        let size = card_font_size(frame);
        let mut lines = text::wrap(&scene.key_line, chars_per_line(frame, size));
        lines.truncate(4);
        let line_h = f64::from(size) * 1.3;
        // Keep the card's text clear of centred subtitles.
        let centre = if ctx.request().subtitles_position.as_deref() == Some("center") {
            0.28
        } else {
            0.42
        };
        let top = f64::from(h) * centre - line_h * lines.len() as f64 / 2.0;
        let text_dir = ctx.work_dir().join("text");
        tokio::fs::create_dir_all(&text_dir).await.map_err(|err| {
            StageError::failed(format!("Could not create {}: {err}", text_dir.display()))
        })?;
        let (c0, c1) = palette(&scene.mood);
        let mut filters = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let name = format!("text/card-{:03}-{i}.txt", scene.index + 1);
            tokio::fs::write(ctx.work_dir().join(&name), line)
                .await
                .map_err(|err| StageError::failed(format!("Could not write {name}: {err}")))?;
            filters.push(format!(
                "drawtext=fontfile=font.ttf:textfile={name}:expansion=none:fontsize={size}:\
                 fontcolor=white:shadowcolor=black@0.6:shadowx=3:shadowy=3:\
                 x=(w-text_w)/2:y={:.0}",
                top + line_h * i as f64
            ));
        }
        let source = format!(
            "gradients=s={w}x{h}:c0={c0}:c1={c1}:x0=0:y0=0:x1={w}:y1={h}:nb_colors=2:duration=1"
        );
        let ffmpeg = env.tools.path(Tool::Ffmpeg)?;
        let mut cmd = Command::new(ffmpeg);
        cmd.current_dir(ctx.work_dir()).args([
            "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &source,
        ]);
        if !filters.is_empty() {
            cmd.args(["-vf", &filters.join(",")]);
        }
        cmd.args(["-frames:v", "1", "-update", "1"]).arg(out);
        tools::run(&mut cmd, None, ctx.token(), "ffmpeg (title card)")
            .await
            .map(drop)
    }

    /// Searches Pexels for a clip and downloads the best-sized file.
    async fn pexels(
        &self,
        ctx: &StageContext,
        query: &str,
        frame: (u32, u32),
        out: &Path,
    ) -> Result<(), String> {
        let config = &self.0.config;
        let orientation = match frame.0.cmp(&frame.1) {
            std::cmp::Ordering::Less => "portrait",
            std::cmp::Ordering::Greater => "landscape",
            std::cmp::Ordering::Equal => "square",
        };
        let url = format!(
            "{}/videos/search",
            config.pexels_base_url.trim_end_matches('/')
        );
        let search = self
            .0
            .http
            .get(&url)
            .header("Authorization", &config.pexels_api_key)
            .query(&[
                ("query", query),
                ("per_page", "5"),
                ("orientation", orientation),
            ])
            .send();
        let response = tokio::select! {
            r = search => r.map_err(|err| format!("Pexels could not be reached: {err}"))?,
            _ = ctx.cancelled() => return Err("cancelled".into()),
        };
        if !response.status().is_success() {
            return Err(format!("Pexels answered {}", response.status()));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| "Pexels answered with something other than JSON".to_string())?;
        let link = best_pexels_file(&body, frame.1).ok_or("Pexels found no clip")?;
        let mut response = self
            .0
            .http
            .get(&link)
            .send()
            .await
            .map_err(|err| format!("the Pexels clip could not be downloaded: {err}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the Pexels clip download answered {}",
                response.status()
            ));
        }
        let mut file = tokio::fs::File::create(out)
            .await
            .map_err(|err| format!("could not create {}: {err}", out.display()))?;
        let mut written: u64 = 0;
        loop {
            let chunk = tokio::select! {
                c = response.chunk() => c.map_err(|err| format!("the download broke off: {err}"))?,
                _ = ctx.cancelled() => return Err("cancelled".into()),
            };
            let Some(chunk) = chunk else { break };
            written += chunk.len() as u64;
            if written > MAX_DOWNLOAD {
                return Err("the Pexels clip is too large".into());
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|err| format!("could not write the clip: {err}"))?;
        }
        Ok(())
    }

    /// A track from the music library for `mood`: one whose name shares a
    /// word with the mood, else any track (a fallback). Unreadable files
    /// are passed over.
    async fn pick_music(
        &self,
        ctx: &StageContext,
        mood: &str,
    ) -> Result<Option<(PathBuf, bool)>, StageError> {
        let tracks = list_media(&self.0.config.music_dir, AUDIO_EXTS).await;
        let mood_words: HashSet<String> = text::words(&mood.replace('_', " "))
            .iter()
            .map(|w| stem(w))
            .collect();
        let (matching, others): (Vec<PathBuf>, Vec<PathBuf>) = tracks
            .into_iter()
            .partition(|t| !name_words(t).is_disjoint(&mood_words));
        // Spread fallback picks over the library, but repeatably per job.
        let seed = ctx.job_id().as_u128() as usize;
        let mut rotated = others.clone();
        if !rotated.is_empty() {
            let k = seed % rotated.len();
            rotated.rotate_left(k);
        }
        let candidates = matching
            .into_iter()
            .map(|t| (t, false))
            .chain(rotated.into_iter().map(|t| (t, true)));
        for (track, fallback) in candidates {
            match tools::probe(&self.0.tools, &track, ctx.token()).await {
                Ok(p) if p.has_audio && p.duration > 0.0 => return Ok(Some((track, fallback))),
                Err(StageError::Cancelled) => return Err(StageError::Cancelled),
                _ => continue,
            }
        }
        Ok(None)
    }

    async fn music(&self, ctx: &mut StageContext, mood: &str) -> Result<(), StageError> {
        let Some((track, fallback)) = self.pick_music(ctx, mood).await? else {
            ctx.warn(format!(
                "No music track is available in {}; the video will have no music.",
                self.0.config.music_dir.display()
            ))
            .await?;
            return Ok(());
        };
        let name = track
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        ctx.info(format!("Adding background music: {name}")).await?;
        let track_mood = if fallback {
            "any".to_string()
        } else {
            mood.to_string()
        };
        let mut fields = Map::new();
        fields.insert("track".into(), json!(name));
        fields.insert("mood".into(), json!(track_mood));
        fields.insert("requestedMood".into(), json!(mood));
        fields.insert("fallback".into(), json!(fallback));
        let record = json!({ "track": name, "mood": track_mood, "requestedMood": mood, "fallback": fallback,
                             "file": track.display().to_string() });
        ctx.emit(
            "music",
            format!("Music selected: {name}"),
            fields,
            Some(("musicTrack", record)),
        )
        .await?;
        let mut fields = Map::new();
        fields.insert("provider".into(), json!("library"));
        fields.insert("prompt".into(), json!(mood));
        fields.insert(
            "metadata".into(),
            json!({ "file": track.file_name().and_then(|f| f.to_str()) }),
        );
        fields.insert("fallback".into(), json!(fallback));
        ctx.emit(
            "music_resolved",
            "Music resolved from the library",
            fields,
            None,
        )
        .await?;
        ctx.scratch().insert(MusicPick { file: track });
        Ok(())
    }
}

/// The link of the video file whose height is closest above `height`, else
/// the largest.
fn best_pexels_file(body: &Value, height: u32) -> Option<String> {
    let files: Vec<&Value> = body["videos"]
        .as_array()?
        .iter()
        .flat_map(|v| v["video_files"].as_array().into_iter().flatten())
        .filter(|f| f["file_type"].as_str().is_none_or(|t| t == "video/mp4"))
        .filter(|f| f["link"].is_string())
        .collect();
    let h = |f: &&Value| f["height"].as_u64().unwrap_or(0) as u32;
    files
        .iter()
        .filter(|f| h(f) >= height)
        .min_by_key(|f| h(f))
        .or_else(|| files.iter().max_by_key(|f| h(f)))
        .and_then(|f| f["link"].as_str().map(str::to_string))
}

#[async_trait]
impl Stage for Visuals {
    fn name(&self) -> &str {
        "visuals"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let env = self.0.clone();
        let plan = ctx
            .scratch()
            .get::<Plan>()
            .cloned()
            .ok_or_else(|| StageError::failed("The director produced no scene plan."))?;
        let frame = env.frame(ctx.request());
        let library = footage_library(&env.config.footage_dir).await;
        let pexels = !env.config.pexels_api_key.trim().is_empty();
        let n = plan.scenes.len();
        let mut used = HashSet::new();
        let mut visuals = Vec::with_capacity(n);
        let mut clips = 0;
        for scene in &plan.scenes {
            ctx.checkpoint()?;
            ctx.info(format!("Searching for footage: {}", scene.visual_query))
                .await?;
            let mut chosen: Option<(PathBuf, VisualKind, &str, &str)> = None;
            for item in rank(&library, &scene.visual_query, &used) {
                match tools::probe(&env.tools, &item.path, ctx.token()).await {
                    Ok(p)
                        if p.video.is_some()
                            && (item.kind == VisualKind::Still || p.duration > 0.2) =>
                    {
                        let visual_type = if item.kind == VisualKind::Clip {
                            "stock_video"
                        } else {
                            "stock_image"
                        };
                        chosen = Some((item.path.clone(), item.kind, visual_type, "library"));
                        break;
                    }
                    Err(StageError::Cancelled) => return Err(StageError::Cancelled),
                    _ => continue,
                }
            }
            if chosen.is_none() && pexels {
                let out = ctx
                    .work_dir()
                    .join(format!("scene-{:03}.mp4", scene.index + 1));
                match self.pexels(ctx, &scene.visual_query, frame, &out).await {
                    Ok(()) => chosen = Some((out, VisualKind::Clip, "stock_video", "pexels")),
                    Err(_) if ctx.token().is_cancelled() => return Err(StageError::Cancelled),
                    Err(why) => {
                        ctx.warn(format!(
                            "No Pexels clip for \"{}\": {why}",
                            scene.visual_query
                        ))
                        .await?;
                    }
                }
            }
            let (file, kind, visual_type, source) = match chosen {
                Some(found) => {
                    clips += 1;
                    found
                }
                None => {
                    let out = ctx
                        .work_dir()
                        .join(format!("scene-{:03}.png", scene.index + 1));
                    self.title_card(ctx, scene, frame, &out).await?;
                    (out, VisualKind::Still, "title_card", "generated")
                }
            };
            used.insert(file.clone());
            let shown = if source == "library" {
                file.display().to_string()
            } else {
                file.file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut fields = Map::new();
            fields.insert("sceneIndex".into(), json!(scene.index));
            fields.insert("visualType".into(), json!(visual_type));
            fields.insert("path".into(), json!(shown));
            fields.insert("source".into(), json!(source));
            fields.insert("query".into(), json!(scene.visual_query));
            ctx.emit(
                "asset",
                format!("Scene {} visual: {visual_type} ({source})", scene.index + 1),
                fields,
                None,
            )
            .await?;
            visuals.push(SceneVisual { file, kind });
            ctx.progress(
                0.85 * visuals.len() as f64 / n as f64,
                format!("Prepared visuals for scene {}/{n}", visuals.len()),
            )
            .await?;
        }
        if clips < n {
            ctx.warn(format!(
                "Fewer video clips found than requested: {clips} of {n} scenes have footage; \
                 the others use generated title cards."
            ))
            .await?;
        }
        ctx.log(
            crate::model::Level::Success,
            format!("Downloaded {clips} video clips"),
            Some(json!({ "clipCount": clips, "sceneCount": n })),
        )
        .await?;
        if ctx.request().use_music {
            self.music(ctx, &plan.music_mood).await?;
        }
        ctx.scratch().insert(visuals);
        Ok(StageOutcome::done(format!(
            "{n} scenes: {clips} footage, {} title cards",
            n - clips
        )))
    }
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

    #[test]
    fn pexels_file_closest_above_the_frame_height_wins() {
        let body = json!({"videos": [{"video_files": [
            {"link": "a", "height": 640, "file_type": "video/mp4"},
            {"link": "b", "height": 1920, "file_type": "video/mp4"},
            {"link": "c", "height": 1280, "file_type": "video/mp4"}
        ]}]});
        assert_eq!(best_pexels_file(&body, 1080).as_deref(), Some("c"));
        assert_eq!(best_pexels_file(&body, 4000).as_deref(), Some("b"));
    }
}

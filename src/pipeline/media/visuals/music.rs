//! The music bed: a track from the music library picked by the plan's
//! mood, recorded for the render and the job's data.

use std::collections::HashSet;
use std::path::PathBuf;

use super::footage::{list_media, name_words};
use crate::model::{MusicFile, MusicResolved, MusicTrack};
use crate::pipeline::media::text::{self, stem};
use crate::pipeline::media::{MediaEnv, MusicPick};
use crate::pipeline::{StageContext, StageError};
use crate::tools::{ToolError, probe};

/// Audio files a music library may hold.
const AUDIO_EXTS: &[&str] = &["mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"];

/// A track from the music library for `mood`: one whose name shares a
/// word with the mood, else any track (a fallback). Unreadable files are
/// passed over.
async fn pick(
    env: &MediaEnv,
    ctx: &StageContext,
    mood: &str,
) -> Result<Option<(PathBuf, bool)>, StageError> {
    let tracks = list_media(&env.config.music_dir, AUDIO_EXTS).await;
    let mood_words: HashSet<String> = text::words(&mood.replace('_', " "))
        .iter()
        .map(|w| stem(w))
        .collect();
    let (matching, mut others): (Vec<PathBuf>, Vec<PathBuf>) = tracks
        .into_iter()
        .partition(|t| !name_words(t).is_disjoint(&mood_words));
    // Spread fallback picks over the library, but repeatably per job.
    if !others.is_empty() {
        let k = ctx.job_id().as_u128() as usize % others.len();
        others.rotate_left(k);
    }
    let candidates = matching
        .into_iter()
        .map(|t| (t, false))
        .chain(others.into_iter().map(|t| (t, true)));
    for (track, fallback) in candidates {
        match probe::probe(&env.tools, &track, ctx.token()).await {
            Ok(p) if p.has_audio && p.duration > 0.0 => return Ok(Some((track, fallback))),
            Err(ToolError::Cancelled) => return Err(StageError::Cancelled),
            _ => continue,
        }
    }
    Ok(None)
}

/// Picks the music bed for `mood` and records it, or warns that there is
/// none.
pub async fn add(env: &MediaEnv, ctx: &mut StageContext, mood: &str) -> Result<(), StageError> {
    let Some((track, fallback)) = pick(env, ctx, mood).await? else {
        ctx.warn(format!(
            "No music track is available in {}; the video will have no music.",
            env.config.music_dir.display()
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
    let chosen = MusicTrack {
        track: name.clone(),
        mood: if fallback { "any".into() } else { mood.into() },
        requested_mood: mood.into(),
        fallback,
        file: track.display().to_string(),
    };
    ctx.emit(format!("Music selected: {name}"), &chosen).await?;
    let resolved = MusicResolved {
        provider: "library".into(),
        prompt: mood.into(),
        metadata: MusicFile {
            file: track
                .file_name()
                .and_then(|f| f.to_str())
                .map(str::to_string),
        },
        fallback,
    };
    ctx.emit("Music resolved from the library", &resolved)
        .await?;
    ctx.scratch().insert(MusicPick { file: track });
    Ok(())
}

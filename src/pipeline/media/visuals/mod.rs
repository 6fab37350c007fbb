//! visuals: something to show for each scene, and the music bed.
//!
//! For each scene, in order of preference: a clip or image from the local
//! [`footage`] library whose file name matches the scene's visual query, a
//! clip from [`pexels`] when an API key is set, and otherwise a
//! [`title_card`] rendered with ffmpeg. The [`music`] bed comes last.

mod footage;
mod music;
mod pexels;
mod title_card;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::captions::Look;
use super::fonts::{FontMetrics, ensure_font};
use super::{MediaEnv, SceneVisual, VisualKind};
use crate::model::{Asset, AssetSource, EventKind, Level, Plan, PlannedScene, VisualType};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::{ToolError, probe};
use footage::{LibraryItem, footage_library, rank};

/// The visuals stage.
pub struct Visuals(pub Arc<MediaEnv>);

/// The best library item for `scene` that ffprobe can read.
async fn from_library(
    env: &MediaEnv,
    ctx: &StageContext,
    library: &[LibraryItem],
    scene: &PlannedScene,
    used: &HashSet<PathBuf>,
) -> Result<Option<(PathBuf, VisualKind)>, StageError> {
    for item in rank(library, &scene.visual_query, used) {
        match probe::probe(&env.tools, &item.path, ctx.token()).await {
            Ok(p) if p.video.is_some() && (item.kind == VisualKind::Still || p.duration > 0.2) => {
                return Ok(Some((item.path.clone(), item.kind)));
            }
            Err(ToolError::Cancelled) => return Err(StageError::Cancelled),
            _ => continue,
        }
    }
    Ok(None)
}

/// The font, linked into the job folder for libass and measured.
pub async fn load_font(env: &MediaEnv, ctx: &StageContext) -> Result<FontMetrics, StageError> {
    ensure_font(env, ctx.work_dir()).await?;
    let path = env.config.font_path.clone();
    tokio::task::spawn_blocking(move || FontMetrics::load(&path))
        .await
        .map_err(|err| StageError::failed(format!("Reading the font stopped: {err}")))?
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
        let font = load_font(&env, ctx).await?;
        let request = ctx.request().clone();
        let look = Look {
            frame,
            position: request.subtitles_position.as_deref().unwrap_or("bottom"),
            highlight: "white",
            font: &font,
        };
        let use_pexels = !env.config.pexels_api_key.trim().is_empty();
        let n = plan.scenes.len();
        let mut used = HashSet::new();
        let mut visuals = Vec::with_capacity(n);
        let mut clips = 0;
        for scene in &plan.scenes {
            ctx.checkpoint()?;
            ctx.mark(
                EventKind::FootageSearch,
                format!("Searching for footage: {}", scene.visual_query),
            )
            .await?;
            let mut chosen = from_library(&env, ctx, &library, scene, &used)
                .await?
                .map(|(file, kind)| (file, kind, AssetSource::Library));
            if chosen.is_none() && use_pexels {
                let out = ctx
                    .work_dir()
                    .join(format!("scene-{:03}.mp4", scene.index + 1));
                match pexels::download(&env, ctx, &scene.visual_query, frame, &out).await {
                    Ok(()) => chosen = Some((out, VisualKind::Clip, AssetSource::Pexels)),
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
            let (file, kind, source) = match chosen {
                Some(found) => {
                    clips += 1;
                    found
                }
                None => {
                    let out = ctx
                        .work_dir()
                        .join(format!("scene-{:03}.png", scene.index + 1));
                    title_card::render(&env, ctx, scene, &look, &out).await?;
                    (out, VisualKind::Still, AssetSource::Generated)
                }
            };
            let visual_type = match (source, kind) {
                (AssetSource::Generated, _) => VisualType::TitleCard,
                (_, VisualKind::Clip) => VisualType::StockVideo,
                (_, VisualKind::Still) => VisualType::StockImage,
            };
            used.insert(file.clone());
            let path = if source == AssetSource::Library {
                file.display().to_string()
            } else {
                file.file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let asset = Asset {
                scene_index: scene.index,
                visual_type,
                path,
                source,
                query: scene.visual_query.clone(),
            };
            let message = format!(
                "Scene {} visual: {} ({})",
                scene.index + 1,
                visual_type.as_str(),
                source.as_str()
            );
            ctx.emit(message, &asset).await?;
            visuals.push(SceneVisual {
                file,
                kind,
                title_card: source == AssetSource::Generated,
            });
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
            Level::Success,
            format!("Downloaded {clips} video clips"),
            Some(json!({ "clipCount": clips, "sceneCount": n })),
        )
        .await?;
        if ctx.request().use_music {
            music::add(&env, ctx, &plan.music_mood).await?;
        }
        ctx.scratch().insert(visuals);
        Ok(StageOutcome::done(format!(
            "{n} scenes: {clips} footage, {} title cards",
            n - clips
        )))
    }
}

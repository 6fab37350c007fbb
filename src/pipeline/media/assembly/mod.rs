//! assembly: word-timed [`captions`], then one ffmpeg render of the
//! [`graph`] to an H.264/AAC MP4, with real progress from ffmpeg's
//! `-progress`. The same process measures what it wrote, for the critic.

mod graph;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::process::Command;

use super::ass;
use super::captions::Look;
use super::fonts::FONTS_DIR;
use super::layout::{CARD_ZOOM, safe_area, zoomed};
use super::visuals::load_font;
use super::{CaptionLayout, FPS, MediaEnv, MusicPick, Narration, Rendered, SceneVisual};
use crate::model::{Plan, VideoMeta, round3};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::{Tool, probe, process};
use graph::{RenderPlan, RenderScene, frame_of};

pub use graph::{MIN_BLACK, MIN_SILENCE};

/// The assembly stage.
pub struct Assembly(pub Arc<MediaEnv>);

/// The ASS script in the job folder.
const CAPTIONS: &str = "captions.ass";

#[async_trait]
impl Stage for Assembly {
    fn name(&self) -> &str {
        "assembly"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let env = self.0.clone();
        let missing = || StageError::failed("An earlier stage left no output to assemble.");
        let plan = ctx.scratch().get::<Plan>().cloned().ok_or_else(missing)?;
        let narration = ctx
            .scratch()
            .get::<Narration>()
            .cloned()
            .ok_or_else(missing)?;
        let visuals = ctx
            .scratch()
            .get::<Vec<SceneVisual>>()
            .cloned()
            .ok_or_else(missing)?;
        let music = ctx.scratch().get::<MusicPick>().map(|m| m.file.clone());
        if visuals.len() != narration.scenes.len() || plan.scenes.len() != visuals.len() {
            return Err(missing());
        }
        ctx.info("Generating subtitles").await?;
        let font = load_font(&env, ctx).await?;
        let request = ctx.request().clone();
        let frame = env.frame(&request);
        let position = request.subtitles_position.as_deref().unwrap_or("bottom");
        let look = Look {
            frame,
            position,
            highlight: request.color.as_deref().unwrap_or("yellow"),
            font: &font,
        };
        let motion = request.motion.unwrap_or(true);
        let words: Vec<&[_]> = narration
            .scenes
            .iter()
            .map(|a| a.words.as_slice())
            .collect();
        let captions = look.captions(&words);
        // Key lines were set on their cards; they move with them.
        let key_lines = visuals
            .iter()
            .zip(&plan.scenes)
            .filter(|(visual, scene)| visual.title_card && !scene.key_line.trim().is_empty())
            .map(|(_, scene)| {
                let bounds = look.key_line(&scene.key_line).2;
                if motion {
                    zoomed(&bounds, frame, CARD_ZOOM)
                } else {
                    bounds
                }
            })
            .collect();
        let layout = CaptionLayout {
            safe: safe_area(frame),
            zone: captions.zone,
            pages: captions.pages.iter().map(|p| p.bounds).collect(),
            key_lines,
        };
        // Frames where the captions change, for a still render.
        let mut cuts: Vec<u64> = captions
            .pages
            .iter()
            .flat_map(|p| p.lines.iter().flatten())
            .flat_map(|w| [frame_of(w.start), frame_of(w.end)])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for (name, content) in [
            (CAPTIONS, captions.script.clone()),
            ("subtitles.srt", ass::srt(&captions.pages)),
        ] {
            tokio::fs::write(ctx.work_dir().join(name), content)
                .await
                .map_err(|err| StageError::io(format!("Could not write {name}"), err))?;
        }

        // Scene lengths in whole frames that add up to the narration's.
        let mut first_frame = 0;
        let scenes: Vec<RenderScene> = visuals
            .iter()
            .zip(&narration.scenes)
            .map(|(visual, audio)| {
                let end = frame_of(audio.start + audio.span);
                let frames = end.saturating_sub(first_frame).max(1);
                first_frame += frames;
                RenderScene { visual, frames }
            })
            .collect();
        let graph = RenderPlan {
            frame,
            scenes,
            narration: &narration.file,
            duration: narration.total,
            narration_gain_db: narration.gain_db,
            music: music.as_deref(),
            motion,
            caption_cuts: &cuts,
            captions: CAPTIONS,
            fonts: FONTS_DIR,
        }
        .graph();
        let graph_file = ctx.work_dir().join("render.filtergraph");
        tokio::fs::write(&graph_file, &graph.filter)
            .await
            .map_err(|err| StageError::io("Could not write the filter graph", err))?;

        ctx.info("Rendering final video with subtitles...").await?;
        let partial = ctx.work_dir().join("output.part.mp4");
        let output = ctx.work_dir().join("output.mp4");
        let ffmpeg = env.tools.path(Tool::Ffmpeg)?;
        let mut cmd = Command::new(ffmpeg);
        cmd.current_dir(ctx.work_dir()).args([
            // The analysis filters report at the info level.
            "-hide_banner",
            "-v",
            "info",
            "-nostdin",
            "-y",
            "-progress",
            "pipe:1",
            "-nostats",
        ]);
        for input in &graph.inputs {
            cmd.args(input);
        }
        cmd.args(["-filter_complex_script", "render.filtergraph"])
            .args(["-map", "[vout]", "-map", "[aout]"])
            .args([
                "-r",
                &FPS.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                &env.config.x264_preset,
            ])
            .args(["-crf", "23", "-pix_fmt", "yuv420p"]);
        if !motion {
            cmd.args(["-tune", "stillimage"]);
        }
        // Nothing moves in a still render, so the quickest motion search
        // loses nothing and saves a quarter of the encode on textured
        // cards. X264_PARAMS comes last and wins.
        let mut params: Vec<&str> = if motion {
            vec![]
        } else {
            vec!["me=dia:subme=1"]
        };
        params.extend(Some(env.config.x264_params.trim()).filter(|p| !p.is_empty()));
        if !params.is_empty() {
            cmd.args(["-x264-params", &params.join(":")]);
        }
        // The native AAC encoder's default coder takes a second per half
        // minute here, on the thread that feeds the video encoder; the fast
        // coder is transparent enough for narration at this bitrate.
        cmd.args([
            "-c:a",
            "aac",
            "-aac_coder",
            "fast",
            "-b:a",
            "160k",
            "-ar",
            "48000",
        ])
        .args(["-movflags", "+faststart", "-shortest"]);
        if let Some(threads) = request.threads {
            cmd.args(["-threads", &threads.to_string()]);
        }
        cmd.arg(&partial);
        let total = narration.total.max(0.1);
        let token = ctx.token().clone();
        let (tx, mut rx) = tokio::sync::watch::channel(0.0);
        let render = process::run_with_progress(&mut cmd, &token, "ffmpeg (render)", tx);
        tokio::pin!(render);
        let log = loop {
            tokio::select! {
                biased;
                result = &mut render => {
                    if result.is_err() {
                        let _ = tokio::fs::remove_file(&partial).await;
                    }
                    break result?;
                }
                Ok(()) = rx.changed() => {
                    let fraction = (*rx.borrow_and_update() / total).min(1.0);
                    ctx.progress(fraction, format!("Rendering: {:.0}%", fraction * 100.0)).await?;
                }
            }
        };
        tokio::fs::rename(&partial, &output)
            .await
            .map_err(|err| StageError::io("Could not move the rendered file", err))?;

        let probe = probe::probe(&env.tools, &output, ctx.token()).await?;
        let video = probe
            .video
            .clone()
            .ok_or_else(|| StageError::failed("The rendered file has no video stream."))?;
        let metadata = VideoMeta {
            duration: Some(round3(probe.duration)),
            width: Some(video.width),
            height: Some(video.height),
            fps: Some((video.fps * 100.0).round() / 100.0),
            size: Some(probe.size),
            video_codec: Some(video.codec.clone()),
            has_audio: Some(probe.has_audio),
            narration_duration: Some(round3(narration.total)),
            subtitle_cues: Some(captions.pages.len()),
        };
        ctx.set_result(
            format!(
                "Rendered {:.1} s at {}x{}",
                probe.duration, video.width, video.height
            ),
            output.display().to_string(),
            metadata,
        )
        .await?;
        let done = format!(
            "{:.1} s video at {}x{}",
            probe.duration, video.width, video.height
        );
        ctx.scratch().insert(Rendered {
            file: output,
            probe,
            log,
            layout,
        });
        Ok(StageOutcome::done(done))
    }
}

//! assembly: [`subtitles`], then one ffmpeg render of the [`graph`] to an
//! H.264/AAC MP4, with real progress from ffmpeg's `-progress`.

mod graph;
mod subtitles;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::process::Command;

use super::fonts::ensure_font;
use super::{FPS, MediaEnv, MusicPick, Narration, Rendered, SceneVisual};
use crate::model::{Plan, VideoMeta, round3};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::{Tool, probe, process};
use graph::{RenderPlan, RenderScene, SubtitleStyle, frame_of};
use subtitles::Cue;

/// The assembly stage.
pub struct Assembly(pub Arc<MediaEnv>);

/// Words per subtitle cue.
const WORDS_PER_CUE: usize = 4;

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
        if visuals.len() != narration.scenes.len() {
            return Err(missing());
        }
        ensure_font(&env, ctx.work_dir()).await?;

        ctx.info("Generating subtitles").await?;
        let cues: Vec<Cue> = plan
            .scenes
            .iter()
            .zip(&narration.scenes)
            .flat_map(|(scene, audio)| {
                subtitles::cues(&scene.narration, audio.start, audio.duration, WORDS_PER_CUE)
            })
            .collect();
        let srt = ctx.work_dir().join("subtitles.srt");
        tokio::fs::write(&srt, subtitles::srt(&cues))
            .await
            .map_err(|err| StageError::io(format!("Could not write {}", srt.display()), err))?;

        let frame = env.frame(ctx.request());
        let mut first_frame = 0;
        let scenes: Vec<RenderScene> = visuals
            .iter()
            .zip(&narration.scenes)
            .map(|(visual, audio)| {
                let end = frame_of(audio.start + audio.span);
                let scene = RenderScene {
                    visual,
                    first_frame,
                    frames: end.saturating_sub(first_frame).max(1),
                };
                first_frame += scene.frames;
                scene
            })
            .collect();
        let request = ctx.request().clone();
        let render = RenderPlan {
            frame,
            scenes,
            cues: &cues,
            narration: &narration.file,
            narration_gain_db: narration.gain_db,
            music: music.as_deref(),
            style: SubtitleStyle {
                position: request
                    .subtitles_position
                    .clone()
                    .unwrap_or_else(|| "bottom".into()),
                color: request.color.clone().unwrap_or_else(|| "white".into()),
                font_size: (frame.0.min(frame.1) / 14).max(10),
            },
        };
        let graph = render.graph();
        tokio::fs::create_dir_all(ctx.work_dir().join("text"))
            .await
            .map_err(|err| StageError::io("Could not create the text folder", err))?;
        for (name, content) in &graph.files {
            tokio::fs::write(ctx.work_dir().join(name), content)
                .await
                .map_err(|err| StageError::io(format!("Could not write {name}"), err))?;
        }
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
            "-v",
            "error",
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
            .args(["-tune", "stillimage", "-crf", "23", "-pix_fmt", "yuv420p"]);
        if !env.config.x264_params.trim().is_empty() {
            cmd.args(["-x264-params", env.config.x264_params.trim()]);
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
        loop {
            tokio::select! {
                biased;
                result = &mut render => {
                    if result.is_err() {
                        let _ = tokio::fs::remove_file(&partial).await;
                    }
                    result?;
                    break;
                }
                Ok(()) = rx.changed() => {
                    let fraction = (*rx.borrow_and_update() / total).min(1.0);
                    ctx.progress(fraction, format!("Rendering: {:.0}%", fraction * 100.0)).await?;
                }
            }
        }
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
            subtitle_cues: Some(cues.len()),
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
        ctx.scratch().insert(Rendered { file: output });
        Ok(StageOutcome::done(format!(
            "{:.1} s video at {}x{}",
            probe.duration, video.width, video.height
        )))
    }
}

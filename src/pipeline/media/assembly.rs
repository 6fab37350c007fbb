//! assembly: subtitles, then one ffmpeg render to an H.264/AAC MP4.
//!
//! The render is built for static scenes. A still is decoded once, scaled
//! once, and each subtitle cue is drawn onto it once; the `loop` filter then
//! repeats that frame for the cue's length. So between cue changes no frame
//! is decoded, scaled or composited again, and the encoder is the only
//! per-frame cost. Clips are scaled per frame and get their cues with timed
//! `drawtext`. The narration gets the gain its measured loudness calls for
//! (see tts) and is mixed with the music ducked under it (sidechain
//! compression).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tokio::process::Command;

use super::text::{self, Cue};
use super::tools::{self, Tool};
use super::visuals::ensure_font;
use super::{FPS, MediaEnv, MusicPick, Narration, Plan, Rendered, SceneVisual, VisualKind};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};

pub struct Assembly(pub Arc<MediaEnv>);

/// Words per subtitle cue.
const WORDS_PER_CUE: usize = 4;

/// Where and how subtitles are drawn.
pub struct SubtitleStyle {
    pub position: String,
    pub color: String,
    pub font_size: u32,
}

/// One scene as the render sees it.
pub struct RenderScene<'a> {
    pub visual: &'a SceneVisual,
    /// First frame and number of frames of the scene.
    pub first_frame: u64,
    pub frames: u64,
}

/// Everything one render needs.
pub struct RenderPlan<'a> {
    pub frame: (u32, u32),
    pub scenes: Vec<RenderScene<'a>>,
    pub cues: &'a [Cue],
    pub narration: &'a Path,
    pub narration_gain_db: f64,
    pub music: Option<&'a Path>,
    pub style: SubtitleStyle,
}

/// Text files the graph reads (`textfile=`), and the graph itself.
pub struct Graph {
    pub files: Vec<(String, String)>,
    pub filter: String,
    pub inputs: Vec<Vec<String>>,
}

fn frame_of(secs: f64) -> u64 {
    (secs * f64::from(FPS)).round().max(0.0) as u64
}

impl RenderPlan<'_> {
    /// `drawtext` filters for one cue's lines, `enable`d between two times
    /// when the scene is a clip.
    fn cue_filters(
        &self,
        cue_index: usize,
        lines: usize,
        enable: Option<(f64, f64)>,
    ) -> Vec<String> {
        let (_, h) = self.frame;
        let size = self.style.font_size;
        let line_h = f64::from(size) * 1.25;
        let block = line_h * lines as f64;
        let top = match self.style.position.as_str() {
            "top" => f64::from(h) * 0.10,
            "center" => (f64::from(h) - block) / 2.0,
            _ => f64::from(h) * 0.80 - block,
        };
        let border = (size / 12).max(2);
        (0..lines)
            .map(|l| {
                let mut f = format!(
                    "drawtext=fontfile=font.ttf:textfile=text/cue-{cue_index:04}-{l}.txt:expansion=none:\
                     fontsize={size}:fontcolor={}:borderw={border}:bordercolor=black:\
                     x=(w-text_w)/2:y={:.0}",
                    self.style.color,
                    top + line_h * l as f64
                );
                if let Some((a, b)) = enable {
                    f.push_str(&format!(":enable='between(t,{a:.3},{b:.3})'"));
                }
                f
            })
            .collect()
    }

    /// The whole filter graph and the inputs in order.
    pub fn graph(&self) -> Graph {
        let (w, h) = self.frame;
        let fit =
            format!("scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1");
        let per_line = super::visuals::chars_per_line(self.frame, self.style.font_size);
        let mut files = Vec::new();
        let cue_lines: Vec<usize> = self
            .cues
            .iter()
            .enumerate()
            .map(|(i, cue)| {
                let mut lines = text::wrap(&cue.text, per_line);
                lines.truncate(3);
                for (l, line) in lines.iter().enumerate() {
                    files.push((format!("text/cue-{i:04}-{l}.txt"), line.clone()));
                }
                lines.len()
            })
            .collect();
        let mut inputs = Vec::new();
        let mut parts = Vec::new();
        let mut segments = Vec::new();
        for (s, scene) in self.scenes.iter().enumerate() {
            let file = scene.visual.file.display().to_string();
            let (f0, f1) = (scene.first_frame, scene.first_frame + scene.frames);
            // Cues overlapping this scene, clipped to it, in frames.
            let overlapping: Vec<(usize, u64, u64)> = self
                .cues
                .iter()
                .enumerate()
                .map(|(i, c)| (i, frame_of(c.start).max(f0), frame_of(c.end).min(f1)))
                .filter(|(_, a, b)| a < b)
                .collect();
            match scene.visual.kind {
                VisualKind::Still => {
                    inputs.push(vec!["-i".into(), file]);
                    // Stretches of the scene with one cue (or none) each.
                    let mut cuts = vec![f0, f1];
                    for (_, a, b) in &overlapping {
                        cuts.push(*a);
                        cuts.push(*b);
                    }
                    cuts.sort_unstable();
                    cuts.dedup();
                    let stretches: Vec<(u64, u64)> = cuts
                        .windows(2)
                        .map(|p| (p[0], p[1]))
                        .filter(|(a, b)| b > a)
                        .collect();
                    let mut labels = String::new();
                    for j in 0..stretches.len() {
                        labels.push_str(&format!("[s{s}_{j}]"));
                    }
                    parts.push(format!(
                        "[{s}:v]{fit},format=yuv420p,split={}{labels}",
                        stretches.len()
                    ));
                    for (j, (a, b)) in stretches.iter().enumerate() {
                        let mut chain = Vec::new();
                        if let Some((i, _, _)) =
                            overlapping.iter().find(|(_, ca, cb)| ca <= a && cb >= b)
                        {
                            chain.extend(self.cue_filters(*i, cue_lines[*i], None));
                        }
                        chain.push(format!("loop=loop={}:size=1", b - a - 1));
                        chain.push(format!("settb=1/{FPS}"));
                        chain.push("setpts=N".into());
                        parts.push(format!("[s{s}_{j}]{}[g{s}_{j}]", chain.join(",")));
                        segments.push(format!("[g{s}_{j}]"));
                    }
                }
                VisualKind::Clip => {
                    inputs.push(vec!["-stream_loop".into(), "-1".into(), "-i".into(), file]);
                    let mut chain = vec![
                        fit.clone(),
                        format!("fps={FPS}"),
                        "format=yuv420p".into(),
                        format!("trim=end_frame={}", scene.frames),
                        format!("settb=1/{FPS}"),
                        "setpts=N".into(),
                    ];
                    for (i, a, b) in &overlapping {
                        let t = |f: u64| (f - f0) as f64 / f64::from(FPS);
                        chain.extend(self.cue_filters(
                            *i,
                            cue_lines[*i],
                            Some((t(*a), t(*b) - 0.001)),
                        ));
                    }
                    parts.push(format!("[{s}:v]{}[g{s}]", chain.join(",")));
                    segments.push(format!("[g{s}]"));
                }
            }
        }
        parts.push(format!(
            "{}concat=n={}:v=1:a=0[vout]",
            segments.concat(),
            segments.len()
        ));
        let narration = self.scenes.len();
        inputs.push(vec!["-i".into(), self.narration.display().to_string()]);
        let stereo = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo";
        let gain = format!("volume={:.2}dB", self.narration_gain_db);
        match self.music {
            Some(music) => {
                inputs.push(vec![
                    "-stream_loop".into(),
                    "-1".into(),
                    "-i".into(),
                    music.display().to_string(),
                ]);
                let m = narration + 1;
                parts.push(format!("[{narration}:a]{stereo},{gain},asplit=2[n1][n2]"));
                parts.push(format!("[{m}:a]{stereo},volume=0.35[bed]"));
                parts.push(
                    "[bed][n2]sidechaincompress=threshold=0.02:ratio=10:attack=15:release=350[duck]"
                        .into(),
                );
                parts.push("[n1][duck]amix=inputs=2:duration=first:normalize=0[aout]".into());
            }
            None => parts.push(format!("[{narration}:a]{stereo},{gain}[aout]")),
        }
        Graph {
            files,
            filter: parts.join(";\n"),
            inputs,
        }
    }
}

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
                text::cues(&scene.narration, audio.start, audio.duration, WORDS_PER_CUE)
            })
            .collect();
        let srt = ctx.work_dir().join("subtitles.srt");
        tokio::fs::write(&srt, text::srt(&cues))
            .await
            .map_err(|err| {
                StageError::failed(format!("Could not write {}: {err}", srt.display()))
            })?;

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
            .map_err(|err| {
                StageError::failed(format!("Could not create the text folder: {err}"))
            })?;
        for (name, content) in &graph.files {
            tokio::fs::write(ctx.work_dir().join(name), content)
                .await
                .map_err(|err| StageError::failed(format!("Could not write {name}: {err}")))?;
        }
        let graph_file = ctx.work_dir().join("render.filtergraph");
        tokio::fs::write(&graph_file, &graph.filter)
            .await
            .map_err(|err| {
                StageError::failed(format!("Could not write the filter graph: {err}"))
            })?;

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
        let render = tools::run_with_progress(&mut cmd, &token, "ffmpeg (render)", tx);
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
        tokio::fs::rename(&partial, &output).await.map_err(|err| {
            StageError::failed(format!("Could not move the rendered file: {err}"))
        })?;

        let probe = tools::probe(&env.tools, &output, ctx.token()).await?;
        let video = probe
            .video
            .clone()
            .ok_or_else(|| StageError::failed("The rendered file has no video stream."))?;
        let metadata = json!({
            "duration": (probe.duration * 1000.0).round() / 1000.0,
            "width": video.width,
            "height": video.height,
            "fps": (video.fps * 100.0).round() / 100.0,
            "size": probe.size,
            "videoCodec": video.codec,
            "hasAudio": probe.has_audio,
            "narrationDuration": (narration.total * 1000.0).round() / 1000.0,
            "subtitleCues": cues.len(),
        });
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

//! The render's ffmpeg filter graph, built for static scenes.
//!
//! A still is decoded once, scaled once, and each subtitle cue is drawn
//! onto it once; the `loop` filter then repeats that frame for the cue's
//! length. So between cue changes no frame is decoded, scaled or
//! composited again, and the encoder is the only per-frame cost. Clips are
//! scaled per frame and get their cues with timed `drawtext`. The
//! narration gets the gain its measured loudness calls for (see tts) and is
//! mixed with the music ducked under it (sidechain compression).

use std::path::Path;

use super::subtitles::Cue;
use crate::pipeline::media::fonts::chars_per_line;
use crate::pipeline::media::{FPS, SceneVisual, VisualKind, text};

/// Where and how subtitles are drawn.
pub struct SubtitleStyle {
    /// `top`, `center` or `bottom`.
    pub position: String,
    /// A colour ffmpeg understands.
    pub color: String,
    /// Pixels.
    pub font_size: u32,
}

/// One scene as the render sees it.
pub struct RenderScene<'a> {
    /// What it shows.
    pub visual: &'a SceneVisual,
    /// Its first frame.
    pub first_frame: u64,
    /// How many frames it lasts.
    pub frames: u64,
}

/// Everything one render needs.
pub struct RenderPlan<'a> {
    /// Width and height.
    pub frame: (u32, u32),
    /// The scenes, in order.
    pub scenes: Vec<RenderScene<'a>>,
    /// Subtitle cues over the whole video.
    pub cues: &'a [Cue],
    /// The joined narration.
    pub narration: &'a Path,
    /// Gain that brings the narration to the target loudness.
    pub narration_gain_db: f64,
    /// The music bed, if any.
    pub music: Option<&'a Path>,
    /// How subtitles look.
    pub style: SubtitleStyle,
}

/// Text files the graph reads (`textfile=`), and the graph itself.
pub struct Graph {
    /// File name and content of each text file.
    pub files: Vec<(String, String)>,
    /// The `-filter_complex_script` text.
    pub filter: String,
    /// The arguments of each input, in order.
    pub inputs: Vec<Vec<String>>,
}

/// The frame at `secs` seconds.
pub fn frame_of(secs: f64) -> u64 {
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
        let per_line = chars_per_line(self.frame, self.style.font_size);
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

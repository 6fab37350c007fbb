//! The render's ffmpeg filter graph: pictures, captions, sound, and the
//! critic's measurements, all in one process.
//!
//! Static scenes (`motion: false`) decode and scale a still once and
//! `loop` that frame. Only the frames where a caption changes go on to
//! libass and `blackdetect`; `fps` then repeats each for as long as it
//! lasts, so the encoder is the only per-frame cost. With motion, each
//! still is fitted once a little larger than the frame and `zoompan` drifts
//! and zooms across it (see [`ken_burns`]); scenes cross-fade during the
//! pause that ends every scene, and only those few frames are blended, so
//! the timeline does not move. Clips are scaled per frame in both. libass
//! draws the captions over the result.
//!
//! The narration gets the gain its measured loudness calls for (see tts);
//! the music bed fades in and out and is ducked under the narration by a
//! sidechain compressor; a lookahead limiter keeps the true peak under
//! the ceiling. The finished picture and sound are also split into
//! `blackdetect`, `silencedetect` and `ebur128`, whose reports the critic
//! reads from this process's log instead of decoding the file again.

use std::path::Path;

use crate::pipeline::media::layout::CARD_ZOOM;
use crate::pipeline::media::{FPS, SceneVisual, VisualKind};

/// Length of a cross-fade between scenes, in frames (0.3 s).
pub const FADE_FRAMES: u64 = 9;
/// The music bed's level before ducking.
pub const BED_GAIN: f64 = 0.35;
/// Sample peak the limiter allows, dBFS: a dB under the true-peak ceiling,
/// for the peaks between samples and the AAC encoder.
const LIMIT_DB: f64 = -2.0;
/// Black or silent stretches shorter than these are not reported.
pub const MIN_BLACK: f64 = 1.0;
/// See [`MIN_BLACK`].
pub const MIN_SILENCE: f64 = 1.5;

/// One scene as the render sees it.
pub struct RenderScene<'a> {
    /// What it shows.
    pub visual: &'a SceneVisual,
    /// How many frames it lasts.
    pub frames: u64,
}

/// Everything one render needs.
pub struct RenderPlan<'a> {
    /// Width and height.
    pub frame: (u32, u32),
    /// The scenes, in order.
    pub scenes: Vec<RenderScene<'a>>,
    /// The joined narration.
    pub narration: &'a Path,
    /// Its length, seconds.
    pub duration: f64,
    /// Gain that brings the narration to the target loudness.
    pub narration_gain_db: f64,
    /// The music bed, if any.
    pub music: Option<&'a Path>,
    /// Stills drift and zoom, and scenes cross-fade.
    pub motion: bool,
    /// Frames where the captions change, in order.
    pub caption_cuts: &'a [u64],
    /// The ASS script with captions and key lines, in the job folder.
    pub captions: &'a str,
    /// The folder of fonts libass may use, in the job folder.
    pub fonts: &'a str,
}

/// The filter graph and the inputs it reads.
pub struct Graph {
    /// The `-filter_complex_script` text.
    pub filter: String,
    /// The arguments of each input, in order.
    pub inputs: Vec<Vec<String>>,
}

/// The frame at `secs` seconds.
pub fn frame_of(secs: f64) -> u64 {
    (secs * f64::from(FPS)).round().max(0.0) as u64
}

/// A `zoompan` that turns one still, fitted at `1 + zoom` times the
/// frame, into `frames` frames that drift and zoom, eased in and out. A
/// title card zooms in or out about its centre, so its key line stays in
/// its zone; other stills also pan.
pub fn ken_burns((w, h): (u32, u32), index: usize, frames: u64, card: bool, zoom: f64) -> String {
    let len = frames.max(2) - 1;
    let p = format!("(0.5-0.5*cos(PI*on/{len}))");
    let centre = ("iw/2-iw/zoom/2".to_string(), "ih/2-ih/zoom/2".to_string());
    let moves = if card { 2 } else { 4 };
    let (z, (x, y)) = match index % moves {
        0 => (format!("1+{zoom}*{p}"), centre),
        1 => (format!("1+{zoom}*(1-{p})"), centre),
        2 => (
            format!("{}", 1.0 + zoom),
            (format!("(iw-iw/zoom)*{p}"), "ih/2-ih/zoom/2".into()),
        ),
        _ => (
            format!("{}", 1.0 + zoom),
            ("iw/2-iw/zoom/2".into(), format!("(ih-ih/zoom)*{p}")),
        ),
    };
    format!("zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={w}x{h}:fps={FPS}")
}

/// How far a still other than a title card zooms.
const ZOOM: f64 = 0.10;

impl RenderPlan<'_> {
    /// Whether neighbouring scenes cross-fade: with motion, when every
    /// scene is long enough to give a fade at each end.
    fn fades(&self) -> bool {
        self.motion && self.scenes.iter().all(|s| s.frames > 2 * FADE_FRAMES)
    }

    /// Frames of scene `s`'s own segment: its share of the timeline, plus
    /// the fade in from the scene before it.
    fn segment_frames(&self, s: usize) -> u64 {
        let frames = self.scenes[s].frames;
        if self.fades() && s > 0 {
            frames + FADE_FRAMES
        } else {
            frames
        }
    }

    fn video(&self, inputs: &mut Vec<Vec<String>>, parts: &mut Vec<String>) {
        let fit = |(w, h): (u32, u32)| {
            format!("scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1")
        };
        let (w, h) = self.frame;
        let timing = format!("settb=1/{FPS},setpts=N");
        for (s, scene) in self.scenes.iter().enumerate() {
            let file = scene.visual.file.display().to_string();
            let frames = self.segment_frames(s);
            let chain = match scene.visual.kind {
                VisualKind::Still => {
                    let rate = FPS.to_string();
                    inputs.push(vec!["-framerate".into(), rate, "-i".into(), file]);
                    if self.motion {
                        let card = scene.visual.title_card;
                        let zoom = if card { CARD_ZOOM } else { ZOOM };
                        let even = |v: u32| ((f64::from(v) * (1.0 + zoom) / 2.0).ceil() as u32) * 2;
                        format!(
                            "{},format=yuv420p,{},{timing}",
                            fit((even(w), even(h))),
                            ken_burns(self.frame, s, frames, card, zoom)
                        )
                    } else {
                        format!(
                            "{},format=yuv420p,loop=loop={}:size=1,{timing}",
                            fit(self.frame),
                            frames - 1
                        )
                    }
                }
                VisualKind::Clip => {
                    inputs.push(vec!["-stream_loop".into(), "-1".into(), "-i".into(), file]);
                    format!(
                        "{},fps={FPS},format=yuv420p,trim=end_frame={frames},{timing}",
                        fit(self.frame)
                    )
                }
            };
            parts.push(format!("[{s}:v]{chain}[g{s}]"));
        }
        let pieces = if self.fades() {
            self.cross_fades(parts)
        } else {
            (0..self.scenes.len()).map(|s| format!("[g{s}]")).collect()
        };
        let n = pieces.len();
        let mut joined = if n > 1 {
            format!("{}concat=n={n}:v=1:a=0,", pieces.concat())
        } else {
            pieces[0].clone()
        };
        let captions = format!("ass={}:fontsdir={}", self.captions, self.fonts);
        if self.motion {
            joined.push_str(&format!("{captions},split=2[vout][vcheck]"));
            // A third of the frames is plenty to find a second of black.
            parts.push(joined);
            parts.push(format!(
                "[vcheck]framestep=3,blackdetect=d={MIN_BLACK}:pix_th=0.10,nullsink"
            ));
        } else {
            // Only the frames where something changes; fps repeats them.
            let mut cuts = vec![0];
            let mut at = 0;
            for scene in &self.scenes {
                at += scene.frames;
                cuts.push(at);
            }
            cuts.extend(self.caption_cuts.iter().copied().filter(|c| *c < at));
            cuts.sort_unstable();
            cuts.dedup();
            cuts.retain(|c| *c < at);
            let wanted: Vec<String> = cuts.iter().map(|c| format!("eq(n,{c})")).collect();
            joined.push_str(&format!(
                "select='{}',{captions},split=2[vsparse][vcheck]",
                wanted.join("+")
            ));
            parts.push(joined);
            parts.push(format!("[vsparse]fps={FPS}[vout]"));
            parts.push(format!(
                "[vcheck]blackdetect=d={MIN_BLACK}:pix_th=0.10,nullsink"
            ));
        }
    }

    /// Cuts each scene's segment into its fade in, its body and its fade
    /// out, and blends each fade out with the next fade in; the pieces in
    /// order.
    fn cross_fades(&self, parts: &mut Vec<String>) -> Vec<String> {
        let n = self.scenes.len();
        let fade = FADE_FRAMES as f64 / f64::from(FPS);
        let piece = |label: &str, from: u64, to: Option<u64>| {
            let end = to.map(|t| format!(":end_frame={t}")).unwrap_or_default();
            format!("[{label}]trim=start_frame={from}{end},setpts=PTS-STARTPTS")
        };
        let mut order = Vec::new();
        for s in 0..n {
            let frames = self.segment_frames(s);
            let head = if s > 0 { FADE_FRAMES } else { 0 };
            let tail = if s + 1 < n { FADE_FRAMES } else { 0 };
            let mut outs = vec![format!("b{s}")];
            if head > 0 {
                outs.push(format!("h{s}"));
            }
            if tail > 0 {
                outs.push(format!("t{s}"));
            }
            let labels: String = outs.iter().map(|o| format!("[{o}]")).collect();
            parts.push(format!("[g{s}]split={}{labels}", outs.len()));
            for label in &outs {
                let (from, to) = match label.as_bytes()[0] {
                    b'h' => (0, Some(head)),
                    b't' => (frames - tail, None),
                    _ => (head, Some(frames - tail)),
                };
                parts.push(format!("{}[{label}p]", piece(label, from, to)));
            }
            if s > 0 {
                let prev = s - 1;
                parts.push(format!(
                    "[t{prev}p][h{s}p]xfade=transition=fade:duration={fade}:offset=0[f{s}]"
                ));
                order.push(format!("[f{s}]"));
            }
            order.push(format!("[b{s}p]"));
        }
        order
    }

    fn audio(&self, inputs: &mut Vec<Vec<String>>, parts: &mut Vec<String>) {
        let narration = inputs.len();
        inputs.push(vec!["-i".into(), self.narration.display().to_string()]);
        let stereo = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo";
        let gain = format!("volume={:.2}dB", self.narration_gain_db);
        let limit = 10f64.powf(LIMIT_DB / 20.0);
        let finish = format!(
            "alimiter=limit={limit:.4}:attack=5:release=60:level=0:latency=1,asplit=2[aout][acheck]"
        );
        match self.music {
            Some(music) => {
                let m = inputs.len();
                inputs.push(vec![
                    "-stream_loop".into(),
                    "-1".into(),
                    "-i".into(),
                    music.display().to_string(),
                ]);
                let fade_out = (self.duration - 2.0).max(0.0);
                parts.push(format!("[{narration}:a]{stereo},{gain},asplit=2[n1][n2]"));
                parts.push(format!(
                    "[{m}:a]{stereo},volume={BED_GAIN},afade=t=in:d=1,\
                     afade=t=out:st={fade_out:.3}:d=2[bed]"
                ));
                // Speech at the target loudness sits 20 dB or more over the
                // threshold, so a 4:1 ratio takes the bed down 15 dB or more.
                parts.push(
                    "[bed][n2]sidechaincompress=threshold=0.01:ratio=4:attack=20:release=500[duck]"
                        .into(),
                );
                parts.push(format!(
                    "[n1][duck]amix=inputs=2:duration=first:normalize=0,{finish}"
                ));
            }
            None => parts.push(format!("[{narration}:a]{stereo},{gain},{finish}")),
        }
        parts.push(format!(
            "[acheck]silencedetect=n=-50dB:d={MIN_SILENCE},ebur128=peak=true:framelog=verbose,anullsink"
        ));
    }

    /// The whole filter graph and the inputs in order.
    pub fn graph(&self) -> Graph {
        let mut inputs = Vec::new();
        let mut parts = Vec::new();
        self.video(&mut inputs, &mut parts);
        self.audio(&mut inputs, &mut parts);
        Graph {
            filter: parts.join(";\n"),
            inputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn still(card: bool) -> SceneVisual {
        SceneVisual {
            file: PathBuf::from("scene.png"),
            kind: VisualKind::Still,
            title_card: card,
        }
    }

    fn plan<'a>(visuals: &'a [SceneVisual], motion: bool, cuts: &'a [u64]) -> RenderPlan<'a> {
        RenderPlan {
            frame: (360, 640),
            scenes: visuals
                .iter()
                .map(|visual| RenderScene { visual, frames: 90 })
                .collect(),
            narration: Path::new("narration.wav"),
            duration: 9.0,
            narration_gain_db: 3.0,
            music: Some(Path::new("bed.mp3")),
            motion,
            caption_cuts: cuts,
            captions: "captions.ass",
            fonts: "fonts",
        }
    }

    #[test]
    fn music_fades_in_and_out_under_a_ducking_compressor_and_a_limiter() {
        let visuals = [still(true)];
        let graph = plan(&visuals, true, &[]).graph();
        let f = &graph.filter;
        assert!(f.contains("afade=t=in:d=1"), "{f}");
        assert!(f.contains("afade=t=out:st=7.000:d=2"), "{f}");
        assert!(f.contains("[bed][n2]sidechaincompress"), "{f}");
        assert!(f.contains("alimiter=limit=0.7943"), "{f}");
        assert!(f.contains("ebur128=peak=true"), "{f}");
        assert_eq!(graph.inputs.len(), 3);
    }

    #[test]
    fn motion_blends_only_the_fade_frames_and_keeps_the_timeline() {
        let visuals = [still(true), still(false), still(true)];
        let f = plan(&visuals, true, &[]).graph().filter;
        // Three scenes of 90 frames: two fades of nine frames, and the
        // later scenes start nine frames early.
        assert_eq!(f.matches("xfade=").count(), 2, "{f}");
        assert!(f.contains("zoompan=z='1+0.08*"), "{f}");
        assert!(f.contains(":d=99:s=360x640"), "{f}");
        assert!(f.contains("[g1]split=3[b1][h1][t1]"), "{f}");
        assert!(f.contains("[b0]trim=start_frame=0:end_frame=81"), "{f}");
        assert!(f.contains("[b2]trim=start_frame=9:end_frame=99"), "{f}");
        assert!(f.contains("concat=n=5:v=1:a=0"), "{f}");
        assert!(!f.contains("loop="), "{f}");
    }

    #[test]
    fn a_still_render_sends_only_changed_frames_to_libass() {
        let visuals = [still(true), still(true)];
        let f = plan(&visuals, false, &[12, 40, 500]).graph().filter;
        assert!(!f.contains("zoompan") && !f.contains("xfade"), "{f}");
        assert!(
            f.contains("select='eq(n,0)+eq(n,12)+eq(n,40)+eq(n,90)'"),
            "{f}"
        );
        assert!(f.contains("[vsparse]fps=30[vout]"), "{f}");
    }
}

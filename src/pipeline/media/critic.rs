//! critic: scores the rendered video out of 10 from what the render
//! measured.
//!
//! The render split its finished picture and sound into `blackdetect`,
//! `silencedetect` and `ebur128` in the same ffmpeg process (see
//! assembly), and ffprobe read the file's streams and duration; the critic
//! reads those reports and the caption layout, so it decodes nothing. Every
//! strength and weakness in the review quotes one of these measurements.

use std::sync::Arc;

use async_trait::async_trait;

use super::assembly::{MIN_BLACK, MIN_SILENCE};
use super::layout::Rect;
use super::{CaptionLayout, MediaEnv, Narration, Rendered};
use crate::model::{Review, ReviewMeasurements};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::probe::{Probe, parse_blacks, parse_loudness, parse_silences};

/// The critic stage.
pub struct Critic(pub Arc<MediaEnv>);

/// Loudness range that suits short social video, in LUFS.
const LOUDNESS: (f64, f64) = (-20.0, -10.0);
/// How far the video may run from the narration, in seconds.
const DURATION_TOLERANCE: f64 = 0.5;

/// What the analysis filters measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    /// Black stretches, start and end in seconds.
    pub black: Vec<(f64, f64)>,
    /// Silent stretches, start and end in seconds.
    pub silence: Vec<(f64, f64)>,
    /// Integrated loudness, LUFS.
    pub loudness: Option<f64>,
    /// Loudness range, LU.
    pub loudness_range: Option<f64>,
    /// True peak, dBTP.
    pub true_peak: Option<f64>,
}

/// Reads the filters' reports from ffmpeg's log.
pub fn parse_analysis(log: &str, duration: f64) -> Measurements {
    let loudness = parse_loudness(log);
    Measurements {
        black: parse_blacks(log),
        silence: parse_silences(log, duration),
        loudness: loudness.integrated,
        loudness_range: loudness.range,
        true_peak: loudness.peak,
    }
}

/// Judges stretches (black or silent) of at least `min` seconds: a
/// strength when there are none, else a weakness that quotes them and
/// costs half their length in points, at least 1 and at most `max_cost`.
fn stretches(
    found: &[(f64, f64)],
    min: f64,
    max_cost: f64,
    what: &str,
    none: String,
    (score, strengths, weaknesses): (&mut f64, &mut Vec<String>, &mut Vec<String>),
) {
    let long: Vec<&(f64, f64)> = found.iter().filter(|(a, b)| b - a >= min).collect();
    let Some(first) = long.first() else {
        strengths.push(none);
        return;
    };
    let total: f64 = long.iter().map(|(a, b)| b - a).sum();
    *score -= (total / 2.0).clamp(1.0, max_cost);
    weaknesses.push(format!(
        "{} {what}, {total:.1} s in all, the first at {:.1} s.",
        long.len(),
        first.0
    ));
}

/// Scores measurements against the narration and the requested frame.
pub fn review(
    probe: &Probe,
    m: &Measurements,
    narration: f64,
    frame: (u32, u32),
    layout: &CaptionLayout,
) -> Review {
    let mut score: f64 = 10.0;
    let mut strengths = Vec::new();
    let mut weaknesses = Vec::new();
    match &probe.video {
        None => {
            weaknesses.push("The file has no video stream.".to_string());
            score = 0.0;
        }
        Some(v) if (v.width, v.height) == frame => strengths.push(format!(
            "Frame is {}x{} at {:.0} fps, as requested.",
            v.width, v.height, v.fps
        )),
        Some(v) => {
            score -= 1.0;
            weaknesses.push(format!(
                "Frame is {}x{}, not the requested {}x{}.",
                v.width, v.height, frame.0, frame.1
            ));
        }
    }
    if probe.has_audio {
        strengths.push("Has an audio track with the narration.".to_string());
    } else {
        score -= 4.0;
        weaknesses.push("The file has no audio stream.".to_string());
    }
    let drift = probe.duration - narration;
    if drift.abs() <= DURATION_TOLERANCE {
        strengths.push(format!(
            "Length {:.2} s matches the {:.2} s of narration.",
            probe.duration, narration
        ));
    } else {
        score -= 2.0;
        weaknesses.push(format!(
            "Length {:.2} s is {:.2} s {} the {:.2} s of narration.",
            probe.duration,
            drift.abs(),
            if drift > 0.0 {
                "longer than"
            } else {
                "shorter than"
            },
            narration
        ));
    }
    stretches(
        &m.black,
        MIN_BLACK,
        3.0,
        "black stretch(es)",
        format!("No black stretch of {MIN_BLACK:.0} s or more."),
        (&mut score, &mut strengths, &mut weaknesses),
    );
    if probe.has_audio {
        stretches(
            &m.silence,
            MIN_SILENCE,
            2.0,
            "silent gap(s)",
            format!("No silent gap of {MIN_SILENCE} s or more."),
            (&mut score, &mut strengths, &mut weaknesses),
        );
        match m.loudness {
            Some(lufs) if (LOUDNESS.0..=LOUDNESS.1).contains(&lufs) => strengths.push(format!(
                "Integrated loudness {lufs:.1} LUFS is within {} to {} LUFS.",
                LOUDNESS.0, LOUDNESS.1
            )),
            Some(lufs) => {
                score -= 1.0;
                weaknesses.push(format!(
                    "Integrated loudness {lufs:.1} LUFS is outside {} to {} LUFS.",
                    LOUDNESS.0, LOUDNESS.1
                ));
            }
            None => weaknesses.push("Loudness could not be measured.".to_string()),
        }
    }
    let placed = text_placement(layout);
    match &placed {
        Ok(said) => strengths.push(said.clone()),
        Err(said) => {
            score -= 1.0;
            weaknesses.push(said.clone());
        }
    }
    Review {
        score: (score.clamp(0.0, 10.0) * 10.0).round() / 10.0,
        strengths,
        weaknesses,
        measurements: ReviewMeasurements {
            duration: probe.duration,
            narration_duration: narration,
            has_audio: probe.has_audio,
            width: probe.video.as_ref().map(|v| v.width),
            height: probe.video.as_ref().map(|v| v.height),
            fps: probe.video.as_ref().map(|v| v.fps),
            black_stretches: m.black.clone(),
            silent_stretches: m.silence.clone(),
            integrated_loudness: m.loudness,
            loudness_range: m.loudness_range,
            true_peak: m.true_peak,
            safe_area: Some(corners(&layout.safe)),
            caption_zone: Some(corners(&layout.zone)),
            captions_in_safe_area: placed.is_ok(),
        },
    }
}

fn corners(r: &Rect) -> [f64; 4] {
    [r.x0, r.y0, r.x1, r.y1].map(|v| v.round())
}

/// Whether the caption zone, every caption page and every key line lie in
/// the safe area, and key lines stay out of the caption zone.
fn text_placement(layout: &CaptionLayout) -> Result<String, String> {
    let safe = &layout.safe;
    if !safe.contains(&layout.zone) {
        return Err("The caption zone reaches outside the safe area.".into());
    }
    let outside = layout
        .pages
        .iter()
        .chain(&layout.key_lines)
        .filter(|b| !safe.contains(b))
        .count();
    if outside > 0 {
        return Err(format!(
            "{outside} caption or key line box(es) reach outside the safe area."
        ));
    }
    if layout.key_lines.iter().any(|k| k.overlaps(&layout.zone)) {
        return Err("A key line overlaps the caption zone.".into());
    }
    Ok(format!(
        "All {} caption pages and {} key lines sit inside the safe area, apart.",
        layout.pages.len(),
        layout.key_lines.len()
    ))
}

#[async_trait]
impl Stage for Critic {
    fn name(&self) -> &str {
        "critic"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let env = self.0.clone();
        let missing = || StageError::failed("There is no rendered video to check.");
        let rendered = ctx
            .scratch()
            .get::<Rendered>()
            .cloned()
            .ok_or_else(missing)?;
        let narration = ctx
            .scratch()
            .get::<Narration>()
            .map(|n| n.total)
            .ok_or_else(missing)?;
        ctx.info("Checking the rendered video").await?;
        let probe = &rendered.probe;
        let m = parse_analysis(&rendered.log, probe.duration);
        let frame = env.frame(ctx.request());
        let review = review(probe, &m, narration, frame, &rendered.layout);
        let path = ctx.work_dir().join("review.json");
        tokio::fs::write(
            &path,
            serde_json::to_vec_pretty(&review).unwrap_or_default(),
        )
        .await
        .map_err(|err| StageError::io(format!("Could not write {}", path.display()), err))?;
        ctx.emit(format!("Quality check: {}/10", review.score), &review)
            .await?;
        Ok(StageOutcome::done(format!("score {}/10", review.score)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::probe::VideoInfo;

    const LOG: &str = "[blackdetect @ 0x1] black_start:0 black_end:1.5 black_duration:1.5
[silencedetect @ 0x2] silence_start: 4.2
[silencedetect @ 0x2] silence_end: 6.3 | silence_duration: 2.1
[Parsed_ebur128_1 @ 0x3] Summary:

  Integrated loudness:
    I:         -16.4 LUFS
    Threshold: -26.6 LUFS

  Loudness range:
    LRA:         3.2 LU

  True peak:
    Peak:       -1.4 dBFS
";

    #[test]
    fn analysis_log_is_parsed() {
        let m = parse_analysis(LOG, 10.0);
        assert_eq!(m.black, [(0.0, 1.5)]);
        assert_eq!(m.silence, [(4.2, 6.3)]);
        assert_eq!(m.loudness, Some(-16.4));
        assert_eq!(m.loudness_range, Some(3.2));
        assert_eq!(m.true_peak, Some(-1.4));
    }

    #[test]
    fn every_deduction_is_explained() {
        let probe = Probe {
            duration: 10.0,
            size: 1,
            video: Some(VideoInfo {
                width: 360,
                height: 640,
                fps: 30.0,
                codec: "h264".into(),
            }),
            has_audio: true,
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        };
        let frame = (360, 640);
        let zone = crate::pipeline::media::layout::caption_zone(frame, "bottom");
        let layout = CaptionLayout {
            safe: crate::pipeline::media::layout::safe_area(frame),
            zone,
            pages: vec![Rect {
                x0: zone.x0 + 1.0,
                y0: zone.y0 + 1.0,
                x1: zone.x1 - 1.0,
                y1: zone.y1 - 1.0,
            }],
            key_lines: Vec::new(),
        };
        // Clean measurements, judged against `layout`.
        let clean = Measurements {
            loudness: Some(-14.0),
            ..Default::default()
        };
        let good = review(&probe, &clean, 9.8, frame, &layout);
        assert_eq!(good.score, 10.0);
        assert!(good.weaknesses.is_empty());
        assert!(good.measurements.captions_in_safe_area);
        let bad = review(&probe, &parse_analysis(LOG, 10.0), 12.0, frame, &layout);
        assert!(bad.score < 10.0);
        assert_eq!(bad.weaknesses.len(), 3, "{:?}", bad.weaknesses);
        // A key line in the caption zone costs a point, and says so.
        let clash = CaptionLayout {
            key_lines: vec![layout.pages[0]],
            ..layout
        };
        let clashed = review(&probe, &clean, 9.8, frame, &clash);
        assert_eq!(clashed.score, 9.0);
        assert!(
            clashed.weaknesses[0].contains("caption zone"),
            "{:?}",
            clashed.weaknesses
        );
    }
}

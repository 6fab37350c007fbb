//! What ffprobe says about a media file, and what ffmpeg's `ebur128`
//! filter logs about loudness.

use std::path::Path;

use serde_json::Value;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::process::run;
use super::{Tool, ToolError, Tools};

/// What `ebur128=peak=sample` printed in its summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub integrated: Option<f64>,
    /// Loudness range, LU.
    pub range: Option<f64>,
    /// Sample peak, dBFS.
    pub peak: Option<f64>,
}

/// The number after `key` on `line`, if any.
pub fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | '+'))
        .collect();
    token.parse().ok()
}

/// Reads the summary that the `ebur128` filter logs at the end of a run.
pub fn parse_loudness(log: &str) -> Loudness {
    let mut out = Loudness::default();
    let mut in_summary = false;
    for line in log.lines() {
        let trimmed = line.trim_start();
        if line.contains("Summary:") {
            in_summary = true;
        } else if !in_summary {
            continue;
        } else if trimmed.starts_with("I:") {
            out.integrated = number_after(trimmed, "I:");
        } else if trimmed.starts_with("LRA:") {
            out.range = number_after(trimmed, "LRA:");
        } else if trimmed.starts_with("Peak:") {
            out.peak = number_after(trimmed, "Peak:");
        }
    }
    out
}

/// Stretches that `silencedetect` reported, start and end in seconds; one
/// still open at the end of the log closes at `duration`.
pub fn parse_silences(log: &str, duration: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut open = None;
    for line in log.lines() {
        if line.contains("silence_start:") {
            open = number_after(line, "silence_start:");
        } else if line.contains("silence_end:")
            && let (Some(a), Some(b)) = (open.take(), number_after(line, "silence_end:"))
        {
            out.push((a.max(0.0), b));
        }
    }
    if let Some(a) = open
        && duration.is_finite()
    {
        out.push((a.max(0.0), duration));
    }
    out
}

/// Stretches that `blackdetect` reported, start and end in seconds.
pub fn parse_blacks(log: &str) -> Vec<(f64, f64)> {
    log.lines()
        .filter(|line| line.contains("black_start:"))
        .filter_map(|line| {
            Some((
                number_after(line, "black_start:")?,
                number_after(line, "black_end:")?,
            ))
        })
        .collect()
}

/// What ffprobe says about a media file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// Seconds.
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    /// The first video stream that is not cover art.
    pub video: Option<VideoInfo>,
    /// Whether it has an audio stream.
    pub has_audio: bool,
    /// ffprobe's `format_name`, e.g. `mp3` or `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
}

/// A video stream as ffprobe describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Average frames per second.
    pub fps: f64,
    /// Codec name, such as `h264`.
    pub codec: String,
}

/// Runs ffprobe on `file`.
pub async fn probe(
    tools: &Tools,
    file: &Path,
    cancel: &CancellationToken,
) -> Result<Probe, ToolError> {
    let ffprobe = tools.path(Tool::Ffprobe)?;
    let out = run(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
            ])
            .arg(file),
        None,
        cancel,
        "ffprobe",
    )
    .await?;
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        ToolError::failed(format!(
            "ffprobe gave no readable answer for {}",
            file.display()
        ))
    })?;
    Ok(parse_probe(&json))
}

fn parse_probe(json: &Value) -> Probe {
    let number = |v: &Value| -> Option<f64> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_f64())
    };
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .map(|s| VideoInfo {
            width: s["width"].as_u64().unwrap_or(0) as u32,
            height: s["height"].as_u64().unwrap_or(0) as u32,
            fps: s["avg_frame_rate"]
                .as_str()
                .and_then(ratio)
                .filter(|f| *f > 0.0)
                .or_else(|| s["r_frame_rate"].as_str().and_then(ratio))
                .unwrap_or(0.0),
            codec: s["codec_name"].as_str().unwrap_or_default().to_string(),
        });
    Probe {
        duration: number(&json["format"]["duration"]).unwrap_or(0.0),
        size: number(&json["format"]["size"]).unwrap_or(0.0) as u64,
        video,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
        format: json["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `"30000/1001"` → 29.97.
fn ratio(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probe_reads_duration_size_and_streams() {
        let json = json!({
            "streams": [
                {"codec_type": "video", "codec_name": "h264", "width": 360, "height": 640,
                 "avg_frame_rate": "30/1", "r_frame_rate": "30/1"},
                {"codec_type": "audio", "codec_name": "aac"}
            ],
            "format": {"duration": "12.500000", "size": "123456"}
        });
        let probe = parse_probe(&json);
        assert_eq!(probe.duration, 12.5);
        assert_eq!(probe.size, 123456);
        assert!(probe.has_audio);
        let video = probe.video.unwrap();
        assert_eq!((video.width, video.height, video.fps), (360, 640, 30.0));
    }
}

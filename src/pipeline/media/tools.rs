//! The external programs the media pipeline drives: finding them, reporting
//! their versions, and running them so that a cancel kills them at once.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::pipeline::StageError;

/// One of the programs the pipeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Ffmpeg,
    Ffprobe,
    Espeak,
}

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::Ffmpeg, Tool::Ffprobe, Tool::Espeak];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
            Tool::Espeak => "espeak-ng",
        }
    }

    /// The Debian package that provides the tool.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Ffmpeg | Tool::Ffprobe => "ffmpeg",
            Tool::Espeak => "espeak-ng",
        }
    }

    fn version_flag(self) -> &'static str {
        match self {
            Tool::Ffmpeg | Tool::Ffprobe => "-version",
            Tool::Espeak => "--version",
        }
    }
}

/// Where the tools are, as configured.
pub struct Tools {
    configured: [String; 3],
    versions: Mutex<[Option<String>; 3]>,
}

impl Tools {
    pub fn new(config: &Config) -> Self {
        Tools {
            configured: [
                config.ffmpeg_path.clone(),
                config.ffprobe_path.clone(),
                config.espeak_path.clone(),
            ],
            versions: Mutex::new([None, None, None]),
        }
    }

    fn configured(&self, tool: Tool) -> &str {
        &self.configured[tool as usize]
    }

    /// The executable for `tool`, or a message naming it and how to install it.
    pub fn path(&self, tool: Tool) -> Result<PathBuf, StageError> {
        resolve(self.configured(tool)).ok_or_else(|| StageError::failed(self.missing(tool)))
    }

    /// The error text for a missing tool.
    pub fn missing(&self, tool: Tool) -> String {
        format!(
            "{} was not found (looked for \"{}\"). Install it with: sudo apt-get install -y {}",
            tool.name(),
            self.configured(tool),
            tool.package()
        )
    }

    /// Fails with the install hint unless every tool in `needed` is there.
    pub fn require(&self, needed: &[Tool]) -> Result<(), StageError> {
        let missing: Vec<String> = needed
            .iter()
            .filter(|tool| resolve(self.configured(**tool)).is_none())
            .map(|tool| self.missing(*tool))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StageError::failed(missing.join(" ")))
        }
    }

    /// Path and version of each tool, for `/health`. Versions are asked for
    /// once per tool and remembered.
    pub async fn report(&self) -> Value {
        let mut out = serde_json::Map::new();
        for tool in Tool::ALL {
            let entry = match resolve(self.configured(tool)) {
                None => json!({
                    "available": false,
                    "error": self.missing(tool),
                }),
                Some(path) => {
                    let known = self
                        .versions
                        .lock()
                        .ok()
                        .and_then(|v| v[tool as usize].clone());
                    let version = match known {
                        Some(v) => Some(v),
                        None => {
                            let v = version_of(&path, tool).await;
                            if let (Some(v), Ok(mut cache)) = (&v, self.versions.lock()) {
                                cache[tool as usize] = Some(v.clone());
                            }
                            v
                        }
                    };
                    json!({
                        "available": true,
                        "path": path.display().to_string(),
                        "version": version,
                    })
                }
            };
            out.insert(tool.name().to_string(), entry);
        }
        Value::Object(out)
    }
}

/// A command name is looked up on PATH; anything with a slash is a path.
fn resolve(configured: &str) -> Option<PathBuf> {
    let configured = configured.trim();
    if configured.is_empty() {
        return None;
    }
    if configured.contains('/') {
        let path = PathBuf::from(configured);
        return is_executable(&path).then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(configured))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

async fn version_of(path: &Path, tool: Tool) -> Option<String> {
    let out = guard(Command::new(path).arg(tool.version_flag()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|line| line.trim().to_string())
}

/// Ties a child's life to this server's: killed with it on drop (cancel,
/// failure, shutdown), and by the kernel if the server itself is killed,
/// so that a crashed server leaves no ffmpeg writing into a job folder.
pub fn guard(cmd: &mut Command) -> &mut Command {
    cmd.kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the call above.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// What a finished program printed.
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// What a failed program said, for error messages: its first line that
/// says something (usually the cause) and, if different, its last.
pub fn summary(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return "no error output".into();
    };
    let text = match lines.next_back() {
        Some(last) if last != first => format!("{first} … {last}"),
        _ => first.to_string(),
    };
    text.chars().take(400).collect()
}

/// Starts `cmd` with piped output and, when `cancel` fires, kills it and
/// waits for it, so that no process outlives its job.
pub async fn run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    cancel: &CancellationToken,
    what: &str,
) -> Result<Output, StageError> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = guard(cmd)
        .spawn()
        .map_err(|err| StageError::failed(format!("Could not start {what}: {err}")))?;
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let io = async {
        let feed = async {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // A program that exits early closes its end; that is its error.
                let _ = stdin.write_all(input).await;
            }
        };
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.read_to_end(&mut buf).await;
            }
            buf
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        (out, err)
    };
    let finished = tokio::select! {
        (out, err) = io => Some((out, err)),
        _ = cancel.cancelled() => None,
    };
    let Some((stdout, stderr)) = finished else {
        stop(&mut child).await;
        return Err(StageError::Cancelled);
    };
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            stop(&mut child).await;
            return Err(StageError::Cancelled);
        }
    };
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    match status {
        Ok(status) if status.success() => Ok(Output { stdout, stderr }),
        Ok(status) => Err(StageError::failed(format!(
            "{what} failed ({status}): {}",
            summary(&stderr)
        ))),
        Err(err) => Err(StageError::failed(format!(
            "{what} could not be waited for: {err}"
        ))),
    }
}

/// Kills a child and reaps it.
async fn stop(child: &mut tokio::process::Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Runs ffmpeg with `-progress pipe:1`, sending the seconds of output
/// written so far, as ffmpeg reports them, on `progress`.
pub async fn run_with_progress(
    cmd: &mut Command,
    cancel: &CancellationToken,
    what: &str,
    progress: tokio::sync::watch::Sender<f64>,
) -> Result<String, StageError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = guard(cmd)
        .spawn()
        .map_err(|err| StageError::failed(format!("Could not start {what}: {err}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    let mut lines = stdout.map(|out| BufReader::new(out).lines());
    let result: Result<(), StageError> = async {
        let Some(lines) = lines.as_mut() else {
            return Ok(());
        };
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line,
                _ = cancel.cancelled() => return Err(StageError::Cancelled),
            };
            let Ok(Some(line)) = line else { return Ok(()) };
            if let Some(us) = line.strip_prefix("out_time_us=")
                && let Ok(us) = us.trim().parse::<i64>()
                && us >= 0
            {
                progress.send_replace(us as f64 / 1e6);
            }
        }
    }
    .await;
    if let Err(err) = result {
        stop(&mut child).await;
        errors.abort();
        return Err(err);
    }
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            stop(&mut child).await;
            errors.abort();
            return Err(StageError::Cancelled);
        }
    };
    let stderr = errors.await.unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(stderr),
        Ok(status) => Err(StageError::failed(format!(
            "{what} failed ({status}): {}",
            summary(&stderr)
        ))),
        Err(err) => Err(StageError::failed(format!(
            "{what} could not be waited for: {err}"
        ))),
    }
}

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

/// What ffprobe says about a media file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub duration: f64,
    pub size: u64,
    pub video: Option<VideoInfo>,
    pub has_audio: bool,
    /// ffprobe's `format_name`, e.g. `mp3` or `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
}

/// Runs ffprobe on `file`.
pub async fn probe(
    tools: &Tools,
    file: &Path,
    cancel: &CancellationToken,
) -> Result<Probe, StageError> {
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
        StageError::failed(format!(
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

    #[test]
    fn a_missing_tool_names_itself_and_the_install_command() {
        let config = Config {
            ffmpeg_path: "/nonexistent/ffmpeg".into(),
            ..Config::default()
        };
        let tools = Tools::new(&config);
        let err = tools.path(Tool::Ffmpeg).unwrap_err().to_string();
        assert!(err.contains("ffmpeg was not found"), "{err}");
        assert!(err.contains("apt-get install -y ffmpeg"), "{err}");
    }
}

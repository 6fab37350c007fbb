//! The programs and services Reelay drives: ffmpeg, ffprobe, espeak-ng and
//! an OpenAI-compatible LLM. This module finds the programs and reports
//! their versions; [`process`] runs them so that a cancel kills them at
//! once, [`probe`] reads what ffprobe and ffmpeg's analysis filters say,
//! and [`llm`] talks to the LLM. Nothing here knows about jobs.

pub mod espeak;
pub mod llm;
pub mod probe;
pub mod process;
pub mod voices;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::Config;

/// Why running a tool did not give an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The job's token fired; the program was killed.
    #[error("cancelled")]
    Cancelled,
    /// The program is missing or failed; the message says how, for a user.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// A failure with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }
}

/// One of the programs the pipeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Renders and analyses.
    Ffmpeg,
    /// Measures media files.
    Ffprobe,
    /// Speaks narration offline.
    Espeak,
}

impl Tool {
    /// Every tool, in report order.
    pub const ALL: [Tool; 3] = [Tool::Ffmpeg, Tool::Ffprobe, Tool::Espeak];

    /// The program's usual name.
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
    /// The tools as `config` names them.
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
    pub fn path(&self, tool: Tool) -> Result<PathBuf, ToolError> {
        resolve(self.configured(tool)).ok_or_else(|| ToolError::failed(self.missing(tool)))
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
    pub fn require(&self, needed: &[Tool]) -> Result<(), ToolError> {
        let missing: Vec<String> = needed
            .iter()
            .filter(|tool| resolve(self.configured(**tool)).is_none())
            .map(|tool| self.missing(*tool))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ToolError::failed(missing.join(" ")))
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
    let out = process::guard(Command::new(path).arg(tool.version_flag()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|line| line.trim().to_string())
}

/// Why a request to a service gave no answer, in words for a user.
pub fn unreachable_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "it did not answer in time".to_string()
    } else if err.is_connect() {
        "nothing is listening there".to_string()
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

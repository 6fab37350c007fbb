//! Request fields shared by the dialects: numbers that arrive as strings,
//! text that may be blank, and the subtitle and frame options.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiResult};
use crate::model::JobRequest;

/// A body field that the original front end sends as a string or a number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Loose {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Loose {
    pub fn as_u32(&self, field: &str, min: u32, max: u32) -> ApiResult<u32> {
        let n = match self {
            Loose::Int(n) => Some(*n),
            Loose::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Loose::Text(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (i64::from(min)..=i64::from(max)).contains(&n) => Ok(n as u32),
            _ => Err(ApiError::validation(format!(
                "{field} must be a whole number from {min} to {max}."
            ))),
        }
    }

    pub fn as_bool(&self, field: &str) -> ApiResult<bool> {
        match self {
            Loose::Bool(b) => Ok(*b),
            Loose::Int(0) => Ok(false),
            Loose::Int(1) => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => {
                Ok(false)
            }
            _ => Err(ApiError::validation(format!(
                "{field} must be true or false."
            ))),
        }
    }
}

/// Longest script accepted, in characters: about ten minutes of narration.
pub const MAX_SCRIPT_CHARS: usize = 20_000;

/// A script within [`MAX_SCRIPT_CHARS`]; blank counts as absent.
pub fn checked_script(value: Option<String>) -> ApiResult<Option<String>> {
    match text(value) {
        Some(script) if script.chars().count() > MAX_SCRIPT_CHARS => Err(ApiError::validation(
            format!("script is too long: at most {MAX_SCRIPT_CHARS} characters."),
        )),
        other => Ok(other),
    }
}

/// Trims a text field; blank (nothing visible, only spaces or control
/// characters) counts as absent.
pub fn text(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| v.chars().any(|c| !c.is_whitespace() && !c.is_control()))
}

/// Width and height come together and must be even, as H.264 needs.
pub fn check_size(request: &JobRequest) -> ApiResult<()> {
    match (request.width, request.height) {
        (None, None) => Ok(()),
        (Some(w), Some(h)) if w % 2 == 0 && h % 2 == 0 => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "width and height must be even numbers.",
        )),
        _ => Err(ApiError::validation(
            "width and height must be given together.",
        )),
    }
}

/// MoneyPrinter sends positions as `"<horizontal>,<vertical>"`; the
/// vertical part decides where subtitles go.
pub fn subtitle_position(raw: &str) -> ApiResult<String> {
    let vertical = raw
        .rsplit(',')
        .next()
        .unwrap_or(raw)
        .trim()
        .to_ascii_lowercase();
    match vertical.as_str() {
        "top" => Ok("top".into()),
        "center" | "centre" | "middle" => Ok("center".into()),
        "bottom" => Ok("bottom".into()),
        _ => Err(ApiError::validation(
            "subtitlesPosition must be top, center or bottom (optionally as \"center,bottom\").",
        )),
    }
}

/// Colour names ffmpeg and libass both understand, or `#rgb` / `#rrggbb`.
pub fn checked_color(raw: &str) -> ApiResult<String> {
    const NAMES: &[&str] = &[
        "white", "black", "yellow", "red", "green", "blue", "cyan", "magenta", "orange", "gray",
        "grey", "pink", "purple",
    ];
    let lower = raw.trim().to_ascii_lowercase();
    let hex = lower.strip_prefix('#').unwrap_or("");
    let is_hex = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if is_hex || NAMES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ApiError::validation(
            "color must be #rrggbb, #rgb or a basic colour name such as white or yellow.",
        ))
    }
}

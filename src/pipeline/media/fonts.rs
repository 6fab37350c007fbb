//! The font that title cards and subtitles are drawn with, and how much
//! text fits across a frame.

use std::path::Path;

use super::MediaEnv;
use crate::pipeline::StageError;

/// Links the configured font into the job folder as `font.ttf`, so that
/// filter graphs can name it without escaping.
pub async fn ensure_font(env: &MediaEnv, work_dir: &Path) -> Result<(), StageError> {
    let font = &env.config.font_path;
    if !font.is_file() {
        return Err(StageError::failed(format!(
            "The font {} was not found. Install it with: sudo apt-get install -y fonts-dejavu-core \
             (or set FONT_PATH to a TrueType font).",
            font.display()
        )));
    }
    let link = work_dir.join("font.ttf");
    if tokio::fs::symlink_metadata(&link).await.is_ok() {
        return Ok(());
    }
    if tokio::fs::symlink(font, &link).await.is_err() {
        tokio::fs::copy(font, &link)
            .await
            .map_err(|err| StageError::io("Could not copy the font", err))?;
    }
    Ok(())
}

/// Font size for card text, relative to the frame.
pub fn card_font_size(frame: (u32, u32)) -> u32 {
    (frame.0.min(frame.1) / 11).max(12)
}

/// Characters per line that fit across the frame at `font_size`.
pub fn chars_per_line(frame: (u32, u32), font_size: u32) -> usize {
    ((f64::from(frame.0) * 0.86) / (f64::from(font_size) * 0.6))
        .floor()
        .max(8.0) as usize
}

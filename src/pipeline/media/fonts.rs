//! The font captions and key lines are set in: where libass finds it, and
//! its metrics, to measure lines before libass sets them.

use std::path::Path;

use super::MediaEnv;
use crate::pipeline::StageError;

/// The folder in a job's folder that libass reads fonts from: it holds
/// only a link to the configured font.
pub const FONTS_DIR: &str = "fonts";

/// Links the configured font into the job's [`FONTS_DIR`], so that libass
/// finds it by its family name whether or not it is installed.
pub async fn ensure_font(env: &MediaEnv, work_dir: &Path) -> Result<(), StageError> {
    let font = &env.config.font_path;
    if !font.is_file() {
        return Err(StageError::failed(format!(
            "The font {} was not found. Install it with: sudo apt-get install -y fonts-dejavu-core \
             (or set FONT_PATH to a TrueType font).",
            font.display()
        )));
    }
    let dir = work_dir.join(FONTS_DIR);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|err| StageError::io(format!("Could not create {}", dir.display()), err))?;
    let name = font.file_name().unwrap_or(std::ffi::OsStr::new("font.ttf"));
    let link = dir.join(name);
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

/// What captions need to know of the font: its family name, for libass to
/// pick it, and its metrics, to measure text the way libass sets it.
pub struct FontMetrics {
    data: Vec<u8>,
    /// The family name in the font's name table.
    pub family: String,
    /// Whether the font is a bold face, so the ASS style asks for bold and
    /// libass picks this face rather than making one up.
    pub bold: bool,
    /// Font units per pixel of ASS font size: libass scales a font so
    /// that its Windows ascent plus descent equal the size.
    units_per_size: f64,
}

impl FontMetrics {
    /// Reads the font at `path`.
    pub fn load(path: &Path) -> Result<Self, StageError> {
        let data = std::fs::read(path)
            .map_err(|err| StageError::io(format!("Could not read {}", path.display()), err))?;
        let face = ttf_parser::Face::parse(&data, 0).map_err(|err| {
            StageError::failed(format!(
                "{} is not a font Reelay can read ({err}); set FONT_PATH to a TrueType font.",
                path.display()
            ))
        })?;
        let family = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::FAMILY)
            .find_map(|n| n.to_string())
            .unwrap_or_else(|| "Sans".into());
        let (ascent, descent) = match face.tables().os2 {
            Some(os2) if os2.windows_ascender() + os2.windows_descender() != 0 => (
                f64::from(os2.windows_ascender()),
                f64::from(os2.windows_descender()),
            ),
            _ => (f64::from(face.ascender()), -f64::from(face.descender())),
        };
        let units_per_size = (ascent + descent).max(1.0);
        let bold = face.weight().to_number() >= 600;
        Ok(FontMetrics {
            bold,
            data,
            family,
            units_per_size,
        })
    }

    /// Width in pixels of `text` set at ASS font size `size`, without kerning.
    pub fn width(&self, text: &str, size: f64) -> f64 {
        let Ok(face) = ttf_parser::Face::parse(&self.data, 0) else {
            return 0.0;
        };
        let fallback = face
            .glyph_index(' ')
            .and_then(|g| face.glyph_hor_advance(g))
            .unwrap_or(0);
        let units: u32 = text
            .chars()
            .map(|c| {
                let advance = face.glyph_index(c).and_then(|g| face.glyph_hor_advance(g));
                u32::from(advance.unwrap_or(fallback))
            })
            .sum();
        f64::from(units) * size / self.units_per_size
    }
}

//! Title cards: a mood-coloured gradient with the scene's key line, for
//! scenes that have no footage.

use std::path::Path;

use tokio::process::Command;

use crate::model::PlannedScene;
use crate::pipeline::media::MediaEnv;
use crate::pipeline::media::fonts::{card_font_size, chars_per_line, ensure_font};
use crate::pipeline::media::text;
use crate::pipeline::{StageContext, StageError};
use crate::tools::{Tool, process};

/// Gradient colours of a title card by mood.
fn palette(mood: &str) -> (&'static str, &'static str) {
    const PALETTES: &[(&str, (&str, &str))] = &[
        ("epic", ("0x1a0b2e", "0xd9480f")),
        ("calm", ("0x0b3d5c", "0x5fb3b3")),
        ("upbeat", ("0xff6b6b", "0xffb347")),
        ("dark", ("0x0f0f1a", "0x4a1c40")),
        ("neutral", ("0x1e3c72", "0x2a5298")),
    ];
    PALETTES
        .iter()
        .find(|(key, _)| mood.contains(key))
        .map(|(_, p)| *p)
        .unwrap_or_else(|| {
            let hash = mood
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            PALETTES[hash % PALETTES.len()].1
        })
}

/// Renders a title card for `scene` into the job folder.
pub async fn render(
    env: &MediaEnv,
    ctx: &StageContext,
    scene: &PlannedScene,
    frame: (u32, u32),
    out: &Path,
) -> Result<(), StageError> {
    ensure_font(env, ctx.work_dir()).await?;
    let (w, h) = frame;
    let size = card_font_size(frame);
    let mut lines = text::wrap(&scene.key_line, chars_per_line(frame, size));
    lines.truncate(4);
    let line_h = f64::from(size) * 1.3;
    // Keep the card's text clear of centred subtitles.
    let centre = if ctx.request().subtitles_position.as_deref() == Some("center") {
        0.28
    } else {
        0.42
    };
    let top = f64::from(h) * centre - line_h * lines.len() as f64 / 2.0;
    let text_dir = ctx.work_dir().join("text");
    tokio::fs::create_dir_all(&text_dir)
        .await
        .map_err(|err| StageError::io(format!("Could not create {}", text_dir.display()), err))?;
    let (c0, c1) = palette(&scene.mood);
    let mut filters = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let name = format!("text/card-{:03}-{i}.txt", scene.index + 1);
        tokio::fs::write(ctx.work_dir().join(&name), line)
            .await
            .map_err(|err| StageError::io(format!("Could not write {name}"), err))?;
        filters.push(format!(
            "drawtext=fontfile=font.ttf:textfile={name}:expansion=none:fontsize={size}:\
             fontcolor=white:shadowcolor=black@0.6:shadowx=3:shadowy=3:\
             x=(w-text_w)/2:y={:.0}",
            top + line_h * i as f64
        ));
    }
    let source = format!(
        "gradients=s={w}x{h}:c0={c0}:c1={c1}:x0=0:y0=0:x1={w}:y1={h}:nb_colors=2:duration=1"
    );
    let ffmpeg = env.tools.path(Tool::Ffmpeg)?;
    let mut cmd = Command::new(ffmpeg);
    cmd.current_dir(ctx.work_dir()).args([
        "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &source,
    ]);
    if !filters.is_empty() {
        cmd.args(["-vf", &filters.join(",")]);
    }
    cmd.args(["-frames:v", "1", "-update", "1"]).arg(out);
    process::run(&mut cmd, None, ctx.token(), "ffmpeg (title card)").await?;
    Ok(())
}

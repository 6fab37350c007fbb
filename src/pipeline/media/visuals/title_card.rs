//! Title cards: a designed background for scenes that have no footage,
//! made offline from ffmpeg's own sources. A gradient in the mood's
//! palette carries a soft cellular texture (a few generations of Conway's
//! life, enlarged and blurred into clouds), lit by a vignette. libass sets
//! the scene's key line on it, in a zone of its own clear of the captions.
//!
//! The card is drawn at a quarter of the frame's size and enlarged once:
//! everything in it is soft, so nothing is lost, and it costs well under a
//! second.

use std::path::Path;

use tokio::process::Command;

use crate::model::PlannedScene;
use crate::pipeline::media::MediaEnv;
use crate::pipeline::media::captions::Look;
use crate::pipeline::media::fonts::FONTS_DIR;
use crate::pipeline::{StageContext, StageError};
use crate::tools::{Tool, process};

/// A mood's look: three gradient colours, the gradient's shape and how the
/// texture is laid over it.
struct Palette {
    colours: [&'static str; 3],
    shape: &'static str,
    blend: &'static str,
    texture: f64,
}

const LOOKS: &[(&str, Palette)] = &[
    (
        "epic",
        Palette {
            colours: ["0x14082a", "0x7a1f3d", "0xe0641a"],
            shape: "radial",
            blend: "overlay",
            texture: 0.55,
        },
    ),
    (
        "calm",
        Palette {
            colours: ["0x0b3d5c", "0x1f7a7a", "0x8fd3c7"],
            shape: "radial",
            blend: "softlight",
            texture: 0.7,
        },
    ),
    (
        "upbeat",
        Palette {
            colours: ["0xff5f6d", "0xff9a44", "0xffd86b"],
            shape: "linear",
            blend: "softlight",
            texture: 0.6,
        },
    ),
    (
        "dark",
        Palette {
            colours: ["0x07070f", "0x2b1038", "0x6b1d3a"],
            shape: "radial",
            blend: "screen",
            texture: 0.25,
        },
    ),
    (
        "neutral",
        Palette {
            colours: ["0x15264d", "0x2a5298", "0x6fa3d9"],
            shape: "linear",
            blend: "softlight",
            texture: 0.6,
        },
    ),
];

fn hash(text: &str) -> u64 {
    text.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    })
}

/// The look for a mood: the first whose name it mentions, else one picked
/// by the mood's words, the same every time.
fn look(mood: &str) -> &'static Palette {
    LOOKS
        .iter()
        .find(|(key, _)| mood.contains(key))
        .map(|(_, l)| l)
        .unwrap_or_else(|| &LOOKS[(hash(mood) % LOOKS.len() as u64) as usize].1)
}

/// The lavfi inputs and filter graph of a card for `scene`, drawn at
/// `frame`.
fn recipe(scene: &PlannedScene, frame: (u32, u32)) -> [String; 3] {
    let (w, h) = frame;
    let (sw, sh) = ((w / 4).max(16), (h / 4).max(16));
    let look = look(&scene.mood);
    let seed = hash(&scene.key_line) % 100_000 + scene.index as u64;
    let [c0, c1, c2] = look.colours;
    // The gradient's axis turns from scene to scene.
    let (x0, y0, x1, y1) = match scene.index % 3 {
        0 => (sw / 6, sh / 8, sw * 5 / 6, sh),
        1 => (sw, 0, 0, sh),
        _ => (sw / 2, sh / 3, 0, sh),
    };
    let gradient = format!(
        "gradients=s={sw}x{sh}:c0={c0}:c1={c1}:c2={c2}:nb_colors=3:type={}:\
         x0={x0}:y0={y0}:x1={x1}:y1={y1}:duration=0.04:rate=25",
        look.shape
    );
    let (lw, lh) = ((sw / 8).max(4), (sh / 8).max(4));
    let texture = format!(
        "life=s={lw}x{lh}:mold=20:ratio=0.35:seed={seed}:life_color=0xffffff:\
         death_color=0x000000:mold_color=0x606060:rate=25,trim=start_frame=12,setpts=PTS-STARTPTS"
    );
    let sigma = (f64::from(sw) / 30.0).max(1.0);
    let graph = format!(
        "[1:v]scale={sw}:{sh}:flags=bicubic,gblur=sigma={sigma:.1},format=gbrp[t];\
         [0:v]format=gbrp[g];\
         [g][t]blend=all_mode={}:all_opacity={},vignette=angle=PI/4,\
         scale={w}:{h}:flags=bicubic,format=rgb24",
        look.blend, look.texture
    );
    [gradient, texture, graph]
}

/// Renders a title card for `scene` into `out`, its key line set as
/// `look` says.
pub async fn render(
    env: &MediaEnv,
    ctx: &StageContext,
    scene: &PlannedScene,
    look: &Look<'_>,
    out: &Path,
) -> Result<(), StageError> {
    let [gradient, texture, mut graph] = recipe(scene, look.frame);
    if !scene.key_line.trim().is_empty() {
        let name = format!("card-{:03}.ass", scene.index + 1);
        let (script, _) = look.key_line_script(&scene.key_line);
        tokio::fs::write(ctx.work_dir().join(&name), script)
            .await
            .map_err(|err| StageError::io(format!("Could not write {name}"), err))?;
        graph = graph.replace(
            ",format=rgb24",
            &format!(",ass={name}:fontsdir={FONTS_DIR},format=rgb24"),
        );
    }
    let ffmpeg = env.tools.path(Tool::Ffmpeg)?;
    let mut cmd = Command::new(ffmpeg);
    cmd.current_dir(ctx.work_dir())
        .args([
            "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &gradient,
        ])
        .args(["-f", "lavfi", "-i", &texture])
        .args(["-filter_complex", &graph])
        .args(["-frames:v", "1", "-update", "1"])
        .arg(out);
    process::run(&mut cmd, None, ctx.token(), "ffmpeg (title card)").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moods_pick_their_look_and_others_get_a_steady_one() {
        assert_eq!(look("calm and hopeful").colours[0], "0x0b3d5c");
        assert!(std::ptr::eq(look("wistful"), look("wistful")));
        let scene = PlannedScene {
            mood: "epic".into(),
            key_line: "Rivers carve valleys".into(),
            ..PlannedScene::default()
        };
        let [gradient, _, graph] = recipe(&scene, (1080, 1920));
        assert!(
            gradient.starts_with("gradients=s=270x480:c0=0x14082a"),
            "{gradient}"
        );
        assert!(graph.contains("scale=1080:1920"), "{graph}");
    }
}

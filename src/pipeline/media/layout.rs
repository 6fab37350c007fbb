//! Where text may go in the frame.
//!
//! Short-form apps draw over the video: the account line and caption at
//! the bottom, the tabs at the top, the like and share buttons down the
//! right-hand side. Text stays inside the safe area that is left, and the
//! title card's key line and the captions each get a zone of their own so
//! they never meet.

use serde::{Deserialize, Serialize};

/// A box in pixels: left, top, right and bottom edges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x0: f64,
    /// Top edge.
    pub y0: f64,
    /// Right edge.
    pub x1: f64,
    /// Bottom edge.
    pub y1: f64,
}

impl Rect {
    /// Whether `other` lies wholly inside this box.
    pub fn contains(&self, other: &Rect) -> bool {
        other.x0 >= self.x0 && other.y0 >= self.y0 && other.x1 <= self.x1 && other.y1 <= self.y1
    }

    /// Whether the two boxes share any area.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }

    /// Width.
    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    /// The horizontal middle.
    pub fn centre_x(&self) -> f64 {
        (self.x0 + self.x1) / 2.0
    }
}

/// Shares of the frame kept clear: the top tenth, the bottom fifth, a
/// margin on the left and the action column on the right.
const TOP: f64 = 0.10;
const BOTTOM: f64 = 0.20;
const LEFT: f64 = 0.06;
const RIGHT: f64 = 0.14;

/// The 9:16 safe area, as shares of any frame.
pub fn safe_area((w, h): (u32, u32)) -> Rect {
    let (w, h) = (f64::from(w), f64::from(h));
    Rect {
        x0: w * LEFT,
        y0: h * TOP,
        x1: w * (1.0 - RIGHT),
        y1: h * (1.0 - BOTTOM),
    }
}

/// The band captions are set in for a subtitle position (`top`, `center`
/// or `bottom`): two lines fit, and the block keeps to its edge of it.
pub fn caption_zone(frame: (u32, u32), position: &str) -> Rect {
    let safe = safe_area(frame);
    let h = f64::from(frame.1);
    let (y0, y1) = match position {
        "top" => (safe.y0 + h * 0.01, safe.y0 + h * 0.17),
        "center" => (h * 0.50, h * 0.66),
        _ => (safe.y1 - h * 0.17, safe.y1 - h * 0.01),
    };
    Rect { y0, y1, ..safe }
}

/// Most a title card is zoomed by, about the frame's centre, as it moves.
pub const CARD_ZOOM: f64 = 0.08;

/// The band a title card's key line is set in, clear of the captions, and
/// narrow enough to stay in the safe area while its card zooms by up to
/// [`CARD_ZOOM`].
pub fn key_line_zone(frame: (u32, u32), position: &str) -> Rect {
    let (w, h) = (f64::from(frame.0), f64::from(frame.1));
    let (y0, y1) = match position {
        "top" => (h * 0.36, h * 0.66),
        _ => (h * 0.16, h * 0.46),
    };
    Rect {
        x0: w * 0.10,
        y0,
        x1: w * 0.82,
        y1,
    }
}

/// `rect` as it ends up when the frame is zoomed by `1 + zoom` about its
/// centre.
pub fn zoomed(rect: &Rect, (w, h): (u32, u32), zoom: f64) -> Rect {
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let z = 1.0 + zoom;
    Rect {
        x0: cx + (rect.x0 - cx) * z,
        y0: cy + (rect.y0 - cy) * z,
        x1: cx + (rect.x1 - cx) * z,
        y1: cy + (rect.y1 - cy) * z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_sit_in_the_safe_area_and_apart() {
        for frame in [(1080, 1920), (1920, 1080), (1080, 1080), (360, 640)] {
            let safe = safe_area(frame);
            for position in ["top", "center", "bottom"] {
                let captions = caption_zone(frame, position);
                let key = zoomed(&key_line_zone(frame, position), frame, CARD_ZOOM);
                assert!(safe.contains(&captions), "{frame:?} {position}");
                assert!(safe.contains(&key), "{frame:?} {position} {key:?}");
                assert!(!captions.overlaps(&key), "{frame:?} {position}");
            }
        }
        let safe = safe_area((1080, 1920));
        assert_eq!((safe.y0, safe.y1), (192.0, 1536.0));
    }
}

//! Word-timed captions, and title-card key lines, as ASS scripts for
//! libass.
//!
//! The narration's words are set in pages of at most two lines of at most
//! [`MAX_LINE_CHARS`] characters, measured with the font's own advances so
//! every line fits its zone (see [`layout`](super::layout)). A page never
//! runs across a scene or past the end of a sentence. Each word gets one
//! event that shows its page with that word in the highlight colour. A key
//! line is set large in its own zone, once, onto its title card.

use super::ass::{ass_colour, ass_time, literal};
use super::text::ends_sentence;
use crate::model::WordTiming;
use crate::pipeline::media::fonts::FontMetrics;
use crate::pipeline::media::layout::{Rect, caption_zone, key_line_zone};

/// At most this many characters on a caption line.
pub const MAX_LINE_CHARS: usize = 32;
/// At most this many lines on a caption page.
const MAX_LINES: usize = 2;
/// At most this many lines of a key line.
const MAX_KEY_LINES: usize = 4;

/// How captions look.
pub struct Look<'a> {
    /// Width and height of the frame.
    pub frame: (u32, u32),
    /// `top`, `center` or `bottom`.
    pub position: &'a str,
    /// The spoken word's colour, as the request gave it.
    pub highlight: &'a str,
    /// The font.
    pub font: &'a FontMetrics,
}

/// A caption page: its lines, when it shows, and where it is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Its words, line by line.
    pub lines: Vec<Vec<WordTiming>>,
    /// Font size: the caption size, or less for a word too wide for it.
    pub size: f64,
    /// The box the page covers, outline included.
    pub bounds: Rect,
}

impl Page {
    pub fn start(&self) -> f64 {
        self.lines[0][0].start
    }

    pub fn end(&self) -> f64 {
        self.lines
            .last()
            .and_then(|l| l.last())
            .map_or(0.0, |w| w.end)
    }
}

/// The script and what it places.
pub struct Captions {
    /// The ASS script.
    pub script: String,
    /// Caption pages in order.
    pub pages: Vec<Page>,
    /// The zone captions keep to.
    pub zone: Rect,
}

/// Caption font size for a frame, in pixels.
pub fn caption_size(frame: (u32, u32)) -> f64 {
    (f64::from(frame.0.min(frame.1)) * 0.06).round().max(10.0)
}

/// Key line font size for a frame, in pixels.
fn key_size(frame: (u32, u32)) -> f64 {
    (f64::from(frame.0.min(frame.1)) / 11.0).round().max(12.0)
}

fn outline(size: f64) -> f64 {
    (size / 14.0).round().max(1.0)
}

/// A line's words, as shown.
pub fn line_text(line: &[WordTiming]) -> String {
    line.iter()
        .map(|w| w.word.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Greedy lines of `words` that fit `width` pixels and the character limit.
fn lines_of(words: &[WordTiming], fits: impl Fn(&str) -> bool) -> Vec<&[WordTiming]> {
    let mut lines = Vec::new();
    let mut from = 0;
    for i in 1..=words.len() {
        if i - from > 1 && !fits(&line_text(&words[from..i])) {
            lines.push(&words[from..i - 1]);
            from = i - 1;
        }
    }
    if from < words.len() {
        lines.push(&words[from..]);
    }
    lines
}

impl Look<'_> {
    fn line_fits(&self, text: &str, size: f64, zone: &Rect) -> bool {
        text.chars().count() <= MAX_LINE_CHARS
            && self.font.width(text, size) + 2.0 * outline(size) <= zone.width()
    }

    /// Pages of one scene's words.
    fn pages(&self, words: &[WordTiming], zone: &Rect) -> Vec<Page> {
        let size = caption_size(self.frame);
        let mut pages = Vec::new();
        // Sentences first, then as many lines as fit on a page.
        let mut from = 0;
        for i in 0..words.len() {
            if !(ends_sentence(&words[i].word) || i + 1 == words.len()) {
                continue;
            }
            let lines = lines_of(&words[from..=i], |t| self.line_fits(t, size, zone));
            for chunk in lines.chunks(MAX_LINES) {
                let lines: Vec<Vec<WordTiming>> = chunk.iter().map(|l| l.to_vec()).collect();
                // A single word wider than the zone is set smaller.
                let mut size = size;
                while size > 8.0 && self.bounds(&lines, size, zone).width() > zone.width() {
                    size = (size * 0.9).floor();
                }
                let bounds = self.bounds(&lines, size, zone);
                pages.push(Page {
                    lines,
                    size,
                    bounds,
                });
            }
            from = i + 1;
        }
        pages
    }

    /// Where a page of `lines` sits in the zone: against its outer edge,
    /// centred across the safe area.
    fn bounds(&self, lines: &[Vec<WordTiming>], size: f64, zone: &Rect) -> Rect {
        let pad = outline(size);
        let widest = lines
            .iter()
            .map(|l| self.font.width(&line_text(l), size))
            .fold(0.0, f64::max);
        let height = size * lines.len() as f64;
        let top = match self.position {
            "top" => zone.y0 + pad,
            "center" => (zone.y0 + zone.y1 - height) / 2.0,
            _ => zone.y1 - pad - height,
        };
        Rect {
            x0: zone.centre_x() - widest / 2.0 - pad,
            y0: top - pad,
            x1: zone.centre_x() + widest / 2.0 + pad,
            y1: top + height + pad,
        }
    }

    /// The key line's lines and box, centred in its zone, shrunk until the
    /// widest line fits.
    pub fn key_line(&self, text: &str) -> (Vec<String>, f64, Rect) {
        let zone = key_line_zone(self.frame, self.position);
        let mut size = key_size(self.frame);
        let words: Vec<WordTiming> = text
            .split_whitespace()
            .map(|w| WordTiming {
                word: w.to_string(),
                ..WordTiming::default()
            })
            .collect();
        loop {
            let fits = |t: &str| self.font.width(t, size) + 2.0 * outline(size) <= zone.width();
            let lines: Vec<String> = lines_of(&words, fits)
                .iter()
                .map(|l| line_text(l))
                .collect();
            let widest = lines
                .iter()
                .map(|l| self.font.width(l, size))
                .fold(0.0, f64::max);
            let height = size * lines.len() as f64;
            let pad = outline(size) * 2.0;
            let fitted = widest + 2.0 * pad <= zone.width()
                && height + 2.0 * pad <= zone.y1 - zone.y0
                && lines.len() <= MAX_KEY_LINES;
            if fitted || size <= 12.0 {
                let cy = (zone.y0 + zone.y1) / 2.0;
                let bounds = Rect {
                    x0: zone.centre_x() - widest / 2.0 - pad,
                    y0: cy - height / 2.0 - pad,
                    x1: zone.centre_x() + widest / 2.0 + pad,
                    y1: cy + height / 2.0 + pad,
                };
                return (lines, size, bounds);
            }
            size = (size * 0.9).floor();
        }
    }

    fn header(&self) -> String {
        let (w, h) = self.frame;
        let size = caption_size(self.frame);
        let key = key_size(self.frame);
        let bold = if self.font.bold { -1 } else { 0 };
        let family = &self.font.family;
        format!(
            "[Script Info]\nScriptType: v4.00+\nPlayResX: {w}\nPlayResY: {h}\nWrapStyle: 2\n\
             ScaledBorderAndShadow: yes\nYCbCr Matrix: TV.709\n\n\
             [V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, \
             OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, \
             Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, \
             Encoding\n\
             Style: Caption,{family},{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,{bold},0,0,0,\
             100,100,0,0,1,{},0,8,0,0,0,1\n\
             Style: Key,{family},{key},&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,{bold},0,0,0,\
             100,100,0,0,1,{},0,5,0,0,0,1\n\n\
             [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
            outline(size),
            outline(key) * 2.0,
        )
    }

    /// A script that sets `text` as a key line, and the box it covers.
    pub fn key_line_script(&self, text: &str) -> (String, Rect) {
        let (lines, size, bounds) = self.key_line(text);
        let body: Vec<String> = lines.iter().map(|l| literal(l)).collect();
        let script = format!(
            "{}Dialogue: 0,0:00:00.00,9:00:00.00,Key,,0,0,0,,{{\\an5\\fs{size}\\bord{}\\pos({:.0},{:.0})}}{}\n",
            self.header(),
            outline(size) * 2.0,
            (bounds.x0 + bounds.x1) / 2.0,
            (bounds.y0 + bounds.y1) / 2.0,
            body.join("\\N"),
        );
        (script, bounds)
    }

    /// The caption script for each scene's words, in order.
    pub fn captions(&self, scenes: &[&[WordTiming]]) -> Captions {
        let zone = caption_zone(self.frame, self.position);
        let highlight = ass_colour(self.highlight);
        let mut script = self.header();
        let mut pages = Vec::new();
        for words in scenes {
            for page in self.pages(words, &zone) {
                let at = format!(
                    "{{\\an8\\fs{}\\bord{}\\pos({:.0},{:.0})}}",
                    page.size,
                    outline(page.size),
                    page.bounds.centre_x(),
                    page.bounds.y0 + outline(page.size)
                );
                for (k, word) in page.lines.iter().flatten().enumerate() {
                    let mut text = at.clone();
                    let mut n = 0;
                    for (l, line) in page.lines.iter().enumerate() {
                        if l > 0 {
                            text.push_str("\\N");
                        }
                        for (j, w) in line.iter().enumerate() {
                            if j > 0 {
                                text.push(' ');
                            }
                            if n == k {
                                text.push_str(&format!(
                                    "{{\\1c{highlight}}}{}{{\\1c&HFFFFFF&}}",
                                    literal(&w.word)
                                ));
                            } else {
                                text.push_str(&literal(&w.word));
                            }
                            n += 1;
                        }
                    }
                    script.push_str(&format!(
                        "Dialogue: 0,{},{},Caption,,0,0,0,,{text}\n",
                        ass_time(word.start),
                        ass_time(word.end),
                    ));
                }
                pages.push(page);
            }
        }
        Captions {
            script,
            pages,
            zone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::pipeline::media::layout::safe_area;

    fn words(text: &str, from: f64) -> Vec<WordTiming> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| WordTiming {
                word: w.into(),
                start: from + i as f64 * 0.4,
                end: from + (i + 1) as f64 * 0.4,
            })
            .collect()
    }

    #[test]
    fn pages_fit_their_zone_and_every_word_gets_its_highlight() {
        let font = FontMetrics::load(&Config::default().font_path).expect("DejaVu Sans Bold");
        let scene = words(
            "Whales sing to each other across whole ocean basins. Incomprehensibilities! \
             Waves carry energy for thousands of kilometres.",
            1.0,
        );
        for frame in [(1080, 1920), (1920, 1080), (360, 640)] {
            for position in ["top", "center", "bottom"] {
                let look = Look {
                    frame,
                    position,
                    highlight: "#ff0000",
                    font: &font,
                };
                let out = look.captions(&[&scene]);
                let (key_script, key) = look.key_line_script("Songs that cross whole oceans");
                let safe = safe_area(frame);
                for page in &out.pages {
                    assert!(page.lines.len() <= MAX_LINES);
                    assert!(
                        out.zone.contains(&page.bounds),
                        "{frame:?} {position} {page:?}"
                    );
                    for line in &page.lines {
                        assert!(line_text(line).chars().count() <= MAX_LINE_CHARS);
                    }
                }
                assert!(safe.contains(&key), "{frame:?} {position} {key:?}");
                assert!(!key.overlaps(&out.zone), "{frame:?} {position}");
                assert_eq!(key_script.matches("\nDialogue: 0,").count(), 1);
                // A page ends at a sentence: "basins." closes the first.
                let first_end = out
                    .pages
                    .iter()
                    .position(|p| p.lines.last().unwrap().last().unwrap().word == "basins.");
                assert!(first_end.is_some());
                let highlighted = out.script.matches("{\\1c&H0000FF&}").count();
                assert_eq!(highlighted, scene.len());
                assert_eq!(out.script.matches("\nDialogue: 0,").count(), scene.len());
            }
        }
    }
}

//! The text forms of subtitles: ASS colours, times and literal text, and
//! SRT.

use super::captions::{Page, line_text};

/// `&HBBGGRR&` for a request colour: a name from the request's list or
/// `#rgb` / `#rrggbb`.
pub fn ass_colour(colour: &str) -> String {
    let named = match colour {
        "white" => "ffffff",
        "black" => "000000",
        "yellow" => "ffe14d",
        "red" => "ff4040",
        "green" => "3ddc84",
        "blue" => "3d8bff",
        "cyan" => "00e5ff",
        "magenta" => "ff3dff",
        "orange" => "ff9f1a",
        "gray" | "grey" => "a0a0a0",
        "pink" => "ff7eb6",
        "purple" => "b26bff",
        hex => hex.trim_start_matches('#'),
    };
    let full: String = match named.len() {
        3 => named.chars().flat_map(|c| [c, c]).collect(),
        _ => named.to_string(),
    };
    let hex = if full.len() == 6 && full.chars().all(|c| c.is_ascii_hexdigit()) {
        full
    } else {
        "ffe14d".to_string()
    };
    format!(
        "&H{}{}{}&",
        &hex[4..6].to_uppercase(),
        &hex[2..4].to_uppercase(),
        &hex[0..2].to_uppercase()
    )
}

/// `H:MM:SS.cc`.
pub fn ass_time(secs: f64) -> String {
    let cs = (secs.max(0.0) * 100.0).round() as u64;
    format!(
        "{}:{:02}:{:02}.{:02}",
        cs / 360_000,
        cs / 6000 % 60,
        cs / 100 % 60,
        cs % 100
    )
}

/// Text as ASS shows it literally: no override blocks, no escapes.
pub fn literal(text: &str) -> String {
    text.replace('{', "(").replace('}', ")").replace('\\', "/")
}

/// `HH:MM:SS,mmm`.
fn srt_time(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The pages as an SRT file, one cue per page.
pub fn srt(pages: &[Page]) -> String {
    let mut out = String::new();
    for (i, page) in pages.iter().enumerate() {
        let lines: Vec<String> = page.lines.iter().map(|l| line_text(l)).collect();
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            srt_time(page.start()),
            srt_time(page.end()),
            lines.join("\n")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_times_are_in_ass_form() {
        assert_eq!(ass_colour("#ff8000"), "&H0080FF&");
        assert_eq!(ass_colour("#0f0"), "&H00FF00&");
        assert_eq!(ass_colour("white"), "&HFFFFFF&");
        assert_eq!(ass_time(3723.456), "1:02:03.46");
        assert_eq!(literal("a {b} \\N"), "a (b) /N");
    }
}

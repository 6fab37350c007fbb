//! Subtitle cues: the narration cut into a few words at a time, each timed
//! by its share of the scene's measured speech, and written out as SRT.

/// One subtitle cue, in seconds from the start of the video.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// When it appears.
    pub start: f64,
    /// When it goes.
    pub end: f64,
    /// What it says.
    pub text: String,
}

/// Cues of a few words for narration spoken from `start` for `duration`
/// seconds, each timed by its share of the characters.
pub fn cues(narration: &str, start: f64, duration: f64, words_per_cue: usize) -> Vec<Cue> {
    let words: Vec<&str> = narration.split_whitespace().collect();
    let chunks: Vec<String> = words
        .chunks(words_per_cue.max(1))
        .map(|c| c.join(" "))
        .collect();
    let weight = |s: &str| s.chars().count() as f64 + 1.0;
    let total: f64 = chunks.iter().map(|c| weight(c)).sum();
    let mut at = start;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let end = if i + 1 == chunks.len() {
            start + duration
        } else {
            at + duration * weight(chunk) / total
        };
        out.push(Cue {
            start: at,
            end,
            text: chunk.clone(),
        });
        at = end;
    }
    out
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

/// The cues as an SRT file.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            srt_time(cue.start),
            srt_time(cue.end),
            cue.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_cover_the_narration_exactly() {
        let c = cues("one two three four five six seven", 2.0, 3.5, 3);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].start, 2.0);
        assert!((c.last().unwrap().end - 5.5).abs() < 1e-9);
        for pair in c.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!(srt(&c).starts_with("1\n00:00:02,000 --> "));
    }
}

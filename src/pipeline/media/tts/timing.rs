//! When each word of a scene's narration is spoken.
//!
//! Words are the narration's whitespace-separated tokens, so captions show
//! them as written. Their times come, best first, from the speech engine's
//! own word events (libespeak-ng), from a speech API's timestamps, or from
//! the audio itself: pauses found by `silencedetect` mark the sentence
//! boundaries, and each sentence's measured span is shared among its words
//! by syllables.

use serde::Deserialize;

use crate::model::WordTiming;
use crate::pipeline::media::text::ends_sentence;
use crate::tools::espeak::SpokenWord;

/// A token of the narration and the characters before it.
struct Token<'a> {
    text: &'a str,
    first_char: usize,
    chars: usize,
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (chars, (byte, c)) in text.char_indices().chain([(text.len(), ' ')]).enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((byte, chars)),
            (true, Some((b, first_char))) => {
                out.push(Token {
                    text: &text[b..byte],
                    first_char,
                    chars: chars - first_char,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A rough syllable count: groups of vowels, at least one.
pub fn syllables(word: &str) -> usize {
    let lower: Vec<char> = word
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if lower.iter().all(|c| c.is_ascii_digit()) && !lower.is_empty() {
        // Numbers are read out: about one syllable per digit.
        return lower.len();
    }
    let vowel = |c: &char| "aeiouyàáâäèéêëìíîïòóôöùúûü".contains(*c);
    let mut count = 0;
    let mut previous = false;
    for c in &lower {
        let v = vowel(c);
        if v && !previous {
            count += 1;
        }
        previous = v;
    }
    if count > 1 && lower.ends_with(&['e']) && !lower.ends_with(&['l', 'e']) {
        count -= 1;
    }
    count.max(1)
}

/// Gives tokens without a start one between their neighbours, and ends
/// each word where the next begins (the last at `end`). All times are
/// shifted by `offset`.
fn finish(
    tokens: &[Token<'_>],
    starts: Vec<Option<f64>>,
    end: f64,
    offset: f64,
) -> Vec<WordTiming> {
    let n = tokens.len();
    let mut filled = vec![0.0; n];
    let mut i = 0;
    while i < n {
        if let Some(s) = starts[i] {
            filled[i] = s;
            i += 1;
            continue;
        }
        // A run of unknown starts between two known times.
        let before = if i == 0 { 0.0 } else { filled[i - 1] };
        let mut j = i;
        while j < n && starts[j].is_none() {
            j += 1;
        }
        let after = starts.get(j).copied().flatten().unwrap_or(end);
        let step = (after - before) / (j - i + 1) as f64;
        for (k, slot) in filled.iter_mut().enumerate().take(j).skip(i) {
            *slot = before + step * (k - i + 1) as f64;
        }
        i = j;
    }
    // Strictly increasing, and inside the speech.
    for k in 1..n {
        if filled[k] <= filled[k - 1] {
            filled[k] = filled[k - 1] + 0.001;
        }
    }
    (0..n)
        .map(|k| {
            let next = if k + 1 < n { filled[k + 1] } else { end };
            WordTiming {
                word: tokens[k].text.to_string(),
                start: round(offset + filled[k]),
                end: round(offset + next.max(filled[k] + 0.001)),
            }
        })
        .collect()
}

fn round(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// Word times from libespeak-ng's word events for `text`, spoken for
/// `duration` seconds from `offset`.
pub fn from_events(
    text: &str,
    events: &[SpokenWord],
    duration: f64,
    offset: f64,
) -> Vec<WordTiming> {
    let tokens = tokens(text);
    let mut starts = vec![None; tokens.len()];
    let mut t = 0;
    for event in events {
        while t < tokens.len() && tokens[t].first_char + tokens[t].chars <= event.char_offset {
            t += 1;
        }
        if t == tokens.len() {
            break;
        }
        // Several events may fall in one token (a number read as words).
        if event.char_offset >= tokens[t].first_char && starts[t].is_none() {
            starts[t] = Some(event.start.min(duration));
        }
    }
    finish(&tokens, starts, duration, offset)
}

/// One word with its times, as speech APIs report them.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiWord {
    /// The word.
    #[serde(alias = "text")]
    pub word: String,
    /// Seconds from the start of the audio.
    #[serde(alias = "start_time")]
    pub start: f64,
}

fn normalised(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Word times from a speech API's timestamps, matched to the narration's
/// tokens in order; tokens it did not report get times between their
/// neighbours.
pub fn from_api(text: &str, words: &[ApiWord], duration: f64, offset: f64) -> Vec<WordTiming> {
    let tokens = tokens(text);
    let mut starts = vec![None; tokens.len()];
    let mut w = 0;
    for (t, token) in tokens.iter().enumerate() {
        let want = normalised(token.text);
        if want.is_empty() {
            continue;
        }
        // The API may split or drop words: look a few ahead.
        if let Some(k) = (w..words.len().min(w + 4)).find(|&k| normalised(&words[k].word) == want) {
            starts[t] = Some(words[k].start.clamp(0.0, duration));
            w = k + 1;
        }
    }
    finish(&tokens, starts, duration, offset)
}

/// Word times from the audio alone: the longest pauses inside the speech
/// (`silences`, start and end in seconds) are taken as the boundaries
/// between sentences, and each sentence's span is shared by syllables.
pub fn by_syllables(
    text: &str,
    duration: f64,
    silences: &[(f64, f64)],
    offset: f64,
) -> Vec<WordTiming> {
    let tokens = tokens(text);
    let edge = 0.02;
    let lead = silences
        .iter()
        .find(|(a, _)| *a <= edge)
        .map_or(0.0, |(_, b)| *b);
    let tail = silences
        .iter()
        .find(|(_, b)| *b >= duration - edge)
        .map_or(duration, |(a, _)| *a);
    // Sentences as token ranges.
    let mut sentences = Vec::new();
    let mut from = 0;
    for (i, token) in tokens.iter().enumerate() {
        if ends_sentence(token.text) || i + 1 == tokens.len() {
            sentences.push(from..i + 1);
            from = i + 1;
        }
    }
    let mut inner: Vec<(f64, f64)> = silences
        .iter()
        .copied()
        .filter(|(a, b)| *a > lead + edge && *b < tail - edge)
        .collect();
    let mut spans = vec![(lead, tail)];
    if sentences.len() > 1 && inner.len() >= sentences.len() - 1 {
        inner.sort_by(|x, y| (y.1 - y.0).total_cmp(&(x.1 - x.0)));
        inner.truncate(sentences.len() - 1);
        inner.sort_by(|x, y| x.0.total_cmp(&y.0));
        spans.clear();
        let mut at = lead;
        for (a, b) in &inner {
            spans.push((at, *a));
            at = *b;
        }
        spans.push((at, tail));
    } else {
        sentences = std::iter::once(0..tokens.len()).collect();
    }
    let mut starts = vec![None; tokens.len()];
    for (range, (a, b)) in sentences.into_iter().zip(spans) {
        let weights: Vec<f64> = tokens[range.clone()]
            .iter()
            .map(|t| syllables(t.text) as f64)
            .collect();
        let total: f64 = weights.iter().sum::<f64>().max(1.0);
        let mut at = a;
        for (k, weight) in range.zip(weights) {
            starts[k] = Some(at);
            at += (b - a) * weight / total;
        }
    }
    finish(&tokens, starts, duration, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn increasing(words: &[WordTiming], from: f64, to: f64) {
        assert!(words.first().unwrap().start >= from - 1e-9, "{words:?}");
        assert!(words.last().unwrap().end <= to + 1e-9, "{words:?}");
        for w in words {
            assert!(w.end > w.start, "{w:?}");
        }
        for pair in words.windows(2) {
            assert!(pair[0].start < pair[1].start, "{words:?}");
            assert!(pair[0].end <= pair[1].start + 1e-9, "{words:?}");
        }
    }

    #[test]
    fn syllables_are_counted_roughly() {
        assert_eq!(syllables("ocean"), 2);
        assert_eq!(syllables("the"), 1);
        assert_eq!(syllables("valleys,"), 2);
        assert_eq!(syllables("table"), 2);
        assert_eq!(syllables("1969"), 4);
        assert_eq!(syllables("—"), 1);
    }

    #[test]
    fn events_map_to_tokens_and_missing_ones_are_filled() {
        let text = "Whales  sing — across 1,000 km.";
        let events = [
            SpokenWord {
                char_offset: 0,
                start: 0.1,
            },
            SpokenWord {
                char_offset: 8,
                start: 0.5,
            },
            SpokenWord {
                char_offset: 15,
                start: 1.0,
            },
            SpokenWord {
                char_offset: 22,
                start: 1.5,
            },
            SpokenWord {
                char_offset: 24,
                start: 1.8,
            },
            SpokenWord {
                char_offset: 28,
                start: 2.2,
            },
        ];
        let words = from_events(text, &events, 3.0, 10.0);
        let names: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(names, ["Whales", "sing", "—", "across", "1,000", "km."]);
        assert_eq!(words[0].start, 10.1);
        assert_eq!(words[2].start, 10.75);
        assert_eq!(words[4].start, 11.5);
        assert_eq!(words[5].start, 12.2);
        assert_eq!(words[5].end, 13.0);
        increasing(&words, 10.0, 13.0);
    }

    #[test]
    fn api_timestamps_are_matched_by_spelling() {
        let api: Vec<ApiWord> = serde_json::from_value(serde_json::json!([
            { "word": "Hello", "start_time": 0.2, "end_time": 0.5 },
            { "word": ",", "start_time": 0.5, "end_time": 0.5 },
            { "text": "world", "start": 0.7 },
        ]))
        .unwrap();
        let words = from_api("Hello, big world!", &api, 1.5, 0.0);
        assert_eq!(words[0].start, 0.2);
        assert_eq!(words[1].start, 0.45);
        assert_eq!(words[2].start, 0.7);
        increasing(&words, 0.0, 1.5);
    }

    #[test]
    fn sentences_take_their_measured_spans() {
        let text = "One two. Three four five. Six.";
        let silences = [(0.0, 0.2), (1.0, 1.1), (1.5, 1.9), (3.0, 3.6), (4.5, 5.0)];
        let words = by_syllables(text, 5.0, &silences, 0.0);
        assert_eq!(words[0].start, 0.2);
        // The two longest inner pauses split the sentences.
        assert_eq!(words[2].start, 1.9);
        assert_eq!(words[5].start, 3.6);
        increasing(&words, 0.0, 5.0);
        // Without pauses the whole speech is shared.
        let flat = by_syllables(text, 5.0, &[], 2.0);
        assert_eq!(flat[0].start, 2.0);
        increasing(&flat, 2.0, 7.0);
    }
}

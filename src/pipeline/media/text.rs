//! Text work of the pipeline: splitting a script into scenes, picking words
//! to search footage with, wrapping lines, and timing subtitle cues.

use std::collections::HashMap;

/// Words that say nothing about what to show.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "even",
    "every",
    "few",
    "first",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "know",
    "like",
    "made",
    "make",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "never",
    "new",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "two",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "way",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "called",
    "today",
    "around",
    "sit",
    "send",
    "grow",
    "including",
    "nothing",
    "something",
    "things",
    "thing",
    "really",
    "still",
];

/// Moods and words that suggest them, for scripts planned without an LLM.
const MOODS: &[(&str, &[&str])] = &[
    (
        "epic_cinematic",
        &[
            "epic", "giant", "vast", "power", "powerful", "ancient", "empire", "war", "battle",
            "legend", "hero", "universe", "galaxy", "galaxies", "cosmic", "massive", "mighty",
            "space", "storm", "gravity",
        ],
    ),
    (
        "calm_ambient",
        &[
            "calm",
            "peace",
            "peaceful",
            "gentle",
            "quiet",
            "relax",
            "nature",
            "forest",
            "ocean",
            "rain",
            "sleep",
            "breathe",
            "soft",
            "meditation",
            "garden",
        ],
    ),
    (
        "upbeat_pop",
        &[
            "fun", "happy", "amazing", "exciting", "party", "easy", "tips", "hack", "hacks",
            "love", "best", "awesome", "win", "success", "energy",
        ],
    ),
    (
        "dark_mysterious",
        &[
            "dark",
            "death",
            "fear",
            "mystery",
            "mysterious",
            "secret",
            "crime",
            "ghost",
            "horror",
            "danger",
            "deadly",
            "unknown",
            "shadow",
            "shadows",
        ],
    ),
];

/// The mood used when nothing in the text suggests one.
pub const DEFAULT_MOOD: &str = "neutral";

/// Lower-case words of `text`, letters and digits only.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Same word for matching purposes: lower case, a plural `s` dropped.
pub fn stem(word: &str) -> String {
    let w = word.to_lowercase();
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

/// Splits text into sentences, keeping their punctuation.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' && chars.get(i + 1) == Some(&'\n') {
            push_sentence(&mut out, &mut current);
            continue;
        }
        current.push(if c.is_whitespace() { ' ' } else { c });
        let ends = matches!(c, '.' | '!' | '?' | '…');
        let next_is_break = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if ends && next_is_break {
            push_sentence(&mut out, &mut current);
        }
    }
    push_sentence(&mut out, &mut current);
    out
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    let collapsed = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().any(char::is_alphanumeric) {
        out.push(collapsed);
    }
    current.clear();
}

/// Most scenes a video gets, whatever the script's length.
pub const MAX_SCENES: usize = 20;

/// Groups sentences into scenes. With `target` scenes the words are shared
/// out evenly; without, scenes hold about `words_per_scene` words. A
/// sentence is never split.
pub fn group_into_scenes(sentences: &[String], target: Option<usize>) -> Vec<String> {
    const WORDS_PER_SCENE: usize = 35;
    let counts: Vec<usize> = sentences
        .iter()
        .map(|s| s.split_whitespace().count())
        .collect();
    let total: usize = counts.iter().sum();
    if sentences.is_empty() {
        return Vec::new();
    }
    let scenes = target
        .unwrap_or_else(|| total.div_ceil(WORDS_PER_SCENE))
        .clamp(1, MAX_SCENES)
        .min(sentences.len());
    let mut out: Vec<String> = Vec::with_capacity(scenes);
    let mut current: Vec<&str> = Vec::new();
    let mut done_words = 0;
    for (i, sentence) in sentences.iter().enumerate() {
        current.push(sentence);
        done_words += counts[i];
        let left_sentences = sentences.len() - i - 1;
        let left_scenes = scenes - out.len() - 1;
        // Close the scene once its share of words is reached, keeping at
        // least one sentence for each scene still to come.
        let share = total * (out.len() + 1) / scenes;
        if left_scenes > 0 && (done_words >= share || left_sentences == left_scenes) {
            out.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

/// The few words of `text` most worth searching footage for: the most
/// frequent non-stopwords, longer words first on ties.
pub fn keywords(text: &str, max: usize) -> Vec<String> {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for (pos, word) in words(text).into_iter().enumerate() {
        if word.len() < 3
            || STOPWORDS.contains(&word.as_str())
            || word.chars().all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let entry = counts.entry(word).or_insert((0, pos));
        entry.0 += 1;
    }
    let mut ranked: Vec<(String, (usize, usize))> = counts.into_iter().collect();
    ranked.sort_by(|(wa, (ca, pa)), (wb, (cb, pb))| {
        cb.cmp(ca).then(wb.len().cmp(&wa.len())).then(pa.cmp(pb))
    });
    ranked.into_iter().take(max).map(|(w, _)| w).collect()
}

/// A mood for `text` by the words it uses, or [`DEFAULT_MOOD`].
pub fn mood_of(text: &str) -> String {
    let words = words(text);
    MOODS
        .iter()
        .map(|(mood, cues)| {
            let hits = words.iter().filter(|w| cues.contains(&w.as_str())).count();
            (hits, *mood)
        })
        .filter(|(hits, _)| *hits > 0)
        .max_by_key(|(hits, _)| *hits)
        .map_or_else(|| DEFAULT_MOOD.to_string(), |(_, mood)| mood.to_string())
}

/// A short line that stands for the scene on its title card: the first
/// sentence, cut at a comma or after `max_words` words.
pub fn key_line(narration: &str, max_words: usize) -> String {
    let first = sentences(narration).into_iter().next().unwrap_or_default();
    let clause = match first.split_once(", ") {
        Some((head, _)) if head.split_whitespace().count() >= 3 => head.to_string(),
        _ => first,
    };
    let words: Vec<&str> = clause.split_whitespace().collect();
    if words.len() <= max_words {
        clause.trim_end_matches(['.', ',', ';', ':']).to_string()
    } else {
        format!(
            "{}…",
            words[..max_words]
                .join(" ")
                .trim_end_matches([',', ';', ':'])
        )
    }
}

/// Breaks `text` into lines of at most `width` characters (longer words
/// stand alone).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = if line.is_empty() {
            word.chars().count()
        } else {
            line.chars().count() + 1 + word.chars().count()
        };
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// One subtitle cue, in seconds from the start of the video.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
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
    fn sentences_keep_punctuation_and_ignore_decimal_points() {
        let s = sentences("It costs 3.5 dollars. Really?  Yes!\n\nNew paragraph");
        assert_eq!(
            s,
            ["It costs 3.5 dollars.", "Really?", "Yes!", "New paragraph"]
        );
    }

    #[test]
    fn scenes_never_split_a_sentence_and_honour_the_target() {
        let sents: Vec<String> = (0..7)
            .map(|i| format!("Sentence number {i} has some words."))
            .collect();
        let scenes = group_into_scenes(&sents, Some(3));
        assert_eq!(scenes.len(), 3);
        assert_eq!(scenes.join(" "), sents.join(" "));
        let one = group_into_scenes(&sents[..1], Some(5));
        assert_eq!(one.len(), 1);
        let many: Vec<String> = (0..500).map(|i| format!("Sentence {i} is here.")).collect();
        assert_eq!(group_into_scenes(&many, None).len(), MAX_SCENES);
    }

    #[test]
    fn keywords_skip_stopwords() {
        let k = keywords("The ocean waves crash on the rocky ocean shore", 2);
        assert_eq!(k[0], "ocean");
        assert!(!k.contains(&"the".to_string()));
    }

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

    #[test]
    fn key_line_is_short() {
        assert_eq!(
            key_line("Black holes bend light, and time itself. More.", 8),
            "Black holes bend light"
        );
        assert_eq!(
            key_line("One two three four five six seven eight nine ten.", 5),
            "One two three four five…"
        );
    }

    #[test]
    fn wrap_respects_width() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
    }
}

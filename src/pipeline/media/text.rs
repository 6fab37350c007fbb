//! Text work of the pipeline: splitting a script into scenes, picking words
//! to search footage with, and guessing moods.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::model::limits;

/// Words that say nothing about what to show, one file of plain words.
const STOPWORDS: &str = include_str!("stopwords.txt");

/// True for a word in [`STOPWORDS`].
fn is_stopword(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        STOPWORDS
            .lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect()
    })
    .contains(word)
}

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

/// Whether a word ends a sentence: a full stop, `!` or `?`, perhaps
/// inside closing quotes or brackets.
pub fn ends_sentence(word: &str) -> bool {
    word.trim_end_matches(['"', '\'', ')', '”', '’'])
        .ends_with(['.', '!', '?'])
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    let collapsed = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().any(char::is_alphanumeric) {
        out.push(collapsed);
    }
    current.clear();
}

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
        .clamp(1, *limits::SCENES.end() as usize)
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
        if word.len() < 3 || is_stopword(&word) || word.chars().all(|c| c.is_ascii_digit()) {
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
        assert_eq!(
            group_into_scenes(&many, None).len(),
            *limits::SCENES.end() as usize
        );
    }

    #[test]
    fn keywords_skip_stopwords() {
        let k = keywords("The ocean waves crash on the rocky ocean shore", 2);
        assert_eq!(k[0], "ocean");
        assert!(!k.contains(&"the".to_string()));
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
}

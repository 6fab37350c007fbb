//! The espeak-ng voice catalogue: the voices installed on this machine,
//! and which of them a request's voice or language names.

use std::path::Path;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{ToolError, process};

/// An installed espeak-ng voice.
#[derive(Debug, Clone)]
pub struct Voice {
    /// Its language code, which is also how espeak-ng is told to use it.
    pub language: String,
    /// Its name, such as `English_(America)`.
    pub name: String,
    /// Its file, such as `gmw/en-US`.
    pub file: String,
    /// Other language codes the voice answers to, with their priority.
    pub aliases: Vec<(String, u32)>,
    /// True for a variant (`+adam`), which changes another voice.
    pub variant: bool,
}

/// Every installed voice and variant, as `espeak` (the program's path)
/// lists them.
pub async fn installed(espeak: &Path, cancel: &CancellationToken) -> Result<Vec<Voice>, ToolError> {
    let mut all = Vec::new();
    for (arg, variant) in [("--voices", false), ("--voices=variant", true)] {
        let out = process::run(
            Command::new(espeak).arg(arg),
            None,
            cancel,
            "espeak-ng --voices",
        )
        .await?;
        all.extend(parse_voices(&String::from_utf8_lossy(&out.stdout), variant));
    }
    Ok(all)
}

/// Parses `espeak-ng --voices` (and `--voices=variant`) output.
pub fn parse_voices(listing: &str, variant: bool) -> Vec<Voice> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _priority = cols.next()?;
            let language = cols.next()?.to_string();
            let _age_gender = cols.next()?;
            let name = cols.next()?.to_string();
            let file = cols.next()?.to_string();
            let rest: String = cols.collect::<Vec<_>>().join(" ");
            let aliases = rest
                .split(['(', ')'])
                .filter_map(|part| {
                    let (code, prio) = part.trim().split_once(' ')?;
                    Some((code.to_string(), prio.trim().parse().ok()?))
                })
                .collect();
            Some(Voice {
                language,
                name,
                file,
                aliases,
                variant,
            })
        })
        .collect()
}

/// The espeak voice a request asked for, if it exists: a language code
/// (`en-us`), a voice name (`English_(America)`) or file (`gmw/en-US`),
/// optionally with `+variant`.
pub fn find_voice(voices: &[Voice], wanted: &str) -> Option<String> {
    let (base, variant) = match wanted.split_once('+') {
        Some((b, v)) => (b, Some(v)),
        None => (wanted, None),
    };
    let base = base.trim();
    let eq = |a: &str| a.eq_ignore_ascii_case(base);
    let found = voices
        .iter()
        .filter(|v| !v.variant)
        .find(|v| eq(&v.language) || eq(&v.name) || eq(&v.file))
        .map(|v| v.language.clone())
        .or_else(|| by_language(voices, base))?;
    match variant {
        None => Some(found),
        Some(variant) => voices
            .iter()
            .filter(|v| v.variant)
            .find(|v| {
                v.name.eq_ignore_ascii_case(variant)
                    || v.file
                        .rsplit('/')
                        .next()
                        .is_some_and(|f| f.eq_ignore_ascii_case(variant))
            })
            .map(|_| format!("{found}+{variant}")),
    }
}

/// Language names clients send (AI-Video-Gen sends `english`, `hindi`,
/// ...) and their codes.
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("english", "en"),
    ("hindi", "hi"),
    ("kannada", "kn"),
    ("telugu", "te"),
    ("tamil", "ta"),
    ("bengali", "bn"),
    ("marathi", "mr"),
    ("spanish", "es"),
    ("french", "fr"),
    ("german", "de"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("russian", "ru"),
    ("japanese", "ja"),
    ("korean", "ko"),
    ("chinese", "cmn"),
    ("mandarin", "cmn"),
    ("arabic", "ar"),
    ("dutch", "nl"),
    ("polish", "pl"),
    ("turkish", "tr"),
    ("indonesian", "id"),
    ("vietnamese", "vi"),
];

/// The best voice for a language code or name (`es`, `Spanish`).
pub fn by_language(voices: &[Voice], language: &str) -> Option<String> {
    let lang = language.trim().to_ascii_lowercase();
    if lang.is_empty() {
        return None;
    }
    let lang = LANGUAGE_NAMES
        .iter()
        .find(|(name, _)| *name == lang)
        .map_or(lang.clone(), |(_, code)| code.to_string());
    let voices: Vec<&Voice> = voices.iter().filter(|v| !v.variant).collect();
    if let Some(v) = voices
        .iter()
        .find(|v| v.language.eq_ignore_ascii_case(&lang))
    {
        return Some(v.language.clone());
    }
    if let Some((v, _)) = voices
        .iter()
        .filter_map(|v| {
            v.aliases
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(&lang))
                .map(|(_, prio)| (v, *prio))
        })
        .min_by_key(|(_, prio)| *prio)
    {
        return Some(v.language.clone());
    }
    voices
        .iter()
        .find(|v| v.name.to_ascii_lowercase().starts_with(&lang))
        .map(|v| v.language.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es
";
    const VARIANTS: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Adam               !v/adam
";

    fn voices() -> Vec<Voice> {
        let mut v = parse_voices(LISTING, false);
        v.extend(parse_voices(VARIANTS, true));
        v
    }

    #[test]
    fn voices_are_found_by_code_name_file_and_language() {
        let v = voices();
        assert_eq!(find_voice(&v, "en-US").as_deref(), Some("en-us"));
        assert_eq!(
            find_voice(&v, "English_(America)").as_deref(),
            Some("en-us")
        );
        assert_eq!(find_voice(&v, "gmw/en").as_deref(), Some("en-gb"));
        assert_eq!(find_voice(&v, "en").as_deref(), Some("en-gb"));
        assert_eq!(find_voice(&v, "en-us+adam").as_deref(), Some("en-us+adam"));
        assert_eq!(find_voice(&v, "en-us+nobody"), None);
        assert_eq!(find_voice(&v, "en_us_001"), None);
        assert_eq!(by_language(&v, "Spanish").as_deref(), Some("es"));
        assert_eq!(by_language(&v, "english").as_deref(), Some("en-gb"));
        assert_eq!(by_language(&v, "klingon"), None);
    }
}

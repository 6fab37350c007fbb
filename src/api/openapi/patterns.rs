//! Regular expressions, in the dialect JSON Schema reads (ECMA-262), that
//! say exactly which strings the request validators accept. They are built
//! from the same lists and ranges the validators use, so that the document
//! and the server cannot drift apart.

use std::ops::RangeInclusive;

/// What `char::is_whitespace` accepts (Unicode `White_Space`), as the body
/// of a character class.
const SPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` accepts.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// Somewhere in the string, a character that is neither space nor
/// control: what a required text field needs (see `model::non_blank`).
pub fn visible() -> String {
    format!("[^{SPACE}{CONTROL}]")
}

/// Nothing but spaces and control characters, which an optional text field
/// treats as absent.
pub fn blank() -> String {
    format!("^[{SPACE}{CONTROL}]*$")
}

/// Exactly one of `words`, with optional spaces around it, as written.
pub fn one_of(words: &[&str]) -> String {
    let choices: Vec<String> = words.iter().map(|w| literal(w, false)).collect();
    format!("^{}$", spaced(&choices))
}

/// A colour: `#rgb` or `#rrggbb` in hex digits, or one of `names` in any
/// case, with optional spaces around it.
pub fn color(names: &[&str]) -> String {
    let mut choices = vec!["#(?:[0-9a-fA-F]{3}){1,2}".to_string()];
    choices.extend(names.iter().map(|w| literal(w, true)));
    format!("^{}$", spaced(&choices))
}

/// A subtitle position: anything up to a last comma (the horizontal part,
/// which is ignored), then one of `words` in any case, with optional spaces
/// around it.
pub fn after_last_comma(words: &[&str]) -> String {
    let choices: Vec<String> = words.iter().map(|w| literal(w, true)).collect();
    format!(r"^(?:[\s\S]*,)?{}$", spaced(&choices))
}

/// One or more of `words`, joined by commas, nothing else.
pub fn comma_list(words: &[&str]) -> String {
    let words: Vec<String> = words.iter().map(|w| literal(w, false)).collect();
    let words = words.join("|");
    format!("^(?:{words})(?:,(?:{words}))*$")
}

/// Exactly one of `words` and nothing around it, ASCII letters in either
/// case.
pub fn exactly_any_case(words: &[&str]) -> String {
    let choices: Vec<String> = words.iter().map(|w| literal(w, true)).collect();
    format!("^(?:{})$", choices.join("|"))
}

/// `choices` as one group, with optional spaces on either side.
fn spaced(choices: &[String]) -> String {
    format!("[{SPACE}]*(?:{})[{SPACE}]*", choices.join("|"))
}

/// `word` matched literally; with `any_case`, each ASCII letter in either
/// case.
fn literal(word: &str, any_case: bool) -> String {
    word.chars()
        .map(|c| match c {
            c if any_case && c.is_ascii_alphabetic() => {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            }
            c if c.is_ascii_alphanumeric() || c == ':' || c == ' ' => c.to_string(),
            c => format!(r"\{c}"),
        })
        .collect()
}

/// A whole number in `range` written plainly (digits only, no sign, no
/// leading zero), and even when `even` is set: what `fields::whole_number`
/// accepts in a string.
pub fn whole_number(range: RangeInclusive<u32>, even: bool) -> String {
    let mut choices = Vec::new();
    let (mut start, hi) = (*range.start(), *range.end());
    while start <= hi {
        let digits = start.to_string().len() as u32;
        let end = hi.min(10u32.saturating_pow(digits).saturating_sub(1));
        same_length(
            start.to_string().as_bytes(),
            end.to_string().as_bytes(),
            even,
            String::new(),
            &mut choices,
        );
        match end.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    format!("^(?:{})$", choices.join("|"))
}

/// The choices for every number from `lo` to `hi`, both `len` digits long.
fn same_length(lo: &[u8], hi: &[u8], even: bool, prefix: String, out: &mut Vec<String>) {
    let (first_lo, first_hi) = (lo[0], hi[0]);
    if lo.len() == 1 {
        out.push(format!("{prefix}{}", digit_class(first_lo, first_hi, even)));
        return;
    }
    let (lo_rest, hi_rest) = (&lo[1..], &hi[1..]);
    if first_lo == first_hi {
        let prefix = format!("{prefix}{}", first_lo as char);
        return same_length(lo_rest, hi_rest, even, prefix, out);
    }
    let mut full_from = first_lo;
    if !lo_rest.iter().all(|&d| d == b'0') {
        let nines = vec![b'9'; lo_rest.len()];
        same_length(
            lo_rest,
            &nines,
            even,
            format!("{prefix}{}", first_lo as char),
            out,
        );
        full_from += 1;
    }
    let hi_full = hi_rest.iter().all(|&d| d == b'9');
    let full_to = if hi_full { first_hi } else { first_hi - 1 };
    if full_from <= full_to {
        let class = digit_class(full_from, full_to, false);
        out.push(format!(
            "{prefix}{class}{}",
            any_digits(lo_rest.len(), even)
        ));
    }
    if !hi_full {
        let zeros = vec![b'0'; hi_rest.len()];
        same_length(
            &zeros,
            hi_rest,
            even,
            format!("{prefix}{}", first_hi as char),
            out,
        );
    }
}

/// `count` digits of any value; the last one even when `even` is set.
fn any_digits(count: usize, even: bool) -> String {
    let (free, last) = if even {
        (count - 1, "[02468]")
    } else {
        (count, "")
    };
    let free = match free {
        0 => String::new(),
        1 => "[0-9]".into(),
        n => format!("[0-9]{{{n}}}"),
    };
    format!("{free}{last}")
}

/// One digit from `lo` to `hi` (ASCII), only even ones when `even` is set.
fn digit_class(lo: u8, hi: u8, even: bool) -> String {
    let digits: String = (lo..=hi)
        .filter(|d| !even || (d - b'0').is_multiple_of(2))
        .map(char::from)
        .collect();
    match digits.len() {
        1 => digits,
        _ => format!("[{digits}]"),
    }
}

#[cfg(test)]
#[path = "patterns_tests.rs"]
mod tests;

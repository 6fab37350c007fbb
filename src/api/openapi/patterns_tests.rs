//! The patterns agree with the validators, checked with a real regex engine
//! over every value that matters.

use regex::Regex;

use super::*;
use crate::api::fields::whole_number as parse_whole;
use crate::model::non_blank;

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|err| panic!("{pattern}: {err}"))
}

#[test]
fn number_patterns_match_exactly_the_range() {
    for (range, even) in [
        (1..=20, false),
        (1..=64, false),
        (64..=3840, true),
        (0..=1000, false),
        (7..=7, false),
        (95..=105, true),
        (1..=1_000_000, false),
    ] {
        let pattern = whole_number(range.clone(), even);
        let re = compile(&pattern);
        for n in 0..=12_000u32 {
            let expected = range.contains(&n) && (!even || n % 2 == 0);
            assert_eq!(
                re.is_match(&n.to_string()),
                expected,
                "{n} against {pattern}"
            );
            let parsed = parse_whole(Some(&n.to_string()), 0..=i64::MAX);
            assert_eq!(parsed, Ok(Some(i64::from(n))));
        }
        for other in ["", "05", "+5", " 5", "5 ", "1.0", "-1", "1e3", "٣"] {
            assert!(!re.is_match(other), "{other:?} against {pattern}");
            if !other.is_empty() {
                assert!(parse_whole(Some(other), 0..=i64::MAX).is_err(), "{other:?}");
            }
        }
    }
}

#[test]
fn visible_and_blank_agree_with_non_blank() {
    let visible = compile(&visible());
    let blank = compile(&blank());
    let chars = (0..0x3100u32)
        .chain([0xfeff, 0x180e, 0x200b, 0x1f600])
        .filter_map(char::from_u32);
    for c in chars {
        let text = format!(" {c}\t");
        let kept = non_blank(Some(text.clone())).is_some();
        assert_eq!(visible.is_match(&text), kept, "U+{:04X}", c as u32);
        assert_eq!(blank.is_match(&text), !kept, "U+{:04X}", c as u32);
    }
}

#[test]
fn word_patterns_take_spaces_and_case_as_the_validators_do() {
    let aspect = compile(&one_of(&["9:16", "portrait"]));
    assert!(aspect.is_match(" 9:16\u{3000}"));
    assert!(!aspect.is_match("Portrait"));
    assert!(!aspect.is_match("9:16x"));
    let color = compile(&color(&["white"]));
    for good in ["WHITE ", "#fff", " #A0b1C2", "white"] {
        assert!(color.is_match(good), "{good:?}");
    }
    for bad in ["whit", "#ffff", "#ggg", "white#fff"] {
        assert!(!color.is_match(bad), "{bad:?}");
    }
    let flag = compile(&exactly_any_case(&["true", "0", ""]));
    for good in ["TRUE", "0", ""] {
        assert!(flag.is_match(good), "{good:?}");
    }
    assert!(!flag.is_match(" true"));
    let levels = compile(&comma_list(&["info", "error"]));
    assert!(levels.is_match("info,error,info"));
    for bad in ["", "info,", " info", "info, error"] {
        assert!(!levels.is_match(bad), "{bad:?}");
    }
    let position = compile(&after_last_comma(&["top", "bottom"]));
    for good in ["top", " Bottom ", "left,top", "a,b, TOP", ",bottom"] {
        assert!(position.is_match(good), "{good:?}");
    }
    for bad in ["top,", "left", "top,left", "xtop"] {
        assert!(!position.is_match(bad), "{bad:?}");
    }
}

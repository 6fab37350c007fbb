//! Reading values the way clients send them: numbers that arrive as
//! strings, booleans as words, and whole numbers in query strings and
//! headers. The limits themselves live in [`crate::model::limits`].

use std::ops::RangeInclusive;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::model::{Field, Invalid, JobWebhook, WebhookEvent, non_blank};

/// A body field that the original front end sends as a string or a number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Loose {
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction (a whole one is accepted).
    Float(f64),
    /// A JSON boolean.
    Bool(bool),
    /// A string holding the value.
    Text(String),
}

impl Loose {
    /// The value as a whole number for `field`; anything else is the
    /// field's usual error, which names its range.
    pub fn as_u32(&self, field: Field) -> Result<u32, Invalid> {
        let n = match self {
            Loose::Int(n) => Some(*n),
            Loose::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Loose::Text(s) => whole_number(Some(s), 0..=i64::MAX).ok().flatten(),
            _ => None,
        };
        n.and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Invalid::of(field))
    }

    /// The value as true or false for `field`.
    pub fn as_bool(&self, field: Field) -> Result<bool, Invalid> {
        match self {
            Loose::Bool(b) => Ok(*b),
            Loose::Int(0) => Ok(false),
            Loose::Int(1) => Ok(true),
            // JSON Schema counts 1.0 as the integer 1.
            Loose::Float(f) if *f == 0.0 => Ok(false),
            Loose::Float(f) if *f == 1.0 => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
            Loose::Text(s) if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => {
                Ok(false)
            }
            _ => Err(Invalid::of(field)),
        }
    }
}

/// Reads an optional whole number that may carry a zero fraction
/// (`1080.0`), which JSON Schema counts as an integer. Anything else is a
/// type error that names the value.
pub fn optional_whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{number} is not a whole number from 0 to {}",
                u32::MAX
            ))
        })
}

/// A value that is not a plain whole number in the range it must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

/// A whole number in `range` from a query value or a string field:
/// `Ok(None)` when it is absent. Only plain decimal digits count (an
/// optional `-`, no `+`, no spaces, no leading zero), so that what passes
/// is exactly what the OpenAPI document's pattern describes.
pub fn whole_number(
    raw: Option<&str>,
    range: RangeInclusive<i64>,
) -> Result<Option<i64>, OutOfRange> {
    let Some(text) = raw else {
        return Ok(None);
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain {
        return Err(OutOfRange);
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or(OutOfRange)
}

/// `raw` when it is a plain `host[:port]`, as a `Host` header should be: a
/// DNS name, an IPv4 address or a bracketed IPv6 address, and an optional
/// port. Anything else (`?`, `#`, `@`, `/`, spaces) is `None`, so that a
/// request cannot choose what absolute links point at.
pub fn host_and_port(raw: &str) -> Option<&str> {
    let (host, port) = match raw.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (raw, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        }
    };
    (port_ok && host_ok).then_some(raw)
}

/// A job's own webhook from a body's `webhook` URL and its
/// `webhook_events_filter`, a list of event classes. No URL, no webhook.
pub fn webhook(
    url: Option<String>,
    filter: Option<serde_json::Value>,
) -> Result<Option<JobWebhook>, Invalid> {
    let events = match filter {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().and_then(WebhookEvent::parse))
                .collect::<Option<Vec<_>>>()
                .filter(|events| !events.is_empty())
                .ok_or_else(|| Invalid::of(Field::WebhookEventsFilter))?,
        ),
        Some(_) => return Err(Invalid::of(Field::WebhookEventsFilter)),
    };
    // Blank is absent; anything else is checked as sent.
    Ok(url
        .filter(|url| non_blank(Some(url.clone())).is_some())
        .map(|url| JobWebhook::new(url, events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_with_ports_pass() {
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:3000",
            "[::1]:8080",
            "[::1]",
            "my_host",
        ] {
            assert_eq!(host_and_port(good), Some(good), "{good}");
        }
        for bad in [
            "evil.com?x=1",
            "evil.com#a",
            "user@evil.com",
            "evil.com/path",
            "a b",
            "",
            ":80",
            "example.com:0",
            "example.com:99999",
            "example.com:",
            "[nope]",
            "a..b",
            "x:y:z",
        ] {
            assert_eq!(host_and_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn whole_numbers_are_plain_and_bounded() {
        assert_eq!(whole_number(None, 1..=5), Ok(None));
        assert_eq!(whole_number(Some("3"), 1..=5), Ok(Some(3)));
        assert_eq!(whole_number(Some("0"), 0..=5), Ok(Some(0)));
        for bad in ["", "  ", " 3 ", "+3", "03", "3.0", "three"] {
            assert_eq!(whole_number(Some(bad), 0..=5), Err(OutOfRange), "{bad:?}");
        }
        assert_eq!(whole_number(Some("6"), 1..=5), Err(OutOfRange));
        assert_eq!(whole_number(Some("-1"), 0..=5), Err(OutOfRange));
        assert_eq!(whole_number(Some("2.0"), 0..=5), Err(OutOfRange));
    }

    #[test]
    fn loose_values_read_as_their_field_or_name_its_rule() {
        assert_eq!(Loose::Text("4".into()).as_u32(Field::SceneCount), Ok(4));
        assert_eq!(Loose::Float(4.0).as_u32(Field::SceneCount), Ok(4));
        assert_eq!(
            Loose::Text("many".into()).as_u32(Field::SceneCount),
            Err(Invalid::of(Field::SceneCount))
        );
        assert_eq!(
            Loose::Int(-1).as_u32(Field::Threads),
            Err(Invalid::of(Field::Threads))
        );
        assert_eq!(
            Loose::Text("TRUE".into()).as_bool(Field::UseMusic),
            Ok(true)
        );
        assert!(
            Loose::Text("sometimes".into())
                .as_bool(Field::UseMusic)
                .is_err()
        );
    }
}

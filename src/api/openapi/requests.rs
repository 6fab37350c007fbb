//! What each request accepts, in the JSON Schema terms that the derived
//! shapes cannot carry: lengths, ranges and word lists from
//! [`crate::model::limits`] and the validators, numbers and flags that
//! arrive as strings, typed query parameters, and the rules that join
//! fields (a topic or a script; a width with a height; AI-Video-Gen's
//! body has no `videoSubject`).
//!
//! Every rule here mirrors a check in the server, so that a request the
//! document calls valid is accepted and one it calls invalid is refused.
//! `.ci/openapi-check` holds the two to that with schemathesis.

use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

use super::patterns;
use crate::Config;
use crate::api::clipzy::{MAX_PAGE_NUMBER, MAX_PAGE_SIZE};
use crate::api::moneyprinter::events::MAX_PAGE;
use crate::model::{Aspect, Level, WebhookEvent, limits};

/// Applies every rule, with the limits `config` sets. Returns what it could
/// not find (a renamed field or parameter); a test keeps that empty.
pub fn refine(doc: &mut Value, config: &Config) -> Vec<String> {
    let mut missing = Vec::new();
    songs_form(doc, config.max_upload_files, &mut missing);
    let aspects: Vec<&str> = Aspect::WORDS.iter().map(|(word, _)| *word).collect();
    let positions: Vec<&str> = limits::POSITIONS.iter().map(|(word, _)| *word).collect();
    let words = |pattern: String| words_or_blank(&pattern);

    let v1 = [
        ("topic", text(limits::SUBJECT_CHARS)),
        ("script", text(limits::SCRIPT_CHARS)),
        ("voice", text(limits::NAME_CHARS)),
        ("language", text(limits::NAME_CHARS)),
        ("tone", text(limits::NAME_CHARS)),
        ("ai_model", text(limits::NAME_CHARS)),
        ("custom_prompt", text(limits::PROMPT_CHARS)),
        ("scene_count", whole(limits::SCENES, false)),
        ("threads", whole(limits::THREADS, false)),
        ("width", whole(limits::FRAME_SIDE, true)),
        ("height", whole(limits::FRAME_SIDE, true)),
        ("aspect_ratio", words(patterns::one_of(&aspects))),
        (
            "subtitle_color",
            words(patterns::color(limits::COLOR_NAMES)),
        ),
        (
            "subtitles_position",
            words(patterns::after_last_comma(&positions)),
        ),
    ];
    let v1 = [v1.as_slice(), &webhook_fields()].concat();
    let v1_rules = json!({"allOf": [
        {"anyOf": [required_visible("topic"), required_visible("script")]},
        paired("width", "height"),
    ]});
    body(doc, "CreateJob", &v1, v1_rules, &mut missing);

    let moneyprinter = [
        ("videoSubject", text(limits::SUBJECT_CHARS)),
        ("script", text(limits::SCRIPT_CHARS)),
        ("voice", text(limits::NAME_CHARS)),
        ("aiModel", text(limits::NAME_CHARS)),
        ("customPrompt", text(limits::PROMPT_CHARS)),
        ("paragraphNumber", loose_whole(limits::SCENES, false)),
        ("threads", loose_whole(limits::THREADS, false)),
        ("width", loose_whole(limits::FRAME_SIDE, true)),
        ("height", loose_whole(limits::FRAME_SIDE, true)),
        ("useMusic", loose_flag()),
        ("motion", loose_flag()),
        ("aspectRatio", words(patterns::one_of(&aspects))),
        ("color", words(patterns::color(limits::COLOR_NAMES))),
        (
            "subtitlesPosition",
            words(patterns::after_last_comma(&positions)),
        ),
    ];
    let moneyprinter = [moneyprinter.as_slice(), &webhook_fields()].concat();
    let moneyprinter_rules = json!({"allOf": [
        required_visible("videoSubject"),
        paired("width", "height"),
    ]});
    body(
        doc,
        "GenerateBody",
        &moneyprinter,
        moneyprinter_rules,
        &mut missing,
    );

    let aivideogen = [
        ("topic", text(limits::SUBJECT_CHARS)),
        ("num_slides", loose_whole(limits::SCENES, false)),
        ("language", text(limits::NAME_CHARS)),
        ("tone", text(limits::NAME_CHARS)),
    ];
    let aivideogen = [aivideogen.as_slice(), &webhook_fields()].concat();
    // A body with `videoSubject` is MoneyPrinter's, whatever else it has.
    let aivideogen_rules = json!({"allOf": [
        required_visible("topic"),
        {"not": {"required": ["videoSubject"]}},
    ]});
    body(doc, "AvgBody", &aivideogen, aivideogen_rules, &mut missing);

    let subscription = [
        ("url", url()),
        (
            "events",
            json!({"anyOf": [webhook_events(), {"type": "null"}]}),
        ),
        ("description", text(crate::api::webhooks::DESCRIPTION_CHARS)),
    ];
    let subscription_rules = json!({"required": ["url"]});
    body(
        doc,
        "CreateWebhook",
        &subscription,
        subscription_rules,
        &mut missing,
    );

    // Event ids are SQLite's 64-bit row ids.
    let after = range(0..=i64::MAX);
    let levels: Vec<&str> = Level::ALL.iter().map(|level| level.as_str()).collect();
    let queries = [
        ("/api/v1/jobs", "page", range(1..=MAX_PAGE_NUMBER)),
        ("/api/v1/jobs", "page_size", range(1..=MAX_PAGE_SIZE)),
        ("/api/jobs/{id}/events", "after", after.clone()),
        ("/api/jobs/{id}/events", "limit", range(1..=MAX_PAGE as i64)),
        (
            "/api/jobs/{id}/events",
            "level",
            json!({"type": "string", "pattern": patterns::comma_list(&levels)}),
        ),
        ("/api/v1/jobs/{id}/events", "after", after),
        (
            "/api/v1/webhooks/{id}/deliveries",
            "limit",
            range(1..=crate::api::webhooks::MAX_HISTORY),
        ),
    ];
    for (path, name, schema) in queries {
        match parameter(doc, path, name) {
            Some(parameter) => {
                parameter.insert("schema".into(), schema);
            }
            None => missing.push(format!("GET {path} ?{name}")),
        }
    }
    missing
}

/// The upload form: one to `max_files` `songs` parts.
fn songs_form(doc: &mut Value, max_files: usize, missing: &mut Vec<String>) {
    let pointer = "/paths/~1api~1upload-songs/post/requestBody/content/multipart~1form-data";
    let Some(content) = doc.pointer_mut(pointer).and_then(Value::as_object_mut) else {
        missing.push("POST /api/upload-songs form".into());
        return;
    };
    content.insert(
        "schema".into(),
        json!({
            "type": "object",
            "required": ["songs"],
            "properties": {"songs": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_files,
                "items": {"type": "string", "format": "binary", "contentMediaType": "audio/mpeg"},
                "description": "The files, each an MP3 with a `.mp3` name",
            }},
        }),
    );
}

/// Sets the properties of the component `name` and adds its joining rules.
fn body(
    doc: &mut Value,
    name: &str,
    properties: &[(&str, Value)],
    rules: Value,
    missing: &mut Vec<String>,
) {
    let Some(schema) = doc
        .pointer_mut(&format!("/components/schemas/{name}"))
        .and_then(Value::as_object_mut)
    else {
        missing.push(name.to_string());
        return;
    };
    for (field, refined) in properties {
        match schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        {
            Some(property) => replace(property, refined),
            None => missing.push(format!("{name}.{field}")),
        }
    }
    if let Value::Object(rules) = rules {
        schema.extend(rules);
    }
}

/// Replaces a property's schema with `refined`, keeping its description.
fn replace(property: &mut Map<String, Value>, refined: &Value) {
    let description = property.remove("description");
    property.clear();
    if let Value::Object(refined) = refined {
        property.extend(refined.clone());
    }
    if let Some(description) = description {
        property.insert("description".into(), description);
    }
}

/// The query parameter `name` of `GET path`.
fn parameter<'a>(doc: &'a mut Value, path: &str, name: &str) -> Option<&'a mut Map<String, Value>> {
    let path = path.replace('~', "~0").replace('/', "~1");
    doc.pointer_mut(&format!("/paths/{path}/get/parameters"))?
        .as_array_mut()?
        .iter_mut()
        .find(|p| p["name"] == name)?
        .as_object_mut()
}

/// A job's `webhook` and `webhook_events_filter`.
fn webhook_fields() -> [(&'static str, Value); 2] {
    [
        (
            "webhook",
            json!({"anyOf": [url(), {"type": "string", "pattern": patterns::blank()}, {"type": "null"}]}),
        ),
        (
            "webhook_events_filter",
            json!({"anyOf": [webhook_events(), {"type": "null"}]}),
        ),
    ]
}

/// An http or https URL.
fn url() -> Value {
    json!({"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": limits::URL_CHARS})
}

/// One or more webhook event classes.
fn webhook_events() -> Value {
    let names: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
    json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}})
}

/// Optional text of at most `max` characters, counted as sent.
fn text(max: usize) -> Value {
    json!({"type": ["string", "null"], "maxLength": max})
}

/// An optional JSON integer in `range`, even when `even` is set.
fn whole(range: RangeInclusive<u32>, even: bool) -> Value {
    let mut schema = json!({
        "type": ["integer", "null"],
        "minimum": range.start(),
        "maximum": range.end(),
    });
    if even {
        schema["multipleOf"] = json!(2);
    }
    schema
}

/// A whole number in `range`, as a JSON integer or a string of digits, as
/// MoneyPrinter's and AI-Video-Gen's front ends send it.
fn loose_whole(range: RangeInclusive<u32>, even: bool) -> Value {
    let mut number = json!({"type": "integer", "minimum": range.start(), "maximum": range.end()});
    if even {
        number["multipleOf"] = json!(2);
    }
    let text = json!({"type": "string", "pattern": patterns::whole_number(range, even)});
    json!({"anyOf": [number, text, {"type": "null"}]})
}

/// True or false, as a boolean, 0 or 1, or those words in a string (an
/// empty string is false).
fn loose_flag() -> Value {
    let words = patterns::exactly_any_case(&["true", "false", "1", "0", ""]);
    json!({"anyOf": [
        {"type": "boolean"},
        {"enum": [0, 1]},
        {"type": "string", "pattern": words},
        {"type": "null"},
    ]})
}

/// A string matching `pattern`, or a blank one, which counts as absent.
fn words_or_blank(pattern: &str) -> Value {
    json!({"anyOf": [
        {"type": "string", "pattern": pattern},
        {"type": "string", "pattern": patterns::blank()},
        {"type": "null"},
    ]})
}

/// A query integer in `range`.
fn range(range: RangeInclusive<i64>) -> Value {
    json!({"type": "integer", "minimum": range.start(), "maximum": range.end()})
}

/// `field` is present, a string, with something visible in it.
fn required_visible(field: &str) -> Value {
    json!({
        "required": [field],
        "properties": {field: {"type": "string", "pattern": patterns::visible()}},
    })
}

/// Both of `a` and `b`, or neither (absent or null).
fn paired(a: &str, b: &str) -> Value {
    let absent = json!({"type": "null"});
    let given = json!({"not": {"type": "null"}});
    json!({"anyOf": [
        {"properties": {a: absent, b: absent}},
        {"required": [a, b], "properties": {a: given, b: given}},
    ]})
}

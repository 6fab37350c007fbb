//! What a client asks for, and the one validator every dialect's request
//! goes through. Each dialect renames its own fields into a [`JobRequest`];
//! [`JobRequest::validate`] checks and normalises it against [`limits`],
//! and a failure names the [`Field`] so that each dialect can word the
//! error with its own field names.

use serde::{Deserialize, Serialize};

use super::{Aspect, JobWebhook};

/// Every limit on a request, in one place.
pub mod limits {
    use std::ops::RangeInclusive;

    /// Scenes a video may have.
    pub const SCENES: RangeInclusive<u32> = 1..=20;
    /// ffmpeg threads a render may ask for.
    pub const THREADS: RangeInclusive<u32> = 1..=64;
    /// Width or height of an explicit frame, in pixels.
    pub const FRAME_SIDE: RangeInclusive<u32> = 64..=3840;
    /// Longest script, in characters: about ten minutes of narration. An
    /// LLM's plan is held to the same length.
    pub const SCRIPT_CHARS: usize = 20_000;
    /// Longest subject (topic), in characters.
    pub const SUBJECT_CHARS: usize = 500;
    /// Longest extra instructions for the director, in characters.
    pub const PROMPT_CHARS: usize = 2_000;
    /// Longest voice, model, language or tone name, in characters.
    pub const NAME_CHARS: usize = 100;
    /// Longest webhook URL, in characters.
    pub const URL_CHARS: usize = 2_000;
    /// Colour names ffmpeg and libass both understand, besides `#rgb` and
    /// `#rrggbb`.
    pub const COLOR_NAMES: &[&str] = &[
        "white", "black", "yellow", "red", "green", "blue", "cyan", "magenta", "orange", "gray",
        "grey", "pink", "purple",
    ];
    /// Words for where subtitles go, in any case, and the position each
    /// means.
    pub const POSITIONS: &[(&str, &str)] = &[
        ("top", "top"),
        ("center", "center"),
        ("centre", "center"),
        ("middle", "center"),
        ("bottom", "bottom"),
    ];
}

/// What a client asked for, normalised from whichever dialect it spoke.
/// Stored with the job as JSON, so fields only ever get added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct JobRequest {
    /// The topic of the video.
    pub subject: String,
    /// A narration script; when present, research is skipped.
    pub script: Option<String>,
    /// espeak-ng voice (or speech API voice) for the narration.
    pub voice: Option<String>,
    /// LLM model name for research and the scene plan.
    pub ai_model: Option<String>,
    /// Number of scenes the director should plan.
    #[serde(rename = "paragraphNumber")]
    pub scene_count: Option<u32>,
    /// Extra instructions for the director.
    pub custom_prompt: Option<String>,
    /// Tone of the narration.
    pub tone: Option<String>,
    /// Language of the narration.
    pub language: Option<String>,
    /// Subtitle position: `top`, `center` or `bottom`.
    pub subtitles_position: Option<String>,
    /// Subtitle colour, `#rrggbb` or a colour name.
    pub color: Option<String>,
    /// Mix a music track from the library under the narration.
    pub use_music: bool,
    /// Stills drift and zoom and scenes cross-fade; `false` renders still
    /// scenes, the fastest render. Unset means on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motion: Option<bool>,
    /// ffmpeg threads for the render.
    pub threads: Option<u32>,
    /// Output frame shape.
    pub aspect: Option<Aspect>,
    /// Exact output width, overriding the aspect's full-size frame.
    pub width: Option<u32>,
    /// Exact output height; comes with `width`.
    pub height: Option<u32>,
    /// Which API created the job (`moneyprinter`, `aivideogen`, `clipzy`).
    pub dialect: Option<String>,
    /// The job's own webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<JobWebhook>,
    /// The `x-request-id` of the HTTP request that created the job, to
    /// find its log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A request field, by its meaning rather than by any dialect's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The topic.
    Subject,
    /// The narration script.
    Script,
    /// The voice.
    Voice,
    /// The LLM model.
    AiModel,
    /// The number of scenes.
    SceneCount,
    /// Extra instructions for the director.
    CustomPrompt,
    /// The narration's tone.
    Tone,
    /// The narration's language.
    Language,
    /// Where subtitles go.
    SubtitlesPosition,
    /// Subtitle colour.
    Color,
    /// Music on or off.
    UseMusic,
    /// Motion on or off.
    Motion,
    /// ffmpeg threads.
    Threads,
    /// Frame shape.
    Aspect,
    /// Frame width.
    Width,
    /// Frame height.
    Height,
    /// Width and height together.
    Size,
    /// The job's webhook URL.
    Webhook,
    /// The classes of events its webhook gets.
    WebhookEventsFilter,
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Missing or blank.
    Required,
    /// Missing or blank, and so is the other field, which would do instead.
    RequiredOr(Field),
    /// Not a whole number in this range.
    Range(u32, u32),
    /// Longer than this many characters.
    TooLong(usize),
    /// Not true or false.
    Flag,
    /// Not one of the frame shapes.
    Aspect,
    /// Not a subtitle position.
    Position,
    /// Not a colour.
    Color,
    /// Width or height is odd.
    Even,
    /// Width without height, or the other way round.
    Paired,
    /// Not an absolute http or https URL of at most this many characters.
    Url(usize),
    /// A URL whose host is a loopback, private, link-local or metadata
    /// address.
    PrivateAddress,
    /// Not a list of webhook event classes.
    WebhookEvents,
}

/// A request that breaks a rule: which field, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    /// The field.
    pub field: Field,
    /// The rule it breaks.
    pub problem: Problem,
}

impl Invalid {
    /// The usual problem of `field`: what a dialect reports when it cannot
    /// even read the value it was sent.
    pub fn of(field: Field) -> Self {
        let range = |r: &std::ops::RangeInclusive<u32>| Problem::Range(*r.start(), *r.end());
        let problem = match field {
            Field::SceneCount => range(&limits::SCENES),
            Field::Subject => Problem::Required,
            Field::Threads => range(&limits::THREADS),
            Field::Width | Field::Height => range(&limits::FRAME_SIDE),
            Field::Script => Problem::TooLong(limits::SCRIPT_CHARS),
            Field::UseMusic | Field::Motion => Problem::Flag,
            Field::Aspect => Problem::Aspect,
            Field::SubtitlesPosition => Problem::Position,
            Field::Color => Problem::Color,
            Field::Size => Problem::Paired,
            Field::CustomPrompt => Problem::TooLong(limits::PROMPT_CHARS),
            Field::Webhook => Problem::Url(limits::URL_CHARS),
            Field::WebhookEventsFilter => Problem::WebhookEvents,
            Field::Voice | Field::AiModel | Field::Tone | Field::Language => {
                Problem::TooLong(limits::NAME_CHARS)
            }
        };
        Invalid { field, problem }
    }

    /// `field` breaking `problem`.
    pub fn new(field: Field, problem: Problem) -> Self {
        Invalid { field, problem }
    }

    /// The error as a sentence, with the field called what `name` says.
    pub fn message(&self, name_of: impl Fn(Field) -> &'static str) -> String {
        let name = name_of(self.field);
        match self.problem {
            Problem::Required => format!("{name} is required."),
            Problem::RequiredOr(other) => format!("{name} or {} is required.", name_of(other)),
            Problem::Range(min, max) => {
                format!("{name} must be a whole number from {min} to {max}.")
            }
            Problem::TooLong(max) => format!("{name} is too long: at most {max} characters."),
            Problem::Flag => format!("{name} must be true or false."),
            Problem::Aspect => format!("{name} must be one of 9:16, 16:9 or 1:1."),
            Problem::Position => {
                format!("{name} must be top, center or bottom (optionally as \"center,bottom\").")
            }
            Problem::Color => format!(
                "{name} must be #rrggbb, #rgb or a basic colour name such as white or yellow."
            ),
            Problem::Even => format!("{name} must be even numbers."),
            Problem::Paired => format!("{name} must be given together."),
            Problem::Url(max) => format!(
                "{name} must be an absolute http:// or https:// URL of at most {max} characters."
            ),
            Problem::PrivateAddress => format!(
                "{name} points to a loopback, private, link-local or metadata address, which \
                 webhooks may not reach."
            ),
            Problem::WebhookEvents => {
                format!("{name} must be a list of start, stage, logs and completed.")
            }
        }
    }
}

impl JobRequest {
    /// Checks every limit and normalises the request: text is trimmed and
    /// blank text counts as absent, subtitle positions and colours are put
    /// in one spelling.
    pub fn validate(mut self) -> Result<JobRequest, Invalid> {
        // Lengths count what was sent, before any trimming.
        let subject = non_blank(Some(self.subject.clone()))
            .ok_or_else(|| Invalid::new(Field::Subject, Problem::Required))?;
        too_long(Some(&self.subject), Field::Subject, limits::SUBJECT_CHARS)?;
        self.subject = subject;
        for (value, field, max) in [
            (&mut self.script, Field::Script, limits::SCRIPT_CHARS),
            (&mut self.voice, Field::Voice, limits::NAME_CHARS),
            (&mut self.ai_model, Field::AiModel, limits::NAME_CHARS),
            (&mut self.tone, Field::Tone, limits::NAME_CHARS),
            (&mut self.language, Field::Language, limits::NAME_CHARS),
            (
                &mut self.custom_prompt,
                Field::CustomPrompt,
                limits::PROMPT_CHARS,
            ),
        ] {
            too_long(value.as_ref(), field, max)?;
            *value = non_blank(value.take());
        }
        in_range(self.scene_count, Field::SceneCount, &limits::SCENES)?;
        in_range(self.threads, Field::Threads, &limits::THREADS)?;
        in_range(self.width, Field::Width, &limits::FRAME_SIDE)?;
        in_range(self.height, Field::Height, &limits::FRAME_SIDE)?;
        match (self.width, self.height) {
            (None, None) => {}
            (Some(w), Some(h)) if w % 2 == 0 && h % 2 == 0 => {}
            // H.264 needs even sides.
            (Some(_), Some(_)) => return Err(Invalid::new(Field::Size, Problem::Even)),
            _ => return Err(Invalid::new(Field::Size, Problem::Paired)),
        }
        self.subtitles_position = non_blank(self.subtitles_position)
            .map(|p| position(&p).ok_or_else(|| Invalid::of(Field::SubtitlesPosition)))
            .transpose()?;
        self.color = non_blank(self.color)
            .map(|c| color(&c).ok_or_else(|| Invalid::of(Field::Color)))
            .transpose()?;
        if let Some(hook) = &self.webhook {
            let url = &hook.url;
            let http = url.starts_with("http://") || url.starts_with("https://");
            // As an RFC 3986 URI: printable ASCII only (a host in another
            // script is sent in its `xn--` form).
            let spaced = url.chars().any(|c| !c.is_ascii_graphic());
            if !http || spaced || url.chars().count() > limits::URL_CHARS {
                return Err(Invalid::of(Field::Webhook));
            }
        }
        Ok(self)
    }
}

fn too_long(value: Option<&String>, field: Field, max: usize) -> Result<(), Invalid> {
    match value {
        Some(text) if text.chars().count() > max => Err(Invalid::new(field, Problem::TooLong(max))),
        _ => Ok(()),
    }
}

fn in_range(
    value: Option<u32>,
    field: Field,
    range: &std::ops::RangeInclusive<u32>,
) -> Result<(), Invalid> {
    match value {
        Some(v) if !range.contains(&v) => Err(Invalid::of(field)),
        _ => Ok(()),
    }
}

/// Trims a text field; blank (nothing visible, only spaces or control
/// characters) counts as absent.
pub fn non_blank(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| v.chars().any(|c| !c.is_whitespace() && !c.is_control()))
}

/// The frame shape a request names; blank is none.
pub fn aspect(raw: Option<String>) -> Result<Option<Aspect>, Invalid> {
    non_blank(raw)
        .map(|raw| Aspect::parse(&raw).ok_or_else(|| Invalid::of(Field::Aspect)))
        .transpose()
}

/// MoneyPrinter sends positions as `"<horizontal>,<vertical>"`; the
/// vertical part decides where subtitles go.
fn position(raw: &str) -> Option<String> {
    let vertical = raw
        .rsplit(',')
        .next()
        .unwrap_or(raw)
        .trim()
        .to_ascii_lowercase();
    limits::POSITIONS
        .iter()
        .find(|(word, _)| *word == vertical)
        .map(|(_, position)| position.to_string())
}

/// A colour name from [`limits::COLOR_NAMES`], or `#rgb` / `#rrggbb`, lower case.
fn color(raw: &str) -> Option<String> {
    let lower = raw.trim().to_ascii_lowercase();
    let hex = lower.strip_prefix('#').unwrap_or("");
    let is_hex = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    (is_hex || limits::COLOR_NAMES.contains(&lower.as_str())).then_some(lower)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

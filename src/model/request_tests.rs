//! Tests of the request validator: every limit, one spelling, and each
//! dialect's field names.

use super::*;

fn request(subject: &str) -> JobRequest {
    JobRequest {
        subject: subject.into(),
        ..JobRequest::default()
    }
}

fn field_of(r: JobRequest) -> Field {
    r.validate().unwrap_err().field
}

#[test]
fn text_is_trimmed_and_blank_counts_as_absent() {
    let r = JobRequest {
        voice: Some("  en-us ".into()),
        tone: Some(" \u{7} ".into()),
        ..request("  Oceans ")
    }
    .validate()
    .unwrap();
    assert_eq!(r.subject, "Oceans");
    assert_eq!(r.voice.as_deref(), Some("en-us"));
    assert_eq!(r.tone, None);
    assert_eq!(field_of(request(" \t ")), Field::Subject);
}

#[test]
fn every_limit_names_its_field() {
    let too_many = JobRequest {
        scene_count: Some(21),
        ..request("x")
    };
    assert_eq!(
        too_many.validate().unwrap_err(),
        Invalid::new(Field::SceneCount, Problem::Range(1, 20))
    );
    let odd = JobRequest {
        width: Some(361),
        height: Some(640),
        ..request("x")
    };
    assert_eq!(odd.validate().unwrap_err().problem, Problem::Even);
    let half = JobRequest {
        width: Some(360),
        ..request("x")
    };
    assert_eq!(half.validate().unwrap_err().problem, Problem::Paired);
    let long = JobRequest {
        script: Some("a".repeat(limits::SCRIPT_CHARS + 1)),
        ..request("x")
    };
    assert_eq!(field_of(long), Field::Script);
    assert_eq!(
        field_of(request(&"é".repeat(limits::SUBJECT_CHARS + 1))),
        Field::Subject
    );
    assert!(
        request(&"é".repeat(limits::SUBJECT_CHARS))
            .validate()
            .is_ok()
    );
    let prompt = JobRequest {
        custom_prompt: Some("p".repeat(limits::PROMPT_CHARS + 1)),
        ..request("x")
    };
    assert_eq!(
        prompt.validate().unwrap_err().problem,
        Problem::TooLong(limits::PROMPT_CHARS)
    );
    let voice = JobRequest {
        voice: Some("v".repeat(limits::NAME_CHARS + 1)),
        ..request("x")
    };
    assert_eq!(field_of(voice), Field::Voice);
    let tiny = JobRequest {
        width: Some(32),
        height: Some(32),
        ..request("x")
    };
    assert_eq!(field_of(tiny), Field::Width);
}

#[test]
fn positions_and_colours_get_one_spelling() {
    let r = JobRequest {
        subtitles_position: Some("center,Bottom".into()),
        color: Some("#FFFF00".into()),
        ..request("x")
    }
    .validate()
    .unwrap();
    assert_eq!(r.subtitles_position.as_deref(), Some("bottom"));
    assert_eq!(r.color.as_deref(), Some("#ffff00"));
    let bad = JobRequest {
        color: Some("#ggg".into()),
        ..request("x")
    };
    assert_eq!(field_of(bad), Field::Color);
}

#[test]
fn messages_use_the_dialect_s_field_names() {
    let invalid = Invalid::of(Field::SceneCount);
    let name = |f: Field| {
        if f == Field::SceneCount {
            "num_slides"
        } else {
            "?"
        }
    };
    assert_eq!(
        invalid.message(name),
        "num_slides must be a whole number from 1 to 20."
    );
}

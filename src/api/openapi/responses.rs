//! The answers that come from the server's layers rather than from a
//! handler: a body that is malformed, too large, too slow or not JSON, a
//! database that cannot be written, a disk that is nearly full, an internal
//! error. Each operation that can meet one gets it documented here, in its
//! dialect's envelope, unless its handler already documents that status.

use utoipa::Modify;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Object, OpenApi, Ref, ResponseBuilder, Type};

/// Operations that write to the database. While it cannot be written, or
/// while the server is stopping, they answer 503 with `Retry-After`.
pub const WRITES: [&str; 10] = [
    "generate",
    "mp_cancel_job",
    "mp_cancel_newest",
    "v1_create_job",
    "v1_cancel_job",
    "v1_delete_job",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate_secret",
    "webhook_resend",
];

/// Operations that create a job, and answer 507 when the data folder's disk
/// is nearly full.
pub const SUBMITS: [&str; 3] = ["generate", "v1_create_job", "v1_rerun_job"];

/// Adds the layers' answers to every operation.
pub struct LayerAnswers;

impl Modify for LayerAnswers {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                add_answers(operation);
            }
        }
    }
}

/// The error envelope of an operation's dialect, by its tag.
fn envelope(operation: &Operation) -> Option<&'static str> {
    envelope_of_tag(operation.tags.as_ref()?.first()?)
}

/// The error envelope's schema of the operations with this first tag.
pub fn envelope_of_tag(tag: &str) -> Option<&'static str> {
    match tag {
        "moneyprinter" => Some("MpErrorBody"),
        "v1" | "openreels" | "webhooks" | "jobs" => Some("V1ErrorBody"),
        "aivideogen" => Some("DetailBody"),
        _ => None,
    }
}

fn add_answers(operation: &mut Operation) {
    let Some(envelope) = envelope(operation) else {
        return;
    };
    let id = operation.operation_id.clone().unwrap_or_default();
    let body = operation.request_body.as_ref().map(|body| match body {
        utoipa::openapi::RefOr::T(body) => body.content.contains_key("application/json"),
        utoipa::openapi::RefOr::Ref(_) => false,
    });
    let has_query = operation.parameters.iter().flatten().any(|parameter| {
        matches!(parameter, utoipa::openapi::RefOr::T(p) if p.parameter_in == ParameterIn::Query)
    });
    let mut answers = Vec::new();
    if has_query {
        answers.push((
            400,
            "The query string is malformed (a parameter given twice)",
        ));
    }
    if let Some(json) = body {
        answers.push((400, "The body is malformed"));
        answers.push((
            408,
            "The body did not arrive within BODY_TIMEOUT_SECS of the request head \
             (uploads: it came slower than UPLOAD_MIN_KIB_PER_SEC)",
        ));
        answers.push((413, "The body is larger than the limit"));
        if json {
            answers.push((
                415,
                "The body is not JSON (`Content-Type: application/json`)",
            ));
        }
    }
    if SUBMITS.contains(&id.as_str()) {
        answers.push((
            507,
            "The data folder's disk has less free space than MIN_FREE_DISK_MB",
        ));
    }
    answers.push((500, "An internal error; the server log has the details"));
    let responses = &mut operation.responses.responses;
    for (status, description) in answers {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description, envelope).build().into());
    }
    if WRITES.contains(&id.as_str()) {
        let retry_after = Header::new(Object::with_type(Type::Integer));
        let unavailable = error_response(
            "The database cannot be written right now, or the server is stopping; \
             try again after `Retry-After` seconds",
            envelope,
        )
        .header("Retry-After", retry_after);
        responses
            .entry("503".into())
            .or_insert_with(|| unavailable.build().into());
    }
}

fn error_response(description: &str, envelope: &str) -> ResponseBuilder {
    let schema = Ref::from_schema_name(envelope);
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    )
}

//! What the guard, request ids and idempotent submits add to every
//! operation: the bearer scheme (optional, as keys are off unless
//! `API_KEYS` is set), 401 and 429 on every route but `/health`,
//! `x-request-id` on every request and answer, and on the submits the
//! `Idempotency-Key` header with its 409 and 422.

use serde_json::{Map, Value, json};

use super::responses::{SUBMITS, envelope_of_tag};
use crate::api::extract::submission::MAX_KEY_LEN;

/// Adds them to the document.
pub fn add(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "One of API_KEYS, when it is set (else no key is needed). Event streams \
                        also take it as `?access_token=`; /metrics also takes METRICS_API_KEY."
    });
    doc["security"] = json!([{}, { "bearer": [] }]);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            guard(path, operation);
        }
    }
}

fn envelope(operation: &Map<String, Value>) -> Option<&'static str> {
    envelope_of_tag(operation.get("tags")?.get(0)?.as_str()?)
}

fn error(description: &str, schema: &str, header: Option<(&str, &str)>) -> Value {
    let mut response = json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") }
        }}
    });
    if let Some((name, text)) = header {
        let schema = if name == "Retry-After" {
            json!({ "type": "integer" })
        } else {
            json!({ "type": "string" })
        };
        response["headers"][name] =
            json!({ "description": text, "schema": schema, "required": true });
    }
    response
}

fn header_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": schema })
}

fn guard(path: &str, operation: &mut Map<String, Value>) {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let submit = SUBMITS.contains(&id.as_str());
    let mut parameters = vec![header_parameter(
        "x-request-id",
        "Your id for this request (1 to 128 visible ASCII characters), else one is made; \
         it comes back on the answer, is on every log line of the request, and a job the \
         request creates keeps it (`request_id`).",
        json!({ "type": "string" }),
    )];
    if submit {
        parameters.push(header_parameter(
            "Idempotency-Key",
            "Makes the submit safe to retry: for 24 hours the same key with the same body gets \
             the first answer again (with `Idempotent-Replayed: true`) and creates no job; with \
             another body, 422. A request that comes while the first with its key runs waits \
             for its answer (at most IDEMPOTENCY_WAIT_SECS), else 409. Scoped to the route and \
             the API key.",
            json!({ "type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN, "pattern": "^[!-~]+$" }),
        ));
    }
    let list = operation.entry("parameters").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        list.extend(parameters);
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for response in responses.values_mut() {
        response["headers"]["x-request-id"] = json!({
            "description": "The request's id", "schema": { "type": "string" }, "required": true
        });
        if submit && response.get("content").is_some() {
            response["headers"]["Idempotent-Replayed"] = json!({
                "description": "`true` when this is the kept answer of an earlier request with the same Idempotency-Key",
                "schema": { "type": "string", "enum": ["true"] }
            });
        }
    }
    // `/metrics` answers errors in the MoneyPrinter envelope, as every
    // route outside the dialects does.
    let fallback = (path == "/metrics").then_some("MpErrorBody");
    let Some(mut schema) = envelope(operation).or(fallback) else {
        if path == "/health" {
            operation.insert("security".into(), json!([]));
        }
        return;
    };
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    responses.entry("401").or_insert_with(|| {
        error(
            "API_KEYS is set and the request has none of them",
            schema,
            Some(("WWW-Authenticate", "`Bearer`")),
        )
    });
    if id == "generate" {
        schema = "GenerateError";
    }
    let busy = if submit {
        "Over RATE_LIMIT_PER_MIN, or MAX_QUEUED_JOBS jobs are waiting; try again after \
         `Retry-After` seconds"
    } else {
        "Over RATE_LIMIT_PER_MIN; try again after `Retry-After` seconds"
    };
    responses
        .entry("429")
        .or_insert_with(|| error(busy, schema, Some(("Retry-After", "Seconds to wait"))));
    if submit {
        responses.entry("409").or_insert_with(|| {
            error(
                "A request with this Idempotency-Key is still running",
                schema,
                Some(("Retry-After", "Seconds to wait")),
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::SUBMITS;
    use crate::Config;

    #[test]
    fn submits_take_an_idempotency_key_and_every_guarded_route_says_401_and_429() {
        let doc = super::super::document(&Config::default());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for operation in item.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap();
                let names: Vec<&str> = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(names.contains(&"x-request-id"), "{id}");
                let keyed = names.contains(&"Idempotency-Key");
                assert_eq!(keyed, SUBMITS.contains(&id), "{id}");
                let responses = &operation["responses"];
                if path == "/health" {
                    assert!(responses.get("401").is_none());
                    continue;
                }
                assert!(responses.get("401").is_some(), "{id}");
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{id}"
                );
                if keyed {
                    assert!(responses["409"]["headers"]["Retry-After"].is_object());
                    assert!(responses.get("422").is_some());
                }
            }
        }
    }
}

//! The OpenAPI 3.1 document of every route, and the interactive docs page.
//!
//! The handlers' annotations and the response types give the shapes;
//! [`responses`] adds the answers the server's layers give; [`requests`]
//! adds what the validators accept, which the types alone cannot say.

mod guarded;
mod patterns;
mod requests;
mod responses;

use axum::Router;
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::{aivideogen, clipzy, generate, moneyprinter, openreels};
use crate::{AppState, Config};
use responses::LayerAnswers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Reelay",
        description = "Self-hosted video-generation jobs, speaking the APIs of MoneyPrinter, \
                       OpenReels, AI-Video-Gen and Clipzy."
    ),
    paths(
        generate::generate,
        moneyprinter::jobs::job,
        moneyprinter::events::events,
        moneyprinter::jobs::cancel_job,
        moneyprinter::jobs::cancel_active,
        moneyprinter::llm_models::models,
        moneyprinter::songs::upload,
        openreels::events,
        aivideogen::progress::progress,
        aivideogen::status_of,
        aivideogen::video_file,
        clipzy::create,
        clipzy::list,
        clipzy::status,
        clipzy::result,
        clipzy::video_file,
        clipzy::cancel,
        clipzy::delete,
        clipzy::extras::voices,
        clipzy::extras::rerun,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::one,
        super::webhooks::delete,
        super::webhooks::default_secret,
        super::webhooks::rotate,
        super::webhooks::history::deliveries,
        super::webhooks::history::resend,
        super::job_events::job_events,
        super::health,
        super::prometheus::scrape,
    ),
    tags(
        (name = "moneyprinter", description = "MoneyPrinter's job API (seeds 000 and 003)"),
        (name = "openreels", description = "OpenReels' event stream (seed 001)"),
        (name = "aivideogen", description = "AI-Video-Gen's progress stream and routes (seed 002)"),
        (name = "v1", description = "Clipzy's v1 job API (seed 004)"),
        (name = "jobs", description = "Reelay's own: job-level events of every job"),
        (name = "webhooks", description = "Webhook subscriptions, signed as Standard Webhooks"),
        (name = "server", description = "Operations"),
    ),
    modifiers(&LayerAnswers)
)]
pub struct ApiDoc;

/// The whole document, as served at `/api/openapi.json`, with the limits
/// `config` sets.
pub fn document(config: &Config) -> Value {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(doc) => doc,
        Err(err) => {
            tracing::error!(error = %err, "the OpenAPI document could not be built");
            return Value::Null;
        }
    };
    let missing = requests::refine(&mut doc, config);
    guarded::add(&mut doc);
    if !missing.is_empty() {
        tracing::warn!(?missing, "OpenAPI rules name fields the document lacks");
    }
    // The loose number and flag schemas replace it everywhere.
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.remove("Loose");
    }
    doc
}

/// `/api/openapi.json` and the Swagger UI at `/docs`.
pub fn router(config: &Config) -> Router<AppState> {
    SwaggerUi::new("/docs")
        .external_url_unchecked("/api/openapi.json", document(config))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_finds_its_field() {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let missing = requests::refine(&mut doc, &Config::default());
        assert_eq!(missing, Vec::<String>::new());
    }

    #[test]
    fn operation_ids_are_unique_and_the_layer_lists_name_real_ones() {
        let doc = document(&Config::default());
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_string());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operation ids: {ids:?}");
        for id in responses::WRITES.iter().chain(&responses::SUBMITS) {
            assert!(
                ids.iter().any(|known| known == id),
                "{id} is not an operation"
            );
        }
        // Path parameters are the path's own; query parameters are optional.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for operation in item.as_object().unwrap().values() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    match parameter["in"].as_str().unwrap() {
                        "path" => assert!(path.contains(&format!("{{{name}}}")), "{path} {name}"),
                        "query" => assert_eq!(parameter["required"], false, "{path} {name}"),
                        _ => {}
                    }
                }
            }
        }
        let text = doc.to_string();
        assert!(
            !text.contains("#/components/schemas/Loose"),
            "Loose is still referenced"
        );
    }
}

//! `GET /api/models`: the model names the configured LLM server offers, for
//! MoneyPrinter's model picker. The page loads it first thing and must keep
//! working when no LLM server runs, so a failure is still a 200 with the
//! configured model as the only choice.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// The model list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsReply {
    /// `success`, or `error` when the LLM server could not be asked.
    pub status: &'static str,
    /// Why the list is only the configured model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Model names.
    pub models: Vec<String>,
    /// `LLM_MODEL`.
    pub default: String,
}

#[utoipa::path(get, path = "/api/models", tag = "moneyprinter", operation_id = "mp_llm_models",
    responses((status = 200, description = "Models of the LLM server at LLM_BASE_URL; when it cannot be reached, `status` is `error` with a message and the configured model", body = ModelsReply)))]
/// The LLM server's models.
pub async fn models(State(state): State<AppState>) -> Json<ModelsReply> {
    let default = state.config.llm_model.clone();
    Json(match state.engine.llm_models().await {
        Ok(models) => ModelsReply {
            status: "success",
            message: None,
            models,
            default,
        },
        Err(why) => {
            let url = format!("{}/models", state.config.llm_base_url.trim_end_matches('/'));
            ModelsReply {
                status: "error",
                message: Some(format!(
                    "Could not fetch models from {url}: {why}. Is Ollama (or another \
                     OpenAI-compatible server) running?"
                )),
                models: vec![default.clone()],
                default,
            }
        }
    })
}

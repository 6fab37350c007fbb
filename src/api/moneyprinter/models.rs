//! `GET /api/models`: the model names the configured LLM server offers, for
//! MoneyPrinter's model picker. The page loads it first thing and must keep
//! working when no LLM server runs, so a failure is still a 200 with the
//! configured model as the only choice.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;

/// How long the model list may take.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsReply {
    /// `success`, or `error` when the LLM server could not be asked.
    pub status: &'static str,
    /// Why the list is only the configured model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub models: Vec<String>,
    /// `LLM_MODEL`.
    pub default: String,
}

/// Model names from an OpenAI-style list (`data[].id`) or Ollama's own
/// (`models[].name`).
fn names(body: &Value) -> Vec<String> {
    let openai = body["data"].as_array().map(|list| {
        list.iter()
            .filter_map(|m| m["id"].as_str())
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let ollama = || {
        body["models"].as_array().map(|list| {
            list.iter()
                .filter_map(|m| m["name"].as_str().or_else(|| m["model"].as_str()))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    openai.or_else(ollama).unwrap_or_default()
}

async fn fetch(state: &AppState, url: &str) -> Result<Vec<String>, String> {
    let mut request = state.http.get(url).timeout(TIMEOUT);
    let key = &state.config.llm_api_key;
    if !key.is_empty() {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|err| {
        if err.is_timeout() {
            "it did not answer in time".to_string()
        } else if err.is_connect() {
            "nothing is listening there".to_string()
        } else {
            err.to_string()
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("it answered {}", response.status()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| "its answer was not a model list".to_string())?;
    Ok(names(&body))
}

#[utoipa::path(get, path = "/api/models", tag = "moneyprinter",
    responses((status = 200, description = "Models of the LLM server at LLM_BASE_URL; when it cannot be reached, `status` is `error` with a message and the configured model", body = ModelsReply)))]
pub async fn models(State(state): State<AppState>) -> Json<ModelsReply> {
    let url = format!("{}/models", state.config.llm_base_url.trim_end_matches('/'));
    let default = state.config.llm_model.clone();
    Json(match fetch(&state, &url).await {
        Ok(models) => ModelsReply {
            status: "success",
            message: None,
            models,
            default,
        },
        Err(why) => ModelsReply {
            status: "error",
            message: Some(format!(
                "Could not fetch models from {url}: {why}. Is Ollama (or another \
                 OpenAI-compatible server) running?"
            )),
            models: vec![default.clone()],
            default,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_list_shapes_are_read() {
        assert_eq!(
            names(&json!({"data": [{"id": "a"}, {"id": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(
            names(&json!({"models": [{"name": "llama3.2:latest"}]})),
            ["llama3.2:latest"]
        );
        assert!(names(&json!({})).is_empty());
    }
}

//! A client for OpenAI-compatible chat completions (Ollama, llama.cpp,
//! vLLM, OpenAI, ...). Replies are asked for as JSON and parsed leniently,
//! since local models often wrap JSON in prose or code fences.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ToolError, unreachable_reason};

/// One chat endpoint and model.
pub struct Llm<'a> {
    /// The client requests go out on.
    pub http: &'a reqwest::Client,
    /// The API's base URL, such as `http://localhost:11434/v1`.
    pub base_url: &'a str,
    /// Bearer token; empty for none.
    pub api_key: &'a str,
    /// The model asked for.
    pub model: String,
    /// How long one request may take.
    pub timeout: Duration,
}

/// A parsed reply and what it cost in tokens.
pub struct Reply<T> {
    /// The JSON object that was asked for.
    pub value: T,
    /// Tokens sent.
    pub prompt_tokens: u64,
    /// Tokens received.
    pub completion_tokens: u64,
}

/// How long the model list may take.
const MODELS_TIMEOUT: Duration = Duration::from_secs(3);

/// The model names an OpenAI-compatible server at `base_url` offers, or
/// why it could not be asked.
pub async fn list_models(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
) -> Result<Vec<String>, String> {
    let url = format!("{}/models", base_url.trim_end_matches('/'));
    let mut request = http.get(&url).timeout(MODELS_TIMEOUT);
    if !api_key.is_empty() {
        request = request.bearer_auth(api_key);
    }
    let response = request
        .send()
        .await
        .map_err(|err| unreachable_reason(&err))?;
    if !response.status().is_success() {
        return Err(format!("it answered {}", response.status()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| "its answer was not a model list".to_string())?;
    Ok(model_names(&body))
}

/// Model names from an OpenAI-style list (`data[].id`) or Ollama's own
/// (`models[].name`).
fn model_names(body: &Value) -> Vec<String> {
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

impl Llm<'_> {
    /// The chat completions URL.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    /// True when the server runs on this machine or the local network, where
    /// tokens cost nothing.
    pub fn is_local(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(self.base_url) else {
            return false;
        };
        let host = url.host_str().unwrap_or_default();
        match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local()
            }
            Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback(),
            Err(_) => host == "localhost" || host.ends_with(".local"),
        }
    }

    /// Sends the prompts and parses the reply's JSON object as `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        system: &str,
        user: &str,
        cancel: &CancellationToken,
    ) -> Result<Reply<T>, ToolError> {
        let url = self.endpoint();
        let body = json!({
            "model": self.model,
            "temperature": 0.7,
            "stream": false,
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": user },
            ],
        });
        let mut request = self.http.post(&url).timeout(self.timeout).json(&body);
        if !self.api_key.is_empty() {
            request = request.bearer_auth(self.api_key);
        }
        let response = tokio::select! {
            r = request.send() => r,
            _ = cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        let response = response.map_err(|err| unreachable(&url, &err))?;
        let status = response.status();
        let text = tokio::select! {
            t = response.text() => t.map_err(|err| unreachable(&url, &err))?,
            _ = cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        if !status.is_success() {
            let excerpt: String = text.chars().take(300).collect();
            return Err(ToolError::failed(format!(
                "The LLM at {url} answered {status} for model \"{}\": {excerpt}",
                self.model
            )));
        }
        let reply: Value = serde_json::from_str(&text).map_err(|_| {
            ToolError::failed(format!(
                "The LLM at {url} did not answer with chat-completion JSON."
            ))
        })?;
        let content = reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default();
        let value = extract_json(content)
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                let excerpt: String = content.chars().take(200).collect();
                ToolError::failed(format!(
                    "The LLM's answer was not the JSON that was asked for: {excerpt}"
                ))
            })?;
        Ok(Reply {
            value,
            prompt_tokens: reply["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: reply["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        })
    }
}

fn unreachable(url: &str, err: &reqwest::Error) -> ToolError {
    let why = unreachable_reason(err);
    ToolError::failed(format!(
        "No LLM answered at {url} ({why}). Start an OpenAI-compatible LLM server there \
         (for example `ollama serve` after `ollama pull llama3.2`), set LLM_BASE_URL to one, \
         or pass a `script` with the request."
    ))
}

/// The first JSON object in `text`, skipping prose and code fences.
pub fn extract_json(text: &str) -> Option<Value> {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str(text.trim()) {
        return Some(v);
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = text[start..].find('{') {
        let from = start + offset;
        let mut stream = serde_json::Deserializer::from_slice(&bytes[from..]).into_iter::<Value>();
        if let Some(Ok(v @ Value::Object(_))) = stream.next() {
            return Some(v);
        }
        start = from + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_model_list_shapes_are_read() {
        assert_eq!(
            model_names(&json!({"data": [{"id": "a"}, {"id": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(
            model_names(&json!({"models": [{"name": "llama3.2:latest"}]})),
            ["llama3.2:latest"]
        );
        assert!(model_names(&json!({})).is_empty());
    }

    #[test]
    fn json_is_found_inside_prose_and_fences() {
        let text = "Sure! Here it is:\n```json\n{\"mood\": \"calm\", \"n\": {\"a\": 1}}\n```";
        assert_eq!(extract_json(text).unwrap()["mood"], "calm");
        assert!(extract_json("no json here").is_none());
    }
}

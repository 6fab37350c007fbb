//! Local stand-ins for the remote services Reelay can use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::helpers::spawn_router;

/// An OpenAI-compatible stand-in: research and scene plans, recording the
/// models it was asked for.
#[derive(Clone, Default)]
pub struct FakeLlm {
    pub models: Arc<Mutex<Vec<String>>>,
    /// Plans this many scenes of `flood_chars` characters each, whatever
    /// was asked: an LLM that overshoots.
    pub flood: Option<(usize, usize)>,
}

impl FakeLlm {
    /// Serves chat completions and a model list on 127.0.0.1:0; the base
    /// URL to configure is `http://<addr>/v1`.
    pub async fn spawn(&self) -> SocketAddr {
        spawn_router(
            Router::new()
                .route("/v1/chat/completions", post(chat))
                .route("/v1/models", get(models))
                .with_state(self.clone()),
        )
        .await
    }
}

async fn models() -> Json<Value> {
    Json(json!({ "object": "list", "data": [
        { "id": "llama3.2", "object": "model" },
        { "id": "qwen2.5:7b", "object": "model" }
    ]}))
}

async fn chat(State(llm): State<FakeLlm>, Json(body): Json<Value>) -> Json<Value> {
    llm.models
        .lock()
        .unwrap()
        .push(body["model"].as_str().unwrap_or_default().to_string());
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let content = if system.contains("research") {
        json!({
            "summary": "Octopuses are clever sea animals.",
            "key_facts": ["Octopuses have three hearts.", "Their blood is blue.", "They taste with their arms."],
            "mood": "Calm ambient"
        })
        .to_string()
    } else {
        let n: usize = user
            .split("exactly ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let (n, chars) = llm.flood.unwrap_or((n, 0));
        let scenes: Vec<Value> = (0..n)
            .map(|i| json!({
                "narration": format!("Scene {} shows an octopus with three hearts swimming.{}", i + 1, " More.".repeat(chars / 6)),
                "visual_query": "octopus reef",
                "mood": "calm",
                "key_line": format!("Fact {}", i + 1)
            }))
            .collect();
        // Wrapped in prose and a fence, as local models like to answer.
        format!(
            "Here is the plan:\n```json\n{}\n```",
            json!({ "title": "Octopus facts", "emotional_arc": "wonder", "archetype": "explainer",
                    "music_mood": "calm_ambient", "scenes": scenes })
        )
    };
    Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150 }
    }))
}

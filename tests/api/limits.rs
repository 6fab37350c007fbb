//! Limits on what a client may send, and on what an LLM may answer.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::FakeLlm;
use crate::helpers::TestServer;
use crate::stages::quick;

fn long(n: usize) -> String {
    "é".repeat(n)
}

#[tokio::test]
async fn text_fields_have_limits_named_in_each_dialect_s_envelope() {
    let server = TestServer::start(quick()).await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "/api/generate",
            json!({ "videoSubject": long(501) }),
            StatusCode::BAD_REQUEST,
            "videoSubject is too long: at most 500 characters.",
        ),
        (
            "/api/generate",
            json!({ "videoSubject": "x", "customPrompt": long(2001) }),
            StatusCode::BAD_REQUEST,
            "customPrompt is too long: at most 2000 characters.",
        ),
        (
            "/api/generate",
            json!({ "videoSubject": "x", "voice": long(101) }),
            StatusCode::BAD_REQUEST,
            "voice is too long: at most 100 characters.",
        ),
        (
            "/api/generate",
            json!({ "videoSubject": "x", "aiModel": long(101) }),
            StatusCode::BAD_REQUEST,
            "aiModel is too long: at most 100 characters.",
        ),
        (
            "/api/generate",
            json!({ "videoSubject": "x", "script": long(20_001) }),
            StatusCode::BAD_REQUEST,
            "script is too long: at most 20000 characters.",
        ),
        (
            "/api/v1/jobs",
            json!({ "topic": long(501) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "topic is too long: at most 500 characters.",
        ),
        (
            "/api/v1/jobs",
            json!({ "topic": "x", "tone": long(101) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tone is too long: at most 100 characters.",
        ),
        (
            "/api/v1/jobs",
            json!({ "topic": "x", "language": long(101) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "language is too long: at most 100 characters.",
        ),
        (
            "/api/v1/jobs",
            json!({ "voice": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "topic or script is required.",
        ),
        (
            "/api/generate",
            json!({ "topic": long(501) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "topic is too long: at most 500 characters.",
        ),
        (
            "/api/generate",
            json!({ "topic": "x", "tone": long(101) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tone is too long: at most 100 characters.",
        ),
    ];
    for (path, body, status, message) in cases {
        let (got, reply) = server.post(path, body.clone()).await;
        assert_eq!(got, status, "{path} {reply}");
        let said = reply["message"]
            .as_str()
            .or(reply["detail"].as_str())
            .unwrap();
        assert_eq!(said, message, "{path}");
    }
    // At the limit is fine.
    let (status, reply) = server
        .post(
            "/api/generate",
            json!({ "videoSubject": long(500), "voice": long(100) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[tokio::test]
async fn an_llm_that_overshoots_is_cut_to_twenty_scenes_and_twenty_thousand_characters() {
    let llm = FakeLlm {
        flood: Some((30, 1_500)),
        ..FakeLlm::default()
    };
    let addr = llm.spawn().await;
    let server = TestServer::start_media(|c| c.llm_base_url = format!("http://{addr}/v1")).await;
    let id = server
        .submit_body(json!({ "videoSubject": "Octopuses", "width": 64, "height": 64 }))
        .await;
    let score = server
        .wait_event(&id, Duration::from_secs(30), |e| e["kind"] == "score")
        .await;
    let (status, _) = server
        .post(&format!("/api/jobs/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let scenes = score["payload"]["score"]["scenes"].as_array().unwrap();
    let narration: usize = scenes
        .iter()
        .map(|s| s["narration"].as_str().unwrap().chars().count())
        .sum();
    assert!(!scenes.is_empty() && scenes.len() <= 20, "{}", scenes.len());
    assert!(narration <= 20_000, "{narration}");
    let warnings: Vec<String> = server
        .all_events(&id)
        .await
        .iter()
        .filter(|e| e["level"] == "warning" && e["stage"] == "director")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("30 scenes")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("characters")),
        "{warnings:?}"
    );
}

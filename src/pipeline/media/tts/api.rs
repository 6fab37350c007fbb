//! An OpenAI-compatible speech API. The usual answer is the audio itself;
//! a server that also times the words (Kokoro's `captioned_speech`, for
//! one) answers JSON with the audio in base64 and a list of words, and
//! those times are kept.

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::timing::ApiWord;
use crate::pipeline::media::MediaEnv;
use crate::pipeline::{StageContext, StageError};

/// A JSON answer: audio and word times.
#[derive(Deserialize)]
struct Captioned {
    audio: String,
    #[serde(alias = "words", default)]
    timestamps: Vec<ApiWord>,
}

/// Speaks `text` into `out`; the words' times when the API gave them.
pub async fn speak(
    env: &MediaEnv,
    ctx: &StageContext,
    voice: &str,
    text: &str,
    out: &Path,
) -> Result<Option<Vec<ApiWord>>, StageError> {
    let config = &env.config;
    let url = format!(
        "{}/{}",
        config.tts_base_url.trim_end_matches('/'),
        config.tts_speech_path.trim_start_matches('/')
    );
    let mut request = env.http.post(&url).json(&json!({
        "model": config.tts_model,
        "input": text,
        "voice": voice,
        "response_format": "wav",
    }));
    if !config.tts_api_key.is_empty() {
        request = request.bearer_auth(&config.tts_api_key);
    }
    let fetch = async {
        let response = request.send().await.map_err(|err| {
            StageError::failed(format!(
                "The speech API at {url} could not be reached: {err}"
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            let body: String = response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(StageError::failed(format!(
                "The speech API at {url} answered {status}: {body}"
            )));
        }
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = response.bytes().await.map_err(|err| {
            StageError::failed(format!(
                "The speech API at {url} broke off its answer: {err}"
            ))
        })?;
        if !json {
            return Ok((bytes.to_vec(), None));
        }
        let bad = |why: String| {
            StageError::failed(format!(
                "The speech API at {url} answered JSON that is not audio with word times: {why}"
            ))
        };
        let captioned: Captioned =
            serde_json::from_slice(&bytes).map_err(|err| bad(err.to_string()))?;
        let audio = base64::engine::general_purpose::STANDARD
            .decode(captioned.audio.trim())
            .map_err(|err| bad(format!("the audio is not base64 ({err})")))?;
        Ok((audio, Some(captioned.timestamps)))
    };
    let (audio, words) = tokio::select! {
        b = fetch => b?,
        _ = ctx.cancelled() => return Err(StageError::Cancelled),
    };
    tokio::fs::write(out, &audio)
        .await
        .map_err(|err| StageError::io(format!("Could not write {}", out.display()), err))?;
    Ok(words.filter(|w| !w.is_empty()))
}

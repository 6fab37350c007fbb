//! The voices this server can narrate with, for forms and clients to offer.
//!
//! With a speech API configured (`TTS_BASE_URL`), that is its configured
//! voice; the API's own list is not discoverable. Otherwise it is every
//! installed espeak-ng language voice, listed once by asking espeak-ng.
//! Without espeak-ng the list is empty (the health report says why).

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::tools::Tool;
use crate::tools::voices;

/// One voice a request may name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VoiceChoice {
    /// What to send as `voice`.
    pub name: String,
    /// The language it speaks.
    pub language: String,
    /// How to show it, such as `English (America)`.
    pub label: String,
}

/// Every voice, and the one used when a request names none.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Voices {
    /// `espeak-ng` or `speech-api`.
    pub engine: &'static str,
    /// The voice a request without one gets.
    pub default: String,
    /// Every voice, by label.
    pub voices: Vec<VoiceChoice>,
}

impl Engine {
    /// The voices this server can narrate with.
    pub async fn voices(&self) -> Voices {
        let config = &self.inner.config;
        if !config.tts_base_url.trim().is_empty() {
            let voice = config.tts_voice.clone();
            return Voices {
                engine: "speech-api",
                default: voice.clone(),
                voices: vec![VoiceChoice {
                    language: config.tts_voice.clone(),
                    label: voice.clone(),
                    name: voice,
                }],
            };
        }
        let never = CancellationToken::new();
        let listed = match self.inner.tools.path(Tool::Espeak) {
            Ok(espeak) => {
                self.inner
                    .voices
                    .get_or_try_init(|| voices::installed(&espeak, &never))
                    .await
            }
            Err(err) => Err(err),
        };
        let mut choices: Vec<VoiceChoice> = match listed {
            Ok(all) => all
                .iter()
                .filter(|v| !v.variant)
                .map(|v| VoiceChoice {
                    name: v.language.clone(),
                    language: v.language.clone(),
                    label: v.name.replace('_', " "),
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "could not list the espeak-ng voices");
                Vec::new()
            }
        };
        choices.sort_by(|a, b| a.name.cmp(&b.name));
        choices.dedup_by(|a, b| a.name == b.name);
        choices.sort_by(|a, b| a.label.cmp(&b.label));
        Voices {
            engine: "espeak-ng",
            default: config.default_voice.clone(),
            voices: choices,
        }
    }
}

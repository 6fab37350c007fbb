//! research: key facts and a mood for the topic, from an LLM. Skipped when
//! the request carries its own script. Also the first place a job learns
//! that a tool it needs is missing.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{MediaEnv, TokenUsage};
use crate::model::Research as Findings;
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};

/// The research stage.
pub struct Research(pub Arc<MediaEnv>);

const SYSTEM: &str = "You research topics for short narrated videos. Answer with one JSON \
object and nothing else.";

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    key_facts: Vec<String>,
    #[serde(default)]
    mood: String,
}

/// A mood as a snake_case word ("Epic cinematic" → "epic_cinematic").
pub fn normalise_mood(mood: &str) -> Option<String> {
    let words: Vec<String> = super::text::words(mood)
        .into_iter()
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()))
        .take(3)
        .collect();
    (!words.is_empty()).then(|| words.join("_"))
}

#[async_trait]
impl Stage for Research {
    fn name(&self) -> &str {
        "research"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let env = &self.0;
        // Fail before any slow work when a tool is missing.
        env.tools.require(&env.needed_tools())?;
        if ctx.request().script.is_some() {
            return Ok(StageOutcome::skipped(
                "A script was provided, so no research was needed.",
            ));
        }
        let subject = ctx.request().subject.clone();
        let llm = env.llm(ctx.request());
        ctx.info(format!(
            "Researching \"{subject}\" with model: {}",
            llm.model
        ))
        .await?;
        let mut prompt = format!(
            "Topic: {subject}\n\nGive a two-sentence summary of the topic, five to seven \
             surprising but true key facts a short video could narrate, and the mood that fits \
             it as one or two words (for example epic_cinematic, calm_ambient, upbeat_pop, \
             dark_mysterious).\nAnswer as JSON: {{\"summary\": \"...\", \"key_facts\": \
             [\"...\"], \"mood\": \"...\"}}"
        );
        if let Some(language) = &ctx.request().language {
            prompt.push_str(&format!("\nWrite in this language: {language}."));
        }
        let reply = llm.json::<Reply>(SYSTEM, &prompt, ctx.token()).await?;
        let key_facts: Vec<String> = reply
            .value
            .key_facts
            .into_iter()
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect();
        if key_facts.is_empty() {
            return Err(StageError::failed(
                "The LLM's research had no key facts; try another model or pass a script.",
            ));
        }
        let data = Findings {
            summary: reply.value.summary.trim().to_string(),
            mood: normalise_mood(&reply.value.mood)
                .unwrap_or_else(|| super::text::DEFAULT_MOOD.into()),
            key_facts,
        };
        let count = data.key_facts.len();
        ctx.emit(format!("Research complete: {count} key facts"), &data)
            .await?;
        ctx.scratch().insert(TokenUsage {
            prompt: reply.prompt_tokens,
            completion: reply.completion_tokens,
        });
        ctx.scratch().insert(data);
        Ok(StageOutcome::done(format!("{count} key facts")))
    }
}

//! director: the scene plan. From an LLM for a topic, or by splitting a
//! given script into scenes of natural length. Each scene gets narration, a
//! visual query, a mood and a key line for its title card.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text::{self, DEFAULT_MOOD};
use super::{MediaEnv, TokenUsage};
use crate::model::{
    CostBreakdown, CostEstimate, CostEstimateEvent, Level, LlmCost, Plan, PlannedScene, Research,
    ScoreEvent, ServiceCost, limits,
};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};

/// The director stage.
pub struct Director(pub Arc<MediaEnv>);

/// Scenes planned when the request does not say.
const DEFAULT_SCENES: u32 = 4;

const SYSTEM: &str = "You write scripts for short narrated vertical videos. Answer with one \
JSON object and nothing else.";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    title: String,
    emotional_arc: String,
    archetype: String,
    music_mood: String,
    scenes: Vec<SceneReply>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SceneReply {
    narration: String,
    visual_query: String,
    mood: String,
    key_line: String,
}

fn scene(
    index: usize,
    narration: String,
    query: String,
    mood: String,
    key_line: String,
) -> PlannedScene {
    let query = if query.trim().is_empty() {
        text::keywords(&narration, 3).join(" ")
    } else {
        query.trim().to_string()
    };
    let key_line = if key_line.trim().is_empty() {
        text::key_line(&narration, 8)
    } else {
        key_line.trim().to_string()
    };
    PlannedScene {
        index,
        narration,
        visual_query: query,
        mood,
        key_line,
    }
}

/// Holds an LLM's plan to the limits a script has: at most
/// [`limits::SCENES`] scenes and [`limits::SCRIPT_CHARS`] characters of
/// narration. Whatever is cut is said in the warnings returned.
fn cap_plan(scenes: &mut Vec<SceneReply>) -> Vec<String> {
    let mut warnings = Vec::new();
    let max_scenes = *limits::SCENES.end() as usize;
    if scenes.len() > max_scenes {
        warnings.push(format!(
            "The LLM planned {} scenes; only the first {max_scenes} are used.",
            scenes.len()
        ));
        scenes.truncate(max_scenes);
    }
    let total: usize = scenes.iter().map(|s| s.narration.chars().count()).sum();
    if total > limits::SCRIPT_CHARS {
        let mut budget = limits::SCRIPT_CHARS;
        let mut kept = 0;
        for scene in scenes.iter_mut() {
            let length = scene.narration.chars().count();
            if length > budget {
                if kept == 0 {
                    // Even the first scene is too long: it is cut short.
                    let cut: String = scene.narration.chars().take(budget).collect();
                    scene.narration = cut
                        .rsplit_once(' ')
                        .map_or(cut.clone(), |(head, _)| head.to_string());
                    kept = 1;
                }
                break;
            }
            budget -= length;
            kept += 1;
        }
        scenes.truncate(kept);
        warnings.push(format!(
            "The LLM's narration ran to {total} characters; it was cut to {kept} scene(s) \
             to stay within {} characters.",
            limits::SCRIPT_CHARS
        ));
    }
    warnings
}

/// Splits a script into scenes without any model.
fn plan_from_script(subject: &str, script: &str, scenes: Option<u32>) -> Plan {
    let sentences = text::sentences(script);
    let groups = text::group_into_scenes(&sentences, scenes.map(|n| n as usize));
    let overall = text::mood_of(script);
    let scenes = groups
        .into_iter()
        .enumerate()
        .map(|(i, narration)| {
            let mood = match text::mood_of(&narration) {
                m if m == DEFAULT_MOOD => overall.clone(),
                m => m,
            };
            scene(i, narration, String::new(), mood, String::new())
        })
        .collect();
    Plan {
        title: subject.to_string(),
        emotional_arc: "as written".into(),
        archetype: "narrated script".into(),
        music_mood: overall,
        scenes,
    }
}

impl Director {
    async fn plan_with_llm(
        &self,
        ctx: &mut StageContext,
    ) -> Result<(Plan, TokenUsage), StageError> {
        let request = ctx.request().clone();
        let llm = self.0.llm(&request);
        ctx.info(format!("Generating script with model: {}", llm.model))
            .await?;
        let count = request.scene_count.unwrap_or(DEFAULT_SCENES);
        let mut prompt = format!(
            "Topic: {}\nWrite the script of a short narrated video in exactly {count} scenes. \
             Each scene is one to three spoken sentences (15 to 40 words). For each scene give \
             the narration, a visual_query of two or three concrete words to search stock \
             footage with, a mood, and a key_line of at most eight words to show on screen.\n",
            request.subject
        );
        if let Some(research) = ctx.scratch().get::<Research>() {
            prompt.push_str(&format!(
                "Use these facts: {}\nOverall mood: {}\n",
                research.key_facts.join(" | "),
                research.mood
            ));
        }
        if let Some(tone) = &request.tone {
            prompt.push_str(&format!("Tone: {tone}.\n"));
        }
        if let Some(language) = &request.language {
            prompt.push_str(&format!(
                "Write the narration in this language: {language}.\n"
            ));
        }
        if let Some(custom) = &request.custom_prompt {
            prompt.push_str(&format!("Further instructions: {custom}\n"));
        }
        prompt.push_str(
            "Answer as JSON: {\"title\": \"...\", \"emotional_arc\": \"...\", \"archetype\": \
             \"...\", \"music_mood\": \"...\", \"scenes\": [{\"narration\": \"...\", \
             \"visual_query\": \"...\", \"mood\": \"...\", \"key_line\": \"...\"}]}",
        );
        let reply = llm.json::<Reply>(SYSTEM, &prompt, ctx.token()).await?;
        let research_mood = ctx.scratch().get::<Research>().map(|r| r.mood.clone());
        let value = reply.value;
        let music_mood = super::research::normalise_mood(&value.music_mood)
            .or(research_mood)
            .unwrap_or_else(|| DEFAULT_MOOD.into());
        let mut replies: Vec<SceneReply> = value
            .scenes
            .into_iter()
            .filter(|s| !s.narration.trim().is_empty())
            .collect();
        for warning in cap_plan(&mut replies) {
            ctx.warn(warning).await?;
        }
        let scenes: Vec<PlannedScene> = replies
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let mood =
                    super::research::normalise_mood(&s.mood).unwrap_or_else(|| music_mood.clone());
                scene(
                    i,
                    s.narration.trim().to_string(),
                    s.visual_query,
                    mood,
                    s.key_line,
                )
            })
            .collect();
        if scenes.is_empty() {
            return Err(StageError::failed(
                "The LLM's script had no scenes with narration; try another model or pass a script.",
            ));
        }
        let mut usage = ctx
            .scratch()
            .get::<TokenUsage>()
            .copied()
            .unwrap_or_default();
        usage.prompt += reply.prompt_tokens;
        usage.completion += reply.completion_tokens;
        let plan = Plan {
            title: if value.title.trim().is_empty() {
                request.subject.clone()
            } else {
                value.title.trim().to_string()
            },
            emotional_arc: value.emotional_arc,
            archetype: value.archetype,
            music_mood,
            scenes,
        };
        Ok((plan, usage))
    }
}

#[async_trait]
impl Stage for Director {
    fn name(&self) -> &str {
        "director"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let request = ctx.request().clone();
        let (plan, usage, model) = match &request.script {
            Some(script) => {
                ctx.info("Splitting the provided script into scenes")
                    .await?;
                let plan = plan_from_script(&request.subject, script, request.scene_count);
                if plan.scenes.is_empty() {
                    return Err(StageError::failed("The script has no words to narrate."));
                }
                (plan, TokenUsage::default(), None)
            }
            None => {
                let (plan, usage) = self.plan_with_llm(ctx).await?;
                let model = self.0.llm(&request).model;
                (plan, usage, Some(model))
            }
        };
        let words: usize = plan
            .scenes
            .iter()
            .map(|s| s.narration.split_whitespace().count())
            .sum();
        let scenes = plan.scenes.len();
        ctx.log(
            Level::Success,
            "Script generated successfully",
            Some(json!({ "wordCount": words, "sceneCount": scenes })),
        )
        .await?;

        let file = ctx.work_dir().join("score.json");
        let pretty = serde_json::to_vec_pretty(&plan).unwrap_or_default();
        tokio::fs::write(&file, pretty)
            .await
            .map_err(|err| StageError::io(format!("Could not write {}", file.display()), err))?;
        let score = ScoreEvent {
            score: plan.clone(),
        };
        ctx.emit(
            format!("Scene plan ready: {scenes} scenes, {words} words"),
            &score,
        )
        .await?;

        let estimate = cost_estimate(&self.0, model.as_deref(), usage, &request);
        ctx.emit("Cost estimate ready", &CostEstimateEvent { estimate })
            .await?;
        ctx.scratch().insert(plan);
        Ok(StageOutcome::done(format!(
            "{scenes} scenes, {words} words"
        )))
    }
}

/// Token counts, and cost 0 where everything runs locally. A remote LLM's
/// price is not known here, so its cost is left null rather than guessed.
fn cost_estimate(
    env: &MediaEnv,
    model: Option<&str>,
    usage: TokenUsage,
    request: &crate::model::JobRequest,
) -> CostEstimate {
    let llm = env.llm(request);
    let llm_cost = match model {
        None => Some(0.0),
        Some(_) if llm.is_local() => Some(0.0),
        Some(_) => None,
    };
    let tts_local = env.config.tts_base_url.trim().is_empty();
    CostEstimate {
        total_cost: llm_cost.filter(|_| tts_local),
        currency: "USD".into(),
        breakdown: CostBreakdown {
            llm: LlmCost {
                provider: if model.is_some() {
                    llm.base_url.to_string()
                } else {
                    "none (script provided)".into()
                },
                model: model.map(str::to_string),
                prompt_tokens: usage.prompt,
                completion_tokens: usage.completion,
                cost: llm_cost,
            },
            tts: ServiceCost {
                provider: if tts_local {
                    "espeak-ng".into()
                } else {
                    env.config.tts_base_url.clone()
                },
                cost: if tts_local { Some(0.0) } else { None },
            },
            render: ServiceCost {
                provider: "ffmpeg".into(),
                cost: Some(0.0),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_llm_plan_is_held_to_the_scene_and_narration_limits() {
        let reply = |chars: usize| SceneReply {
            narration: "word ".repeat(chars / 5),
            ..SceneReply::default()
        };
        let mut many: Vec<SceneReply> = (0..30).map(|_| reply(100)).collect();
        assert_eq!(cap_plan(&mut many).len(), 1);
        assert_eq!(many.len(), 20);
        let mut long: Vec<SceneReply> = (0..10).map(|_| reply(3_000)).collect();
        assert_eq!(cap_plan(&mut long).len(), 1);
        assert_eq!(long.len(), 6);
        let mut one = vec![reply(50_000)];
        cap_plan(&mut one);
        assert!(one[0].narration.chars().count() <= limits::SCRIPT_CHARS);
        let mut fine = vec![reply(100)];
        assert!(cap_plan(&mut fine).is_empty());
    }

    #[test]
    fn a_script_becomes_scenes_with_queries_and_moods() {
        let script = "The ocean covers most of our planet. Its deepest trench is eleven \
                      kilometres deep. Whales sing across whole ocean basins. Calm waves \
                      shape every shore.";
        let plan = plan_from_script("Oceans", script, Some(2));
        assert_eq!(plan.scenes.len(), 2);
        assert!(plan.scenes.iter().all(|s| !s.visual_query.is_empty()));
        assert!(plan.scenes.iter().all(|s| !s.key_line.is_empty()));
        let joined: Vec<String> = plan.scenes.iter().map(|s| s.narration.clone()).collect();
        assert_eq!(joined.join(" "), text::sentences(script).join(" "));
    }
}

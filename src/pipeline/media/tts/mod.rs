//! tts: narration for each scene, with espeak-ng or an OpenAI-compatible
//! speech API. Each scene's audio is measured with ffprobe, then all are
//! joined with a short pause between scenes into `narration.wav`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tokio::process::Command;

use super::{MAX_PEAK_DB, MediaEnv, Narration, SceneAudio, TARGET_LUFS};
use crate::model::{EventKind, NarrationTimeline, Plan, SceneTiming, round3};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::Tool;
use crate::tools::probe::{self, Loudness};
use crate::tools::process;
use crate::tools::voices::Voice;
use crate::tools::voices::{self, by_language, find_voice};

/// The tts stage.
pub struct Tts(pub Arc<MediaEnv>);

/// Silence after each scene but the last, in seconds.
const PAUSE: f64 = 0.3;

impl Tts {
    async fn voices(&self, ctx: &StageContext) -> Result<&[Voice], StageError> {
        let env = &self.0;
        let espeak = env.tools.path(Tool::Espeak)?;
        env.voices
            .get_or_try_init(|| voices::installed(&espeak, ctx.token()))
            .await
            .map(Vec::as_slice)
            .map_err(StageError::from)
    }

    /// The espeak voice for this job, with a warning when the request asked
    /// for one that does not exist.
    async fn espeak_voice(&self, ctx: &mut StageContext) -> Result<String, StageError> {
        let default = self.0.config.default_voice.clone();
        let request = ctx.request().clone();
        let voices = self.voices(ctx).await?.to_vec();
        let fallback = find_voice(&voices, &default).unwrap_or_else(|| "en".into());
        let (found, missing) = match (&request.voice, &request.language) {
            (Some(wanted), _) => (
                find_voice(&voices, wanted),
                format!("Voice \"{wanted}\" is not an installed espeak-ng voice"),
            ),
            (None, Some(language)) => (
                by_language(&voices, language),
                format!("No espeak-ng voice speaks \"{language}\""),
            ),
            (None, None) => return Ok(fallback),
        };
        if let Some(voice) = found {
            return Ok(voice);
        }
        ctx.warn(format!("{missing}; using the default voice {fallback}."))
            .await?;
        Ok(fallback)
    }

    async fn espeak(
        &self,
        ctx: &StageContext,
        voice: &str,
        text: &str,
        out: &Path,
    ) -> Result<(), StageError> {
        let espeak = self.0.tools.path(Tool::Espeak)?;
        process::run(
            Command::new(espeak).args(["-v", voice, "-w"]).arg(out),
            Some(text.as_bytes()),
            ctx.token(),
            "espeak-ng",
        )
        .await?;
        Ok(())
    }

    async fn speech_api(
        &self,
        ctx: &StageContext,
        voice: &str,
        text: &str,
        out: &Path,
    ) -> Result<(), StageError> {
        let config = &self.0.config;
        let url = format!("{}/audio/speech", config.tts_base_url.trim_end_matches('/'));
        let mut request = self.0.http.post(&url).json(&json!({
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
            response.bytes().await.map_err(|err| {
                StageError::failed(format!(
                    "The speech API at {url} broke off its answer: {err}"
                ))
            })
        };
        let bytes = tokio::select! {
            b = fetch => b?,
            _ = ctx.cancelled() => return Err(StageError::Cancelled),
        };
        tokio::fs::write(out, &bytes)
            .await
            .map_err(|err| StageError::io(format!("Could not write {}", out.display()), err))
    }

    /// Joins the scene files into one 48 kHz stereo WAV with pauses, and
    /// measures its loudness on the way.
    async fn join(
        &self,
        ctx: &StageContext,
        files: &[PathBuf],
        out: &Path,
    ) -> Result<Loudness, StageError> {
        let ffmpeg = self.0.tools.path(Tool::Ffmpeg)?;
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-nostats", "-v", "info", "-nostdin", "-y"]);
        for file in files {
            cmd.arg("-i").arg(file);
        }
        let mut graph = String::new();
        for i in 0..files.len() {
            let pad = if i + 1 < files.len() {
                format!(",apad=pad_dur={PAUSE}")
            } else {
                String::new()
            };
            graph.push_str(&format!(
                "[{i}:a]aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo{pad}[a{i}];"
            ));
        }
        for i in 0..files.len() {
            graph.push_str(&format!("[a{i}]"));
        }
        graph.push_str(&format!(
            "concat=n={}:v=0:a=1,ebur128=peak=sample:framelog=verbose[out]",
            files.len()
        ));
        cmd.args([
            "-filter_complex",
            &graph,
            "-map",
            "[out]",
            "-c:a",
            "pcm_s16le",
        ])
        .arg(out);
        let output =
            process::run(&mut cmd, None, ctx.token(), "ffmpeg (joining narration)").await?;
        Ok(probe::parse_loudness(&output.stderr))
    }
}

#[async_trait]
impl Stage for Tts {
    fn name(&self) -> &str {
        "tts"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let plan = ctx
            .scratch()
            .get::<Plan>()
            .cloned()
            .ok_or_else(|| StageError::failed("The director produced no scene plan."))?;
        let api = !self.0.config.tts_base_url.trim().is_empty();
        let voice = if api {
            ctx.request()
                .voice
                .clone()
                .unwrap_or_else(|| self.0.config.tts_voice.clone())
        } else {
            self.espeak_voice(ctx).await?
        };
        let provider = if api { "the speech API" } else { "espeak-ng" };
        ctx.info(format!(
            "Generating voiceover with {provider} (voice {voice})"
        ))
        .await?;
        let n = plan.scenes.len();
        let mut files = Vec::with_capacity(n);
        let mut scenes = Vec::with_capacity(n);
        let mut start = 0.0;
        for (i, scene) in plan.scenes.iter().enumerate() {
            ctx.checkpoint()?;
            ctx.info(format!("Generating audio for scene {}/{n}", i + 1))
                .await?;
            let file = ctx.work_dir().join(format!("scene-{:03}.wav", i + 1));
            if api {
                self.speech_api(ctx, &voice, &scene.narration, &file)
                    .await?;
            } else {
                self.espeak(ctx, &voice, &scene.narration, &file).await?;
            }
            let probe = probe::probe(&self.0.tools, &file, ctx.token()).await?;
            if !probe.has_audio || probe.duration <= 0.0 {
                return Err(StageError::failed(format!(
                    "The narration of scene {} came out empty.",
                    i + 1
                )));
            }
            let span = probe.duration + if i + 1 < n { PAUSE } else { 0.0 };
            scenes.push(SceneAudio {
                file: file.clone(),
                start,
                duration: probe.duration,
                span,
            });
            start += span;
            files.push(file);
            ctx.progress(
                0.9 * (i + 1) as f64 / n as f64,
                format!("Generated audio for scene {}/{n}", i + 1),
            )
            .await?;
        }
        ctx.mark(EventKind::AudioJoin, "Combining narration audio")
            .await?;
        let joined = ctx.work_dir().join("narration.wav");
        let loudness = self.join(ctx, &files, &joined).await?;
        let gain_db = gain_for(loudness);
        let total = probe::probe(&self.0.tools, &joined, ctx.token())
            .await?
            .duration;
        let timeline = NarrationTimeline {
            total_duration: round3(total),
            voice: voice.clone(),
            loudness: loudness.integrated,
            gain_db: round3(gain_db),
            scenes: scenes
                .iter()
                .zip(&plan.scenes)
                .map(|(a, s)| SceneTiming {
                    index: s.index,
                    start: round3(a.start),
                    end: round3(a.start + a.duration),
                    duration: round3(a.duration),
                    text: s.narration.clone(),
                })
                .collect(),
        };
        ctx.emit(
            format!("Narration ready: {n} scenes, {total:.1} s"),
            &timeline,
        )
        .await?;
        ctx.scratch().insert(Narration {
            file: joined,
            scenes,
            total,
            gain_db,
        });
        Ok(StageOutcome::done(format!(
            "{n} scenes, {total:.1} s of narration"
        )))
    }
}

/// Gain to the target loudness, held back so the peak stays under the
/// ceiling; no change when nothing could be measured.
fn gain_for(loudness: Loudness) -> f64 {
    let Some(integrated) = loudness.integrated.filter(|i| i.is_finite() && *i > -70.0) else {
        return 0.0;
    };
    let to_target = TARGET_LUFS - integrated;
    match loudness.peak.filter(|p| p.is_finite()) {
        Some(peak) => to_target.min(MAX_PEAK_DB - peak),
        None => to_target,
    }
}

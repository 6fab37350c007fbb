//! tts: narration for each scene, with libespeak-ng or an OpenAI-compatible
//! speech API ([`api`]), and when each word is spoken ([`timing`]). The
//! scenes are joined with a short pause between them into `narration.wav`,
//! whose loudness is measured on the way.

mod api;
mod timing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::process::Command;

use super::{MediaEnv, Narration, SceneAudio, TARGET_LUFS};
use crate::model::{EventKind, NarrationTimeline, Plan, SceneTiming, WordTiming, round3};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};
use crate::tools::probe::{self, Loudness};
use crate::tools::process;
use crate::tools::voices::Voice;
use crate::tools::voices::{self, by_language, find_voice};
use crate::tools::{Tool, espeak};

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

    /// Speaks `text` with libespeak-ng into `out`; its length and word
    /// times, from `offset` seconds.
    async fn espeak(
        &self,
        ctx: &StageContext,
        voice: &str,
        text: &str,
        out: &Path,
        offset: f64,
    ) -> Result<(f64, Vec<WordTiming>), StageError> {
        let (voice, owned, token) = (voice.to_string(), text.to_string(), ctx.token().clone());
        let speech = tokio::task::spawn_blocking(move || espeak::speak(&voice, &owned, &token))
            .await
            .map_err(|err| StageError::failed(format!("espeak-ng stopped: {err}")))??;
        tokio::fs::write(out, speech.wav())
            .await
            .map_err(|err| StageError::io(format!("Could not write {}", out.display()), err))?;
        let duration = speech.duration();
        let words = timing::from_events(text, &speech.words, duration, offset);
        Ok((duration, words))
    }

    /// Speaks `text` through the speech API into `out`; its length and word
    /// times, from `offset` seconds, with where the times came from.
    async fn speech_api(
        &self,
        ctx: &StageContext,
        voice: &str,
        text: &str,
        out: &Path,
        offset: f64,
    ) -> Result<(f64, Vec<WordTiming>, &'static str), StageError> {
        let timestamps = api::speak(&self.0, ctx, voice, text, out).await?;
        let probe = probe::probe(&self.0.tools, out, ctx.token()).await?;
        if !probe.has_audio {
            return Ok((0.0, Vec::new(), "speech-api"));
        }
        let duration = probe.duration;
        if let Some(words) = timestamps {
            let words = timing::from_api(text, &words, duration, offset);
            return Ok((duration, words, "speech-api"));
        }
        let pauses = self.pauses(ctx, out, duration).await?;
        let words = timing::by_syllables(text, duration, &pauses, offset);
        Ok((duration, words, "syllables"))
    }

    /// Pauses in a scene's speech: stretches under -40 dB of 0.12 s or more.
    async fn pauses(
        &self,
        ctx: &StageContext,
        file: &Path,
        duration: f64,
    ) -> Result<Vec<(f64, f64)>, StageError> {
        let ffmpeg = self.0.tools.path(Tool::Ffmpeg)?;
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-nostats", "-nostdin", "-i"])
            .arg(file)
            .args(["-af", "silencedetect=n=-40dB:d=0.12", "-f", "null", "-"]);
        let out = process::run(&mut cmd, None, ctx.token(), "ffmpeg (finding pauses)").await?;
        Ok(probe::parse_silences(&out.stderr, duration))
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
        let mut word_source = if api { "speech-api" } else { "espeak-ng" };
        let mut start = 0.0;
        for (i, scene) in plan.scenes.iter().enumerate() {
            ctx.checkpoint()?;
            ctx.info(format!("Generating audio for scene {}/{n}", i + 1))
                .await?;
            let file = ctx.work_dir().join(format!("scene-{:03}.wav", i + 1));
            let (duration, words) = if api {
                let (duration, words, source) = self
                    .speech_api(ctx, &voice, &scene.narration, &file, start)
                    .await?;
                if source == "syllables" {
                    word_source = source;
                }
                (duration, words)
            } else {
                self.espeak(ctx, &voice, &scene.narration, &file, start)
                    .await?
            };
            if duration <= 0.0 {
                return Err(StageError::failed(format!(
                    "The narration of scene {} came out empty.",
                    i + 1
                )));
            }
            let span = duration + if i + 1 < n { PAUSE } else { 0.0 };
            scenes.push(SceneAudio {
                file: file.clone(),
                start,
                duration,
                span,
                words,
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
            word_source: word_source.into(),
            scenes: scenes
                .iter()
                .zip(&plan.scenes)
                .map(|(a, s)| SceneTiming {
                    index: s.index,
                    start: round3(a.start),
                    end: round3(a.start + a.duration),
                    duration: round3(a.duration),
                    text: s.narration.clone(),
                    words: a.words.clone(),
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

/// Gain to the target loudness; none when nothing could be measured.
/// Peaks are the render's limiter's business.
fn gain_for(loudness: Loudness) -> f64 {
    loudness
        .integrated
        .filter(|i| i.is_finite() && *i > -70.0)
        .map_or(0.0, |integrated| TARGET_LUFS - integrated)
}

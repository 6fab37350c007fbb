//! tts: narration for each scene, with espeak-ng or an OpenAI-compatible
//! speech API. Each scene's audio is measured with ffprobe, then all are
//! joined with a short pause between scenes into `narration.wav`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tokio::process::Command;

use super::tools::{self, Loudness, Tool};
use super::{MAX_PEAK_DB, MediaEnv, Narration, Plan, SceneAudio, TARGET_LUFS};
use crate::pipeline::{Stage, StageContext, StageError, StageOutcome, StageResult};

pub struct Tts(pub Arc<MediaEnv>);

/// Silence after each scene but the last, in seconds.
const PAUSE: f64 = 0.3;

/// An installed espeak-ng voice.
#[derive(Debug, Clone)]
pub struct Voice {
    pub language: String,
    pub name: String,
    pub file: String,
    /// Other language codes the voice answers to, with their priority.
    pub aliases: Vec<(String, u32)>,
    pub variant: bool,
}

/// Parses `espeak-ng --voices` (and `--voices=variant`) output.
fn parse_voices(listing: &str, variant: bool) -> Vec<Voice> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _priority = cols.next()?;
            let language = cols.next()?.to_string();
            let _age_gender = cols.next()?;
            let name = cols.next()?.to_string();
            let file = cols.next()?.to_string();
            let rest: String = cols.collect::<Vec<_>>().join(" ");
            let aliases = rest
                .split(['(', ')'])
                .filter_map(|part| {
                    let (code, prio) = part.trim().split_once(' ')?;
                    Some((code.to_string(), prio.trim().parse().ok()?))
                })
                .collect();
            Some(Voice {
                language,
                name,
                file,
                aliases,
                variant,
            })
        })
        .collect()
}

/// The espeak voice a request asked for, if it exists: a language code
/// (`en-us`), a voice name (`English_(America)`) or file (`gmw/en-US`),
/// optionally with `+variant`.
fn find_voice(voices: &[Voice], wanted: &str) -> Option<String> {
    let (base, variant) = match wanted.split_once('+') {
        Some((b, v)) => (b, Some(v)),
        None => (wanted, None),
    };
    let base = base.trim();
    let eq = |a: &str| a.eq_ignore_ascii_case(base);
    let found = voices
        .iter()
        .filter(|v| !v.variant)
        .find(|v| eq(&v.language) || eq(&v.name) || eq(&v.file))
        .map(|v| v.language.clone())
        .or_else(|| by_language(voices, base))?;
    match variant {
        None => Some(found),
        Some(variant) => voices
            .iter()
            .filter(|v| v.variant)
            .find(|v| {
                v.name.eq_ignore_ascii_case(variant)
                    || v.file
                        .rsplit('/')
                        .next()
                        .is_some_and(|f| f.eq_ignore_ascii_case(variant))
            })
            .map(|_| format!("{found}+{variant}")),
    }
}

/// Language names clients send (AI-Video-Gen sends `english`, `hindi`,
/// ...) and their codes.
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("english", "en"),
    ("hindi", "hi"),
    ("kannada", "kn"),
    ("telugu", "te"),
    ("tamil", "ta"),
    ("bengali", "bn"),
    ("marathi", "mr"),
    ("spanish", "es"),
    ("french", "fr"),
    ("german", "de"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("russian", "ru"),
    ("japanese", "ja"),
    ("korean", "ko"),
    ("chinese", "cmn"),
    ("mandarin", "cmn"),
    ("arabic", "ar"),
    ("dutch", "nl"),
    ("polish", "pl"),
    ("turkish", "tr"),
    ("indonesian", "id"),
    ("vietnamese", "vi"),
];

/// The best voice for a language code or name (`es`, `Spanish`).
fn by_language(voices: &[Voice], language: &str) -> Option<String> {
    let lang = language.trim().to_ascii_lowercase();
    if lang.is_empty() {
        return None;
    }
    let lang = LANGUAGE_NAMES
        .iter()
        .find(|(name, _)| *name == lang)
        .map_or(lang.clone(), |(_, code)| code.to_string());
    let voices: Vec<&Voice> = voices.iter().filter(|v| !v.variant).collect();
    if let Some(v) = voices
        .iter()
        .find(|v| v.language.eq_ignore_ascii_case(&lang))
    {
        return Some(v.language.clone());
    }
    if let Some((v, _)) = voices
        .iter()
        .filter_map(|v| {
            v.aliases
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(&lang))
                .map(|(_, prio)| (v, *prio))
        })
        .min_by_key(|(_, prio)| *prio)
    {
        return Some(v.language.clone());
    }
    voices
        .iter()
        .find(|v| v.name.to_ascii_lowercase().starts_with(&lang))
        .map(|v| v.language.clone())
}

impl Tts {
    async fn voices(&self, ctx: &StageContext) -> Result<&[Voice], StageError> {
        let env = &self.0;
        let espeak = env.tools.path(Tool::Espeak)?;
        env.voices
            .get_or_try_init(|| async {
                let mut all = Vec::new();
                for (arg, variant) in [("--voices", false), ("--voices=variant", true)] {
                    let out = tools::run(
                        Command::new(&espeak).arg(arg),
                        None,
                        ctx.token(),
                        "espeak-ng --voices",
                    )
                    .await?;
                    all.extend(parse_voices(&String::from_utf8_lossy(&out.stdout), variant));
                }
                Ok(all)
            })
            .await
            .map(Vec::as_slice)
    }

    /// The espeak voice for this job, with a warning when the request asked
    /// for one that does not exist.
    async fn espeak_voice(&self, ctx: &mut StageContext) -> Result<String, StageError> {
        let default = self.0.config.default_voice.clone();
        let request = ctx.request().clone();
        let voices = self.voices(ctx).await?.to_vec();
        let fallback = find_voice(&voices, &default).unwrap_or_else(|| "en".into());
        if let Some(wanted) = &request.voice {
            if let Some(voice) = find_voice(&voices, wanted) {
                return Ok(voice);
            }
            ctx.warn(format!(
                "Voice \"{wanted}\" is not an installed espeak-ng voice; using the default voice {fallback}."
            ))
            .await?;
            return Ok(fallback);
        }
        if let Some(language) = &request.language {
            if let Some(voice) = by_language(&voices, language) {
                return Ok(voice);
            }
            ctx.warn(format!(
                "No espeak-ng voice speaks \"{language}\"; using the default voice {fallback}."
            ))
            .await?;
        }
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
        tools::run(
            Command::new(espeak).args(["-v", voice, "-w"]).arg(out),
            Some(text.as_bytes()),
            ctx.token(),
            "espeak-ng",
        )
        .await
        .map(drop)
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
            .map_err(|err| StageError::failed(format!("Could not write {}: {err}", out.display())))
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
        let output = tools::run(&mut cmd, None, ctx.token(), "ffmpeg (joining narration)").await?;
        Ok(tools::parse_loudness(&output.stderr))
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
            let probe = tools::probe(&self.0.tools, &file, ctx.token()).await?;
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
        ctx.info("Combining narration audio").await?;
        let joined = ctx.work_dir().join("narration.wav");
        let loudness = self.join(ctx, &files, &joined).await?;
        let gain_db = gain_for(loudness);
        let total = tools::probe(&self.0.tools, &joined, ctx.token())
            .await?
            .duration;
        let timeline = json!({
            "total_duration": round3(total),
            "voice": voice,
            "loudness": loudness.integrated,
            "gain_db": round3(gain_db),
            "scenes": scenes.iter().zip(&plan.scenes).map(|(a, s)| json!({
                "index": s.index,
                "start": round3(a.start),
                "end": round3(a.start + a.duration),
                "duration": round3(a.duration),
                "text": s.narration,
            })).collect::<Vec<_>>(),
        });
        ctx.set_data(
            format!("Narration ready: {n} scenes, {total:.1} s"),
            "narration",
            timeline,
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es
";
    const VARIANTS: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Adam               !v/adam
";

    fn voices() -> Vec<Voice> {
        let mut v = parse_voices(LISTING, false);
        v.extend(parse_voices(VARIANTS, true));
        v
    }

    #[test]
    fn voices_are_found_by_code_name_file_and_language() {
        let v = voices();
        assert_eq!(find_voice(&v, "en-US").as_deref(), Some("en-us"));
        assert_eq!(
            find_voice(&v, "English_(America)").as_deref(),
            Some("en-us")
        );
        assert_eq!(find_voice(&v, "gmw/en").as_deref(), Some("en-gb"));
        assert_eq!(find_voice(&v, "en").as_deref(), Some("en-gb"));
        assert_eq!(find_voice(&v, "en-us+adam").as_deref(), Some("en-us+adam"));
        assert_eq!(find_voice(&v, "en-us+nobody"), None);
        assert_eq!(find_voice(&v, "en_us_001"), None);
        assert_eq!(by_language(&v, "Spanish").as_deref(), Some("es"));
        assert_eq!(by_language(&v, "english").as_deref(), Some("en-gb"));
        assert_eq!(by_language(&v, "klingon"), None);
    }
}

//! `render [SECONDS] [ROUNDS]`: the standard video, a 1080×1920 render of
//! three title-card scenes with word captions and music from a script of
//! about SECONDS (default 30) seconds, made with motion and with
//! `motion: false` in turns, ROUNDS times each (default 2), by one server.
//! Reports the render (ffmpeg) time, the critic's time and the job's wall
//! time, submit to completed, for each, and their medians and ratio.
//! With `FRAMES=DIR` in the environment, four frames of the last video
//! with motion are saved there as JPEG.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use reelay::Reelay;
use reelay::model::{JobRequest, JobState};
use reelay::pipeline::media::{self, MediaEnv};
use serde_json::json;

use super::{config_in, engine, submit, wait_for};

/// What one job took, seconds.
struct Timing {
    video: f64,
    render: f64,
    critic: f64,
    job: f64,
    file: String,
}

async fn one(reelay: &Reelay, script: &str, motion: bool) -> Timing {
    let request = JobRequest {
        subject: "Rivers".into(),
        script: Some(script.into()),
        scene_count: Some(3),
        use_music: true,
        motion: Some(motion),
        ..JobRequest::default()
    };
    let wall = Instant::now();
    let id = submit(reelay, request).await;
    wait_for(reelay, id, |j| j.state.is_terminal()).await;
    let job_secs = wall.elapsed().as_secs_f64();
    let job = engine(reelay).job(id).await.expect("job").expect("job");
    assert_eq!(job.state, JobState::Completed, "{:?}", job.error_message);
    let events = engine(reelay)
        .events(job.id, 0, 10_000, None)
        .await
        .expect("events")
        .unwrap_or_default();
    let at = |message: &str| {
        events
            .iter()
            .find(|e| e.message.starts_with(message))
            .map(|e| e.timestamp)
            .unwrap_or(0.0)
    };
    let stage = |name: &str| {
        job.stages
            .get(name)
            .and_then(|r| r.duration_sec)
            .unwrap_or(0.0)
    };
    Timing {
        video: job.result.as_ref().and_then(|r| r.duration).unwrap_or(0.0),
        render: at("Rendered ") - at("Rendering final video"),
        critic: stage("critic"),
        job: job_secs,
        file: job.result_path.clone().unwrap_or_default(),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Four frames of `video` (of `secs` seconds) as JPEG files in `dir`.
fn grab_frames(video: &str, secs: f64, dir: &Path) {
    std::fs::create_dir_all(dir).expect("frames folder");
    for (i, share) in [0.12, 0.38, 0.63, 0.88].iter().enumerate() {
        let out = dir.join(format!("frame-{}.jpg", i + 1));
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", &format!("{:.2}", secs * share)])
            .args([
                "-i",
                video,
                "-frames:v",
                "1",
                "-vf",
                "scale=540:960",
                "-q:v",
                "3",
            ])
            .arg(&out)
            .status()
            .expect("ffmpeg");
        assert!(ok.success(), "could not grab {}", out.display());
        println!("frame at {:.1} s: {}", secs * share, out.display());
    }
}

pub async fn run(seconds: f64, rounds: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(dir.path());
    std::fs::create_dir_all(&config.music_dir).expect("music dir");
    let track = config.music_dir.join("calm-bed.mp3");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg("sine=frequency=220:duration=20")
        .arg(&track)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "could not make the music bed");
    // espeak-ng speaks about 2.6 words per second.
    let words = (seconds * 2.6) as usize;
    let sentence = "Calm rivers carve deep valleys through ancient stone over many years.";
    let per_sentence = sentence.split_whitespace().count();
    let script = vec![sentence; words.div_ceil(per_sentence)].join(" ");
    let env = MediaEnv::new(Arc::new(config.clone()));
    let reelay = Reelay::start(config, media::pipeline(env))
        .await
        .expect("start");
    let (mut moving, mut still) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        for motion in [true, false] {
            let t = one(&reelay, &script, motion).await;
            println!(
                "round {} {:<9} video {:.2} s  render {:.2} s ({:.1}x real time)  critic {:.2} s  job {:.2} s",
                round + 1,
                if motion { "motion" } else { "static" },
                t.video,
                t.render,
                t.video / t.render,
                t.critic,
                t.job
            );
            if motion { &mut moving } else { &mut still }.push(t);
        }
    }
    let med = |set: &[Timing], f: fn(&Timing) -> f64| median(set.iter().map(f).collect());
    let (render_m, render_s) = (med(&moving, |t| t.render), med(&still, |t| t.render));
    let (job_m, job_s) = (med(&moving, |t| t.job), med(&still, |t| t.job));
    let video = med(&moving, |t| t.video);
    println!(
        "medians: render {render_m:.2} s with motion, {render_s:.2} s static ({:.2}x); \
         job {job_m:.2} s with motion, {job_s:.2} s static; critic {:.2} s",
        render_m / render_s,
        med(&moving, |t| t.critic).max(med(&still, |t| t.critic))
    );
    if let (Ok(frames), Some(last)) = (std::env::var("FRAMES"), moving.last()) {
        grab_frames(&last.file, last.video, Path::new(&frames));
    }
    println!(
        "{}",
        json!({ "bench": "render", "video_s": video, "rounds": rounds,
                "motion": { "render_s": render_m, "job_s": job_m,
                            "critic_s": med(&moving, |t| t.critic) },
                "static": { "render_s": render_s, "job_s": job_s,
                            "critic_s": med(&still, |t| t.critic) },
                "motion_over_static": render_m / render_s })
    );
}

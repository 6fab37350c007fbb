//! Stock clips from Pexels, for scenes the footage library cannot match,
//! when `PEXELS_API_KEY` is set.

use std::path::Path;

use serde_json::Value;

use crate::pipeline::StageContext;
use crate::pipeline::media::MediaEnv;

/// Largest stock clip downloaded, in bytes.
const MAX_DOWNLOAD: u64 = 200 * 1024 * 1024;

/// Searches Pexels for a clip and downloads the best-sized file.
pub async fn download(
    env: &MediaEnv,
    ctx: &StageContext,
    query: &str,
    frame: (u32, u32),
    out: &Path,
) -> Result<(), String> {
    let config = &env.config;
    let orientation = match frame.0.cmp(&frame.1) {
        std::cmp::Ordering::Less => "portrait",
        std::cmp::Ordering::Greater => "landscape",
        std::cmp::Ordering::Equal => "square",
    };
    let url = format!(
        "{}/videos/search",
        config.pexels_base_url.trim_end_matches('/')
    );
    let search = env
        .http
        .get(&url)
        .header("Authorization", &config.pexels_api_key)
        .query(&[
            ("query", query),
            ("per_page", "5"),
            ("orientation", orientation),
        ])
        .send();
    let response = tokio::select! {
        r = search => r.map_err(|err| format!("Pexels could not be reached: {err}"))?,
        _ = ctx.cancelled() => return Err("cancelled".into()),
    };
    if !response.status().is_success() {
        return Err(format!("Pexels answered {}", response.status()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| "Pexels answered with something other than JSON".to_string())?;
    let link = best_pexels_file(&body, frame.1).ok_or("Pexels found no clip")?;
    let mut response = env
        .http
        .get(&link)
        .send()
        .await
        .map_err(|err| format!("the Pexels clip could not be downloaded: {err}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the Pexels clip download answered {}",
            response.status()
        ));
    }
    let mut file = tokio::fs::File::create(out)
        .await
        .map_err(|err| format!("could not create {}: {err}", out.display()))?;
    let mut written: u64 = 0;
    loop {
        let chunk = tokio::select! {
            c = response.chunk() => c.map_err(|err| format!("the download broke off: {err}"))?,
            _ = ctx.cancelled() => return Err("cancelled".into()),
        };
        let Some(chunk) = chunk else { break };
        written += chunk.len() as u64;
        if written > MAX_DOWNLOAD {
            return Err("the Pexels clip is too large".into());
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|err| format!("could not write the clip: {err}"))?;
    }
    Ok(())
}

/// The link of the video file whose height is closest above `height`, else
/// the largest.
fn best_pexels_file(body: &Value, height: u32) -> Option<String> {
    let files: Vec<&Value> = body["videos"]
        .as_array()?
        .iter()
        .flat_map(|v| v["video_files"].as_array().into_iter().flatten())
        .filter(|f| f["file_type"].as_str().is_none_or(|t| t == "video/mp4"))
        .filter(|f| f["link"].is_string())
        .collect();
    let h = |f: &&Value| f["height"].as_u64().unwrap_or(0) as u32;
    files
        .iter()
        .filter(|f| h(f) >= height)
        .min_by_key(|f| h(f))
        .or_else(|| files.iter().max_by_key(|f| h(f)))
        .and_then(|f| f["link"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pexels_file_closest_above_the_frame_height_wins() {
        let body = json!({"videos": [{"video_files": [
            {"link": "a", "height": 640, "file_type": "video/mp4"},
            {"link": "b", "height": 1920, "file_type": "video/mp4"},
            {"link": "c", "height": 1280, "file_type": "video/mp4"}
        ]}]});
        assert_eq!(best_pexels_file(&body, 1080).as_deref(), Some("c"));
        assert_eq!(best_pexels_file(&body, 4000).as_deref(), Some("b"));
    }
}

//! Faults a server meets in the field: a full disk under the database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestServer, strictly_increasing_ids, throughout};
use crate::stages::{Gate, pipeline};

/// A small tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test fills a small tmpfs to make the disk full, and mounting one \
             needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Writes a file until the filesystem is full.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // The last partial block too.
        while file.write_all(&block[..512]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn post_raw(
    server: &TestServer,
    path: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let res = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, res.json().await.unwrap())
}

#[tokio::test]
async fn a_full_disk_under_the_database_is_a_503_that_passes_when_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("db"), "4m");
    let gate = Gate::new("research");
    let release = gate.gate.clone();
    let database_url = format!("sqlite://{}", disk.path.join("reelay.db").display());
    let server = TestServer::start_with(pipeline(vec![Arc::new(gate)]), move |c| {
        c.database_url = database_url;
        c.min_free_disk_mb = 0;
    })
    .await;
    let running = server.submit("Before the disk fills").await;
    server
        .wait_job(&running, Duration::from_secs(10), |j| {
            j["currentStage"] == "research"
        })
        .await;

    let filler = disk.fill();
    // Writes fail, in each route's envelope, and say when to come back.
    let (status, retry, body) =
        post_raw(&server, "/api/generate", json!({ "videoSubject": "Full" })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(body["status"], "error");
    let (status, retry, body) = post_raw(&server, "/api/v1/jobs", json!({ "topic": "Full" })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(retry.is_some());
    assert_eq!(body["error"]["code"], "STORE_UNAVAILABLE");
    // Reads go on.
    assert_eq!(server.job(&running).await["state"], "running");
    // The running job's stage ends while the disk is full: its record
    // waits for space instead of failing the job.
    release.add_permits(1);
    throughout(
        Duration::from_millis(500),
        "the job waiting for space",
        || async { server.job(&running).await["state"] == "running" },
    )
    .await;

    std::fs::remove_file(filler).unwrap();
    // No restart: the job ends, and new work is taken again.
    let job = server
        .wait_state(&running, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(job["stages"]["research"]["status"], "done");
    let events = server.all_events(&running).await;
    strictly_increasing_ids(&events);
    assert_eq!(events.last().unwrap()["kind"], "completed");
    let next = server.submit("After the disk has room").await;
    server
        .wait_state(&next, "running", Duration::from_secs(10))
        .await;
}

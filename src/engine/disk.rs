//! Disk space: how much room the data folder's filesystem has left, and
//! the background sweep that deletes finished jobs past their retention.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError};

/// How often the retention sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Free bytes, for unprivileged users, on the filesystem that holds `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid C string and `stat` is written by the call
    // before it is read.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Deletes finished jobs that ended more than `days` days ago, with their
/// events and folders, and returns how many went.
pub async fn sweep(engine: &Engine, days: u64) -> Result<usize, EngineError> {
    let days = i64::try_from(days).unwrap_or(i64::MAX / 86_400);
    let cutoff = Utc::now() - chrono::Duration::days(days);
    let mut deleted = 0;
    for id in engine.jobs_finished_before(cutoff).await? {
        match engine.delete(id).await {
            Ok(()) => deleted += 1,
            // Deleted meanwhile by a client.
            Err(EngineError::JobNotFound) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(deleted)
}

/// Runs the retention sweep now and every hour until `stop` fires.
pub async fn keep_retention(engine: Engine, days: u64, stop: CancellationToken) {
    loop {
        match sweep(&engine, days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, days, "deleted jobs past their retention"),
            Err(err) => tracing::warn!(error = %err, "the retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

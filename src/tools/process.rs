//! Running a program so that no process outlives its job: killed when its
//! future is dropped, when the job's token fires, and by the kernel when
//! the server itself dies.

use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::ToolError;

/// Ties a child's life to this server's: killed with it on drop (cancel,
/// failure, shutdown), and by the kernel if the server itself is killed,
/// so that a crashed server leaves no ffmpeg writing into a job folder.
pub fn guard(cmd: &mut Command) -> &mut Command {
    cmd.kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec only async-signal-safe calls are made.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the call above.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
}

/// What a finished program printed.
pub struct Output {
    /// Everything on standard output.
    pub stdout: Vec<u8>,
    /// Everything on standard error, as text.
    pub stderr: String,
}

/// What a failed program said, for error messages: its first line that
/// says something (usually the cause) and, if different, its last.
pub fn summary(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return "no error output".into();
    };
    let text = match lines.next_back() {
        Some(last) if last != first => format!("{first} … {last}"),
        _ => first.to_string(),
    };
    text.chars().take(400).collect()
}

/// Starts `cmd` with piped output and, when `cancel` fires, kills it and
/// waits for it, so that no process outlives its job.
pub async fn run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    cancel: &CancellationToken,
    what: &str,
) -> Result<Output, ToolError> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = spawn(cmd, stdin, what)?;
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let io = async {
        let feed = async {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // A program that exits early closes its end; that is its error.
                let _ = stdin.write_all(input).await;
            }
        };
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.read_to_end(&mut buf).await;
            }
            buf
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        (out, err)
    };
    let finished = tokio::select! {
        (out, err) = io => Some((out, err)),
        _ = cancel.cancelled() => None,
    };
    let Some((stdout, stderr)) = finished else {
        stop(&mut child).await;
        return Err(ToolError::Cancelled);
    };
    let status = wait(&mut child, cancel, what).await?;
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    succeeded(status, what, &stderr)?;
    Ok(Output { stdout, stderr })
}

/// Starts `cmd` with `stdin` and piped output, guarded.
fn spawn(cmd: &mut Command, stdin: Stdio, what: &str) -> Result<Child, ToolError> {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    guard(cmd)
        .spawn()
        .map_err(|err| ToolError::failed(format!("Could not start {what}: {err}")))
}

/// Waits for the child to exit, or kills it when `cancel` fires.
async fn wait(
    child: &mut Child,
    cancel: &CancellationToken,
    what: &str,
) -> Result<ExitStatus, ToolError> {
    tokio::select! {
        status = child.wait() => status.map_err(|err| {
            ToolError::failed(format!("{what} could not be waited for: {err}"))
        }),
        _ = cancel.cancelled() => {
            stop(child).await;
            Err(ToolError::Cancelled)
        }
    }
}

/// An exit that was not a success, as an error that quotes the program.
fn succeeded(status: ExitStatus, what: &str, stderr: &str) -> Result<(), ToolError> {
    if status.success() {
        Ok(())
    } else if stderr.contains("No space left on device") {
        Err(ToolError::failed(format!(
            "{what} failed: the disk is full (No space left on device). Free some space \
             or delete finished jobs, then submit the job again."
        )))
    } else {
        Err(ToolError::failed(format!(
            "{what} failed ({status}): {}",
            summary(stderr)
        )))
    }
}

/// Kills a child and reaps it.
async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Runs ffmpeg with `-progress pipe:1`, sending the seconds of output
/// written so far, as ffmpeg reports them, on `progress`.
pub async fn run_with_progress(
    cmd: &mut Command,
    cancel: &CancellationToken,
    what: &str,
    progress: tokio::sync::watch::Sender<f64>,
) -> Result<String, ToolError> {
    let mut child = spawn(cmd, Stdio::null(), what)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    let mut lines = stdout.map(|out| BufReader::new(out).lines());
    let result: Result<(), ToolError> = async {
        let Some(lines) = lines.as_mut() else {
            return Ok(());
        };
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line,
                _ = cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let Ok(Some(line)) = line else { return Ok(()) };
            if let Some(us) = line.strip_prefix("out_time_us=")
                && let Ok(us) = us.trim().parse::<i64>()
                && us >= 0
            {
                progress.send_replace(us as f64 / 1e6);
            }
        }
    }
    .await;
    if let Err(err) = result {
        stop(&mut child).await;
        errors.abort();
        return Err(err);
    }
    let status = match wait(&mut child, cancel, what).await {
        Ok(status) => status,
        Err(err) => {
            errors.abort();
            return Err(err);
        }
    };
    let stderr = errors.await.unwrap_or_default();
    succeeded(status, what, &stderr)?;
    Ok(stderr)
}

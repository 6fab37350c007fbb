//! An SSE load client. It opens N HTTP/1.1 streams to one URL (one TCP
//! connection each), holds them, and reports how many were established,
//! how many the server dropped, the events each received, the server's
//! resident memory per stream (`--pid`), and delivery latency: receive time
//! minus the `timestamp` (Unix seconds) at the top of each event's JSON
//! data. With `--trigger`, it POSTs `{"timestamp": <now>, "seq": <n>}` to
//! that URL every `--every` seconds, for servers that publish what they are
//! sent.
//!
//!     server sseload --url http://127.0.0.1:3901/path -n 1000 [--ramp 5000]
//!         [--settle 2] [--hold 5] [--pid PID] [-H 'Name: value']
//!         [--trigger URL --every 0.05 --pad 150]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How long a stream may wait for its response head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
struct Options {
    host: String,
    path: String,
    n: usize,
    ramp: f64,
    settle: Duration,
    hold: Duration,
    pid: Option<u32>,
    headers: Vec<String>,
    trigger: Option<String>,
    every: Duration,
    pad: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let number = |name: &str, default: f64| -> Result<f64, String> {
            value(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| format!("{name} {v}: not a number"))
            })
        };
        let url = value("--url").ok_or("--url is required")?;
        let rest = url
            .strip_prefix("http://")
            .ok_or("--url must start with http://")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let headers = args
            .windows(2)
            .filter(|pair| pair[0] == "-H")
            .map(|pair| pair[1].clone())
            .collect();
        Ok(Options {
            host: host.to_string(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            n: number("-n", 100.0)? as usize,
            ramp: number("--ramp", 5000.0)?,
            settle: Duration::from_secs_f64(number("--settle", 2.0)?),
            hold: Duration::from_secs_f64(number("--hold", 5.0)?),
            pid: value("--pid").and_then(|p| p.parse().ok()),
            headers,
            trigger: value("--trigger"),
            every: Duration::from_secs_f64(number("--every", 0.05)?),
            pad: number("--pad", 150.0)? as usize,
        })
    }
}

/// What one stream saw.
#[derive(Default)]
struct Seen {
    established: bool,
    dropped: bool,
    error: Option<String>,
    events: usize,
    /// Delivery latencies, in microseconds.
    latencies: Vec<u32>,
}

/// Runs the load and prints a summary and one JSON line.
pub async fn run(args: &[String]) {
    let options = match Options::parse(args) {
        Ok(options) => Arc::new(options),
        Err(why) => return eprintln!("sseload: {why}"),
    };
    raise_nofile(options.n as u64 + 256);
    let rss_before = options.pid.and_then(rss_kb);
    let stop = CancellationToken::new();
    let settled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut streams = Vec::with_capacity(options.n);
    for i in 0..options.n {
        let due = Duration::from_secs_f64(i as f64 / options.ramp);
        tokio::time::sleep_until((started + due).into()).await;
        let (options, stop, settled) = (options.clone(), stop.clone(), settled.clone());
        streams.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            if let Err(why) = follow(&options, &stop, &settled, &mut seen).await {
                seen.error = Some(why);
            }
            if !seen.established {
                settled.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    while settled.load(Ordering::Relaxed) < options.n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let triggers = options.trigger.clone().map(|url| {
        let (stop, every, pad) = (stop.clone(), options.every, options.pad);
        tokio::spawn(async move { trigger(&url, every, pad, &stop).await })
    });
    tokio::time::sleep(options.settle).await;
    let rss_after = options.pid.and_then(rss_kb);
    tokio::time::sleep(options.hold).await;
    stop.cancel();
    let sent = match triggers {
        Some(task) => task.await.unwrap_or(0),
        None => 0,
    };
    let mut seen = Vec::with_capacity(streams.len());
    for stream in streams {
        seen.push(stream.await.unwrap_or_default());
    }
    report(&options, &seen, connect_secs, rss_before, rss_after, sent);
}

/// Opens one stream and reads it until `stop`.
async fn follow(
    options: &Options,
    stop: &CancellationToken,
    settled: &AtomicUsize,
    seen: &mut Seen,
) -> Result<(), String> {
    let mut socket = TcpStream::connect(&options.host)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        options.path, options.host
    );
    for header in &options.headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut body = Body::default();
    let mut buf = vec![0u8; 16 * 1024];
    let head_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        let read = tokio::select! {
            read = socket.read(&mut buf) => read.map_err(|e| format!("read: {e}"))?,
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(head_deadline), if !seen.established => {
                return Err("no response head within 30 s".into());
            }
        };
        if read == 0 {
            seen.dropped = seen.established;
            return match seen.established {
                true => Ok(()),
                false => Err("closed before the response head".into()),
            };
        }
        let was_established = seen.established;
        body.feed(&buf[..read], seen)?;
        if seen.established && !was_established {
            settled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The response as it arrives: head, then a body that may be chunked,
/// then SSE lines.
#[derive(Default)]
struct Body {
    head: Vec<u8>,
    chunked: bool,
    /// Undecoded chunked bytes.
    raw: Vec<u8>,
    /// Decoded body bytes not yet split into lines.
    text: Vec<u8>,
    data: String,
}

impl Body {
    fn feed(&mut self, bytes: &[u8], seen: &mut Seen) -> Result<(), String> {
        if !seen.established {
            self.head.extend_from_slice(bytes);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return Ok(());
            };
            let head = String::from_utf8_lossy(&self.head[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
                return Err(head.lines().next().unwrap_or_default().to_string());
            }
            self.chunked = head.contains("transfer-encoding: chunked");
            seen.established = true;
            let rest = self.head.split_off(end + 4);
            return self.body(&rest, seen);
        }
        self.body(bytes, seen)
    }

    fn body(&mut self, bytes: &[u8], seen: &mut Seen) -> Result<(), String> {
        if !self.chunked {
            self.text.extend_from_slice(bytes);
        } else {
            self.raw.extend_from_slice(bytes);
            // Each chunk: hex size, CRLF, data, CRLF.
            while let Some(line_end) = find(&self.raw, b"\r\n") {
                let size = std::str::from_utf8(&self.raw[..line_end])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .ok_or("bad chunk size")?;
                let start = line_end + 2;
                if self.raw.len() < start + size + 2 {
                    break;
                }
                self.text.extend_from_slice(&self.raw[start..start + size]);
                self.raw.drain(..start + size + 2);
            }
        }
        while let Some(end) = self.text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.text.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            self.line(line.trim_end_matches(['\r', '\n']), seen);
        }
        Ok(())
    }

    /// One SSE line; a blank one ends an event.
    fn line(&mut self, line: &str, seen: &mut Seen) {
        if let Some(data) = line.strip_prefix("data:") {
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
        } else if line.is_empty() && !self.data.is_empty() {
            seen.events += 1;
            let stamped = serde_json::from_str::<Value>(&self.data)
                .ok()
                .and_then(|v| v.get("timestamp")?.as_f64());
            if let Some(sent) = stamped {
                let micros = ((unix_now() - sent) * 1e6).max(0.0);
                seen.latencies.push(micros.min(f64::from(u32::MAX)) as u32);
            }
            self.data.clear();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// POSTs a stamped body to `url` every `every` until `stop`; returns how
/// many were accepted.
async fn trigger(url: &str, every: Duration, pad: usize, stop: &CancellationToken) -> usize {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(every);
    let padding = "x".repeat(pad);
    let mut sent = 0;
    for seq in 0.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let body = json!({ "timestamp": unix_now(), "seq": seq, "pad": padding });
        if let Ok(res) = client.post(url).json(&body).send().await
            && res.status().is_success()
        {
            sent += 1;
        }
    }
    sent
}

/// The server's resident memory, in KiB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn raise_nofile(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn report(
    options: &Options,
    seen: &[Seen],
    connect_secs: f64,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    triggers: usize,
) {
    let established = seen.iter().filter(|s| s.established).count();
    let dropped = seen.iter().filter(|s| s.dropped).count();
    let errors: Vec<&String> = seen.iter().filter_map(|s| s.error.as_ref()).collect();
    let mut events: Vec<usize> = seen
        .iter()
        .filter(|s| s.established)
        .map(|s| s.events)
        .collect();
    events.sort_unstable();
    let mut latencies: Vec<u32> = seen
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let ms = |q: f64| match latencies.len() {
        0 => 0.0,
        n => f64::from(latencies[((n - 1) as f64 * q).round() as usize]) / 1000.0,
    };
    let per_stream_kb = match (rss_before, rss_after) {
        (Some(before), Some(after)) if established > 0 => {
            Some(after.saturating_sub(before) as f64 / established as f64)
        }
        _ => None,
    };
    println!(
        "established {established}/{} in {connect_secs:.1} s; dropped {dropped}; errors {}{}",
        options.n,
        errors.len(),
        errors
            .first()
            .map_or(String::new(), |e| format!(" (first: {e})")),
    );
    if let (Some(before), Some(after), Some(kb)) = (rss_before, rss_after, per_stream_kb) {
        println!(
            "server pid {:?}: RSS {before} KiB -> {after} KiB, {kb:.2} KiB per stream",
            options.pid
        );
    }
    if let (Some(min), Some(max)) = (events.first(), events.last()) {
        println!(
            "events per stream: min {min}, median {}, max {max}; triggers sent {triggers}",
            events[events.len() / 2]
        );
    }
    if !latencies.is_empty() {
        println!(
            "latency over {} deliveries: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0)
        );
    }
    println!(
        "{}",
        json!({
            "bench": "sseload", "n": options.n, "established": established, "dropped": dropped,
            "errors": errors.len(), "rss_kb_per_stream": per_stream_kb,
            "deliveries": latencies.len(), "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1.0),
        })
    );
}

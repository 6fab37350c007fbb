//! Sending: due deliveries go out signed, a job's in order, at most
//! `WEBHOOK_MAX_PER_HOST` at a time to one host, and each attempt is
//! recorded with what follows from it: delivered, a retry later, or failed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Webhooks, lock, sign, unix_now};
use crate::store::{Attempt, AttemptOutcome, AttemptRecord, Delivery, Endpoint};

/// Deliveries looked at per pass.
const BATCH: i64 = 200;

/// Longest sleep between passes, so that a delivery whose host was busy is
/// looked at again soon.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Longest error text kept with an attempt.
const MAX_ERROR_CHARS: usize = 500;

/// Sends due deliveries until `stop` fires.
pub(super) async fn run(hooks: Webhooks, stop: CancellationToken) {
    loop {
        let sleep = match pass(&hooks).await {
            Ok(sleep) => sleep,
            Err(err) => {
                tracing::warn!(error = %err, "could not read due webhook deliveries");
                MAX_SLEEP
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hooks.inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Starts every due delivery that has a free slot; returns how long to
/// sleep before the next pass.
async fn pass(hooks: &Webhooks) -> crate::store::Result<Duration> {
    let store = &hooks.inner.store;
    // A delivery whose attempt was recorded before this pass began is
    // seen as it now is by the read below; one recorded during an earlier
    // pass's read stays in flight until now, so that read cannot send it
    // twice.
    let pass = hooks.inner.passes.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut in_flight = lock(&hooks.inner.in_flight);
        lock(&hooks.inner.settling).retain(|(id, recorded)| {
            let settled = *recorded < pass;
            if settled {
                in_flight.remove(id);
            }
            !settled
        });
    }
    let now = unix_now();
    for delivery in store.due_deliveries(now, BATCH).await? {
        // Claimed here, atomically, so that a lane moving on to the same
        // delivery cannot send it too.
        if !lock(&hooks.inner.in_flight).insert(delivery.id.clone()) {
            continue;
        }
        let endpoint = store.endpoint(&delivery.endpoint_id).await;
        let ready = match &endpoint {
            Ok(Some(endpoint)) => slot(hooks, &endpoint.url),
            _ => None,
        };
        let (Ok(Some(endpoint)), Some(permit)) = (endpoint, ready) else {
            lock(&hooks.inner.in_flight).remove(&delivery.id);
            continue;
        };
        let hooks = hooks.clone();
        tokio::spawn(async move {
            lane(&hooks, endpoint, delivery).await;
            drop(permit);
            hooks.inner.wake.notify_one();
        });
    }
    let next = store.next_due().await?;
    Ok(match next {
        Some(at) if at > now => Duration::from_secs_f64(at - now).min(MAX_SLEEP),
        Some(_) => Duration::from_millis(50),
        None => MAX_SLEEP,
    })
}

/// Sends `first` and, while they are delivered and due, the next messages
/// of its lane (its subscription and job), in order, on the same slot.
async fn lane(hooks: &Webhooks, endpoint: Endpoint, first: Delivery) {
    let mut current = first;
    loop {
        let delivered = attempt(hooks, &endpoint, &current).await;
        let pass = hooks.inner.passes.load(Ordering::SeqCst);
        lock(&hooks.inner.settling).push((current.id.clone(), pass));
        if !delivered {
            return;
        }
        let next = hooks
            .inner
            .store
            .next_in_lane(&endpoint.id, current.job_id, unix_now())
            .await;
        match next {
            Ok(Some(next)) if lock(&hooks.inner.in_flight).insert(next.id.clone()) => {
                current = next;
            }
            _ => return,
        }
    }
}

/// A free slot for `url`'s host, if it has one.
fn slot(hooks: &Webhooks, url: &str) -> Option<OwnedSemaphorePermit> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let per_host = hooks.inner.settings.per_host;
    let semaphore = lock(&hooks.inner.hosts)
        .entry(host)
        .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
        .clone();
    semaphore.try_acquire_owned().ok()
}

/// The secrets that sign for `endpoint` now: its own or the default, and
/// the previous one during a rotation.
async fn secrets(hooks: &Webhooks, endpoint: &Endpoint) -> crate::store::Result<Vec<String>> {
    let now = unix_now();
    let (secret, previous, until) = match &endpoint.secret {
        Some(secret) => (
            secret.clone(),
            endpoint.previous_secret.clone(),
            endpoint.previous_secret_until,
        ),
        None => {
            let default = hooks.default_secret().await?;
            (default.secret, default.previous, default.previous_until)
        }
    };
    let mut out = vec![secret];
    if let (Some(previous), Some(until)) = (previous, until)
        && until > now
    {
        out.push(previous);
    }
    Ok(out)
}

/// One attempt, recorded; true when it was delivered and recorded so.
async fn attempt(hooks: &Webhooks, endpoint: &Endpoint, delivery: &Delivery) -> bool {
    let secrets = match secrets(hooks, endpoint).await {
        Ok(secrets) => secrets,
        Err(err) => {
            tracing::warn!(error = %err, "could not read a webhook secret");
            return false;
        }
    };
    let timestamp = chrono::Utc::now().timestamp();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let signature = sign::header(&refs, &delivery.id, timestamp, delivery.payload.as_bytes());
    let started = Instant::now();
    let attempted_at = crate::model::rfc3339(chrono::Utc::now());
    let sent = hooks
        .inner
        .client
        .post(&endpoint.url)
        .header(CONTENT_TYPE, "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let latency = started.elapsed();
    let (status_code, error) = match sent {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("the receiver answered {}", response.status())),
        ),
        Err(err) => (None, Some(describe(&err))),
    };
    let settings = &hooks.inner.settings;
    let outcome = if error.is_none() {
        AttemptOutcome::Delivered
    } else {
        match settings.retries.get(delivery.attempts as usize) {
            Some(wait) => AttemptOutcome::Retry(unix_now() + wait.as_secs_f64()),
            None => AttemptOutcome::Failed,
        }
    };
    let label = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retry(_) => "retry",
        AttemptOutcome::Failed => "failed",
    };
    metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => label).increment(1);
    metrics::histogram!(crate::metrics::WEBHOOK_DELIVERY_DURATION).record(latency.as_secs_f64());
    if let Some(error) = &error {
        tracing::info!(webhook = %endpoint.id, delivery = %delivery.id, attempt = delivery.attempts + 1, outcome = label, error, "webhook delivery failed");
    }
    let record = AttemptRecord {
        delivery_id: delivery.id.clone(),
        endpoint_id: endpoint.id.clone(),
        attempt: Attempt {
            attempted_at,
            status_code,
            latency_ms: latency.as_secs_f64() * 1000.0,
            error,
        },
        outcome,
        disable_failing_since: unix_now() - settings.disable_after.as_secs_f64(),
    };
    match hooks.inner.store.record_attempt(record).await {
        Ok(disabled) => {
            if disabled {
                tracing::warn!(webhook = %endpoint.id, url = %endpoint.url, "disabled a webhook subscription that kept failing");
            }
            outcome == AttemptOutcome::Delivered
        }
        // Still pending in the store: the delivery is tried again, under
        // the same id.
        Err(err) => {
            tracing::warn!(error = %err, delivery = %delivery.id, "could not record a webhook attempt");
            false
        }
    }
}

/// An error in a sentence, with its causes.
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_redirect() {
        "redirect refused".to_string()
    } else if err.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

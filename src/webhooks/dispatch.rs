//! Queueing: turns committed events into deliveries, after each
//! subscription's cursor, and moves the cursors in the same transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Webhooks, unix_now};
use crate::model::{Event, EventKind, Job, WebhookEvent, rfc3339};
use crate::store::{CursorMove, Endpoint, Filter, NewDelivery, Result};

/// Events read per subscription and pass.
const BATCH: usize = 500;

/// How often the subscriptions are looked at even when nothing woke the
/// dispatcher (a pass that failed, a subscription enabled by hand).
const IDLE_PASS: Duration = Duration::from_secs(1);

/// How often ended messages past `WEBHOOK_HISTORY_DAYS` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Shortest time between passes, so that a burst of commits is read in one
/// pass rather than one each.
const MIN_GAP: Duration = Duration::from_millis(20);

/// What a pass found.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    /// Some subscription is served.
    active: bool,
    /// Some subscription had more events than one batch.
    more: bool,
}

/// Queues deliveries until `stop` fires. With no active subscription it
/// ignores commits, so that the event log's hot path pays nothing for
/// webhooks nobody asked for.
pub(super) async fn run(hooks: Webhooks, stop: CancellationToken) {
    let mut committed = hooks.inner.hub.watch_committed();
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            let before = unix_now() - hooks.inner.settings.history.as_secs_f64();
            match hooks.inner.store.prune_deliveries(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned the webhook history"),
                Err(err) => tracing::warn!(error = %err, "could not prune the webhook history"),
            }
        }
        let found = pass(&hooks).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not queue webhook deliveries; trying again");
            Found {
                active: true,
                more: false,
            }
        });
        if found.more {
            continue;
        }
        if found.active {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = committed.changed() => {}
                _ = hooks.inner.subscribed.notified() => {}
                _ = tokio::time::sleep(IDLE_PASS) => {}
            }
            tokio::time::sleep(MIN_GAP).await;
        } else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hooks.inner.subscribed.notified() => {}
                _ = tokio::time::sleep(IDLE_PASS) => {}
            }
        }
    }
}

/// The message id of an event for a subscription: the same on every
/// attempt and after every restart.
fn message_id(endpoint: &str, event: i64) -> String {
    format!("msg_{endpoint}_{event}")
}

/// One pass over every active subscription.
async fn pass(hooks: &Webhooks) -> Result<Found> {
    let store = &hooks.inner.store;
    let endpoints = store.endpoints(true).await?;
    if endpoints.is_empty() {
        return Ok(Found::default());
    }
    let (global, own): (Vec<&Endpoint>, Vec<&Endpoint>) =
        endpoints.iter().partition(|e| e.job_id.is_none());
    let mut out = Batch::default();
    let mut more = false;

    // Global subscriptions read the whole log, once, from the oldest cursor.
    if let Some(from) = global.iter().map(|e| e.cursor).min() {
        let events = store.log_after(from, BATCH as i64).await?;
        more |= events.len() == BATCH;
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        for endpoint in &global {
            out.queue(hooks, endpoint, &events, false).await?;
        }
    }
    // A job's own webhook reads its job's log, from the cache.
    for endpoint in &own {
        let Some(job) = endpoint.job_id else { continue };
        let events = store
            .events_after(job, endpoint.cursor, BATCH, Filter::default())
            .await?
            .unwrap_or_default();
        more |= events.len() == BATCH;
        let ended = events.iter().any(|e| is_terminal(e.kind));
        out.queue(hooks, endpoint, &events, ended).await?;
    }
    let found = Found { active: true, more };
    if out.deliveries.is_empty() && out.cursors.is_empty() {
        return Ok(found);
    }
    let queued = !out.deliveries.is_empty();
    store
        .queue_deliveries(out.deliveries, out.cursors, unix_now())
        .await?;
    if queued {
        hooks.inner.wake.notify_one();
    }
    Ok(found)
}

fn is_terminal(kind: Option<EventKind>) -> bool {
    matches!(
        kind,
        Some(EventKind::Completed | EventKind::Failed | EventKind::Cancelled)
    )
}

/// What one pass queues.
#[derive(Default)]
struct Batch {
    deliveries: Vec<NewDelivery>,
    cursors: Vec<CursorMove>,
    /// Each job's `data`, rendered once per pass.
    jobs: HashMap<Uuid, Option<Value>>,
}

impl Batch {
    /// Queues the events after `endpoint`'s cursor that it asks for, and
    /// moves its cursor past all of them.
    async fn queue(
        &mut self,
        hooks: &Webhooks,
        endpoint: &Endpoint,
        events: &[Arc<Event>],
        done: bool,
    ) -> Result<()> {
        let mut cursor = endpoint.cursor;
        for event in events.iter().filter(|e| e.id > endpoint.cursor) {
            cursor = event.id;
            if !endpoint.events.contains(&WebhookEvent::of(event.kind)) {
                continue;
            }
            // A job deleted since has nothing left to report.
            let Some(data) = self.job(hooks, event.job_id).await? else {
                continue;
            };
            self.deliveries.push(delivery(endpoint, event, data));
        }
        if cursor != endpoint.cursor || done {
            self.cursors.push(CursorMove {
                endpoint_id: endpoint.id.clone(),
                cursor,
                done,
            });
        }
        Ok(())
    }

    async fn job(&mut self, hooks: &Webhooks, id: Uuid) -> Result<Option<Value>> {
        if let Some(data) = self.jobs.get(&id) {
            return Ok(data.clone());
        }
        let job: Option<Job> = hooks.inner.store.job(id).await?;
        let project = hooks.inner.project.get();
        let data = job.zip(project).map(|(job, project)| project(&job));
        self.jobs.insert(id, data.clone());
        Ok(data)
    }
}

/// The message for one event: `type`, `timestamp` and `data`, the job in
/// the v1 shape with the event under `event`.
fn delivery(endpoint: &Endpoint, event: &Event, mut data: Value) -> NewDelivery {
    let event_json: Value = serde_json::from_slice(event.json()).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut data {
        fields.insert("event".into(), event_json);
    }
    let ty = WebhookEvent::message_type(event.kind);
    let timestamp = chrono::DateTime::from_timestamp_micros((event.timestamp * 1e6) as i64)
        .map(rfc3339)
        .unwrap_or_default();
    let body = json!({ "type": ty, "timestamp": timestamp, "data": data });
    NewDelivery {
        id: message_id(&endpoint.id, event.id),
        endpoint_id: endpoint.id.clone(),
        job_id: event.job_id.to_string(),
        event_id: event.id,
        event_type: ty.to_string(),
        payload: body.to_string(),
    }
}

//! Webhooks, as the Standard Webhooks specification describes them:
//! signed, durable, at-least-once messages about jobs.
//!
//! Subscriptions are global (`/api/v1/webhooks`) or a job's own (its
//! request's `webhook`). [`dispatch`] reads the committed event log after
//! each subscription's cursor and queues one delivery per matching event,
//! moving the cursor in the same transaction. [`deliver`] sends due
//! deliveries, a job's in order, with retries that back off, a bound per
//! receiving host, and the [`guard`] against private addresses. Everything
//! is in SQLite, so a restart re-sends at most what was in flight, under
//! the same `webhook-id`.

mod deliver;
mod dispatch;
pub mod guard;
pub mod sign;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::hub::Hub;
use crate::model::{Job, WebhookEvent};
use crate::store::{DefaultSecret, Endpoint, NewEndpoint, Result, Store, StoreError};

pub use guard::Refused;

/// How long a rotated-out secret keeps signing next to the new one.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Turns a job into the body's `data`: the job in the v1 shape.
pub type Projector = Arc<dyn Fn(&Job) -> Value + Send + Sync>;

/// The settings deliveries follow.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Waits before each retry; after the last, a delivery has failed.
    pub retries: Vec<Duration>,
    /// A subscription failing for this long is disabled.
    pub disable_after: Duration,
    /// Most deliveries in flight to one host.
    pub per_host: usize,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Allow loopback, private and link-local receivers.
    pub allow_private: bool,
    /// How long ended messages stay in the history.
    pub history: Duration,
}

impl Settings {
    /// The settings `config` names.
    pub fn of(config: &Config) -> Self {
        Settings {
            retries: config.webhook_retry_schedule.0.clone(),
            disable_after: config.webhook_disable_after.first(),
            per_host: config.webhook_max_per_host.max(1),
            timeout: Duration::from_secs(config.webhook_timeout_secs.max(1)),
            allow_private: config.webhook_allow_private,
            history: Duration::from_secs(config.webhook_history_days.saturating_mul(86_400)),
        }
    }
}

/// Why a webhook request is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not allowed.
    #[error("url {0}")]
    Url(#[from] Refused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Cheap handle to the webhook service.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    hub: Arc<Hub>,
    settings: Settings,
    client: reqwest::Client,
    project: OnceLock<Projector>,
    /// A permit per delivery in flight, per host.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Mutex<HashSet<String>>,
    /// Ids whose attempt is recorded, with the scheduler pass that was
    /// current then: they leave `in_flight` only when a later pass
    /// begins, whose read is sure to see the record.
    settling: Mutex<Vec<(String, u64)>>,
    /// Scheduler passes begun.
    passes: std::sync::atomic::AtomicU64,
    /// Wakes the sender: new deliveries, or a finished attempt.
    wake: Notify,
    /// Wakes the dispatcher: a subscription was added or enabled.
    subscribed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unix seconds now.
fn unix_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

impl Webhooks {
    /// The service over `store`; nothing is sent until [`Webhooks::start`].
    pub fn new(store: Store, hub: Arc<Hub>, settings: Settings) -> Self {
        let client = guard::client(settings.allow_private, settings.timeout);
        Webhooks {
            inner: Arc::new(Inner {
                store,
                hub,
                settings,
                client,
                project: OnceLock::new(),
                hosts: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashSet::new()),
                settling: Mutex::new(Vec::new()),
                passes: std::sync::atomic::AtomicU64::new(0),
                wake: Notify::new(),
                subscribed: Notify::new(),
            }),
        }
    }

    /// Starts queueing and sending until `stop` fires. `project` renders a
    /// job into the body's `data`.
    pub fn start(&self, project: Projector, stop: CancellationToken) {
        if self.inner.project.set(project).is_err() {
            return;
        }
        tokio::spawn(self.clone().lead(stop));
    }

    /// Queues and sends deliveries while this instance holds the webhook
    /// lock: on a shared database one instance does it at a time, and
    /// another takes over when that one goes.
    async fn lead(self, stop: CancellationToken) {
        while let Some(held) = self.inner.store.hold_webhooks(&stop).await {
            tracing::info!("this instance now queues and sends webhooks");
            tokio::spawn(dispatch::run(self.clone(), held.lost.clone()));
            tokio::spawn(deliver::run(self.clone(), held.lost.clone()));
            held.lost.cancelled().await;
            if stop.is_cancelled() {
                return;
            }
            tracing::warn!("this instance no longer sends webhooks; waiting to take over again");
        }
    }

    /// Tells the dispatcher that a subscription was added, such as a new
    /// job's own webhook. Without any, it does not read the log at all.
    pub fn subscribed(&self) {
        self.inner.subscribed.notify_one();
    }

    /// Checks a webhook URL as it is given.
    pub async fn check_url(&self, url: &str) -> std::result::Result<(), Refused> {
        guard::check_url(url, self.inner.settings.allow_private)
            .await
            .map(drop)
    }

    /// Adds a global subscription; its secret is in the answer.
    pub async fn create(
        &self,
        url: String,
        events: Option<Vec<WebhookEvent>>,
        description: Option<String>,
    ) -> std::result::Result<Endpoint, WebhookError> {
        self.check_url(&url).await?;
        let hook = crate::model::JobWebhook::new(url, events);
        let endpoint = self
            .inner
            .store
            .create_endpoint(NewEndpoint {
                id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
                url: hook.url,
                events: hook.events,
                secret: sign::new_secret(),
                description,
            })
            .await?;
        self.subscribed();
        Ok(endpoint)
    }

    /// Every global subscription.
    pub async fn list(&self) -> Result<Vec<Endpoint>> {
        self.inner.store.endpoints(false).await
    }

    /// One subscription, global or a job's (`job_<id>`).
    pub async fn get(&self, id: &str) -> Result<Option<Endpoint>> {
        self.inner.store.endpoint(id).await
    }

    /// Removes a global subscription; false when there is none.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        self.inner.store.delete_endpoint(id).await
    }

    /// A new secret for a global subscription, or for the default
    /// (`default`) that signs jobs' own webhooks; the old one keeps signing
    /// for [`ROTATION_GRACE`]. `None` when there is no such subscription.
    pub async fn rotate(&self, id: &str) -> Result<Option<String>> {
        let secret = sign::new_secret();
        let until = unix_now() + ROTATION_GRACE.as_secs_f64();
        if id == "default" {
            self.default_secret().await?;
            self.inner
                .store
                .rotate_default_secret(secret.clone(), until)
                .await?;
            return Ok(Some(secret));
        }
        let found = self
            .inner
            .store
            .rotate_endpoint_secret(id, secret.clone(), until)
            .await?;
        Ok(found.then_some(secret))
    }

    /// The default secret, which signs every job's own webhook; made on
    /// first use.
    pub async fn default_secret(&self) -> Result<DefaultSecret> {
        self.inner.store.default_secret(sign::new_secret()).await
    }

    /// A subscription's newest deliveries with their attempts.
    pub async fn deliveries(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<(crate::store::Delivery, Vec<crate::store::Attempt>)>> {
        self.inner.store.deliveries(id, limit).await
    }

    /// Sends a delivery that ended (delivered or failed) again, at once.
    /// `None` when there is no such delivery, false while it is pending.
    pub async fn resend(&self, id: &str, delivery: &str) -> Result<Option<bool>> {
        let done = self.inner.store.resend_delivery(id, delivery).await?;
        self.subscribed();
        self.inner.wake.notify_one();
        Ok(done)
    }
}

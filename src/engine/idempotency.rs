//! Submits that carry an Idempotency-Key. In this process at most one
//! request per key is in flight ([`Engine::claim_key`]); the answer it
//! gave is kept in the store for 24 hours, and later requests with the
//! key get that answer instead of running again. Requests in this process
//! wait on each other through a mutex-guarded list; across instances that
//! share a database, the first request also claims its key with a row in
//! the store, and the others poll until its answer is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::{Engine, Result};
use crate::store::Store;

/// How often a request polls a key another instance holds.
const KEY_POLL: Duration = Duration::from_millis(50);
pub use crate::store::KeptAnswer;

/// A key in its scope (route and caller).
type KeyId = (String, String);

/// The keys whose first request is still running; each waiter watches
/// the owner's channel, which closes when the owner is done.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<KeyId, watch::Sender<()>>>);

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<KeyId, watch::Sender<()>>> {
        // Plain data, valid after any panic.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a request with an Idempotency-Key is to do.
pub enum KeyState {
    /// An earlier request with this key answered this.
    Kept(KeptAnswer),
    /// This request is the first: it runs, then keeps its answer.
    Mine(KeyClaim),
    /// An earlier request with this key is still running after the wait.
    Busy,
}

/// The right to run the request of one key. Dropping it without
/// [`KeyClaim::keep`] lets the next request with the key run.
pub struct KeyClaim {
    id: KeyId,
    keys: Arc<InFlight>,
    /// Holds the key's row in the store until an answer replaces it.
    store: Option<Store>,
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        // Dropping the sender wakes every waiter.
        self.keys.lock().remove(&self.id);
        if let Some(store) = self.store.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (scope, key) = self.id.clone();
            runtime.spawn(async move {
                if let Err(err) = store.release_key(&scope, &key).await {
                    tracing::warn!(error = %err, "could not release an Idempotency-Key");
                }
            });
        }
    }
}

impl KeyClaim {
    /// Keeps the answer, durably, before anyone waiting for it wakes.
    pub async fn keep(mut self, engine: &Engine, answer: KeptAnswer) -> Result<()> {
        engine.inner.store.keep_answer(answer).await?;
        // The answer replaced the claim's row.
        self.store = None;
        Ok(())
    }
}

impl Engine {
    /// Claims `key` in `scope` for this request, or finds the answer an
    /// earlier one kept. While another request with the key runs, this
    /// waits for it, at most `wait`.
    pub async fn claim_key(&self, scope: &str, key: &str, wait: Duration) -> Result<KeyState> {
        let id = (scope.to_string(), key.to_string());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let running = {
                let mut keys = self.inner.keys.lock();
                match keys.get(&id) {
                    Some(owner) => Some(owner.subscribe()),
                    None => {
                        keys.insert(id.clone(), watch::channel(()).0);
                        None
                    }
                }
            };
            let Some(mut owner) = running else { break };
            // Resolves (with an error) when the owner is done.
            if tokio::time::timeout_at(deadline, owner.changed())
                .await
                .is_err()
            {
                return Ok(KeyState::Busy);
            }
        }
        let mut claim = KeyClaim {
            id,
            keys: self.inner.keys.clone(),
            store: None,
        };
        // Read after claiming: an owner keeps its answer before it lets
        // go, so an answer kept by anyone before us is visible now. Then
        // the key's row: another instance may run a request with it.
        let store = &self.inner.store;
        let stale = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX).max(1);
        loop {
            if let Some(kept) = store.kept_answer(scope, key).await? {
                return Ok(KeyState::Kept(kept));
            }
            if store.take_key(scope, key, stale).await? {
                claim.store = Some(store.clone());
                return Ok(KeyState::Mine(claim));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(KeyState::Busy);
            }
            tokio::time::sleep(KEY_POLL).await;
        }
    }
}

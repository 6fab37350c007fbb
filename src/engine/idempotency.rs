//! Submits that carry an Idempotency-Key. In this process at most one
//! request per key is in flight ([`Engine::claim_key`]); the answer it
//! gave is kept in the store for 24 hours, and later requests with the
//! key get that answer instead of running again. The in-flight list is a
//! mutex in this process. On SQLite one process owns the database, so
//! that is all it takes; on a shared PostgreSQL database two instances
//! that get the same key in the same instant can each run it, and only
//! requests after the first answer was kept are sure to replay it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::{Engine, Result};
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
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        // Dropping the sender wakes every waiter.
        self.keys.lock().remove(&self.id);
    }
}

impl KeyClaim {
    /// Keeps the answer, durably, before anyone waiting for it wakes.
    pub async fn keep(self, engine: &Engine, answer: KeptAnswer) -> Result<()> {
        engine.inner.store.keep_answer(answer).await?;
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
        let claim = KeyClaim {
            id,
            keys: self.inner.keys.clone(),
        };
        // Read after claiming: an owner keeps its answer before it lets
        // go, so an answer kept by anyone before us is visible now.
        match self.inner.store.kept_answer(scope, key).await? {
            Some(kept) => Ok(KeyState::Kept(kept)),
            None => Ok(KeyState::Mine(claim)),
        }
    }
}

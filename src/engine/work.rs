//! The worker's side of the engine: claiming jobs, waiting for work, and
//! recording what runs do, durably even through a full disk.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Claimed, Engine, EngineError, JobPatch, Result};
use crate::model::{Event, Job, NewEvent};
use crate::store::{Backend, LeaseReport};

/// First and longest wait between writes retried while the database
/// cannot be written.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Engine {
    /// Claims the oldest queued job for this process. Its token is a child
    /// of `shutdown`, and a cancel request fires it.
    pub async fn claim_next(&self, shutdown: &CancellationToken) -> Result<Option<Claimed>> {
        let Some(job) = self.inner.store.claim_next().await? else {
            return Ok(None);
        };
        let token = shutdown.child_token();
        let registration = self.inner.control.register(job.id, token.clone());
        // A cancel recorded between the claim and the registration did not
        // reach the token; the row has it.
        if let Ok(Some(row)) = self.inner.store.job(job.id).await
            && row.cancel_requested
        {
            token.cancel();
        }
        Ok(Some(Claimed {
            job,
            token,
            registration,
        }))
    }

    /// Resolves when a job may have been queued since the last call.
    pub async fn work_queued(&self) {
        self.inner.control.woken().await;
    }

    /// Commits events and a change to their job in one step and returns the
    /// committed events. Fails with [`EngineError::Finished`] once the job
    /// is terminal.
    pub async fn append(
        &self,
        job: Uuid,
        events: Vec<NewEvent>,
        patch: JobPatch,
    ) -> Result<Vec<Arc<Event>>> {
        Ok(self.inner.store.append(job, events, patch).await?)
    }

    /// [`Engine::append`], retried while the database cannot be written,
    /// until it is written or `give_up` fires. A running job keeps its
    /// place this way through a full disk, and ends correctly once there is
    /// space again.
    pub async fn append_until_written(
        &self,
        job: Uuid,
        events: Vec<NewEvent>,
        patch: JobPatch,
        give_up: &CancellationToken,
    ) -> Result<Vec<Arc<Event>>> {
        let mut delay = RETRY_FIRST;
        loop {
            match self.append(job, events.clone(), patch.clone()).await {
                Err(EngineError::StoreUnavailable) if !give_up.is_cancelled() => {
                    tracing::warn!(%job, "the database cannot be written; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = give_up.cancelled() => return Err(EngineError::StoreUnavailable),
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                result => return result,
            }
        }
    }

    /// Jobs a crash left `running`, oldest first, with the owner whose
    /// lease lapsed (see [`crate::store::Store::interrupted_jobs`]).
    pub async fn interrupted_jobs(&self, at_start: bool) -> Result<Vec<(Job, Option<String>)>> {
        Ok(self.inner.store.interrupted_jobs(at_start).await?)
    }

    /// Which database the store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.store.backend()
    }

    /// This instance's name, its lease and its rescues, for `/health`.
    pub fn instance_report(&self) -> (String, LeaseReport) {
        let store = &self.inner.store;
        (store.instance().to_string(), store.lease_report())
    }

    /// Counts jobs of dead instances this one rescued, and wakes the
    /// worker for those back in the queue.
    pub fn rescued(&self, jobs: usize) {
        self.inner.store.count_rescued(jobs as u64);
        self.inner.control.wake();
    }
}

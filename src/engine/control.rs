//! The jobs this process runs, each with the token that stops it, and the
//! signal that wakes the worker when work is queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::Job;
use crate::store::Signal;

/// Shared by every clone of the engine.
#[derive(Default)]
pub(super) struct Control {
    wake: Notify,
    running: Mutex<HashMap<Uuid, CancellationToken>>,
}

impl Control {
    fn running(&self) -> MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        // Plain data, valid after any panic.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the worker a job was queued.
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`Control::wake`] (or at once if one is pending).
    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Stops a job running in this process, if it runs here.
    pub(super) fn cancel(&self, job: Uuid) {
        if let Some(token) = self.running().get(&job) {
            token.cancel();
        }
    }

    /// Acts on what other instances did until the store stops: wakes the
    /// worker for jobs they queued, and stops jobs running here that they
    /// were asked to cancel.
    pub(super) async fn follow(self: Arc<Self>, mut signals: UnboundedReceiver<Signal>) {
        while let Some(signal) = signals.recv().await {
            match signal {
                Signal::Queued => self.wake(),
                Signal::Cancel(job) => self.cancel(job),
            }
        }
    }

    /// How many jobs run in this process.
    pub(super) fn count(&self) -> usize {
        self.running().len()
    }

    /// Lists `job` as running, stopped by `token`, until the registration
    /// is dropped.
    pub(super) fn register(self: &Arc<Self>, job: Uuid, token: CancellationToken) -> Registration {
        self.running().insert(job, token);
        Registration {
            job,
            control: self.clone(),
        }
    }
}

/// A job claimed for this process: the job, the token that stops it (a
/// cancel request or shutdown fires it), and its place on the running list.
pub struct Claimed {
    /// The job, now `running`.
    pub job: Job,
    /// Fired to stop the job's stages.
    pub token: CancellationToken,
    /// Keeps the job on the running list; drop it when the run is recorded.
    pub registration: Registration,
}

/// A job's place on the running list; dropping it removes the job, however
/// its task ends.
pub struct Registration {
    job: Uuid,
    control: Arc<Control>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.control.running().remove(&self.job);
    }
}

//! The job states the writer knows, so that a plain append need not ask
//! SQLite whether its job is still open.

use std::collections::HashMap;

use sqlx::SqliteConnection;
use uuid::Uuid;

use super::Result;
use super::jobs;
use crate::model::JobState;

/// The state of each job the writer has touched. The writer is the only
/// one that changes states, so it can tell a plain event append whether
/// its job is still open without asking SQLite.
#[derive(Default)]
pub(super) struct States(pub(super) HashMap<Uuid, JobState>);

impl States {
    pub(super) async fn get(&mut self, conn: &mut SqliteConnection, job: Uuid) -> Result<JobState> {
        if let Some(state) = self.0.get(&job) {
            return Ok(*state);
        }
        let (state, _) = jobs::state_of(conn, job).await?;
        self.set(job, state);
        Ok(state)
    }

    /// Terminal jobs are forgotten: they are rare to touch again, and a
    /// lookup finds them finished.
    pub(super) fn set(&mut self, job: Uuid, state: JobState) {
        if state.is_terminal() {
            self.0.remove(&job);
        } else {
            self.0.insert(job, state);
        }
    }
}

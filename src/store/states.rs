//! The job states the writer knows, so that a plain append need not ask
//! the database whether its job is still open.

use std::collections::HashMap;

use uuid::Uuid;

use super::Result;
use super::db::Conn;
use super::jobs;
use super::rows::Columns;
use crate::model::JobState;

/// The state of each job the writer has touched. On SQLite the writer is
/// the only one that changes states, so it can tell a plain event append
/// whether its job is still open without asking. On PostgreSQL other
/// instances change states too: the writer forgets them at every batch,
/// and a job is only open to this instance while it owns it.
pub(super) struct States {
    known: HashMap<Uuid, JobState>,
    /// On PostgreSQL, this instance: appends need the job's lease.
    owner: Option<String>,
}

impl States {
    pub(super) fn new(owner: Option<String>) -> Self {
        States {
            known: HashMap::new(),
            owner,
        }
    }

    /// True while events may be appended to `job` by this instance.
    pub(super) async fn open(&mut self, conn: &mut Conn<'_>, job: Uuid) -> Result<bool> {
        if let Some(state) = self.known.get(&job) {
            return Ok(!state.is_terminal());
        }
        let (state, owner, _) = jobs::owned_state(conn, job).await?;
        if self.owner.is_some() && owner != self.owner {
            return Ok(false);
        }
        self.set(job, state);
        Ok(!state.is_terminal())
    }

    /// Learns the states of `jobs` in one query (PostgreSQL, at the start
    /// of a batch). A job this instance does not own is learnt as closed.
    pub(super) async fn learn(
        &mut self,
        conn: &mut sqlx::PgConnection,
        jobs: &[Uuid],
    ) -> Result<()> {
        let ids: Vec<String> = jobs.iter().map(Uuid::to_string).collect();
        let rows = sqlx::query("SELECT id, state, owner FROM jobs WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(conn)
            .await?;
        for row in &rows {
            let (id, state, owner) = (row.text(0)?, row.text(1)?, row.text_opt(2)?);
            let (Ok(id), Some(state)) = (Uuid::parse_str(&id), JobState::parse(&state)) else {
                continue;
            };
            let owned = self.owner.is_none() || owner == self.owner;
            // Closed to this instance: remembered as finished.
            self.known
                .insert(id, if owned { state } else { JobState::Cancelled });
        }
        Ok(())
    }

    /// Terminal jobs are forgotten: they are rare to touch again, and a
    /// lookup finds them finished.
    pub(super) fn set(&mut self, job: Uuid, state: JobState) {
        if state.is_terminal() {
            self.known.remove(&job);
        } else {
            self.known.insert(job, state);
        }
    }

    /// Forgets one job (deleted).
    pub(super) fn forget(&mut self, job: Uuid) {
        self.known.remove(&job);
    }

    /// Forgets every job: after a failed batch, and on PostgreSQL at the
    /// start of each batch.
    pub(super) fn clear(&mut self) {
        self.known.clear();
    }

    /// This instance, when jobs are leased.
    pub(super) fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

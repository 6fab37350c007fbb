//! The store's reads: jobs, logs and counts, from the read pool (and logs
//! from the cache once loaded), on either database.

use std::sync::Arc;

use sqlx::Connection;
use uuid::Uuid;

use super::cache::{Filter, Lookup};
use super::db::{both, read};
use super::idempotency::{self, KeptAnswer};
use super::rows::{self, Columns, job_by_id, job_from_row, select_jobs};
use super::{Result, Store, StoreError};
use crate::model::{Event, Job, JobState};

impl Store {
    /// The answer kept under an Idempotency-Key, unless it has expired.
    pub async fn kept_answer(&self, scope: &str, key: &str) -> Result<Option<KeptAnswer>> {
        let mut pooled = self.read.acquire().await?;
        idempotency::find(&mut pooled.conn(), scope, key).await
    }

    /// Finished jobs that ended before `cutoff` (RFC 3339), oldest first.
    pub async fn finished_before(&self, cutoff: &str) -> Result<Vec<Uuid>> {
        let ids = read!(self, c => {
            let rows = sqlx::query(
                "SELECT id FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') \
                 AND completed_at < $1 ORDER BY seq",
            )
            .bind(cutoff)
            .fetch_all(&mut *c)
            .await?;
            rows.iter().map(|row| row.text(0)).collect::<Result<Vec<_>, _>>()?
        });
        ids.iter()
            .map(|id| Uuid::parse_str(id).map_err(|_| StoreError::Corrupt("id".into())))
            .collect()
    }

    /// How many jobs are queued (an index range, not a scan).
    pub async fn queued_jobs(&self) -> Result<u64> {
        let count = read!(self, c => sqlx::query("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
            .fetch_one(&mut *c)
            .await?
            .int(0)?);
        Ok(count.max(0) as u64)
    }

    /// One job.
    pub async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        let mut pooled = self.read.acquire().await?;
        job_by_id(&mut pooled.conn(), id).await
    }

    /// Every job in `state`, oldest first.
    pub async fn jobs_in_state(&self, state: JobState) -> Result<Vec<Job>> {
        read!(self, c => {
            let rows = sqlx::query(select_jobs!("WHERE state = $1 ORDER BY seq"))
                .bind(state.as_str())
                .fetch_all(&mut *c)
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    /// Jobs a crash left `running`, oldest first, with the owner whose
    /// lease lapsed. On SQLite, where one server owns the database: every
    /// running job at start-up, and none later. On PostgreSQL: the jobs of
    /// instances whose lease lapsed, and at start-up this instance's own
    /// too (a restart under the same `INSTANCE_ID`).
    pub async fn interrupted_jobs(&self, at_start: bool) -> Result<Vec<(Job, Option<String>)>> {
        Ok(match self.backend {
            super::Backend::Sqlite if at_start => self
                .jobs_in_state(JobState::Running)
                .await?
                .into_iter()
                .map(|job| (job, None))
                .collect(),
            super::Backend::Sqlite => Vec::new(),
            super::Backend::Postgres => self
                .orphaned_jobs(super::LEASE.as_secs_f64(), at_start)
                .await?
                .into_iter()
                .map(|(job, owner)| (job, Some(owner)))
                .collect(),
        })
    }

    /// Running jobs whose owner's lease has lapsed (no heartbeat for
    /// `lease_secs`), with that owner, oldest first; with `own`, this
    /// instance's running jobs too (at start-up, when a restarted instance
    /// cannot be running any). Only PostgreSQL leases jobs; on SQLite this
    /// is empty.
    async fn orphaned_jobs(&self, lease_secs: f64, own: bool) -> Result<Vec<(Job, String)>> {
        let mut pooled = self.read.acquire().await?;
        let mut conn = pooled.conn();
        let super::db::Conn::Postgres(c) = &mut conn else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT id, owner FROM jobs WHERE state = 'running' AND owner IS NOT NULL \
             AND (owner NOT IN (SELECT id FROM instances \
             WHERE heartbeat_at > now() - make_interval(secs => $1)) OR ($2 AND owner = $3)) \
             ORDER BY seq",
        )
        .bind(lease_secs)
        .bind(own)
        .bind(&*self.instance)
        .fetch_all(&mut **c)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let id =
                Uuid::parse_str(&row.text(0)?).map_err(|_| StoreError::Corrupt("id".into()))?;
            if let Some(job) = job_by_id(&mut conn, id).await? {
                found.push((job, row.text(1)?));
            }
        }
        Ok(found)
    }

    /// The job and the id of the last event its row reflects, read in one
    /// snapshot. For a finished job the terminal event is not counted, so a
    /// stream that resumes from this id still receives it.
    pub async fn snapshot(&self, id: Uuid) -> Result<Option<(Job, i64)>> {
        let mut pooled = self.read.acquire().await?;
        let (job, ids) = match &mut pooled.conn() {
            super::db::Conn::Sqlite(c) => {
                let mut tx = c.begin().await?;
                let read = snapshot_rows(&mut super::db::Conn::Sqlite(&mut tx), id).await?;
                tx.commit().await?;
                read
            }
            super::db::Conn::Postgres(c) => {
                let mut tx = c
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let read = snapshot_rows(&mut super::db::Conn::Postgres(&mut tx), id).await?;
                tx.commit().await?;
                read
            }
        };
        let Some(job) = job else { return Ok(None) };
        let last = if job.state.is_terminal() {
            ids.get(1).copied().unwrap_or(0)
        } else {
            ids.first().copied().unwrap_or(0)
        };
        Ok(Some((job, last)))
    }

    /// Up to `limit` events of a job after `after`, oldest first. `None` when
    /// there is no such job.
    pub async fn events_after(
        &self,
        job: Uuid,
        after: i64,
        limit: usize,
        filter: Filter<'_>,
    ) -> Result<Option<Vec<Arc<Event>>>> {
        if let Lookup::Hit(events) = self.cache.read(job, after, limit, filter) {
            return Ok(Some(events));
        }
        let load = self.cache.begin_load(job);
        let mut pooled = self.read.acquire().await?;
        let mut conn = pooled.conn();
        if job_by_id(&mut conn, job).await?.is_none() {
            // No such job: dropping the load gives the slot up.
            return Ok(None);
        }
        let events = rows::events_of_job(&mut conn, job, 0).await?;
        self.cache.finish_load(load, events);
        match self.cache.read(job, after, limit, filter) {
            Lookup::Hit(events) => Ok(Some(events)),
            // Evicted between load and read: a cache smaller than one log.
            Lookup::Miss => {
                let events = rows::events_of_job(&mut conn, job, after).await?;
                Ok(Some(
                    events
                        .into_iter()
                        .filter(|e| filter.accepts(e))
                        .take(limit)
                        .collect(),
                ))
            }
        }
    }

    /// How many jobs are in each state; states without jobs are left out.
    /// One pass over the state index.
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        let counts = read!(self, c => {
            let rows = sqlx::query("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                .fetch_all(&mut *c)
                .await?;
            rows.iter()
                .map(|row| Ok((row.text(0)?, row.int(1)?)))
                .collect::<Result<Vec<_>>>()?
        });
        counts
            .into_iter()
            .map(|(state, count)| {
                let state = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(state))?;
                Ok((state, count.max(0) as u64))
            })
            .collect()
    }

    /// The id of the newest event of any job (0 for an empty log).
    pub async fn last_event_id(&self) -> Result<i64> {
        read!(self, c => Ok(sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&mut *c)
            .await?
            .int(0)?))
    }

    /// The newest job that is running, else the newest queued one.
    pub async fn newest_active(&self) -> Result<Option<Job>> {
        read!(self, c => {
            let row = sqlx::query(select_jobs!(
                "WHERE state IN ('running', 'queued') \
                 ORDER BY state = 'running' DESC, seq DESC LIMIT 1"
            ))
            .fetch_optional(&mut *c)
            .await?;
            row.as_ref().map(job_from_row).transpose()
        })
    }

    /// The newest job with this generation id.
    pub async fn newest_by_generation(&self, generation_id: &str) -> Result<Option<Job>> {
        read!(self, c => {
            let row = sqlx::query(select_jobs!(
                "WHERE generation_id = $1 ORDER BY seq DESC LIMIT 1"
            ))
            .bind(generation_id)
            .fetch_optional(&mut *c)
            .await?;
            row.as_ref().map(job_from_row).transpose()
        })
    }
}

/// A job and the ids of its two newest events, newest first.
async fn snapshot_rows(
    conn: &mut super::db::Conn<'_>,
    id: Uuid,
) -> Result<(Option<Job>, Vec<i64>)> {
    let Some(job) = job_by_id(conn, id).await? else {
        return Ok((None, Vec::new()));
    };
    let ids = both!(conn, c => {
        let rows = sqlx::query("SELECT id FROM events WHERE job_id = $1 ORDER BY id DESC LIMIT 2")
            .bind(id.to_string())
            .fetch_all(&mut *c)
            .await?;
        rows.iter().map(|r| r.int(0)).collect::<Result<Vec<_>, _>>()?
    });
    Ok((Some(job), ids))
}

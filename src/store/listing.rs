//! Pages of the job list, newest first, of every job or of some states.

use sqlx::Connection;

use super::db::both;
use super::rows::{Columns, job_from_row, select_jobs};
use super::{JobPage, Result, Store};
use crate::model::JobState;

impl Store {
    /// A page of jobs, newest first; only those in `states` unless it is
    /// empty.
    pub async fn list_jobs(&self, offset: u64, limit: u64, states: &[JobState]) -> Result<JobPage> {
        // Five places, one per state, so that the SQL is fixed; empty
        // places match no state.
        let mut wanted: [&str; 5] = [""; 5];
        for (place, state) in wanted.iter_mut().zip(states) {
            *place = state.as_str();
        }
        let every = states.is_empty();
        let mut pooled = self.read.acquire().await?;
        let (jobs, total) = both!(&mut pooled.conn(), c => {
            let mut tx = c.begin().await?;
            let mut counted =
                sqlx::query("SELECT COUNT(*) FROM jobs WHERE ($1 OR state IN ($2, $3, $4, $5, $6))")
                    .bind(every);
            for state in wanted {
                counted = counted.bind(state);
            }
            let total = counted.fetch_one(&mut *tx).await?.int(0)?;
            let mut paged = sqlx::query(select_jobs!(
                "WHERE ($1 OR state IN ($2, $3, $4, $5, $6)) ORDER BY seq DESC LIMIT $7 OFFSET $8"
            ))
            .bind(every);
            for state in wanted {
                paged = paged.bind(state);
            }
            let rows = paged
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            let jobs: Vec<_> = rows.iter().map(job_from_row).collect::<Result<_>>()?;
            (jobs, total)
        });
        Ok(JobPage {
            jobs,
            total: total.max(0) as u64,
        })
    }
}

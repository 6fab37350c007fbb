//! Plain event appends of one batch, inserted with multi-row INSERTs.
//!
//! The hot path of the event log is a stage appending a message with no
//! change to its job. The writer collects those rows while it works through
//! a batch and inserts them a few dozen at a time. Rows are flushed before
//! any other operation of the batch, so ids still follow request order.

use std::sync::OnceLock;

use serde_json::Value;
use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

use super::Result;
use super::db::Conn;
use super::jobs::Now;
use crate::model::{Event, EventKind, NewEvent};

/// Rows per INSERT statement. Batches are split into these sizes so that a
/// handful of prepared statements serve every batch.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// `INSERT INTO events ... VALUES (...)` for `rows` rows, built once.
fn insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=CHUNKS[0])
            .map(|n| {
                let mut sql = String::from(
                    "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) VALUES ",
                );
                for i in 0..n {
                    sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?)" });
                }
                sql
            })
            .collect()
    });
    &all[rows]
}

/// One event waiting for its INSERT, with its text columns prepared.
struct Row {
    /// Which request of the batch it belongs to.
    slot: usize,
    job: Uuid,
    job_text: uuid::fmt::Hyphenated,
    payload: Option<String>,
    event: NewEvent,
}

/// Plain appends collected for one multi-row INSERT.
#[derive(Default)]
pub struct Pending {
    rows: Vec<Row>,
}

impl Pending {
    /// Queues `event` of `job` for the request at `slot`.
    pub fn push(&mut self, slot: usize, job: Uuid, event: NewEvent) {
        self.rows.push(Row {
            slot,
            job,
            job_text: job.hyphenated(),
            payload: event.payload.as_ref().map(Value::to_string),
            event,
        });
    }

    /// Inserts every queued row and hands each committed event to
    /// `committed` with the slot of its request.
    pub async fn flush(
        &mut self,
        conn: &mut Conn<'_>,
        now: &Now,
        committed: impl FnMut(usize, Event),
    ) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        match conn {
            Conn::Sqlite(c) => insert_sqlite(c, rows, now, committed).await,
            Conn::Postgres(c) => insert_postgres(c, rows, now, committed).await,
        }
    }
}

async fn insert_sqlite(
    conn: &mut SqliteConnection,
    rows: Vec<Row>,
    now: &Now,
    mut committed: impl FnMut(usize, Event),
) -> Result<()> {
    // (rows in the statement, id of its first row)
    let mut statements = Vec::new();
    let mut done = 0;
    while done < rows.len() {
        let left = rows.len() - done;
        let size = CHUNKS.into_iter().find(|size| *size <= left).unwrap_or(1);
        let chunk = &rows[done..done + size];
        let mut texts = [0u8; 36 * CHUNKS[0]];
        let ids: Vec<&str> = chunk
            .iter()
            .zip(texts.chunks_mut(36))
            .map(|(row, buf)| &*row.job_text.encode_lower(buf))
            .collect();
        let mut query = sqlx::query(insert_sql(size));
        for (row, id) in chunk.iter().zip(&ids) {
            let e = &row.event;
            query = query
                .bind(*id)
                .bind(e.ty.as_str())
                .bind(e.level.as_str())
                .bind(e.message.as_str())
                .bind(e.stage.as_deref())
                .bind(e.kind.map(EventKind::as_str))
                .bind(row.payload.as_deref())
                .bind(now.ts);
        }
        // One writer in one statement: the ids are consecutive.
        let last = query.execute(&mut *conn).await?.last_insert_rowid();
        statements.push((size, last - size as i64 + 1));
        done += size;
    }
    let mut rows = rows.into_iter();
    for (size, first) in statements {
        for (id, row) in (first..).zip(rows.by_ref().take(size)) {
            committed(row.slot, Event::committed(id, row.job, row.event, now.ts));
        }
    }
    Ok(())
}

/// Draws a block of consecutive ids from the event sequence and inserts
/// every row in one statement, in request order. The writer holds the
/// event-order lock, under which no one else draws ids, so the block is
/// the batch's alone and rises with commit order.
async fn insert_postgres(
    conn: &mut PgConnection,
    rows: Vec<Row>,
    now: &Now,
    mut committed: impl FnMut(usize, Event),
) -> Result<()> {
    let jobs: Vec<String> = rows.iter().map(|r| r.job_text.to_string()).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH block AS MATERIALIZED (SELECT setval('events_id_seq', \
           nextval('events_id_seq') + $9 - 1) - $9 + 1 AS first) \
         INSERT INTO events (id, job_id, type, level, message, stage, kind, payload, timestamp) \
         SELECT block.first + u.ord - 1, u.job_id, u.type, u.level, u.message, u.stage, u.kind, \
           u.payload, $8 \
         FROM block, unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::text[]) WITH ORDINALITY \
           AS u(job_id, type, level, message, stage, kind, payload, ord) \
         RETURNING id",
    )
    .bind(&jobs)
    .bind(rows.iter().map(|r| r.event.ty.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.event.level.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.event.message.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.event.stage.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.event.kind.map(EventKind::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.payload.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(now.ts)
    .bind(rows.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    let first = ids.iter().copied().min().unwrap_or_default();
    for (id, row) in (first..).zip(rows) {
        committed(row.slot, Event::committed(id, row.job, row.event, now.ts));
    }
    Ok(())
}

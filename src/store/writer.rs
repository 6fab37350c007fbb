//! The single writer: every change to jobs and events goes through here.
//!
//! One task owns the write connection. It takes whatever requests are
//! waiting, applies them in one transaction, commits once, and only then
//! puts the new events in the cache and on the hub, in id order, and
//! answers each request on its own typed channel. Concurrent appends
//! therefore share a commit (group commit), a job change and the event
//! that reports it are atomic, and no one can see an event that a crash
//! could take back.
//!
//! On SQLite the transaction is `BEGIN IMMEDIATE`. On PostgreSQL, where
//! several instances write, it first takes the event-order lock (a
//! transaction-level advisory lock) that every instance's writer takes, so
//! event ids are drawn and committed in one order: a reader that has seen
//! id `n` has seen every committed id below it. Before committing it
//! sends one `NOTIFY` per job it wrote to, which PostgreSQL delivers at
//! commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::sync::mpsc;

use super::apply::{Op, Staged, apply_ops};
use super::cache::LogCache;
use super::db::Conn;
use super::figures::CommitFigures;
use super::sequencer::{DELETED, NOTIFY_CHANNEL, Sequencer};
use super::states::States;
use super::{Result, StoreError};
use crate::hub::{Hub, JobCreated};
use crate::model::Event;

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 1024;

/// Where committed events go, in this order.
pub(super) struct Sinks {
    pub cache: Arc<LogCache>,
    pub hub: Arc<Hub>,
    /// On PostgreSQL: merges this writer's events with other instances'.
    pub sequencer: Option<Arc<Sequencer>>,
}

/// The writer's connection, and how to open a new one.
pub(super) enum Link {
    Sqlite {
        options: SqliteConnectOptions,
        conn: Option<SqliteConnection>,
    },
    Postgres {
        options: PgConnectOptions,
        conn: Option<PgConnection>,
        /// The event-order lock of this schema.
        lock: i64,
    },
}

/// The open connection, or a fresh one from `options`.
async fn ready<'a, C: Connection>(
    slot: &'a mut Option<C>,
    options: &C::Options,
) -> Option<&'a mut C> {
    if slot.is_none() {
        match C::connect_with(options).await {
            Ok(open) => {
                tracing::info!("the database is writable again");
                *slot = Some(open);
            }
            Err(err) => {
                tracing::warn!(error = %err, "the database cannot be opened for writing");
                return None;
            }
        }
    }
    slot.as_mut()
}

/// Runs the writer until every sender is gone. Jobs it claims are owned
/// by `instance`.
///
/// A batch that fails (a full disk, an I/O error) is rolled back and every
/// request in it is answered with [`StoreError::CommitFailed`]. The
/// connection is then dropped, since its transaction state cannot be
/// trusted, and the next batch opens a fresh one; while that fails too,
/// batches fail at once instead of waiting. So a failure lasts only as
/// long as its cause.
pub(super) async fn run(
    mut link: Link,
    mut rx: mpsc::Receiver<Op>,
    sinks: Sinks,
    instance: String,
    mut states: States,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let figures = CommitFigures::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (requests, clock) = (batch.len(), Instant::now());
        let mut staged = Vec::with_capacity(batch.len());
        let applied = match &mut link {
            Link::Sqlite { options, conn } => match ready(conn, options).await {
                Some(open) => {
                    let applied =
                        apply_sqlite(open, &mut batch, &mut states, &instance, &mut staged).await;
                    if applied.is_err() {
                        // Dropped, not closed: closing would try to finish
                        // the failed transaction on a connection that may
                        // not answer.
                        conn.take();
                    }
                    Some(applied)
                }
                None => None,
            },
            Link::Postgres {
                options,
                conn,
                lock,
            } => match ready(conn, options).await {
                Some(open) => {
                    let order = EventOrder {
                        lock: *lock,
                        instance: &instance,
                    };
                    let applied =
                        apply_postgres(open, &mut batch, &mut states, order, &mut staged).await;
                    if applied.is_err() {
                        conn.take();
                    }
                    Some(applied)
                }
                None => None,
            },
        };
        match applied {
            Some(Ok(())) => {
                figures.record(requests, count(&staged), clock.elapsed());
                publish(&sinks, staged).await;
            }
            failed => {
                if let Some(Err(err)) = failed {
                    tracing::error!(error = %err, "event log commit failed");
                }
                // Nothing of this batch is durable: every request fails,
                // and the writer forgets the states it learnt on the way.
                states.clear();
                for done in staged {
                    done.answer.fail(StoreError::CommitFailed);
                }
                for op in batch.drain(..) {
                    op.fail(StoreError::CommitFailed);
                }
            }
        }
    }
}

fn count(staged: &[Staged]) -> usize {
    staged.iter().map(|s| s.events.len()).sum()
}

/// Applies the batch in one `BEGIN IMMEDIATE` transaction. A lone plain
/// append is a single INSERT and needs no explicit transaction.
async fn apply_sqlite(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Op>,
    states: &mut States,
    instance: &str,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    let lone_plain = batch.len() == 1 && matches!(&batch[0], Op::Append { patch: None, .. });
    if lone_plain {
        return apply_ops(&mut Conn::Sqlite(conn), batch, states, instance, staged).await;
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    apply_ops(&mut Conn::Sqlite(&mut tx), batch, states, instance, staged).await?;
    tx.commit().await?;
    Ok(())
}

/// The event-order lock of the schema, and the instance writing.
struct EventOrder<'a> {
    lock: i64,
    instance: &'a str,
}

/// Applies the batch in one transaction under the event-order lock, and
/// tells the other instances which jobs it wrote to.
async fn apply_postgres(
    conn: &mut PgConnection,
    batch: &mut Vec<Op>,
    states: &mut States,
    order: EventOrder<'_>,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    let EventOrder { lock, instance } = order;
    // Other instances change jobs too: nothing learnt before holds.
    states.clear();
    // One round trip for both; the key is a number made here.
    let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({lock})");
    let mut tx = conn.begin_with(sqlx::AssertSqlSafe(begin)).await?;
    // The jobs of plain appends, learnt in one query, not one each.
    let mut appended: Vec<uuid::Uuid> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Append {
                job, patch: None, ..
            } => Some(*job),
            _ => None,
        })
        .collect();
    appended.sort_unstable();
    appended.dedup();
    if !appended.is_empty() {
        states.learn(&mut tx, &appended).await?;
    }
    apply_ops(
        &mut Conn::Postgres(&mut tx),
        batch,
        states,
        instance,
        staged,
    )
    .await?;
    let mut newest: HashMap<uuid::Uuid, i64> = HashMap::new();
    for event in staged.iter().flat_map(|s| &s.events) {
        newest.insert(event.job_id, event.id);
    }
    let mut payloads: Vec<String> = newest
        .iter()
        .map(|(job, id)| format!("{job} {id}"))
        .collect();
    let deleted = staged.iter().filter_map(|s| s.deleted);
    payloads.extend(deleted.map(|job| format!("{job} {DELETED}")));
    if !payloads.is_empty() {
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(NOTIFY_CHANNEL)
            .bind(payloads)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts a committed batch's events in the cache and on the hub, in id
/// order, then answers each request.
async fn publish(sinks: &Sinks, staged: Vec<Staged>) {
    let mut parts = Vec::with_capacity(staged.len());
    let mut answers = Vec::with_capacity(staged.len());
    for Staged {
        answer,
        events,
        created,
        deleted,
    } in staged
    {
        if let Some(job) = deleted {
            sinks.cache.forget(job);
        }
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        answers.push((answer, events.clone()));
        parts.push((events, created));
    }
    match &sinks.sequencer {
        Some(sequencer) => sequencer.local(&parts).await,
        None => deliver(&sinks.cache, &sinks.hub, &parts, 0),
    }
    for (answer, events) in answers {
        answer.send(events);
    }
}

/// Caches and publishes events committed by this process: a new job's
/// log starts in the cache with its first events. Events up to id
/// `published` are on the hub already (the sequencer read them back from
/// the database first) and are not sent again.
pub(super) fn deliver(
    cache: &LogCache,
    hub: &Hub,
    parts: &[(Vec<Arc<Event>>, Option<JobCreated>)],
    published: i64,
) {
    let mut all = Vec::new();
    for (events, created) in parts {
        match created {
            Some(created) => cache.create(created.id, events.clone()),
            None => cache.push(events),
        }
        all.extend(events.iter().filter(|e| e.id > published).cloned());
    }
    hub.publish(&all);
    for (events, created) in parts {
        if let Some(created) = created
            && events.first().is_some_and(|e| e.id > published)
        {
            hub.announce(created.clone());
        }
    }
}

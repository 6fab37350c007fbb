//! The single writer: every change to jobs and events goes through here.
//!
//! One task owns the write connection. It takes whatever requests are
//! waiting, applies them in one `BEGIN IMMEDIATE` transaction, commits
//! once, and only then puts the new events in the cache and on the hub, in
//! id order, and answers each request on its own typed channel.
//! Concurrent appends therefore share a commit (group commit), a job change
//! and the event that reports it are atomic, and no one can see an event
//! that a crash could take back.

use std::sync::Arc;
use std::time::Instant;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::cache::LogCache;
use super::figures::CommitFigures;
use super::inserts::Pending;
use super::jobs::{self, CancelOutcome, Deleted, JobPatch, NewJob, Now};
use super::states::States;
use super::{Result, StoreError};
use crate::hub::{Hub, JobCreated};
use crate::model::{Event, Job, JobState, NewEvent};

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 1024;

/// Where a request's answer goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A request to the writer, with the channel its answer goes back on.
pub(super) enum Op {
    /// Insert a queued job.
    Create(Box<NewJob>, Reply<Job>),
    /// Claim the oldest queued job.
    Claim(Reply<Option<Job>>),
    /// Append events, with a change to their job or without one (the hot
    /// path: plain appends share multi-row INSERTs).
    Append {
        job: Uuid,
        events: Vec<NewEvent>,
        patch: Option<Box<JobPatch>>,
        reply: Reply<Vec<Arc<Event>>>,
    },
    /// Record a cancel request.
    Cancel(Uuid, Reply<Option<CancelOutcome>>),
    /// Delete a finished job with its events.
    Delete(Uuid, Reply<Deleted>),
    /// SQL of another module's tables, run in a savepoint of the batch: a
    /// failure rolls back only this op.
    Run(Task, Reply<()>),
}

/// Statements for [`Op::Run`].
pub(super) type Task = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> futures_util::future::BoxFuture<'c, Result<()>>
        + Send,
>;

impl Op {
    fn fail(self, err: StoreError) {
        // A send fails only when the caller stopped waiting.
        match self {
            Op::Create(_, reply) => drop(reply.send(Err(err))),
            Op::Claim(reply) => drop(reply.send(Err(err))),
            Op::Append { reply, .. } => drop(reply.send(Err(err))),
            Op::Cancel(_, reply) => drop(reply.send(Err(err))),
            Op::Delete(_, reply) => drop(reply.send(Err(err))),
            Op::Run(_, reply) => drop(reply.send(Err(err))),
        }
    }
}

/// An applied request's answer, sent once its transaction commits.
enum Answer {
    Job(Reply<Job>, Job),
    Claimed(Reply<Option<Job>>, Option<Job>),
    Appended(Reply<Vec<Arc<Event>>>),
    Cancel(Reply<Option<CancelOutcome>>, Option<CancelOutcome>),
    Deleted(Reply<Deleted>, Deleted),
    Ran(Reply<()>),
}

impl Answer {
    fn send(self, events: Vec<Arc<Event>>) {
        match self {
            Answer::Job(reply, job) => drop(reply.send(Ok(job))),
            Answer::Claimed(reply, job) => drop(reply.send(Ok(job))),
            Answer::Appended(reply) => drop(reply.send(Ok(events))),
            Answer::Cancel(reply, outcome) => drop(reply.send(Ok(outcome))),
            Answer::Deleted(reply, outcome) => drop(reply.send(Ok(outcome))),
            Answer::Ran(reply) => drop(reply.send(Ok(()))),
        }
    }

    fn fail(self, err: StoreError) {
        match self {
            Answer::Job(reply, _) => drop(reply.send(Err(err))),
            Answer::Claimed(reply, _) => drop(reply.send(Err(err))),
            Answer::Appended(reply) => drop(reply.send(Err(err))),
            Answer::Cancel(reply, _) => drop(reply.send(Err(err))),
            Answer::Deleted(reply, _) => drop(reply.send(Err(err))),
            Answer::Ran(reply) => drop(reply.send(Err(err))),
        }
    }
}

/// A request applied inside the open transaction.
struct Staged {
    answer: Answer,
    events: Vec<Event>,
    created: Option<JobCreated>,
    /// A job deleted by this request, whose cached log goes.
    deleted: Option<Uuid>,
}

/// Where committed events go, in this order.
pub(super) struct Sinks {
    pub cache: Arc<LogCache>,
    pub hub: Arc<Hub>,
}

/// Runs the writer until every sender is gone.
///
/// A batch that fails (a full disk, an I/O error) is rolled back and every
/// request in it is answered with [`StoreError::CommitFailed`]. The
/// connection is then dropped, since its transaction state cannot be
/// trusted, and the next batch opens a fresh one from `options`; while
/// that fails too, batches fail at once instead of waiting. So a failure
/// lasts only as long as its cause.
pub(super) async fn run(
    options: SqliteConnectOptions,
    conn: SqliteConnection,
    mut rx: mpsc::Receiver<Op>,
    sinks: Sinks,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut states = States::default();
    let mut conn = Some(conn);
    let figures = CommitFigures::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut open = match conn.take() {
            Some(open) => open,
            None => match SqliteConnection::connect_with(&options).await {
                Ok(open) => {
                    tracing::info!("the database is writable again");
                    open
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the database cannot be opened for writing");
                    for op in batch.drain(..) {
                        op.fail(StoreError::CommitFailed);
                    }
                    continue;
                }
            },
        };
        if commit_batch(&mut open, &mut batch, &mut states, &sinks, &figures).await {
            conn = Some(open);
        } else {
            // Dropped, not closed: closing would try to finish the failed
            // transaction on a connection that may not answer.
            drop(open);
        }
    }
    if let Some(open) = conn {
        let _ = open.close().await;
    }
}

/// Applies the batch in one transaction. A lone plain append is a single
/// INSERT and needs no explicit transaction.
async fn apply_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Op>,
    states: &mut States,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    let lone_plain = batch.len() == 1 && matches!(&batch[0], Op::Append { patch: None, .. });
    if lone_plain {
        return apply_ops(conn, batch, states, staged).await;
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    apply_ops(&mut tx, batch, states, staged).await?;
    tx.commit().await?;
    Ok(())
}

async fn apply_ops(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Op>,
    states: &mut States,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    let mut pending = Pending::default();
    let now = Now::current();
    for op in batch.drain(..) {
        if let Op::Append {
            job,
            events,
            patch: None,
            reply,
        } = op
        {
            match states.get(conn, job).await {
                Ok(state) if state.is_terminal() => {
                    let _ = reply.send(Err(StoreError::Finished));
                }
                Ok(_) => {
                    for event in events {
                        pending.push(staged.len(), job, event);
                    }
                    staged.push(Staged {
                        answer: Answer::Appended(reply),
                        events: Vec::new(),
                        created: None,
                        deleted: None,
                    });
                }
                Err(StoreError::NotFound) => {
                    let _ = reply.send(Err(StoreError::NotFound));
                }
                Err(err) => return Err(err),
            }
            continue;
        }
        pending.flush(conn, &now, placer(staged)).await?;
        if let Some(done) = apply(conn, op, states, &now).await? {
            staged.push(done);
        }
    }
    pending.flush(conn, &now, placer(staged)).await
}

/// Puts each event of a multi-row INSERT with the request it belongs to.
fn placer(staged: &mut [Staged]) -> impl FnMut(usize, Event) + '_ {
    |slot, event| staged[slot].events.push(event)
}

/// Applies one op. An error aborts the batch. An append to a job that is
/// gone or finished writes nothing and is refused on its own reply (`None`).
async fn apply(
    conn: &mut SqliteConnection,
    op: Op,
    states: &mut States,
    now: &Now,
) -> Result<Option<Staged>> {
    let mut events = Vec::new();
    let mut deleted = None;
    let (answer, created) = match op {
        Op::Create(job, reply) => {
            let id = job.id;
            let generation_id = job.generation_id.clone();
            let job = jobs::create(conn, *job, now, &mut events).await?;
            if let Some(hook) = &job.request.webhook {
                super::hooks::insert_job_endpoint(conn, &job, hook, now).await?;
            }
            states.set(id, JobState::Queued);
            (
                Answer::Job(reply, job),
                Some(JobCreated { id, generation_id }),
            )
        }
        Op::Claim(reply) => {
            let job = jobs::claim(conn, now, &mut events).await?;
            if let Some(job) = &job {
                states.set(job.id, job.state);
            }
            (Answer::Claimed(reply, job), None)
        }
        Op::Append {
            job,
            events: new,
            patch,
            reply,
        } => {
            let patch = patch.unwrap_or_default();
            match jobs::update(conn, job, &patch, now).await {
                Err(err @ (StoreError::NotFound | StoreError::Finished)) => {
                    let _ = reply.send(Err(err));
                    return Ok(None);
                }
                result => result?,
            }
            for event in new {
                events.push(jobs::insert_event(conn, job, event, now).await?);
            }
            if let Some(state) = patch.state {
                states.set(job, state);
            }
            (Answer::Appended(reply), None)
        }
        Op::Cancel(job, reply) => {
            let outcome = jobs::cancel(conn, job, now, &mut events).await?;
            if outcome == Some(CancelOutcome::CancelledQueued) {
                states.set(job, JobState::Cancelled);
            }
            (Answer::Cancel(reply, outcome), None)
        }
        Op::Delete(job, reply) => match jobs::delete(conn, job).await {
            Err(StoreError::NotFound) => {
                let _ = reply.send(Err(StoreError::NotFound));
                return Ok(None);
            }
            Err(err) => return Err(err),
            Ok(outcome) => {
                if outcome == Deleted::Gone {
                    states.0.remove(&job);
                    deleted = Some(job);
                }
                (Answer::Deleted(reply, outcome), None)
            }
        },
        Op::Run(task, reply) => {
            let mut savepoint = conn.begin().await?;
            if let Err(err) = task(&mut savepoint).await {
                savepoint.rollback().await?;
                let _ = reply.send(Err(err));
                return Ok(None);
            }
            savepoint.commit().await?;
            (Answer::Ran(reply), None)
        }
    };
    Ok(Some(Staged {
        answer,
        events,
        created,
        deleted,
    }))
}

/// Applies, commits and publishes one batch; false when it failed.
async fn commit_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Op>,
    states: &mut States,
    sinks: &Sinks,
    figures: &CommitFigures,
) -> bool {
    let (requests, clock) = (batch.len(), Instant::now());
    let mut staged = Vec::with_capacity(batch.len());
    if let Err(err) = apply_batch(conn, batch, states, &mut staged).await {
        tracing::error!(error = %err, "event log commit failed");
        // Nothing of this batch is durable (dropping the connection rolls
        // it back): every request fails, and the writer forgets the states
        // it learnt on the way.
        states.0.clear();
        for done in staged {
            done.answer.fail(StoreError::CommitFailed);
        }
        for op in batch.drain(..) {
            op.fail(StoreError::CommitFailed);
        }
        return false;
    }

    // Committed: cache, then publish in id order, then answer.
    let took = clock.elapsed();
    let mut all = Vec::new();
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
        match &created {
            // A new job's log starts in the cache with its first events.
            Some(created) => sinks.cache.create(created.id, events.clone()),
            None => sinks.cache.push(&events),
        }
        all.extend(events.iter().cloned());
        answers.push((answer, events, created));
    }
    figures.record(requests, all.len(), took);
    sinks.hub.publish(&all);
    for (answer, events, created) in answers {
        if let Some(created) = created {
            sinks.hub.announce(created);
        }
        answer.send(events);
    }
    true
}

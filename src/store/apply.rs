//! The requests the writer takes, and how each is applied inside the
//! batch's transaction: on either database, through [`Conn`].

use std::sync::Arc;

use sqlx::Connection;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::db::Conn;
use super::inserts::Pending;
use super::jobs::{self, CancelOutcome, Deleted, JobPatch, NewJob, Now};
use super::states::States;
use super::{Result, StoreError};
use crate::hub::JobCreated;
use crate::model::{Event, Job, JobState, NewEvent};

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
pub(super) type Task =
    Box<dyn for<'c> FnOnce(Conn<'c>) -> futures_util::future::BoxFuture<'c, Result<()>> + Send>;

impl Op {
    pub(super) fn fail(self, err: StoreError) {
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
pub(super) enum Answer {
    Job(Reply<Job>, Job),
    Claimed(Reply<Option<Job>>, Option<Job>),
    Appended(Reply<Vec<Arc<Event>>>),
    Cancel(Reply<Option<CancelOutcome>>, Option<CancelOutcome>),
    Deleted(Reply<Deleted>, Deleted),
    Ran(Reply<()>),
}

impl Answer {
    pub(super) fn send(self, events: Vec<Arc<Event>>) {
        match self {
            Answer::Job(reply, job) => drop(reply.send(Ok(job))),
            Answer::Claimed(reply, job) => drop(reply.send(Ok(job))),
            Answer::Appended(reply) => drop(reply.send(Ok(events))),
            Answer::Cancel(reply, outcome) => drop(reply.send(Ok(outcome))),
            Answer::Deleted(reply, outcome) => drop(reply.send(Ok(outcome))),
            Answer::Ran(reply) => drop(reply.send(Ok(()))),
        }
    }

    pub(super) fn fail(self, err: StoreError) {
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
pub(super) struct Staged {
    pub answer: Answer,
    pub events: Vec<Event>,
    pub created: Option<JobCreated>,
    /// A job deleted by this request, whose cached log goes.
    pub deleted: Option<Uuid>,
}

/// Applies every request of `batch`, in order, inside the open
/// transaction. `instance` owns the jobs this batch claims.
pub(super) async fn apply_ops(
    conn: &mut Conn<'_>,
    batch: &mut Vec<Op>,
    states: &mut States,
    instance: &str,
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
            match states.open(conn, job).await {
                Ok(false) => {
                    let _ = reply.send(Err(StoreError::Finished));
                }
                Ok(true) => {
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
        if let Some(done) = apply(conn, op, states, instance, &now).await? {
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
    conn: &mut Conn<'_>,
    op: Op,
    states: &mut States,
    instance: &str,
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
            let job = jobs::claim(conn, instance, now, &mut events).await?;
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
            let mut patch = patch.unwrap_or_default();
            // Where jobs are leased, only the owner writes to a job.
            if patch.fence.is_none() {
                patch.fence = states.owner().map(str::to_string);
            }
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
                    states.forget(job);
                    deleted = Some(job);
                }
                (Answer::Deleted(reply, outcome), None)
            }
        },
        Op::Run(task, reply) => {
            let ran = match conn {
                Conn::Sqlite(c) => {
                    let mut savepoint = c.begin().await?;
                    let ran = task(Conn::Sqlite(&mut savepoint)).await;
                    settle(savepoint, ran).await?
                }
                Conn::Postgres(c) => {
                    let mut savepoint = c.begin().await?;
                    let ran = task(Conn::Postgres(&mut savepoint)).await;
                    settle(savepoint, ran).await?
                }
            };
            if let Err(err) = ran {
                let _ = reply.send(Err(err));
                return Ok(None);
            }
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

/// Commits a task's savepoint, or rolls it back when the task failed, and
/// hands the task's result on.
async fn settle<DB: sqlx::Database>(
    savepoint: sqlx::Transaction<'_, DB>,
    ran: Result<()>,
) -> Result<Result<()>> {
    match ran {
        Ok(()) => savepoint.commit().await?,
        Err(_) => savepoint.rollback().await?,
    }
    Ok(ran)
}

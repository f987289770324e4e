//! The ledger's writer: one task that stores every write of the answer path
//! — each attempt's row (with its rollups and its month's spend), each
//! question with its pending answer, each budget hold, and how each answer
//! ended — committing whatever has queued up in one transaction (group
//! commit). Under load many answers share one commit; on SQLite the answer
//! path is a single writer, so it never sleeps in the busy handler.
//!
//! Producers wait when the queue is full (back-pressure, never a dropped
//! row). A group that fails for a passing reason (connection lost, pool
//! exhausted, a deadlock between app servers) is tried again whole, with
//! growing waits, until it lands; every part of it is idempotent, so a
//! commit that happened but was not acknowledged adds nothing twice. A group
//! that fails for any other reason is split: each question, hold and ending
//! is stored on its own, and only the part at fault reports the error.

use crate::server::db::budgets::{self, HoldRow, MonthKey, MonthRow};
use crate::server::db::conversations::{self, AnswerUpdate, Exchange};
use crate::server::db::now_ms;
use crate::server::error::{Error, Result};
use crate::server::ledger::rows::UsageRow;
use crate::server::ledger::store_rows;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Commands the queue holds before producers wait.
pub const QUEUE_CAPACITY: usize = 8192;
/// Commands committed together at most.
const GROUP_COMMANDS: usize = 512;
/// First wait before a failed group is tried again; doubled up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
/// Longest wait between two tries of a failed group.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How an answer (or any other spending call) ended, as the writer stores it.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// The answer message and its ending (chat answers).
    pub answer: Option<(String, AnswerUpdate)>,
    /// The budget hold to release, if the answer took one.
    pub hold_id: Option<String>,
    /// The project's month whose figures the caller wants back (alerts).
    pub month: Option<MonthKey>,
}

enum Command {
    Row(Box<UsageRow>),
    Part(Part),
    Flush(oneshot::Sender<()>),
}

/// A write whose producer waits for its outcome.
struct Part {
    work: Work,
    done: oneshot::Sender<Result<Outcome>>,
}

/// What a part writes.
enum Work {
    Exchange(Box<Exchange>),
    Reserve(Box<HoldRow>, i64),
    Settle(Box<Settlement>),
}

/// What a part turned out as, delivered once its group is committed.
enum Outcome {
    Stored,
    Reserved(bool),
    Settled(Option<MonthRow>),
}

/// A handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    queue: mpsc::Sender<Command>,
}

fn writer_gone() -> Error {
    Error::internal("the ledger writer has stopped")
}

impl Ledger {
    /// Starts the writer task on `pool` (the database's writer pool) with a
    /// queue of `capacity` commands.
    pub fn start(pool: AnyPool, capacity: usize) -> Ledger {
        let (queue, commands) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_loop(pool, commands));
        Ledger { queue }
    }

    /// Queues an attempt's row; waits while the queue is full. It is stored
    /// no later than any settlement queued after it.
    pub async fn record(&self, row: UsageRow) {
        if self.queue.send(Command::Row(Box::new(row))).await.is_err() {
            // NOTE: only when the runtime is shutting down and the writer is gone.
            tracing::error!("usage ledger writer stopped; a usage row was not stored");
        }
    }

    /// Stores a question with its pending answer; returns once committed.
    pub async fn store_exchange(&self, exchange: Exchange) -> Result<()> {
        self.write(Work::Exchange(Box::new(exchange)))
            .await
            .map(drop)
    }

    /// Takes `hold` if the month's spend and holds stay within `limit_nanos`;
    /// returns once committed, `false` when it did not fit.
    pub async fn reserve(&self, hold: HoldRow, limit_nanos: i64) -> Result<bool> {
        match self
            .write(Work::Reserve(Box::new(hold), limit_nanos))
            .await?
        {
            Outcome::Reserved(reserved) => Ok(reserved),
            _ => Err(Error::internal(
                "a reservation was answered as another write",
            )),
        }
    }

    /// Stores how an answer ended and releases its hold; returns once it and
    /// every row queued before it are committed, with the figures of
    /// `settlement.month` if the group changed them.
    pub async fn settle(&self, settlement: Settlement) -> Result<Option<MonthRow>> {
        match self.write(Work::Settle(Box::new(settlement))).await? {
            Outcome::Settled(month) => Ok(month),
            _ => Err(Error::internal(
                "a settlement was answered as another write",
            )),
        }
    }

    /// Waits until everything queued before this call is stored.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// Queues a part and waits for its outcome, which comes after its commit.
    async fn write(&self, work: Work) -> Result<Outcome> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Command::Part(Part { work, done }))
            .await
            .map_err(|_| writer_gone())?;
        outcome.await.map_err(|_| writer_gone())?
    }
}

async fn write_loop(pool: AnyPool, mut commands: mpsc::Receiver<Command>) {
    let mut received = Vec::with_capacity(GROUP_COMMANDS);
    while commands.recv_many(&mut received, GROUP_COMMANDS).await > 0 {
        let mut group = Group::default();
        for command in received.drain(..) {
            match command {
                Command::Row(row) => group.rows.push(*row),
                Command::Part(part) => group.parts.push(part),
                Command::Flush(done) => group.flushes.push(done),
            }
        }
        group.commit(&pool).await;
    }
}

/// Commands received together.
#[derive(Default)]
struct Group {
    rows: Vec<UsageRow>,
    parts: Vec<Part>,
    flushes: Vec<oneshot::Sender<()>>,
}

/// Whether a failure may pass if the same writes are tried again: the
/// connection or pool failed, or the database asked for a retry (a
/// serialization failure, a deadlock, a busy SQLite file).
fn is_passing(error: &Error) -> bool {
    let Error::Database(error) = error else {
        return false;
    };
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: serialization failure, deadlock, connection
            // exceptions (class 08), shutdown; SQLite: BUSY and LOCKED.
            matches!(code.as_ref(), "40001" | "40P01" | "57P01" | "5" | "6")
                || code.starts_with("08")
        }
        _ => false,
    }
}

/// Waits before the next try, growing.
async fn back_off(delay: &mut Duration) {
    tokio::time::sleep(*delay).await;
    *delay = (*delay * 2).min(MAX_RETRY_DELAY);
}

impl Group {
    /// Commits the group whole, tried again while it fails for a passing
    /// reason; split into its parts when it fails for another.
    async fn commit(self, pool: &AnyPool) {
        let mut retrying = false;
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            match self.write_together(pool, retrying).await {
                Ok(outcomes) => return self.deliver(outcomes),
                Err(error) if is_passing(&error) => {
                    tracing::warn!(%error, rows = self.rows.len(), parts = self.parts.len(),
                        "the ledger's group commit failed; trying again");
                    back_off(&mut delay).await;
                    retrying = true;
                }
                Err(error) => {
                    tracing::warn!(%error, "the ledger's group commit failed; storing its parts one by one");
                    return self.write_apart(pool, retrying).await;
                }
            }
        }
    }

    /// Everything in one transaction; the outcomes of the parts, in order.
    async fn write_together(&self, pool: &AnyPool, retrying: bool) -> Result<Vec<Outcome>> {
        let mut tx = pool.begin().await?;
        let mut months = store_rows(&mut tx, &self.rows).await?;
        let holds: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|part| match &part.work {
                Work::Settle(settlement) => settlement.hold_id.as_deref(),
                _ => None,
            })
            .collect();
        months.extend(budgets::release_holds(&mut tx, &holds).await?);
        let mut outcomes = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            outcomes.push(write_part(&mut tx, &part.work, &months, retrying).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The rows (until stored), then each part in a transaction of its own.
    async fn write_apart(self, pool: &AnyPool, mut retrying: bool) {
        let mut delay = FIRST_RETRY_DELAY;
        while let Err(error) = crate::server::ledger::insert_batch(pool, &self.rows).await {
            tracing::error!(%error, rows = self.rows.len(), "writing usage rows failed; retrying");
            back_off(&mut delay).await;
        }
        for part in self.parts {
            let mut delay = FIRST_RETRY_DELAY;
            let outcome = loop {
                match write_alone(pool, &part.work, retrying).await {
                    Err(error) if is_passing(&error) => {
                        back_off(&mut delay).await;
                        retrying = true;
                    }
                    outcome => break outcome,
                }
            };
            let _ = part.done.send(outcome);
        }
        for done in self.flushes {
            let _ = done.send(());
        }
    }

    fn deliver(self, outcomes: Vec<Outcome>) {
        for (part, outcome) in self.parts.into_iter().zip(outcomes) {
            // A producer that went away is not waiting.
            let _ = part.done.send(Ok(outcome));
        }
        for done in self.flushes {
            let _ = done.send(());
        }
    }
}

/// One part inside the group's transaction. `months`: the figures of the
/// months the group's rows and released holds changed.
async fn write_part(
    conn: &mut AnyConnection,
    work: &Work,
    months: &BTreeMap<MonthKey, MonthRow>,
    retrying: bool,
) -> Result<Outcome> {
    Ok(match work {
        Work::Exchange(exchange) => {
            conversations::insert_exchange(conn, exchange, retrying).await?;
            Outcome::Stored
        }
        Work::Reserve(hold, limit_nanos) => {
            Outcome::Reserved(budgets::reserve(conn, hold, *limit_nanos).await?)
        }
        Work::Settle(settlement) => {
            if let Some((message_id, update)) = &settlement.answer {
                conversations::finish_answer(conn, message_id, update, now_ms()).await?;
            }
            Outcome::Settled(
                settlement
                    .month
                    .as_ref()
                    .and_then(|key| months.get(key).copied()),
            )
        }
    })
}

/// One part in a transaction of its own (a settlement's hold released with it).
async fn write_alone(pool: &AnyPool, work: &Work, retrying: bool) -> Result<Outcome> {
    let mut tx = pool.begin().await?;
    let mut months = BTreeMap::new();
    if let Work::Settle(settlement) = work {
        if let Some(hold) = settlement.hold_id.as_deref() {
            months = budgets::release_holds(&mut tx, &[hold]).await?;
        }
    }
    let outcome = write_part(&mut tx, work, &months, retrying).await?;
    tx.commit().await?;
    Ok(outcome)
}

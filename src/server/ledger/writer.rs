//! The ledger's writer: one task, on a thread of its own, that stores every
//! write of the answer path — each attempt's row (with its rollups and its
//! month's spend), each question with its pending answer, each budget hold,
//! and how each answer ended (with its request's performance tally) —
//! committing whatever has queued up in one transaction (group commit), each
//! kind of write in a few multi-row statements, and those whose results it
//! does not read sent together in one hop ([`Batch`]). Under load many
//! answers share one commit and a handful of round trips; on SQLite the
//! answer path is a single writer, so it never sleeps in the busy handler.
//!
//! A group commit is several round trips to the database, and an answer
//! waits for one or two. The writer therefore runs on its own thread (a
//! single-threaded runtime) rather than among the request tasks: there each
//! reply woke it behind every runnable request, and at 1,000 answers/s a
//! commit took 9 ms on PostgreSQL, of which the database spent under 3.
//!
//! Producers wait when the queue is full (back-pressure, never a dropped
//! row). A group that fails for a passing reason (connection lost, pool
//! exhausted, a deadlock between app servers) is tried again whole, with
//! growing waits, until it lands; every part of it is idempotent, so a
//! commit that happened but was not acknowledged adds nothing twice. A group
//! that fails for any other reason is split: each opening and ending is
//! stored on its own, and only the part at fault reports the error.

use crate::server::db::batch::Batch;
use crate::server::db::budgets::{self, HoldRequest, MonthKey, MonthRow};
use crate::server::db::conversations::{self, AnswerUpdate, Exchange};
use crate::server::db::{now_ms, Db, LedgerPool};
use crate::server::error::{Error, Result};
use crate::server::ledger::performance::RequestTally;
use crate::server::ledger::rows::UsageRow;
use crate::server::ledger::store_rows;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::AnyPool;
use std::sync::Arc;
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

/// The start of an answer (or any other spending call): the budget's hold,
/// if it reserves anything, and the question with its pending answer, if it
/// is a chat answer. Stored together or not at all.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The hold to take, with the limits it must fit under.
    pub hold: Option<HoldRequest>,
    /// The question and its pending answer (shared, not copied, when the
    /// ladder tries another plan: it can carry megabytes of images).
    pub exchange: Option<Arc<Exchange>>,
}

/// How an answer (or any other spending call) ended, as the writer stores it.
#[derive(Debug, Default)]
pub struct Settlement {
    /// The answer message and its ending (chat answers).
    pub answer: Option<(String, AnswerUpdate)>,
    /// The budget hold to release, if the answer took one.
    pub hold_id: Option<String>,
    /// The project's month whose figures the caller wants back (alerts).
    pub month: Option<MonthKey>,
    /// How the request's chat attempts ended, for the performance rollups.
    pub request: Option<RequestTally>,
    /// The answer's opening, queued without waiting ([`Ledger::queue_opening`]):
    /// the settlement reports its failure.
    pub opening: Option<QueuedOpening>,
}

/// An opening queued without waiting for its commit: what it turned out as
/// is read when its answer settles, after which it has been committed (it
/// was queued first).
#[derive(Debug)]
pub struct QueuedOpening(oneshot::Receiver<Result<Outcome>>);

impl QueuedOpening {
    /// Waits for the opening's outcome: an error if it was not stored.
    async fn stored(self) -> Result<()> {
        self.0.await.map_err(|_| writer_gone())?.map(|_| ())
    }
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
    Open(Box<Opening>),
    Settle(Box<Settlement>),
}

/// What a part turned out as, delivered once its group is committed.
#[derive(Debug)]
enum Outcome {
    /// `false`: the hold did not fit, and nothing was stored.
    Opened(bool),
    /// The figures of the settlement's month, if its group changed them.
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
    /// Starts the writer on its own thread, committing to `db` (whose URL is
    /// `url`) through [`Db::ledger_pool`], with a queue of `capacity`
    /// commands, timing each group commit in `commits`. It stops once every
    /// handle is dropped.
    pub async fn start(db: &Db, url: &str, capacity: usize, commits: Histogram) -> Result<Ledger> {
        let (queue, commands) = mpsc::channel(capacity.max(1));
        let (ready, started) = oneshot::channel();
        let (db, url) = (db.clone(), url.to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::internal)?;
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let connections = db.ledger_pool(&url).await;
                    drop(db);
                    let ledger_pool = match connections {
                        Ok(ledger_pool) => ledger_pool,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    write_loop(&ledger_pool, commands, commits).await;
                    if ledger_pool.own {
                        ledger_pool.pool.close().await;
                    }
                });
            })
            .map_err(Error::internal)?;
        started.await.map_err(|_| writer_gone())??;
        Ok(Ledger { queue })
    }

    /// Commands waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Queues an attempt's row; waits while the queue is full. It is stored
    /// no later than any settlement queued after it.
    pub async fn record(&self, row: UsageRow) {
        if self.queue.send(Command::Row(Box::new(row))).await.is_err() {
            // NOTE: only when the runtime is shutting down and the writer is gone.
            tracing::error!("usage ledger writer stopped; a usage row was not stored");
        }
    }

    /// Takes the opening's hold (if it fits) and stores its question;
    /// returns once committed, `false` when the hold did not fit (then
    /// nothing is stored).
    pub async fn open(&self, opening: Opening) -> Result<bool> {
        match self.write(Work::Open(Box::new(opening))).await? {
            Outcome::Opened(opened) => Ok(opened),
            Outcome::Settled(_) => Err(Error::internal("an opening was answered as a settlement")),
        }
    }

    /// Queues an opening that takes no hold — there is nothing to decide,
    /// only a question to store — without waiting for its commit: its
    /// answer starts at once, and its settlement (queued after it, so
    /// committed no earlier) reports whether it was stored.
    pub async fn queue_opening(&self, opening: Opening) -> Result<QueuedOpening> {
        debug_assert!(
            opening.hold.is_none(),
            "a hold's opening decides its answer"
        );
        Ok(QueuedOpening(
            self.queue_part(Work::Open(Box::new(opening))).await?,
        ))
    }

    /// Stores how an answer ended and releases its hold; returns once it and
    /// every row queued before it are committed, with the figures of
    /// `settlement.month` if the group changed them. An error too when the
    /// answer's queued opening was not stored.
    pub async fn settle(&self, mut settlement: Settlement) -> Result<Option<MonthRow>> {
        let opening = settlement.opening.take();
        let month = match self.write(Work::Settle(Box::new(settlement))).await? {
            Outcome::Settled(month) => month,
            Outcome::Opened(_) => {
                return Err(Error::internal("a settlement was answered as an opening"))
            }
        };
        if let Some(opening) = opening {
            opening.stored().await?;
        }
        Ok(month)
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
        let outcome = self.queue_part(work).await?;
        outcome.await.map_err(|_| writer_gone())?
    }

    /// Queues a part; answers where its outcome will arrive.
    async fn queue_part(&self, work: Work) -> Result<oneshot::Receiver<Result<Outcome>>> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Command::Part(Part { work, done }))
            .await
            .map_err(|_| writer_gone())?;
        Ok(outcome)
    }
}

async fn write_loop(
    ledger_pool: &LedgerPool,
    mut commands: mpsc::Receiver<Command>,
    commits: Histogram,
) {
    let pool = &ledger_pool.pool;
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
        let started = std::time::Instant::now();
        group.commit(pool).await;
        commits.observe(started.elapsed().as_secs_f64());
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
        if self.rows.is_empty() && self.parts.is_empty() && self.flushes.is_empty() {
            return;
        }
        let mut retrying = false;
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            let works: Vec<&Work> = self.parts.iter().map(|part| &part.work).collect();
            match write(pool, &self.rows, &works, retrying).await {
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

    /// The rows (until stored), then each part in a transaction of its own:
    /// only the part at fault reports the error.
    async fn write_apart(self, pool: &AnyPool, mut retrying: bool) {
        let mut delay = FIRST_RETRY_DELAY;
        while let Err(error) = write(pool, &self.rows, &[], retrying).await {
            tracing::error!(%error, rows = self.rows.len(), "writing usage rows failed; retrying");
            back_off(&mut delay).await;
            retrying = true;
        }
        for part in self.parts {
            let mut delay = FIRST_RETRY_DELAY;
            let outcome = loop {
                match write(pool, &[], &[&part.work], retrying).await {
                    Err(error) if is_passing(&error) => {
                        back_off(&mut delay).await;
                        retrying = true;
                    }
                    outcome => break outcome.map(|mut outcomes| outcomes.remove(0)),
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

/// Rows and parts in one transaction, each kind in a few multi-row
/// statements however many there are: the rows (with rollups and spend), the
/// holds settlements release, the holds openings take, the questions of the
/// openings admitted, the endings. What is read back (conversations' costs,
/// spend, holds, numbering) runs in that order; the rest is deferred to one
/// [`Batch`] sent last. Answers each part's outcome, in order.
async fn write(
    pool: &AnyPool,
    rows: &[UsageRow],
    works: &[&Work],
    retrying: bool,
) -> Result<Vec<Outcome>> {
    let settlements: Vec<&Settlement> = works
        .iter()
        .filter_map(|work| match work {
            Work::Settle(settlement) => Some(settlement.as_ref()),
            Work::Open(_) => None,
        })
        .collect();
    let tallies: Vec<&RequestTally> = settlements
        .iter()
        .filter_map(|s| s.request.as_ref())
        .collect();
    let mut tx = pool.begin().await?;
    let mut deferred = Batch::new(&tx);
    let mut months = store_rows(&mut tx, &mut deferred, rows, &tallies, retrying).await?;
    let released: Vec<&str> = settlements
        .iter()
        .filter_map(|s| s.hold_id.as_deref())
        .collect();
    months.extend(budgets::release_holds(&mut tx, &released).await?);

    let openings: Vec<&Opening> = works
        .iter()
        .filter_map(|work| match work {
            Work::Open(opening) => Some(opening.as_ref()),
            Work::Settle(_) => None,
        })
        .collect();
    let requests: Vec<&HoldRequest> = openings.iter().filter_map(|o| o.hold.as_ref()).collect();
    let mut taken = budgets::reserve(&mut tx, &requests, retrying)
        .await?
        .into_iter();
    let admitted: Vec<bool> = openings
        .iter()
        .map(|o| o.hold.is_none() || taken.next().unwrap_or(false))
        .collect();
    let exchanges: Vec<&Exchange> = openings
        .iter()
        .zip(&admitted)
        .filter(|(_, &admitted)| admitted)
        .filter_map(|(o, _)| o.exchange.as_deref())
        .collect();
    conversations::insert_exchanges(&mut tx, &exchanges, retrying).await?;
    // After the questions: an answer whose opening was queued without
    // waiting can end in the group that stores it.
    let endings: Vec<(&str, &AnswerUpdate)> = settlements
        .iter()
        .filter_map(|s| s.answer.as_ref().map(|(id, update)| (id.as_str(), update)))
        .collect();
    conversations::finish_answers(&mut deferred, &endings, now_ms());
    deferred.send(&mut tx).await?;
    // Months a settlement asked for that its group left alone (its rows
    // were stored by an earlier group, it released no hold of its own).
    for settlement in &settlements {
        if let Some(key) = settlement
            .month
            .as_ref()
            .filter(|key| !months.contains_key(*key))
        {
            if let Some(figures) = budgets::month(&mut *tx, &key.0, &key.1).await? {
                months.insert(key.clone(), figures);
            }
        }
    }
    tx.commit().await?;

    let mut admitted = admitted.into_iter();
    Ok(works
        .iter()
        .map(|work| match work {
            Work::Open(_) => Outcome::Opened(admitted.next().unwrap_or(false)),
            Work::Settle(settlement) => Outcome::Settled(
                settlement
                    .month
                    .as_ref()
                    .and_then(|key| months.get(key).copied()),
            ),
        })
        .collect())
}

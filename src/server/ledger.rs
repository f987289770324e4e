//! The usage ledger's writer: one row per provider attempt (spec `LLMUsage`),
//! written off the request path. Producers hand rows to a bounded queue and
//! wait when it is full (back-pressure, never a dropped row); one task writes
//! them in multi-row batches and retries a failed batch until it lands. Each
//! batch is added to the daily rollups the cost reports read in the same
//! transaction, so the rollups always equal the ledger. A flush waits until
//! everything queued before it is stored: graceful shutdown flushes after the
//! last answer has ended.

use crate::server::db::llm_usage::{self, UsageRow};
use sqlx::AnyPool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Rows the queue holds before producers wait.
pub const QUEUE_CAPACITY: usize = 8192;
/// Rows written per statement (26 columns each stays far below both engines'
/// bind-parameter limits).
const BATCH_ROWS: usize = 256;
/// Longest wait between two tries of a failed batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

enum Command {
    Row(Box<UsageRow>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the writer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    queue: mpsc::Sender<Command>,
}

impl Ledger {
    /// Starts the writer task on `pool` with a queue of `capacity` rows.
    pub fn start(pool: AnyPool, capacity: usize) -> Ledger {
        let (queue, commands) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_loop(pool, commands));
        Ledger { queue }
    }

    /// Queues a row; waits while the queue is full.
    pub async fn record(&self, row: UsageRow) {
        if self.queue.send(Command::Row(Box::new(row))).await.is_err() {
            // NOTE: only when the runtime is shutting down and the writer is gone.
            tracing::error!("usage ledger writer stopped; a usage row was not stored");
        }
    }

    /// Waits until every row queued before this call is stored.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }
}

async fn write_loop(pool: AnyPool, mut commands: mpsc::Receiver<Command>) {
    let mut received = Vec::with_capacity(BATCH_ROWS);
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    let mut flushes = Vec::new();
    while commands.recv_many(&mut received, BATCH_ROWS).await > 0 {
        for command in received.drain(..) {
            match command {
                Command::Row(row) => rows.push(*row),
                Command::Flush(done) => flushes.push(done),
            }
        }
        if !rows.is_empty() {
            write_until_stored(&pool, &rows).await;
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes one batch with its rollups, retrying with growing waits until the
/// database takes it (a retry adds nothing twice: see `insert_batch`).
async fn write_until_stored(pool: &AnyPool, rows: &[UsageRow]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match llm_usage::insert_batch(pool, rows).await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, rows = rows.len(), "writing usage rows failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

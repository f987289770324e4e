//! Answers an app server left behind when it stopped without finishing them
//! (a crash, `kill -9`, a lost machine): every server sweeps the database at
//! start-up and then periodically, marks answers still pending long after any
//! answer's time limit as failed, and releases their budget holds. So a
//! question never stays without its answer's fate, and no money stays held,
//! whichever server ran it — the others settle it.
//!
//! A live answer is never swept: the router ends every answer within the
//! total time limit, and the sweep waits twice that. Even if one were (a
//! settlement held up by a database outage), its own settlement still lands
//! afterwards: it overwrites the ending and releases nothing twice.

use crate::server::db::budgets;
use crate::server::db::conversations;
use crate::server::db::{now_ms, Db};
use crate::server::error::Result;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Shortest and longest pause between two sweeps.
const SWEEP_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(60));

/// What one sweep settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Pending answers marked failed.
    pub answers: u64,
    /// Budget holds released.
    pub holds: u64,
}

/// How old a pending answer or a hold must be before it is swept: twice the
/// answer time limit.
pub fn abandoned_after(answer_limit: Duration) -> Duration {
    answer_limit.saturating_mul(2)
}

/// Settles what is older than [`abandoned_after`] `answer_limit`, in one transaction.
pub async fn sweep(db: &Db, answer_limit: Duration) -> Result<Swept> {
    let now = now_ms();
    let age = i64::try_from(abandoned_after(answer_limit).as_millis()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(age);
    let mut tx = db.writer.begin().await?;
    let answers = conversations::fail_abandoned(&mut tx, cutoff, now).await?;
    let holds = budgets::release_holds_before(&mut tx, cutoff).await?;
    tx.commit().await?;
    let swept = Swept { answers, holds };
    if swept != Swept::default() {
        tracing::warn!(
            answers,
            holds,
            "settled answers an app server left unfinished"
        );
    }
    Ok(swept)
}

/// Sweeps every half answer time limit (within 1 s to 1 min) until `stopping`.
pub fn spawn_sweeper(db: Db, answer_limit: Duration, stopping: CancellationToken) {
    let (shortest, longest) = SWEEP_INTERVAL_BOUNDS;
    let interval = (answer_limit / 2).clamp(shortest, longest);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = sweep(&db, answer_limit).await {
                tracing::warn!(%error, "sweeping abandoned answers failed; trying again later");
            }
        }
    });
}

//! The usage ledger (spec `LLMUsage`): one row per provider attempt, priced
//! exactly, and everything an answer writes on its way — all through one
//! writer that commits them in groups.
//!
//! | piece | file |
//! |---|---|
//! | pricing an attempt into a row | [`pricing`] |
//! | the `llm_usage` rows | [`rows`] |
//! | the daily rollups | [`rollups`] |
//! | the performance rollups (attempts, requests, ratings, latency bins) | [`performance`] |
//! | reading it back for the cost pages and the CSV | [`reports`] |
//! | the group-commit writer (rows, questions, budget holds, answer endings, rollup passes) | [`writer`] |
//!
//! ```text
//! the start ─► Ledger::open (hold + question) ─┐       one task, one transaction per group:
//!   attempts ─► Ledger::record ───────────────┼─► queue ─► rows (pending) + ended requests (pending)
//!   the end  ─► Ledger::settle (ending) ──────┘       + month spend, holds released, answers
//!                                                     ended, holds taken, questions stored ─► acks
//!                         every ROLLUP_DELAY, or before a report ─► roll_up: claim the pending,
//!                                                     add them to the rollups, one transaction
//! ```
//!
//! An answer's response waits for its settlement's acknowledgement, which
//! comes after the commit that holds its every row: a cost reported to a
//! client is stored, whatever happens to the server afterwards. The rollups
//! the reports read are not in that commit (they were half its statements):
//! a pass adds what is pending a few tens of milliseconds later, and every
//! report first has its server's writer run one ([`Ledger::flush`]). A row
//! stays pending until the transaction that adds it commits, so after a
//! crash the next pass on any server adds it, once.

pub mod performance;
pub mod pricing;
pub mod reports;
pub mod rollups;
pub mod rows;
pub mod writer;

pub use writer::{Ledger, Opening, Settlement, QUEUE_CAPACITY};

use crate::server::db::budgets::{self, MonthKey, MonthRow};
use crate::server::error::Result;
use performance::RequestTally;
use rows::UsageRow;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;

/// Stores rows (those not stored yet) and the requests that ended
/// (`tallies`), both pending for the rollups, with their additions to their
/// months' spend, inside the caller's transaction; answers the figures of
/// every month that changed. A row's spend counts in the month it started
/// (UTC).
pub async fn store_rows(
    conn: &mut AnyConnection,
    batch: &[UsageRow],
    tallies: &[&RequestTally],
) -> Result<BTreeMap<MonthKey, MonthRow>> {
    let stored = rows::insert(conn, batch).await?;
    performance::store_requests(conn, tallies, true).await?;
    let mut spend: BTreeMap<MonthKey, i64> = BTreeMap::new();
    let mut managed_spend: BTreeMap<String, i64> = BTreeMap::new();
    for row in &stored {
        if let Some(nanos) = row.cost_nanos.filter(|&nanos| nanos != 0) {
            let month = budgets::month_of(row.created_at);
            if row.managed_key {
                *managed_spend.entry(month.clone()).or_default() += nanos;
            }
            *spend.entry((row.project_id.clone(), month)).or_default() += nanos;
        }
    }
    let months = budgets::add_spend(conn, &spend).await?;
    budgets::add_workspace_spend(conn, &managed_spend).await?;
    Ok(months)
}

/// Rows or requests claimed per statement by a rollup pass.
const CLAIMS_PER_STATEMENT: usize = 5_000;

/// A rollup pass, inside the caller's transaction: claims every row and
/// request pending (stored by any app server) and adds them to the rollups.
/// Answers how many rows it added.
pub async fn roll_up(conn: &mut AnyConnection) -> Result<usize> {
    let mut added = 0;
    loop {
        let rows = rows::claim_pending(conn, CLAIMS_PER_STATEMENT).await?;
        let requests = performance::claim_requests(conn, CLAIMS_PER_STATEMENT).await?;
        if rows.is_empty() && requests.is_empty() {
            return Ok(added);
        }
        let rows: Vec<&UsageRow> = rows.iter().collect();
        rollups::add_to_rollups(conn, &rows).await?;
        performance::add(conn, &rows, &requests.iter().collect::<Vec<_>>()).await?;
        added += rows.len();
    }
}

/// [`store_rows`] for rows of whole requests (imports, tests: each
/// request's attempts are all there), every request taken as ended, and a
/// rollup pass, inside the caller's transaction.
pub async fn store_requests(conn: &mut AnyConnection, batch: &[UsageRow]) -> Result<()> {
    let tallies = RequestTally::of_rows(batch);
    store_rows(conn, batch, &tallies.iter().collect::<Vec<_>>()).await?;
    roll_up(conn).await?;
    Ok(())
}

/// [`store_requests`] in a transaction of its own.
pub async fn insert_batch(pool: &AnyPool, batch: &[UsageRow]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    store_requests(&mut tx, batch).await?;
    tx.commit().await?;
    Ok(())
}

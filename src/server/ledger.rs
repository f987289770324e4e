//! The usage ledger (spec `LLMUsage`): one row per provider attempt, priced
//! exactly, and everything an answer writes on its way — all through one
//! writer that commits them in groups.
//!
//! | piece | file |
//! |---|---|
//! | pricing an attempt into a row | [`pricing`] |
//! | the `llm_usage` rows | [`rows`] |
//! | the daily rollups kept with every batch | [`rollups`] |
//! | the performance rollups (attempts, requests, ratings, latency bins) | [`performance`] |
//! | reading it back for the cost pages and the CSV | [`reports`] |
//! | the group-commit writer (rows, questions, budget holds, answer endings) | [`writer`] |
//!
//! ```text
//! the start ─► Ledger::open (hold + question) ─┐       one task, one transaction per group:
//!   attempts ─► Ledger::record ───────────────┼─► queue ─► rows + rollups + month spend,
//!   the end  ─► Ledger::settle (ending) ──────┘       holds released, answers ended,
//!                                                     holds taken, questions stored ─► acks
//! ```
//!
//! An answer's response waits for its settlement's acknowledgement, which
//! comes after the commit that holds its every row: a cost reported to a
//! client is stored, whatever happens to the server afterwards.

pub mod performance;
pub mod pricing;
pub mod reports;
pub mod rollups;
pub mod rows;
pub mod writer;

pub use writer::{Ledger, Opening, QueuedOpening, Settlement, QUEUE_CAPACITY};

use crate::server::db::batch::Batch;
use crate::server::db::budgets::{self, MonthKey, MonthRow};
use crate::server::error::Result;
use performance::RequestTally;
use rows::UsageRow;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;

/// Stores rows (on a first try all new; when `retrying`, those not stored
/// yet) with their additions to the rollups and to their months' spend, and
/// the requests that ended (`tallies`), inside the caller's transaction, the
/// statements whose results are not read put in `deferred`; answers the
/// figures of every month that changed. A row's spend counts in the month it
/// started (UTC).
pub async fn store_rows<'q>(
    conn: &mut AnyConnection,
    deferred: &mut Batch<'q>,
    batch: &'q [UsageRow],
    tallies: &[&'q RequestTally],
    retrying: bool,
) -> Result<BTreeMap<MonthKey, MonthRow>> {
    let stored = rows::insert(conn, deferred, batch, retrying).await?;
    rollups::add_to_rollups(conn, deferred, &stored).await?;
    performance::add(conn, deferred, &stored, tallies, retrying).await?;
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
    // Now, not deferred: the holds taken after them in the transaction
    // must count this spend.
    let months = budgets::add_spend(conn, &spend).await?;
    budgets::add_workspace_spend(conn, &managed_spend).await?;
    Ok(months)
}

/// [`store_rows`] for rows of whole requests (imports, tests: each
/// request's attempts are all there), every request taken as ended, inside
/// the caller's transaction. Rows already stored are left out.
pub async fn store_requests(conn: &mut AnyConnection, batch: &[UsageRow]) -> Result<()> {
    let tallies = RequestTally::of_rows(batch);
    let mut deferred = Batch::new(conn);
    store_rows(
        conn,
        &mut deferred,
        batch,
        &tallies.iter().collect::<Vec<_>>(),
        true,
    )
    .await?;
    deferred.send(conn).await?;
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

//! The daily rollups of the usage ledger, kept by the writer in the
//! transaction of every batch (`usage_daily`, `usage_conversation`,
//! `usage_conversation_daily`): what one ledger row adds to each. A month of a
//! busy project is a few hundred rollup rows instead of hundreds of thousands
//! of ledger rows, so the cost pages stay fast.

use crate::model::costs::TokenTotals;
use crate::server::db::batch::Batch;
use crate::server::db::{col, Placeholders};
use crate::server::error::Result;
use crate::server::ledger::rows::UsageRow;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap};

/// Milliseconds in a (UTC) day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Prompt size (input + cache read + cache write) above which an attempt is in
/// the `long` class: the threshold of every long-context price tier in the
/// catalog (Gemini 1.5, 128K), so re-pricing the classes apart is exact.
pub const LONG_PROMPT_TOKENS: i64 = 128_000;

/// Rollup rows (16 bind parameters each) or conversation ids per statement.
const ROLLUPS_PER_STATEMENT: usize = 1000;

/// The summed columns of `usage_daily`, in [`UsageSums`]' order.
pub(super) const DAILY_SUMS: [&str; 10] = [
    "attempts",
    "failed_attempts",
    "unpriced_attempts",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "latency_ms",
];

/// The key columns of `usage_daily`.
pub(super) const DAILY_KEY: [&str; 6] = [
    "project_id",
    "day",
    "provider",
    "model",
    "is_fallback",
    "long_prompt",
];

/// The key columns of `usage_conversation_daily`.
const CONVERSATION_KEY: [&str; 5] = ["project_id", "day", "conversation_key", "provider", "model"];

/// The summed columns of `usage_conversation_daily`.
const CONVERSATION_SUMS: [&str; 2] = ["attempts", "cost_nanos"];

/// The UTC day (Unix ms of its midnight) of a time in Unix ms.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

/// Whether an attempt's prompt is in the long-context class.
pub fn is_long_prompt(row: &UsageRow) -> bool {
    row.input_tokens + row.cache_read_tokens + row.cache_write_tokens > LONG_PROMPT_TOKENS
}

/// What a rollup row sums: attempts, tokens, priced cost and latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSums {
    /// Provider attempts.
    pub attempts: i64,
    /// Attempts that failed.
    pub failed_attempts: i64,
    /// Attempts without a known price (their cost is not in `cost_nanos`).
    pub unpriced_attempts: i64,
    /// Tokens by bucket.
    pub tokens: TokenTotals,
    /// Nano-dollars of the priced attempts.
    pub cost_nanos: i64,
    /// Summed attempt durations.
    pub latency_ms: i64,
}

impl UsageSums {
    /// One ledger row's contribution.
    pub fn of(row: &UsageRow) -> UsageSums {
        UsageSums {
            attempts: 1,
            failed_attempts: i64::from(!row.success),
            unpriced_attempts: i64::from(row.cost_nanos.is_none()),
            tokens: TokenTotals {
                input_tokens: row.input_tokens,
                cache_read_tokens: row.cache_read_tokens,
                cache_write_tokens: row.cache_write_tokens,
                output_tokens: row.output_tokens,
                reasoning_tokens: row.reasoning_tokens,
            },
            cost_nanos: row.cost_nanos.unwrap_or(0),
            latency_ms: row.latency_ms,
        }
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &UsageSums) {
        self.attempts += other.attempts;
        self.failed_attempts += other.failed_attempts;
        self.unpriced_attempts += other.unpriced_attempts;
        self.tokens.input_tokens += other.tokens.input_tokens;
        self.tokens.cache_read_tokens += other.tokens.cache_read_tokens;
        self.tokens.cache_write_tokens += other.tokens.cache_write_tokens;
        self.tokens.output_tokens += other.tokens.output_tokens;
        self.tokens.reasoning_tokens += other.tokens.reasoning_tokens;
        self.cost_nanos += other.cost_nanos;
        self.latency_ms += other.latency_ms;
    }

    fn values(&self) -> [i64; 10] {
        [
            self.attempts,
            self.failed_attempts,
            self.unpriced_attempts,
            self.tokens.input_tokens,
            self.tokens.cache_read_tokens,
            self.tokens.cache_write_tokens,
            self.tokens.output_tokens,
            self.tokens.reasoning_tokens,
            self.cost_nanos,
            self.latency_ms,
        ]
    }

    /// Reads the summed columns of a rollup row.
    pub(super) fn from_row(row: &AnyRow) -> Result<UsageSums> {
        Ok(UsageSums {
            attempts: col(row, "attempts")?,
            failed_attempts: col(row, "failed_attempts")?,
            unpriced_attempts: col(row, "unpriced_attempts")?,
            tokens: TokenTotals {
                input_tokens: col(row, "input_tokens")?,
                cache_read_tokens: col(row, "cache_read_tokens")?,
                cache_write_tokens: col(row, "cache_write_tokens")?,
                output_tokens: col(row, "output_tokens")?,
                reasoning_tokens: col(row, "reasoning_tokens")?,
            },
            cost_nanos: col(row, "cost_nanos")?,
            latency_ms: col(row, "latency_ms")?,
        })
    }
}

/// A `usage_daily` key. Ordered, so concurrent writers (several app servers on
/// one PostgreSQL) lock rollup rows in the same order and cannot deadlock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DailyKey<'a> {
    project_id: &'a str,
    day: i64,
    provider: &'a str,
    model: &'a str,
    is_fallback: bool,
    long_prompt: bool,
}

/// A `usage_conversation_daily` key (ordered for the same reason).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ConversationKey<'a> {
    project_id: &'a str,
    day: i64,
    conversation_key: i64,
    provider: &'a str,
    model: &'a str,
}

/// Adds freshly stored ledger rows to the rollups (inside the transaction
/// that stored them): each conversation's cost now (it answers the
/// conversation's compact number), the daily rollups in `deferred`.
pub async fn add_to_rollups<'q>(
    conn: &mut AnyConnection,
    deferred: &mut Batch<'q>,
    rows: &[&'q UsageRow],
) -> Result<()> {
    let style = Placeholders::of(conn);
    let mut conversation_costs: BTreeMap<&str, i64> = BTreeMap::new();
    for row in rows {
        if let Some(id) = row.conversation_id.as_deref() {
            *conversation_costs.entry(id).or_default() += row.cost_nanos.unwrap_or(0);
        }
    }
    let keys = add_to_conversations(conn, style, &conversation_costs).await?;
    let mut daily: BTreeMap<DailyKey, UsageSums> = BTreeMap::new();
    let mut conversations: BTreeMap<ConversationKey, (i64, i64)> = BTreeMap::new();
    for row in rows {
        let day = day_of(row.created_at);
        let sums = UsageSums::of(row);
        daily
            .entry(DailyKey {
                project_id: &row.project_id,
                day,
                provider: &row.provider,
                model: &row.model,
                is_fallback: row.is_fallback,
                long_prompt: is_long_prompt(row),
            })
            .or_default()
            .add(&sums);
        if let Some(&conversation_key) = row.conversation_id.as_deref().and_then(|id| keys.get(id))
        {
            let entry = conversations
                .entry(ConversationKey {
                    project_id: &row.project_id,
                    day,
                    conversation_key,
                    provider: &row.provider,
                    model: &row.model,
                })
                .or_default();
            entry.0 += sums.attempts;
            entry.1 += sums.cost_nanos;
        }
    }
    let daily: Vec<_> = daily.into_iter().collect();
    for chunk in daily.chunks(ROLLUPS_PER_STATEMENT) {
        let sql = upsert_sql(style, "usage_daily", &DAILY_KEY, &DAILY_SUMS, chunk.len());
        let mut statement = deferred.add(&sql);
        for (key, sums) in chunk {
            statement = statement
                .bind(key.project_id)
                .bind(key.day)
                .bind(key.provider)
                .bind(key.model)
                .bind(i64::from(key.is_fallback))
                .bind(i64::from(key.long_prompt));
            for value in sums.values() {
                statement = statement.bind(value);
            }
        }
    }
    let conversations: Vec<_> = conversations.into_iter().collect();
    for chunk in conversations.chunks(ROLLUPS_PER_STATEMENT) {
        let sql = upsert_sql(
            style,
            "usage_conversation_daily",
            &CONVERSATION_KEY,
            &CONVERSATION_SUMS,
            chunk.len(),
        );
        let mut statement = deferred.add(&sql);
        for (key, (attempts, cost_nanos)) in chunk {
            statement = statement
                .bind(key.project_id)
                .bind(key.day)
                .bind(key.conversation_key)
                .bind(key.provider)
                .bind(key.model)
                .bind(*attempts)
                .bind(*cost_nanos);
        }
    }
    Ok(())
}

/// Adds to each conversation's cost so far and answers its compact number
/// (given on its first usage). Ids go in sorted, so concurrent writers lock
/// them in the same order.
async fn add_to_conversations(
    conn: &mut AnyConnection,
    style: Placeholders,
    costs: &BTreeMap<&str, i64>,
) -> Result<HashMap<String, i64>> {
    let costs: Vec<(&str, i64)> = costs.iter().map(|(id, cost)| (*id, *cost)).collect();
    let mut keys = HashMap::with_capacity(costs.len());
    for chunk in costs.chunks(ROLLUPS_PER_STATEMENT) {
        let sql = format!(
            "insert into usage_conversation (conversation_id, cost_nanos) values {} \
             on conflict (conversation_id) do update \
             set cost_nanos = usage_conversation.cost_nanos + excluded.cost_nanos \
             returning conversation_id, conversation_key",
            style.values_list(chunk.len(), 2)
        );
        let query = chunk
            .iter()
            .fold(sqlx::query(&sql), |q, (id, cost)| q.bind(*id).bind(*cost));
        for row in query.fetch_all(&mut *conn).await? {
            keys.insert(
                col(&row, "conversation_id")?,
                col(&row, "conversation_key")?,
            );
        }
    }
    Ok(keys)
}

/// `insert … values … on conflict (key) do update set s = table.s + excluded.s`.
pub(super) fn upsert_sql(
    style: Placeholders,
    table: &str,
    key: &[&str],
    sums: &[&str],
    rows: usize,
) -> String {
    let additions: Vec<String> = sums
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(
        "insert into {table} ({}, {}) values {} on conflict ({}) do update set {}",
        key.join(", "),
        sums.join(", "),
        style.values_list(rows, key.len() + sums.len()),
        key.join(", "),
        additions.join(", ")
    )
}

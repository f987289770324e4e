//! The usage ledger as reports read it (FR-007): the rollups the ledger
//! writer keeps in the transaction of every batch (`usage_daily`,
//! `usage_conversation` and `usage_conversation_daily`), and the ledger rows
//! themselves for the CSV export. A month of a busy project is a few hundred
//! daily rollup rows instead of hundreds of thousands of ledger rows, so the
//! cost page stays fast.

use crate::model::costs::{ConversationCost, TokenTotals};
use crate::server::db::col;
use crate::server::db::llm_usage::{self, Placeholders, UsageRow};
use crate::server::error::{Error, Result};
use futures::{Stream, StreamExt};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

/// Milliseconds in a (UTC) day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Prompt size (input + cache read + cache write) above which an attempt is in
/// the `long` class: the threshold of every long-context price tier in the
/// catalog (Gemini 1.5, 128K), so re-pricing the classes apart is exact.
pub const LONG_PROMPT_TOKENS: i64 = 128_000;

/// Rollup rows (16 bind parameters each) or conversation ids per statement.
const ROLLUPS_PER_STATEMENT: usize = 1000;

/// The summed columns of `usage_daily`, in [`UsageSums`]' order.
const DAILY_SUMS: [&str; 10] = [
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
const DAILY_KEY: [&str; 6] = [
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

    fn from_row(row: &AnyRow) -> Result<UsageSums> {
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
/// that stored them).
pub async fn add_to_rollups(conn: &mut AnyConnection, rows: &[&UsageRow]) -> Result<()> {
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
        let mut query = sqlx::query(&sql);
        for (key, sums) in chunk {
            query = query
                .bind(key.project_id)
                .bind(key.day)
                .bind(key.provider)
                .bind(key.model)
                .bind(i64::from(key.is_fallback))
                .bind(i64::from(key.long_prompt));
            for value in sums.values() {
                query = query.bind(value);
            }
        }
        query.execute(&mut *conn).await?;
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
        let mut query = sqlx::query(&sql);
        for (key, (attempts, cost_nanos)) in chunk {
            query = query
                .bind(key.project_id)
                .bind(key.day)
                .bind(key.conversation_key)
                .bind(key.provider)
                .bind(key.model)
                .bind(*attempts)
                .bind(*cost_nanos);
        }
        query.execute(&mut *conn).await?;
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
fn upsert_sql(
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

/// Which usage a query covers: a time range, one project or all, and
/// optionally one provider and one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Only this project (`None`: the whole workspace).
    pub project_id: Option<String>,
    /// First instant covered (Unix ms, a UTC midnight).
    pub start_ms: i64,
    /// First instant after the range (Unix ms, a UTC midnight).
    pub end_ms: i64,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only this model.
    pub model: Option<String>,
}

/// A bind parameter of a scoped query.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// A scope's conditions on a table whose time (or day) column is `time`:
/// `where time >= $1 and time < $2 [and …]`, with the parameters.
fn conditions(scope: &Scope, time: &str) -> (String, Vec<Arg>) {
    let mut sql = format!("where {time} >= $1 and {time} < $2");
    let mut args = vec![Arg::Int(scope.start_ms), Arg::Int(scope.end_ms)];
    for (column, value) in [
        ("project_id", &scope.project_id),
        ("provider", &scope.provider),
        ("model", &scope.model),
    ] {
        if let Some(value) = value {
            args.push(Arg::Text(value.clone()));
            let _ = write!(sql, " and {column} = ${}", args.len());
        }
    }
    (sql, args)
}

fn bound<'q>(sql: &'q str, args: &'q [Arg]) -> Query<'q, Any, AnyArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |query, arg| match arg {
        Arg::Text(text) => query.bind(text.as_str()),
        Arg::Int(value) => query.bind(*value),
    })
}

/// One `usage_daily` row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    /// The project.
    pub project_id: String,
    /// The UTC day (Unix ms of its midnight).
    pub day: i64,
    /// Provider id.
    pub provider: String,
    /// Model id as recorded.
    pub model: String,
    /// Fallback or degraded attempts.
    pub is_fallback: bool,
    /// Prompts over [`LONG_PROMPT_TOKENS`].
    pub long_prompt: bool,
    /// The sums.
    pub sums: UsageSums,
}

/// The rollup rows in a scope.
pub async fn daily(pool: &AnyPool, scope: &Scope) -> Result<Vec<DailyUsage>> {
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select {}, {} from usage_daily {filter}",
        DAILY_KEY.join(", "),
        DAILY_SUMS.join(", ")
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(DailyUsage {
                project_id: col(row, "project_id")?,
                day: col(row, "day")?,
                provider: col(row, "provider")?,
                model: col(row, "model")?,
                is_fallback: col::<i64>(row, "is_fallback")? != 0,
                long_prompt: col::<i64>(row, "long_prompt")? != 0,
                sums: UsageSums::from_row(row)?,
            })
        })
        .collect()
}

/// Conversations with usage in a scope and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationTotals {
    /// Distinct conversations.
    pub conversations: i64,
    /// Their priced cost, nano-dollars.
    pub cost_nanos: i64,
}

/// Distinct conversations with usage in a scope, and their cost.
pub async fn conversation_totals(pool: &AnyPool, scope: &Scope) -> Result<ConversationTotals> {
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select count(distinct conversation_key) as conversations, \
                cast(coalesce(sum(cost_nanos), 0) as bigint) as cost_nanos \
         from usage_conversation_daily {filter}"
    );
    let row = bound(&sql, &args).fetch_one(pool).await?;
    Ok(ConversationTotals {
        conversations: col(&row, "conversations")?,
        cost_nanos: col(&row, "cost_nanos")?,
    })
}

/// A floor under the `limit`-th largest conversation cost in a scope: the
/// `limit`-th distinct conversation among the costliest conversation-days
/// (each of those conversations costs at least that day). 0 when there are
/// not that many.
async fn cost_floor(pool: &AnyPool, scope: &Scope, limit: i64) -> Result<i64> {
    let (filter, mut args) = conditions(scope, "day");
    args.push(Arg::Int(limit * 5));
    let sql = format!(
        "select conversation_key, cost_nanos from usage_conversation_daily {filter} \
         order by cost_nanos desc limit ${}",
        args.len()
    );
    let mut seen = HashSet::new();
    for row in bound(&sql, &args).fetch_all(pool).await? {
        seen.insert(col::<i64>(&row, "conversation_key")?);
        if seen.len() as i64 == limit {
            return col(&row, "cost_nanos");
        }
    }
    Ok(0)
}

/// The `limit` conversations that cost most in a scope, with their titles
/// and project names. Only conversations whose cost so far reaches
/// [`cost_floor`] can be among them, so only those are summed.
pub async fn top_conversations(
    pool: &AnyPool,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<ConversationCost>> {
    let floor = cost_floor(pool, scope, limit).await?;
    let (filter, mut args) = conditions(scope, "day");
    args.push(Arg::Int(floor));
    let floor_arg = args.len();
    args.push(Arg::Int(limit));
    let sql = format!(
        "select k.conversation_id, t.project_id, t.cost_nanos, t.attempts, \
                c.title, p.name as project_name \
         from (select d.conversation_key, d.project_id, \
                      cast(sum(d.cost_nanos) as bigint) as cost_nanos, \
                      cast(sum(d.attempts) as bigint) as attempts \
               from usage_conversation_daily d \
               join usage_conversation q on q.conversation_key = d.conversation_key \
               {filter} and q.cost_nanos >= ${floor_arg} \
               group by d.conversation_key, d.project_id \
               order by cost_nanos desc, d.conversation_key limit ${}) t \
         join usage_conversation k on k.conversation_key = t.conversation_key \
         left join conversation c on c.conversation_id = k.conversation_id \
         left join project p on p.project_id = t.project_id \
         order by t.cost_nanos desc, t.conversation_key",
        args.len()
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let conversation_id: String = col(row, "conversation_id")?;
            let project_id: String = col(row, "project_id")?;
            let title: Option<String> = col(row, "title")?;
            let project_name: Option<String> = col(row, "project_name")?;
            Ok(ConversationCost {
                title: title.unwrap_or_else(|| conversation_id.clone()),
                project_name: project_name.unwrap_or_else(|| project_id.clone()),
                conversation_id,
                project_id,
                cost_nanos: col(row, "cost_nanos")?,
                attempts: col(row, "attempts")?,
            })
        })
        .collect()
}

/// Every project's name by id (labels of the admin dashboard).
pub async fn project_names(pool: &AnyPool) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("select project_id, name from project")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok((col(row, "project_id")?, col(row, "name")?)))
        .collect()
}

/// Whether `model` has any usage (in one project, or anywhere): a model the
/// catalog no longer knows is still a valid filter while the ledger has it.
pub async fn model_has_usage(
    pool: &AnyPool,
    project_id: Option<&str>,
    model: &str,
) -> Result<bool> {
    let mut args = vec![Arg::Text(model.to_owned())];
    let mut sql = "select 1 from usage_daily where model = $1".to_owned();
    if let Some(project_id) = project_id {
        args.push(Arg::Text(project_id.to_owned()));
        sql.push_str(" and project_id = $2");
    }
    sql.push_str(" limit 1");
    Ok(bound(&sql, &args).fetch_optional(pool).await?.is_some())
}

/// The ledger rows of a scope, oldest first, for export.
#[derive(Debug, Clone)]
pub struct LedgerQuery {
    sql: String,
    args: Vec<Arg>,
}

impl LedgerQuery {
    /// The query for a scope.
    pub fn new(scope: &Scope) -> LedgerQuery {
        let (filter, args) = conditions(scope, "created_at");
        LedgerQuery {
            sql: format!(
                "select {} from llm_usage {filter} order by created_at, usage_id",
                llm_usage::select_list()
            ),
            args,
        }
    }

    /// The rows, streamed (an export of a busy month never sits in memory).
    pub fn rows<'a>(&'a self, pool: &'a AnyPool) -> impl Stream<Item = Result<UsageRow>> + 'a {
        bound(&self.sql, &self.args).fetch(pool).map(|row| {
            row.map_err(Error::from)
                .and_then(|row| llm_usage::from_row(&row))
        })
    }
}

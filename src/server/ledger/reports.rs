//! The usage ledger as reports read it: the daily rollups for the cost pages
//! and the admin dashboard (FR-007), the performance rollups for the
//! performance report (FR-008), and the ledger rows themselves for the CSV
//! export.

use crate::model::costs::ConversationCost;
use crate::server::db::col;
use crate::server::error::{Error, Result};
use crate::server::ledger::performance::PERFORMANCE_SUMS;
use crate::server::ledger::rollups::{UsageSums, DAILY_KEY, DAILY_SUMS};
use crate::server::ledger::rows::{self, UsageRow};
use futures::{Stream, StreamExt};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

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
    /// Prompts over [`LONG_PROMPT_TOKENS`](crate::server::ledger::rollups::LONG_PROMPT_TOKENS).
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
                rows::select_list()
            ),
            args,
        }
    }

    /// The rows, streamed (an export of a busy month never sits in memory).
    pub fn rows<'a>(&'a self, pool: &'a AnyPool) -> impl Stream<Item = Result<UsageRow>> + 'a {
        bound(&self.sql, &self.args).fetch(pool).map(|row| {
            row.map_err(Error::from)
                .and_then(|row| rows::from_row(&row))
        })
    }
}

/// One model's performance rollups summed over a scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerformanceTotals {
    /// Provider id.
    pub provider: String,
    /// Model id as recorded.
    pub model: String,
    /// Chat attempts.
    pub attempts: i64,
    /// Successful ones.
    pub successes: i64,
    /// Their summed latency.
    pub success_latency_ms: i64,
    /// Their summed output tokens.
    pub success_output_tokens: i64,
    /// Requests it owns.
    pub answers: i64,
    /// Requests first asked of it.
    pub asked_first: i64,
    /// Of those, the ones that went on to another model.
    pub went_on: i64,
    /// Of those, the ones another model answered.
    pub rescued: i64,
    /// Thumbs up on its answers.
    pub rated_up: i64,
    /// Thumbs down on its answers.
    pub rated_down: i64,
}

/// `cast(sum(c) as bigint) as c` for each column (PostgreSQL sums bigints
/// as numeric).
fn sums_of(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("cast(sum({c}) as bigint) as {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each model's performance rollups in a scope.
pub async fn performance_by_model(pool: &AnyPool, scope: &Scope) -> Result<Vec<PerformanceTotals>> {
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select provider, model, {} from usage_performance_daily {filter} group by provider, model",
        sums_of(&PERFORMANCE_SUMS)
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(PerformanceTotals {
                provider: col(row, "provider")?,
                model: col(row, "model")?,
                attempts: col(row, "attempts")?,
                successes: col(row, "successes")?,
                success_latency_ms: col(row, "success_latency_ms")?,
                success_output_tokens: col(row, "success_output_tokens")?,
                answers: col(row, "answers")?,
                asked_first: col(row, "asked_first")?,
                went_on: col(row, "went_on")?,
                rescued: col(row, "rescued")?,
                rated_up: col(row, "rated_up")?,
                rated_down: col(row, "rated_down")?,
            })
        })
        .collect()
}

/// Failed attempts per model and error class in a scope: `(model, class, attempts)`.
pub async fn errors_by_model(pool: &AnyPool, scope: &Scope) -> Result<Vec<(String, String, i64)>> {
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select model, error_class, {} from usage_errors_daily {filter} group by model, error_class",
        sums_of(&["attempts"])
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok((
                col(row, "model")?,
                col(row, "error_class")?,
                col(row, "attempts")?,
            ))
        })
        .collect()
}

/// One bin of the latency rollups: `(group, measure, bin, samples)`, the
/// group being a model id or a day.
pub type LatencyBin<G> = (G, String, i64, i64);

/// The latency and first-token bins of each model in a scope.
pub async fn latency_by_model(pool: &AnyPool, scope: &Scope) -> Result<Vec<LatencyBin<String>>> {
    latency_bins(pool, scope, "model").await
}

/// The latency and first-token bins of each day in a scope (every model).
pub async fn latency_by_day(pool: &AnyPool, scope: &Scope) -> Result<Vec<LatencyBin<i64>>> {
    latency_bins(pool, scope, "day").await
}

async fn latency_bins<G>(pool: &AnyPool, scope: &Scope, group: &str) -> Result<Vec<LatencyBin<G>>>
where
    G: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select {group}, measure, bin, {} from usage_latency_daily {filter} \
         group by {group}, measure, bin",
        sums_of(&["samples"])
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok((
                col(row, group)?,
                col(row, "measure")?,
                col(row, "bin")?,
                col(row, "samples")?,
            ))
        })
        .collect()
}

/// Attempts and successes of each day in a scope (every model): `(day, attempts, successes)`.
pub async fn performance_by_day(pool: &AnyPool, scope: &Scope) -> Result<Vec<(i64, i64, i64)>> {
    let (filter, args) = conditions(scope, "day");
    let sql = format!(
        "select day, {} from usage_performance_daily {filter} group by day",
        sums_of(&["attempts", "successes"])
    );
    let rows = bound(&sql, &args).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok((
                col(row, "day")?,
                col(row, "attempts")?,
                col(row, "successes")?,
            ))
        })
        .collect()
}

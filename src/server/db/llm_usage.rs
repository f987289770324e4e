//! The `llm_usage` table: the usage ledger, one row per provider attempt.
//! Rows are only ever inserted (by the ledger writer, in batches).

use crate::server::error::Result;
use sqlx::AnyPool;

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Row id.
    pub usage_id: String,
    /// The project billed.
    pub project_id: String,
    /// The conversation, for chat answers.
    pub conversation_id: Option<String>,
    /// The answer message, for chat answers.
    pub message_id: Option<String>,
    /// Shared by every attempt of one answer.
    pub request_id: String,
    /// 1-based attempt number within the request.
    pub attempt: i64,
    /// Provider id.
    pub provider: String,
    /// Catalog model id.
    pub model: String,
    /// The configuration version the request ran under.
    pub config_version: Option<i64>,
    /// `primary`, `fallback` or `degraded`.
    pub role: String,
    /// True for any target but the primary (AC-006: tracked separately).
    pub is_fallback: bool,
    /// Whether the attempt streamed.
    pub streamed: bool,
    /// Uncached input tokens.
    pub input_tokens: i64,
    /// Input tokens read from the cache.
    pub cache_read_tokens: i64,
    /// Input tokens written to the cache.
    pub cache_write_tokens: i64,
    /// Output tokens (reasoning included).
    pub output_tokens: i64,
    /// Of the output, reasoning tokens.
    pub reasoning_tokens: i64,
    /// True when the counts are our estimate, not the provider's.
    pub usage_estimated: bool,
    /// The provider's usage object as received (JSON).
    pub raw_usage: Option<String>,
    /// Cost in nano-dollars; `None` when the model has no known price.
    pub cost_nanos: Option<i64>,
    /// Which prices were used (`<model>@<effective date>`, `self-hosted`).
    pub price_version: Option<String>,
    /// Attempt duration.
    pub latency_ms: i64,
    /// Attempt time to first token (streams).
    pub ttft_ms: Option<i64>,
    /// Whether the attempt produced the answer.
    pub success: bool,
    /// Error class (camelCase, e.g. `rateLimited`, `cancelled`).
    pub error_class: Option<String>,
    /// Error message.
    pub error_message: Option<String>,
    /// When the attempt started (Unix ms).
    pub created_at: i64,
}

const COLUMNS: [&str; 26] = [
    "usage_id",
    "project_id",
    "conversation_id",
    "message_id",
    "request_id",
    "attempt",
    "provider",
    "model",
    "config_version",
    "role",
    "is_fallback",
    "streamed",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "raw_usage",
    "cost_nanos",
    "price_version",
    "latency_ms",
    "ttft_ms",
    "success",
    "error_class",
    "error_message",
];

/// Inserts rows in one statement. Idempotent: a row whose id is already stored
/// is skipped, so a batch retried after a lost acknowledgement adds nothing twice.
pub async fn insert_batch(pool: &AnyPool, rows: &[UsageRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = COLUMNS.len() + 1;
    let mut sql = format!(
        "insert into llm_usage ({}, created_at) values ",
        COLUMNS.join(", ")
    );
    for (i, _) in rows.iter().enumerate() {
        let placeholders: Vec<String> =
            (1..=width).map(|c| format!("${}", i * width + c)).collect();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    sql.push_str(" on conflict (usage_id) do nothing");
    let flag = |b: bool| i64::from(b);
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(&row.usage_id)
            .bind(&row.project_id)
            .bind(&row.conversation_id)
            .bind(&row.message_id)
            .bind(&row.request_id)
            .bind(row.attempt)
            .bind(&row.provider)
            .bind(&row.model)
            .bind(row.config_version)
            .bind(&row.role)
            .bind(flag(row.is_fallback))
            .bind(flag(row.streamed))
            .bind(row.input_tokens)
            .bind(row.cache_read_tokens)
            .bind(row.cache_write_tokens)
            .bind(row.output_tokens)
            .bind(row.reasoning_tokens)
            .bind(flag(row.usage_estimated))
            .bind(&row.raw_usage)
            .bind(row.cost_nanos)
            .bind(&row.price_version)
            .bind(row.latency_ms)
            .bind(row.ttft_ms)
            .bind(flag(row.success))
            .bind(&row.error_class)
            .bind(&row.error_message)
            .bind(row.created_at);
    }
    query.execute(pool).await?;
    Ok(())
}

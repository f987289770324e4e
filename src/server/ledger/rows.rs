//! The `llm_usage` table: the usage ledger, one row per provider attempt.
//! Rows are only ever inserted (by the ledger writer, in batches), each batch
//! together with its additions to the rollups and the budget months.

use crate::model::chat::ErrorClass;
use crate::model::costs::UsageOperation;
use crate::server::db::batch::Batch;
use crate::server::db::{col, parsed, parsed_optional};
use crate::server::error::Result;
use crate::server::llm::router::TargetRole;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::collections::HashSet;

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
    /// Why the model was tried.
    pub role: TargetRole,
    /// True for any target but the primary (AC-006: tracked separately).
    pub is_fallback: bool,
    /// Whether the attempt streamed.
    pub streamed: bool,
    /// Whether it spent one of Cover's managed keys (the workspace cap counts it).
    pub managed_key: bool,
    /// What the call was for.
    pub operation: UsageOperation,
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
    /// Why the attempt failed.
    pub error_class: Option<ErrorClass>,
    /// Error message.
    pub error_message: Option<String>,
    /// When the attempt started (Unix ms).
    pub created_at: i64,
}

const COLUMNS: [&str; 28] = [
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
    "managed_key",
    "operation",
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

/// Rows per insert statement: 29 bind parameters each, so a statement stays
/// below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// The columns as selected, in [`from_row`]'s order.
pub fn select_list() -> String {
    format!("{}, created_at", COLUMNS.join(", "))
}

/// Reads a row selected with [`select_list`].
pub fn from_row(row: &AnyRow) -> Result<UsageRow> {
    let flag = |name: &str| col::<i64>(row, name).map(|v| v != 0);
    Ok(UsageRow {
        usage_id: col(row, "usage_id")?,
        project_id: col(row, "project_id")?,
        conversation_id: col(row, "conversation_id")?,
        message_id: col(row, "message_id")?,
        request_id: col(row, "request_id")?,
        attempt: col(row, "attempt")?,
        provider: col(row, "provider")?,
        model: col(row, "model")?,
        config_version: col(row, "config_version")?,
        role: parsed(row, "role", TargetRole::parse)?,
        is_fallback: flag("is_fallback")?,
        streamed: flag("streamed")?,
        managed_key: flag("managed_key")?,
        operation: parsed(row, "operation", UsageOperation::parse)?,
        input_tokens: col(row, "input_tokens")?,
        cache_read_tokens: col(row, "cache_read_tokens")?,
        cache_write_tokens: col(row, "cache_write_tokens")?,
        output_tokens: col(row, "output_tokens")?,
        reasoning_tokens: col(row, "reasoning_tokens")?,
        usage_estimated: flag("usage_estimated")?,
        raw_usage: col(row, "raw_usage")?,
        cost_nanos: col(row, "cost_nanos")?,
        price_version: col(row, "price_version")?,
        latency_ms: col(row, "latency_ms")?,
        ttft_ms: col(row, "ttft_ms")?,
        success: flag("success")?,
        error_class: parsed_optional(row, "error_class", ErrorClass::parse)?,
        error_message: col(row, "error_message")?,
        created_at: col(row, "created_at")?,
    })
}

/// Inserts rows (any number, in multi-row statements) and answers those
/// stored. On a first try they are all new (fresh ids) and their inserts go
/// into `deferred`, sent with the transaction's other statements; when
/// `retrying` (some may already be stored) they are inserted now and a row
/// whose id is already there is skipped, so a batch retried after a lost
/// acknowledgement stores nothing twice.
pub async fn insert<'r>(
    conn: &mut AnyConnection,
    deferred: &mut Batch<'r>,
    rows: &'r [UsageRow],
    retrying: bool,
) -> Result<Vec<&'r UsageRow>> {
    if !retrying {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            add_insert(deferred, chunk, "");
        }
        return Ok(rows.iter().collect());
    }
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut now = Batch::new(conn);
        add_insert(
            &mut now,
            chunk,
            " on conflict (usage_id) do nothing returning usage_id",
        );
        let inserted = now
            .send(conn)
            .await?
            .iter()
            .map(|row| col::<String>(row, "usage_id"))
            .collect::<Result<HashSet<String>>>()?;
        stored.extend(
            chunk
                .iter()
                .filter(|row| inserted.contains(row.usage_id.as_str())),
        );
    }
    Ok(stored)
}

/// Adds one multi-row insert of `rows` to `batch`, `tail` after its values.
fn add_insert<'r>(batch: &mut Batch<'r>, rows: &'r [UsageRow], tail: &str) {
    let sql = format!(
        "insert into llm_usage ({}, created_at) values {}{tail}",
        COLUMNS.join(", "),
        batch.style().values_list(rows.len(), COLUMNS.len() + 1)
    );
    let flag = |b: bool| i64::from(b);
    let mut statement = batch.add(&sql);
    for row in rows {
        statement = statement
            .bind(&row.usage_id)
            .bind(&row.project_id)
            .bind(&row.conversation_id)
            .bind(&row.message_id)
            .bind(&row.request_id)
            .bind(row.attempt)
            .bind(&row.provider)
            .bind(&row.model)
            .bind(row.config_version)
            .bind(row.role.as_str())
            .bind(flag(row.is_fallback))
            .bind(flag(row.streamed))
            .bind(flag(row.managed_key))
            .bind(row.operation.as_str())
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
            .bind(row.error_class.map(ErrorClass::as_str))
            .bind(&row.error_message)
            .bind(row.created_at);
    }
}

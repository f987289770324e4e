//! One attempt as a usage-ledger row: priced exactly with the catalog prices
//! (`model::pricing`), labelled with what it was for. Shared by every path
//! that calls a provider (chat answers, Compare on a sample).

use crate::model::catalog::Catalog;
use crate::model::chat::TokenUsage;
use crate::model::costs::UsageOperation;
use crate::model::pricing::{attempt_cost, Cost, InternalRate};
use crate::server::ledger::rows::UsageRow;
use crate::server::llm::router::{AttemptRecord, TargetRole};
use crate::server::llm::{LlmError, Usage};
use std::time::Duration;

/// What the attempts of one request were for.
#[derive(Debug, Clone)]
pub struct UsageContext {
    /// The project billed.
    pub project_id: String,
    /// The conversation (chat answers).
    pub conversation_id: Option<String>,
    /// The answer message (chat answers).
    pub message_id: Option<String>,
    /// Shared by every attempt of the request.
    pub request_id: String,
    /// The configuration version in force.
    pub config_version: Option<i64>,
}

/// The ledger's token buckets of a provider usage, flagged when estimated.
pub fn token_usage(usage: &Usage, estimated: bool) -> TokenUsage {
    TokenUsage {
        input_tokens: usage.input_tokens,
        cache_read_tokens: usage.cache_read_tokens,
        cache_write_tokens: usage.cache_write_tokens,
        output_tokens: usage.output_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        estimated,
    }
}

/// Milliseconds as the ledger stores them.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn tokens(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

impl UsageContext {
    /// A fresh context with a new request id.
    pub fn new(project_id: &str, config_version: Option<i64>) -> UsageContext {
        UsageContext {
            project_id: project_id.to_owned(),
            conversation_id: None,
            message_id: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            config_version,
        }
    }

    /// Prices `attempt` with the prices in force on its day (UTC; for
    /// self-hosted models the admin's internal rates) and builds its ledger
    /// row, labelled with what the call was for.
    pub fn row(
        &self,
        catalog: &Catalog,
        rates: &[InternalRate],
        attempt: &AttemptRecord,
        operation: UsageOperation,
    ) -> (UsageRow, Cost) {
        let usage = token_usage(&attempt.usage, attempt.usage_estimated);
        let day = chrono::DateTime::<chrono::Utc>::from(attempt.started_at)
            .format("%Y-%m-%d")
            .to_string();
        let cost = attempt_cost(
            catalog.model(&attempt.model),
            &usage,
            &day,
            millis(attempt.latency),
            rates,
        );
        let row = UsageRow {
            usage_id: uuid::Uuid::new_v4().to_string(),
            project_id: self.project_id.clone(),
            conversation_id: self.conversation_id.clone(),
            message_id: self.message_id.clone(),
            request_id: self.request_id.clone(),
            attempt: i64::from(attempt.attempt),
            provider: attempt.provider.as_str().to_owned(),
            model: attempt.model.clone(),
            config_version: self.config_version,
            role: attempt.role,
            is_fallback: attempt.role != TargetRole::Primary,
            streamed: attempt.streamed,
            managed_key: attempt.managed_key,
            operation,
            input_tokens: tokens(usage.input_tokens),
            cache_read_tokens: tokens(usage.cache_read_tokens),
            cache_write_tokens: tokens(usage.cache_write_tokens),
            output_tokens: tokens(usage.output_tokens),
            reasoning_tokens: tokens(usage.reasoning_tokens),
            usage_estimated: attempt.usage_estimated,
            raw_usage: (!attempt.usage.raw.is_null()).then(|| attempt.usage.raw.to_string()),
            cost_nanos: cost.nanos(),
            price_version: cost.price_version().map(str::to_owned),
            latency_ms: millis(attempt.latency),
            ttft_ms: attempt.ttft.map(millis),
            success: attempt.error.is_none(),
            error_class: attempt.error.as_ref().map(LlmError::class),
            error_message: attempt.error.as_ref().map(|e| e.message.clone()),
            created_at: attempt
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, millis),
        };
        (row, cost)
    }
}

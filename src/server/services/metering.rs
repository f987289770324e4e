//! The one attempt sink every path that calls a model uses (chat answers,
//! Compare on a sample, the program gateway): it prices each attempt the
//! router reports, adds it to the request's totals and queues its row for the
//! usage ledger, so no path can spend without its cost being recorded. The
//! knowledge base's embeddings are priced and recorded through it too.

use crate::model::catalog::ProviderId;
use crate::model::chat::TokenUsage;
use crate::model::costs::UsageOperation;
use crate::server::ledger::pricing::{token_usage, UsageContext};
use crate::server::llm::router::{AttemptRecord, AttemptSink};
use crate::server::state::AppState;
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;

/// What the attempts of one request cost so far, and how long they waited
/// on providers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// The priced attempts' cost, in nano-dollars.
    pub cost_nanos: i64,
    /// True once an attempt could not be priced (the total is then unknown).
    pub unpriced: bool,
    /// Time spent inside provider calls, every attempt's start to end.
    pub upstream: Duration,
}

impl Totals {
    /// The exact cost, or `None` when an attempt had no known price.
    pub fn cost(&self) -> Option<i64> {
        (!self.unpriced).then_some(self.cost_nanos)
    }
}

/// What a request shows of its latest attempt when it did not complete.
#[derive(Debug, Clone)]
pub struct LastAttempt {
    /// The attempt's provider.
    pub provider: ProviderId,
    /// Its catalog model id.
    pub model: String,
    /// Its tokens (estimated when cut or stopped).
    pub usage: TokenUsage,
    /// Its first token, for streams.
    pub ttft: Option<Duration>,
}

/// Prices every attempt of one request and records it in the ledger.
pub struct MeteredSink {
    state: AppState,
    context: UsageContext,
    totals: Mutex<Totals>,
    last_attempt: Mutex<Option<LastAttempt>>,
}

impl MeteredSink {
    /// A sink billing attempts to `context` (project, conversation, request id).
    pub fn new(state: &AppState, context: UsageContext) -> MeteredSink {
        MeteredSink {
            state: state.clone(),
            context,
            totals: Mutex::new(Totals::default()),
            last_attempt: Mutex::new(None),
        }
    }

    /// The request's ledger context (its request id names the request).
    pub fn context(&self) -> &UsageContext {
        &self.context
    }

    /// What the attempts so far cost and waited.
    pub fn totals(&self) -> Totals {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest attempt, if any was made.
    pub fn last_attempt(&self) -> Option<LastAttempt> {
        self.last_attempt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl MeteredSink {
    /// Prices and records an attempt of any operation (chat attempts come
    /// through [`AttemptSink::record`]; a question's or a document's
    /// embeddings through here): its cost counts in the request's totals.
    pub async fn record_operation(&self, attempt: AttemptRecord, operation: UsageOperation) {
        let rates = self.state.internal_rates.snapshot();
        let (row, cost) = self
            .context
            .row(&self.state.catalog, &rates, &attempt, operation);
        {
            let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            match cost.nanos() {
                Some(nanos) => totals.cost_nanos += nanos,
                None => totals.unpriced = true,
            }
            totals.upstream += attempt.latency;
        }
        if operation == UsageOperation::Chat {
            *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(LastAttempt {
                provider: attempt.provider,
                model: attempt.model.clone(),
                usage: token_usage(&attempt.usage, attempt.usage_estimated),
                ttft: attempt.ttft,
            });
        }
        self.state.ledger.record(row).await;
    }
}

#[async_trait]
impl AttemptSink for MeteredSink {
    async fn record(&self, attempt: AttemptRecord) {
        self.record_operation(attempt, UsageOperation::Chat).await;
    }
}

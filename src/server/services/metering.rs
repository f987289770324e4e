//! The one attempt sink every path that calls a model uses (chat answers,
//! Compare on a sample, the program gateway): it prices each attempt the
//! router reports, adds it to the request's totals and queues its row for the
//! usage ledger, so no path can spend without its cost being recorded. The
//! knowledge base's embeddings and the image generations are priced and
//! recorded through it too, their single calls retried by
//! [`call_with_retries`].

use crate::model::catalog::ProviderId;
use crate::model::chat::TokenUsage;
use crate::model::costs::UsageOperation;
use crate::server::ledger::performance::RequestTally;
use crate::server::ledger::pricing::{token_usage, UsageContext};
use crate::server::llm::router::backoff::{advised_wait, backoff_ceiling, full_jitter};
use crate::server::llm::router::{AttemptRecord, AttemptSink, TargetRole};
use crate::server::llm::{LlmError, Usage};
use crate::server::state::AppState;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Tries of one single call (an embedding or image request: the first and
/// its retries; chat answers are the router's).
const CALL_ATTEMPTS: u32 = 4;
/// First backoff ceiling between tries; doubled each time.
const RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest wait between tries, advised by the provider or not.
const RETRY_CAP: Duration = Duration::from_secs(20);

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
    request: Mutex<Option<RequestTally>>,
}

impl MeteredSink {
    /// A sink billing attempts to `context` (project, conversation, request id).
    pub fn new(state: &AppState, context: UsageContext) -> MeteredSink {
        MeteredSink {
            state: state.clone(),
            context,
            totals: Mutex::new(Totals::default()),
            last_attempt: Mutex::new(None),
            request: Mutex::new(None),
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

    /// How the request's chat attempts went so far (`None` before the
    /// first), for its settlement.
    pub fn request_tally(&self) -> Option<RequestTally> {
        self.request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
            let mut request = self.request.lock().unwrap_or_else(|e| e.into_inner());
            match request.as_mut() {
                Some(tally) => tally.add(&row),
                None => *request = Some(RequestTally::start(&row)),
            }
            drop(request);
            *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(LastAttempt {
                provider: attempt.provider,
                model: attempt.model.clone(),
                usage: token_usage(&attempt.usage, attempt.usage_estimated),
                ttft: attempt.ttft,
            });
        }
        self.state.metrics.record(&row);
        self.state.ledger.record(row).await;
    }
}

#[async_trait]
impl AttemptSink for MeteredSink {
    async fn record(&self, attempt: AttemptRecord) {
        self.record_operation(attempt, UsageOperation::Chat).await;
    }
}

/// Whom a single call goes to, for its ledger rows.
#[derive(Debug, Clone)]
pub struct CallTarget {
    /// The provider billed.
    pub provider: ProviderId,
    /// The catalog model id.
    pub model: String,
    /// True when it spends Cover's managed key.
    pub managed_key: bool,
}

/// What one try of a single call answered, and the usage it billed.
pub struct Billed<T> {
    /// The answer.
    pub value: T,
    /// Its usage.
    pub usage: Usage,
    /// True when the usage is Cover's count, not the provider's.
    pub usage_estimated: bool,
}

/// Runs a single provider call (not a chat answer) with retries: every try is
/// a ledger row of `operation` through `sink`, a retryable failure is tried
/// again after the provider's `Retry-After` or a jittered backoff, up to
/// [`CALL_ATTEMPTS`] tries; the last failure is returned.
pub async fn call_with_retries<T, F, Fut>(
    sink: &MeteredSink,
    operation: UsageOperation,
    target: &CallTarget,
    mut call: F,
) -> Result<T, LlmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Billed<T>, LlmError>>,
{
    let mut attempt = 1;
    loop {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let outcome = call().await;
        let (usage, usage_estimated, error) = match &outcome {
            Ok(billed) => (billed.usage.clone(), billed.usage_estimated, None),
            Err(error) => (Usage::default(), true, Some(error.clone())),
        };
        let record = AttemptRecord {
            attempt,
            target_index: 0,
            role: TargetRole::Primary,
            provider: target.provider,
            model: target.model.clone(),
            streamed: false,
            managed_key: target.managed_key,
            usage,
            usage_estimated,
            started_at,
            latency: clock.elapsed(),
            ttft: None,
            trimmed_messages: 0,
            error,
        };
        sink.record_operation(record, operation).await;
        match outcome {
            Ok(billed) => return Ok(billed.value),
            Err(error) if error.is_retryable() && attempt < CALL_ATTEMPTS => {
                let wait = match error.retry_after() {
                    Some(advised) => advised_wait(advised, &mut rand::thread_rng()),
                    None => full_jitter(
                        backoff_ceiling(RETRY_BASE, RETRY_CAP, attempt),
                        &mut rand::thread_rng(),
                    ),
                };
                tokio::time::sleep(wait.min(RETRY_CAP)).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

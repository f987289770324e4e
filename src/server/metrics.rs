//! Prometheus metrics of every provider call (FR-008), for operators who watch
//! Cover with their own monitoring: recorded from each attempt's ledger row as
//! it is priced (the one attempt sink, `services::metering`), so the metrics,
//! the ledger and the Performance screen count the same attempts the same way,
//! and served as OpenMetrics text on `GET /metrics` to the bearer of the
//! operator's `COVER_METRICS_TOKEN` (without one, `/metrics` does not exist).
//! The provider call metrics carry OpenTelemetry's GenAI names and labels;
//! every label is bounded (provider, catalog model, operation, error class).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `gen_ai_client_operation_duration_seconds` | provider, model, operation, `error_type` | every attempt, request sent to last byte (histogram; `error_type` empty on success) |
//! | `gen_ai_client_token_usage` | provider, model, operation, `gen_ai_token_type` | `input` (cached included) and `output` tokens per attempt (histogram) |
//! | `gen_ai_client_operation_time_to_first_chunk_seconds` | provider, model, operation | first content token of successful streamed attempts (histogram) |
//! | `cover_llm_cost_nanodollars_total` | provider, model | priced cost, integer nano-dollars |
//! | `cover_llm_unpriced_attempts_total` | provider, model | attempts without a known price (never counted as $0) |
//! | `cover_llm_fallback_attempts_total` | provider, model, outcome | attempts of fallback and degraded targets, `success` or the error class |
//! | `cover_circuit_breakers` | provider, state | circuits of the provider's keys now `open` or `half_open` |
//! | `cover_ledger_queue_depth` | | writes waiting for the ledger's writer |
//! | `cover_ledger_commit_duration_seconds` | | each group commit of the ledger (histogram) |
//! | `cover_answers_in_flight` | | answers running on this server |

use crate::server::ledger::rows::UsageRow;
use crate::server::llm::router::TargetRole;
use crate::server::telemetry::gen_ai_provider_name;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_operation_name: &'static str,
    error_type: Option<&'static str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_operation_name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_operation_name: &'static str,
    gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    hold: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    gen_ai_provider_name: &'static str,
    state: &'static str,
}

/// Histogram buckets from `start`, multiplied by `factor` `count` times.
#[derive(Clone, Copy)]
struct Buckets {
    start: f64,
    factor: f64,
    count: u16,
}

impl Buckets {
    fn histogram(&self) -> Histogram {
        Histogram::new(exponential_buckets(self.start, self.factor, self.count))
    }
}

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        self.histogram()
    }
}

/// Durations: 10 ms to ~80 s (OpenTelemetry's advice for GenAI durations).
const DURATION_BUCKETS: Buckets = Buckets {
    start: 0.01,
    factor: 2.0,
    count: 14,
};
/// Tokens: 1 to ~67 million, by fours (OpenTelemetry's advice).
const TOKEN_BUCKETS: Buckets = Buckets {
    start: 1.0,
    factor: 4.0,
    count: 14,
};
/// Group commits: 0.1 ms to ~3 s.
const COMMIT_BUCKETS: Buckets = Buckets {
    start: 0.000_1,
    factor: 2.0,
    count: 16,
};

/// What the server is doing now, read when the metrics are scraped.
#[derive(Debug, Default, Clone)]
pub struct Live {
    /// Writes waiting for the ledger's writer.
    pub ledger_queue_depth: usize,
    /// Answers running on this server.
    pub answers_in_flight: usize,
    /// Circuits not closed: (provider, `open` or `half_open`) per key.
    pub circuits: Vec<(String, &'static str)>,
}

/// The registry, its metric families, and the token that may read them.
pub struct Metrics {
    token: Option<SecretString>,
    registry: Registry,
    duration: Family<OperationLabels, Histogram, Buckets>,
    tokens: Family<TokenLabels, Histogram, Buckets>,
    first_chunk: Family<CallLabels, Histogram, Buckets>,
    cost: Family<ModelLabels, Counter>,
    unpriced: Family<ModelLabels, Counter>,
    fallbacks: Family<OutcomeLabels, Counter>,
    admissions: Family<AdmissionLabels, Counter>,
    circuits: Family<CircuitLabels, Gauge>,
    queue_depth: Gauge,
    in_flight: Gauge,
    commit: Histogram,
}

impl Metrics {
    /// Metrics readable with `token` (none: not served at all).
    pub fn new(token: Option<SecretString>) -> Self {
        let mut registry = Registry::default();
        let duration = Family::new_with_constructor(DURATION_BUCKETS);
        let tokens = Family::new_with_constructor(TOKEN_BUCKETS);
        let first_chunk = Family::new_with_constructor(DURATION_BUCKETS);
        let cost = Family::<ModelLabels, Counter>::default();
        let unpriced = Family::<ModelLabels, Counter>::default();
        let fallbacks = Family::<OutcomeLabels, Counter>::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let circuits = Family::<CircuitLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let in_flight = Gauge::default();
        let commit = COMMIT_BUCKETS.histogram();
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of provider attempts, request sent to last byte; error_type set on failures",
            duration.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per provider attempt, by type (input includes cached input)",
            tokens.clone(),
        );
        registry.register(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "First content token of successful streamed attempts",
            first_chunk.clone(),
        );
        registry.register(
            "cover_llm_cost_nanodollars",
            "Priced cost of provider attempts, in nano-dollars",
            cost.clone(),
        );
        registry.register(
            "cover_llm_unpriced_attempts",
            "Provider attempts without a known price",
            unpriced.clone(),
        );
        registry.register(
            "cover_llm_fallback_attempts",
            "Attempts of fallback and degraded targets, by outcome",
            fallbacks.clone(),
        );
        registry.register(
            "cover_budget_admissions",
            "Answers admitted under a budget, by what holds their cost: a hold of their own, \
             a lease they drew on, or a lease they took",
            admissions.clone(),
        );
        registry.register(
            "cover_circuit_breakers",
            "Circuits of the provider's keys that are not closed, by state",
            circuits.clone(),
        );
        registry.register(
            "cover_ledger_queue_depth",
            "Writes waiting for the usage ledger's writer",
            queue_depth.clone(),
        );
        registry.register(
            "cover_ledger_commit_duration_seconds",
            "Duration of the usage ledger's group commits",
            commit.clone(),
        );
        registry.register(
            "cover_answers_in_flight",
            "Answers running on this server",
            in_flight.clone(),
        );
        Metrics {
            token,
            registry,
            duration,
            tokens,
            first_chunk,
            cost,
            unpriced,
            fallbacks,
            admissions,
            circuits,
            queue_depth,
            in_flight,
            commit,
        }
    }

    /// The histogram the ledger's writer times its group commits in.
    pub fn commit_histogram(&self) -> Histogram {
        self.commit.clone()
    }
}

/// Whether `presented` is the token, compared in constant time (as digests).
fn same_token(token: &SecretString, presented: &str) -> bool {
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    let given = Sha256::digest(presented.as_bytes());
    expected
        .iter()
        .zip(given.iter())
        .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Counts an answer admitted under a budget; `hold` is `own`, `lease`
    /// or `new_lease` (what holds its cost).
    pub fn admitted(&self, hold: &'static str) {
        self.admissions
            .get_or_create(&AdmissionLabels { hold })
            .inc();
    }

    /// Counts one priced attempt.
    pub fn record(&self, row: &UsageRow) {
        let provider = gen_ai_provider_name(&row.provider);
        let model = || row.model.clone();
        let operation = row.operation.as_str();
        let seconds = |ms: i64| ms as f64 / 1000.0;
        self.duration
            .get_or_create(&OperationLabels {
                gen_ai_provider_name: provider,
                gen_ai_request_model: model(),
                gen_ai_operation_name: operation,
                error_type: row.error_class.map(|class| class.as_str()),
            })
            .observe(seconds(row.latency_ms));
        if row.success {
            if let Some(ttft) = row.ttft_ms.filter(|_| row.streamed) {
                self.first_chunk
                    .get_or_create(&CallLabels {
                        gen_ai_provider_name: provider,
                        gen_ai_request_model: model(),
                        gen_ai_operation_name: operation,
                    })
                    .observe(seconds(ttft));
            }
        }
        let input = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens;
        for (kind, tokens) in [("input", input), ("output", row.output_tokens)] {
            if tokens > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        gen_ai_provider_name: provider,
                        gen_ai_request_model: model(),
                        gen_ai_operation_name: operation,
                        gen_ai_token_type: kind,
                    })
                    .observe(tokens as f64);
            }
        }
        let labels = ModelLabels {
            gen_ai_provider_name: provider,
            gen_ai_request_model: model(),
        };
        match row.cost_nanos {
            Some(nanos) => {
                self.cost.get_or_create(&labels).inc_by(count(nanos));
            }
            None => {
                self.unpriced.get_or_create(&labels).inc();
            }
        }
        if row.role != TargetRole::Primary {
            self.fallbacks
                .get_or_create(&OutcomeLabels {
                    gen_ai_provider_name: provider,
                    gen_ai_request_model: model(),
                    outcome: row.error_class.map_or("success", |class| class.as_str()),
                })
                .inc();
        }
    }

    /// What a request presenting `presented` may read: `None` when no token
    /// is configured (metrics are not served), else whether it is the token.
    pub fn admits(&self, presented: Option<&str>) -> Option<bool> {
        let token = self.token.as_ref()?;
        Some(presented.is_some_and(|p| same_token(token, p)))
    }

    /// The OpenMetrics text exposition, with the server's `live` figures.
    pub fn encode(&self, live: &Live) -> String {
        self.queue_depth.set(gauge(live.ledger_queue_depth));
        self.in_flight.set(gauge(live.answers_in_flight));
        self.circuits.clear();
        for (provider, state) in &live.circuits {
            self.circuits
                .get_or_create(&CircuitLabels {
                    gen_ai_provider_name: gen_ai_provider_name(provider),
                    state,
                })
                .inc();
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_reads_and_none_configured_serves_nothing() {
        let metrics = Metrics::new(Some(SecretString::from("s3cret".to_owned())));
        assert_eq!(metrics.admits(Some("s3cret")), Some(true));
        assert_eq!(metrics.admits(Some("s3cre")), Some(false));
        assert_eq!(metrics.admits(None), Some(false));
        assert_eq!(Metrics::new(None).admits(Some("s3cret")), None);
        assert!(metrics.encode(&Live::default()).ends_with("# EOF\n"));
    }
}

//! Prometheus metrics of every provider call (FR-008), for operators who watch
//! Cover with their own monitoring: recorded from each attempt's ledger row as
//! it is priced (the one attempt sink, `services::metering`), so the metrics,
//! the ledger and the Performance screen count the same attempts the same way,
//! and served as OpenMetrics text on `GET /metrics` to the bearer of the
//! operator's `COVER_METRICS_TOKEN` (without one, `/metrics` does not exist).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `cover_llm_attempts_total` | provider, model, operation, outcome | attempts; `outcome` is `success` or the router's error class |
//! | `cover_llm_attempt_duration_seconds` | provider, model, operation | latency of successful attempts (histogram) |
//! | `cover_llm_time_to_first_token_seconds` | provider, model | first token of successful streamed attempts (histogram) |
//! | `cover_llm_tokens_total` | provider, model, kind | `input`, `cache_read`, `cache_write`, `output` tokens |
//! | `cover_llm_cost_nanodollars_total` | provider, model | priced cost, integer nano-dollars |
//! | `cover_llm_unpriced_attempts_total` | provider, model | attempts without a known price (never counted as $0) |

use crate::server::ledger::rows::UsageRow;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    provider: String,
    model: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    model: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: String,
    model: String,
    kind: &'static str,
}

/// Histogram buckets, in seconds, from `start` doubling `count` times.
#[derive(Clone, Copy)]
struct Buckets {
    start: f64,
    count: u16,
}

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(self.start, 2.0, self.count))
    }
}

/// Latency: 50 ms to ~100 s.
const LATENCY_BUCKETS: Buckets = Buckets {
    start: 0.05,
    count: 12,
};
/// First token: 10 ms to ~20 s.
const FIRST_TOKEN_BUCKETS: Buckets = Buckets {
    start: 0.01,
    count: 12,
};

/// The registry, its metric families, and the token that may read them.
pub struct Metrics {
    token: Option<SecretString>,
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<CallLabels, Histogram, Buckets>,
    first_token: Family<ModelLabels, Histogram, Buckets>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, Counter>,
    unpriced: Family<ModelLabels, Counter>,
}

impl Metrics {
    /// Metrics readable with `token` (none: not served at all).
    pub fn new(token: Option<SecretString>) -> Self {
        let mut registry = Registry::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let latency = Family::new_with_constructor(LATENCY_BUCKETS);
        let first_token = Family::new_with_constructor(FIRST_TOKEN_BUCKETS);
        let tokens = Family::<TokenLabels, Counter>::default();
        let cost = Family::<ModelLabels, Counter>::default();
        let unpriced = Family::<ModelLabels, Counter>::default();
        registry.register(
            "cover_llm_attempts",
            "Provider attempts by outcome (success or the router's error class)",
            attempts.clone(),
        );
        registry.register(
            "cover_llm_attempt_duration_seconds",
            "Latency of successful provider attempts, request sent to last byte",
            latency.clone(),
        );
        registry.register(
            "cover_llm_time_to_first_token_seconds",
            "First content token of successful streamed attempts",
            first_token.clone(),
        );
        registry.register(
            "cover_llm_tokens",
            "Tokens billed by provider attempts, by kind",
            tokens.clone(),
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
        Metrics {
            token,
            registry,
            attempts,
            latency,
            first_token,
            tokens,
            cost,
            unpriced,
        }
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

impl Metrics {
    /// Counts one priced attempt.
    pub fn record(&self, row: &UsageRow) {
        let model = ModelLabels {
            provider: row.provider.clone(),
            model: row.model.clone(),
        };
        let outcome = match row.error_class {
            None => "success".to_owned(),
            Some(class) => class.as_str().to_owned(),
        };
        self.attempts
            .get_or_create(&AttemptLabels {
                provider: row.provider.clone(),
                model: row.model.clone(),
                operation: row.operation.as_str().to_owned(),
                outcome,
            })
            .inc();
        if row.success {
            self.latency
                .get_or_create(&CallLabels {
                    provider: row.provider.clone(),
                    model: row.model.clone(),
                    operation: row.operation.as_str().to_owned(),
                })
                .observe(row.latency_ms as f64 / 1000.0);
            if let Some(ttft) = row.ttft_ms {
                self.first_token
                    .get_or_create(&model)
                    .observe(ttft as f64 / 1000.0);
            }
        }
        for (kind, tokens) in [
            ("input", row.input_tokens),
            ("cache_read", row.cache_read_tokens),
            ("cache_write", row.cache_write_tokens),
            ("output", row.output_tokens),
        ] {
            if tokens > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        provider: row.provider.clone(),
                        model: row.model.clone(),
                        kind,
                    })
                    .inc_by(count(tokens));
            }
        }
        match row.cost_nanos {
            Some(nanos) => {
                self.cost.get_or_create(&model).inc_by(count(nanos));
            }
            None => {
                self.unpriced.get_or_create(&model).inc();
            }
        }
    }

    /// What a request presenting `presented` may read: `None` when no token
    /// is configured (metrics are not served), else whether it is the token.
    pub fn admits(&self, presented: Option<&str>) -> Option<bool> {
        let token = self.token.as_ref()?;
        Some(presented.is_some_and(|p| same_token(token, p)))
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
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
        assert!(metrics.encode().ends_with("# EOF\n"));
    }
}

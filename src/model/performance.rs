//! How providers perform (FR-008, AC-007): the definitions every performance
//! figure uses, once, and the report the Performance screen and
//! `GET /api/projects/:id/llm-performance` show.
//!
//! Definitions (all from the usage ledger, one row per attempt):
//! * **Attempt**: one call to one provider's model (a retry is another).
//! * **Answer**: one request (chat answer, comparison, gateway call): the
//!   attempts sharing its request id. It belongs to the model that answered
//!   it, or, when none did, to the model it was asked of (its first attempt).
//! * **Success**: an attempt that produced a complete answer. A rate-limited
//!   (429), failed or cancelled attempt is never a success.
//! * **Error classes**: the router's failure classes, as
//!   [`ErrorClass`](crate::model::chat::ErrorClass) names them (`rateLimited`,
//!   `quotaExhausted`, `overloaded`, `transient` — timeouts and broken streams
//!   included —, `auth`, `invalidRequest`, `contextTooLong`, `contentFiltered`,
//!   `cancelled`, `invalidParameter`).
//! * **Latency**: from the router sending the request to the answer's last
//!   byte, of successful attempts, in seconds (what the provider took; Cover's
//!   own part is sub-millisecond, see the gateway's `x-cover-overhead-ms`).
//! * **TTFT**: the router's stream reader seeing the first content token,
//!   stamped once per attempt; streamed successful attempts only.
//! * **Output speed**: output tokens per second of successful attempts
//!   (their output tokens over their latencies).
//! * **Fallback activation**: the share of answers first asked of a model
//!   that went on to another; **fallback success**: of those, the share that
//!   another model answered. A fallback's answer is a success of the answer
//!   and a failure of the primary attempt.
//! * **Satisfaction**: thumbs-up share of the rated answers a model gave,
//!   with the count and a 95 % Wilson interval.
//! * A percentile over fewer than [`MIN_PERCENTILE_SAMPLES`] values carries
//!   `lowSample: true` with its `n`: never shown as a bare number.

use crate::model::catalog::ProviderId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fewest values a percentile is shown plainly for.
pub const MIN_PERCENTILE_SAMPLES: usize = 20;

/// p50, p95 and p99 of some durations, in seconds, and over how many.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// How many values.
    pub n: usize,
    /// Median, seconds (`None` without values).
    pub p50: Option<f64>,
    /// 95th percentile, seconds.
    pub p95: Option<f64>,
    /// 99th percentile, seconds.
    pub p99: Option<f64>,
    /// Fewer than [`MIN_PERCENTILE_SAMPLES`] values: shown with `n`, marked.
    pub low_sample: bool,
}

impl Percentiles {
    /// The percentiles of `millis` (any order), in seconds: nearest rank.
    pub fn of_millis(mut millis: Vec<i64>) -> Percentiles {
        millis.sort_unstable();
        Percentiles::ranked(millis.len(), |index| millis[index] as f64)
    }

    /// The percentiles of a histogram's durations, in seconds: the nearest
    /// rank's bin, within [`LatencyHistogram`]'s error of the exact value.
    pub fn of_histogram(histogram: &LatencyHistogram) -> Percentiles {
        let n = histogram.samples() as usize;
        Percentiles::ranked(n, |index| histogram.value_at(index as u64))
    }

    /// Nearest rank over `n` ordered values, `value(i)` the `i`-th in ms.
    fn ranked(n: usize, value: impl Fn(usize) -> f64) -> Percentiles {
        let rank = |q: f64| -> Option<f64> {
            (n > 0).then(|| {
                let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
                value(index) / 1000.0
            })
        };
        Percentiles {
            n,
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            low_sample: n < MIN_PERCENTILE_SAMPLES,
        }
    }
}

/// Durations below this many ms have a bin each (exact).
const EXACT_BELOW_MS: i64 = 50;
/// Above [`EXACT_BELOW_MS`], each bin is this much wider than the one before:
/// a bin's middle is within 2 % of every value in it.
const BIN_GROWTH: f64 = 1.04;

/// Durations counted in fixed log-spaced bins (the performance rollups keep
/// one per model and day): exact below 50 ms, then bins 4 % wide, so a
/// percentile read from them is within 2 % of the exact one, however many
/// values went in, and the bins of days and models add up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    counts: BTreeMap<i64, u64>,
}

impl LatencyHistogram {
    /// The bin a duration of `ms` falls in.
    pub fn bin_of(ms: i64) -> i64 {
        if ms < EXACT_BELOW_MS {
            return ms.max(0);
        }
        let steps = ((ms as f64) / EXACT_BELOW_MS as f64).ln() / BIN_GROWTH.ln();
        EXACT_BELOW_MS + steps.floor() as i64
    }

    /// The value a bin stands for, in ms: itself below 50 ms, else the
    /// geometric middle of its range.
    pub fn bin_value(bin: i64) -> f64 {
        if bin < EXACT_BELOW_MS {
            return bin as f64;
        }
        EXACT_BELOW_MS as f64 * BIN_GROWTH.powf((bin - EXACT_BELOW_MS) as f64 + 0.5)
    }

    /// Counts `samples` values in `bin`.
    pub fn add(&mut self, bin: i64, samples: u64) {
        *self.counts.entry(bin).or_default() += samples;
    }

    /// How many values it holds.
    pub fn samples(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The value of the `index`-th smallest value's bin (0-based), in ms.
    fn value_at(&self, index: u64) -> f64 {
        let mut seen = 0;
        for (&bin, &samples) in &self.counts {
            seen += samples;
            if seen > index {
                return LatencyHistogram::bin_value(bin);
            }
        }
        self.counts
            .keys()
            .next_back()
            .map_or(0.0, |&bin| LatencyHistogram::bin_value(bin))
    }
}

/// Thumbs up and down on the answers of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Satisfaction {
    /// Thumbs up.
    pub up: u64,
    /// Thumbs down.
    pub down: u64,
    /// Up share of the rated answers (`None` when none is rated).
    pub share: Option<f64>,
    /// 95 % Wilson interval of the share: lower bound.
    pub low: Option<f64>,
    /// Upper bound.
    pub high: Option<f64>,
}

impl Satisfaction {
    /// From the counts, with the 95 % Wilson score interval.
    pub fn new(up: u64, down: u64) -> Satisfaction {
        let n = (up + down) as f64;
        if n == 0.0 {
            return Satisfaction {
                up,
                down,
                ..Satisfaction::default()
            };
        }
        let z = 1.959_963_984_540_054_f64;
        let p = up as f64 / n;
        let denominator = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denominator;
        let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / denominator;
        Satisfaction {
            up,
            down,
            share: Some(p),
            low: Some((centre - half).max(0.0)),
            high: Some((centre + half).min(1.0)),
        }
    }
}

/// The figures of one provider's model over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModelPerformance {
    /// The provider.
    pub provider: Option<ProviderId>,
    /// The catalog model id.
    pub model: String,
    /// Its display name.
    pub name: String,
    /// Attempts made of it.
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// `successes / attempts`.
    pub success_rate: Option<f64>,
    /// Failed attempts by error class.
    pub errors: BTreeMap<String, u64>,
    /// `1 − success_rate`.
    pub error_rate: Option<f64>,
    /// Answers it gave, or was asked for and none gave.
    pub answers: u64,
    /// Latency of its successful attempts.
    pub latency: Percentiles,
    /// Time to first token of its streamed successful attempts.
    pub ttft: Percentiles,
    /// Output tokens per second of its successful attempts.
    pub output_tokens_per_second: Option<f64>,
    /// Answers first asked of it.
    pub asked_first: u64,
    /// Of those, the share that went on to another model.
    pub fallback_activation_rate: Option<f64>,
    /// Of the answers that went on, the share another model answered.
    pub fallback_success_rate: Option<f64>,
    /// Thumbs on its answers.
    pub satisfaction: Satisfaction,
}

/// Latency in one time bucket, for the charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PerformancePoint {
    /// The bucket's first day, `YYYY-MM-DD`.
    pub start: String,
    /// Attempts in it.
    pub attempts: u64,
    /// Failed attempts in it.
    pub errors: u64,
    /// Latency of its successful attempts.
    pub latency: Percentiles,
    /// TTFT of its streamed successful attempts.
    pub ttft: Percentiles,
}

/// The performance report of a project (or, for admins, the workspace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PerformanceReport {
    /// First day covered, `YYYY-MM-DD`.
    pub from: String,
    /// Last day covered.
    pub to: String,
    /// One line per model, most attempts first.
    pub models: Vec<ModelPerformance>,
    /// Every model together, over time.
    pub series: Vec<PerformancePoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_and_mark_small_samples() {
        let all = Percentiles::of_millis((1..=100).rev().collect());
        assert_eq!(
            (all.p50, all.p95, all.p99),
            (Some(0.05), Some(0.095), Some(0.099))
        );
        assert!(!all.low_sample);
        let few = Percentiles::of_millis(vec![1200, 800]);
        assert_eq!((few.n, few.p50, few.p99), (2, Some(0.8), Some(1.2)));
        assert!(few.low_sample);
        assert_eq!(Percentiles::of_millis(Vec::new()).p50, None);
    }

    #[test]
    fn percentiles_from_the_histogram_are_within_two_percent_of_the_exact_ones() {
        // A long-tailed spread of latencies, 3 ms to 10 minutes.
        let mut state = 42_u64;
        let mut millis = Vec::new();
        for _ in 0..50_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 11) as f64 / (1_u64 << 53) as f64;
            millis.push((3.0 * (200_000.0_f64).powf(unit)) as i64);
        }
        let mut histogram = LatencyHistogram::default();
        for &ms in &millis {
            histogram.add(LatencyHistogram::bin_of(ms), 1);
        }
        let exact = Percentiles::of_millis(millis.clone());
        let binned = Percentiles::of_histogram(&histogram);
        assert_eq!(binned.n, exact.n);
        for (e, b) in [
            (exact.p50, binned.p50),
            (exact.p95, binned.p95),
            (exact.p99, binned.p99),
        ] {
            let (e, b) = (e.unwrap(), b.unwrap());
            assert!(
                (b - e).abs() <= 0.02 * e,
                "exact {e} s, from the histogram {b} s"
            );
        }
        // Below 50 ms every millisecond is its own bin: exact.
        let mut small = LatencyHistogram::default();
        for ms in [7, 7, 12, 49] {
            small.add(LatencyHistogram::bin_of(ms), 1);
        }
        let p = Percentiles::of_histogram(&small);
        assert_eq!((p.n, p.p50, p.p99), (4, Some(0.007), Some(0.049)));
        assert!(p.low_sample);
        // Every value of a bin is within 2 % of the bin's value.
        for ms in 50..700_000 {
            let value = LatencyHistogram::bin_value(LatencyHistogram::bin_of(ms));
            assert!(
                (value - ms as f64).abs() <= 0.02 * ms as f64,
                "{ms} ms -> {value}"
            );
        }
    }

    #[test]
    fn the_wilson_interval_matches_its_textbook_values() {
        // 8 of 10: p = 0.8, 95 % Wilson interval 0.490–0.943.
        let s = Satisfaction::new(8, 2);
        assert_eq!(s.share, Some(0.8));
        assert!((s.low.unwrap() - 0.4902).abs() < 1e-3, "{s:?}");
        assert!((s.high.unwrap() - 0.9433).abs() < 1e-3, "{s:?}");
        let none = Satisfaction::new(0, 0);
        assert_eq!((none.share, none.low), (None, None));
        let all = Satisfaction::new(5, 0);
        assert_eq!(all.high, Some(1.0));
    }
}

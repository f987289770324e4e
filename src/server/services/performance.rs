//! The performance report (FR-008) from the performance rollups of the usage
//! ledger and the ratings: the figures [`crate::model::performance`]
//! defines, per provider's model and over time, for one project or the whole
//! workspace.

use crate::model::catalog::ProviderId;
use crate::model::costs::UsageFilter;
use crate::model::performance::{
    LatencyHistogram, ModelPerformance, Percentiles, PerformancePoint, PerformanceReport,
    Satisfaction,
};
use crate::model::recommend::{self, Observations};
use crate::server::db::now_ms;
use crate::server::error::Result;
use crate::server::ledger::{performance, reports};
use crate::server::services::costs::{self, Selection};
use crate::server::state::AppState;
use std::collections::{BTreeMap, HashMap};

/// What the project measured of each model in the filter's period, for the
/// recommendations (satisfaction and latency from the performance report).
pub async fn observations(
    state: &AppState,
    project_id: &str,
    filter: &UsageFilter,
) -> Result<Observations> {
    Ok(recommend::observations(
        &report(state, Some(project_id), filter).await?,
    ))
}

/// The performance report of `project_id` (or, `None`, the workspace), from
/// the performance rollups: a few thousand rows whatever the traffic.
pub async fn report(
    state: &AppState,
    project_id: Option<&str>,
    filter: &UsageFilter,
) -> Result<PerformanceReport> {
    let today = costs::date_of(now_ms());
    let selection = costs::select(state, project_id, filter, today).await?;
    let scope = selection.scope(project_id);
    let pool = &state.db.pool;
    let (totals, errors, bins, days, day_bins) = tokio::try_join!(
        reports::performance_by_model(pool, &scope),
        reports::errors_by_model(pool, &scope),
        reports::latency_by_model(pool, &scope),
        reports::performance_by_day(pool, &scope),
        reports::latency_by_day(pool, &scope),
    )?;
    let mut errors_of: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for (model, class, attempts) in errors {
        *errors_of
            .entry(model)
            .or_default()
            .entry(class)
            .or_default() += count(attempts);
    }
    let mut histograms: HashMap<(String, String), LatencyHistogram> = HashMap::new();
    for (model, measure, bin, samples) in bins {
        histograms
            .entry((model, measure))
            .or_default()
            .add(bin, count(samples));
    }
    let mut percentiles = |model: &str, measure: &str| {
        Percentiles::of_histogram(
            &histograms
                .remove(&(model.to_owned(), measure.to_owned()))
                .unwrap_or_default(),
        )
    };
    let ratio = |part: i64, whole: i64| (whole > 0).then(|| part as f64 / whole as f64);
    let mut models: Vec<ModelPerformance> = Vec::with_capacity(totals.len());
    for t in totals
        .into_iter()
        .filter(|t| t.attempts > 0 || t.answers > 0)
    {
        models.push(ModelPerformance {
            provider: ProviderId::parse(&t.provider),
            name: state
                .catalog
                .model(&t.model)
                .map_or_else(|| t.model.clone(), |m| m.name.clone()),
            attempts: count(t.attempts),
            successes: count(t.successes),
            success_rate: ratio(t.successes, t.attempts),
            error_rate: ratio(t.attempts - t.successes, t.attempts),
            errors: errors_of.remove(&t.model).unwrap_or_default(),
            answers: count(t.answers),
            latency: percentiles(&t.model, performance::LATENCY),
            ttft: percentiles(&t.model, performance::TTFT),
            output_tokens_per_second: (t.success_latency_ms > 0)
                .then(|| t.success_output_tokens as f64 * 1000.0 / t.success_latency_ms as f64),
            asked_first: count(t.asked_first),
            fallback_activation_rate: ratio(t.went_on, t.asked_first),
            fallback_success_rate: ratio(t.rescued, t.went_on),
            satisfaction: Satisfaction::new(count(t.rated_up), count(t.rated_down)),
            model: t.model,
        });
    }
    models.sort_by(|a, b| b.attempts.cmp(&a.attempts).then(a.model.cmp(&b.model)));
    Ok(PerformanceReport {
        from: selection.from.to_string(),
        to: selection.to.to_string(),
        models,
        series: series(&selection, days, day_bins),
    })
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// What one bucket of the series adds up.
#[derive(Default)]
struct Bucket {
    attempts: u64,
    errors: u64,
    latency: LatencyHistogram,
    ttft: LatencyHistogram,
}

/// Latency, TTFT and errors per bucket of the period, every bucket shown:
/// each day's rollups added into its bucket.
fn series(
    selection: &Selection,
    days: Vec<(i64, i64, i64)>,
    bins: Vec<reports::LatencyBin<i64>>,
) -> Vec<PerformancePoint> {
    let mut buckets: BTreeMap<chrono::NaiveDate, Bucket> = selection
        .buckets()
        .map(|day| (day, Bucket::default()))
        .collect();
    let bucket_of =
        |day_ms: i64| costs::bucket_start(costs::date_of(day_ms), selection.granularity);
    for (day, attempts, successes) in days {
        let bucket = buckets.entry(bucket_of(day)).or_default();
        bucket.attempts += count(attempts);
        bucket.errors += count(attempts - successes);
    }
    for (day, measure, bin, samples) in bins {
        let bucket = buckets.entry(bucket_of(day)).or_default();
        let histogram = if measure == performance::TTFT {
            &mut bucket.ttft
        } else {
            &mut bucket.latency
        };
        histogram.add(bin, count(samples));
    }
    buckets
        .into_iter()
        .map(|(day, bucket)| PerformancePoint {
            start: day.to_string(),
            attempts: bucket.attempts,
            errors: bucket.errors,
            latency: Percentiles::of_histogram(&bucket.latency),
            ttft: Percentiles::of_histogram(&bucket.ttft),
        })
        .collect()
}

//! The performance report (FR-008) from the usage ledger and the ratings:
//! the figures [`crate::model::performance`] defines, per provider's model
//! and over time, for one project or the whole workspace.

use crate::model::catalog::ProviderId;
use crate::model::costs::UsageFilter;
use crate::model::performance::{
    ModelPerformance, Percentiles, PerformancePoint, PerformanceReport, Satisfaction,
};
use crate::model::recommend::{self, Observations};
use crate::server::db::now_ms;
use crate::server::error::Result;
use crate::server::services::costs::{self, Selection};
use crate::server::state::AppState;
use sqlx::Row;
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

/// Most attempts one report reads (the latest of the period): a bound on
/// its memory and time whatever the traffic.
pub const MAX_ATTEMPTS: usize = 200_000;

/// One ledger row as the report reads it.
struct Attempt {
    request_id: String,
    attempt: i64,
    provider: String,
    model: String,
    success: bool,
    error_class: Option<String>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    streamed: bool,
    output_tokens: i64,
    created_at: i64,
    rating: Option<String>,
}

async fn attempts(
    state: &AppState,
    selection: &Selection,
    project_id: Option<&str>,
) -> Result<(Vec<Attempt>, bool)> {
    let scope = selection.scope(project_id);
    let mut sql = String::from(
        "select u.request_id, u.attempt, u.provider, u.model, u.success, u.error_class, \
         u.latency_ms, u.ttft_ms, u.streamed, u.output_tokens, u.created_at, m.rating \
         from llm_usage u left join message m on m.message_id = u.message_id \
         where u.operation = 'chat' and u.created_at >= $1 and u.created_at < $2",
    );
    let mut texts = Vec::new();
    for (column, value) in [
        ("project_id", &scope.project_id),
        ("provider", &scope.provider),
        ("model", &scope.model),
    ] {
        if let Some(value) = value {
            texts.push(value.clone());
            sql.push_str(&format!(" and u.{column} = ${}", texts.len() + 2));
        }
    }
    sql.push_str(&format!(
        " order by u.created_at desc limit {}",
        MAX_ATTEMPTS + 1
    ));
    let mut query = sqlx::query(&sql).bind(scope.start_ms).bind(scope.end_ms);
    for text in &texts {
        query = query.bind(text.as_str());
    }
    let rows = query.fetch_all(&state.db.pool).await?;
    let truncated = rows.len() > MAX_ATTEMPTS;
    let attempts = rows
        .iter()
        .take(MAX_ATTEMPTS)
        .map(|row| Attempt {
            request_id: row.get("request_id"),
            attempt: row.get("attempt"),
            provider: row.get("provider"),
            model: row.get("model"),
            success: row.get::<i64, _>("success") == 1,
            error_class: row.get("error_class"),
            latency_ms: row.get("latency_ms"),
            ttft_ms: row.get("ttft_ms"),
            streamed: row.get::<i64, _>("streamed") == 1,
            output_tokens: row.get("output_tokens"),
            created_at: row.get("created_at"),
            rating: row.get("rating"),
        })
        .collect();
    Ok((attempts, truncated))
}

/// What one model's figures are summed from.
#[derive(Default)]
struct Tally {
    provider: String,
    attempts: u64,
    successes: u64,
    errors: BTreeMap<String, u64>,
    answers: u64,
    latencies: Vec<i64>,
    ttfts: Vec<i64>,
    output_tokens: i64,
    success_ms: i64,
    asked_first: u64,
    went_on: u64,
    rescued: u64,
    up: u64,
    down: u64,
}

/// The performance report of `project_id` (or, `None`, the workspace).
pub async fn report(
    state: &AppState,
    project_id: Option<&str>,
    filter: &UsageFilter,
) -> Result<PerformanceReport> {
    let today = costs::date_of(now_ms());
    let selection = costs::select(state, project_id, filter, today).await?;
    let (attempts, truncated) = attempts(state, &selection, project_id).await?;

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut requests: HashMap<&str, Vec<&Attempt>> = HashMap::new();
    for attempt in &attempts {
        let tally = tallies.entry(attempt.model.clone()).or_default();
        tally.provider = attempt.provider.clone();
        tally.attempts += 1;
        if attempt.success {
            tally.successes += 1;
            tally.latencies.push(attempt.latency_ms);
            tally.output_tokens += attempt.output_tokens;
            tally.success_ms += attempt.latency_ms;
            if attempt.streamed {
                tally.ttfts.extend(attempt.ttft_ms);
            }
        } else {
            let class = attempt
                .error_class
                .clone()
                .unwrap_or_else(|| "unknown".into());
            *tally.errors.entry(class).or_default() += 1;
        }
        requests
            .entry(&attempt.request_id)
            .or_default()
            .push(attempt);
    }
    for attempts in requests.values_mut() {
        attempts.sort_by_key(|a| a.attempt);
        let first = attempts[0];
        let answered = attempts.iter().find(|a| a.success);
        let owner = answered.copied().unwrap_or(first);
        if let Some(tally) = tallies.get_mut(&owner.model) {
            tally.answers += 1;
            match owner.rating.as_deref() {
                Some("up") => tally.up += 1,
                Some("down") => tally.down += 1,
                _ => {}
            }
        }
        if let Some(tally) = tallies.get_mut(&first.model) {
            tally.asked_first += 1;
            if attempts.iter().any(|a| a.model != first.model) {
                tally.went_on += 1;
                if answered.is_some_and(|a| a.model != first.model) {
                    tally.rescued += 1;
                }
            }
        }
    }
    let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    let mut models: Vec<ModelPerformance> = tallies
        .into_iter()
        .map(|(model, tally)| ModelPerformance {
            provider: ProviderId::parse(&tally.provider),
            name: state
                .catalog
                .model(&model)
                .map_or_else(|| model.clone(), |m| m.name.clone()),
            model,
            attempts: tally.attempts,
            successes: tally.successes,
            success_rate: ratio(tally.successes, tally.attempts),
            error_rate: ratio(tally.attempts - tally.successes, tally.attempts),
            errors: tally.errors,
            answers: tally.answers,
            latency: Percentiles::of_millis(tally.latencies),
            ttft: Percentiles::of_millis(tally.ttfts),
            output_tokens_per_second: (tally.success_ms > 0)
                .then(|| tally.output_tokens as f64 * 1000.0 / tally.success_ms as f64),
            asked_first: tally.asked_first,
            fallback_activation_rate: ratio(tally.went_on, tally.asked_first),
            fallback_success_rate: ratio(tally.rescued, tally.went_on),
            satisfaction: Satisfaction::new(tally.up, tally.down),
        })
        .collect();
    models.sort_by(|a, b| b.attempts.cmp(&a.attempts).then(a.model.cmp(&b.model)));
    Ok(PerformanceReport {
        from: selection.from.to_string(),
        to: selection.to.to_string(),
        models,
        series: series(&attempts, &selection),
        truncated,
    })
}

/// Latency, TTFT and errors per bucket of the period, every bucket shown.
fn series(attempts: &[Attempt], selection: &Selection) -> Vec<PerformancePoint> {
    let mut buckets: BTreeMap<chrono::NaiveDate, (u64, u64, Vec<i64>, Vec<i64>)> = selection
        .buckets()
        .map(|day| (day, Default::default()))
        .collect();
    for attempt in attempts {
        let day = costs::bucket_start(costs::date_of(attempt.created_at), selection.granularity);
        let bucket = buckets.entry(day).or_default();
        bucket.0 += 1;
        if attempt.success {
            bucket.2.push(attempt.latency_ms);
            if attempt.streamed {
                bucket.3.extend(attempt.ttft_ms);
            }
        } else {
            bucket.1 += 1;
        }
    }
    buckets
        .into_iter()
        .map(
            |(day, (attempts, errors, latencies, ttfts))| PerformancePoint {
                start: day.to_string(),
                attempts,
                errors,
                latency: Percentiles::of_millis(latencies),
                ttft: Percentiles::of_millis(ttfts),
            },
        )
        .collect()
}

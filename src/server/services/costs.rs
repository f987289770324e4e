//! Cost analysis from the usage ledger (FR-007, AC-005, mockup 3): a
//! project's report (totals, conversations, by model and provider, the series,
//! "what if", the recommendation, suggestions, the month-end projection and
//! the budget), the workspace dashboard and the CSV exports. Reports read the
//! daily rollups the ledger writer keeps, so their totals equal the ledger's
//! rows to the nano-dollar; exports stream the ledger rows themselves.

mod analysis;
mod projection;

use crate::error::AppError;
use crate::model::catalog::ProviderId;
use crate::model::costs::{CostReport, Granularity, SpendLine, UsageFilter, WorkspaceCosts};
use crate::model::money::format_decimal;
use crate::model::recommend::Observations;
use crate::server::db::{llm_configs, now_ms, projects};
use crate::server::error::{Error, Result};
use crate::server::ledger::reports::{self as usage_reports, DailyUsage, LedgerQuery, Scope};
use crate::server::ledger::rollups::MS_PER_DAY;
use crate::server::ledger::rows::UsageRow;
use crate::server::services::budgets;
use crate::server::state::AppState;
use analysis::{Comparable, Evidence, Tally};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, NaiveDate};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::BTreeMap;

/// The default period: the last 30 days, today included.
const DEFAULT_DAYS: i64 = 30;
/// The longest period a report or export covers.
const MAX_DAYS: i64 = 366;
/// Days of history the projection reads (eight weeks: weekday patterns).
const PROJECTION_HISTORY_DAYS: i64 = 56;
/// Conversations on the admin dashboard's most-expensive list.
const TOP_CONVERSATIONS: i64 = 10;
/// Bytes of CSV sent at once.
const CSV_CHUNK_BYTES: usize = 64 * 1024;
/// The export's header line.
const CSV_HEADER: &str = "time,project,conversation,message,attempt,provider,model,role,success,\
error_class,input_tokens,cache_read_tokens,cache_write_tokens,output_tokens,reasoning_tokens,\
estimated,cost_usd,price_version,latency_ms,ttft_ms\n";

/// A checked filter: the period (UTC days, both included) and the optional
/// provider and model (a catalog id, or a model the ledger has).
#[derive(Debug, Clone, PartialEq, Eq)]
/// A report's period and filters, checked (shared by the cost and the
/// performance reports: one home for the period rules).
pub struct Selection {
    /// First day covered.
    pub from: NaiveDate,
    /// Last day covered.
    pub to: NaiveDate,
    provider: Option<ProviderId>,
    model: Option<String>,
    /// The series' bucket size.
    pub granularity: Granularity,
}

impl Selection {
    /// The first day of every bucket of the period, oldest first.
    pub fn buckets(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        let mut last = None;
        self.from
            .iter_days()
            .take_while(|day| *day <= self.to)
            .map(|day| bucket_start(day, self.granularity))
            .filter(move |start| last.replace(*start) != Some(*start))
    }

    /// The usage it covers, in one project or (`None`) the workspace.
    pub fn scope(&self, project_id: Option<&str>) -> Scope {
        Scope {
            project_id: project_id.map(str::to_owned),
            start_ms: day_ms(self.from),
            end_ms: day_ms(self.to) + MS_PER_DAY,
            provider: self.provider.map(|p| p.as_str().to_owned()),
            model: self.model.clone(),
        }
    }
}

/// Unix ms of a UTC day's midnight.
fn day_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// The UTC date of a rollup day (or any instant, Unix ms).
pub fn date_of(day: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(day).map_or_else(NaiveDate::default, |t| t.date_naive())
}

fn invalid(field: &str, message: String) -> Error {
    Error::App(AppError::invalid(field, message))
}

/// Parses a `YYYY-MM-DD` filter date.
fn parse_day(field: &str, text: &str) -> Result<NaiveDate> {
    let text = text.trim();
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) if text.len() == 10 => Ok(day),
        _ => Err(invalid(
            field,
            format!("`{text}` is not a date; use YYYY-MM-DD (UTC)"),
        )),
    }
}

/// A filter value, with blank meaning "not given".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Checks a filter (422 naming the field) against `today`; the model must be
/// in the catalog or have usage in the scope.
pub async fn select(
    state: &AppState,
    project_id: Option<&str>,
    filter: &UsageFilter,
    today: NaiveDate,
) -> Result<Selection> {
    let to = given(&filter.to).map_or(Ok(today), |t| parse_day("to", t))?;
    let from = match given(&filter.from) {
        Some(text) => parse_day("from", text)?,
        None => to - Duration::days(DEFAULT_DAYS - 1),
    };
    if from > to {
        return Err(invalid(
            "from",
            format!("{from} is after `to` ({to}); the period must start before it ends"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(invalid(
            "from",
            format!("the period covers {days} days; at most {MAX_DAYS} are allowed"),
        ));
    }
    let model = match given(&filter.model) {
        None => None,
        Some(id) => Some(match state.catalog.model(id) {
            Some(model) => {
                if let Some(provider) = filter.provider.filter(|p| *p != model.provider) {
                    return Err(invalid(
                        "model",
                        format!(
                            "{} is a {} model, not a {provider} one",
                            model.id, model.provider
                        ),
                    ));
                }
                model.id.clone()
            }
            None if usage_reports::model_has_usage(&state.db.pool, project_id, id).await? => {
                id.to_owned()
            }
            None => {
                return Err(invalid(
                    "model",
                    format!("unknown model `{id}`; use a catalog model id"),
                ))
            }
        }),
    };
    Ok(Selection {
        from,
        to,
        provider: filter.provider,
        model,
        granularity: filter.granularity,
    })
}

/// Where a day falls: the first day of its bucket.
pub fn bucket_start(day: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Day => day,
        Granularity::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        Granularity::Month => day.with_day(1).unwrap_or(day),
    }
}

/// One line per bucket of the period, empty ones included, oldest first.
fn series(rows: &[DailyUsage], selection: &Selection) -> Vec<SpendLine> {
    let granularity = selection.granularity;
    let mut buckets: BTreeMap<NaiveDate, Tally> = selection
        .buckets()
        .map(|start| (start, Tally::default()))
        .collect();
    for row in rows {
        buckets
            .entry(bucket_start(date_of(row.day), granularity))
            .or_default()
            .add(row);
    }
    buckets
        .into_iter()
        .map(|(start, tally)| {
            let key = start.format("%Y-%m-%d").to_string();
            let label = match granularity {
                Granularity::Day => key.clone(),
                Granularity::Week => format!("Week of {key}"),
                Granularity::Month => start.format("%Y-%m").to_string(),
            };
            tally.line(key, label)
        })
        .collect()
}

/// Spend by model and by provider, labelled from the catalog.
fn model_and_provider_lines(
    state: &AppState,
    rows: &[DailyUsage],
) -> (Vec<SpendLine>, Vec<SpendLine>) {
    let catalog = &state.catalog;
    let by_model = analysis::lines_by(
        rows,
        |row| row.model.clone(),
        |id| {
            catalog
                .model(id)
                .map_or_else(|| id.to_owned(), |m| m.name.clone())
        },
    );
    let by_provider = analysis::lines_by(
        rows,
        |row| row.provider.clone(),
        |id| {
            ProviderId::parse(id)
                .and_then(|p| catalog.provider(p))
                .map_or_else(|| id.to_owned(), |p| p.name.clone())
        },
    );
    (by_model, by_provider)
}

/// The projection's input: the project's daily spend up to now.
fn spend_history(rows: &[DailyUsage], today: NaiveDate, now_ms: i64) -> projection::History {
    let first = today - Duration::days(PROJECTION_HISTORY_DAYS);
    let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for row in rows {
        *by_day.entry(date_of(row.day)).or_default() += row.sums.cost_nanos;
    }
    let spend_on = |day: NaiveDate| by_day.get(&day).copied().unwrap_or(0);
    let today_ms = day_ms(today);
    projection::History {
        days: first
            .iter_days()
            .take_while(|d| *d < today)
            .map(spend_on)
            .collect(),
        today,
        today_nanos: spend_on(today),
        today_elapsed: (now_ms - today_ms) as f64 / MS_PER_DAY as f64,
    }
}

/// A project's cost report for a period (default: the last 30 days);
/// `observed` is what the project measured of its models (the performance
/// report's), which the recommendation takes into account.
pub async fn report(
    state: &AppState,
    project_id: &str,
    filter: &UsageFilter,
    observed: &Observations,
) -> Result<CostReport> {
    let now = now_ms();
    let today = date_of(now);
    let pool = &state.db.pool;
    let selection = select(state, Some(project_id), filter, today).await?;
    let scope = selection.scope(Some(project_id));
    let history_scope = Scope {
        project_id: Some(project_id.to_owned()),
        start_ms: day_ms(today - Duration::days(PROJECTION_HISTORY_DAYS)),
        end_ms: day_ms(today) + MS_PER_DAY,
        provider: None,
        model: None,
    };
    let (rows, conversations, history, config, project, budget) = tokio::try_join!(
        usage_reports::daily(pool, &scope),
        usage_reports::conversation_totals(pool, &scope),
        usage_reports::daily(pool, &history_scope),
        llm_configs::latest(pool, project_id),
        projects::find(pool, project_id, ""),
        budgets::status(state, project_id),
    )?;
    let (Some(config), Some(project)) = (config, project) else {
        return Err(AppError::NotFound.into());
    };
    let catalog = &state.catalog;
    let current = catalog.model(&config.model);
    let current_model = current.map_or(config.model.clone(), |m| m.id.clone());
    let comparable = Comparable::of(&rows);
    let what_if = analysis::what_if(catalog, &comparable, &current_model);
    let recommendation = current.and_then(|current| {
        analysis::recommendation(
            catalog,
            project.use_case,
            current,
            &what_if,
            comparable.cost_nanos,
            observed,
        )
    });
    let suggestions = analysis::suggestions(&Evidence {
        catalog,
        rows: &rows,
        conversations: conversations.conversations,
        comparable: &comparable,
        what_if: &what_if,
    });
    let (by_model, by_provider) = model_and_provider_lines(state, &rows);
    Ok(CostReport {
        from: selection.from.to_string(),
        to: selection.to.to_string(),
        current_model_name: current.map_or_else(|| current_model.clone(), |m| m.name.clone()),
        current_model,
        total: Tally::of(&rows).line("total".into(), "Total".into()),
        conversations: conversations.conversations,
        avg_cost_per_conversation_nanos: crate::model::money::rounded_div(
            conversations.cost_nanos,
            conversations.conversations,
        ),
        by_model,
        by_provider,
        series: series(&rows, &selection),
        what_if,
        recommendation,
        suggestions,
        projection: projection::project(&spend_history(&history, today, now)),
        budget,
    })
}

/// Spend across the workspace for the admin dashboard (default: the last 30
/// days): by provider, model and project, per month and provider, and the
/// most expensive conversations.
pub async fn workspace(state: &AppState, filter: &UsageFilter) -> Result<WorkspaceCosts> {
    let pool = &state.db.pool;
    let selection = select(state, None, filter, date_of(now_ms())).await?;
    let scope = selection.scope(None);
    let (rows, names, top_conversations) = tokio::try_join!(
        usage_reports::daily(pool, &scope),
        usage_reports::project_names(pool),
        usage_reports::top_conversations(pool, &scope, TOP_CONVERSATIONS),
    )?;
    let (by_model, by_provider) = model_and_provider_lines(state, &rows);
    let by_project = analysis::lines_by(
        &rows,
        |row| row.project_id.clone(),
        |id| names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
    );
    let mut monthly_by_provider = analysis::lines_by(
        &rows,
        |row| format!("{}|{}", date_of(row.day).format("%Y-%m"), row.provider),
        |key| key.replace('|', " "),
    );
    monthly_by_provider.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(WorkspaceCosts {
        from: selection.from.to_string(),
        to: selection.to.to_string(),
        total: Tally::of(&rows).line("total".into(), "Total".into()),
        by_provider,
        by_model,
        by_project,
        monthly_by_provider,
        top_conversations,
    })
}

/// A CSV export: its file name and its body, streamed as it is read.
pub struct CsvExport {
    /// `llm-usage-<project or workspace>-<from>-<to>.csv`.
    pub filename: String,
    /// The file: a header and one line per ledger row, oldest first. An error
    /// while reading ends the stream with that error (the download fails,
    /// never looks complete).
    pub body: BoxStream<'static, Result<Bytes>>,
}

/// The ledger rows of a period as CSV: one project's, or (`None`) the
/// workspace's. The filter is checked before anything is sent.
pub async fn csv(
    state: &AppState,
    project_id: Option<&str>,
    filter: &UsageFilter,
) -> Result<CsvExport> {
    let selection = select(state, project_id, filter, date_of(now_ms())).await?;
    let query = LedgerQuery::new(&selection.scope(project_id));
    let filename = format!(
        "llm-usage-{}-{}-{}.csv",
        project_id.unwrap_or("workspace"),
        selection.from,
        selection.to
    );
    let pool = state.db.pool.clone();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    tokio::spawn(async move {
        let mut chunk = String::from(CSV_HEADER);
        let mut rows = std::pin::pin!(query.rows(&pool));
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => csv_line(&mut chunk, &row),
                Err(error) => {
                    tracing::error!(%error, "usage export failed");
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            }
            if chunk.len() >= CSV_CHUNK_BYTES
                && sender
                    .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .await
                    .is_err()
            {
                return; // The client went away.
            }
        }
        let _ = sender.send(Ok(Bytes::from(chunk))).await;
    });
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(CsvExport {
        filename,
        body: body.boxed(),
    })
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One ledger row as a CSV line (cost as an exact decimal, empty when unpriced).
fn csv_line(out: &mut String, row: &UsageRow) {
    let time = DateTime::from_timestamp_millis(row.created_at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    let fields = [
        time,
        row.project_id.clone(),
        row.conversation_id.clone().unwrap_or_default(),
        row.message_id.clone().unwrap_or_default(),
        row.attempt.to_string(),
        row.provider.clone(),
        row.model.clone(),
        row.role.as_str().to_owned(),
        row.success.to_string(),
        row.error_class
            .map(|class| class.as_str().to_owned())
            .unwrap_or_default(),
        row.input_tokens.to_string(),
        row.cache_read_tokens.to_string(),
        row.cache_write_tokens.to_string(),
        row.output_tokens.to_string(),
        row.reasoning_tokens.to_string(),
        row.usage_estimated.to_string(),
        row.cost_nanos.map(format_decimal).unwrap_or_default(),
        row.price_version.clone().unwrap_or_default(),
        row.latency_ms.to_string(),
        optional(row.ttft_ms),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        assert_eq!(
            bucket_start(day("2024-07-10"), Granularity::Week),
            day("2024-07-08")
        );
        assert_eq!(
            bucket_start(day("2024-07-08"), Granularity::Week),
            day("2024-07-08")
        );
        assert_eq!(
            bucket_start(day("2024-07-10"), Granularity::Month),
            day("2024-07-01")
        );
        assert_eq!(
            bucket_start(day("2024-07-10"), Granularity::Day),
            day("2024-07-10")
        );
    }

    #[test]
    fn filter_dates_must_be_plain_iso_dates() {
        assert_eq!(parse_day("from", "2024-02-29").unwrap(), day("2024-02-29"));
        for bad in [
            "2024-2-29",
            "2023-02-29",
            "29/02/2024",
            "2024-02-29T00:00:00Z",
            "",
        ] {
            let error = AppError::from(parse_day("from", bad).unwrap_err());
            assert_eq!(error.field(), Some("from"), "{bad}");
        }
    }

    #[test]
    fn csv_lines_quote_what_needs_quoting_and_leave_unpriced_costs_empty() {
        let row = UsageRow {
            usage_id: "u".into(),
            project_id: "p".into(),
            conversation_id: None,
            message_id: None,
            request_id: "r".into(),
            attempt: 2,
            provider: "claude".into(),
            model: "my, \"own\" model".into(),
            config_version: None,
            role: crate::server::llm::router::TargetRole::Fallback,
            is_fallback: true,
            streamed: false,
            managed_key: false,
            operation: Default::default(),
            input_tokens: 10,
            cache_read_tokens: 1,
            cache_write_tokens: 2,
            output_tokens: 3,
            reasoning_tokens: 0,
            usage_estimated: true,
            raw_usage: None,
            cost_nanos: None,
            price_version: None,
            latency_ms: 120,
            ttft_ms: None,
            success: false,
            error_class: Some(crate::model::chat::ErrorClass::RateLimited),
            error_message: Some("slow down".into()),
            created_at: 1_720_000_000_123,
        };
        let mut out = String::new();
        csv_line(&mut out, &row);
        assert_eq!(
            out,
            "2024-07-03T09:46:40.123Z,p,,,2,claude,\"my, \"\"own\"\" model\",fallback,false,rateLimited,\
             10,1,2,3,0,true,,,120,\n"
        );
        let priced = UsageRow {
            cost_nanos: Some(18_750_000),
            ..row
        };
        let mut out = String::new();
        csv_line(&mut out, &priced);
        assert!(out.contains(",true,0.01875,,120,"), "{out}");
        assert_eq!(CSV_HEADER.split(',').count(), out.split(',').count() - 1);
    }
}

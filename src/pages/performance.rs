//! `/projects/:id/performance`: how each provider's model performs for this
//! project (FR-008), measured from its own traffic: the comparison table,
//! latency over time, errors by class, satisfaction with its interval and
//! fallback activity, for the period in the URL. Rendered on the server
//! first; the period picker is a plain GET form.

use crate::components::error_notice::ErrorNotice;
use crate::components::period::{use_period, PeriodPicker};
use crate::error::AppError;
use crate::model::performance::{
    ModelPerformance, Percentiles, PerformancePoint, PerformanceReport, Satisfaction,
};
use crate::pages::project::use_project_id;
use crate::server_fns::costs::get_performance_report;
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// The Performance screen as a lazily loaded route (its own wasm chunk).
pub struct PerformanceRoute;

#[lazy_route]
impl LazyRoute for PerformanceRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <PerformancePage/> }.into_any()
    }
}

/// The performance report of the project in the URL.
#[component]
pub fn PerformancePage() -> impl IntoView {
    let project_id = use_project_id();
    let period = use_period();
    let report = Resource::new(
        move || (project_id.get(), period.get().filter()),
        |(project_id, filter)| get_performance_report(project_id, filter),
    );
    let body = move || {
        Suspend::new(async move {
            match report.await {
                Ok(report) => view! { <ReportView report=report/> }.into_any(),
                Err(AppError::Unauthenticated { .. } | AppError::NotFound) => ().into_any(),
                Err(error) => view! {
                    <ErrorNotice error=Signal::stored(Some(error)) test_id="performance-error"/>
                }
                .into_any(),
            }
        })
    };
    view! {
        <section class="card performance" data-test="performance">
            <div class="cost-head">
                <h2>
                    "Performance "
                    <span class="muted" data-test="performance-period">{move || format!("({})", period.get().label())}</span>
                </h2>
                <PeriodPicker period=period with_granularity=true/>
            </div>
            <p class="muted">
                "Measured from this project's own traffic. Latency runs from sending the request to \
                 the answer's last byte; percentiles over fewer than 20 answers are marked."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading the performance report…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// Seconds as shown: "0.84 s".
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2} s"))
}

/// A share as shown: "97.5 %".
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

/// One percentile cell: the value, and its `n` when the sample is small.
#[component]
fn PercentileCell(
    percentiles: Percentiles,
    value: Option<f64>,
    test_id: &'static str,
) -> impl IntoView {
    let small = percentiles.low_sample && percentiles.n > 0;
    view! {
        <td data-test=test_id data-low-sample=small.then_some("true")
            title=small.then(|| format!("only {} values: a rough figure", percentiles.n))>
            {seconds(value)}
            {small.then(|| view! { <span class="muted">{format!(" (n={})", percentiles.n)}</span> })}
        </td>
    }
}

fn satisfaction_text(s: &Satisfaction) -> String {
    match (s.share, s.low, s.high) {
        (Some(share), Some(low), Some(high)) => format!(
            "{:.0} % (95 % CI {:.0}–{:.0} %, {} rated)",
            share * 100.0,
            low * 100.0,
            high * 100.0,
            s.up + s.down
        ),
        _ => "no ratings yet".to_owned(),
    }
}

#[component]
fn ReportView(report: PerformanceReport) -> impl IntoView {
    if report.models.is_empty() {
        return view! {
            <p class="muted" data-test="performance-empty">"No answers in this period yet."</p>
        }
        .into_any();
    }
    let truncated = report.truncated.then(|| {
        view! { <p class="notice">"This period holds more answers than one report reads: the figures cover the latest 200,000 attempts."</p> }
    });
    let rows = report
        .models
        .iter()
        .map(|m| view! { <ModelRow line=m.clone()/> })
        .collect_view();
    let errors = report
        .models
        .iter()
        .filter(|m| !m.errors.is_empty())
        .flat_map(|m| {
            m.errors.iter().map(|(class, count)| {
                view! {
                    <tr data-test="performance-error-row" data-model=m.model.clone() data-class=class.clone()>
                        <td>{m.name.clone()}</td>
                        <td>{class.clone()}</td>
                        <td>{*count}</td>
                    </tr>
                }
            })
        })
        .collect::<Vec<_>>();
    let error_table = if errors.is_empty() {
        view! { <p class="muted" data-test="performance-no-errors">"No failed attempts in this period."</p> }.into_any()
    } else {
        view! {
            <table class="data" data-test="performance-errors">
                <thead><tr><th scope="col">"Model"</th><th scope="col">"Error class"</th><th scope="col">"Attempts"</th></tr></thead>
                <tbody>{errors}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        {truncated}
        <h3>"By model"</h3>
        <div class="chart-frame">
            <table class="data" data-test="performance-table">
                <thead>
                    <tr>
                        <th scope="col">"Model"</th>
                        <th scope="col">"Attempts"</th>
                        <th scope="col">"Success"</th>
                        <th scope="col">"Latency p50"</th>
                        <th scope="col">"p95"</th>
                        <th scope="col">"p99"</th>
                        <th scope="col">"First token p50"</th>
                        <th scope="col">"Output"</th>
                        <th scope="col">"Fallback used"</th>
                        <th scope="col">"Fallback answered"</th>
                        <th scope="col">"Satisfaction"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <h3>"Latency over time"</h3>
        <LatencyChart points=report.series.clone()/>
        <h3>"Errors by class"</h3>
        {error_table}
    }
    .into_any()
}

#[component]
fn ModelRow(line: ModelPerformance) -> impl IntoView {
    let provider = line.provider.map(|p| p.label()).unwrap_or("?");
    view! {
        <tr data-test="performance-row" data-model=line.model.clone()>
            <th scope="row">{line.name.clone()} <span class="muted">{format!(" {provider}")}</span></th>
            <td data-test="performance-attempts">{line.attempts}</td>
            <td data-test="performance-success">{percent(line.success_rate)}</td>
            <PercentileCell percentiles=line.latency value=line.latency.p50 test_id="performance-p50"/>
            <PercentileCell percentiles=line.latency value=line.latency.p95 test_id="performance-p95"/>
            <PercentileCell percentiles=line.latency value=line.latency.p99 test_id="performance-p99"/>
            <PercentileCell percentiles=line.ttft value=line.ttft.p50 test_id="performance-ttft"/>
            <td>{line.output_tokens_per_second.map_or_else(|| "—".to_owned(), |v| format!("{v:.0} tok/s"))}</td>
            <td data-test="performance-fallback">{percent(line.fallback_activation_rate)}</td>
            <td>{percent(line.fallback_success_rate)}</td>
            <td data-test="performance-satisfaction">{satisfaction_text(&line.satisfaction)}</td>
        </tr>
    }
}

/// Chart size, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 28.0;
/// The shortest latency axis, in seconds: the ledger's resolution.
const MIN_AXIS_SECONDS: f64 = 0.001;

/// p50 and p95 latency per bucket as two lines, seconds on the vertical
/// axis, the buckets' first days on the horizontal one (server-rendered).
#[component]
fn LatencyChart(points: Vec<PerformancePoint>) -> impl IntoView {
    let measured: Vec<f64> = points.iter().filter_map(|p| p.latency.p95).collect();
    if measured.is_empty() {
        return view! { <p class="muted" data-test="latency-chart-empty">"No answered requests to chart."</p> }.into_any();
    }
    // Answers faster than the ledger's millisecond still chart, on the smallest axis.
    let most = measured.into_iter().fold(MIN_AXIS_SECONDS, f64::max);
    let top = nice_ceiling(most);
    let step = (WIDTH - LEFT - 8.0) / points.len().max(2).saturating_sub(1) as f64;
    let x = |i: usize| LEFT + step * i as f64;
    let y = |v: f64| (HEIGHT - BOTTOM) - (v / top) * (HEIGHT - BOTTOM - 8.0);
    let line = |pick: fn(&Percentiles) -> Option<f64>| -> String {
        points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| pick(&p.latency).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let p50 = line(|p| p.p50);
    let p95 = line(|p| p.p95);
    let ticks = (0..=4)
        .map(|k| {
            let value = top * f64::from(k) / 4.0;
            view! {
                <line x1=LEFT x2=WIDTH - 8.0 y1=y(value) y2=y(value) class="grid"/>
                <text x=LEFT - 6.0 y=y(value) + 4.0 text-anchor="end" class="tick">{tick_label(value, top)}</text>
            }
        })
        .collect_view();
    let first = points.first().map(|p| p.start.clone()).unwrap_or_default();
    let last = points.last().map(|p| p.start.clone()).unwrap_or_default();
    view! {
        <figure class="chart" data-test="latency-chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img"
                aria-label="Latency p50 and p95 over the period, in seconds">
                {ticks}
                <polyline points=p95 class="series p95" fill="none" data-test="latency-p95-line"/>
                <polyline points=p50 class="series p50" fill="none" data-test="latency-p50-line"/>
                <text x=LEFT y=HEIGHT - 6.0 class="tick">{first}</text>
                <text x=WIDTH - 8.0 y=HEIGHT - 6.0 text-anchor="end" class="tick">{last}</text>
                <text x=12.0 y=14.0 class="tick">"seconds"</text>
            </svg>
            <figcaption class="muted">"Latency per bucket: p50 (solid) and p95 (dashed), seconds"</figcaption>
        </figure>
    }
    .into_any()
}

/// The smallest of 1, 2 or 5 × 10ⁿ that is at least `value`, for the axis.
/// An axis label in seconds, with as many decimals as a quarter of the
/// axis needs (at least two).
fn tick_label(value: f64, top: f64) -> String {
    let decimals = (-(top / 4.0).log10()).ceil().max(2.0) as usize;
    format!("{value:.decimals$} s")
}

fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_data() {
        assert_eq!(nice_ceiling(MIN_AXIS_SECONDS), 0.001);
        assert_eq!(nice_ceiling(0.84), 1.0);
        assert_eq!(tick_label(0.0005, 0.001), "0.0005 s");
        assert_eq!(tick_label(0.5, 1.0), "0.50 s");
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(0.042), 0.05);
    }
}

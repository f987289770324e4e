//! Spend over time as an SVG bar chart, rendered on the server (no script
//! needed): a title, a dollar axis with gridlines, date labels, and one bar per
//! bucket whose `<title>` is its tooltip. The whole chart is one image for
//! assistive technology, described by its `aria-label`.

use crate::components::spend::{format_count, spend_text};
use crate::model::costs::{Granularity, SpendLine};
use crate::model::money::format_usd;
use leptos::prelude::*;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 46.0;
/// At most this many date labels under the bars.
const MAX_X_LABELS: usize = 8;

/// The chart of a spend series.
#[component]
pub fn SpendChart(
    /// Shown above the bars, and the start of the accessible description.
    title: &'static str,
    /// One line per bucket, oldest first (`key` = the bucket's first day).
    series: Vec<SpendLine>,
    /// The bucket size, for the labels.
    granularity: Granularity,
    /// The `data-test` hook of the `<svg>`.
    test_id: &'static str,
) -> impl IntoView {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_height;
    let highest = series.iter().map(|l| l.cost_nanos).max().unwrap_or(0);
    let scale = nice_ceiling(highest);
    let label = describe(title, &series, granularity);

    let grid = [0, scale / 2, scale]
        .into_iter()
        .map(|tick| {
            let y = base - plot_height * ratio(tick, scale);
            view! {
                <g class="tick">
                    <line x1=num(LEFT) x2=num(WIDTH - RIGHT) y1=num(y) y2=num(y)></line>
                    <text x=num(LEFT - 6.0) y=num(y + 4.0) text-anchor="end">{format_usd(tick)}</text>
                </g>
            }
        })
        .collect_view();

    let count = series.len().max(1);
    let slot = plot_width / count as f64;
    let every = count.div_ceil(MAX_X_LABELS);
    let bars = series
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let x = LEFT + slot * i as f64;
            let height = plot_height * ratio(line.cost_nanos, scale);
            let tip = format!(
                "{}: {} ({} attempts)",
                bucket_name(&line.key, granularity),
                spend_text(line),
                format_count(line.attempts)
            );
            let date = (i % every == 0).then(|| {
                view! {
                    <text class="x-label" x=num(x + slot / 2.0) y=num(base + 16.0) text-anchor="middle">
                        {short_date(&line.key, granularity)}
                    </text>
                }
            });
            view! {
                <g class="bucket" data-test="spend-bar" data-key=line.key.clone()>
                    <title>{tip}</title>
                    <rect class="hit" x=num(x) y=num(TOP) width=num(slot) height=num(plot_height)></rect>
                    <rect class="bar" x=num(x + slot * 0.15) y=num(base - height)
                        width=num((slot * 0.7).max(1.0)) height=num(height)></rect>
                    {date}
                </g>
            }
        })
        .collect_view();

    let empty = series.is_empty().then(|| {
        view! {
            <text class="empty" x=num(LEFT + plot_width / 2.0) y=num(TOP + plot_height / 2.0) text-anchor="middle">
                "No spend in this period"
            </text>
        }
    });

    view! {
        <svg class="spend-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label
            data-test=test_id>
            <text class="chart-title" x=num(LEFT) y="20">{title}</text>
            {grid}
            {bars}
            {empty}
            <line class="axis" x1=num(LEFT) x2=num(LEFT) y1=num(TOP) y2=num(base)></line>
            <line class="axis" x1=num(LEFT) x2=num(WIDTH - RIGHT) y1=num(base) y2=num(base)></line>
            <text class="axis-title" x=num(LEFT + plot_width / 2.0) y=num(HEIGHT - 6.0) text-anchor="middle">
                {axis_title(granularity)}
            </text>
            <text class="axis-title" transform=format!("translate(14 {}) rotate(-90)", TOP + plot_height / 2.0)
                text-anchor="middle">"Spend (USD)"</text>
        </svg>
    }
}

/// An SVG coordinate.
fn num(value: f64) -> String {
    format!("{value:.1}")
}

/// `value / scale`, in 0…1.
fn ratio(value: i64, scale: i64) -> f64 {
    if scale <= 0 {
        0.0
    } else {
        (value as f64 / scale as f64).clamp(0.0, 1.0)
    }
}

/// The top of the dollar axis: the smallest 1, 2 or 5 × 10ⁿ nano-dollars at or
/// above `highest` (one cent when there is no spend).
fn nice_ceiling(highest: i64) -> i64 {
    if highest <= 0 {
        return 10_000_000;
    }
    let mut power: i64 = 1;
    while power.saturating_mul(10) < highest {
        power = power.saturating_mul(10);
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| power.saturating_mul(m))
        .find(|&candidate| candidate >= highest)
        .unwrap_or(highest)
}

/// "2024-06-03" (day), "week of 2024-06-03", "2024-06" (month).
fn bucket_name(key: &str, granularity: Granularity) -> String {
    match granularity {
        Granularity::Day => key.to_owned(),
        Granularity::Week => format!("week of {key}"),
        Granularity::Month => key.get(..7).unwrap_or(key).to_owned(),
    }
}

/// The label under a bar: "06-03" for days and weeks, "2024-06" for months.
fn short_date(key: &str, granularity: Granularity) -> String {
    match granularity {
        Granularity::Month => key.get(..7),
        Granularity::Day | Granularity::Week => key.get(5..),
    }
    .unwrap_or(key)
    .to_owned()
}

fn axis_title(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Day => "Day (UTC)",
        Granularity::Week => "Week starting (UTC)",
        Granularity::Month => "Month (UTC)",
    }
}

/// The chart in words: period, total and the most expensive bucket.
fn describe(title: &str, series: &[SpendLine], granularity: Granularity) -> String {
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return format!("{title}: no spend in this period");
    };
    let total = SpendLine {
        cost_nanos: series.iter().map(|l| l.cost_nanos).sum(),
        attempts: series.iter().map(|l| l.attempts).sum(),
        unpriced_attempts: series.iter().map(|l| l.unpriced_attempts).sum(),
        ..SpendLine::default()
    };
    let mut text = format!(
        "{title}: {} buckets from {} to {}, total {}",
        series.len(),
        bucket_name(&first.key, granularity),
        bucket_name(&last.key, granularity),
        spend_text(&total)
    );
    if let Some(top) = series
        .iter()
        .filter(|l| l.cost_nanos > 0)
        .max_by_key(|l| l.cost_nanos)
    {
        text.push_str(&format!(
            "; highest {} on {}",
            format_usd(top.cost_nanos),
            bucket_name(&top.key, granularity)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(key: &str, cost_nanos: i64) -> SpendLine {
        SpendLine {
            key: key.into(),
            cost_nanos,
            attempts: 1,
            ..SpendLine::default()
        }
    }

    #[test]
    fn the_axis_ends_on_a_round_amount() {
        assert_eq!(nice_ceiling(0), 10_000_000);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(1_000_000_000), 1_000_000_000);
        assert_eq!(nice_ceiling(1_200_000_000), 2_000_000_000);
        assert_eq!(nice_ceiling(3_100_000), 5_000_000);
    }

    #[test]
    fn the_chart_is_described_in_words() {
        let series = [day("2024-06-01", 0), day("2024-06-02", 1_500_000_000)];
        assert_eq!(
            describe("Spend per day", &series, Granularity::Day),
            "Spend per day: 2 buckets from 2024-06-01 to 2024-06-02, total $1.50; highest $1.50 on 2024-06-02"
        );
        assert_eq!(
            describe("Spend", &[], Granularity::Day),
            "Spend: no spend in this period"
        );
        assert_eq!(short_date("2024-06-03", Granularity::Week), "06-03");
        assert_eq!(short_date("2024-06-01", Granularity::Month), "2024-06");
        assert_eq!(
            bucket_name("2024-06-03", Granularity::Week),
            "week of 2024-06-03"
        );
    }
}

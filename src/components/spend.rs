//! Spend figures shared by the cost page and the admin dashboard: amounts that
//! never show an unknown price as $0, counts, percentages, the unpriced warning,
//! and the breakdown table whose spend column carries a bar.

use crate::model::costs::SpendLine;
use crate::model::money::{format_usd, percent, permille};
use leptos::prelude::*;

/// The spend of a line: "$1.20"; "$1.20 + 3 unpriced" when some attempts had no
/// known price; "unpriced" when none had one.
pub fn spend_text(line: &SpendLine) -> String {
    match line.unpriced_attempts {
        0 => format_usd(line.cost_nanos),
        n if n >= line.attempts && line.cost_nanos == 0 => "unpriced".into(),
        n => format!(
            "{} + {} unpriced",
            format_usd(line.cost_nanos),
            format_count(n)
        ),
    }
}

/// A count with thousands separators: 1248 → "1,248".
pub fn format_count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// "N attempts used a model without a known price — not included", loudly,
/// when there are any.
#[component]
pub fn UnpricedWarning(
    /// Attempts without a known price.
    attempts: i64,
) -> impl IntoView {
    (attempts > 0).then(|| {
        let noun = if attempts == 1 { "attempt" } else { "attempts" };
        view! {
            <p class="notice warn loud" role="alert" data-test="unpriced-warning">
                <strong>{format!("{} {noun} used a model without a known price", format_count(attempts))}</strong>
                " — not included in the amounts below."
            </p>
        }
    })
}

/// Spend split by model, provider or project: one row per line with a bar in
/// proportion to the most expensive line, its amount, share, attempts and
/// attempts answered by a fallback.
#[component]
pub fn SpendBars(
    /// What the table shows ("Spend by model").
    caption: &'static str,
    /// Heading of the name column ("Model").
    name_header: &'static str,
    /// The lines, most expensive first.
    lines: Vec<SpendLine>,
    /// The `data-test` hook of the table's wrapper.
    test_id: &'static str,
    /// Where a line's name links to, from its key (none: plain text).
    #[prop(optional)]
    link: Option<fn(&str) -> String>,
) -> impl IntoView {
    if lines.is_empty() {
        return view! {
            <div class="spend-bars" data-test=test_id>
                <h3>{caption}</h3>
                <p class="muted" data-test="no-spend">"No usage in this period."</p>
            </div>
        }
        .into_any();
    }
    let total: i64 = lines.iter().map(|l| l.cost_nanos).sum();
    let widest = lines.iter().map(|l| l.cost_nanos).max().unwrap_or(0);
    let rows = lines
        .into_iter()
        .map(|line| {
            let width = permille(line.cost_nanos, widest).unwrap_or(0);
            let share = if total > 0 {
                percent(permille(line.cost_nanos, total).unwrap_or(0))
            } else {
                "—".into()
            };
            let name = match link {
                Some(link) => view! { <a href=link(&line.key)>{line.label.clone()}</a> }.into_any(),
                None => view! { <span>{line.label.clone()}</span> }.into_any(),
            };
            view! {
                <tr data-test="spend-row" data-key=line.key.clone()>
                    <th scope="row">{name}</th>
                    <td class="bar-cell">
                        <span class="bar" aria-hidden="true"
                            style=format!("width: {}.{}%", width / 10, width % 10)></span>
                        <span class="amount" data-test="spend-amount">{spend_text(&line)}</span>
                    </td>
                    <td class="num">{share}</td>
                    <td class="num">{format_count(line.attempts)}</td>
                    <td class="num">{format_count(line.fallback_attempts)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="spend-bars table-scroll" data-test=test_id>
            <table class="data bars">
                <caption>{caption}</caption>
                <thead>
                    <tr>
                        <th scope="col">{name_header}</th>
                        <th scope="col">"Spend"</th>
                        <th scope="col" class="num">"Share"</th>
                        <th scope="col" class="num">"Attempts"</th>
                        <th scope="col" class="num">"Fallbacks"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cost_nanos: i64, attempts: i64, unpriced_attempts: i64) -> SpendLine {
        SpendLine {
            cost_nanos,
            attempts,
            unpriced_attempts,
            ..SpendLine::default()
        }
    }

    #[test]
    fn unknown_prices_are_never_shown_as_zero() {
        assert_eq!(spend_text(&line(1_200_000_000, 3, 0)), "$1.20");
        assert_eq!(spend_text(&line(0, 2, 0)), "$0.00");
        assert_eq!(spend_text(&line(0, 2, 2)), "unpriced");
        assert_eq!(spend_text(&line(1_200_000_000, 5, 2)), "$1.20 + 2 unpriced");
    }

    #[test]
    fn figures_read_as_people_expect() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_248), "1,248");
        assert_eq!(format_count(-1_234_567), "-1,234,567");
    }
}

//! The reporting period of the cost page and the admin dashboard, driven by the
//! URL query (`?from=YYYY-MM-DD&to=YYYY-MM-DD&granularity=day|week|month`), and
//! its picker: a plain GET form (works before hydration) with quick links for
//! the last 7, 30 and 90 days. Without `from`/`to` the period is the last 30
//! days up to today (UTC), the same default as the server's.

use crate::model::costs::{Granularity, UsageFilter};
use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

/// Days in the default period (today included).
const DEFAULT_DAYS: i64 = 30;
/// The quick links of the picker, in days.
const QUICK_DAYS: [i64; 3] = [7, 30, 90];

/// The period a page reports on, as the URL asks for it. `from` and `to` are
/// kept as typed, so a malformed date reaches the server and comes back as its
/// validation error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
    /// How the spend series is bucketed.
    pub granularity: Granularity,
    /// Today (UTC), `YYYY-MM-DD`.
    pub today: String,
}

impl Period {
    /// The period of a query: its values, or the last 30 days up to `today`.
    pub fn new(
        from: Option<String>,
        to: Option<String>,
        granularity: Option<String>,
        today: i64,
    ) -> Period {
        let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let to = given(to).unwrap_or_else(|| format_day(today));
        let end = parse_day(&to).unwrap_or(today);
        Period {
            from: given(from).unwrap_or_else(|| format_day(end - (DEFAULT_DAYS - 1))),
            to,
            granularity: granularity
                .as_deref()
                .and_then(parse_granularity)
                .unwrap_or_default(),
            today: format_day(today),
        }
    }

    /// What the server is asked for.
    pub fn filter(&self) -> UsageFilter {
        UsageFilter {
            from: Some(self.from.clone()),
            to: Some(self.to.clone()),
            granularity: self.granularity,
            ..UsageFilter::default()
        }
    }

    /// "Last 30 days" when the period ends today, else "2024-05-01 – 2024-05-31".
    pub fn label(&self) -> String {
        match (parse_day(&self.from), parse_day(&self.to)) {
            (Some(from), Some(to)) if self.to == self.today && to >= from => {
                let days = to - from + 1;
                if days == 1 {
                    "Today".into()
                } else {
                    format!("Last {days} days")
                }
            }
            _ => format!("{} – {}", self.from, self.to),
        }
    }

    /// The query of the last `days` days up to today, keeping the granularity.
    fn last_days_query(&self, days: i64) -> String {
        let today = parse_day(&self.today).unwrap_or_default();
        format!(
            "from={}&to={}&granularity={}",
            format_day(today - (days - 1)),
            self.today,
            granularity_name(self.granularity)
        )
    }
}

/// The page's period, following the URL query.
pub fn use_period() -> Memo<Period> {
    let query = use_query_map();
    let today = today();
    Memo::new(move |_| {
        query.with(|q| Period::new(q.get("from"), q.get("to"), q.get("granularity"), today))
    })
}

/// The period form: From, To, optionally the chart granularity, Apply, and
/// the quick links. A GET form, so it works before hydration; after it the
/// quick links navigate in place.
#[component]
pub fn PeriodPicker(
    /// The current period.
    period: Memo<Period>,
    /// Whether to offer the chart granularity (day, week, month).
    #[prop(optional)]
    with_granularity: bool,
) -> impl IntoView {
    let path = use_location().pathname;
    move || {
        let period = period.get();
        let path = path.get();
        let granularity = with_granularity.then(|| {
            let options = [Granularity::Day, Granularity::Week, Granularity::Month]
                .into_iter()
                .map(|g| {
                    view! {
                        <option value=granularity_name(g) selected=g == period.granularity>
                            {granularity_label(g)}
                        </option>
                    }
                })
                .collect_view();
            view! {
                <label for="period-granularity">"Chart by"</label>
                <select id="period-granularity" name="granularity" data-test="period-granularity">
                    {options}
                </select>
            }
        });
        let quick = QUICK_DAYS
            .into_iter()
            .map(|days| {
                let query = period.last_days_query(days);
                let current = period.label() == format!("Last {days} days");
                view! {
                    <a href=format!("{path}?{query}") data-test=format!("period-{days}")
                        aria-current=current.then_some("true")>
                        {format!("{days} days")}
                    </a>
                }
            })
            .collect_view();
        view! {
            <div class="period">
                <form method="get" class="inline" data-test="period-form">
                    <label for="period-from">"From"</label>
                    <input id="period-from" type="date" name="from" value=period.from.clone()
                        required data-test="period-from"/>
                    <label for="period-to">"To"</label>
                    <input id="period-to" type="date" name="to" value=period.to.clone()
                        required data-test="period-to"/>
                    {granularity}
                    <button type="submit" class="secondary" data-test="period-apply">"Apply"</button>
                </form>
                <nav class="quick-periods" aria-label="Quick periods">"Last: " {quick}</nav>
            </div>
        }
    }
}

/// The query value of a granularity.
fn granularity_name(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Day => "day",
        Granularity::Week => "week",
        Granularity::Month => "month",
    }
}

/// A granularity for people.
fn granularity_label(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Day => "Day",
        Granularity::Week => "Week",
        Granularity::Month => "Month",
    }
}

/// Reads a granularity from the query.
fn parse_granularity(text: &str) -> Option<Granularity> {
    [Granularity::Day, Granularity::Week, Granularity::Month]
        .into_iter()
        .find(|g| granularity_name(*g) == text)
}

/// Today (UTC) as days since 1970-01-01: from the system clock on the server,
/// from the browser's clock after hydration.
fn today() -> i64 {
    #[cfg(feature = "hydrate")]
    let millis = js_sys::Date::now() as i64;
    #[cfg(not(feature = "hydrate"))]
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    millis.div_euclid(86_400_000)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (`None` when it is not one).
fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The `YYYY-MM-DD` date of a count of days since 1970-01-01.
fn format_day(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_numbers() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2024-03-01"), Some(19_783));
        assert_eq!(format_day(19_783), "2024-03-01");
        assert_eq!(format_day(19_782), "2024-02-29");
        for day in [-1, 0, 10_956, 19_782, 20_000, 50_000] {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        for bad in [
            "",
            "2024-13-01",
            "2023-02-29",
            "2024-1",
            "abc",
            "2024-04-31",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_period_is_the_last_thirty_days() {
        let today = parse_day("2024-06-30").unwrap();
        let period = Period::new(None, Some(String::new()), None, today);
        assert_eq!(period.from, "2024-06-01");
        assert_eq!(period.to, "2024-06-30");
        assert_eq!(period.granularity, Granularity::Day);
        assert_eq!(period.label(), "Last 30 days");
        assert_eq!(
            period.last_days_query(7),
            "from=2024-06-24&to=2024-06-30&granularity=day"
        );
    }

    #[test]
    fn a_chosen_period_is_kept_as_typed() {
        let today = parse_day("2024-06-30").unwrap();
        let period = Period::new(
            Some("2024-05-01".into()),
            Some("2024-05-31".into()),
            Some("week".into()),
            today,
        );
        assert_eq!(period.label(), "2024-05-01 – 2024-05-31");
        assert_eq!(period.granularity, Granularity::Week);
        let filter = period.filter();
        assert_eq!(filter.from.as_deref(), Some("2024-05-01"));
        assert_eq!(filter.granularity, Granularity::Week);
        let odd = Period::new(Some("soon".into()), None, Some("hourly".into()), today);
        assert_eq!(odd.from, "soon");
        assert_eq!(odd.granularity, Granularity::Day);
    }
}

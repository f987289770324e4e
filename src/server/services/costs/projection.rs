//! Month-end spend projected from the month so far (AC-005: within 5 % of
//! the actual). A pure function of the daily spend, so it is tested on
//! synthetic histories without a database.
//!
//! Method: the days before the project's first spend are ignored (a project
//! that starts mid-month is not averaged with empty days), and so is its first
//! day once a week follows it (it is usually partial). With three weeks of
//! history or more, each weekday gets a factor — its average ratio to the
//! centred 7-day moving average, so a trend does not leak into it — kept only
//! when the weekdays differ clearly more than the days within a weekday do
//! (F ≥ 3), so noise is not mistaken for a pattern. On the deseasonalised
//! days of the last four weeks, the run rate is their mean and the trend their
//! least-squares slope, damped by its significance: × (1 − (3·SE / slope)⁴),
//! nothing within three standard errors, so noise is not extrapolated. Each
//! remaining day of the month is the run rate moved along the trend (half as a
//! constant daily change, half as a constant growth rate: linear and
//! compounding growth are both followed), times its weekday factor; the rest of
//! today is today's estimate times the part of the day still to come. Spend so
//! far is exact.

use crate::model::costs::Projection;
use chrono::{Datelike, Duration, NaiveDate};

/// Days the run rate and the trend are computed from.
const WINDOW_DAYS: usize = 28;
/// Fewer days than this: no trend, the run rate only.
const MIN_TREND_DAYS: usize = 7;
/// Weekday factors need this many days (three of each weekday).
const MIN_WEEKLY_DAYS: usize = 21;
/// Weekday factors use at most this many days (eight weeks).
const MAX_WEEKLY_DAYS: usize = 56;
/// A trend within this many standard errors of zero is ignored.
const TREND_SIGNIFICANCE: f64 = 3.0;
/// Weekday factors are kept from this ratio of between-weekday to
/// within-weekday variance on.
const MIN_WEEKLY_F: f64 = 3.0;

/// The spend a projection starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Spend of each complete UTC day, oldest first, ending yesterday (up to
    /// eight weeks; older days do not change the projection).
    pub days: Vec<i64>,
    /// Today (UTC).
    pub today: NaiveDate,
    /// Spent today so far.
    pub today_nanos: i64,
    /// Part of today elapsed, 0 to 1.
    pub today_elapsed: f64,
}

/// Projects the current month's spend to its end.
pub fn project(history: &History) -> Projection {
    let today = history.today;
    let days_in_month = days_in_month(today);
    let complete_this_month = usize::try_from(today.day0()).unwrap_or(0);
    let spent_nanos = history
        .days
        .iter()
        .rev()
        .take(complete_this_month)
        .sum::<i64>()
        + history.today_nanos;
    let elapsed = history.today_elapsed.clamp(0.0, 1.0);
    let days_after_today = days_in_month - today.day();
    let active_from = history
        .days
        .iter()
        .position(|&nanos| nanos != 0)
        .unwrap_or(history.days.len());
    let active = &history.days[active_from..];
    let still_to_come = if active.is_empty() {
        // Nothing before today: today's pace, if enough of the day has passed.
        if elapsed >= 1.0 / 24.0 {
            let per_day = history.today_nanos as f64 / elapsed;
            per_day * ((1.0 - elapsed) + f64::from(days_after_today))
        } else {
            0.0
        }
    } else {
        let model = DailyModel::fit(active, today.pred_opt().unwrap_or(today));
        let rest_of_today = model.estimate(1) * (1.0 - elapsed);
        let later: f64 = (2..=i64::from(days_after_today) + 1)
            .map(|ahead| model.estimate(ahead))
            .sum();
        rest_of_today + later
    };
    Projection {
        month: today.format("%Y-%m").to_string(),
        spent_nanos,
        projected_nanos: spent_nanos.saturating_add(still_to_come.round() as i64),
        days_elapsed: f64::from(today.day0()) + elapsed,
        days_in_month,
    }
}

/// Days in `date`'s month.
pub fn days_in_month(date: NaiveDate) -> u32 {
    let first = date.with_day(1).unwrap_or(date);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    u32::try_from((next - first).num_days()).unwrap_or(30)
}

/// Daily spend as a run rate, a damped trend and weekday factors.
struct DailyModel {
    /// The last complete day.
    last_day: NaiveDate,
    /// Deseasonalised spend of the run-rate window's middle day.
    level: f64,
    /// Days from that middle to the last complete day.
    level_age: f64,
    /// Deseasonalised change per day.
    slope: f64,
    /// Weekday factors, Monday first.
    factors: [f64; 7],
}

impl DailyModel {
    /// Fits the model on `days` (oldest first, the first with spend), the last
    /// of which is `last_day`.
    fn fit(days: &[i64], last_day: NaiveDate) -> DailyModel {
        let first_day = last_day - Duration::days(days.len() as i64 - 1);
        let weekday_of = |i: usize| weekday_index(first_day + Duration::days(i as i64));
        let factors = weekday_factors(days, weekday_of);
        let plain: Vec<f64> = days
            .iter()
            .enumerate()
            .map(|(i, &nanos)| nanos as f64 / factors[weekday_of(i)])
            .collect();
        // The first day with spend is often partial: left out once there is enough after it.
        let usable = if plain.len() > MIN_TREND_DAYS {
            &plain[1..]
        } else {
            &plain[..]
        };
        let window = &usable[usable.len().saturating_sub(WINDOW_DAYS)..];
        DailyModel {
            last_day,
            level: window.iter().sum::<f64>() / window.len() as f64,
            level_age: (window.len() as f64 - 1.0) / 2.0,
            slope: damped_slope(window),
            factors,
        }
    }

    /// Expected spend `ahead` days after the last complete day.
    fn estimate(&self, ahead: i64) -> f64 {
        if self.level <= 0.0 {
            return 0.0;
        }
        let day = self.last_day + Duration::days(ahead);
        let days = self.level_age + ahead as f64;
        let linear = (self.level + self.slope * days).max(0.0);
        let compounding = self.level * (1.0 + self.slope / self.level).max(0.0).powf(days);
        (linear + compounding) / 2.0 * self.factors[weekday_index(day)]
    }
}

fn weekday_index(date: NaiveDate) -> usize {
    date.weekday().num_days_from_monday() as usize
}

/// Each weekday's average ratio to the centred 7-day moving average,
/// normalised to average 1; all 1 with less than three weeks of history or
/// without a clear weekly pattern.
fn weekday_factors(days: &[i64], weekday_of: impl Fn(usize) -> usize) -> [f64; 7] {
    let flat = [1.0; 7];
    if days.len() < MIN_WEEKLY_DAYS {
        return flat;
    }
    let start = days.len() - days.len().min(MAX_WEEKLY_DAYS);
    let mut ratios: [Vec<f64>; 7] = Default::default();
    for centre in (start + 3)..(days.len() - 3) {
        let week: i64 = days[centre - 3..=centre + 3].iter().sum();
        if week > 0 {
            ratios[weekday_of(centre)].push(days[centre] as f64 * 7.0 / week as f64);
        }
    }
    if ratios.iter().any(|r| r.len() < 2) {
        return flat;
    }
    let means = ratios
        .each_ref()
        .map(|r| r.iter().sum::<f64>() / r.len() as f64);
    let mean = means.iter().sum::<f64>() / 7.0;
    if mean <= 0.0 {
        return flat;
    }
    // One-way analysis of variance: weekday means against the spread within weekdays.
    let count: usize = ratios.iter().map(Vec::len).sum();
    let between: f64 = (0..7)
        .map(|w| ratios[w].len() as f64 * (means[w] - mean).powi(2))
        .sum::<f64>()
        / 6.0;
    let within: f64 = (0..7)
        .map(|w| {
            ratios[w]
                .iter()
                .map(|r| (r - means[w]).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (count - 7) as f64;
    if between < MIN_WEEKLY_F * within {
        return flat;
    }
    means.map(|m| m / mean)
}

/// The least-squares slope of `values` (one a day), scaled down the closer it
/// is to its noise: × (1 − (3·SE / slope)⁴), 0 within three standard errors.
fn damped_slope(values: &[f64]) -> f64 {
    let n = values.len();
    if n < MIN_TREND_DAYS {
        return 0.0;
    }
    let count = n as f64;
    let t_mean = (count - 1.0) / 2.0;
    let y_mean = values.iter().sum::<f64>() / count;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, y) in values.iter().enumerate() {
        let dt = t as f64 - t_mean;
        sxy += dt * (y - y_mean);
        sxx += dt * dt;
    }
    let slope = sxy / sxx;
    let residuals: f64 = values
        .iter()
        .enumerate()
        .map(|(t, y)| {
            let fitted = y_mean + slope * (t as f64 - t_mean);
            (y - fitted).powi(2)
        })
        .sum();
    let standard_error = (residuals / (count - 2.0) / sxx).sqrt();
    if slope == 0.0 {
        return 0.0;
    }
    let noise = TREND_SIGNIFICANCE * standard_error / slope.abs();
    slope * (1.0 - noise.powi(4)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn is_weekend(date: NaiveDate) -> bool {
        matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// A small deterministic generator (no dependency): uniform in [-1, 1).
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A synthetic history: the spend of every day from `start` on.
    struct Synthetic {
        start: NaiveDate,
        spend: Vec<i64>,
    }

    impl Synthetic {
        fn new(
            start: NaiveDate,
            days: usize,
            mut spend: impl FnMut(NaiveDate, usize) -> f64,
        ) -> Self {
            let spend = (0..days)
                .map(|i| {
                    let day = start + Duration::days(i as i64);
                    (spend(day, i).max(0.0) * 1e9).round() as i64
                })
                .collect();
            Synthetic { start, spend }
        }

        fn on(&self, day: NaiveDate) -> i64 {
            let i = (day - self.start).num_days();
            self.spend[usize::try_from(i).unwrap()]
        }

        /// The projection at `elapsed` of `today` (spend spread evenly over the day).
        fn project_at(&self, today: NaiveDate, elapsed: f64) -> Projection {
            let first = (today - Duration::days(56)).max(self.start);
            let days = (0..(today - first).num_days())
                .map(|i| self.on(first + Duration::days(i)))
                .collect();
            project(&History {
                days,
                today,
                today_nanos: (self.on(today) as f64 * elapsed).round() as i64,
                today_elapsed: elapsed,
            })
        }

        fn month_total(&self, month: NaiveDate) -> i64 {
            (0..days_in_month(month))
                .map(|d| self.on(month.with_day(d + 1).unwrap()))
                .sum()
        }

        /// The largest error (per mille of the actual month-end total) of the
        /// projections made at noon of each of `checkpoints`, in `month`.
        fn worst_error(&self, month: NaiveDate, checkpoints: &[u32]) -> i64 {
            let actual = self.month_total(month);
            checkpoints
                .iter()
                .map(|&day| {
                    let projected = self
                        .project_at(month.with_day(day).unwrap(), 0.5)
                        .projected_nanos;
                    ((projected - actual) * 1000 / actual).abs()
                })
                .max()
                .unwrap()
        }
    }

    const JULY: (i32, u32, u32) = (2024, 7, 1);
    /// Noon of these days of July: from one week into the month on.
    const CHECKPOINTS: [u32; 6] = [7, 10, 14, 18, 22, 27];
    const SEEDS: u64 = 20;
    /// AC-005: within 5 % of the actual month-end total.
    const TOLERANCE_PERMILLE: i64 = 50;

    fn july() -> NaiveDate {
        date(JULY.0, JULY.1, JULY.2)
    }

    /// May 1 to July 31: two months of history before July.
    fn history(spend: impl FnMut(NaiveDate, usize) -> f64) -> Synthetic {
        Synthetic::new(date(2024, 5, 1), 92, spend)
    }

    /// The worst error over [`SEEDS`] noise draws, printed for the record.
    fn worst_over_seeds(
        name: &str,
        checkpoints: &[u32],
        make: impl Fn(&mut Noise) -> Synthetic,
    ) -> i64 {
        let worst = (1..=SEEDS)
            .map(|seed| make(&mut Noise(seed)).worst_error(july(), checkpoints))
            .max()
            .unwrap();
        println!("{name}: worst error {worst} ‰ over {SEEDS} draws at July {checkpoints:?}");
        worst
    }

    #[test]
    fn a_flat_history_projects_exactly() {
        let flat = history(|_, _| 4.25);
        let projection = flat.project_at(date(2024, 7, 10), 0.5);
        assert_eq!(projection.month, "2024-07");
        assert_eq!(projection.days_in_month, 31);
        assert_eq!(projection.days_elapsed, 9.5);
        assert_eq!(projection.spent_nanos, 9 * 4_250_000_000 + 2_125_000_000);
        assert_eq!(projection.projected_nanos, 31 * 4_250_000_000);
        assert_eq!(flat.worst_error(july(), &CHECKPOINTS), 0);
    }

    #[test]
    fn a_noisy_history_lands_within_5_percent() {
        let worst = worst_over_seeds("noisy (±15 % a day)", &CHECKPOINTS, |noise| {
            history(|_, _| 100.0 * (1.0 + 0.15 * noise.next()))
        });
        assert!(worst <= TOLERANCE_PERMILLE, "worst error {worst} ‰");
    }

    #[test]
    fn a_growing_history_lands_within_5_percent() {
        let compounding = worst_over_seeds("growing 1 % a day (±5 %)", &CHECKPOINTS, |noise| {
            history(|_, i| 50.0 * 1.01f64.powi(i as i32) * (1.0 + 0.05 * noise.next()))
        });
        assert!(
            compounding <= TOLERANCE_PERMILLE,
            "worst error {compounding} ‰"
        );
        let linear = worst_over_seeds(
            "growing by a constant amount (±5 %)",
            &CHECKPOINTS,
            |noise| history(|_, i| (50.0 + i as f64) * (1.0 + 0.05 * noise.next())),
        );
        assert!(linear <= TOLERANCE_PERMILLE, "worst error {linear} ‰");
    }

    #[test]
    fn a_weekly_pattern_lands_within_5_percent() {
        let worst = worst_over_seeds("weekly pattern (±10 %)", &CHECKPOINTS, |noise| {
            history(|day, _| {
                let base = if is_weekend(day) { 30.0 } else { 120.0 };
                base * (1.0 + 0.10 * noise.next())
            })
        });
        assert!(worst <= TOLERANCE_PERMILLE, "worst error {worst} ‰");
    }

    #[test]
    fn a_project_started_mid_month_lands_within_5_percent() {
        let start = date(2024, 7, 12);
        let worst = worst_over_seeds("started July 12 (±10 %)", &[18, 22, 27], |noise| {
            history(|day, _| {
                if day < start {
                    0.0
                } else {
                    100.0 * (1.0 + 0.10 * noise.next())
                }
            })
        });
        assert!(worst <= TOLERANCE_PERMILLE, "worst error {worst} ‰");
    }

    #[test]
    fn a_project_started_today_extrapolates_today_and_none_yet_projects_nothing() {
        let today = date(2024, 2, 10);
        let projection = project(&History {
            days: vec![0; 20],
            today,
            today_nanos: 6_000,
            today_elapsed: 0.25,
        });
        assert_eq!(projection.days_in_month, 29);
        // 24,000 a day: the rest of today (18,000) and 19 more days.
        assert_eq!(projection.projected_nanos, 6_000 + 18_000 + 19 * 24_000);
        let nothing = project(&History {
            days: Vec::new(),
            today,
            today_nanos: 0,
            today_elapsed: 0.5,
        });
        assert_eq!((nothing.spent_nanos, nothing.projected_nanos), (0, 0));
    }
}

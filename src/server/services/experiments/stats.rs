//! The statistics of an experiment, pure: two-proportion z tests (satisfaction,
//! error rate), the Mann-Whitney U test (latency, cost), Holm's step-down
//! correction across an arm's metrics, and the χ² test of the assignment
//! against the weights (sample-ratio mismatch). Two-sided p-values throughout.

/// The standard normal's upper tail, P(Z > z), from the complementary error
/// function (Chebyshev fit, relative error below 1.2e-7).
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc` fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The two-sided p-value of a standard normal statistic.
fn two_sided(z: f64) -> f64 {
    (2.0 * normal_upper_tail(z.abs())).min(1.0)
}

/// Two-proportion z test (pooled): successes `a` of `n_a` against `b` of
/// `n_b`. `None` when a side has no trials or the pooled share is 0 or 1.
pub fn two_proportion_p(a: u64, n_a: u64, b: u64, n_b: u64) -> Option<f64> {
    if n_a == 0 || n_b == 0 {
        return None;
    }
    let (n_a, n_b) = (n_a as f64, n_b as f64);
    let pooled = (a as f64 + b as f64) / (n_a + n_b);
    let variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b);
    if variance <= 0.0 {
        return None;
    }
    let z = (a as f64 / n_a - b as f64 / n_b) / variance.sqrt();
    Some(two_sided(z))
}

/// Mann-Whitney U test with the normal approximation and the tie
/// correction: are values of `x` and `y` drawn from one distribution?
/// `None` when a side is empty or every value is the same.
pub fn mann_whitney_p(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut rank_sum_x, mut ties) = (0.0_f64, 0.0_f64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        let group = (j - i + 1) as f64;
        ties += group.powi(3) - group;
        rank_sum_x += mean_rank * all[i..=j].iter().filter(|(_, in_x)| *in_x).count() as f64;
        i = j + 1;
    }
    let (n_x, n_y, n) = (x.len() as f64, y.len() as f64, n as f64);
    let u = rank_sum_x - n_x * (n_x + 1.0) / 2.0;
    let mean = n_x * n_y / 2.0;
    let variance = n_x * n_y / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return None;
    }
    // Continuity correction towards the mean.
    let distance = ((u - mean).abs() - 0.5).max(0.0);
    Some(two_sided(distance / variance.sqrt()))
}

/// Holm's step-down correction: each p-value adjusted so that rejecting
/// where the adjusted value is below α holds the family-wise error at α.
/// `None`s stay `None` and do not count in the family.
pub fn holm(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut tested: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    tested.sort_by(|a, b| a.1.total_cmp(&b.1));
    let m = tested.len();
    let mut adjusted = vec![None; p_values.len()];
    let mut running = 0.0_f64;
    for (rank, (index, p)) in tested.into_iter().enumerate() {
        running = running.max(((m - rank) as f64 * p).min(1.0));
        adjusted[index] = Some(running);
    }
    adjusted
}

/// The χ² goodness-of-fit p-value of `observed` counts against shares
/// proportional to `weights` (the sample-ratio-mismatch check). `None`
/// without observations or with fewer than two categories.
pub fn sample_ratio_p(observed: &[u64], weights: &[u32]) -> Option<f64> {
    let total: u64 = observed.iter().sum();
    let weight_sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 || weight_sum == 0 || observed.len() < 2 || observed.len() != weights.len() {
        return None;
    }
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .map(|(o, w)| {
            let expected = total as f64 * f64::from(*w) / weight_sum as f64;
            if expected == 0.0 {
                0.0
            } else {
                (*o as f64 - expected).powi(2) / expected
            }
        })
        .sum();
    Some(chi_squared_upper_tail(statistic, observed.len() - 1))
}

/// P(χ²(df) > x): the regularized upper incomplete gamma Q(df/2, x/2).
pub fn chi_squared_upper_tail(x: f64, df: usize) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    upper_incomplete_gamma(df as f64 / 2.0, x / 2.0)
}

/// Q(a, x) by its series below a+1 and its continued fraction above
/// (Numerical Recipes' `gammq`).
fn upper_incomplete_gamma(a: f64, x: f64) -> f64 {
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (log_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = COEFFICIENTS[1..]
        .iter()
        .enumerate()
        .fold(COEFFICIENTS[0], |sum, (i, c)| {
            sum + c / (x + i as f64 + 1.0)
        });
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn the_normal_tail_matches_its_tables() {
        assert!(close(normal_upper_tail(0.0), 0.5, 1e-7));
        assert!(close(two_sided(1.959_964), 0.05, 1e-6));
        assert!(close(two_sided(2.575_829), 0.01, 1e-6));
        assert!(close(normal_upper_tail(-1.0), 0.841_344_7, 1e-6));
    }

    #[test]
    fn the_chi_squared_tail_matches_its_tables() {
        // Critical values at p = 0.05 and 0.001.
        assert!(close(chi_squared_upper_tail(3.841_459, 1), 0.05, 1e-6));
        assert!(close(chi_squared_upper_tail(10.827_566, 1), 0.001, 1e-6));
        assert!(close(chi_squared_upper_tail(5.991_465, 2), 0.05, 1e-6));
        assert!(close(chi_squared_upper_tail(16.266_236, 3), 0.001, 1e-6));
        assert_eq!(chi_squared_upper_tail(0.0, 2), 1.0);
    }

    #[test]
    fn two_proportions_are_tested_like_the_textbook() {
        // 60 of 100 against 45 of 100: z = 2.1239, p = 0.0337.
        let p = two_proportion_p(60, 100, 45, 100).unwrap();
        assert!(close(p, 0.033_67, 1e-4), "{p}");
        assert_eq!(two_proportion_p(5, 10, 5, 10), Some(1.0));
        assert_eq!(two_proportion_p(1, 0, 1, 10), None);
        assert_eq!(two_proportion_p(10, 10, 10, 10), None);
    }

    #[test]
    fn mann_whitney_tells_shifted_samples_apart_and_not_equal_ones() {
        let x: Vec<f64> = (0..30).map(f64::from).collect();
        let shifted: Vec<f64> = x.iter().map(|v| v + 20.0).collect();
        assert!(mann_whitney_p(&x, &shifted).unwrap() < 1e-6);
        let same = mann_whitney_p(&x, &x).unwrap();
        assert!(same > 0.9, "{same}");
        // Ties: all equal is no information.
        assert_eq!(mann_whitney_p(&[1.0, 1.0], &[1.0, 1.0]), None);
        // U = 1 of 20 pairs: z = (|1 − 10| − 0.5) / √(20·10/12) = 2.082, p = 0.0373.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.5], &[4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!(close(p, 0.0373, 0.0005), "{p}");
    }

    #[test]
    fn holm_adjusts_step_down_and_keeps_order() {
        let adjusted = holm(&[Some(0.01), Some(0.04), None, Some(0.03)]);
        assert_eq!(adjusted[2], None);
        // Sorted 0.01, 0.03, 0.04 → 0.03, 0.06, max(0.06, 0.04) = 0.06.
        assert!(close(adjusted[0].unwrap(), 0.03, 1e-12));
        assert!(close(adjusted[3].unwrap(), 0.06, 1e-12));
        assert!(close(adjusted[1].unwrap(), 0.06, 1e-12));
    }

    #[test]
    fn a_split_far_from_its_weights_is_a_sample_ratio_mismatch() {
        assert!(sample_ratio_p(&[500, 500], &[50, 50]).unwrap() > 0.9);
        assert!(sample_ratio_p(&[600, 400], &[50, 50]).unwrap() < 0.001);
        assert!(sample_ratio_p(&[750, 250], &[75, 25]).unwrap() > 0.9);
        assert_eq!(sample_ratio_p(&[0, 0], &[1, 1]), None);
    }
}

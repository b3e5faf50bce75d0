//! Noise-aware baseline comparisons: `{ expr = "p95(latency) <= baseline * 1.05",
//! confidence = "95%" }` fails only when this run's per-repeat values are worse than the
//! bound computed from the baseline's per-repeat values with that confidence.
//!
//! The test is the one-sided Mann–Whitney U (Wilcoxon rank-sum) test, exact: the null
//! distribution of U is counted, not approximated, for every sample size perfspec allows
//! (repeats are at most 100 per run). It needs no normality (latency percentiles across
//! repeats are skewed, and one noisy repeat is an outlier a t-test would chase) and no
//! random resampling (the same values always give the same verdict). The interval shown is
//! the Hodges–Lehmann one that goes with the test: order statistics of the pairwise
//! differences of log values (so a ratio, shown as a change in percent), or of the values
//! themselves when one is not positive. Its lower end is above the bound exactly when the
//! test says "regressed" (for "lower is better"; mirrored for `>`/`>=`).

use serde::{Deserialize, Serialize};

use crate::spec::slo::Op;

/// The result of one comparison, as stored in `results.json` (`slos[].comparison`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Comparison {
    /// The confidence asked for (a fraction).
    pub confidence: f64,
    pub current_n: usize,
    pub baseline_n: usize,
    /// `percent` (changes are ratios of the values) or `absolute` (differences, in the
    /// metric's canonical unit, when a value is zero or negative).
    pub scale: ChangeScale,
    /// The Hodges–Lehmann estimate of the change from the baseline.
    pub change: f64,
    /// The one-sided lower and upper confidence bounds of the change, each at
    /// `confidence`: together a two-sided interval at `2 × confidence − 1`.
    pub low: f64,
    pub high: f64,
    /// The largest change the bound allows (at the baseline's median), e.g. `+5.0` %.
    pub allowed: f64,
    /// The one-sided p-value: the chance of a U this extreme without a regression.
    pub p_value: f64,
    /// Worse than the bound with `confidence`.
    pub regressed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeScale {
    Percent,
    Absolute,
}

/// Why there is no comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum NotCompared {
    /// With this many values the test cannot reach the confidence at all.
    TooFewRepeats {
        current: usize,
        baseline: usize,
        /// The fewest repeats per run (the same on both sides) that can.
        need: usize,
    },
}

/// The counts of U = 0, 1, …, n·m over all `C(n+m, n)` rankings of two samples of sizes
/// `n` and `m` without ties, divided by that number: the exact null distribution. These
/// are the coefficients of the Gaussian binomial `[n+m choose n]_q`, built as
/// `∏_{i=1..n} (1 − q^{m+i}) / (1 − q^i)`.
pub fn u_distribution(n: usize, m: usize) -> Vec<f64> {
    let len = n * m + 1;
    let mut poly = vec![0.0_f64; len];
    poly[0] = 1.0;
    for i in 1..=n {
        let shift = m + i;
        for k in (shift..len).rev() {
            poly[k] -= poly[k - shift];
        }
        for k in i..len {
            poly[k] += poly[k - i];
        }
    }
    let total: f64 = poly.iter().sum();
    poly.iter().map(|c| c.max(0.0) / total).collect()
}

/// The largest `k` with `P(U ≤ k) ≤ alpha`; `None` when even `P(U = 0)` is larger.
pub fn critical_u(dist: &[f64], alpha: f64) -> Option<usize> {
    let mut cdf = 0.0;
    let mut k = None;
    for (u, p) in dist.iter().enumerate() {
        cdf += p;
        // a hair of tolerance: 12/252 must count as 0.047619…, not one ulp above it
        if cdf > alpha * (1.0 + 1e-9) {
            break;
        }
        k = Some(u);
    }
    k
}

/// The fewest repeats per run (equal on both sides) that can reach `confidence`.
pub fn repeats_needed(confidence: f64) -> usize {
    (1..=100)
        .find(|&n| critical_u(&u_distribution(n, n), 1.0 - confidence).is_some())
        .unwrap_or(100)
}

/// Compare `current` values with `baseline` values for an SLO `lhs op rhs(baseline)`,
/// `bound` computing the right-hand side from one baseline value.
pub fn compare(
    op: Op,
    current: &[f64],
    baseline: &[f64],
    bound: impl Fn(f64) -> Option<f64>,
    confidence: f64,
) -> Result<Comparison, NotCompared> {
    let (n, m) = (current.len(), baseline.len());
    let dist = u_distribution(n, m);
    let too_few = NotCompared::TooFewRepeats {
        current: n,
        baseline: m,
        need: repeats_needed(confidence),
    };
    if n == 0 || m == 0 {
        return Err(too_few);
    }
    let Some(k) = critical_u(&dist, 1.0 - confidence) else {
        return Err(too_few);
    };
    let bounds: Vec<f64> = baseline.iter().filter_map(|&b| bound(b)).collect();
    if bounds.len() != m {
        return Err(too_few);
    }
    let lower_is_better = matches!(op, Op::Lt | Op::Le);
    // U counts the pairs in which this run is better than the bound (ties half): few such
    // pairs means worse
    let mut u2 = 0_usize; // 2·U, to count ties as halves exactly
    for &x in current {
        for &b in &bounds {
            let better = if lower_is_better { x < b } else { x > b };
            u2 += if better { 2 } else { usize::from(x == b) };
        }
    }
    let p_value: f64 = dist.iter().take(u2 / 2 + 1).sum::<f64>().min(1.0);
    let regressed = u2 <= 2 * k;
    let positive = current
        .iter()
        .chain(baseline)
        .chain(&bounds)
        .all(|v| *v > 0.0);
    let scale = if positive {
        ChangeScale::Percent
    } else {
        ChangeScale::Absolute
    };
    let t = |v: f64| if positive { v.ln() } else { v };
    let mut diffs: Vec<f64> = current
        .iter()
        .flat_map(|&x| baseline.iter().map(move |&y| (x, y)))
        .map(|(x, y)| t(x) - t(y))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let shown = |d: f64| if positive { d.exp_m1() * 100.0 } else { d };
    let mut sorted_base = baseline.to_vec();
    sorted_base.sort_by(f64::total_cmp);
    let mid = super::repeats::median_sorted(&sorted_base);
    let allowed = bound(mid).map_or(f64::NAN, |b| shown(t(b) - t(mid)));
    Ok(Comparison {
        confidence,
        current_n: n,
        baseline_n: m,
        scale,
        change: shown(super::repeats::median_sorted(&diffs)),
        low: shown(diffs[k]),
        high: shown(diffs[diffs.len() - 1 - k]),
        allowed,
        p_value,
        regressed,
    })
}

impl Comparison {
    /// `regressed: +8.2% (90% CI +5.1% … +11.0%; bound +5.0% at 95% one-sided)`;
    /// `fmt` formats an absolute change.
    pub fn sentence(&self, fmt: impl Fn(f64) -> String) -> String {
        let show = |v: f64| match self.scale {
            ChangeScale::Percent => format!("{}{:.1}%", if v >= 0.0 { "+" } else { "−" }, v.abs()),
            ChangeScale::Absolute => {
                format!("{}{}", if v >= 0.0 { "+" } else { "−" }, fmt(v.abs()))
            }
        };
        let pct = |c: f64| crate::spec::units::trim_float((c * 1000.0).round() / 10.0);
        format!(
            "{}: {} ({}% CI {} … {}; bound {} at {}% one-sided)",
            if self.regressed {
                "regressed"
            } else {
                "within noise"
            },
            show(self.change),
            pct(2.0 * self.confidence - 1.0),
            show(self.low),
            show(self.high),
            if self.allowed.is_finite() {
                show(self.allowed)
            } else {
                "?".into()
            },
            pct(self.confidence),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr_free::normal;

    /// Standard normal draws by Box–Muller (no extra dependency).
    mod rand_distr_free {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng) -> f64 {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    #[test]
    fn exact_null_distribution_matches_known_tables() {
        // n = m = 5: C(10,5) = 252 rankings; P(U <= 4) = 12/252, P(U <= 2) = 4/252
        let d = u_distribution(5, 5);
        assert_eq!(d.len(), 26);
        let cdf = |k: usize| d[..=k].iter().sum::<f64>();
        assert!((cdf(4) - 12.0 / 252.0).abs() < 1e-12);
        assert!((cdf(2) - 4.0 / 252.0).abs() < 1e-12);
        assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // symmetric
        assert!((d[0] - d[25]).abs() < 1e-15 && (d[7] - d[18]).abs() < 1e-15);
        assert_eq!(critical_u(&d, 0.05), Some(4));
        assert_eq!(critical_u(&d, 0.025), Some(2));
        // the largest size: still a distribution
        let big = u_distribution(100, 100);
        assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // 2 + 2 repeats cannot reach 95% (1/6 > 5%); 3 + 3 can (1/20)
        assert_eq!(critical_u(&u_distribution(2, 2), 0.05), None);
        assert_eq!(critical_u(&u_distribution(3, 3), 0.05), Some(0));
        assert_eq!(repeats_needed(0.95), 3);
        assert_eq!(repeats_needed(0.99), 5);
    }

    #[test]
    fn a_clear_regression_and_noise_read_as_such() {
        let bound = |b: f64| Some(b * 1.05);
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let slow = [120.0, 118.0, 123.0, 119.0, 121.0];
        let c = compare(Op::Le, &slow, &base, bound, 0.95).unwrap();
        assert!(c.regressed && c.p_value < 0.05, "{c:?}");
        assert!((c.change - 20.0).abs() < 2.0 && c.low > 5.0 && c.high > c.low);
        assert!((c.allowed - 5.0).abs() < 1e-9);
        assert!(
            c.sentence(|v| v.to_string()).starts_with("regressed: +20."),
            "{}",
            c.sentence(|v| v.to_string())
        );
        let same = [101.0, 99.5, 100.5, 98.5, 102.5];
        let c = compare(Op::Le, &same, &base, bound, 0.95).unwrap();
        assert!(!c.regressed && c.low < 5.0);
        assert!(c.sentence(|v| v.to_string()).starts_with("within noise: "));
        // higher is better: a throughput drop
        let c = compare(
            Op::Ge,
            &[80.0, 81.0, 79.0],
            &[100.0, 99.0, 101.0],
            |b| Some(b * 0.95),
            0.95,
        )
        .unwrap();
        assert!(c.regressed && c.change < -15.0, "{c:?}");
        // too few
        assert_eq!(
            compare(Op::Le, &[1.0, 2.0], &[1.0, 2.0], bound, 0.95),
            Err(NotCompared::TooFewRepeats {
                current: 2,
                baseline: 2,
                need: 3
            })
        );
        // zero values: absolute changes
        let c = compare(
            Op::Le,
            &[0.0, 0.0, 0.0],
            &[0.0, 0.0, 0.0],
            |b| Some(b + 0.01),
            0.95,
        )
        .unwrap();
        assert_eq!(c.scale, ChangeScale::Absolute);
        assert!(!c.regressed);
    }

    /// The rates the README quotes: `cargo test --lib noise::tests::simulated -- --nocapture`.
    /// 5 repeats per run, per-repeat values normal with a 5% coefficient of variation, 200
    /// comparisons per case, `p95(latency) <= baseline * 1.05` at 95% confidence.
    #[test]
    fn simulated_false_alarms_and_detection() {
        let mut rng = StdRng::seed_from_u64(17);
        let mut draw = |mean: f64| -> Vec<f64> {
            (0..5)
                .map(|_| mean * (1.0 + 0.05 * normal(&mut rng)))
                .collect()
        };
        let mut rate = |ratio: f64, slack: f64| {
            let hits = (0..200)
                .filter(|_| {
                    let base = draw(0.2);
                    let cur = draw(0.2 * ratio);
                    compare(Op::Le, &cur, &base, |b| Some(b * slack), 0.95)
                        .unwrap()
                        .regressed
                })
                .count();
            hits as f64 / 200.0
        };
        let false_alarms = rate(1.0, 1.05);
        let detected = rate(1.2, 1.05);
        // with no tolerance (`<= baseline`) a false alarm rate near the test's size (4.8%)
        let strict = rate(1.0, 1.0);
        let detected_strict = rate(1.1, 1.0);
        println!(
            "false alarms {false_alarms}, 20% detected {detected}; `<= baseline`: false alarms {strict}, 10% detected {detected_strict}"
        );
        assert!(false_alarms <= 0.05, "{false_alarms}");
        assert!(detected >= 0.95, "{detected}");
        assert!(strict <= 0.10, "{strict}");
    }
}

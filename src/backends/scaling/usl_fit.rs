//! The Universal Scalability Law fit: a wrapper over the `usl` crate that never panics and
//! never makes a fit up.
//!
//! USL: `X(N) = λN / (1 + σ(N−1) + κN(N−1))`, with σ the contention (serial fraction),
//! κ the coherency (crosstalk) penalty and λ the throughput of one unit. The `usl` crate
//! fits σ, κ, λ by unconstrained nonlinear least squares (Levenberg–Marquardt, `rmpfit`) and
//! reproduces the published reference coefficients. It asserts on fewer than
//! [`MIN_POINTS`] measurements and panics when the solver fails, so inputs are checked here
//! first and the call runs under `catch_unwind` as a last resort.
//!
//! The coefficients are constrained to σ ≥ 0 and κ ≥ 0, as R's `usl` package does: a
//! negative σ or κ (superlinear or noisy data) has no physical meaning, so when the
//! unconstrained solution has one, the fit is redone with that coefficient held at its
//! bound 0 and the others fitted by least squares ([`constrained`]), and the report says
//! which bound is active.
//!
//! Peak: `N* = ⌊√((1−σ)/κ)⌋` (the crate's `max_concurrency`, Gunther's equation), at least 1,
//! and `X_max = X(N*)` (for the reference data √((1−σ)/κ) = 35.6, so N* = 35 although X(36)
//! is marginally higher: the published convention is kept). When κ ≤ 0 the fitted curve has
//! no peak (throughput approaches λ/σ or grows without bound), and when the coherency term
//! κN(N−1) changes the fitted throughput by less than one part in a million anywhere in the
//! measured range, κ is solver noise (perfectly linear data fit κ ≈ 1e-10, which would put
//! an invented "peak" at N ≈ 64000): in both cases no peak is reported.

use super::measurements::Point;

/// The fewest distinct concurrency levels a fit needs (the `usl` crate's minimum).
pub const MIN_POINTS: usize = usl::MIN_MEASUREMENTS;

/// Past this the peak is so far beyond any measurement that it is reported as "no peak".
const MAX_PEAK: f64 = 1e9;

/// Relative effect on the fitted throughput below which a coefficient is solver noise.
const NEGLIGIBLE: f64 = 1e-6;

/// Fitted USL coefficients and what follows from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Contention σ.
    pub sigma: f64,
    /// Coherency κ.
    pub kappa: f64,
    /// Throughput of one unit λ (per second).
    pub lambda: f64,
    /// `None` when the fitted curve has no maximum (κ ≤ 0 or negligible, or a peak beyond 10⁹).
    pub peak: Option<Peak>,
    /// Coefficient of determination over the fitted points; `None` when every measured
    /// throughput is equal (R² is undefined).
    pub r_squared: Option<f64>,
    /// Points the fit used.
    pub points: usize,
    /// Whether the coherency term changes the fitted throughput by more than one part in a
    /// million somewhere in the measured range.
    pub kappa_matters: bool,
    /// `Some((σ, κ))` of the unconstrained solution when it had a negative coefficient and
    /// the fit was redone with a bound active (σ = 0 or κ = 0).
    pub unconstrained: Option<(f64, f64)>,
}

/// Where the fitted throughput peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// N* = ⌊√((1−σ)/κ)⌋, at least 1.
    pub concurrency: u32,
    /// X(N*).
    pub throughput: f64,
}

/// Why there is no fit. The message reads as a sentence in a report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoFit {
    #[error(
        "not enough points for a USL fit: {levels} distinct concurrency level{} measured, the fit needs at least {MIN_POINTS}",
        if *levels == 1 { "" } else { "s" }
    )]
    NotEnoughPoints { levels: usize },
    #[error("degenerate data for a USL fit: {0}")]
    Degenerate(String),
    #[error("the USL fit failed: {0}")]
    Failed(String),
}

impl Fit {
    /// The fitted throughput at concurrency `n` (`None` where the model's denominator is not
    /// positive, which only an unphysical κ < 0 produces).
    pub fn throughput_at(&self, n: f64) -> Option<f64> {
        usl_throughput(self.sigma, self.kappa, self.lambda, n)
    }

    /// One line for reports: the coefficients, the peak and the fit quality.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "USL fit of {} points: σ = {:.6} (contention), κ = {:.6e} (coherency), λ = {:.2}/s",
            self.points, self.sigma, self.kappa, self.lambda
        );
        match self.peak {
            Some(p) => s.push_str(&format!("; throughput peaks at N* = {} with {:.1}/s", p.concurrency, p.throughput)),
            None => s.push_str(
                "; the fitted curve has no throughput peak (κ ≤ 0, or too small to matter in the measured range), \
                 so usl.peak_concurrency and usl.max_throughput are not reported",
            ),
        }
        if let Some((us, uk)) = self.unconstrained {
            let mut held = Vec::new();
            if self.sigma == 0.0 {
                held.push("σ");
            }
            if self.kappa == 0.0 {
                held.push("κ");
            }
            s.push_str(&format!(
                "; fitted with σ ≥ 0 and κ ≥ 0, and the bound {} = 0 is active: the unconstrained fit gave σ = {us:.6}, κ = {uk:.6e}, which means the data scale superlinearly or are too noisy for the USL: treat the fit with caution",
                held.join(" = ")
            ));
        }
        match self.r_squared {
            Some(r2) => s.push_str(&format!("; R² = {r2:.4}")),
            None => s.push_str("; R² is undefined (every measured throughput is equal)"),
        }
        s
    }
}

fn usl_throughput(sigma: f64, kappa: f64, lambda: f64, n: f64) -> Option<f64> {
    let denominator = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
    let x = lambda * n / denominator;
    (denominator > 0.0 && x.is_finite()).then_some(x)
}

/// Fit the USL to measured points (repeated levels are fitted as separate observations).
pub fn fit(points: &[Point]) -> Result<Fit, NoFit> {
    let mut levels: Vec<u32> = points.iter().map(|p| p.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    if levels.len() < MIN_POINTS {
        return Err(NoFit::NotEnoughPoints {
            levels: levels.len(),
        });
    }
    if levels[0] == 0 {
        return Err(NoFit::Degenerate(
            "concurrency 0 was measured; levels start at 1".into(),
        ));
    }
    if let Some(p) = points
        .iter()
        .find(|p| !p.throughput.is_finite() || p.throughput < 0.0)
    {
        return Err(NoFit::Degenerate(format!(
            "throughput {} at concurrency {} is not a finite number ≥ 0",
            p.throughput, p.concurrency
        )));
    }
    if points.iter().all(|p| p.throughput == 0.0) {
        return Err(NoFit::Degenerate(
            "every measured throughput is zero".into(),
        ));
    }
    let measurements: Vec<usl::Measurement> = points
        .iter()
        .map(|p| usl::Measurement::concurrency_and_throughput(p.concurrency, p.throughput))
        .collect();
    // checked above: ≥ MIN_POINTS measurements with finite values; the solver may still give
    // up on pathological data, and the crate panics then
    let model =
        std::panic::catch_unwind(|| usl::Model::build(&measurements)).map_err(|payload| {
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("the solver panicked");
            NoFit::Failed(why.to_string())
        })?;
    let (mut sigma, mut kappa, mut lambda) = (model.sigma, model.kappa, model.lambda);
    if !(sigma.is_finite() && kappa.is_finite() && lambda.is_finite()) {
        return Err(NoFit::Failed(format!(
            "the solver gave non-finite coefficients (σ = {sigma}, κ = {kappa}, λ = {lambda})"
        )));
    }
    let mut unconstrained = None;
    let n_top = f64::from(levels[levels.len() - 1]);
    let kappa_negative = kappa < 0.0
        && (kappa * n_top * (n_top - 1.0)).abs()
            > NEGLIGIBLE * (1.0 + (sigma * (n_top - 1.0)).abs());
    if sigma < -NEGLIGIBLE || kappa_negative {
        let Some(c) = constrained(points) else {
            return Err(NoFit::Failed(format!(
                "the unconstrained fit gave σ = {sigma}, κ = {kappa} and no fit with σ ≥ 0, κ ≥ 0 was found"
            )));
        };
        unconstrained = Some((sigma, kappa));
        (sigma, kappa, lambda) = c;
    } else {
        // a negative coefficient too small to change the curve is solver noise: 0
        sigma = sigma.max(0.0);
        kappa = kappa.max(0.0);
    }
    if lambda <= 0.0 {
        return Err(NoFit::Failed(format!(
            "the solver gave a non-positive single-unit throughput λ = {lambda}"
        )));
    }
    let n_max = f64::from(levels[levels.len() - 1]);
    let kappa_matters =
        (kappa * n_max * (n_max - 1.0)).abs() > NEGLIGIBLE * (1.0 + (sigma * (n_max - 1.0)).abs());
    let peak = if kappa > 0.0 && kappa_matters {
        // the crate's `max_concurrency`, computed in f64 so that a tiny κ cannot overflow u32
        let n_star = ((1.0 - sigma) / kappa).max(0.0).sqrt().floor().max(1.0);
        (n_star <= MAX_PEAK)
            .then(|| {
                usl_throughput(sigma, kappa, lambda, n_star).map(|x| Peak {
                    concurrency: n_star as u32,
                    throughput: x,
                })
            })
            .flatten()
    } else {
        None
    };
    let mean = points.iter().map(|p| p.throughput).sum::<f64>() / points.len() as f64;
    let ss_tot: f64 = points.iter().map(|p| (p.throughput - mean).powi(2)).sum();
    let ss_res: Option<f64> = points
        .iter()
        .map(|p| {
            usl_throughput(sigma, kappa, lambda, f64::from(p.concurrency))
                .map(|x| (p.throughput - x).powi(2))
        })
        .sum();
    let Some(ss_res) = ss_res else {
        return Err(NoFit::Failed(
            "the fitted curve is undefined at a measured concurrency (κ < 0)".into(),
        ));
    };
    let r_squared = (ss_tot > 0.0)
        .then(|| 1.0 - ss_res / ss_tot)
        .filter(|r| r.is_finite());
    Ok(Fit {
        sigma,
        kappa,
        lambda,
        peak,
        r_squared,
        points: points.len(),
        kappa_matters,
        unconstrained,
    })
}

/// Least-squares λ and the residual sum of squares for fixed σ, κ: `X = λ·g(N)` with
/// `g(N) = N / (1 + σ(N−1) + κN(N−1))` is linear in λ, so `λ = Σ X·g / Σ g²`.
fn best_lambda(points: &[Point], sigma: f64, kappa: f64) -> Option<(f64, f64)> {
    let g = |n: f64| n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0));
    let (xg, gg) = points.iter().fold((0.0, 0.0), |(a, b), p| {
        let gn = g(f64::from(p.concurrency));
        (a + p.throughput * gn, b + gn * gn)
    });
    let lambda = xg / gg;
    let sse = points
        .iter()
        .map(|p| (p.throughput - lambda * g(f64::from(p.concurrency))).powi(2))
        .sum::<f64>();
    (lambda.is_finite() && lambda > 0.0 && sse.is_finite()).then_some((lambda, sse))
}

/// One boundary face of the constrained fit: the exponent range of its free coefficient's
/// grid and the `(σ, κ)` at a value of it.
type Face = (f64, f64, fn(f64) -> (f64, f64));

/// The best fit with σ ≥ 0, κ ≥ 0 on the boundary (σ = 0 with κ free, or κ = 0 with σ
/// free): each a one-dimensional search over a logarithmic grid refined by golden-section
/// search, λ in closed form. `(σ, κ, λ)`.
fn constrained(points: &[Point]) -> Option<(f64, f64, f64)> {
    let faces: [Face; 2] = [(-10.0, 1.0, |k| (0.0, k)), (-8.0, 2.0, |s| (s, 0.0))];
    let mut best: Option<(f64, f64, f64, f64)> = None;
    for (lo_exp, hi_exp, at) in faces {
        let sse = |v: f64| {
            let (s, k) = at(v);
            best_lambda(points, s, k).map_or(f64::INFINITY, |(_, e)| e)
        };
        let grid: Vec<f64> = std::iter::once(0.0)
            .chain((0..=120).map(|i| 10f64.powf(lo_exp + (hi_exp - lo_exp) * f64::from(i) / 120.0)))
            .collect();
        let i = (0..grid.len()).min_by(|&a, &b| sse(grid[a]).total_cmp(&sse(grid[b])))?;
        let (mut a, mut b) = (grid[i.saturating_sub(1)], grid[(i + 1).min(grid.len() - 1)]);
        let phi = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..100 {
            let (c, d) = (b - phi * (b - a), a + phi * (b - a));
            if sse(c) <= sse(d) {
                b = d;
            } else {
                a = c;
            }
        }
        let v = [grid[i], (a + b) / 2.0]
            .into_iter()
            .min_by(|x, y| sse(*x).total_cmp(&sse(*y)))?;
        let (s, k) = at(v);
        if let Some((lambda, e)) = best_lambda(points, s, k)
            && best.is_none_or(|b| e < b.3)
        {
            best = Some((s, k, lambda, e));
        }
    }
    best.map(|(s, k, l, _)| (s, k, l))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The Cisco benchmark (see `specs/data/README.md`).
    pub(crate) const CISCO: [(u32, f64); 32] = [
        (1, 955.16),
        (2, 1878.91),
        (3, 2688.01),
        (4, 3548.68),
        (5, 4315.54),
        (6, 5130.43),
        (7, 5931.37),
        (8, 6531.08),
        (9, 7219.8),
        (10, 7867.61),
        (11, 8278.71),
        (12, 8646.7),
        (13, 9047.84),
        (14, 9426.55),
        (15, 9645.37),
        (16, 9897.24),
        (17, 10097.6),
        (18, 10240.5),
        (19, 10532.39),
        (20, 10798.52),
        (21, 11151.43),
        (22, 11518.63),
        (23, 11806.0),
        (24, 12089.37),
        (25, 12075.41),
        (26, 12177.29),
        (27, 12211.41),
        (28, 12158.93),
        (29, 12155.27),
        (30, 12118.04),
        (31, 12140.4),
        (32, 12074.39),
    ];

    pub(crate) fn points(data: &[(u32, f64)]) -> Vec<Point> {
        data.iter()
            .map(|&(concurrency, throughput)| Point {
                concurrency,
                throughput,
            })
            .collect()
    }

    fn within(actual: f64, expected: f64, rel: f64) -> bool {
        ((actual - expected) / expected).abs() <= rel
    }

    #[test]
    fn reproduces_the_published_cisco_coefficients_within_one_percent() {
        let f = fit(&points(&CISCO)).unwrap();
        assert!(within(f.sigma, 0.02671591, 0.01), "σ = {}", f.sigma);
        assert!(within(f.kappa, 7.690945e-4, 0.01), "κ = {}", f.kappa);
        assert!(within(f.lambda, 995.6486, 0.01), "λ = {}", f.lambda);
        let peak = f.peak.unwrap();
        assert_eq!(peak.concurrency, 35);
        assert!(
            within(peak.throughput, 12341.0, 0.01),
            "X_max = {}",
            peak.throughput
        );
        let r2 = f.r_squared.unwrap();
        assert!(r2 > 0.99 && r2 <= 1.0, "R² = {r2}");
        assert_eq!(f.points, 32);
        // the same peak as the crate's own definition
        let model = usl::Model {
            sigma: f.sigma,
            kappa: f.kappa,
            lambda: f.lambda,
        };
        assert_eq!(model.max_concurrency(), peak.concurrency);
        assert!(within(model.max_throughput(), peak.throughput, 1e-12));
        assert!(within(
            f.throughput_at(20.0).unwrap(),
            model.throughput_at_concurrency(20),
            1e-12
        ));
    }

    #[test]
    fn fewer_than_six_levels_is_not_enough_points() {
        let e = fit(&points(&CISCO[..5])).unwrap_err();
        assert_eq!(e, NoFit::NotEnoughPoints { levels: 5 });
        assert_eq!(
            e.to_string(),
            "not enough points for a USL fit: 5 distinct concurrency levels measured, the fit needs at least 6"
        );
        assert_eq!(fit(&[]).unwrap_err(), NoFit::NotEnoughPoints { levels: 0 });
        // repeated measurements of five levels are still five levels
        let mut repeated = points(&CISCO[..5]);
        repeated.extend(points(&CISCO[..5]));
        assert_eq!(
            fit(&repeated).unwrap_err(),
            NoFit::NotEnoughPoints { levels: 5 }
        );
        assert_eq!(
            fit(&points(&[(1, 5.0)])).unwrap_err().to_string(),
            "not enough points for a USL fit: 1 distinct concurrency level measured, the fit needs at least 6"
        );
    }

    #[test]
    fn degenerate_inputs_never_panic() {
        let cases: Vec<Vec<(u32, f64)>> = vec![
            (1..=8).map(|n| (n, 0.0)).collect(),   // nothing got through
            (1..=8).map(|n| (n, 500.0)).collect(), // flat: σ = 1, R² undefined
            (1..=8).map(|n| (n, 100.0 * f64::from(n))).collect(), // perfectly linear: no peak
            (1..=8).map(|n| (n, f64::from(n * n * n))).collect(), // superlinear
            (1..=8).map(|n| (n, 1000.0 / f64::from(n))).collect(), // collapsing
            (1..=8)
                .map(|n| (n, if n % 2 == 0 { 1e-300 } else { 1e300 }))
                .collect(),
            (1..=8)
                .map(|n| (n * 100_000, f64::from(n) * 1e12))
                .collect(),
            vec![(1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0), (5, 0.0), (6, 1e-9)],
            vec![
                (1, f64::NAN),
                (2, 1.0),
                (3, 1.0),
                (4, 1.0),
                (5, 1.0),
                (6, 1.0),
            ],
            vec![(0, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 1.0), (6, 1.0)],
            vec![
                (1, f64::INFINITY),
                (2, 1.0),
                (3, 1.0),
                (4, 1.0),
                (5, 1.0),
                (6, 1.0),
            ],
            vec![(1, -1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 1.0), (6, 1.0)],
        ];
        for data in cases {
            let r = std::panic::catch_unwind(|| fit(&points(&data)));
            let r = r.unwrap_or_else(|_| panic!("fit panicked on {data:?}"));
            if let Ok(f) = r {
                for v in [f.sigma, f.kappa, f.lambda] {
                    assert!(v.is_finite(), "{data:?}: {f:?}");
                }
                if let Some(p) = f.peak {
                    assert!(
                        p.concurrency >= 1 && p.throughput.is_finite(),
                        "{data:?}: {f:?}"
                    );
                }
            }
        }
        assert!(matches!(
            fit(&points(&[
                (1, 0.0),
                (2, 0.0),
                (3, 0.0),
                (4, 0.0),
                (5, 0.0),
                (6, 0.0)
            ])),
            Err(NoFit::Degenerate(_))
        ));
        assert!(matches!(
            fit(&points(&[
                (1, f64::NAN),
                (2, 1.0),
                (3, 1.0),
                (4, 1.0),
                (5, 1.0),
                (6, 1.0)
            ])),
            Err(NoFit::Degenerate(_))
        ));
    }

    #[test]
    fn linear_and_flat_data_have_no_peak_and_collapsing_data_peaks_at_one() {
        let linear = fit(&points(
            &(1..=8)
                .map(|n| (n, 100.0 * f64::from(n)))
                .collect::<Vec<_>>(),
        ))
        .unwrap();
        assert!(
            linear.sigma.abs() < 1e-6 && linear.kappa.abs() < 1e-6,
            "{linear:?}"
        );
        assert!(within(linear.lambda, 100.0, 1e-6), "{linear:?}");
        // κ ≈ 1e-10 is solver noise, not a peak at N ≈ 64000
        assert_eq!(linear.peak, None, "{linear:?}");
        assert!(!linear.kappa_matters);
        assert!((linear.r_squared.unwrap() - 1.0).abs() < 1e-9, "{linear:?}");
        let summary = linear.summary();
        assert!(
            summary.contains("no throughput peak") && !summary.contains("caution"),
            "{summary}"
        );

        let flat = fit(&points(&(1..=8).map(|n| (n, 500.0)).collect::<Vec<_>>())).unwrap();
        assert!(
            within(flat.sigma, 1.0, 1e-6) && within(flat.lambda, 500.0, 1e-6),
            "{flat:?}"
        );
        assert_eq!((flat.peak, flat.r_squared), (None, None));
        assert!(
            flat.summary().contains("R² is undefined"),
            "{}",
            flat.summary()
        );

        let collapsing = fit(&points(
            &(1..=8)
                .map(|n| (n, 1000.0 / f64::from(n)))
                .collect::<Vec<_>>(),
        ))
        .unwrap();
        assert_eq!(
            collapsing.peak.map(|p| p.concurrency),
            Some(1),
            "{collapsing:?}"
        );

        let superlinear = fit(&points(
            &(1..=8)
                .map(|n| (n, f64::from(n * n * n)))
                .collect::<Vec<_>>(),
        ))
        .unwrap();
        // σ ≥ 0 like R's `usl`: the bound is active and the summary says so
        assert!(
            superlinear.sigma == 0.0 && superlinear.kappa >= 0.0,
            "{superlinear:?}"
        );
        let (us, _) = superlinear.unconstrained.expect("a bound is active");
        assert!(us < 0.0, "{superlinear:?}");
        let summary = superlinear.summary();
        assert!(
            summary.contains("bound σ = κ = 0 is active") && summary.contains("caution"),
            "{summary}"
        );
        assert!(linear.unconstrained.is_none() || linear.sigma >= 0.0);
    }

    #[test]
    fn a_bounded_fit_is_the_least_squares_fit_on_the_bound() {
        // Amdahl data (κ = 0 exactly) with noise that pushes κ slightly negative
        let data: Vec<(u32, f64)> = (1..=10)
            .map(|n| {
                let x = 100.0 * f64::from(n) / (1.0 + 0.1 * f64::from(n - 1));
                (
                    n,
                    x * if n % 2 == 0 { 1.002 } else { 0.998 } + f64::from(n * n) * 0.05,
                )
            })
            .collect();
        let f = fit(&points(&data)).unwrap();
        assert!(f.sigma >= 0.0 && f.kappa >= 0.0, "{f:?}");
        if f.unconstrained.is_some() {
            // no feasible point nearby fits better
            let sse = |s: f64, k: f64| best_lambda(&points(&data), s, k).unwrap().1;
            let here = sse(f.sigma, f.kappa);
            for (ds, dk) in [(1e-3, 0.0), (0.0, 1e-5), (-1e-3, 0.0)] {
                let (s, k) = (f.sigma + ds, f.kappa + dk);
                if s >= 0.0 && k >= 0.0 {
                    assert!(sse(s, k) >= here * (1.0 - 1e-9), "{f:?}");
                }
            }
        }
        assert!(f.r_squared.unwrap() > 0.99, "{f:?}");
    }
}

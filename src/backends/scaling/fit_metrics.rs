//! The metrics of a USL fit over measured points, shared by fit-only specs (labels
//! `concurrency=n`) and sweeps (`replicas=n`, `threads=n`): throughput, speedup and
//! efficiency per level, `usl.*` scalars, and the `usl.fit` / `usl.ideal` chart series.

use super::measurements::Point;
use super::usl_fit::{self, Fit};
use crate::engine::metrics::{Labels, Measurements, labels};

/// `(x, y)` points of a chart series.
type Points = Vec<(f64, f64)>;

/// Most points in a chart series.
const MAX_SERIES_POINTS: u32 = 256;

/// Everything a fit-only spec reports for these points.
pub fn measure(points: &[Point]) -> Measurements {
    measure_labelled(points, "concurrency")
}

/// As [`measure`], with the per-level metrics labelled `label=n` (`replicas`, `threads`).
pub fn measure_labelled(points: &[Point], label: &str) -> Measurements {
    let mut m = Measurements::default();
    let levels = mean_per_level(points);
    if let Some(&(n0, x0)) = levels.first() {
        for &(n, x) in &levels {
            let l = labels(&[(label, &n.to_string())]);
            m.scalar("throughput", l.clone(), x);
            if x0 > 0.0 {
                let speedup = x / x0;
                m.scalar("speedup", l.clone(), speedup);
                m.scalar("efficiency", l, speedup / (f64::from(n) / f64::from(n0)));
            }
        }
        if x0 == 0.0 {
            m.notes.push(format!("throughput at the lowest {label} ({n0}) is zero: speedup and efficiency are not reported"));
        }
    }
    match usl_fit::fit(points) {
        Ok(fit) => {
            m.scalar("usl.sigma", Labels::new(), fit.sigma);
            m.scalar("usl.kappa", Labels::new(), fit.kappa);
            m.scalar("usl.lambda", Labels::new(), fit.lambda);
            if let Some(peak) = fit.peak {
                m.scalar(
                    "usl.peak_concurrency",
                    Labels::new(),
                    f64::from(peak.concurrency),
                );
                m.scalar("usl.max_throughput", Labels::new(), peak.throughput);
            }
            if let Some(r2) = fit.r_squared {
                m.scalar("usl.r_squared", Labels::new(), r2);
            }
            let max_measured = levels.last().map_or(1, |l| l.0);
            let (curve, ideal) = chart(&fit, max_measured);
            let x = labels(&[("x", label)]);
            m.push_series("usl.fit", x.clone(), curve);
            m.push_series("usl.ideal", x, ideal);
            m.notes.push(fit.summary());
            if let Some(peak) = fit.peak
                && peak.concurrency > max_measured
            {
                m.notes.push(format!(
                    "warning: the fitted peak N* = {} lies beyond the highest measured {label} ({max_measured}): usl.peak_concurrency and usl.max_throughput are an extrapolation of the fit, not measurements",
                    peak.concurrency
                ));
            }
        }
        Err(why) => m.notes.push(format!(
            "{why}; no usl.* metrics were reported, so SLOs on them fail as no-data"
        )),
    }
    m
}

/// Efficiency at or above which a sweep whose load grew with it saturated nothing.
const UNSATURATED: f64 = 0.9;

/// The honesty warning of a sweep whose offered load grew with the replicas (`mode =
/// "concurrency"`: `per_unit` users per replica): when throughput kept pace with it up to
/// the last step, the sweep measured the load it offered, not what the replicas can do —
/// nothing saturated. `cpus` (0: unknown) says whether the replicas outnumber the cores.
pub fn offered_load_warning(
    points: &[Point],
    label: &str,
    per_unit: u32,
    cpus: usize,
) -> Option<String> {
    let levels = mean_per_level(points);
    let (&(n0, x0), &(n, x)) = (levels.first()?, levels.last()?);
    if n <= n0 || x0 <= 0.0 {
        return None;
    }
    let efficiency = (x / x0) / (f64::from(n) / f64::from(n0));
    if efficiency < UNSATURATED {
        return None;
    }
    let cores = if cpus > 0 && n as usize > cpus {
        format!(" on a host with {cpus} CPUs")
    } else {
        String::new()
    };
    Some(format!(
        "warning: the offered load grew with the {label} ({per_unit} users per replica, {} users at {label}={n}) and throughput kept pace (efficiency {:.1}% at {label}={n}{cores}): nothing saturated, so the sweep measured the load it offered, not how far the service scales; use mode = \"max_rate\" (a rate search per step) to find the limit",
        per_unit.saturating_mul(n),
        efficiency * 100.0
    ))
}

/// `(concurrency, mean throughput)` per distinct level, ascending.
fn mean_per_level(points: &[Point]) -> Vec<(u32, f64)> {
    let mut sorted: Vec<Point> = points.to_vec();
    sorted.sort_by_key(|p| p.concurrency);
    let mut out: Vec<(u32, f64, u32)> = Vec::new();
    for p in sorted {
        match out.last_mut() {
            Some((n, sum, count)) if *n == p.concurrency => {
                *sum += p.throughput;
                *count += 1;
            }
            _ => out.push((p.concurrency, p.throughput, 1)),
        }
    }
    out.into_iter()
        .map(|(n, sum, count)| (n, sum / f64::from(count)))
        .collect()
}

/// The fitted curve and the ideal line over `1..=max(2·N*, max_measured)`, at most
/// [`MAX_SERIES_POINTS`] points, always including N* and the last level.
fn chart(fit: &Fit, max_measured: u32) -> (Points, Points) {
    let upper = fit
        .peak
        .map_or(max_measured, |p| {
            p.concurrency.saturating_mul(2).max(max_measured)
        })
        .max(1);
    let step = upper.div_ceil(MAX_SERIES_POINTS).max(1);
    let mut xs: Vec<u32> = (1..=upper).step_by(step as usize).collect();
    xs.push(upper);
    if let Some(p) = fit.peak {
        xs.push(p.concurrency);
    }
    xs.sort_unstable();
    xs.dedup();
    let curve = xs
        .iter()
        .filter_map(|&n| fit.throughput_at(f64::from(n)).map(|x| (f64::from(n), x)))
        .collect();
    let ideal = xs
        .iter()
        .map(|&n| (f64::from(n), fit.lambda * f64::from(n)))
        .collect();
    (curve, ideal)
}

#[cfg(test)]
mod tests {
    use super::super::usl_fit::tests::{CISCO, points};
    use super::*;
    use crate::engine::metrics::Selection;
    use crate::spec::catalog::{self, Kind};

    fn value(m: &Measurements, metric: &str, l: &[(&str, &str)]) -> Option<f64> {
        match m.select(metric, &labels(l), false) {
            Selection::Value(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn cisco_fit_reports_every_metric_and_the_chart() {
        let m = measure(&points(&CISCO));
        assert_eq!(value(&m, "usl.peak_concurrency", &[]), Some(35.0));
        let sigma = value(&m, "usl.sigma", &[]).unwrap();
        assert!((sigma - 0.02671591).abs() / 0.02671591 < 0.01, "{sigma}");
        assert!(value(&m, "usl.kappa", &[]).is_some() && value(&m, "usl.lambda", &[]).is_some());
        assert!((value(&m, "usl.max_throughput", &[]).unwrap() - 12341.0).abs() < 123.0);
        assert!(value(&m, "usl.r_squared", &[]).unwrap() > 0.99);
        assert_eq!(
            value(&m, "throughput", &[("concurrency", "8")]),
            Some(6531.08)
        );
        assert_eq!(value(&m, "speedup", &[("concurrency", "1")]), Some(1.0));
        let e32 = value(&m, "efficiency", &[("concurrency", "32")]).unwrap();
        assert!((e32 - 12074.39 / 955.16 / 32.0).abs() < 1e-12, "{e32}");
        let fit = m.series.iter().find(|s| s.metric == "usl.fit").unwrap();
        assert_eq!(fit.points.first().unwrap().0, 1.0);
        assert_eq!(fit.points.last().unwrap().0, 70.0);
        assert_eq!(fit.points.len(), 70);
        // N* is ⌊√((1−σ)/κ)⌋ = ⌊35.57⌋ by the published convention; the curve includes it
        let at_peak = fit.points.iter().find(|p| p.0 == 35.0).unwrap().1;
        assert_eq!(Some(at_peak), value(&m, "usl.max_throughput", &[]));
        let ideal = m.series.iter().find(|s| s.metric == "usl.ideal").unwrap();
        assert_eq!(ideal.points.len(), 70);
        assert!(
            m.notes.iter().any(|n| n.contains("N* = 35")),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn every_scalar_is_in_the_catalog_with_allowed_labels() {
        for data in [&CISCO[..], &CISCO[..4]] {
            let m = measure(&points(data));
            for s in &m.scalars {
                let def = catalog::lookup(Kind::Scaling, &s.metric)
                    .unwrap_or_else(|| panic!("{} not in the catalog", s.metric));
                for l in s.labels.keys() {
                    assert!(catalog::allows_label(def, l), "{}{{{l}}}", s.metric);
                }
            }
        }
    }

    #[test]
    fn five_points_report_throughput_but_no_fit() {
        let m = measure(&points(&CISCO[..5]));
        assert!(
            m.scalars.iter().all(|s| !s.metric.starts_with("usl.")),
            "{:?}",
            m.scalars
        );
        assert!(m.series.is_empty());
        assert_eq!(
            value(&m, "throughput", &[("concurrency", "5")]),
            Some(4315.54)
        );
        assert!(
            m.notes
                .iter()
                .any(|n| n.starts_with("not enough points for a USL fit")),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn repeated_levels_are_averaged_and_zero_baselines_skip_speedup() {
        let m = measure(&points(&[(2, 10.0), (1, 4.0), (2, 14.0)]));
        assert_eq!(value(&m, "throughput", &[("concurrency", "2")]), Some(12.0));
        assert_eq!(value(&m, "speedup", &[("concurrency", "2")]), Some(3.0));
        assert_eq!(value(&m, "efficiency", &[("concurrency", "2")]), Some(1.5));
        let m = measure(&points(&[(1, 0.0), (2, 14.0)]));
        assert_eq!(value(&m, "speedup", &[("concurrency", "2")]), None);
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("speedup and efficiency are not reported"))
        );
    }

    #[test]
    fn load_that_grew_with_the_replicas_and_never_saturated_is_called_out() {
        // each replica brought its own users and throughput grew with them: 100.5 % at 6
        let grew = points(&[(1, 100.0), (2, 201.0), (4, 402.0), (6, 603.0)]);
        let w = offered_load_warning(&grew, "replicas", 8, 2).unwrap();
        assert!(w.starts_with("warning: the offered load grew"), "{w}");
        assert!(
            w.contains("efficiency 100.5% at replicas=6 on a host with 2 CPUs"),
            "{w}"
        );
        assert!(w.contains("48 users at replicas=6"), "{w}");
        // saturation (efficiency 50 %) is a real measurement of where scaling stops
        let saturated = points(&[(1, 100.0), (2, 180.0), (4, 250.0), (6, 300.0)]);
        assert_eq!(offered_load_warning(&saturated, "replicas", 8, 2), None);
        assert_eq!(
            offered_load_warning(&points(&[(1, 5.0)]), "replicas", 8, 2),
            None
        );
    }

    #[test]
    fn chart_is_bounded_for_far_peaks() {
        let fit = Fit {
            sigma: 0.0,
            kappa: 1e-12,
            lambda: 100.0,
            peak: Some(usl_fit::Peak {
                concurrency: 1_000_000,
                throughput: 1.0,
            }),
            r_squared: None,
            points: 6,
            kappa_matters: true,
            unconstrained: None,
        };
        let (curve, ideal) = chart(&fit, 8);
        assert!(
            curve.len() <= MAX_SERIES_POINTS as usize + 2 && curve.len() > 100,
            "{}",
            curve.len()
        );
        assert_eq!(curve.last().unwrap().0, 2_000_000.0);
        assert!(curve.iter().any(|p| p.0 == 1_000_000.0));
        assert_eq!(ideal.len(), curve.len());
    }
}

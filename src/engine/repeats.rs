//! `repeat = N`: the measurements of N fresh runs of one spec, pooled into one set that the
//! SLOs are judged on, and the per-repeat values of each SLO that show the spread and feed
//! the noise-aware baseline comparison ([`super::noise`]).
//!
//! Pooling is exact where the data allows it: histograms of the same metric and labels are
//! added (the pooled p95 is the p95 of every observation), counters are summed and the
//! elapsed seconds too (so a pooled `rate` is all events over all measured time). A gauge or
//! ratio scalar (e.g. `hit_ratio`) is the mean over the repeats that measured it. Series are
//! laid end to end, each repeat shifted by the measured time of the ones before it.

use serde::{Deserialize, Serialize};

use super::metrics::{Measurements, Scalar};
use super::verdict::{is_counter, observe};
use crate::spec::objective::Slo;

/// One repeat of a spec, as kept in `results.json` (`specs[].repeats`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatRun {
    /// 1-based.
    pub index: u32,
    pub duration_s: f64,
    /// Why this repeat failed or stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub measurements: Measurements,
}

/// The measurements of several repeats as one set (see the module docs). One repeat is
/// returned as is.
pub fn pool(runs: &[&Measurements]) -> Measurements {
    match runs {
        [] => return Measurements::default(),
        [one] => return (*one).clone(),
        _ => {}
    }
    let mut out = Measurements::default();
    let mut gauges: Vec<(Scalar, usize)> = Vec::new();
    let mut offset = 0.0;
    for m in runs {
        out.absorb(m);
        for s in &m.scalars {
            let same = |g: &Scalar| g.metric == s.metric && g.labels == s.labels;
            match gauges.iter_mut().find(|(g, _)| same(g)) {
                Some((g, n)) => {
                    g.value += s.value;
                    *n += 1;
                }
                None => gauges.push((s.clone(), 1)),
            }
        }
        for s in &m.series {
            let shifted = s.points.iter().map(|&(t, v)| (t + offset, v));
            match out
                .series
                .iter_mut()
                .find(|o| o.metric == s.metric && o.labels == s.labels)
            {
                Some(o) => o.points.extend(shifted),
                None => out.push_series(&s.metric, s.labels.clone(), shifted.collect()),
            }
        }
        offset += m.elapsed_s.max(0.0);
        out.elapsed_s += m.elapsed_s;
    }
    out.scalars = gauges
        .into_iter()
        .map(|(mut s, n)| {
            if !is_counter(&s.metric) && !out.counters.contains(&s.metric) {
                s.value /= n as f64;
            }
            s
        })
        .collect();
    // a percentile table cannot be pooled: it stays only where every repeat has the same one
    out.quantiles = runs[0]
        .quantiles
        .iter()
        .filter(|t| runs.iter().all(|m| m.quantiles.contains(t)))
        .cloned()
        .collect();
    out.notes.push(format!(
        "pooled over {} repeats: histograms added, counters summed, other scalars averaged",
        runs.len()
    ));
    out
}

/// The SLO's left-hand side in each repeat (`None` where a repeat has no data for it).
pub fn per_repeat(slo: &Slo, runs: &[&Measurements]) -> Vec<Option<f64>> {
    runs.iter()
        .map(|m| observe(&slo.expr, slo.phase.as_deref(), m))
        .collect()
}

/// `(min, median, max)` of the values that are there; `None` for none.
pub fn spread(values: &[Option<f64>]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[0], median_sorted(&v), v[v.len() - 1]))
}

/// The median of sorted values (the mean of the middle two for an even count).
pub fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::{Labels, Selection, labels};
    use crate::spec::catalog::Kind;

    fn run(ms: u32, n: u32, hits: f64) -> Measurements {
        let mut m = Measurements {
            elapsed_s: 2.0,
            ..Measurements::default()
        };
        for _ in 0..n {
            m.histogram("latency", Labels::new(), 1e-6)
                .record(f64::from(ms) * 1e-3);
        }
        m.scalar("requests", labels(&[("status", "200")]), f64::from(n));
        m.scalar("hit_ratio", Labels::new(), hits);
        m.push_series("throughput", Labels::new(), vec![(0.0, 1.0), (1.0, 2.0)]);
        m.error_samples_n("boom", Labels::new(), 2);
        m.notes.push("same note".into());
        m
    }

    #[test]
    fn pooling_adds_histograms_sums_counters_and_averages_gauges() {
        let (a, b) = (run(100, 300, 0.5), run(200, 100, 0.7));
        let p = pool(&[&a, &b]);
        assert_eq!(p.elapsed_s, 4.0);
        let Selection::Histogram(h, _) = p.select("latency", &Labels::new(), false) else {
            panic!()
        };
        assert_eq!(h.len(), 400);
        // the pooled p50 is the median of all 400 observations, not a mean of medians
        assert_eq!(h.value_at_quantile(0.5), h.highest_equivalent(100_000));
        assert_eq!(h.value_at_quantile(0.9), h.highest_equivalent(200_000));
        assert!(
            matches!(p.select("requests", &Labels::new(), true), Selection::Value(v) if v == 400.0)
        );
        assert!(
            matches!(p.select("hit_ratio", &Labels::new(), false), Selection::Value(v) if (v - 0.6).abs() < 1e-12)
        );
        assert_eq!(
            p.series[0].points,
            [(0.0, 1.0), (1.0, 2.0), (2.0, 1.0), (3.0, 2.0)]
        );
        assert_eq!(p.error_samples[0].count, 4);
        assert_eq!(p.notes.iter().filter(|n| *n == "same note").count(), 1);
        let slo = Slo::compile("p50(latency) < 1s", Kind::Load).unwrap();
        let values = per_repeat(&slo, &[&a, &b]);
        assert_eq!(values.len(), 2);
        assert!((values[0].unwrap() - 0.1).abs() < 1e-3 && (values[1].unwrap() - 0.2).abs() < 1e-3);
        // one repeat is kept as is
        assert_eq!(pool(&[&a]).elapsed_s, 2.0);
    }

    #[test]
    fn spread_ignores_missing_values() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[None]), None);
        assert_eq!(
            spread(&[Some(3.0), None, Some(1.0), Some(2.0), Some(10.0)]),
            Some((1.0, 2.5, 10.0))
        );
    }
}

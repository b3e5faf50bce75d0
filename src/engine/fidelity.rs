//! How faithfully a metric was measured, and distributions known only by the statistics
//! another tool exported (a k6 summary, Locust's CSV stats, oha's JSON).
//!
//! An imported metric carries its [`Fidelity`]: `exact` (every sample), `bucketed` (the
//! source's own histogram buckets) or `percentiles` (a table of statistics). A percentile
//! table answers exactly the statistics it has, as given; any other one is *not evaluable*,
//! with the reason and what to export instead — never an interpolated value.

use serde::{Deserialize, Serialize};

use super::metrics::Labels;
use crate::spec::slo::Agg;
use crate::spec::units::trim_float;

/// How faithfully a metric was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fidelity {
    /// Every sample (HDR histograms at 3 significant digits): any statistic.
    Exact,
    /// The source's own histogram buckets: any statistic, to the bucket's resolution.
    Bucketed,
    /// A table of statistics: only those it has, as given.
    Percentiles,
}

impl Fidelity {
    pub fn as_str(self) -> &'static str {
        match self {
            Fidelity::Exact => "exact",
            Fidelity::Bucketed => "bucketed",
            Fidelity::Percentiles => "percentiles only",
        }
    }
}

/// What an imported source gives of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricFidelity {
    pub metric: String,
    pub fidelity: Fidelity,
    /// The source, as a sentence names it: "the k6 summary".
    pub source: String,
    /// The labels the source distinguishes for this metric; a selector on any other label
    /// is not evaluable.
    pub labels: Vec<String>,
    /// What to do for a statistic the source lacks.
    pub hint: String,
    /// What to do for a label the source lacks.
    pub label_hint: String,
}

impl MetricFidelity {
    /// Why `metric{selector}` cannot be answered from this source: a label it lacks.
    pub fn missing_label(&self, selector: &Labels) -> Option<String> {
        let key = selector.keys().find(|k| !self.labels.contains(k))?;
        let has = if self.labels.is_empty() {
            "no labels".to_string()
        } else {
            format!("only {}", self.labels.join(", "))
        };
        Some(format!(
            "{} has no `{key}` label on {} ({has}): {}",
            self.source, self.metric, self.label_hint
        ))
    }
}

/// A distribution known by the statistics a source exported, in canonical units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuantileTable {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `(percentile in percent, value)`, as the source gave them.
    #[serde(default)]
    pub percentiles: Vec<(f64, f64)>,
}

impl QuantileTable {
    pub fn new(metric: &str, labels: Labels) -> QuantileTable {
        QuantileTable {
            metric: metric.to_string(),
            labels,
            count: None,
            mean: None,
            min: None,
            max: None,
            percentiles: Vec::new(),
        }
    }

    /// The percentile `p` (in percent) as given, if it is.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|(_, v)| *v)
    }

    /// What the table gives, for messages: `p50, p90, p95, min, max, mean`.
    pub fn given(&self) -> String {
        let mut out: Vec<String> = self
            .percentiles
            .iter()
            .map(|(p, _)| format!("p{}", trim_float(*p)))
            .collect();
        for (name, v) in [
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("mean", self.mean.is_some()),
            ("count", self.count.is_some()),
        ] {
            if v {
                out.push(name.to_string());
            }
        }
        if out.is_empty() {
            "nothing".to_string()
        } else {
            out.join(", ")
        }
    }

    /// The aggregation `agg` of this table over `elapsed_s` seconds, or why not (`source`
    /// names the source and `hint` says what to export instead).
    pub fn answer(&self, agg: Agg, elapsed_s: f64, source: &MetricFidelity) -> Result<f64, String> {
        let (value, name) = match agg {
            Agg::Percentile(p) => (self.percentile(p), format!("p{}", trim_float(p))),
            Agg::Mean => (self.mean, "mean".to_string()),
            Agg::Min => (self.min, "min".to_string()),
            Agg::Max => (self.max, "max".to_string()),
            Agg::Count => (self.count.map(|c| c as f64), "count".to_string()),
            Agg::Rate => (
                self.count
                    .filter(|_| elapsed_s > 0.0 && elapsed_s.is_finite())
                    .map(|c| c as f64 / elapsed_s),
                "rate".to_string(),
            ),
        };
        value.ok_or_else(|| {
            format!(
                "{} has no {name} of {} (it gives {}): {}",
                source.source,
                self.metric,
                self.given(),
                source.hint
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::labels;

    fn source() -> MetricFidelity {
        MetricFidelity {
            metric: "latency".into(),
            fidelity: Fidelity::Percentiles,
            source: "the k6 summary".into(),
            labels: vec!["step".into()],
            hint: "export it with `--summary-trend-stats`".into(),
            label_hint: "import `--out json`".into(),
        }
    }

    #[test]
    fn a_table_answers_what_it_has_and_says_why_not_otherwise() {
        let mut t = QuantileTable::new("latency", Labels::new());
        t.percentiles = vec![(90.0, 0.2), (95.0, 0.25)];
        t.max = Some(1.0);
        t.count = Some(100);
        let s = source();
        assert_eq!(t.answer(Agg::Percentile(95.0), 10.0, &s), Ok(0.25));
        assert_eq!(t.answer(Agg::Max, 10.0, &s), Ok(1.0));
        assert_eq!(t.answer(Agg::Rate, 10.0, &s), Ok(10.0));
        let why = t.answer(Agg::Percentile(99.0), 10.0, &s).unwrap_err();
        assert_eq!(
            why,
            "the k6 summary has no p99 of latency (it gives p90, p95, max, count): export it with `--summary-trend-stats`"
        );
        assert!(t.answer(Agg::Mean, 10.0, &s).is_err());
    }

    #[test]
    fn a_label_the_source_lacks_is_named() {
        let s = source();
        assert_eq!(s.missing_label(&labels(&[("step", "a")])), None);
        let why = s.missing_label(&labels(&[("status", "200")])).unwrap();
        assert_eq!(
            why,
            "the k6 summary has no `status` label on latency (only step): import `--out json`"
        );
    }
}

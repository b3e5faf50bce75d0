//! Formats that carry statistics per request name instead of every sample (a k6 summary,
//! Locust's stats, oha's and memtier's JSON): one [`Group`] per label set the source
//! distinguishes, each with its counts and its latency as a histogram (bucketed or exact) or
//! a table of statistics. [`measure`] turns them into measurements with their fidelity.

use hdrhistogram::Histogram;
use serde_json::Value;

use super::ImportError;
use crate::engine::metrics::{
    Fidelity, HistogramEntry, Labels, Measurements, MetricFidelity, QuantileTable,
};

/// A latency distribution as the source gives it.
#[derive(Debug, Clone)]
pub enum Dist {
    /// Observations in microseconds (bucketed or exact).
    Histogram(Histogram<u64>),
    /// Statistics, in seconds (`metric` is set by [`measure`]).
    Table(QuantileTable),
}

/// The counts and latency of one label set; `{}` is the whole run.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub labels: Labels,
    pub requests: Option<u64>,
    pub errors: Option<u64>,
    pub latency: Option<Dist>,
}

/// Everything a summary file says.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Measured seconds (the denominator of `throughput`).
    pub elapsed_s: f64,
    /// The source as a sentence names it: "the k6 summary".
    pub source: &'static str,
    /// The fidelity of the latency distributions.
    pub fidelity: Fidelity,
    /// What to do for a statistic the source lacks.
    pub hint: &'static str,
    /// What to do for a label the source lacks.
    pub label_hint: &'static str,
    /// Label sets with their data. Histogram groups are disjoint (a selection adds them);
    /// table groups may nest (the table with the fewest labels answers).
    pub groups: Vec<Group>,
    /// Error messages and how often each occurred, with their labels.
    pub errors: Vec<(String, Labels, u64)>,
    /// Facts about the source a report should state.
    pub notes: Vec<String>,
}

impl Summary {
    pub fn new(
        source: &'static str,
        fidelity: Fidelity,
        hint: &'static str,
        label_hint: &'static str,
    ) -> Summary {
        Summary {
            elapsed_s: 0.0,
            source,
            fidelity,
            hint,
            label_hint,
            groups: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The group of `labels`, created on first use.
    pub fn group(&mut self, labels: Labels) -> &mut Group {
        if let Some(i) = self.groups.iter().position(|g| g.labels == labels) {
            return &mut self.groups[i];
        }
        self.groups.push(Group {
            labels,
            ..Group::default()
        });
        self.groups.last_mut().expect("just pushed")
    }

    /// Requests over every group of the whole run (`{}`), for plan lines.
    pub fn requests(&self) -> u64 {
        self.groups
            .iter()
            .find(|g| g.labels.is_empty())
            .and_then(|g| g.requests)
            .unwrap_or_else(|| self.groups.iter().filter_map(|g| g.requests).sum())
    }

    /// The label sets, as `step=login` text, for plan lines (`(all)` for the whole run).
    pub fn label_sets(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| {
                if g.labels.is_empty() {
                    "(all)".to_string()
                } else {
                    g.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                }
            })
            .collect()
    }

    fn fidelity_entry(
        &self,
        metric: &str,
        fidelity: Fidelity,
        has: &dyn Fn(&Group) -> bool,
    ) -> MetricFidelity {
        let mut labels: Vec<String> = Vec::new();
        for g in self.groups.iter().filter(|g| has(g)) {
            for k in g.labels.keys() {
                if !labels.contains(k) {
                    labels.push(k.clone());
                }
            }
        }
        MetricFidelity {
            metric: metric.to_string(),
            fidelity,
            source: self.source.to_string(),
            labels,
            hint: self.hint.to_string(),
            label_hint: self.label_hint.to_string(),
        }
    }
}

/// The measurements of a summary: `latency` and `service_time` (the same: these tools
/// measure from the actual send), `requests`, `errors`, `error_rate` and `throughput` per
/// group, and the fidelity of each metric.
pub fn measure(s: &Summary) -> Measurements {
    let mut m = Measurements {
        elapsed_s: s.elapsed_s,
        ..Measurements::default()
    };
    for g in &s.groups {
        for metric in ["latency", "service_time"] {
            match &g.latency {
                Some(Dist::Histogram(h)) if !h.is_empty() => {
                    let mut e = HistogramEntry::micros(metric, g.labels.clone());
                    e.hist = h.clone();
                    m.histograms.push(e);
                }
                Some(Dist::Table(t)) => m.quantiles.push(QuantileTable {
                    metric: metric.to_string(),
                    labels: g.labels.clone(),
                    ..t.clone()
                }),
                _ => {}
            }
        }
        if let Some(r) = g.requests {
            m.scalar("requests", g.labels.clone(), r as f64);
            if s.elapsed_s > 0.0 {
                m.scalar("throughput", g.labels.clone(), r as f64 / s.elapsed_s);
            }
        }
        if let Some(e) = g.errors {
            m.scalar("errors", g.labels.clone(), e as f64);
        }
        if let (Some(r), Some(e)) = (g.requests, g.errors)
            && r > 0
        {
            m.scalar("error_rate", g.labels.clone(), e as f64 / r as f64);
        }
    }
    for (msg, labels, n) in &s.errors {
        m.error_samples_n(msg, labels.clone(), *n);
    }
    let has_latency = |g: &Group| g.latency.is_some();
    let has_requests = |g: &Group| g.requests.is_some();
    let has_errors = |g: &Group| g.errors.is_some();
    let has_rate = |g: &Group| g.requests.is_some() && g.errors.is_some();
    for (metric, fidelity, has) in [
        (
            "latency",
            s.fidelity,
            &has_latency as &dyn Fn(&Group) -> bool,
        ),
        ("service_time", s.fidelity, &has_latency),
        ("requests", Fidelity::Exact, &has_requests),
        ("throughput", Fidelity::Exact, &has_requests),
        ("errors", Fidelity::Exact, &has_errors),
        ("error_rate", Fidelity::Exact, &has_rate),
    ] {
        if s.groups.iter().any(has) {
            m.fidelity.push(s.fidelity_entry(metric, fidelity, has));
        }
    }
    m.notes.extend(s.notes.iter().cloned());
    m
}

/// Parse `text` as JSON; a syntax error (a truncated file) is located at its line.
pub fn parse_json(text: &str, what: &str) -> Result<Value, Vec<ImportError>> {
    serde_json::from_str(text).map_err(|e| {
        vec![ImportError {
            line: e.line(),
            message: format!("not {what}: {e}"),
        }]
    })
}

/// An error about the file as a whole (no line).
pub fn whole(message: impl Into<String>) -> Vec<ImportError> {
    vec![ImportError {
        line: 0,
        message: message.into(),
    }]
}

/// A non-negative number in `v`, or `None`.
pub fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
}

/// A count in `v` (a JSON integer or an integral number), or `None`.
pub fn count(v: Option<&Value>) -> Option<u64> {
    number(v).filter(|x| x.fract() == 0.0).map(|x| x as u64)
}

/// The percentile of a key such as `p95`, `p99.9` or `p(99.9)`, or `p99.900` (memtier).
pub fn percentile_key(key: &str) -> Option<f64> {
    let rest = key.strip_prefix('p')?;
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest);
    rest.parse::<f64>().ok().filter(|p| *p > 0.0 && *p <= 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::labels;

    #[test]
    fn percentile_keys_of_every_source() {
        assert_eq!(percentile_key("p95"), Some(95.0));
        assert_eq!(percentile_key("p(99.9)"), Some(99.9));
        assert_eq!(percentile_key("p99.900"), Some(99.9));
        assert_eq!(percentile_key("p0"), None);
        assert_eq!(percentile_key("med"), None);
    }

    #[test]
    fn groups_become_scalars_tables_and_fidelity() {
        let mut s = Summary::new("the test", Fidelity::Percentiles, "h", "lh");
        s.elapsed_s = 10.0;
        let mut t = QuantileTable::new("", Labels::new());
        t.percentiles = vec![(95.0, 0.1)];
        let g = s.group(Labels::new());
        g.requests = Some(100);
        g.errors = Some(5);
        g.latency = Some(Dist::Table(t));
        s.group(labels(&[("status", "500")])).requests = Some(5);
        let m = measure(&s);
        assert_eq!(m.quantiles.len(), 2);
        assert_eq!(m.quantiles[0].metric, "latency");
        let f = |name: &str| m.fidelity.iter().find(|f| f.metric == name).unwrap();
        assert!(f("latency").labels.is_empty());
        assert_eq!(f("requests").labels, ["status"]);
        assert_eq!(f("error_rate").fidelity, Fidelity::Exact);
        let rate = m.scalars.iter().find(|x| x.metric == "error_rate").unwrap();
        assert_eq!(rate.value, 0.05);
    }
}

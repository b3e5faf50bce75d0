//! Measurements: labelled scalars, HDR histograms and per-second time series, as produced by
//! backends and stored in `results.json`. Histograms are serialized losslessly (HDR V2,
//! base64) so that results can be merged later without averaging percentiles.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

pub use super::fidelity::{Fidelity, MetricFidelity, QuantileTable};
pub use crate::spec::catalog::Labels;

/// Build labels from pairs: `labels(&[("op", "get")])`.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Scalar {
    pub metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// In the metric's canonical unit (seconds, bytes, per second, fraction, …).
    pub value: f64,
}

/// An HDR histogram of integer observations; `scale` converts a recorded integer to the
/// metric's canonical unit (1e-6 for microseconds → seconds).
#[derive(Debug, Clone)]
pub struct HistogramEntry {
    pub metric: String,
    pub labels: Labels,
    pub scale: f64,
    pub hist: Histogram<u64>,
}

/// The wire form of [`HistogramEntry`] in results.json.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Histogram")]
struct HistogramWire {
    metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: Labels,
    scale: f64,
    count: u64,
    /// Summary for humans and for renderers that do not decode HDR data.
    summary: HistogramSummary,
    /// HDR histogram V2 encoding, base64.
    hdr: String,
}

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistogramSummary {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl HistogramEntry {
    /// A histogram of durations recorded in microseconds, 3 significant digits.
    pub fn micros(metric: &str, labels: Labels) -> HistogramEntry {
        HistogramEntry::new(metric, labels, 1e-6)
    }

    pub fn new(metric: &str, labels: Labels, scale: f64) -> HistogramEntry {
        let mut hist = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        hist.auto(true);
        HistogramEntry {
            metric: metric.to_string(),
            labels,
            scale,
            hist,
        }
    }

    /// Record a value given in the canonical unit (seconds for time), clamped at zero.
    pub fn record(&mut self, canonical: f64) {
        let raw = (canonical / self.scale).round().max(0.0) as u64;
        // auto-resize is on: recording cannot fail except for u64 overflow
        let _ = self.hist.record(raw);
    }

    pub fn summary(&self) -> HistogramSummary {
        summarize(&self.hist, self.scale)
    }
}

pub fn summarize(h: &Histogram<u64>, scale: f64) -> HistogramSummary {
    if h.is_empty() {
        return HistogramSummary {
            min: 0.0,
            mean: 0.0,
            p50: 0.0,
            p90: 0.0,
            p95: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
        };
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 * scale;
    HistogramSummary {
        min: h.min() as f64 * scale,
        mean: h.mean() * scale,
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        max: h.max() as f64 * scale,
    }
}

impl schemars::JsonSchema for HistogramEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Histogram".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        HistogramWire::json_schema(generator)
    }
}

impl Serialize for HistogramEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.hist, &mut buf)
            .map_err(serde::ser::Error::custom)?;
        HistogramWire {
            metric: self.metric.clone(),
            labels: self.labels.clone(),
            scale: self.scale,
            count: self.hist.len(),
            summary: self.summary(),
            hdr: base64::engine::general_purpose::STANDARD.encode(buf),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HistogramEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = HistogramWire::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(wire.hdr.as_bytes())
            .map_err(serde::de::Error::custom)?;
        let mut hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(serde::de::Error::custom)?;
        hist.auto(true);
        Ok(HistogramEntry {
            metric: wire.metric,
            labels: wire.labels,
            scale: wire.scale,
            hist,
        })
    }
}

/// A per-second (or per-step) series: `(seconds since the spec started, value)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Series {
    pub metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

/// The first N error messages or bodies of a run, truncated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorSample {
    pub message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// How many errors had this exact message.
    pub count: u64,
}

/// A measurement the backend knows to be impossible or untrustworthy (e.g. a cache hit ratio
/// above the Bélády optimum): SLOs on the named metric fail as `invalid-measurement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvalidMeasurement {
    pub metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    pub reason: String,
}

/// Everything one backend run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Measurements {
    /// Wall-clock seconds the measured part of the run took (the denominator of `rate`).
    pub elapsed_s: f64,
    #[serde(default)]
    pub scalars: Vec<Scalar>,
    #[serde(default)]
    pub histograms: Vec<HistogramEntry>,
    #[serde(default)]
    pub series: Vec<Series>,
    #[serde(default)]
    pub error_samples: Vec<ErrorSample>,
    #[serde(default)]
    pub invalid: Vec<InvalidMeasurement>,
    /// Free-form facts a report should state (e.g. "int8 execution dequantizes per matmul").
    #[serde(default)]
    pub notes: Vec<String>,
    /// Counters outside the catalog (declared by an `exec` spec): their label sets are
    /// summed like the catalog's counters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<String>,
    /// How faithfully each imported metric was measured, and which labels its source has
    /// (empty for perfspec's own measurements, which are all exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fidelity: Vec<MetricFidelity>,
    /// Distributions known only by the statistics their source exported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<QuantileTable>,
}

/// Maximum distinct error messages kept per run.
pub const MAX_ERROR_SAMPLES: usize = 50;
/// Maximum length of one error message or body kept.
pub const MAX_ERROR_LEN: usize = 512;

impl Measurements {
    pub fn scalar(&mut self, metric: &str, labels: Labels, value: f64) {
        self.scalars.push(Scalar {
            metric: metric.to_string(),
            labels,
            value,
        });
    }

    /// The histogram for `(metric, labels)`, created on first use.
    pub fn histogram(&mut self, metric: &str, labels: Labels, scale: f64) -> &mut HistogramEntry {
        if let Some(i) = self
            .histograms
            .iter()
            .position(|h| h.metric == metric && h.labels == labels)
        {
            return &mut self.histograms[i];
        }
        self.histograms
            .push(HistogramEntry::new(metric, labels, scale));
        self.histograms.last_mut().expect("just pushed")
    }

    pub fn push_series(&mut self, metric: &str, labels: Labels, points: Vec<(f64, f64)>) {
        self.series.push(Series {
            metric: metric.to_string(),
            labels,
            points,
        });
    }

    /// Add what `other` measured that merges without knowing how the runs relate (repeats
    /// after each other, shards side by side): histograms added exactly, error samples
    /// counted, invalid flags, declared counters, notes and fidelity kept once. Scalars and
    /// series are the caller's: how they combine depends on that relation.
    pub fn absorb(&mut self, other: &Measurements) {
        fn once<T: Clone + PartialEq>(into: &mut Vec<T>, from: &[T]) {
            for x in from {
                if !into.contains(x) {
                    into.push(x.clone());
                }
            }
        }
        for h in &other.histograms {
            // scales of one metric are equal by construction; `add` only fails on overflow
            let _ = self
                .histogram(&h.metric, h.labels.clone(), h.scale)
                .hist
                .add(&h.hist);
        }
        for e in &other.error_samples {
            self.error_samples_n(&e.message, e.labels.clone(), e.count);
        }
        once(&mut self.invalid, &other.invalid);
        once(&mut self.counters, &other.counters);
        once(&mut self.notes, &other.notes);
        once(&mut self.fidelity, &other.fidelity);
    }

    /// Keep an error message (truncated); identical messages are counted, not repeated.
    pub fn error_sample(&mut self, message: &str, labels: Labels) {
        self.error_samples_n(message, labels, 1);
    }

    /// [`Measurements::error_sample`] for `n` occurrences of the same message.
    pub fn error_samples_n(&mut self, message: &str, labels: Labels, n: u64) {
        if n == 0 {
            return;
        }
        let mut msg: String = message.chars().take(MAX_ERROR_LEN).collect();
        if msg.len() < message.len() {
            msg.push('…');
        }
        if let Some(e) = self
            .error_samples
            .iter_mut()
            .find(|e| e.message == msg && e.labels == labels)
        {
            e.count += n;
        } else if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(ErrorSample {
                message: msg,
                labels,
                count: n,
            });
        }
    }

    pub fn mark_invalid(&mut self, metric: &str, labels: Labels, reason: impl Into<String>) {
        self.invalid.push(InvalidMeasurement {
            metric: metric.to_string(),
            labels,
            reason: reason.into(),
        });
    }
}

/// Whether `labels` has every `key=value` of `selector`.
pub fn matches(labels: &Labels, selector: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What a query of one metric with a label selector found.
#[derive(Debug)]
pub enum Selection {
    /// Every matching histogram merged exactly (sum of counts), with its scale.
    Histogram(Histogram<u64>, f64),
    /// A single value: the scalar with exactly these labels, or the sum of counters.
    Value(f64),
    /// A table of the statistics an imported source gave, and what the source is.
    Table(QuantileTable, MetricFidelity),
    /// The source cannot answer the selection (a label it lacks, tables that cannot be
    /// merged): why, and what to do instead.
    NotEvaluable(String),
    /// Nothing matched.
    Empty,
}

impl Measurements {
    /// Select `metric{selector}`: histograms whose labels include the selector are merged;
    /// a scalar with exactly the selector's labels is returned as is; counters without an
    /// exact entry are summed over the matching label sets.
    pub fn select(&self, metric: &str, selector: &Labels, summable: bool) -> Selection {
        let source = self.fidelity.iter().find(|f| f.metric == metric);
        if let Some(why) = source.and_then(|f| f.missing_label(selector)) {
            return Selection::NotEvaluable(why);
        }
        if let Some(f) = source
            && let Some(t) = self.table(f, selector)
        {
            return t;
        }
        let hs: Vec<&HistogramEntry> = self
            .histograms
            .iter()
            .filter(|h| h.metric == metric && matches(&h.labels, selector))
            .collect();
        if let Some(first) = hs.first() {
            let mut merged = first.hist.clone();
            for h in &hs[1..] {
                // scales of one metric are equal by construction; `add` only fails on overflow
                let _ = merged.add(&h.hist);
            }
            return Selection::Histogram(merged, first.scale);
        }
        if let Some(s) = self
            .scalars
            .iter()
            .find(|s| s.metric == metric && &s.labels == selector)
        {
            return Selection::Value(s.value);
        }
        if summable {
            let matching: Vec<f64> = self
                .scalars
                .iter()
                .filter(|s| s.metric == metric && matches(&s.labels, selector))
                .map(|s| s.value)
                .collect();
            if !matching.is_empty() {
                return Selection::Value(matching.iter().sum());
            }
        }
        Selection::Empty
    }

    /// The quantile table of `metric{selector}`: of the tables whose labels include the
    /// selector, the one with the fewest labels (the aggregate the source gave), when it is
    /// the only one with that few. `None` when no table matches.
    fn table(&self, source: &MetricFidelity, selector: &Labels) -> Option<Selection> {
        let found: Vec<&QuantileTable> = self
            .quantiles
            .iter()
            .filter(|t| t.metric == source.metric && matches(&t.labels, selector))
            .collect();
        let fewest = found.iter().map(|t| t.labels.len()).min()?;
        let top: Vec<&&QuantileTable> = found.iter().filter(|t| t.labels.len() == fewest).collect();
        Some(match top.as_slice() {
            [one] => Selection::Table((**one).clone(), source.clone()),
            _ => Selection::NotEvaluable(format!(
                "{} gives percentiles of {} per {} and percentiles of {} of them cannot be merged: {}",
                source.source,
                source.metric,
                source.labels.join(", "),
                top.len(),
                source.label_hint
            )),
        })
    }

    /// Invalid-measurement flags that apply to `metric{selector}`.
    pub fn invalid_for(&self, metric: &str, selector: &Labels) -> Option<&InvalidMeasurement> {
        self.invalid
            .iter()
            .find(|i| i.metric == metric && matches(&i.labels, selector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_losslessly_and_merge_exactly() {
        let mut m = Measurements::default();
        for i in 1..=1000 {
            m.histogram("latency", labels(&[("step", "a")]), 1e-6)
                .record(i as f64 * 1e-3);
        }
        for i in 1..=1000 {
            m.histogram("latency", labels(&[("step", "b")]), 1e-6)
                .record(i as f64 * 2e-3);
        }
        let json = serde_json::to_string(&m).unwrap();
        let back: Measurements = serde_json::from_str(&json).unwrap();
        assert_eq!(back.histograms[0].hist, m.histograms[0].hist);
        let Selection::Histogram(h, scale) = back.select("latency", &Labels::new(), false) else {
            panic!()
        };
        assert_eq!(h.len(), 2000);
        let p50 = h.value_at_quantile(0.5) as f64 * scale;
        // the merged median is that of the pooled sample: #{a <= x} + #{b <= x} = 1000 at x = 667ms
        assert!((p50 - 0.667).abs() < 0.001, "{p50}");
        let Selection::Histogram(hb, _) = back.select("latency", &labels(&[("step", "b")]), false)
        else {
            panic!()
        };
        assert_eq!(hb.len(), 1000);
        assert!(matches!(
            back.select("latency", &labels(&[("step", "c")]), false),
            Selection::Empty
        ));
    }

    #[test]
    fn scalars_select_exactly_and_counters_sum() {
        let mut m = Measurements::default();
        m.scalar("errors", labels(&[("status", "500")]), 3.0);
        m.scalar("errors", labels(&[("status", "503")]), 4.0);
        m.scalar("hit_ratio", labels(&[("tier", "l1")]), 0.5);
        assert!(
            matches!(m.select("errors", &Labels::new(), true), Selection::Value(v) if v == 7.0)
        );
        assert!(matches!(
            m.select("hit_ratio", &Labels::new(), false),
            Selection::Empty
        ));
        assert!(
            matches!(m.select("hit_ratio", &labels(&[("tier", "l1")]), false), Selection::Value(v) if v == 0.5)
        );
    }

    #[test]
    fn error_samples_are_capped_and_counted() {
        let mut m = Measurements::default();
        for i in 0..200 {
            m.error_sample(&format!("boom {}", i % 60), Labels::new());
        }
        m.error_sample(&"x".repeat(5000), Labels::new());
        assert_eq!(m.error_samples.len(), MAX_ERROR_SAMPLES);
        assert_eq!(m.error_samples[0].count, 4);
    }
}

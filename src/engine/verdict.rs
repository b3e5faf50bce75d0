//! SLO evaluation: one [`Slo`] + the run's [`Measurements`] (+ the baseline's) → one
//! [`SloOutcome`] with a status (pass / warn / fail), a reason, the observed value, the
//! threshold and a human sentence.

use serde::{Deserialize, Serialize};

use crate::engine::metrics::{InvalidMeasurement, Labels, Measurements, Selection, matches};
use crate::engine::noise::{self, Comparison, NotCompared};
use crate::spec::catalog::{self, Kind, Shape};
use crate::spec::slo::{self, Agg, SloExpr, quote_value};
use crate::spec::units::Dimension;

// The SLO as a spec states it lives with the spec layer; these names stay here too.
pub use crate::spec::objective::{
    MissingBaselinePolicy, NoDataPolicy, Slo, SloOrigin, SloSeverity,
};

/// The verdict of one SLO. Ordered: `Pass < Warn < Fail`, so the worst is the maximum.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Met (or no data with the `pass` policy).
    Pass,
    /// A `warn` SLO not met, or a no-data / no-baseline case that only warns.
    Warn,
    /// A `fail` SLO not met, or a no-data / no-baseline / invalid case that fails.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// Why an SLO got its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The comparison held.
    Met,
    /// The comparison did not hold.
    Violated,
    /// Nothing matched the metric and labels.
    NoData,
    /// The SLO uses `baseline` and the baseline has no data for it.
    NoBaseline,
    /// A `confidence` SLO: too few repeats (in this run or the baseline) to reach that
    /// confidence at all. Follows `on_missing_baseline`.
    TooFewRepeats,
    /// The backend flagged the measurement as impossible or untrustworthy, or the
    /// threshold could not be computed.
    InvalidMeasurement,
    /// The imported source cannot answer the SLO (a percentile a summary does not have, a
    /// label it lacks). Follows `no_data`, with the reason in the message.
    NotEvaluable,
    /// The spec did not run (e.g. a backend could not start, or the run was interrupted).
    NotRun,
}

impl Reason {
    /// The kebab-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Met => "met",
            Reason::Violated => "violated",
            Reason::NoData => "no-data",
            Reason::NoBaseline => "no-baseline",
            Reason::TooFewRepeats => "too-few-repeats",
            Reason::InvalidMeasurement => "invalid-measurement",
            Reason::NotEvaluable => "not-evaluable",
            Reason::NotRun => "not-run",
        }
    }
}

/// The evaluated SLO, as stored in `results.json` and rendered by every report.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SloOutcome {
    /// The expression as written.
    pub expr: String,
    /// The SLO's severity.
    pub severity: SloSeverity,
    /// The stage label the SLO is restricted to.
    pub phase: Option<String>,
    /// 1-based line in the spec file (0: none).
    pub line: usize,
    /// Pass, warn or fail.
    pub status: Status,
    /// Why.
    pub reason: Reason,
    /// The aggregated left-hand side, canonical units.
    pub observed: Option<f64>,
    /// The computed right-hand side, canonical units.
    pub threshold: Option<f64>,
    /// The same left-hand side in the baseline results.
    pub baseline: Option<f64>,
    /// `(observed - baseline) / baseline * 100`.
    pub delta_pct: Option<f64>,
    /// The dimension of `observed`, `threshold` and `baseline`.
    pub dimension: Dimension,
    /// `observed` formatted for humans, e.g. `212ms`.
    pub observed_text: Option<String>,
    /// `threshold` formatted for humans, e.g. `250ms`.
    pub threshold_text: Option<String>,
    /// A sentence for humans, e.g. "p95(latency) = 212ms, threshold < 250ms".
    pub message: String,
    /// What no data yields (kept so that `perfspec report --baseline` can judge again).
    #[serde(default)]
    pub no_data: NoDataPolicy,
    /// What a missing baseline yields.
    #[serde(default)]
    pub on_missing_baseline: MissingBaselinePolicy,
    /// The left-hand side in each repeat (`repeat = N`); `null` where a repeat had no data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<Option<f64>>,
    /// `confidence` as written, as a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The noise-aware comparison of a `confidence` SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// What the baseline offers one SLO.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseInput {
    /// No `--baseline` was given.
    NotGiven,
    /// A baseline was given: its value of the SLO's left-hand side (`None`: no data) and
    /// its per-repeat values (empty: it has only the one value).
    Given {
        value: Option<f64>,
        samples: Vec<f64>,
    },
}

impl BaseInput {
    /// The input from a baseline's pooled measurements and its repeats' ones.
    pub fn from_measurements(
        slo: &Slo,
        pooled: Option<&Measurements>,
        repeats: &[&Measurements],
    ) -> BaseInput {
        match pooled {
            None => BaseInput::NotGiven,
            Some(b) => BaseInput::Given {
                value: observe(&slo.expr, slo.phase.as_deref(), b),
                samples: super::repeats::per_repeat(slo, repeats)
                    .into_iter()
                    .flatten()
                    .collect(),
            },
        }
    }

    fn value(&self) -> Option<f64> {
        match self {
            BaseInput::NotGiven => None,
            BaseInput::Given { value, .. } => *value,
        }
    }
}

impl SloOutcome {
    /// The unit its values are shown in: the threshold's as written (see
    /// [`crate::engine::display::Unit::written`]).
    pub fn shown(&self) -> crate::engine::display::Unit {
        crate::engine::display::Unit::of_text(&self.expr, self.dimension)
    }
}

/// The label selector of an SLO: its own labels plus `phase=<phase>`.
pub fn selector(expr: &SloExpr, phase: Option<&str>) -> Labels {
    let mut labels = expr.labels();
    if let Some(p) = phase {
        labels.insert("phase".to_string(), p.to_string());
    }
    labels
}

/// `metric{k=v,…}` for messages.
fn selector_text(metric: &str, labels: &Labels) -> String {
    if labels.is_empty() {
        return metric.to_string();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_value(v)))
        .collect();
    format!("{metric}{{{}}}", inner.join(","))
}

/// Whether a metric is a counter (whose label sets are summed). The catalog entries of one
/// name agree across kinds, so any kind that knows the name decides.
pub(crate) fn is_counter(metric: &str) -> bool {
    Kind::ALL
        .into_iter()
        .filter_map(|k| catalog::lookup(k, metric))
        .any(|d| d.shape == Shape::Counter)
}

/// The aggregated left-hand side of `expr` in `m` (restricted to `phase`), canonical units;
/// `None` when there is no data (nothing matched, an empty histogram, a rate over a run of
/// zero seconds, or an aggregation the data cannot answer).
pub fn observe(expr: &SloExpr, phase: Option<&str>, m: &Measurements) -> Option<f64> {
    lookup(expr, phase, m).ok()
}

/// Why an SLO's left-hand side has no value.
#[derive(Debug, Clone, PartialEq)]
pub enum Unanswered {
    /// Nothing matched (or an empty histogram, a rate over zero seconds).
    NoData,
    /// The imported source cannot answer it: why, and what to export instead.
    NotEvaluable(String),
}

/// [`observe`], saying why there is no value.
pub fn lookup(expr: &SloExpr, phase: Option<&str>, m: &Measurements) -> Result<f64, Unanswered> {
    let labels = selector(expr, phase);
    let agg = expr.agg.as_ref().map(|(a, _)| *a);
    let per_second = |n: f64| {
        (m.elapsed_s > 0.0 && m.elapsed_s.is_finite())
            .then(|| n / m.elapsed_s)
            .ok_or(Unanswered::NoData)
    };
    let summed = is_counter(&expr.metric) || m.counters.contains(&expr.metric);
    let v = match m.select(&expr.metric, &labels, summed) {
        Selection::Empty => return Err(Unanswered::NoData),
        Selection::NotEvaluable(why) => return Err(Unanswered::NotEvaluable(why)),
        Selection::Table(t, source) => {
            let agg = agg.ok_or(Unanswered::NoData)?;
            t.answer(agg, m.elapsed_s, &source)
                .map_err(Unanswered::NotEvaluable)?
        }
        Selection::Histogram(h, scale) => {
            if h.is_empty() {
                return Err(Unanswered::NoData);
            }
            match agg.ok_or(Unanswered::NoData)? {
                Agg::Percentile(p) => h.value_at_quantile(p / 100.0) as f64 * scale,
                Agg::Mean => h.mean() * scale,
                Agg::Min => h.min() as f64 * scale,
                Agg::Max => h.max() as f64 * scale,
                Agg::Count => h.len() as f64,
                Agg::Rate => per_second(h.len() as f64)?,
            }
        }
        Selection::Value(v) => match agg {
            None | Some(Agg::Count) => v,
            Some(Agg::Rate) => per_second(v)?,
            // a single value is its own distribution
            Some(_) => v,
        },
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Unanswered::NoData)
    }
}

/// The invalid-measurement flag that applies to `metric{selector}`: one whose labels include
/// the selector ([`Measurements::invalid_for`]), or one on a broader label set that the
/// selector narrows (a flag on the whole metric taints every selection of it).
fn invalid_flag<'m>(
    m: &'m Measurements,
    metric: &str,
    selector: &Labels,
) -> Option<&'m InvalidMeasurement> {
    m.invalid_for(metric, selector).or_else(|| {
        m.invalid
            .iter()
            .find(|i| i.metric == metric && matches(selector, &i.labels))
    })
}

/// `Fail`, or `Warn` for a `warn` SLO.
fn failing(severity: SloSeverity) -> Status {
    match severity {
        SloSeverity::Fail => Status::Fail,
        SloSeverity::Warn => Status::Warn,
    }
}

fn delta_pct(observed: f64, baseline: f64) -> Option<f64> {
    (baseline != 0.0)
        .then(|| (observed - baseline) / baseline * 100.0)
        .filter(|d| d.is_finite())
}

fn signed_pct(d: f64) -> String {
    format!("{}{:.1}%", if d >= 0.0 { "+" } else { "" }, d)
}

/// Evaluate one SLO against a run's measurements and, optionally, the baseline's (the
/// same spec in `--baseline`).
pub fn evaluate(slo: &Slo, m: &Measurements, baseline: Option<&Measurements>) -> SloOutcome {
    judge(
        slo,
        m,
        &[],
        &BaseInput::from_measurements(slo, baseline, &[]),
    )
}

/// Evaluate one SLO on a run's (pooled) measurements, with its per-repeat values
/// (`repeats`, empty for a single run) and what the baseline offers.
pub fn judge(
    slo: &Slo,
    m: &Measurements,
    repeats: &[Option<f64>],
    baseline: &BaseInput,
) -> SloOutcome {
    let expr = &slo.expr;
    let dim = slo.dim;
    let shown = crate::engine::display::Unit::written(expr, &slo.text, dim);
    let phase = slo.phase.as_deref();
    let labels = selector(expr, phase);
    let lhs = match phase {
        Some(p) => format!("{} in phase `{p}`", expr.lhs_text()),
        None => expr.lhs_text(),
    };

    let looked = lookup(expr, phase, m);
    let observed = looked.as_ref().ok().copied();
    let base = baseline.value();
    let threshold = slo::eval_rhs(&expr.rhs, base);
    let mut out = SloOutcome {
        expr: slo.text.clone(),
        severity: slo.severity,
        phase: slo.phase.clone(),
        line: slo.line,
        status: Status::Pass,
        reason: Reason::Met,
        observed,
        threshold,
        baseline: base,
        delta_pct: observed.zip(base).and_then(|(o, b)| delta_pct(o, b)),
        dimension: dim,
        observed_text: observed.map(|v| shown.format(v)),
        threshold_text: threshold.map(|v| shown.format(v)),
        message: String::new(),
        no_data: slo.no_data,
        on_missing_baseline: slo.on_missing_baseline,
        repeats: repeats.to_vec(),
        confidence: slo.confidence,
        comparison: None,
    };
    let base_note = match (base, out.delta_pct) {
        (Some(b), Some(d)) => format!(" (baseline {}, {})", shown.format(b), signed_pct(d)),
        (Some(b), None) => format!(" (baseline {})", shown.format(b)),
        _ => String::new(),
    };

    let (status, reason, message) = if let Some(bad) = invalid_flag(m, &expr.metric, &labels) {
        let what = selector_text(&expr.metric, &labels);
        (
            failing(slo.severity),
            Reason::InvalidMeasurement,
            format!("invalid measurement of {what}: {}", bad.reason),
        )
    } else if let Some(obs) = observed {
        if expr.uses_baseline() && base.is_none() {
            let why = match baseline {
                BaseInput::NotGiven => "no baseline results were given".to_string(),
                BaseInput::Given { .. } => format!(
                    "the baseline has no data for {}",
                    selector_text(&expr.metric, &labels)
                ),
            };
            (
                missing_baseline(slo),
                Reason::NoBaseline,
                format!("{lhs} = {}, no baseline: {why}", shown.format(obs)),
            )
        } else if let (Some(c), BaseInput::Given { samples, .. }, Some(_)) =
            (slo.confidence, baseline, threshold)
        {
            let (verdict, cmp) = judge_noise(slo, obs, repeats, samples, base, c, &lhs);
            out.comparison = cmp;
            verdict
        } else if let Some(thr) = threshold {
            let sentence = format!(
                "{lhs} = {}, threshold {} {}{base_note}",
                shown.format(obs),
                expr.op,
                shown.format(thr)
            );
            if expr.op.holds(obs, thr) {
                (Status::Pass, Reason::Met, sentence)
            } else {
                (failing(slo.severity), Reason::Violated, sentence)
            }
        } else {
            (
                failing(slo.severity),
                Reason::InvalidMeasurement,
                format!(
                    "{lhs} = {}, but the threshold could not be computed (division by zero)",
                    shown.format(obs)
                ),
            )
        }
    } else {
        let status = match slo.no_data {
            NoDataPolicy::Fail => failing(slo.severity),
            NoDataPolicy::Warn => Status::Warn,
            NoDataPolicy::Pass => Status::Pass,
        };
        match looked {
            Err(Unanswered::NotEvaluable(why)) => (
                status,
                Reason::NotEvaluable,
                format!("{lhs} is not evaluable: {why}"),
            ),
            _ => (
                status,
                Reason::NoData,
                format!("no data for {}", selector_text(&expr.metric, &labels)),
            ),
        }
    };
    // a `warn` SLO never fails the gate
    out.status = if slo.severity == SloSeverity::Warn {
        status.min(Status::Warn)
    } else {
        status
    };
    out.reason = reason;
    out.message = message;
    out
}

/// What a missing baseline (or too few repeats) yields: its policy.
fn missing_baseline(slo: &Slo) -> Status {
    match slo.on_missing_baseline {
        MissingBaselinePolicy::Warn => Status::Warn,
        MissingBaselinePolicy::Fail => failing(slo.severity),
    }
}

/// The verdict of a `confidence` SLO from this run's per-repeat values (or its one value
/// `obs`) and the baseline's (or its one value `base`).
fn judge_noise(
    slo: &Slo,
    obs: f64,
    repeats: &[Option<f64>],
    samples: &[f64],
    base: Option<f64>,
    c: f64,
    lhs: &str,
) -> ((Status, Reason, String), Option<Comparison>) {
    let (expr, dim) = (&slo.expr, slo.dim);
    let current: Vec<f64> = match repeats.iter().flatten().copied().collect::<Vec<_>>() {
        v if v.is_empty() => vec![obs],
        v => v,
    };
    let base_values: Vec<f64> = if samples.is_empty() {
        base.into_iter().collect()
    } else {
        samples.to_vec()
    };
    let bound = |b: f64| slo::eval_rhs(&expr.rhs, Some(b));
    match noise::compare(expr.op, &current, &base_values, bound, c) {
        Ok(cmp) => {
            let sentence = format!(
                "{lhs} = {}, {}",
                dim.format(obs),
                cmp.sentence(|v| dim.format(v))
            );
            let verdict = if cmp.regressed {
                (failing(slo.severity), Reason::Violated, sentence)
            } else {
                (Status::Pass, Reason::Met, sentence)
            };
            (verdict, Some(cmp))
        }
        Err(NotCompared::TooFewRepeats {
            current,
            baseline,
            need,
        }) => (
            (
                missing_baseline(slo),
                Reason::TooFewRepeats,
                format!(
                    "{lhs} = {}, too few repeats for {}% confidence: {current} in this run, {baseline} in the baseline (set `repeat` to at least {need} in both)",
                    dim.format(obs),
                    crate::spec::units::trim_float(c * 100.0)
                ),
            ),
            None,
        ),
    }
}

/// The outcome of an SLO whose spec did not run: fail (warn for a `warn` SLO), reason
/// [`Reason::NotRun`], `why` in the message.
pub fn not_run(slo: &Slo, why: &str) -> SloOutcome {
    SloOutcome {
        expr: slo.text.clone(),
        severity: slo.severity,
        phase: slo.phase.clone(),
        line: slo.line,
        status: failing(slo.severity),
        reason: Reason::NotRun,
        observed: None,
        threshold: None,
        baseline: None,
        delta_pct: None,
        dimension: slo.dim,
        observed_text: None,
        threshold_text: None,
        message: format!("not run: {why}"),
        no_data: slo.no_data,
        on_missing_baseline: slo.on_missing_baseline,
        repeats: Vec::new(),
        confidence: slo.confidence,
        comparison: None,
    }
}

/// The worst status of several outcomes (`Pass` for none).
pub fn worst<'a>(outcomes: impl IntoIterator<Item = &'a SloOutcome>) -> Status {
    outcomes
        .into_iter()
        .map(|o| o.status)
        .max()
        .unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::labels;

    fn slo(text: &str, kind: Kind) -> Slo {
        Slo::compile(text, kind).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn load(text: &str) -> Slo {
        slo(text, Kind::Load)
    }

    /// `latency` 1..=1000 ms on journey `a`, 10 s run; `requests`/`errors` counters per status.
    fn run() -> Measurements {
        let mut m = Measurements {
            elapsed_s: 10.0,
            ..Measurements::default()
        };
        for i in 1..=1000 {
            m.histogram("latency", labels(&[("journey", "a")]), 1e-6)
                .record(i as f64 * 1e-3);
        }
        m.scalar("requests", labels(&[("status", "200")]), 900.0);
        m.scalar("requests", labels(&[("status", "500")]), 100.0);
        m.scalar("errors", labels(&[("status", "500")]), 60.0);
        m.scalar("errors", labels(&[("status", "503")]), 40.0);
        m.scalar("error_rate", Labels::new(), 0.001);
        m
    }

    /// A run whose only `latency` observation is `ms` milliseconds (repeated 100 times).
    fn latency_run(ms: f64) -> Measurements {
        let mut m = Measurements {
            elapsed_s: 1.0,
            ..Measurements::default()
        };
        for _ in 0..100 {
            // recorded in whole milliseconds: exact in HDR below 2048
            m.histogram("latency", Labels::new(), 1e-3)
                .record(ms * 1e-3);
        }
        m
    }

    fn close(a: Option<f64>, b: f64, tol: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= tol)
    }

    #[test]
    fn every_aggregation_on_a_known_histogram() {
        let m = run();
        let obs = |t: &str| observe(&load(t).expr, None, &m);
        // HDR with 3 significant digits: within 0.1%
        assert!(
            close(obs("p50(latency) < 1s"), 0.5, 0.0006),
            "{:?}",
            obs("p50(latency) < 1s")
        );
        assert!(close(obs("p95(latency) < 1s"), 0.95, 0.001));
        assert!(close(obs("p99(latency) < 1s"), 0.99, 0.001));
        assert!(close(obs("p99.9(latency) < 1s"), 0.999, 0.002));
        assert!(close(obs("mean(latency) < 1s"), 0.5005, 0.0006));
        assert!(close(obs("min(latency) < 1s"), 0.001, 0.000_001));
        assert!(close(obs("max(latency) < 1s"), 1.0, 0.001));
        assert_eq!(obs("count(latency) > 1"), Some(1000.0));
        assert_eq!(obs("rate(latency) > 1/s"), Some(100.0));
        assert!(close(obs("p50(latency{journey=a}) < 1s"), 0.5, 0.0006));
        assert_eq!(obs("p50(latency{journey=b}) < 1s"), None);
    }

    #[test]
    fn rate_uses_elapsed_and_counters_sum_across_labels() {
        let mut m = run();
        let obs = |t: &str, m: &Measurements| observe(&load(t).expr, None, m);
        assert_eq!(obs("requests > 1", &m), Some(1000.0));
        assert_eq!(obs("count(errors) < 1", &m), Some(100.0));
        assert_eq!(obs("errors{status=503} < 1", &m), Some(40.0));
        assert_eq!(obs("rate(requests) > 1/s", &m), Some(100.0));
        assert_eq!(obs("rate(errors{status=500}) > 1/s", &m), Some(6.0));
        // a gauge is never summed
        m.scalar("throughput", labels(&[("journey", "a")]), 5.0);
        m.scalar("throughput", labels(&[("journey", "b")]), 7.0);
        assert_eq!(obs("throughput > 1/s", &m), None);
        assert_eq!(obs("throughput{journey=b} > 1/s", &m), Some(7.0));
        m.elapsed_s = 0.0;
        assert_eq!(obs("rate(requests) > 1/s", &m), None);
        let o = evaluate(&load("rate(requests) > 1/s"), &m, None);
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::NoData));
    }

    #[test]
    fn every_operator_at_its_boundary() {
        let m = latency_run(200.0); // p95 = 200ms exactly (200_000 µs is exact in HDR)
        let status = |t: &str| evaluate(&load(t), &m, None).status;
        assert_eq!(status("p95(latency) < 201ms"), Status::Pass);
        assert_eq!(status("p95(latency) < 200ms"), Status::Fail);
        assert_eq!(status("p95(latency) <= 200ms"), Status::Pass);
        assert_eq!(status("p95(latency) <= 199ms"), Status::Fail);
        assert_eq!(status("p95(latency) > 199ms"), Status::Pass);
        assert_eq!(status("p95(latency) > 200ms"), Status::Fail);
        assert_eq!(status("p95(latency) >= 200ms"), Status::Pass);
        assert_eq!(status("p95(latency) >= 201ms"), Status::Fail);
        assert_eq!(status("p95(latency) == 200ms"), Status::Pass);
        assert_eq!(status("p95(latency) == 0.2s"), Status::Pass);
        assert_eq!(status("p95(latency) == 201ms"), Status::Fail);
    }

    #[test]
    fn outcome_fields_and_message() {
        let m = latency_run(212.0);
        let o = evaluate(&load("p95(latency) < 250ms"), &m, None);
        assert_eq!((o.status, o.reason), (Status::Pass, Reason::Met));
        assert_eq!(o.observed_text.as_deref(), Some("212ms"));
        assert_eq!(o.threshold_text.as_deref(), Some("250ms"));
        assert_eq!(o.threshold, Some(0.25));
        assert_eq!(o.dimension, Dimension::Time);
        assert_eq!(o.message, "p95(latency) = 212ms, threshold < 250ms");
        assert_eq!((o.baseline, o.delta_pct), (None, None));
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["status"], "pass");
        assert_eq!(json["reason"], "met");
        assert_eq!(json["severity"], "fail");
        assert_eq!(json["dimension"], "time");
        let back: SloOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back.status, Status::Pass);

        let o = evaluate(&load("p95(latency) < 200ms"), &m, None);
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::Violated));
    }

    #[test]
    fn warn_severity_never_fails() {
        let m = latency_run(300.0);
        let mut s = load("p95(latency) < 250ms");
        s.severity = SloSeverity::Warn;
        let o = evaluate(&s, &m, None);
        assert_eq!((o.status, o.reason), (Status::Warn, Reason::Violated));
        s.expr = load("p95(latency) < 350ms").expr;
        assert_eq!(evaluate(&s, &m, None).status, Status::Pass);
        // no data, missing baseline with policy fail, invalid measurement, not run: all warn
        let mut s = load("p95(latency{journey=nope}) < 1s");
        s.severity = SloSeverity::Warn;
        assert_eq!(evaluate(&s, &m, None).status, Status::Warn);
        let mut s = load("p95(latency) < baseline");
        s.severity = SloSeverity::Warn;
        s.on_missing_baseline = MissingBaselinePolicy::Fail;
        assert_eq!(evaluate(&s, &m, None).status, Status::Warn);
        assert_eq!(not_run(&s, "backend failed").status, Status::Warn);
        let mut bad = m.clone();
        bad.mark_invalid("latency", Labels::new(), "clock went backwards");
        assert_eq!(evaluate(&s, &bad, None).status, Status::Warn);
    }

    #[test]
    fn no_data_follows_its_policy() {
        let m = run();
        let mut s = load("p95(latency{journey=checkot}) < 1s");
        let o = evaluate(&s, &m, None);
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::NoData));
        assert_eq!(o.message, "no data for latency{journey=checkot}");
        assert_eq!(o.observed, None);
        assert_eq!(o.threshold, Some(1.0));
        s.no_data = NoDataPolicy::Warn;
        assert_eq!(evaluate(&s, &m, None).status, Status::Warn);
        s.no_data = NoDataPolicy::Pass;
        let o = evaluate(&s, &m, None);
        assert_eq!((o.status, o.reason), (Status::Pass, Reason::NoData));
        // empty histogram
        let mut e = Measurements {
            elapsed_s: 1.0,
            ..Measurements::default()
        };
        e.histogram("latency", Labels::new(), 1e-6);
        assert_eq!(
            evaluate(&load("p95(latency) < 1s"), &e, None).reason,
            Reason::NoData
        );
    }

    #[test]
    fn invalid_measurements_fail() {
        let mut m = Measurements::default();
        m.scalar("hit_ratio", labels(&[("tier", "l1")]), 0.99);
        m.mark_invalid(
            "hit_ratio",
            labels(&[("tier", "l1")]),
            "above the Bélády optimum (0.90)",
        );
        let o = evaluate(&slo("hit_ratio{tier=l1} >= 0.85", Kind::Cache), &m, None);
        assert_eq!(
            (o.status, o.reason),
            (Status::Fail, Reason::InvalidMeasurement)
        );
        assert_eq!(
            o.message,
            "invalid measurement of hit_ratio{tier=l1}: above the Bélády optimum (0.90)"
        );
        assert_eq!(o.observed, Some(0.99));
        // a flag on the whole metric applies to every selector
        let mut m2 = Measurements::default();
        m2.scalar("hit_ratio", labels(&[("tier", "l2")]), 0.5);
        m2.mark_invalid("hit_ratio", Labels::new(), "trace lost");
        assert_eq!(
            evaluate(&slo("hit_ratio{tier=l2} >= 0.1", Kind::Cache), &m2, None).reason,
            Reason::InvalidMeasurement
        );
    }

    #[test]
    fn baseline_arithmetic() {
        let base = latency_run(200.0);
        let s = load("p95(latency) <= baseline * 1.10 + 5ms");
        let o = evaluate(&s, &latency_run(224.0), Some(&base));
        assert_eq!(
            (o.status, o.reason),
            (Status::Pass, Reason::Met),
            "{}",
            o.message
        );
        assert!(close(o.threshold, 0.225, 1e-12));
        assert_eq!(o.baseline, Some(0.2));
        assert!(close(o.delta_pct, 12.0, 1e-9));
        assert_eq!(
            o.message,
            "p95(latency) = 224ms, threshold <= 225ms (baseline 200ms, +12.0%)"
        );
        let o = evaluate(&s, &latency_run(226.0), Some(&base));
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::Violated));
    }

    #[test]
    fn missing_baseline_warns_by_default_and_fails_on_request() {
        let m = latency_run(224.0);
        let mut s = load("p95(latency) <= baseline * 1.1");
        let o = evaluate(&s, &m, None);
        assert_eq!((o.status, o.reason), (Status::Warn, Reason::NoBaseline));
        assert_eq!(o.observed_text.as_deref(), Some("224ms"));
        assert_eq!(o.threshold, None);
        assert!(
            o.message.contains("no baseline results were given"),
            "{}",
            o.message
        );
        // a baseline without this metric
        let other = run();
        s.expr = load("p95(latency{journey=b}) <= baseline * 1.1").expr;
        let mut cur = Measurements::default();
        cur.histogram("latency", labels(&[("journey", "b")]), 1e-6)
            .record(0.1);
        let o = evaluate(&s, &cur, Some(&other));
        assert_eq!((o.status, o.reason), (Status::Warn, Reason::NoBaseline));
        assert!(
            o.message
                .contains("the baseline has no data for latency{journey=b}"),
            "{}",
            o.message
        );
        s.on_missing_baseline = MissingBaselinePolicy::Fail;
        assert_eq!(evaluate(&s, &cur, Some(&other)).status, Status::Fail);
        // no data wins over no baseline: a typo must not pass as a mere warning
        s.expr = load("p95(latency{journey=typo}) <= baseline").expr;
        s.on_missing_baseline = MissingBaselinePolicy::Warn;
        let o = evaluate(&s, &cur, None);
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::NoData));
    }

    #[test]
    fn confidence_slos_use_per_repeat_values_and_refuse_too_few() {
        let mut s = load("p95(latency) <= baseline * 1.05");
        s.confidence = Some(0.95);
        let base = |v: &[f64]| BaseInput::Given {
            value: Some(v[0]),
            samples: v.to_vec(),
        };
        let reps = |v: &[f64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        let b = [0.200, 0.204, 0.196, 0.202, 0.198];
        let slow = [0.240, 0.236, 0.246, 0.238, 0.242];
        let o = judge(&s, &latency_run(240.0), &reps(&slow), &base(&b));
        assert_eq!(
            (o.status, o.reason),
            (Status::Fail, Reason::Violated),
            "{}",
            o.message
        );
        assert!(o.message.contains("regressed: +20."), "{}", o.message);
        assert!(o.comparison.as_ref().is_some_and(|c| c.regressed));
        let same = [0.201, 0.199, 0.203, 0.197, 0.205];
        let o = judge(&s, &latency_run(201.0), &reps(&same), &base(&b));
        assert_eq!(
            (o.status, o.reason),
            (Status::Pass, Reason::Met),
            "{}",
            o.message
        );
        assert!(o.message.contains("within noise: "), "{}", o.message);
        // a single run against a single baseline value cannot reach 95%: no silent pass
        let o = judge(&s, &latency_run(300.0), &[], &base(&[0.2]));
        assert_eq!((o.status, o.reason), (Status::Warn, Reason::TooFewRepeats));
        assert!(o.message.contains("at least 3"), "{}", o.message);
        s.on_missing_baseline = MissingBaselinePolicy::Fail;
        let o = judge(&s, &latency_run(300.0), &[], &base(&[0.2]));
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::TooFewRepeats));
        // without a baseline it is `no-baseline`, as without `confidence`
        let o = judge(&s, &latency_run(300.0), &reps(&slow), &BaseInput::NotGiven);
        assert_eq!(o.reason, Reason::NoBaseline);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["confidence"], 0.95);
        assert_eq!(json["repeats"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn deltas_are_reported_without_baseline_terms() {
        let o = evaluate(
            &load("p95(latency) < 1s"),
            &latency_run(150.0),
            Some(&latency_run(200.0)),
        );
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.baseline, Some(0.2));
        assert!(close(o.delta_pct, -25.0, 1e-9));
        assert!(
            o.message.ends_with("(baseline 200ms, -25.0%)"),
            "{}",
            o.message
        );
        // zero baseline: no delta
        let mut b = Measurements::default();
        b.scalar("error_rate", Labels::new(), 0.0);
        let o = evaluate(&load("error_rate < 1%"), &run(), Some(&b));
        assert_eq!((o.baseline, o.delta_pct), (Some(0.0), None));
    }

    #[test]
    fn phase_restricts_the_selection() {
        let mut m = Measurements {
            elapsed_s: 1.0,
            ..Measurements::default()
        };
        for _ in 0..10 {
            m.histogram("latency", labels(&[("phase", "ramp")]), 1e-6)
                .record(0.9);
            m.histogram("latency", labels(&[("phase", "steady")]), 1e-6)
                .record(0.1);
        }
        let mut s = load("max(latency) < 500ms");
        assert_eq!(evaluate(&s, &m, None).status, Status::Fail);
        s.phase = Some("steady".into());
        let o = evaluate(&s, &m, None);
        assert_eq!(o.status, Status::Pass, "{}", o.message);
        assert_eq!(o.phase.as_deref(), Some("steady"));
        assert!(
            o.message
                .starts_with("max(latency) in phase `steady` = 100ms"),
            "{}",
            o.message
        );
        s.phase = Some("spike".into());
        let o = evaluate(&s, &m, None);
        assert_eq!(o.reason, Reason::NoData);
        assert_eq!(o.message, "no data for latency{phase=spike}");
    }

    #[test]
    fn not_run_and_worst() {
        let s = load("p95(latency) < 1s");
        let o = not_run(&s, "target never became ready");
        assert_eq!((o.status, o.reason), (Status::Fail, Reason::NotRun));
        assert_eq!(o.message, "not run: target never became ready");
        assert_eq!(serde_json::to_value(o.reason).unwrap(), "not-run");
        let pass = evaluate(&s, &latency_run(1.0), None);
        assert_eq!(worst([&pass]), Status::Pass);
        assert_eq!(worst([&pass, &o]), Status::Fail);
        assert_eq!(worst(std::iter::empty()), Status::Pass);
    }

    #[test]
    fn counter_shapes_agree_across_kinds() {
        // `observe` decides summability by name across kinds: that must be unambiguous.
        for kind in Kind::ALL {
            for d in catalog::metrics(kind) {
                assert_eq!(
                    is_counter(d.name),
                    d.shape == Shape::Counter,
                    "{kind} {}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn policies_serialize_as_written_in_specs() {
        assert_eq!(serde_json::to_value(SloSeverity::Warn).unwrap(), "warn");
        assert_eq!(serde_json::to_value(NoDataPolicy::Pass).unwrap(), "pass");
        assert_eq!(
            serde_json::to_value(MissingBaselinePolicy::Fail).unwrap(),
            "fail"
        );
        assert_eq!(
            serde_json::to_value(Reason::InvalidMeasurement).unwrap(),
            "invalid-measurement"
        );
        assert_eq!(NoDataPolicy::default(), NoDataPolicy::Fail);
        assert_eq!(
            MissingBaselinePolicy::default(),
            MissingBaselinePolicy::Warn
        );
        let schema = schemars::schema_for!(SloOutcome);
        let json = serde_json::to_string(&schema).unwrap();
        assert!(
            json.contains("decibels") && json.contains("invalid-measurement"),
            "{json}"
        );
    }
}

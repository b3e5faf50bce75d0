//! Selection and formatting helpers shared by the chart builders.

use crate::engine::metrics::{HistogramEntry, Labels, Measurements, Scalar, Series};
use crate::engine::verdict::SloOutcome;
use crate::report::charts::{self, BarChart, Line, LineChart, Marker, Threshold, Unit};
use crate::report::view::{Section, Table};
use crate::spec::catalog::{self, Kind};
use crate::spec::units::Dimension;

/// The dimension the catalog gives a metric (`Count` for unknown names).
pub fn dim(kind: Kind, metric: &str) -> Dimension {
    catalog::lookup(kind, metric).map_or(Dimension::Count, |d| d.dim)
}

/// How values of `metric` are shown: in the unit of an SLO on it as written, else a ratio
/// that reads as a multiplier (`speedup`, `latency_ratio`, `size_ratio`) as `6x`, R² as a
/// plain number, everything else in its catalog dimension.
pub fn shown(kind: Kind, metric: &str, slos: &[SloOutcome]) -> Unit {
    let d = dim(kind, metric);
    if let Some(o) = slos.iter().find(|o| {
        o.dimension == d && crate::spec::slo::parse(&o.expr).is_ok_and(|e| e.metric == metric)
    }) {
        return o.shown();
    }
    match metric {
        "speedup" | "latency_ratio" | "size_ratio" | "usl.speedup" => Unit::Times,
        "usl.r_squared" => Unit::Plain,
        _ => d.into(),
    }
}

/// `k=v, k=v`, or `all` for no labels.
pub fn labels_text(l: &Labels) -> String {
    if l.is_empty() {
        return "all".into();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Labels without `skip` keys, as text.
pub fn labels_without(l: &Labels, skip: &[&str]) -> Labels {
    l.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn scalars<'a>(m: &'a Measurements, metric: &'a str) -> impl Iterator<Item = &'a Scalar> + 'a {
    m.scalars.iter().filter(move |s| s.metric == metric)
}

pub fn series_of<'a>(
    m: &'a Measurements,
    pred: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = &'a Series> + 'a {
    m.series.iter().filter(move |s| pred(&s.metric))
}

pub fn histograms<'a>(
    m: &'a Measurements,
    metric: &'a str,
) -> impl Iterator<Item = &'a HistogramEntry> + 'a {
    m.histograms
        .iter()
        .filter(move |h| h.metric == metric && !h.hist.is_empty())
}

/// A line named after the series' metric and labels.
pub fn series_line(s: &Series, with_metric: bool) -> Line {
    let l = labels_text(&s.labels);
    let name = match (with_metric, s.labels.is_empty()) {
        (true, true) => s.metric.clone(),
        (true, false) => format!("{} {{{l}}}", s.metric),
        (false, _) => l,
    };
    Line::new(name, s.points.clone())
}

/// A chart of time series (x = seconds since the spec started).
pub fn time_chart(title: &str, y_unit: impl Into<Unit>, lines: Vec<Line>) -> LineChart {
    LineChart::new(title, "time since start", Dimension::Time, y_unit, lines)
}

/// Most threshold lines on one chart.
const MAX_THRESHOLDS: usize = 4;

/// The thresholds of the SLOs on any of `metrics` whose values are in `dim`, as lines for a
/// chart of those metrics: `p95 < 250ms`, in the unit the SLO was written in.
pub fn thresholds(slos: &[SloOutcome], metrics: &[&str], dim: Dimension) -> Vec<Threshold> {
    let mut out: Vec<Threshold> = Vec::new();
    for o in slos.iter().filter(|o| o.dimension == dim) {
        let (Ok(expr), Some(value)) = (crate::spec::slo::parse(&o.expr), o.threshold) else {
            continue;
        };
        if !metrics.contains(&expr.metric.as_str()) || !value.is_finite() {
            continue;
        }
        let what = match &expr.agg {
            Some((agg, _)) => agg.to_string(),
            None => "SLO".into(),
        };
        let label = format!("{what} {} {}", expr.op, o.shown().format(value));
        if out.len() < MAX_THRESHOLDS && !out.iter().any(|t| t.label == label) {
            out.push(Threshold {
                value,
                label,
                title: o.expr.clone(),
            });
        }
    }
    out
}

/// Events a backend wrote as notes `[prefix: ]at 3.00s: what` (cache restarts and faults),
/// as markers on the run's time axis. A note with a prefix (one point of a capacity sweep)
/// is on that point's own timeline and is left out.
pub fn note_markers(m: &Measurements) -> Vec<Marker> {
    m.notes
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix("at ")?;
            let (t, what) = rest.split_once("s: ")?;
            Some(Marker {
                x: t.parse().ok()?,
                label: what
                    .chars()
                    .take_while(|c| *c != ';' && *c != '(')
                    .collect::<String>()
                    .trim()
                    .to_string(),
            })
        })
        .collect()
}

/// Latency distribution: p50/p90/p99/max per label set of one histogram metric, as bars,
/// from each histogram's own summary.
pub fn distribution(
    m: &Measurements,
    slos: &[SloOutcome],
    metric: &str,
    title: &str,
    section: &mut Section,
) {
    let hs: Vec<&HistogramEntry> = histograms(m, metric).take(12).collect();
    if hs.is_empty() {
        return;
    }
    let sums: Vec<_> = hs.iter().map(|h| h.summary()).collect();
    let categories: Vec<String> = hs.iter().map(|h| labels_text(&h.labels)).collect();
    let pick = |f: fn(&crate::engine::metrics::HistogramSummary) -> f64| {
        sums.iter().map(|s| Some(f(s))).collect::<Vec<_>>()
    };
    let mut chart = BarChart::new(
        title,
        Dimension::Time,
        categories,
        vec![
            ("p50".into(), pick(|s| s.p50)),
            ("p90".into(), pick(|s| s.p90)),
            ("p99".into(), pick(|s| s.p99)),
            ("max".into(), pick(|s| s.max)),
        ],
    );
    chart.thresholds = thresholds(slos, &[metric], Dimension::Time);
    section.chart(title, charts::bar_chart(&chart));
}

/// A table of one histogram metric's summaries per label set.
pub fn histogram_table(m: &Measurements, metric: &str, title: &str) -> Table {
    histogram_table_in(m, metric, title, Dimension::Time)
}

/// [`histogram_table`] for a metric of any dimension (an `exec` command's distributions).
pub fn histogram_table_in(m: &Measurements, metric: &str, title: &str, dim: Dimension) -> Table {
    let f = |v: f64| dim.format(round_sig(v));
    Table {
        title: title.to_string(),
        headers: [
            "labels", "count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max",
        ]
        .map(String::from)
        .to_vec(),
        rows: histograms(m, metric)
            .map(|h| {
                let s = h.summary();
                vec![
                    labels_text(&h.labels),
                    h.hist.len().to_string(),
                    f(s.min),
                    f(s.mean),
                    f(s.p50),
                    f(s.p90),
                    f(s.p95),
                    f(s.p99),
                    f(s.p999),
                    f(s.max),
                ]
            })
            .collect(),
    }
}

/// Round to 4 significant digits for display.
pub fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(3 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}

/// Charts for every series no kind builder used, one chart per metric.
pub fn other_series(
    kind: Kind,
    m: &Measurements,
    slos: &[SloOutcome],
    used: &[String],
) -> Vec<Section> {
    let mut metrics: Vec<&str> = Vec::new();
    for s in &m.series {
        if !used.iter().any(|u| u == &s.metric) && !metrics.contains(&s.metric.as_str()) {
            metrics.push(&s.metric);
        }
    }
    if metrics.is_empty() {
        return Vec::new();
    }
    let mut sec = Section::new("Other time series");
    for metric in metrics {
        let lines: Vec<Line> = series_of(m, |x| x == metric)
            .map(|s| series_line(s, false))
            .collect();
        let mut c = time_chart(metric, dim(kind, metric), lines);
        c.thresholds = thresholds(slos, &[metric], dim(kind, metric));
        c.markers = note_markers(m);
        sec.chart(metric, charts::line_chart(&c));
    }
    vec![sec.or_empty("the series hold no finite points")]
}

/// Every scalar, formatted in its unit.
pub fn values_table(kind: Kind, m: &Measurements, slos: &[SloOutcome]) -> Section {
    let mut sec = Section::new("Measured values");
    sec.tables.push(Table {
        title: format!(
            "{} value(s) over {}",
            m.scalars.len(),
            Dimension::Time.format(round_sig(m.elapsed_s))
        ),
        headers: vec!["metric".into(), "labels".into(), "value".into()],
        rows: m
            .scalars
            .iter()
            .map(|s| {
                let labels = if s.labels.is_empty() {
                    String::new()
                } else {
                    labels_text(&s.labels)
                };
                vec![
                    s.metric.clone(),
                    labels,
                    shown(kind, &s.metric, slos).format(round_sig(s.value)),
                ]
            })
            .collect(),
    });
    sec.collapsed = true;
    sec.or_empty("no scalar values were measured")
}

/// Numeric label values sort numerically, others alphabetically.
pub fn sort_label_values(values: &mut [String]) {
    values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
}

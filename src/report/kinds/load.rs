//! Load section: latency percentiles over time, throughput (sent / completed / target),
//! errors over time, latency distribution and a per-step table.

use super::common::{
    self, dim, distribution, histogram_table, labels_text, round_sig, series_line, series_of,
    time_chart,
};
use crate::engine::metrics::{Labels, Measurements, Selection};
use crate::report::view::{Section, Table};
use crate::spec::catalog::Kind;
use crate::spec::units::Dimension;

fn is_latency(metric: &str) -> bool {
    ["latency", "service_time"].iter().any(|p| {
        metric == *p
            || metric
                .strip_prefix(p)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('_'))
    })
}

fn is_throughput(metric: &str) -> bool {
    matches!(
        metric,
        "throughput" | "sent" | "completed" | "target_rate" | "arrivals" | "rate" | "requests"
    ) || metric.starts_with("throughput")
}

fn is_error(metric: &str) -> bool {
    matches!(metric, "errors" | "error_rate" | "late" | "late_ratio")
}

pub fn sections(m: &Measurements, used: &mut Vec<String>) -> Vec<Section> {
    let mut over_time = Section::new("Over time");
    let mut latency_lines = Vec::new();
    for s in series_of(m, is_latency) {
        used.push(s.metric.clone());
        latency_lines.push(series_line(s, true));
    }
    over_time.chart(
        "Latency percentiles over time",
        time_chart(
            "Latency percentiles over time",
            Dimension::Time,
            latency_lines,
        ),
    );
    let mut tp_lines = Vec::new();
    for s in series_of(m, is_throughput) {
        used.push(s.metric.clone());
        tp_lines.push(series_line(s, true));
    }
    over_time.chart(
        "Throughput: sent, completed, target",
        time_chart(
            "Throughput: sent, completed, target",
            Dimension::Rate,
            tp_lines,
        ),
    );
    for metric in ["errors", "error_rate", "late", "late_ratio"] {
        let lines: Vec<_> = series_of(m, |x| x == metric && is_error(x))
            .map(|s| series_line(s, true))
            .collect();
        if !lines.is_empty() {
            used.push(metric.to_string());
            let title = format!("{metric} over time");
            over_time.chart(&title, time_chart(&title, dim(Kind::Load, metric), lines));
        }
    }
    let over_time = over_time
        .or_empty("no time series were recorded (latency, throughput or errors per second)");

    let mut dist = Section::new("Latency distribution");
    distribution(
        m,
        "latency",
        "Latency by label set (p50, p90, p99, max)",
        &mut dist,
    );
    dist.tables.push(histogram_table(m, "latency", "latency"));
    if common::histograms(m, "service_time").next().is_some() {
        dist.tables.push(histogram_table(
            m,
            "service_time",
            "service_time (from the actual send)",
        ));
    }
    let dist = dist.or_empty("no latency histogram was recorded");

    let mut steps = Section::new("Per step");
    steps.tables.push(step_table(m));
    let steps = steps.or_empty("no per-step measurements (labels `journey` / `step`)");
    vec![over_time, dist, steps]
}

/// One row per `(journey, step)` label pair of the latency histograms, with the matching
/// request and error counters.
fn step_table(m: &Measurements) -> Table {
    let mut keys: Vec<Labels> = Vec::new();
    for h in common::histograms(m, "latency") {
        let k = common::labels_without(&h.labels, &["status", "phase"]);
        if (k.contains_key("step") || k.contains_key("journey")) && !keys.contains(&k) {
            keys.push(k);
        }
    }
    let count = |metric: &str, k: &Labels| match m.select(metric, k, true) {
        Selection::Value(v) => Dimension::Count.format(v),
        _ => "—".into(),
    };
    let rows = keys
        .iter()
        .map(|k| {
            let (n, p50, p95, p99) = match m.select("latency", k, false) {
                Selection::Histogram(h, scale) if !h.is_empty() => {
                    let q = |p: f64| {
                        Dimension::Time.format(round_sig(h.value_at_quantile(p) as f64 * scale))
                    };
                    (h.len().to_string(), q(0.5), q(0.95), q(0.99))
                }
                _ => ("0".into(), "—".into(), "—".into(), "—".into()),
            };
            vec![
                labels_text(k),
                n,
                p50,
                p95,
                p99,
                count("requests", k),
                count("errors", k),
            ]
        })
        .collect();
    Table {
        title: "latency, requests and errors per journey step".into(),
        headers: ["step", "samples", "p50", "p95", "p99", "requests", "errors"]
            .map(String::from)
            .to_vec(),
        rows,
    }
}

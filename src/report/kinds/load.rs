//! Load section: latency percentiles over time, throughput (sent / completed / target),
//! errors over time, latency distribution and a per-step table.

use super::common::{
    self, dim, distribution, histogram_table, labels_text, round_sig, series_line, series_of,
    thresholds, time_chart,
};
use crate::engine::metrics::{Labels, Measurements, Selection};
use crate::engine::verdict::SloOutcome;
use crate::report::charts::{self, Line};
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

/// Requests per second: what the target answered.
fn is_request_rate(metric: &str) -> bool {
    matches!(metric, "throughput" | "completed" | "rate" | "requests")
        || metric.starts_with("throughput")
}

/// Journey starts per second: what the generator started, against the schedule.
fn is_start_rate(metric: &str) -> bool {
    matches!(metric, "sent" | "target_rate" | "arrivals")
}

/// The legend name of a rate series: what it counts, not the series' internal name.
fn rate_name(metric: &str) -> Option<&'static str> {
    Some(match metric {
        "completed" => "requests completed",
        "sent" => "journeys started",
        "target_rate" => "target (scheduled starts)",
        "arrivals" => "arrivals",
        _ => return None,
    })
}

fn is_error(metric: &str) -> bool {
    matches!(metric, "errors" | "error_rate" | "late" | "late_ratio")
}

/// One line per series of the metrics `pick` selects, recorded in `used`.
fn lines_of(m: &Measurements, pick: fn(&str) -> bool, used: &mut Vec<String>) -> Vec<Line> {
    series_of(m, pick)
        .map(|s| {
            used.push(s.metric.clone());
            let mut l = series_line(s, true);
            if let Some(name) = rate_name(&s.metric).filter(|_| s.labels.is_empty()) {
                l.name = name.into();
            }
            l
        })
        .collect()
}

fn over_time(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Section {
    let mut sec = Section::new("Over time");
    let title = "Latency percentiles over time";
    let mut c = time_chart(title, Dimension::Time, lines_of(m, is_latency, used));
    c.thresholds = thresholds(slos, &["latency"], Dimension::Time);
    sec.chart(title, charts::line_chart(&c));
    // requests and journey starts are different things (a journey has several requests):
    // one chart each, never one axis
    let title = "Requests per second";
    let mut c = time_chart(title, Dimension::Rate, lines_of(m, is_request_rate, used));
    c.thresholds = thresholds(slos, &["throughput"], Dimension::Rate);
    sec.chart(title, charts::line_chart(&c));
    let title = "Journey starts per second: started vs scheduled";
    let c = time_chart(title, Dimension::Rate, lines_of(m, is_start_rate, used));
    sec.chart(title, charts::line_chart(&c));
    for metric in ["errors", "error_rate", "late", "late_ratio"] {
        let lines: Vec<_> = series_of(m, |x| x == metric && is_error(x))
            .map(|s| series_line(s, true))
            .collect();
        if !lines.is_empty() {
            used.push(metric.to_string());
            let title = match metric {
                "errors" => "Errors per second".to_string(),
                _ => format!("{metric} over time"),
            };
            let d = dim(Kind::Load, metric);
            let mut c = time_chart(&title, d, lines);
            c.thresholds = thresholds(slos, &[metric], d);
            sec.chart(&title, charts::line_chart(&c));
        }
    }
    sec.or_empty("no time series were recorded (latency, throughput or errors per second)")
}

pub fn sections(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Vec<Section> {
    let over_time = over_time(m, slos, used);
    let mut dist = Section::new("Latency distribution");
    distribution(
        m,
        slos,
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

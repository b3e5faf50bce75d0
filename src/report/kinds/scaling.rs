//! Scaling section: throughput vs replicas / threads / concurrency with the USL fit and the
//! ideal (linear) line over the measured range, speedup and efficiency (each on its own
//! axis), the failover timeline with the fault marked, latency per step.

use super::common::{
    distribution, histogram_table, scalars, series_of, shown, thresholds, time_chart,
};
use crate::engine::metrics::Measurements;
use crate::engine::verdict::SloOutcome;
use crate::report::charts::{self, Line, LineChart, Marker};
use crate::report::view::Section;
use crate::spec::catalog::Kind;
use crate::spec::units::Dimension;

const SWEEP: [&str; 3] = ["replicas", "threads", "concurrency"];

/// `(sweep label, points)` of a metric's scalars labelled with a sweep key.
fn sweep_points(m: &Measurements, metric: &str) -> Option<(&'static str, Vec<(f64, f64)>)> {
    SWEEP.into_iter().find_map(|key| {
        let mut pts: Vec<(f64, f64)> = scalars(m, metric)
            .filter_map(|s| Some((s.labels.get(key)?.parse::<f64>().ok()?, s.value)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        (!pts.is_empty()).then_some((key, pts))
    })
}

fn scalar(m: &Measurements, metric: &str) -> Option<f64> {
    scalars(m, metric)
        .find(|s| s.labels.is_empty())
        .map(|s| s.value)
        .filter(|v| v.is_finite())
}

/// The smallest and largest measured level.
fn measured_range(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    Some((pts.first()?.0, pts.last()?.0))
}

/// Measured throughput with the USL fit and the ideal line drawn over the measured range
/// only, the fitted peak marked when it lies inside it and noted when it does not.
fn throughput_chart(
    m: &Measurements,
    slos: &[SloOutcome],
    used: &mut Vec<String>,
) -> Option<LineChart> {
    let (key, pts) = sweep_points(m, "throughput")?;
    let (lo, hi) = measured_range(&pts)?;
    let mut lines = vec![Line::new("measured", pts.clone())];
    for (metric, name) in [("usl.fit", "USL fit"), ("usl.ideal", "ideal (linear)")] {
        for s in series_of(m, |x| x == metric) {
            used.push(metric.to_string());
            let inside: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, _)| *x >= lo && *x <= hi)
                .collect();
            lines.push(Line::new(name, inside).dashed());
        }
    }
    let mut c = LineChart::new(
        format!("Throughput vs {key}"),
        key,
        Dimension::Count,
        Dimension::Rate,
        lines,
    );
    c.thresholds = thresholds(slos, &["throughput", "usl.max_throughput"], Dimension::Rate);
    let fitted = m.series.iter().any(|s| s.metric == "usl.fit");
    match (scalar(m, "usl.peak_concurrency"), scalar(m, "usl.max_throughput")) {
        (Some(n), Some(x)) if n >= lo && n <= hi => c.markers.push(Marker {
            x: n,
            label: format!("USL peak N* = {n} ({})", Dimension::Rate.format(x.round())),
        }),
        (Some(n), x) => c.notes.push(format!(
            "The fitted peak N* = {n}{} lies outside the measured range ({lo}–{hi} {key}); the fit is drawn over the measured range only.",
            x.map(|x| format!(" ({})", Dimension::Rate.format(x.round()))).unwrap_or_default()
        )),
        _ if fitted => c
            .notes
            .push(format!("The USL fit has no throughput peak; it is drawn over the measured range ({lo}–{hi} {key}) only.")),
        _ => {}
    }
    Some(c)
}

/// Speedup against the ideal, and efficiency: different units, one chart each.
fn ratio_charts(m: &Measurements, slos: &[SloOutcome], key: &str, sec: &mut Section) {
    if let Some((_, pts)) = sweep_points(m, "speedup") {
        let mut lines = vec![Line::new("speedup", pts.clone())];
        if let Some(&(n0, _)) = pts.first().filter(|(n0, _)| *n0 > 0.0) {
            lines.push(
                Line::new(
                    "ideal (linear)",
                    pts.iter().map(|&(n, _)| (n, n / n0)).collect(),
                )
                .dashed(),
            );
        }
        let title = format!("Speedup vs {key}");
        let mut c = LineChart::new(
            &title,
            key,
            Dimension::Count,
            shown(Kind::Scaling, "speedup", slos),
            lines,
        );
        c.thresholds = thresholds(slos, &["speedup"], Dimension::Ratio);
        sec.chart(&title, charts::line_chart(&c));
    }
    if let Some((_, pts)) = sweep_points(m, "efficiency") {
        let title = format!("Efficiency vs {key}");
        let mut c = LineChart::new(
            &title,
            key,
            Dimension::Count,
            shown(Kind::Scaling, "efficiency", slos),
            vec![Line::new("efficiency", pts)],
        );
        c.thresholds = thresholds(slos, &["efficiency"], Dimension::Ratio);
        sec.chart(&title, charts::line_chart(&c));
    }
}

/// The fault (from the series' `fault_at` label) and the recovery, as markers.
fn failover_markers(m: &Measurements) -> Vec<Marker> {
    let at = m
        .series
        .iter()
        .filter(|s| s.metric.starts_with("failover."))
        .find_map(|s| s.labels.get("fault_at")?.parse::<f64>().ok());
    let Some(at) = at else {
        return Vec::new();
    };
    let mut out = vec![Marker {
        x: at,
        label: "fault injected".into(),
    }];
    if let Some(rt) = scalar(m, "failover.recovery_time") {
        out.push(Marker {
            x: at + rt,
            label: format!("recovered (+{})", Dimension::Time.format(rt)),
        });
    }
    out
}

fn failover(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Section {
    let mut fail = Section::new("Failover timeline");
    // errors are counts and p95 is a time: one chart each, on the same time axis
    for (metric, title, dim) in [
        (
            "failover.errors",
            "Errors per second during the faulted step",
            Dimension::Count,
        ),
        (
            "failover.p95",
            "p95 latency per second during the faulted step",
            Dimension::Time,
        ),
    ] {
        let lines: Vec<Line> = series_of(m, |x| x == metric)
            .map(|s| Line::new(metric, s.points.clone()))
            .collect();
        if !lines.is_empty() {
            used.push(metric.to_string());
        }
        let mut c = time_chart(title, dim, lines);
        c.x_label = "seconds into the faulted step".into();
        c.markers = failover_markers(m);
        c.thresholds = thresholds(slos, &[metric], dim);
        fail.chart(title, charts::line_chart(&c));
    }
    fail.or_empty(
        "no failover timeline (no fault was injected, or no per-second series was recorded)",
    )
}

pub fn sections(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Vec<Section> {
    let mut sec = Section::new("Throughput vs scale");
    let key = sweep_points(m, "throughput").map_or("concurrency", |(k, _)| k);
    if let Some(c) = throughput_chart(m, slos, used) {
        sec.chart(&c.title.clone(), charts::line_chart(&c));
    }
    ratio_charts(m, slos, key, &mut sec);
    let sec = sec
        .or_empty("no sweep measurements (throughput labelled replicas, threads or concurrency)");
    let fail = failover(m, slos, used);
    let mut lat = Section::new("Latency per step");
    distribution(
        m,
        slos,
        "latency",
        "Latency per sweep step (p50, p90, p99, max)",
        &mut lat,
    );
    lat.tables.push(histogram_table(m, "latency", "latency"));
    let lat = lat.or_empty("no latency histogram was recorded (a fit-only spec has none)");
    vec![sec, fail, lat]
}

//! Scaling section: throughput vs replicas / threads / concurrency with the USL fit and the
//! ideal (linear) line, speedup and efficiency, the failover timeline, latency per step.

use super::common::{distribution, histogram_table, scalars, series_line, series_of, time_chart};
use crate::engine::metrics::Measurements;
use crate::report::charts::{self, Line, LineChart};
use crate::report::view::Section;
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

pub fn sections(m: &Measurements, used: &mut Vec<String>) -> Vec<Section> {
    let mut sec = Section::new("Throughput vs scale");
    let measured = sweep_points(m, "throughput");
    let key = measured.as_ref().map_or("concurrency", |(k, _)| *k);
    let mut lines = Vec::new();
    if let Some((_, pts)) = &measured {
        lines.push(Line::new("measured", pts.clone()));
    }
    for (metric, name) in [("usl.fit", "USL fit"), ("usl.ideal", "ideal (linear)")] {
        for s in series_of(m, |x| x == metric) {
            used.push(metric.to_string());
            lines.push(Line::new(name, s.points.clone()).dashed());
        }
    }
    let title = format!("Throughput vs {key}");
    sec.chart(
        &title,
        charts::line_chart(&LineChart {
            title: title.clone(),
            x_label: key.into(),
            x_dim: Dimension::Count,
            y_dim: Dimension::Rate,
            lines,
        }),
    );
    let mut ratio_lines = Vec::new();
    for metric in ["speedup", "efficiency"] {
        if let Some((_, pts)) = sweep_points(m, metric) {
            ratio_lines.push(Line::new(metric, pts));
        }
    }
    let title = format!("Speedup and efficiency vs {key}");
    sec.chart(
        &title,
        charts::line_chart(&LineChart {
            title: title.clone(),
            x_label: key.into(),
            x_dim: Dimension::Count,
            y_dim: Dimension::Ratio,
            lines: ratio_lines,
        }),
    );
    let sec = sec
        .or_empty("no sweep measurements (throughput labelled replicas, threads or concurrency)");

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
            .map(|s| series_line(s, true))
            .collect();
        if !lines.is_empty() {
            used.push(metric.to_string());
        }
        fail.chart(title, time_chart(title, dim, lines));
    }
    let fail = fail.or_empty(
        "no failover timeline (no fault was injected, or no per-second series was recorded)",
    );

    let mut lat = Section::new("Latency per step");
    distribution(
        m,
        "latency",
        "Latency per sweep step (p50, p90, p99, max)",
        &mut lat,
    );
    lat.tables.push(histogram_table(m, "latency", "latency"));
    let lat = lat.or_empty("no latency histogram was recorded (a fit-only spec has none)");
    vec![sec, fail, lat]
}

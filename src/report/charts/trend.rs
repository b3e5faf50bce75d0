//! Trend charts: one SLO's value over runs (x: run order, oldest first, labelled by
//! commit), each point coloured by its verdict, the current run ringed and labelled, a
//! constant threshold drawn as a line.

use std::fmt::Write as _;

use super::{
    Frame, PLOT_H, ROW, Swatch, Threshold, Unit, axis, close, escape, is_integer, left_margin,
    legend, near_thresholds, open, text, x_tick, y_axis,
};
use crate::spec::units::Dimension;

/// One run on a [`TrendChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// Under the axis: the commit's short sha (or the run's number).
    pub label: String,
    /// On hover: run, commit, time, value and verdict.
    pub tooltip: String,
    pub value: f64,
    /// `pass`, `warn` or `fail` (anything else is drawn grey).
    pub status: String,
    /// The run being reported.
    pub current: bool,
}

/// An SLO's value over runs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendChart {
    pub title: String,
    pub y_unit: Unit,
    /// Oldest first.
    pub points: Vec<TrendPoint>,
    pub thresholds: Vec<Threshold>,
    pub notes: Vec<String>,
}

/// The colour of a verdict, readable on light and dark backgrounds.
fn verdict_color(status: &str) -> &'static str {
    match status {
        "pass" => "#2da44e",
        "warn" => "#d4a72c",
        "fail" => "#cf222e",
        _ => "#8c959f",
    }
}

/// Draw a trend chart; `None` when no point has a finite value.
pub fn trend_chart(c: &TrendChart) -> Option<String> {
    let pts: Vec<&TrendPoint> = c.points.iter().filter(|p| p.value.is_finite()).collect();
    if pts.is_empty() {
        return None;
    }
    let y_int = c.y_unit == Unit::Dim(Dimension::Count) && pts.iter().all(|p| is_integer(p.value));
    let values = || pts.iter().map(|p| p.value);
    let (ths, far) = near_thresholds(&c.thresholds, values(), c.y_unit);
    let (y0, y1) = axis::range(values().chain(ths.iter().map(|t| t.value)), c.y_unit, y_int);
    let notes: Vec<String> = c.notes.iter().cloned().chain(far).collect();
    let mut out = String::new();
    let top = open(&mut out, &c.title, &notes) + ROW;
    let f = Frame {
        left: left_margin(c.y_unit, y0, y1, y_int),
        top,
        bottom: top + PLOT_H,
        x0: -0.5,
        x1: pts.len() as f64 - 0.5,
        y0,
        y1,
    };
    y_axis(&mut out, &f, c.y_unit, y_int, &ths);
    run_labels(&mut out, &f, &pts);
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{x}" y="{y}" text-anchor="middle" fill="currentColor" fill-opacity="0.8">runs, oldest first (commit)</text>"#,
        x = (f.left + f.right()) / 2.0,
        y = f.bottom + 32.0,
    );
    draw_points(&mut out, &f, &pts);
    let mut items: Vec<(String, Swatch)> = Vec::new();
    for status in ["pass", "warn", "fail"] {
        if pts.iter().any(|p| p.status == status) {
            items.push((status.to_string(), Swatch::Box(verdict_color(status))));
        }
    }
    if pts
        .iter()
        .any(|p| !matches!(p.status.as_str(), "pass" | "warn" | "fail"))
    {
        items.push(("other".to_string(), Swatch::Box(verdict_color(""))));
    }
    if pts.iter().any(|p| p.current) {
        items.push(("this run".to_string(), Swatch::Ring));
    }
    let end = legend(&mut out, &items, f.left, f.bottom + 52.0);
    Some(close(&c.title, out, end))
}

/// The runs' labels under the axis: every k-th from the newest, so that none overlaps.
fn run_labels(out: &mut String, f: &Frame, pts: &[&TrendPoint]) {
    let gap = f.px(1.0) - f.px(0.0);
    let widest = pts
        .iter()
        .map(|p| text::width(&p.label))
        .fold(0.0, f64::max);
    let every = ((widest + 8.0) / gap).ceil().max(1.0) as usize;
    let last = pts.len() - 1;
    for (i, p) in pts.iter().enumerate() {
        if !(last - i).is_multiple_of(every) {
            continue;
        }
        x_tick(out, f, f.px(i as f64), &p.label);
    }
}

/// The line through the runs, a dot per run in its verdict's colour, and a ring and a
/// label around the current run.
fn draw_points(out: &mut String, f: &Frame, pts: &[&TrendPoint]) {
    let xy = |i: usize, p: &TrendPoint| (f.px(i as f64), f.py(p.value));
    let path: Vec<String> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="trend-line" fill="none" stroke="currentColor" stroke-opacity="0.45" stroke-width="1.5" stroke-linejoin="round" points="{}"/>"#,
        path.join(" ")
    );
    for (i, p) in pts.iter().enumerate() {
        let (x, y) = xy(i, p);
        let current = if p.current { " current" } else { "" };
        let _ = write!(
            out,
            r#"<circle class="trend-point{current}" data-status="{status}" cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{color}"><title>{tip}</title></circle>"#,
            status = escape(&p.status),
            r = if p.current { 5.5 } else { 4.0 },
            color = verdict_color(&p.status),
            tip = escape(&p.tooltip),
        );
        if p.current {
            let above = y - 14.0 >= f.top;
            let _ = write!(
                out,
                r#"<circle class="trend-ring" cx="{x:.1}" cy="{y:.1}" r="9" fill="none" stroke="currentColor" stroke-width="2"/><text class="trend-here" x="{tx:.1}" y="{ty:.1}" text-anchor="end" fill="currentColor" font-weight="600">this run</text>"#,
                tx = x - 6.0,
                ty = if above { y - 13.0 } else { y + 22.0 },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: f64, status: &str, current: bool) -> TrendPoint {
        TrendPoint {
            label: "0123456".into(),
            tooltip: format!("<run> {value}"),
            value,
            status: status.into(),
            current,
        }
    }

    #[test]
    fn points_carry_their_verdict_and_the_current_run_is_ringed() {
        let mut c = TrendChart {
            title: "p95(latency) < 250ms".into(),
            y_unit: Dimension::Time.into(),
            points: vec![
                point(0.2, "pass", false),
                point(0.3, "fail", false),
                point(0.21, "pass", true),
            ],
            thresholds: vec![Threshold {
                value: 0.25,
                label: "p95 < 250ms".into(),
                title: "p95(latency) < 250ms".into(),
            }],
            notes: Vec::new(),
        };
        let svg = trend_chart(&c).unwrap();
        assert_eq!(svg.matches(r#"class="trend-point"#).count(), 3, "{svg}");
        assert_eq!(svg.matches("trend-point current").count(), 1);
        assert_eq!(svg.matches(r##"fill="#cf222e"><title>"##).count(), 1);
        assert!(svg.contains(">this run<"));
        assert!(svg.contains(">p95 &lt; 250ms<"), "{svg}");
        assert!(svg.contains("&lt;run&gt; 0.3"));
        c.points.clear();
        assert!(trend_chart(&c).is_none());
    }

    #[test]
    fn labels_of_thirty_runs_never_overlap_and_the_newest_is_labelled() {
        let points: Vec<TrendPoint> = (0..30)
            .map(|i| point(0.1 + f64::from(i) / 1000.0, "pass", i == 29))
            .collect();
        let svg = trend_chart(&TrendChart {
            title: "t".into(),
            y_unit: Dimension::Time.into(),
            points,
            thresholds: Vec::new(),
            notes: Vec::new(),
        })
        .unwrap();
        let re = regex::Regex::new(r#"class="x-label" x="([0-9.]+)""#).unwrap();
        let xs: Vec<f64> = re
            .captures_iter(&svg)
            .map(|c| c[1].parse().unwrap())
            .collect();
        assert!(xs.len() >= 3 && xs.len() < 30, "{xs:?}");
        let w = text::width("0123456");
        assert!(xs.windows(2).all(|p| p[1] - p[0] >= w), "{xs:?}");
        assert!(
            xs.iter()
                .all(|x| x - w / 2.0 >= 0.0 && x + w / 2.0 <= 640.0)
        );
        let ring = regex::Regex::new(r#"class="trend-ring" cx="([0-9.]+)""#).unwrap();
        let rx: f64 = ring.captures(&svg).unwrap()[1].parse().unwrap();
        assert_eq!(xs.last(), Some(&rx));
    }
}

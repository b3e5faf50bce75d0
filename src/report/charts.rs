//! Inline SVG charts, drawn by hand: line charts and grouped bar charts with round axis
//! ticks in the metric's units ([`Unit`]), SLO thresholds as horizontal lines, events as
//! vertical markers and notes under the title. No fonts, no scripts, no external
//! resources; every piece of text is escaped. Labels are never cut: a bar label wraps, and
//! labels that still do not fit are numbered with a key under the chart. Colours come from
//! a fixed palette readable on light and dark backgrounds; axes and labels use
//! `currentColor` so they follow the page's theme.

mod axis;
mod text;
mod trend;

use std::fmt::Write as _;

pub use axis::{Unit, nice_ticks};
pub use trend::{TrendChart, TrendPoint, trend_chart};

/// Series colours (Tableau 10), readable on white and on near-black.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Colour of SLO threshold lines.
const THRESHOLD: &str = "#cf222e";

const WIDTH: f64 = 640.0;
const MIN_LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const PLOT_H: f64 = 216.0;
const ROW: f64 = 14.0;

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (reference curves: fits, bounds, ideal lines).
    pub dashed: bool,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Line {
        Line {
            name: name.into(),
            points,
            dashed: false,
        }
    }

    pub fn dashed(mut self) -> Line {
        self.dashed = true;
        self
    }
}

/// A horizontal line at an SLO's threshold, e.g. `SLO < 250ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub value: f64,
    /// Short text drawn at the line's right end.
    pub label: String,
    /// The whole SLO, shown on hover.
    pub title: String,
}

/// A vertical marker at an event on the x axis (a fault, a recovery, a peak).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
}

/// A line chart over a numeric x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub x_unit: Unit,
    pub y_unit: Unit,
    pub lines: Vec<Line>,
    pub thresholds: Vec<Threshold>,
    pub markers: Vec<Marker>,
    /// Sentences drawn under the title (what the chart leaves out, and why).
    pub notes: Vec<String>,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        x_unit: impl Into<Unit>,
        y_unit: impl Into<Unit>,
        lines: Vec<Line>,
    ) -> LineChart {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            x_unit: x_unit.into(),
            y_unit: y_unit.into(),
            lines,
            thresholds: Vec::new(),
            markers: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// A grouped bar chart: one group per category, one bar per series.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_unit: Unit,
    pub categories: Vec<String>,
    /// `(series name, one value per category)`.
    pub series: Vec<(String, Vec<Option<f64>>)>,
    pub thresholds: Vec<Threshold>,
    pub notes: Vec<String>,
}

impl BarChart {
    pub fn new(
        title: impl Into<String>,
        y_unit: impl Into<Unit>,
        categories: Vec<String>,
        series: Vec<(String, Vec<Option<f64>>)>,
    ) -> BarChart {
        BarChart {
            title: title.into(),
            y_unit: y_unit.into(),
            categories,
            series,
            thresholds: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Escape text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The thresholds close enough to the data to draw without squashing it (within twice the
/// data's extent), and a note for the others.
fn near_thresholds(
    ths: &[Threshold],
    data: impl Iterator<Item = f64>,
    unit: Unit,
) -> (Vec<Threshold>, Option<String>) {
    let (lo, hi) = data
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let extent = (hi - lo).max(hi.abs()).max(lo.abs());
    let (near, far): (Vec<Threshold>, Vec<Threshold>) = ths
        .iter()
        .filter(|t| t.value.is_finite())
        .cloned()
        .partition(|t| {
            // data that are all zero squash nothing: any threshold is drawn
            !lo.is_finite()
                || extent == 0.0
                || (t.value >= lo - 2.0 * extent && t.value <= hi + 2.0 * extent)
        });
    let note = (!far.is_empty()).then(|| {
        let labels: Vec<&str> = far.iter().map(|t| t.label.as_str()).collect();
        format!(
            "Off the chart: {} (the data stay within {} – {}).",
            labels.join(", "),
            unit.format(sig3(lo)),
            unit.format(sig3(hi))
        )
    });
    (near, note)
}

/// `v` to three significant digits, for notes.
fn sig3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}

fn is_integer(v: f64) -> bool {
    v.fract() == 0.0
}

/// The plot area and its value ranges.
struct Frame {
    left: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn right(&self) -> f64 {
        WIDTH - RIGHT
    }
    fn px(&self, x: f64) -> f64 {
        let w = self.right() - self.left;
        if self.x1 > self.x0 {
            self.left + (x - self.x0) / (self.x1 - self.x0) * w
        } else {
            self.left + w / 2.0
        }
    }
    fn py(&self, y: f64) -> f64 {
        self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
    }
}

/// `<svg>` and the title; the notes under it, wrapped. Returns the plot's top.
fn open(out: &mut String, title: &str, notes: &[String]) -> f64 {
    let t = escape(title);
    let _ = write!(
        out,
        r#"<text x="8" y="16" font-size="13" font-weight="600" fill="currentColor">{t}</text>"#
    );
    let mut y = 16.0;
    for note in notes {
        for line in text::wrap(note, text::fits(WIDTH - 16.0)) {
            y += ROW;
            let _ = write!(
                out,
                r#"<text class="note" x="8" y="{y}" fill="currentColor" fill-opacity="0.75">{}</text>"#,
                escape(&line)
            );
        }
    }
    y + 14.0
}

/// Wrap the body in `<svg>` of the final height.
fn close(title: &str, body: String, height: f64) -> String {
    let t = escape(title);
    format!(
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="11"><title>{t}</title>{body}</svg>"#
    )
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Line {
        color: &'static str,
        dashed: bool,
    },
    Box(&'static str),
    /// An open circle (the current run of a trend).
    Ring,
}

/// Legend entries in rows from `y`; a name too long for a row wraps. Returns the next y.
fn legend(out: &mut String, items: &[(String, Swatch)], left: f64, y: f64) -> f64 {
    let avail = WIDTH - RIGHT - left - 22.0;
    let mut x = left;
    let mut y = y;
    for (name, swatch) in items {
        let lines = text::wrap(name, text::fits(avail));
        let w = 30.0 + lines.iter().map(|l| text::width(l)).fold(0.0, f64::max);
        if x + w > WIDTH - RIGHT && x > left {
            x = left;
            y += ROW;
        }
        let _ = match swatch {
            Swatch::Line { color, dashed } => write!(
                out,
                r#"<line x1="{x}" y1="{ly}" x2="{x2}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/>"#,
                ly = y - 4.0,
                x2 = x + 18.0,
                dash = if *dashed {
                    r#" stroke-dasharray="4 3""#
                } else {
                    ""
                },
            ),
            Swatch::Box(color) => write!(
                out,
                r#"<rect x="{x}" y="{ry}" width="14" height="10" fill="{color}"/>"#,
                ry = y - 9.0
            ),
            Swatch::Ring => write!(
                out,
                r#"<circle cx="{cx}" cy="{cy}" r="5" fill="none" stroke="currentColor" stroke-width="2"/>"#,
                cx = x + 7.0,
                cy = y - 4.0
            ),
        };
        for (i, l) in lines.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text class="legend" x="{tx}" y="{ty}" fill="currentColor">{}</text>"#,
                escape(l),
                tx = x + 22.0,
                ty = y + i as f64 * ROW,
            );
        }
        y += (lines.len() - 1) as f64 * ROW;
        x += w;
    }
    y + ROW
}

/// Grid lines and labels of the y axis, the axis lines, and the thresholds.
fn y_axis(out: &mut String, f: &Frame, unit: Unit, integer: bool, thresholds: &[Threshold]) {
    for t in axis::ticks(unit, f.y0, f.y1, 5, integer) {
        let y = f.py(t);
        let _ = write!(
            out,
            r#"<line x1="{l}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="currentColor" stroke-opacity="0.15"/><text class="y-label" x="{tx}" y="{ty:.1}" text-anchor="end" fill="currentColor">{label}</text>"#,
            l = f.left,
            x2 = f.right(),
            tx = f.left - 6.0,
            ty = y + 4.0,
            label = escape(&unit.format(t)),
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="currentColor" stroke-opacity="0.6"/><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="currentColor" stroke-opacity="0.6"/>"#,
        l = f.left,
        t = f.top,
        b = f.bottom,
        r = f.right(),
    );
    for th in thresholds.iter().filter(|t| t.value.is_finite()) {
        let y = f.py(th.value);
        let _ = write!(
            out,
            r#"<g class="threshold"><title>{title}</title><line x1="{l}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="{THRESHOLD}" stroke-width="1.5" stroke-dasharray="2 2"/><text x="{r}" y="{ty:.1}" text-anchor="end" fill="{THRESHOLD}">{label}</text></g>"#,
            title = escape(&th.title),
            l = f.left,
            r = f.right() - 2.0,
            ty = y - 3.0,
            label = escape(&th.label),
        );
    }
}

/// The left margin that fits the widest y tick label.
fn left_margin(unit: Unit, y0: f64, y1: f64, integer: bool) -> f64 {
    axis::ticks(unit, y0, y1, 5, integer)
        .iter()
        .map(|t| text::width(&unit.format(*t)) + 12.0)
        .fold(MIN_LEFT, f64::max)
}

fn markers(out: &mut String, f: &Frame, markers: &[Marker]) {
    for (i, m) in markers.iter().enumerate() {
        if !(m.x.is_finite() && m.x >= f.x0 && m.x <= f.x1) {
            continue;
        }
        let x = f.px(m.x);
        let w = text::width(&m.label);
        let (tx, anchor) = if x + 4.0 + w > f.right() {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = write!(
            out,
            r#"<g class="marker"><line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="currentColor" stroke-opacity="0.7" stroke-dasharray="3 3"/><text x="{tx:.1}" y="{ty}" text-anchor="{anchor}" fill="currentColor">{label}</text></g>"#,
            t = f.top,
            b = f.bottom,
            ty = f.top + 10.0 + ROW * (i % 2) as f64,
            label = escape(&m.label),
        );
    }
}

/// Draw a line chart; `None` when no line has a finite point.
pub fn line_chart(c: &LineChart) -> Option<String> {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let pts = || {
        c.lines
            .iter()
            .flat_map(|l| l.points.iter().copied().filter(finite))
    };
    pts().next()?;
    let (x0, x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
        (a.min(x), b.max(x))
    });
    let x_int = c.x_unit == Unit::Dim(crate::spec::units::Dimension::Count)
        && pts().all(|(x, _)| is_integer(x));
    let y_int = c.y_unit == Unit::Dim(crate::spec::units::Dimension::Count)
        && pts().all(|(_, y)| is_integer(y));
    let (ths, far) = near_thresholds(&c.thresholds, pts().map(|(_, y)| y), c.y_unit);
    let (y0, y1) = axis::range(
        pts().map(|(_, y)| y).chain(ths.iter().map(|t| t.value)),
        c.y_unit,
        y_int,
    );
    let notes: Vec<String> = c.notes.iter().cloned().chain(far).collect();
    let mut out = String::new();
    let top = open(&mut out, &c.title, &notes);
    let f = Frame {
        left: left_margin(c.y_unit, y0, y1, y_int),
        top,
        bottom: top + PLOT_H,
        x0,
        x1,
        y0,
        y1,
    };
    y_axis(&mut out, &f, c.y_unit, y_int, &ths);
    x_ticks(&mut out, &f, c.x_unit, x_int);
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{x}" y="{y}" text-anchor="middle" fill="currentColor" fill-opacity="0.8">{label}</text>"#,
        x = (f.left + f.right()) / 2.0,
        y = f.bottom + 32.0,
        label = escape(&c.x_label),
    );
    markers(&mut out, &f, &c.markers);
    for (i, l) in c.lines.iter().enumerate() {
        draw_line(&mut out, &f, l, PALETTE[i % PALETTE.len()]);
    }
    let items: Vec<(String, Swatch)> = c
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let color = PALETTE[i % PALETTE.len()];
            let swatch = Swatch::Line {
                color,
                dashed: l.dashed,
            };
            (l.name.clone(), swatch)
        })
        .collect();
    let end = legend(&mut out, &items, f.left, f.bottom + 52.0);
    Some(close(&c.title, out, end))
}

/// Round x ticks that never overlap: fewer ticks until the labels fit.
fn x_ticks(out: &mut String, f: &Frame, unit: Unit, integer: bool) {
    let mut count = 6;
    let ticks = loop {
        let t = axis::ticks(unit, f.x0, f.x1, count, integer);
        let widest = t
            .iter()
            .map(|v| text::width(&unit.format(*v)))
            .fold(0.0, f64::max);
        let gap = if t.len() > 1 {
            f.px(t[1]) - f.px(t[0])
        } else {
            f64::INFINITY
        };
        if gap >= widest + 8.0 || count <= 2 {
            break t;
        }
        count -= 1;
    };
    for t in ticks {
        x_tick(out, f, f.px(t), &unit.format(t));
    }
}

/// A tick on the x axis at pixel `x`, labelled under it.
fn x_tick(out: &mut String, f: &Frame, x: f64, label: &str) {
    let _ = write!(
        out,
        r#"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="currentColor" stroke-opacity="0.6"/><text class="x-label" x="{x:.1}" y="{ty}" text-anchor="middle" fill="currentColor">{label}</text>"#,
        b = f.bottom,
        b2 = f.bottom + 4.0,
        ty = f.bottom + 16.0,
        label = escape(label),
    );
}

fn draw_line(out: &mut String, f: &Frame, l: &Line, color: &str) {
    let mut p: Vec<(f64, f64)> = l
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let name = escape(&l.name);
    if p.len() == 1 {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{name}</title></circle>"#,
            f.px(p[0].0),
            f.py(p[0].1)
        );
        return;
    }
    let path: Vec<String> = p
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
        .collect();
    let dash = if l.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"{dash} points="{}"><title>{name}</title></polyline>"#,
        path.join(" ")
    );
    if p.len() <= 12 && !l.dashed {
        for &(x, y) in &p {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                f.px(x),
                f.py(y)
            );
        }
    }
}

/// Category labels under the bars: each wrapped to its group's width, or — when one would
/// need more than three lines — numbers with a key (returned as `(number, name)` pairs).
fn bar_labels(categories: &[String], group_w: f64) -> (Vec<Vec<String>>, Vec<(String, String)>) {
    let max = text::fits(group_w - 6.0);
    let wrapped: Vec<Vec<String>> = categories.iter().map(|c| text::wrap(c, max)).collect();
    if wrapped.iter().all(|l| l.len() <= 3) {
        return (wrapped, Vec::new());
    }
    let numbers: Vec<String> = (1..=categories.len()).map(|i| i.to_string()).collect();
    let key = numbers
        .iter()
        .cloned()
        .zip(categories.iter().cloned())
        .collect();
    (numbers.into_iter().map(|n| vec![n]).collect(), key)
}

/// Draw a grouped bar chart; `None` when there is no finite value.
pub fn bar_chart(c: &BarChart) -> Option<String> {
    let values = || {
        c.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied().filter(|v| v.is_finite()))
    };
    if values().next().is_none() || c.categories.is_empty() {
        return None;
    }
    let y_int =
        c.y_unit == Unit::Dim(crate::spec::units::Dimension::Count) && values().all(is_integer);
    let (ths, far) = near_thresholds(&c.thresholds, values(), c.y_unit);
    let (y0, y1) = axis::range(values().chain(ths.iter().map(|t| t.value)), c.y_unit, y_int);
    let notes: Vec<String> = c.notes.iter().cloned().chain(far).collect();
    let mut out = String::new();
    let top = open(&mut out, &c.title, &notes);
    let f = Frame {
        left: left_margin(c.y_unit, y0, y1, y_int),
        top,
        bottom: top + PLOT_H,
        x0: 0.0,
        x1: 1.0,
        y0,
        y1,
    };
    y_axis(&mut out, &f, c.y_unit, y_int, &ths);
    let group_w = (f.right() - f.left) / c.categories.len() as f64;
    let n = c.series.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / n).min(48.0);
    let zero = f.py(0.0_f64.clamp(y0, y1));
    let (labels, key) = bar_labels(&c.categories, group_w);
    for (gi, cat) in c.categories.iter().enumerate() {
        let gx = f.left + gi as f64 * group_w;
        let start = gx + (group_w - bar_w * n) / 2.0;
        for (si, (sname, vals)) in c.series.iter().enumerate() {
            let Some(v) = vals.get(gi).copied().flatten().filter(|v| v.is_finite()) else {
                continue;
            };
            let y = f.py(v);
            let (top, h) = if y <= zero {
                (y, zero - y)
            } else {
                (zero, y - zero)
            };
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"><title>{t}</title></rect>"#,
                x = start + si as f64 * bar_w,
                color = PALETTE[si % PALETTE.len()],
                t = escape(&format!("{sname} · {cat}: {}", c.y_unit.format(v))),
            );
        }
        for (li, line) in labels[gi].iter().enumerate() {
            let _ = write!(
                out,
                r#"<text class="x-label" x="{x:.1}" y="{y}" text-anchor="middle" fill="currentColor">{label}</text>"#,
                x = gx + group_w / 2.0,
                y = f.bottom + 16.0 + li as f64 * ROW,
                label = escape(line),
            );
        }
    }
    let rows = labels.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let mut y = f.bottom + 16.0 + rows * ROW + 8.0;
    if c.series.len() > 1 {
        let items: Vec<(String, Swatch)> = c
            .series
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), Swatch::Box(PALETTE[i % PALETTE.len()])))
            .collect();
        y = legend(&mut out, &items, f.left, y);
    }
    for (num, name) in &key {
        for (i, line) in text::wrap(
            &format!("{num}: {name}"),
            text::fits(WIDTH - RIGHT - f.left),
        )
        .iter()
        .enumerate()
        {
            let _ = write!(
                out,
                r#"<text class="x-key" x="{x}" y="{y}" fill="currentColor">{}</text>"#,
                escape(line),
                x = f.left + if i > 0 { 12.0 } else { 0.0 },
            );
            y += ROW;
        }
    }
    Some(close(&c.title, out, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::units::Dimension;

    #[test]
    fn text_is_escaped_and_units_are_formatted() {
        let svg = line_chart(&LineChart::new(
            "<script>alert(1)</script>",
            "time",
            Dimension::Time,
            Dimension::Time,
            vec![Line::new(
                "p95 \"x\"",
                vec![(0.0, 0.010), (1.0, 0.020), (2.0, 0.015)],
            )],
        ))
        .unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("p95 &quot;x&quot;"));
        assert!(svg.contains(">20ms<"), "{svg}");
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn empty_charts_are_not_drawn() {
        let c = LineChart::new("t", "x", Dimension::Count, Dimension::Count, vec![]);
        assert!(line_chart(&c).is_none());
        let b = BarChart::new(
            "t",
            Dimension::Ratio,
            vec!["a".into()],
            vec![("s".into(), vec![None])],
        );
        assert!(bar_chart(&b).is_none());
        let b = BarChart::new(
            "t",
            Dimension::Ratio,
            vec!["a".into()],
            vec![("s".into(), vec![Some(0.5)])],
        );
        assert!(bar_chart(&b).unwrap().contains("<rect"));
    }

    #[test]
    fn long_bar_labels_wrap_or_get_a_key_and_are_never_cut() {
        let cats: Vec<String> = ["a", "b", "c", "d", "e"]
            .map(|i| format!("journey=checkout, instance={i}"))
            .to_vec();
        let b = BarChart::new(
            "t",
            Dimension::Time,
            cats,
            vec![("p50".into(), vec![Some(0.1); 5])],
        );
        let svg = bar_chart(&b).unwrap();
        assert!(svg.contains(">checkout,<"), "{svg}");
        assert!(svg.contains(">instance=a<"), "{svg}");
        let many: Vec<String> = (0..12)
            .map(|i| format!("batch={i}, mode=quantized, scheme=int8-block32"))
            .collect();
        let b = BarChart::new(
            "t",
            Dimension::Time,
            many,
            vec![("p50".into(), vec![Some(0.1); 12])],
        );
        let svg = bar_chart(&b).unwrap();
        assert!(svg.contains(r#"class="x-key""#), "{svg}");
        assert!(
            svg.contains("12: batch=11, mode=quantized, scheme=int8-block32"),
            "{svg}"
        );
    }

    #[test]
    fn thresholds_and_markers_are_drawn_inside_the_range() {
        let mut c = LineChart::new(
            "t",
            "x",
            Dimension::Time,
            Dimension::Time,
            vec![Line::new("p95", vec![(0.0, 0.1), (10.0, 0.12)])],
        );
        c.thresholds.push(Threshold {
            value: 0.25,
            label: "SLO < 250ms".into(),
            title: "p95(latency) < 250ms".into(),
        });
        c.markers.push(Marker {
            x: 4.0,
            label: "fault".into(),
        });
        c.markers.push(Marker {
            x: 40.0,
            label: "outside".into(),
        });
        let svg = line_chart(&c).unwrap();
        assert!(svg.contains(">SLO &lt; 250ms<"), "{svg}");
        assert!(svg.contains(">250ms<") || svg.contains(">300ms<"), "{svg}");
        assert!(svg.contains(">fault<"));
        assert!(!svg.contains(">outside<"));
    }
}

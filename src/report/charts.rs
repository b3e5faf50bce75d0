//! Inline SVG charts, drawn by hand: line charts and grouped bar charts with axis ticks in
//! the metric's units ([`Dimension::format`]). No fonts, no scripts, no external resources;
//! every piece of text is escaped. Colours come from a fixed palette readable on light and
//! dark backgrounds; axes and labels use `currentColor` so they follow the page's theme.

use std::fmt::Write as _;

use crate::spec::units::Dimension;

/// Series colours (Tableau 10), readable on white and on near-black.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;
const LEGEND_ROW: f64 = 16.0;

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

/// A line chart over a numeric x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub x_dim: Dimension,
    pub y_dim: Dimension,
    pub lines: Vec<Line>,
}

/// A grouped bar chart: one group per category, one bar per series.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_dim: Dimension,
    pub categories: Vec<String>,
    /// `(series name, one value per category)`.
    pub series: Vec<(String, Vec<Option<f64>>)>,
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

/// 1, 2 or 5 times a power of ten, about `count` steps over `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut i = 0.0;
    while start + i * step <= hi + step * 1e-9 && ticks.len() < 50 {
        let t = start + i * step;
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        i += 1.0;
    }
    ticks
}

/// `[lo, hi]` padded to nice bounds; a zero-based range for non-negative data.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo >= 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        hi = if hi == 0.0 { 1.0 } else { lo + hi.abs() };
    }
    let ticks = nice_ticks(lo, hi, 5);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        hi - lo
    };
    let top = if ticks.last().is_some_and(|t| *t >= hi) {
        *ticks.last().unwrap_or(&hi)
    } else {
        ticks.last().unwrap_or(&hi) + step
    };
    (lo, top.max(hi))
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    plot_bottom: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        if self.x1 > self.x0 {
            LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
        } else {
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0
        }
    }
    fn py(&self, y: f64) -> f64 {
        self.plot_bottom - (y - self.y0) / (self.y1 - self.y0) * (self.plot_bottom - TOP)
    }
}

fn open(out: &mut String, title: &str, height: f64) {
    let t = escape(title);
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="11"><title>{t}</title><text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="currentColor">{t}</text>"#
    );
}

fn legend(out: &mut String, names: &[(String, bool)], y: f64) {
    let mut x = LEFT;
    let mut y = y;
    for (i, (name, dashed)) in names.iter().enumerate() {
        let w = 28.0 + 6.5 * name.chars().count().min(40) as f64;
        if x + w > WIDTH - RIGHT && x > LEFT {
            x = LEFT;
            y += LEGEND_ROW;
        }
        let color = PALETTE[i % PALETTE.len()];
        let dash = if *dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{ly}" x2="{x2}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/><text x="{tx}" y="{ty}" fill="currentColor">{name}</text>"#,
            ly = y - 4.0,
            x2 = x + 18.0,
            tx = x + 22.0,
            ty = y,
            name = escape(&name.chars().take(40).collect::<String>()),
        );
        x += w;
    }
}

fn legend_rows(names: &[(String, bool)]) -> f64 {
    let mut rows = 1.0;
    let mut x = LEFT;
    for (name, _) in names {
        let w = 28.0 + 6.5 * name.chars().count().min(40) as f64;
        if x + w > WIDTH - RIGHT && x > LEFT {
            x = LEFT;
            rows += 1.0;
        }
        x += w;
    }
    rows
}

fn y_axis(out: &mut String, f: &Frame, dim: Dimension) {
    for t in nice_ticks(f.y0, f.y1, 5) {
        let y = f.py(t);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="currentColor" stroke-opacity="0.15"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="currentColor">{label}</text>"#,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            label = escape(&dim.format(t)),
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="currentColor" stroke-opacity="0.6"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="currentColor" stroke-opacity="0.6"/>"#,
        b = f.plot_bottom,
        r = WIDTH - RIGHT,
    );
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
    let (y0, y1) = y_range(pts().map(|(_, y)| y));
    let names: Vec<(String, bool)> = c.lines.iter().map(|l| (l.name.clone(), l.dashed)).collect();
    let legend_h = legend_rows(&names) * LEGEND_ROW;
    let height = HEIGHT + legend_h;
    let f = Frame {
        x0,
        x1,
        y0,
        y1,
        plot_bottom: HEIGHT - BOTTOM,
    };
    let mut out = String::new();
    open(&mut out, &c.title, height);
    y_axis(&mut out, &f, c.y_dim);
    for t in nice_ticks(x0, x1, 6) {
        let x = f.px(t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="currentColor" stroke-opacity="0.6"/><text x="{x:.1}" y="{ty}" text-anchor="middle" fill="currentColor">{label}</text>"#,
            b = f.plot_bottom,
            b2 = f.plot_bottom + 4.0,
            ty = f.plot_bottom + 16.0,
            label = escape(&c.x_dim.format(t)),
        );
    }
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor" fill-opacity="0.8">{label}</text>"#,
        x = LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        y = f.plot_bottom + 32.0,
        label = escape(&c.x_label),
    );
    for (i, l) in c.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut p: Vec<(f64, f64)> = l.points.iter().copied().filter(finite).collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let name = escape(&l.name);
        if p.len() == 1 {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{name}</title></circle>"#,
                f.px(p[0].0),
                f.py(p[0].1)
            );
            continue;
        }
        let path: Vec<String> = p
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
            .collect();
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
    legend(
        &mut out,
        &names,
        HEIGHT - 4.0 + legend_h - LEGEND_ROW + 12.0,
    );
    out.push_str("</svg>");
    Some(out)
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
    let (y0, y1) = y_range(values());
    let names: Vec<(String, bool)> = c.series.iter().map(|(n, _)| (n.clone(), false)).collect();
    let show_legend = c.series.len() > 1;
    let legend_h = if show_legend {
        legend_rows(&names) * LEGEND_ROW
    } else {
        0.0
    };
    let height = HEIGHT + legend_h;
    let f = Frame {
        x0: 0.0,
        x1: 1.0,
        y0,
        y1,
        plot_bottom: HEIGHT - BOTTOM,
    };
    let mut out = String::new();
    open(&mut out, &c.title, height);
    y_axis(&mut out, &f, c.y_dim);
    let plot_w = WIDTH - LEFT - RIGHT;
    let group_w = plot_w / c.categories.len() as f64;
    let n = c.series.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / n).min(48.0);
    let zero = f.py(0.0_f64.clamp(y0, y1));
    for (gi, cat) in c.categories.iter().enumerate() {
        let gx = LEFT + gi as f64 * group_w;
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
                t = escape(&format!("{sname} · {cat}: {}", c.y_dim.format(v))),
            );
        }
        let label: String = cat
            .chars()
            .take(((group_w / 6.5) as usize).max(4))
            .collect();
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y}" text-anchor="middle" fill="currentColor">{label}</text>"#,
            x = gx + group_w / 2.0,
            y = f.plot_bottom + 16.0,
            label = escape(&label),
        );
    }
    if show_legend {
        legend(
            &mut out,
            &names,
            HEIGHT - 4.0 + legend_h - LEGEND_ROW + 12.0,
        );
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_covering_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            nice_ticks(0.0, 0.25, 5),
            vec![0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25]
        );
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn text_is_escaped_and_units_are_formatted() {
        let svg = line_chart(&LineChart {
            title: "<script>alert(1)</script>".into(),
            x_label: "time".into(),
            x_dim: Dimension::Time,
            y_dim: Dimension::Time,
            lines: vec![Line::new(
                "p95 \"x\"",
                vec![(0.0, 0.010), (1.0, 0.020), (2.0, 0.015)],
            )],
        })
        .unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("p95 &quot;x&quot;"));
        assert!(svg.contains(">20ms<"), "{svg}");
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn empty_charts_are_not_drawn() {
        let c = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            x_dim: Dimension::Count,
            y_dim: Dimension::Count,
            lines: vec![],
        };
        assert!(line_chart(&c).is_none());
        let b = BarChart {
            title: "t".into(),
            y_dim: Dimension::Ratio,
            categories: vec!["a".into()],
            series: vec![("s".into(), vec![None])],
        };
        assert!(bar_chart(&b).is_none());
        let b = BarChart {
            title: "t".into(),
            y_dim: Dimension::Ratio,
            categories: vec!["a".into()],
            series: vec![("s".into(), vec![Some(0.5)])],
        };
        assert!(bar_chart(&b).unwrap().contains("<rect"));
    }
}

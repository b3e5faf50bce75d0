//! The charts of every kind's report, checked in the generated SVG: no x label is cut or
//! drawn over its neighbour (estimated text widths against their positions), every bar's
//! category is readable in full (under the bars or in the key), and the x axes of scaling
//! charts stay within 1.5× the largest measured level. Reports come from the example
//! fit-only spec run by the real CLI and from results shaped like each backend's (long
//! label sets, many categories, a USL peak far beyond the measured range).

use std::process::Stdio;

use perfspec::engine::metrics::{Labels, Measurements, labels};
use perfspec::report::results::{Results, SpecStatus};
use perfspec::report::templates::Templates;
use perfspec::spec::catalog::Kind;

use super::reports::{every_kind, spec};
use crate::cli::{Dir, bin};

/// The charts' estimated advance per character (`report::charts` uses the same).
const CHAR_W: f64 = 6.6;
const WIDTH: f64 = 640.0;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn strip(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `(aria-label, svg)` of every chart in a page.
pub(crate) fn charts(html: &str) -> Vec<(String, String)> {
    let re =
        regex::Regex::new(r#"(?s)<svg class="chart"[^>]*aria-label="([^"]*)".*?</svg>"#).unwrap();
    re.captures_iter(html)
        .map(|c| (unescape(&c[1]), c[0].to_string()))
        .collect()
}

/// `(x, y, text)` of the `<text>` elements of a class.
fn texts(svg: &str, class: &str) -> Vec<(f64, f64, String)> {
    let re = regex::Regex::new(&format!(
        r#"<text class="{class}" x="([-0-9.]+)" y="([-0-9.]+)"[^>]*>([^<]*)</text>"#
    ))
    .unwrap();
    re.captures_iter(svg)
        .map(|c| {
            (
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                unescape(&c[3]),
            )
        })
        .collect()
}

/// Labels on one row never overlap and stay inside the chart; none is cut with `…`.
pub(crate) fn check_x_labels(title: &str, svg: &str) {
    let mut labels = texts(svg, "x-label");
    labels.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    for (x, _, t) in &labels {
        let half = t.chars().count() as f64 * CHAR_W / 2.0;
        assert!(
            x - half >= 0.0 && x + half <= WIDTH,
            "{title}: `{t}` leaves the chart at x={x}"
        );
        assert!(
            !t.ends_with('…') && !t.ends_with("..."),
            "{title}: `{t}` is cut"
        );
    }
    for w in labels.windows(2) {
        let ((x0, y0, t0), (x1, y1, t1)) = (&w[0], &w[1]);
        if y0 != y1 {
            continue;
        }
        let right = x0 + t0.chars().count() as f64 * CHAR_W / 2.0;
        let left = x1 - t1.chars().count() as f64 * CHAR_W / 2.0;
        assert!(
            right <= left,
            "{title}: `{t0}` and `{t1}` overlap ({right} > {left})"
        );
    }
}

/// Every bar's category (from its tooltip) is readable in full under the bars or in the key.
fn check_categories(title: &str, svg: &str) {
    let re = regex::Regex::new(r"<rect [^>]*><title>[^<]*? · ([^<]*): [^<]*</title>").unwrap();
    let mut by_x: Vec<(f64, String)> = Vec::new();
    for (x, _, t) in texts(svg, "x-label") {
        match by_x.iter_mut().find(|(bx, _)| *bx == x) {
            Some((_, s)) => s.push_str(&t),
            None => by_x.push((x, t)),
        }
    }
    let shown: Vec<String> = by_x.into_iter().map(|(_, s)| strip(&s)).collect();
    let key = strip(
        &texts(svg, "x-key")
            .into_iter()
            .map(|t| t.2)
            .collect::<String>(),
    );
    for c in re.captures_iter(svg) {
        let cat = strip(&unescape(&c[1]));
        assert!(
            shown.contains(&cat) || key.contains(&format!(":{cat}")),
            "{title}: category `{cat}` is not shown in full (labels {shown:?}, key `{key}`)"
        );
    }
}

/// Scaling charts' x ticks stay within 1.5× the largest measured level.
fn check_scaling_axis(title: &str, svg: &str, max_measured: f64) {
    let ticks: Vec<f64> = texts(svg, "x-label")
        .iter()
        .filter_map(|(_, _, t)| t.parse().ok())
        .collect();
    assert!(!ticks.is_empty(), "{title}: no x ticks");
    let top = ticks.iter().copied().fold(0.0, f64::max);
    assert!(
        top <= 1.5 * max_measured,
        "{title}: x axis runs to {top}, measured up to {max_measured}"
    );
}

fn check_page(html: &str, max_measured: Option<f64>) -> usize {
    let all = charts(html);
    for (title, svg) in &all {
        check_x_labels(title, svg);
        check_categories(title, svg);
        if let Some(max) = max_measured.filter(|_| {
            ["Throughput vs", "Speedup vs", "Efficiency vs"]
                .iter()
                .any(|p| title.starts_with(p))
        }) {
            check_scaling_axis(title, svg, max);
        }
    }
    all.len()
}

/// Results shaped like the backends' with long label sets: per-step latency of several
/// journeys, per-instance cache latency, per-batch quantized latency, a sweep to 6 replicas
/// whose fitted peak is at 52.
fn crowded() -> Results {
    let mut r = every_kind();
    let mut load = Measurements::default();
    for j in ["checkout", "browse", "search"] {
        for s in [
            "GET /login",
            "POST /cart/items",
            "GET /products/{id}",
            "instance",
        ] {
            let h = load.histogram("latency", labels(&[("journey", j), ("step", s)]), 1e-6);
            for i in 1..=50 {
                h.record(f64::from(i) * 1e-3);
            }
        }
    }
    r.specs[0].measurements = Some(load);
    let mut quant = Measurements::default();
    for batch in ["1", "8", "32", "128"] {
        for scheme in ["int8", "int8-block32", "int4-block32"] {
            let l = labels(&[("batch", batch), ("mode", "quantized"), ("scheme", scheme)]);
            let h = quant.histogram("latency", l, 1e-6);
            for i in 1..=20 {
                h.record(f64::from(i) * 1e-4);
            }
        }
    }
    let mut q = spec("digits-int8", SpecStatus::Pass, vec![], Some(quant), None);
    q.kind = Kind::Quantize;
    r.specs.push(q);
    let mut scaling = Measurements::default();
    let usl = |n: f64| 100.0 * n / (1.0 + 0.001 * (n - 1.0) + 0.0004 * n * (n - 1.0));
    for n in 1..=6 {
        let x = usl(f64::from(n));
        let l = labels(&[("replicas", &n.to_string())]);
        scaling.scalar("throughput", l.clone(), x);
        scaling.scalar("speedup", l.clone(), x / 100.0);
        scaling.scalar("efficiency", l, x / 100.0 / f64::from(n));
    }
    scaling.push_series(
        "usl.fit",
        labels(&[("x", "replicas")]),
        (1..=104)
            .map(|n| (f64::from(n), usl(f64::from(n))))
            .collect(),
    );
    scaling.scalar("usl.peak_concurrency", Labels::new(), 52.0);
    scaling.scalar("usl.max_throughput", Labels::new(), usl(52.0));
    scaling
        .notes
        .push("warning: the offered load grew with the replicas".into());
    let mut s = spec("web-tier", SpecStatus::Pass, vec![], Some(scaling), None);
    s.kind = Kind::Scaling;
    r.specs.push(s);
    r
}

#[test]
fn chart_labels_are_never_cut_or_overlapping_and_scaling_axes_stay_near_the_data() {
    let t = Templates::load(None).unwrap();
    for r in [every_kind(), crowded()] {
        let html = perfspec::report::html::render(&r, &t).unwrap();
        // every_kind's sweep measured up to 8 replicas, crowded's up to 6
        let drawn = check_page(&html, Some(8.0));
        assert!(drawn >= 8, "only {drawn} charts");
    }
    let html = perfspec::report::html::render(&crowded(), &t).unwrap();
    if let Some(keep) = std::env::var_os("PERFSPEC_KEEP_SCREENSHOT") {
        std::fs::write(std::path::Path::new(&keep).join("crowded.html"), &html).unwrap();
    }
    assert!(
        html.contains("The fitted peak N* = 52")
            && html.contains("lies outside the measured range (1–6 replicas)"),
        "the far peak is not noted"
    );
    assert!(
        html.contains(r#"<li class="warning">warning: the offered load grew"#),
        "warning notes are not highlighted"
    );
    for (title, svg) in charts(&html) {
        if title == "Throughput vs replicas" && svg.contains("N* = 52") {
            check_scaling_axis(&title, &svg, 6.0);
        }
    }
}

#[test]
fn the_example_usl_spec_report_keeps_the_fit_within_the_measured_range() {
    let d = Dir::new(&[]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::copy(root.join("web-tier-usl.yaml"), d.join("web-tier-usl.yaml")).unwrap();
    std::fs::copy(root.join("data/web-tier.csv"), d.join("data/web-tier.csv")).unwrap();
    let out = bin()
        .current_dir(d.path())
        .args(["run", "web-tier-usl.yaml", "--quiet", "--out", "out"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(d.join("out/report.html")).unwrap();
    assert!(check_page(&html, Some(32.0)) >= 3);
    // N* = 35 lies past the 32 measured levels: noted, not drawn
    assert!(html.contains("The fitted peak N* = 35"), "no peak note");
    assert!(html.contains("<title>PASS · web-tier-usl-fit · perfspec</title>"));
    // R² is shown as a number, not a percentage
    assert!(
        !html.contains("99.7%") && html.contains(">0.99"),
        "R² shown as %"
    );
}

//! The trend charts of `--history`: three runs of a testkit spec into one history draw, per
//! SLO, a chart of three points with this run highlighted; `perfspec report` re-renders them
//! and re-judges against `--baseline history:main`; the chart is checked in headless
//! Chromium; a missing, foreign or branch-less history gets a clear message.

use std::process::{Output, Stdio};

use crate::cli::{Dir, bin, stderr};
use crate::noise::{TESTKIT, history_run_at};
use crate::report_charts::{charts, check_x_labels};
use crate::reports::{headless, require_chromium};

const SHAS: [&str; 3] = ["1111111aaaa", "2222222bbbb", "3333333cccc"];

/// Three runs `o1`..`o3` into `h.db`, one after the other, each at its own commit.
fn three_runs() -> Dir {
    let d = Dir::new(&[("a.toml", TESTKIT)]);
    for (i, sha) in SHAS.iter().enumerate() {
        let o = history_run_at(&d, &format!("o{}", i + 1), sha, &[])
            .wait_with_output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    d
}

fn read(d: &Dir, p: &str) -> String {
    std::fs::read_to_string(d.join(p)).unwrap()
}

/// The trend charts of a page: `(aria-label, svg)`.
fn trend_charts(html: &str) -> Vec<(String, String)> {
    charts(html)
        .into_iter()
        .filter(|(_, svg)| svg.contains("trend-point"))
        .collect()
}

fn report(d: &Dir, args: &[&str]) -> Output {
    bin()
        .env_remove("PERFSPEC_HISTORY")
        .env("GITHUB_REF_NAME", "main")
        .arg("report")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("perfspec report in {}: {e}", d.0.path().display()))
}

#[test]
fn three_runs_with_history_draw_a_trend_of_three_points_with_this_run_highlighted() {
    let d = three_runs();
    let first = read(&d, "o1/report.html");
    assert!(trend_charts(&first).is_empty());
    assert!(
        first.contains("holds no run before this one: the trend starts with the next run"),
        "{first}"
    );
    let html = read(&d, "o3/report.html");
    assert!(
        html.contains("branch `main`: this run and the 2 run(s) before it"),
        "{html}"
    );
    let trends = trend_charts(&html);
    let titles: Vec<&str> = trends.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["p50(latency) <= baseline * 1.05", "late_ratio < 1%"],
        "one chart per SLO of the spec (the default one included)"
    );
    for (title, svg) in &trends {
        assert_eq!(
            svg.matches(r#"class="trend-point"#).count(),
            3,
            "{title}: {svg}"
        );
    }
    // a constant threshold is drawn as a line, a baseline-relative one is not
    assert!(
        trends[1].1.contains(r#"<g class="threshold">"#),
        "{}",
        trends[1].1
    );
    assert!(!trends[0].1.contains(r#"<g class="threshold">"#));
    let (title, svg) = &trends[0];
    // the current run is the last point, ringed; the earlier ones are not
    let current = svg
        .find("trend-point current")
        .expect("this run highlighted");
    assert!(
        svg[current..].find(r#"class="trend-point""#).is_none(),
        "{svg}"
    );
    assert_eq!(svg.matches(r#"class="trend-ring""#).count(), 1);
    assert!(svg.contains(">this run<"));
    // x labels: the commits, oldest first, readable
    let labels: Vec<usize> = SHAS
        .iter()
        .map(|s| svg.find(&format!(">{}<", &s[..7])).expect(s))
        .collect();
    assert!(labels.windows(2).all(|w| w[0] < w[1]), "{svg}");
    check_x_labels(title, svg);
    // the first run had no baseline (warn), the others passed within noise
    let statuses: Vec<&str> = regex::Regex::new(r#"data-status="(\w+)""#)
        .unwrap()
        .captures_iter(svg)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(statuses, ["warn", "warn", "warn"], "{svg}");
    assert!(svg.contains("run 3 · commit 3333333"), "{svg}");
    // the Markdown summary draws no chart
    assert!(!read(&d, "o3/summary.md").contains("<svg"));
}

#[test]
fn report_rejudges_against_history_main_and_redraws_the_trend_up_to_its_run() {
    let d = three_runs();
    let paths = ["o2/results.json", "h.db", "r"].map(|p| d.join(p).to_str().unwrap().to_string());
    // `perfspec report o2/results.json --history h.db --out r --baseline BASE`
    let rejudge = |base: &str| {
        let [o2, db, out] = paths.each_ref().map(String::as_str);
        report(&d, &[o2, "--history", db, "--out", out, "--baseline", base])
    };
    // o2 against the runs of main before it: run 1 only, even with ~5
    let o = rejudge("history:main~5");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let res: serde_json::Value = serde_json::from_str(&read(&d, "r/results.json")).unwrap();
    assert!(
        res["baseline"]
            .as_str()
            .unwrap()
            .starts_with("history:main~5 in "),
        "{res}"
    );
    let slo = &res["specs"][0]["slos"][0];
    assert_eq!(slo["comparison"]["baseline_n"], 3, "{slo}");
    assert!(
        slo["message"].as_str().unwrap().contains("within noise"),
        "{slo}"
    );
    assert_eq!(slo["status"], "pass");
    let trends = trend_charts(&read(&d, "r/report.html"));
    assert_eq!(trends.len(), 2);
    let svg = &trends[0].1;
    assert_eq!(svg.matches(r#"class="trend-point"#).count(), 2, "{svg}");
    // this run's point has the verdict judged now; run 1 keeps its recorded one
    assert!(
        svg.contains(r#"class="trend-point current" data-status="pass""#),
        "{svg}"
    );
    assert!(!svg.contains(">3333333<"), "a later run is drawn: {svg}");

    // a branch without runs: a warning, and `on_missing_baseline` (warn) decides
    let o = rejudge("history:feature");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no runs of branch `feature` to compare with (it has runs of `main`)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn report_with_a_missing_or_foreign_history_says_so() {
    let d = three_runs();
    let path = |p: &str| d.join(p).to_str().unwrap().to_string();
    let refused = |args: &[&str], says: &str| {
        let (o2, out) = (path("o2/results.json"), path("r"));
        let o = report(&d, &[&[o2.as_str(), "--out", &out], args].concat());
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    };
    refused(&["--history", &path("none.db")], "none.db` does not exist");
    assert!(!d.join("none.db").exists(), "reading a history created it");
    // a text file is no history, and is left as it was
    refused(
        &["--history", &path("a.toml")],
        "is not a perfspec history: not a SQLite database",
    );
    assert_eq!(read(&d, "a.toml"), TESTKIT);
    // a history baseline needs the history
    refused(&["--baseline", "history:main"], "give `--history FILE.db`");
}

#[test]
fn trend_chart_renders_in_headless_chromium() {
    let Some(browser) = require_chromium() else {
        return;
    };
    let d = three_runs();
    let page = d.join("o3/report.html");
    let (dom, log) = headless(browser, d.0.path(), &page, &["--dump-dom".into()]);
    let doc = scraper::Html::parse_document(&dom);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let trend = doc
        .select(&sel("section.trend svg.chart"))
        .next()
        .unwrap_or_else(|| panic!("no trend chart in the DOM chromium built: {log}"));
    assert_eq!(trend.select(&sel("circle.trend-point")).count(), 3);
    let current: Vec<_> = trend.select(&sel("circle.trend-point.current")).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(trend.select(&sel("circle.trend-ring")).count(), 1);
    let tip: String = current[0].text().collect();
    assert!(
        tip.starts_with("this run · run 3 · commit 3333333"),
        "{tip}"
    );
    // and it is drawn: the verdict colour of the points (warn, #d4a72c) is on screen
    let png = d.join("shot.png");
    let (_, log) = headless(
        browser,
        d.0.path(),
        &page,
        &[
            "--window-size=1280,2600".into(),
            format!("--screenshot={}", png.display()),
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}")),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let warn = buf
        .chunks(channels)
        .filter(|p| {
            p[0].abs_diff(0xd4) < 24 && p[1].abs_diff(0xa7) < 24 && p[2].abs_diff(0x2c) < 24
        })
        .count();
    assert!(warn > 60, "the trend's points are not visible ({warn} px)");
}

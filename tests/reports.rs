//! Reports: summary.md and junit.xml snapshots for passing, warning, failing and erroring
//! specs; report.html without live markup from hostile names and bodies; report.html in
//! headless Chromium; `perfspec report` re-rendering (templates, baseline); GitHub
//! annotations.

use std::path::Path;
use std::process::{Command, Stdio};

use perfspec::engine::metrics::{ErrorSample, HistogramEntry, Labels, Measurements, labels};
use perfspec::engine::verdict::{Reason, SloOutcome, SloSeverity, Status};
use perfspec::report::results::{GitInfo, Host, Results, SpecResult, SpecStatus, Tool};
use perfspec::report::templates::Templates;
use perfspec::spec::catalog::Kind;
use perfspec::spec::units::Dimension;

use crate::cli::{Dir, bin, require_program};

// ---------------------------------------------------------------------------------------
// hand-made results

fn outcome(
    expr: &str,
    line: usize,
    status: Status,
    observed: Option<f64>,
    threshold: Option<f64>,
) -> SloOutcome {
    let dim = Dimension::Time;
    let reason = match (status, observed) {
        (_, None) => Reason::NoData,
        (Status::Pass, _) => Reason::Met,
        _ => Reason::Violated,
    };
    SloOutcome {
        expr: expr.to_string(),
        severity: SloSeverity::Fail,
        phase: None,
        line,
        status,
        reason,
        observed,
        threshold,
        baseline: None,
        delta_pct: None,
        dimension: dim,
        observed_text: observed.map(|v| dim.format(v)),
        threshold_text: threshold.map(|v| dim.format(v)),
        message: match (observed, threshold) {
            (Some(o), Some(t)) => format!(
                "{} = {}, threshold < {}",
                expr.split(" <").next().unwrap_or(expr),
                dim.format(o),
                dim.format(t)
            ),
            _ => format!("no data for {expr}"),
        },
        no_data: Default::default(),
        on_missing_baseline: Default::default(),
        repeats: Vec::new(),
        confidence: None,
        comparison: None,
    }
}

fn load_measurements() -> Measurements {
    let mut m = Measurements {
        elapsed_s: 10.0,
        ..Default::default()
    };
    for step in ["login", "cart"] {
        let l = labels(&[("journey", "checkout"), ("step", step)]);
        for i in 1..=500 {
            m.histogram("latency", l.clone(), 1e-6)
                .record(f64::from(i) * if step == "login" { 1e-4 } else { 3e-4 });
        }
        m.scalar("requests", l.clone(), 500.0);
        m.scalar("errors", l, if step == "cart" { 5.0 } else { 0.0 });
    }
    m.scalar("throughput", Labels::new(), 100.0);
    m.scalar("error_rate", Labels::new(), 0.005);
    let t = |f: fn(f64) -> f64| {
        (0..10)
            .map(|s| (f64::from(s), f(f64::from(s))))
            .collect::<Vec<_>>()
    };
    m.push_series(
        "latency",
        labels(&[("quantile", "p50")]),
        t(|s| 0.020 + s * 0.001),
    );
    m.push_series(
        "latency",
        labels(&[("quantile", "p95")]),
        t(|s| 0.060 + s * 0.004),
    );
    m.push_series(
        "throughput",
        labels(&[("kind", "completed")]),
        t(|s| 95.0 + s),
    );
    m.push_series("throughput", labels(&[("kind", "target")]), t(|_| 100.0));
    m.push_series(
        "errors",
        Labels::new(),
        t(|s| if s > 6.0 { 2.0 } else { 0.0 }),
    );
    m.error_sample("HTTP 503: upstream busy", labels(&[("step", "cart")]));
    m.notes.push("arrivals follow an open model".into());
    m
}

pub(crate) fn spec(
    name: &str,
    status: SpecStatus,
    slos: Vec<SloOutcome>,
    measurements: Option<Measurements>,
    error: Option<&str>,
) -> SpecResult {
    SpecResult {
        name: name.to_string(),
        kind: Kind::Load,
        backend: "goose".into(),
        description: Some("checkout journey at 100/s".into()),
        file: format!("specs/{name}.toml"),
        hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        resolved: serde_json::json!({"kind": "load", "name": name}),
        status,
        error: error.map(String::from),
        started_at: "2026-01-02T03:04:05Z".into(),
        duration_s: 10.5,
        timed_out: false,
        artifacts_dir: None,
        measurements,
        repeats: Vec::new(),
        slos,
    }
}

fn results(specs: Vec<SpecResult>, exit_code: i32) -> Results {
    Results {
        schema_version: 1,
        tool: Tool {
            name: "perfspec".into(),
            version: "0.0.0-test".into(),
        },
        started_at: "2026-01-02T03:04:05Z".into(),
        finished_at: "2026-01-02T03:04:20Z".into(),
        duration_s: 15.0,
        git: Some(GitInfo {
            commit: "fedcba9876543210fedcba9876543210fedcba98".into(),
            dirty: false,
        }),
        host: Host {
            hostname: "ci-host".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            memory_bytes: Some(8 << 30),
        },
        command: vec!["perfspec".into(), "run".into(), "specs/".into()],
        baseline: None,
        interrupted: false,
        exit_code,
        shard: None,
        specs,
    }
}

fn passing() -> Results {
    let slos = vec![
        outcome(
            "p95(latency) < 250ms",
            3,
            Status::Pass,
            Some(0.142),
            Some(0.25),
        ),
        outcome(
            "p50(latency{step=login}) < 100ms",
            4,
            Status::Pass,
            Some(0.025),
            Some(0.1),
        ),
    ];
    results(
        vec![spec(
            "checkout",
            SpecStatus::Pass,
            slos,
            Some(load_measurements()),
            None,
        )],
        0,
    )
}

fn warning() -> Results {
    let mut warn = outcome(
        "p99(latency) < 100ms",
        5,
        Status::Warn,
        Some(0.148),
        Some(0.1),
    );
    warn.severity = SloSeverity::Warn;
    let mut base = outcome(
        "p95(latency) <= baseline * 1.10",
        6,
        Status::Pass,
        Some(0.142),
        Some(0.1485),
    );
    base.baseline = Some(0.135);
    base.delta_pct = Some(5.185);
    let slos = vec![
        outcome(
            "p95(latency) < 250ms",
            3,
            Status::Pass,
            Some(0.142),
            Some(0.25),
        ),
        warn,
        base,
    ];
    let mut r = results(
        vec![spec(
            "checkout",
            SpecStatus::Warn,
            slos,
            Some(load_measurements()),
            None,
        )],
        0,
    );
    r.baseline = Some("main/results.json".into());
    r
}

fn failing() -> Results {
    let mut fail = outcome(
        "p95(latency) < 100ms",
        3,
        Status::Fail,
        Some(0.142),
        Some(0.1),
    );
    fail.baseline = Some(0.090);
    fail.delta_pct = Some(57.8);
    let slos = vec![
        outcome(
            "p50(latency) < 100ms",
            2,
            Status::Pass,
            Some(0.05),
            Some(0.1),
        ),
        fail,
        outcome(
            "p99(latency{journey=nope}) < 1s",
            4,
            Status::Fail,
            None,
            Some(1.0),
        ),
    ];
    let other = vec![outcome(
        "p95(latency) < 1s",
        2,
        Status::Pass,
        Some(0.142),
        Some(1.0),
    )];
    results(
        vec![
            spec(
                "browse",
                SpecStatus::Pass,
                other,
                Some(load_measurements()),
                None,
            ),
            spec(
                "checkout|pipe_*",
                SpecStatus::Fail,
                slos,
                Some(load_measurements()),
                None,
            ),
        ],
        1,
    )
}

fn erroring() -> Results {
    let mut not_run = outcome("p95(latency) < 250ms", 3, Status::Fail, None, None);
    not_run.reason = Reason::NotRun;
    not_run.message = "not run: target never became ready at http://127.0.0.1:9/health".into();
    results(
        vec![
            spec(
                "checkout",
                SpecStatus::Pass,
                vec![outcome(
                    "p95(latency) < 250ms",
                    3,
                    Status::Pass,
                    Some(0.1),
                    Some(0.25),
                )],
                Some(load_measurements()),
                None,
            ),
            spec(
                "search",
                SpecStatus::Error,
                vec![not_run],
                None,
                Some("target never became ready at http://127.0.0.1:9/health"),
            ),
        ],
        3,
    )
}

fn summary(r: &Results) -> String {
    perfspec::report::summary::render(r, &Templates::load(None).unwrap()).unwrap()
}

fn junit(r: &Results) -> String {
    redact_times(&perfspec::report::junit::render(r).unwrap())
}

fn redact_times(s: &str) -> String {
    regex::Regex::new(r#"time="[0-9.]+""#)
        .unwrap()
        .replace_all(s, r#"time="[time]""#)
        .into_owned()
}

#[test]
fn summary_snapshots() {
    insta::assert_snapshot!("summary_passing", summary(&passing()));
    insta::assert_snapshot!("summary_warning", summary(&warning()));
    insta::assert_snapshot!("summary_failing", summary(&failing()));
    insta::assert_snapshot!("summary_erroring", summary(&erroring()));
}

#[test]
fn junit_snapshots() {
    insta::assert_snapshot!("junit_passing", junit(&passing()));
    insta::assert_snapshot!("junit_warning", junit(&warning()));
    insta::assert_snapshot!("junit_failing", junit(&failing()));
    insta::assert_snapshot!("junit_erroring", junit(&erroring()));
}

fn cache_measurements() -> Measurements {
    let mut m = Measurements {
        elapsed_s: 5.0,
        ..Default::default()
    };
    for (cap, l1, l2, lru, opt) in [
        (500, 0.55, 0.7, 0.6, 0.75),
        (1000, 0.65, 0.8, 0.7, 0.83),
        (2000, 0.74, 0.86, 0.78, 0.9),
        (4000, 0.81, 0.9, 0.84, 0.94),
    ] {
        let c = cap.to_string();
        m.scalar("hit_ratio", labels(&[("tier", "l1"), ("capacity", &c)]), l1);
        m.scalar("hit_ratio", labels(&[("tier", "l2"), ("capacity", &c)]), l2);
        m.scalar("lru_hit_ratio", labels(&[("capacity", &c)]), lru);
        m.scalar("optimal_hit_ratio", labels(&[("capacity", &c)]), opt);
    }
    for op in ["get", "set"] {
        for i in 1..=200 {
            m.histogram("latency", labels(&[("op", op), ("tier", "l1")]), 1e-6)
                .record(f64::from(i) * 1e-6);
        }
    }
    m
}

fn scaling_measurements() -> Measurements {
    let mut m = Measurements {
        elapsed_s: 60.0,
        ..Default::default()
    };
    let usl = |n: f64| 100.0 * n / (1.0 + 0.05 * (n - 1.0) + 0.002 * n * (n - 1.0));
    for n in [1, 2, 3, 4, 6, 8] {
        let r = n.to_string();
        m.scalar(
            "throughput",
            labels(&[("replicas", &r)]),
            usl(f64::from(n)) * 1.02,
        );
        m.scalar(
            "speedup",
            labels(&[("replicas", &r)]),
            usl(f64::from(n)) / 100.0,
        );
    }
    m.push_series(
        "usl.fit",
        labels(&[("x", "replicas")]),
        (1..=16)
            .map(|n| (f64::from(n), usl(f64::from(n))))
            .collect(),
    );
    m.push_series(
        "usl.ideal",
        labels(&[("x", "replicas")]),
        (1..=16)
            .map(|n| (f64::from(n), 100.0 * f64::from(n)))
            .collect(),
    );
    m.scalar("usl.sigma", Labels::new(), 0.05);
    m
}

fn quantize_measurements() -> Measurements {
    let mut m = Measurements {
        elapsed_s: 20.0,
        ..Default::default()
    };
    for (scheme, size, acc) in [
        ("fp32", 1_200_000.0, 0.97),
        ("int8", 310_000.0, 0.965),
        ("int8-block32", 330_000.0, 0.968),
    ] {
        m.scalar("size", labels(&[("scheme", scheme)]), size);
        m.scalar("accuracy", labels(&[("scheme", scheme)]), acc);
        for (mode, ratio) in [("quantized", 1.15), ("dequantize_at_load", 1.0)] {
            m.scalar(
                "latency_ratio",
                labels(&[("scheme", scheme), ("mode", mode)]),
                ratio,
            );
        }
    }
    m
}

/// A report with one spec of every kind, with data.
pub(crate) fn every_kind() -> Results {
    let mut r = passing();
    for (kind, m) in [
        (Kind::Cache, cache_measurements()),
        (Kind::Scaling, scaling_measurements()),
        (Kind::Quantize, quantize_measurements()),
    ] {
        let mut s = spec(kind.as_str(), SpecStatus::Pass, vec![], Some(m), None);
        s.kind = kind;
        r.specs.push(s);
    }
    r
}

#[test]
fn every_kind_renders_with_and_without_data() {
    let t = Templates::load(None).unwrap();
    let r = every_kind();
    let html = perfspec::report::html::render(&r, &t).unwrap();
    for title in [
        "Latency percentiles over time",
        "Hit ratio per tier vs LRU and optimal bounds",
        "Hit ratio vs capacity",
        "Throughput vs replicas",
        "Model size per scheme",
        "Accuracy per scheme",
        "Latency vs fp32 per scheme and mode",
    ] {
        assert!(
            html.contains(&format!("aria-label=\"{title}\"")),
            "no chart `{title}`"
        );
    }
    if let Some(keep) = std::env::var_os("PERFSPEC_KEEP_SCREENSHOT") {
        std::fs::write(Path::new(&keep).join("every-kind.html"), &html).unwrap();
    }
    for kind in Kind::ALL {
        let mut r = passing();
        r.specs[0].kind = kind;
        r.specs[0].measurements = Some(Measurements::default());
        let html = perfspec::report::html::render(&r, &t).unwrap();
        assert!(html.contains("No data:"), "{kind:?}");
        assert!(!html.contains("<svg"), "{kind:?}");
    }
}

#[test]
fn annotations_are_escaped_and_capped() {
    let mut r = failing();
    let line = perfspec::report::github::annotations(&r);
    assert!(line[0].starts_with("::error file=specs/checkout|pipe_*.toml,line=3,title=perfspec fail%3A checkout|pipe_* — p95(latency) < 100ms::"), "{line:?}");
    let many: Vec<SloOutcome> = (0..60)
        .map(|i| {
            outcome(
                &format!("p95(latency) < {i}ms"),
                i + 1,
                Status::Fail,
                Some(0.5),
                Some(0.001),
            )
        })
        .collect();
    r.specs[1].slos = many;
    let lines = perfspec::report::github::annotations(&r);
    assert_eq!(lines.len(), perfspec::report::github::MAX_ANNOTATIONS + 1);
    assert!(
        lines.last().unwrap().contains("10 more annotation(s)"),
        "{lines:?}"
    );
}

// ---------------------------------------------------------------------------------------
// the real CLI

const TESTKIT: &str = r#"
kind = "load"
name = "NAME"
backend = "testkit"
slo = [
  "min(latency) >= 1ms",
  "max(latency) < 50ms",
  { expr = "max(latency) < 10ms", severity = "warn" },
]
[target]
url = "http://127.0.0.1:9"
[load]
stages = [{ hold = "10/s", for = "1s" }]
[[journey]]
name = "j"
steps = [{ request = "GET /" }]
"#;

fn testkit_run(d: &Dir, name: &str, out: &str) -> std::process::Output {
    testkit_run_spec(d, &TESTKIT.replace("NAME", &name.replace('"', "\\\"")), out)
}

/// Run `spec` (a testkit spec text) as `spec.toml` in `d` into `out`.
fn testkit_run_spec(d: &Dir, spec: &str, out: &str) -> std::process::Output {
    std::fs::write(d.join("spec.toml"), spec).unwrap();
    bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TESTKIT_SECONDS", "1.5")
        .current_dir(d.path())
        .args(["run", "spec.toml", "--quiet", "--out", out])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

/// Durations, timestamps, hosts, hashes and versions out of a summary.
fn redact(s: &str) -> String {
    let rules = [
        (r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[time]"),
        (r"(\| duration \| )[^|]*\|", "$1[duration] |"),
        (
            r"(· sha256 )[0-9a-f]{12} · [^|]*\|",
            "$1[hash] · [duration] |",
        ),
        (r"\| host \| .*\|", "| host | [host] |"),
        (r"\| commit \| .*\|", "| commit | [commit] |"),
        (r"\| tool \| .*\|", "| tool | [tool] |"),
    ];
    let mut out = s.to_string();
    for (re, with) in rules {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

#[test]
fn testkit_run_writes_every_report() {
    let d = Dir::new(&[]);
    let out = testkit_run(&d, "tk", "out");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["results.json", "report.html", "summary.md", "junit.xml"] {
        assert!(d.join("out").join(f).exists(), "{f}");
    }
    insta::assert_snapshot!(
        "summary_testkit_run",
        redact(&read(d.join("out/summary.md")))
    );
    insta::assert_snapshot!(
        "junit_testkit_run",
        redact_times(&read(d.join("out/junit.xml")))
    );
}

#[test]
fn run_takes_template_overrides() {
    let d = Dir::new(&[(
        "tpl/summary.md.j2",
        "{{ verdict.word }}: {% for r in problems %}{{ r.expr|md_code }} {% endfor %}\n",
    )]);
    std::fs::write(d.join("spec.toml"), TESTKIT.replace("NAME", "tk")).unwrap();
    let out = bin()
        .env("PERFSPEC_TESTKIT", "1")
        .current_dir(d.path())
        .args([
            "run",
            "spec.toml",
            "--quiet",
            "--out",
            "out",
            "--templates",
            "tpl",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read(d.join("out/summary.md")),
        "fail: `max(latency) < 50ms` `max(latency) < 10ms` "
    );
    assert!(read(d.join("out/report.html")).contains("<svg"));
}

#[test]
fn report_rerenders_with_template_overrides_and_baseline() {
    let d = Dir::new(&[
        (
            "tpl/summary.md.j2",
            "CUSTOM {{ verdict.word }} {{ slos|length }}\n",
        ),
        (
            "tpl/kinds/load.html.j2",
            "<p class=\"branded\">{{ spec.name }} by ACME</p>\n",
        ),
        ("bad/summary.md.j2", "{{ verdict.wrod }}\n"),
    ]);
    assert_eq!(testkit_run(&d, "tk", "base").status.code(), Some(1));
    assert_eq!(testkit_run(&d, "tk", "next").status.code(), Some(1));
    let report = |args: &[&str]| {
        bin()
            .current_dir(d.path())
            .arg("report")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // plain re-render: the same summary as the run wrote
    let out = report(&["next/results.json", "--out", "again"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read(d.join("again/summary.md")),
        read(d.join("next/summary.md"))
    );
    assert_eq!(
        read(d.join("again/junit.xml")),
        read(d.join("next/junit.xml"))
    );
    assert!(read(d.join("again/report.html")).contains("max(latency) &lt; 50ms"));
    // overrides
    let out = report(&["next/results.json", "--out", "custom", "--templates", "tpl"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(d.join("custom/summary.md")), "CUSTOM fail 4\n");
    let html = read(d.join("custom/report.html"));
    assert!(
        html.contains("<p class=\"branded\">tk by ACME</p>"),
        "{html}"
    );
    // a template typo is an error naming the template
    let out = report(&["next/results.json", "--out", "broken", "--templates", "bad"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("summary.md.j2"), "{stderr}");
    // baseline deltas in every format
    let out = report(&[
        "next/results.json",
        "--out",
        "delta",
        "--baseline",
        "base/results.json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = read(d.join("delta/summary.md"));
    assert!(md.contains("+0.0%"), "{md}");
    assert!(md.contains("base/results.json"), "{md}");
    assert!(read(d.join("delta/junit.xml")).contains("baseline: 100ms (Δ +0.0%)"));
    assert!(read(d.join("delta/report.html")).contains("+0.0%"));
    let saved: serde_json::Value =
        serde_json::from_str(&read(d.join("delta/results.json"))).unwrap();
    assert_eq!(saved["baseline"], "base/results.json");
}

/// `report --baseline` judges `baseline` SLOs again, with their stored policies; the spec
/// status and the exit code follow.
#[test]
fn report_with_a_baseline_judges_baseline_slos_again() {
    let spec = |name: &str| {
        TESTKIT.replace("NAME", name).replace(
            "slo = [",
            "slo = [\n  \"max(latency) <= baseline * 1.1\",\n  { expr = \"p50(latency) <= baseline\", on_missing_baseline = \"fail\", severity = \"warn\" },",
        )
    };
    let d = Dir::new(&[]);
    let run = |name: &str, out: &str| testkit_run_spec(&d, &spec(name), out);
    // max(latency) is 100ms: `max(latency) < 50ms` fails in every run
    assert_eq!(run("tk", "base").status.code(), Some(1));
    assert_eq!(run("tk", "next").status.code(), Some(1));
    assert_eq!(run("other", "other").status.code(), Some(1));
    let slo = |dir: &str, expr: &str| -> serde_json::Value {
        let r: serde_json::Value =
            serde_json::from_str(&read(d.join(dir).join("results.json"))).unwrap();
        r["specs"][0]["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["expr"] == expr)
            .unwrap()
            .clone()
    };
    let first = slo("next", "max(latency) <= baseline * 1.1");
    assert_eq!(first["reason"], "no-baseline", "{first}");
    assert_eq!(first["status"], "warn", "{first}");
    let report = |baseline: &str, out: &str| {
        bin()
            .current_dir(d.path())
            .args([
                "report",
                "next/results.json",
                "--out",
                out,
                "--baseline",
                baseline,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert_eq!(report("base/results.json", "same").status.code(), Some(1));
    let again = slo("same", "max(latency) <= baseline * 1.1");
    assert_eq!(again["status"], "pass", "{again}");
    assert_eq!(again["reason"], "met", "{again}");
    assert_eq!(
        again["threshold"].as_f64().map(|t| (t * 1e4).round()),
        Some(1100.0)
    );
    let p50 = slo("same", "p50(latency) <= baseline");
    assert_eq!(p50["status"], "pass", "{p50}");
    // a baseline without this spec: each SLO's own missing-baseline policy decides
    assert_eq!(report("other/results.json", "none").status.code(), Some(1));
    let warned = slo("none", "max(latency) <= baseline * 1.1");
    assert_eq!(
        (warned["status"].as_str(), warned["reason"].as_str()),
        (Some("warn"), Some("no-baseline"))
    );
    let strict = slo("none", "p50(latency) <= baseline");
    assert_eq!(strict["on_missing_baseline"], "fail", "{strict}");
    assert_eq!(strict["reason"], "no-baseline", "{strict}");
    assert_eq!(
        strict["status"], "warn",
        "a warn-severity SLO never fails: {strict}"
    );
}

#[test]
fn github_actions_get_annotations_and_a_step_summary() {
    let d = Dir::new(&[]);
    assert_eq!(testkit_run(&d, "tk", "out").status.code(), Some(1));
    let out = bin()
        .current_dir(d.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", d.join("step.md"))
        .args(["report", "out/results.json", "--out", "out"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "::error file=spec.toml,line=7,title=perfspec fail%3A tk — max(latency) < 50ms::"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("::warning file=spec.toml,line=8,"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("min(latency)"),
        "passing SLOs are not annotated: {stdout}"
    );
    assert_eq!(read(d.join("step.md")), read(d.join("out/summary.md")));
}

// ---------------------------------------------------------------------------------------
// report.html: no live markup, and what a browser shows

const XSS_NAME: &str = "<script>alert(1)</script>";
const XSS_BODY: &str = "\"><img src=x onerror=alert(1)>";

/// A testkit run named `<script>…`, then an error sample and hostile labels added to its
/// results, re-rendered with `perfspec report`.
fn hostile_report(d: &Dir) -> String {
    let out = testkit_run(d, XSS_NAME, "out");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = d.join("out/results.json");
    let mut r = Results::read(&path).unwrap();
    let m = r.specs[0].measurements.as_mut().unwrap();
    m.error_samples.push(ErrorSample {
        message: XSS_BODY.into(),
        labels: labels(&[("step", XSS_BODY)]),
        count: 3,
    });
    m.notes.push(XSS_BODY.into());
    let mut h = HistogramEntry::micros("latency", labels(&[("journey", XSS_BODY)]));
    h.record(0.01);
    m.histograms.push(h);
    m.push_series(
        "latency",
        labels(&[("journey", XSS_NAME)]),
        vec![(0.0, 0.01), (1.0, 0.02)],
    );
    r.specs[0].description = Some(XSS_NAME.into());
    r.specs[0].error = Some(XSS_BODY.into());
    r.write(&path).unwrap();
    let out = bin()
        .current_dir(d.path())
        .args(["report", "out/results.json", "--out", "out"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read(d.join("out/report.html"))
}

#[test]
fn hostile_names_and_bodies_produce_no_live_markup() {
    let d = Dir::new(&[]);
    let html = hostile_report(&d);
    let doc = scraper::Html::parse_document(&html);
    let all = scraper::Selector::parse("*").unwrap();
    let mut elements = 0;
    for el in doc.select(&all) {
        elements += 1;
        let name = el.value().name();
        assert!(
            !matches!(
                name,
                "script" | "img" | "iframe" | "object" | "embed" | "link"
            ),
            "live <{name}> element"
        );
        for (attr, value) in el.value().attrs() {
            assert!(
                !attr.to_ascii_lowercase().starts_with("on"),
                "event handler attribute {attr}={value} on <{name}>"
            );
            assert!(
                !value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("javascript:"),
                "{attr}={value}"
            );
        }
    }
    assert!(elements > 50);
    // the text survives, as text
    let text: String = doc.root_element().text().collect();
    assert!(text.contains(XSS_NAME));
    assert!(text.contains(XSS_BODY));
    // self-contained: nothing loaded from elsewhere
    for el in doc.select(&all) {
        for attr in ["src", "href", "xlink:href", "srcset", "action"] {
            if let Some(v) = el.value().attr(attr) {
                assert!(v.starts_with('#'), "external resource {attr}={v}");
            }
        }
    }
    for bad in ["@import", "url(", "<link", "@font-face"] {
        assert!(!html.contains(bad), "{bad}");
    }
}

/// Run headless `browser` on the file `page` with `extra` arguments (`--screenshot=…`,
/// `--dump-dom`), at most 120 s, its profile and output in `dir`: `(stdout, stderr)`.
pub(crate) fn headless(
    browser: &str,
    dir: &Path,
    page: &Path,
    extra: &[String],
) -> (String, String) {
    let (out, log) = (dir.join("chromium.out"), dir.join("chromium.log"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s: {}", read(&log));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (read(&out), read(&log))
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// The browser, or `None` (the test is skipped) when none is installed outside CI.
pub(crate) fn require_chromium() -> Option<&'static str> {
    let browser = chromium();
    require_program(
        "chromium",
        browser.is_some(),
        "apt-get install -y chromium; .ci/run installs it",
    )
    .then_some(browser)
    .flatten()
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(browser) = require_chromium() else {
        return;
    };
    let d = Dir::new(&[]);
    let r = failing();
    let t = Templates::load(None).unwrap();
    let html = perfspec::report::html::render(&r, &t).unwrap();
    std::fs::write(d.join("report.html"), &html).unwrap();
    let png = d.join("shot.png");
    let (_, stderr) = headless(
        browser,
        d.0.path(),
        &d.join("report.html"),
        &[
            "--window-size=1280,2000".into(),
            format!("--screenshot={}", png.display()),
        ],
    );
    assert!(png.exists(), "no screenshot: {stderr}");
    if let Some(keep) = std::env::var_os("PERFSPEC_KEEP_SCREENSHOT") {
        std::fs::copy(&png, Path::new(&keep).join("shot.png")).unwrap();
        std::fs::copy(d.join("report.html"), Path::new(&keep).join("report.html")).unwrap();
    }
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    assert!(w >= 1000 && h >= 1000, "{w}x{h}");
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * channels;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    let near = |(r, g, b): (u8, u8, u8), (r2, g2, b2): (u8, u8, u8)| {
        r.abs_diff(r2) < 24 && g.abs_diff(g2) < 24 && b.abs_diff(b2) < 24
    };
    // the first chart series colour (#1f77b4) and the failing-row colour (#cf222e / dark #f85149)
    let mut series = 0usize;
    let mut fail = 0usize;
    let mut first_series_row = None;
    for y in 0..h {
        for x in 0..w {
            let p = px(x, y);
            if near(p, (0x1f, 0x77, 0xb4)) {
                series += 1;
                first_series_row.get_or_insert(y);
            }
            if near(p, (0xcf, 0x22, 0x2e)) || near(p, (0xf8, 0x51, 0x49)) {
                fail += 1;
            }
        }
    }
    assert!(
        fail > 200,
        "the SLO table's failing status pills are not visible ({fail} px)"
    );
    assert!(
        series > 500,
        "no chart drawn in the screenshot ({series} px of the first series colour)"
    );
    // the chart region is not blank: the rows below the first series pixel vary in colour
    let top = first_series_row.unwrap_or(0);
    let distinct: std::collections::BTreeSet<(u8, u8, u8)> = (top..(top + 300).min(h))
        .flat_map(|y| (0..w).step_by(4).map(move |x| (x, y)))
        .map(|(x, y)| px(x, y))
        .collect();
    assert!(
        distinct.len() > 20,
        "chart region looks blank ({} colours)",
        distinct.len()
    );
}

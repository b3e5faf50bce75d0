//! The invalid-spec corpus: every file in `tests/fixtures/invalid/` (and a few inputs
//! generated here: 20 000-deep nesting, invalid UTF-8) is checked by the real binary.
//!
//! For each file, `validate --format json` must exit 2 with located diagnostics, quickly and
//! without a panic; its diagnostics are snapshotted as one line `LINE:COL code: message` each,
//! with the text the span covers and the label and hint. A hand-checked table ([`CASES`])
//! pins the key diagnostic of each file independently of the snapshots, and most problems
//! come as `.toml` / `.yaml` pairs that must report the same codes (YAML diagnostics are as
//! precise as TOML ones). A few files also pin miette's human rendering.
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test --test integration corpus`, then
//! read every changed `.snap` file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{Dir, bin, root};

/// No validation of one file may take longer than this (a debug build on a busy 2-core machine).
const MAX_RUN: Duration = Duration::from_secs(10);

/// The key diagnostic of every fixture: `(file, "LINE:COL", code)`. Each must occur among
/// the file's diagnostics; each fixture must have a row. Checked by hand against the file.
const CASES: &[(&str, &str, &str)] = &[
    // repeats and noise-aware comparisons
    ("repeat-out-of-range.toml", "4:10", "spec::range"),
    ("repeat-out-of-range.yaml", "4:9", "spec::range"),
    ("slo-confidence-out-of-range.toml", "5:65", "spec::range"),
    ("slo-confidence-out-of-range.yaml", "6:60", "spec::range"),
    // syntax and structure
    ("syntax-error.toml", "3:6", "spec::syntax"),
    ("syntax-error.yaml", "5:7", "spec::syntax"),
    ("syntax-unclosed-string.toml", "3:20", "spec::syntax"),
    ("syntax-unclosed-string.yaml", "3:7", "spec::syntax"),
    ("empty.toml", "1:1", "spec::empty"),
    ("empty.yaml", "1:1", "spec::empty"),
    ("comments-only.toml", "1:1", "spec::empty"),
    ("comments-only.yaml", "1:1", "spec::empty"),
    ("root-not-table.yaml", "2:1", "spec::not-a-table"),
    ("root-scalar.yaml", "2:1", "spec::not-a-table"),
    ("root-array-of-tables.toml", "2:1", "spec::missing-key"),
    ("missing-kind.toml", "2:1", "spec::missing-key"),
    ("missing-kind.yaml", "2:1", "spec::missing-key"),
    ("unknown-kind.toml", "2:8", "spec::enum"),
    ("unknown-kind.yaml", "2:7", "spec::enum"),
    ("kind-not-string.toml", "2:8", "spec::type"),
    ("kind-not-string.yaml", "2:7", "spec::type"),
    ("duplicate-key.toml", "7:1", "spec::duplicate-key"),
    ("yaml-duplicate-key.yaml", "7:3", "spec::duplicate-key"),
    ("yaml-tab-indentation.yaml", "5:1", "spec::syntax"),
    ("yaml-alias-bomb.yaml", "8:45", "spec::too-large"),
    ("yaml-unknown-alias.yaml", "4:11", "spec::alias"),
    (
        "yaml-multiple-documents.yaml",
        "4:1",
        "spec::multiple-documents",
    ),
    // missing and unknown keys
    ("missing-required-load.toml", "2:1", "spec::missing-key"),
    ("missing-required-load.yaml", "2:1", "spec::missing-key"),
    ("missing-required-cache.toml", "6:6", "spec::missing-key"),
    ("missing-required-cache.yaml", "5:7", "spec::missing-key"),
    ("missing-required-quantize.toml", "8:1", "spec::missing-key"),
    ("missing-required-quantize.yaml", "7:5", "spec::missing-key"),
    ("unknown-key.toml", "9:26", "spec::unknown-key"),
    ("unknown-key.yaml", "8:24", "spec::unknown-key"),
    (
        "unknown-key-in-wrong-table.toml",
        "15:1",
        "spec::unknown-key",
    ),
    // types and units
    ("wrong-type.toml", "8:37", "spec::type"),
    ("wrong-type.yaml", "8:34", "spec::type"),
    ("bare-number-duration.toml", "8:49", "spec::unit"),
    ("bare-number-duration.yaml", "8:45", "spec::unit"),
    ("bad-unit.toml", "8:49", "spec::unit"),
    ("bad-unit.yaml", "8:45", "spec::unit"),
    ("negative-capacity.toml", "8:37", "spec::range"),
    ("negative-capacity.yaml", "8:34", "spec::range"),
    ("capacity-zero.toml", "8:37", "spec::range"),
    ("capacity-zero.yaml", "8:34", "spec::range"),
    ("integer-overflow.toml", "8:37", "spec::range"),
    ("integer-overflow.yaml", "8:34", "spec::range"),
    // cache
    ("mix-sum.toml", "13:16", "spec::mix"),
    ("mix-sum.yaml", "12:16", "spec::mix"),
    ("zipf-without-theta.toml", "12:16", "spec::distribution"),
    ("zipf-without-theta.yaml", "11:17", "spec::distribution"),
    ("unknown-distribution.toml", "12:18", "spec::distribution"),
    ("unknown-distribution.yaml", "11:17", "spec::distribution"),
    ("restart-missing-instance.toml", "18:11", "spec::range"),
    ("restart-missing-instance.yaml", "15:25", "spec::range"),
    // quantize
    ("block-not-dividing.toml", "21:9", "spec::scheme"),
    ("block-not-dividing.yaml", "17:12", "spec::scheme"),
    ("int4-on-ndarray.toml", "20:9", "backend::capability"),
    ("int4-on-ndarray.yaml", "16:12", "backend::capability"),
    ("cnn-block-not-fitting.toml", "19:9", "spec::scheme"),
    ("cnn-block-on-ndarray.yaml", "14:46", "backend::capability"),
    ("cnn-head-mismatch.toml", "11:10", "spec::model"),
    ("cnn-head-mismatch.yaml", "10:11", "spec::model"),
    ("ternary-on-flex.toml", "15:9", "backend::capability"),
    ("quantize-settings.toml", "10:10", "spec::range"),
    ("quantize-qat.toml", "12:18", "spec::range"),
    ("quantize-tensor-names.toml", "8:1", "spec::model"),
    ("quantize-dataset-criterion.toml", "7:1", "spec::dataset"),
    ("fp8-on-flex.toml", "20:9", "backend::capability"),
    ("fp8-on-flex.yaml", "16:12", "backend::capability"),
    ("unknown-backend.toml", "4:11", "spec::backend"),
    ("unknown-backend.yaml", "4:10", "spec::backend"),
    ("duplicate-scheme.toml", "19:8", "spec::scheme"),
    ("duplicate-scheme.yaml", "15:11", "spec::scheme"),
    ("unknown-dtype.toml", "20:9", "spec::enum"),
    ("unknown-dtype.yaml", "16:12", "spec::enum"),
    // scaling
    ("fault-missing-step.toml", "17:8", "spec::fault"),
    ("fault-missing-step.yaml", "14:11", "spec::fault"),
    ("fit-only-with-service.toml", "5:16", "spec::scaling"),
    ("fit-only-with-service.yaml", "6:15", "spec::scaling"),
    ("sweep-duplicates.toml", "10:12", "spec::sweep"),
    ("sweep-duplicates.yaml", "9:13", "spec::sweep"),
    ("scaling-latency-slo.toml", "14:31", "slo::check"),
    ("scaling-latency-slo.yaml", "12:31", "slo::check"),
    // load
    ("open-stage-with-users.toml", "10:23", "spec::stage"),
    ("open-stage-with-users.yaml", "10:18", "spec::stage"),
    ("closed-stage-with-rate.toml", "11:20", "spec::stage"),
    ("closed-stage-with-rate.yaml", "11:15", "spec::stage"),
    ("max-in-flight-zero.toml", "11:17", "spec::range"),
    ("max-in-flight-zero.yaml", "11:18", "spec::range"),
    ("stage-without-shape.toml", "10:11", "spec::stage"),
    ("stage-without-shape.yaml", "10:7", "spec::stage"),
    ("bad-http-method.toml", "14:22", "spec::request"),
    ("bad-http-method.yaml", "14:18", "spec::request"),
    ("two-bodies.toml", "14:22", "spec::body"),
    ("two-bodies.yaml", "14:18", "spec::body"),
    ("unknown-capture-source.toml", "14:57", "spec::capture"),
    ("unknown-capture-source.yaml", "15:27", "spec::capture"),
    ("target-url-and-embedded.toml", "7:7", "spec::target"),
    ("target-url-and-embedded.yaml", "7:8", "spec::target"),
    ("env-unset.toml", "7:15", "spec::env"),
    ("env-unset.yaml", "7:16", "spec::env"),
    ("interpolation-bogus.toml", "14:75", "spec::env"),
    ("interpolation-bogus.yaml", "15:43", "spec::env"),
    ("interpolation-unterminated.toml", "14:75", "spec::env"),
    ("interpolation-unterminated.yaml", "15:43", "spec::env"),
    // SLO expressions
    ("slo-missing-operator.toml", "4:22", "slo::syntax"),
    ("slo-missing-operator.yaml", "5:18", "slo::syntax"),
    ("slo-reversed-operator.toml", "4:22", "slo::syntax"),
    ("slo-reversed-operator.yaml", "5:18", "slo::syntax"),
    ("slo-unbalanced-parens.toml", "4:12", "slo::syntax"),
    ("slo-unbalanced-parens.yaml", "5:8", "slo::syntax"),
    ("slo-unknown-aggregation.toml", "4:9", "slo::syntax"),
    ("slo-unknown-aggregation.yaml", "5:5", "slo::syntax"),
    ("slo-percentile-out-of-range.toml", "4:9", "slo::syntax"),
    ("slo-percentile-out-of-range.yaml", "5:5", "slo::syntax"),
    ("slo-unknown-metric.toml", "4:13", "slo::check"),
    ("slo-unknown-metric.yaml", "5:9", "slo::check"),
    ("slo-label-not-allowed.toml", "4:21", "slo::check"),
    ("slo-label-not-allowed.yaml", "5:17", "slo::check"),
    ("slo-latency-without-aggregation.toml", "4:9", "slo::check"),
    ("slo-latency-without-aggregation.yaml", "5:5", "slo::check"),
    ("slo-unit-mismatch.toml", "4:24", "slo::check"),
    ("slo-unit-mismatch.yaml", "5:20", "slo::check"),
    ("slo-bare-number-for-time.toml", "4:24", "slo::check"),
    ("slo-bare-number-for-time.yaml", "5:20", "slo::check"),
    ("slo-table-without-expr.toml", "4:8", "spec::missing-key"),
    ("slo-table-without-expr.yaml", "5:5", "spec::missing-key"),
    ("slo-bad-severity.toml", "4:52", "spec::enum"),
    ("slo-bad-severity.yaml", "6:15", "spec::enum"),
    ("slo-not-a-string.toml", "4:8", "spec::type"),
    ("slo-not-a-string.yaml", "5:5", "spec::type"),
    ("slo-multiline-string.toml", "5:16", "slo::check"),
    ("slo-block-scalar.yaml", "5:5", "slo::check"),
    ("unicode-before-error.toml", "4:51", "slo::check"),
    ("unicode-before-error.yaml", "5:46", "slo::check"),
    // silent mistakes of a newcomer: names that match nothing, k6 habits
    ("csv-column-typo.toml", "17:22", "load::journey"),
    ("csv-column-typo.yaml", "17:18", "load::journey"),
    ("slo-unknown-step.toml", "4:26", "slo::unknown-name"),
    ("slo-unknown-step.yaml", "5:22", "slo::unknown-name"),
    ("slo-unknown-journey.toml", "4:29", "slo::unknown-name"),
    ("slo-unknown-journey.yaml", "5:25", "slo::unknown-name"),
    ("slo-unknown-phase.toml", "4:49", "slo::unknown-name"),
    ("slo-unknown-phase.yaml", "5:42", "slo::unknown-name"),
    ("slo-bare-ratio-one.toml", "4:22", "slo::check"),
    ("slo-bare-ratio-one.yaml", "5:18", "slo::check"),
    ("slo-k6-vocabulary.toml", "4:9", "slo::syntax"),
    ("slo-k6-vocabulary.yaml", "5:5", "slo::syntax"),
    ("k6-stages.toml", "10:11", "spec::stage"),
    ("k6-stages.yaml", "11:7", "spec::stage"),
    ("yaml-sequence-on-key-line.yaml", "4:6", "spec::syntax"),
    ("yaml-key-without-colon.yaml", "5:11", "spec::syntax"),
    // several problems in one file
    ("several-problems.toml", "15:1", "spec::unknown-key"),
    ("several-problems.yaml", "16:3", "spec::unknown-key"),
    ("several-semantic-problems.toml", "13:16", "spec::mix"),
    ("several-semantic-problems.yaml", "13:16", "spec::mix"),
    ("cache-every-problem-at-once.toml", "7:37", "spec::range"),
    ("cache-every-problem-at-once.yaml", "7:34", "spec::range"),
    // values that cannot be meant
    ("absurd-rate-and-duration.toml", "10:20", "spec::range"),
    ("absurd-rate-and-duration.yaml", "10:15", "spec::range"),
    ("planned-requests-overflow.toml", "11:57", "spec::range"),
    ("absurd-users-and-think-time.yaml", "11:18", "spec::range"),
    ("absurd-stress-until.toml", "11:67", "spec::range"),
    ("absurd-cache-ops.toml", "10:7", "spec::range"),
    ("absurd-cache-ops.yaml", "8:8", "spec::range"),
];

/// Files whose human rendering (miette, no colour) is pinned as well.
const RENDERED: &[&str] = &[
    "syntax-error.toml",
    "yaml-tab-indentation.yaml",
    "unknown-key.toml",
    "unknown-key.yaml",
    "bare-number-duration.yaml",
    "slo-unit-mismatch.toml",
    "slo-unit-mismatch.yaml",
    "int4-on-ndarray.yaml",
    "several-semantic-problems.yaml",
    "unicode-before-error.toml",
];

fn fixtures_dir() -> PathBuf {
    root().join("tests/fixtures/invalid")
}

/// File names of the committed fixtures, sorted.
fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/invalid exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

struct Validated {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Run `perfspec validate [--format json] FILE` in `dir`, so that paths in the output are short.
fn validate(dir: &Path, file: &str, json: bool) -> Validated {
    let mut cmd = bin();
    cmd.env_remove("PERFSPEC_TESTKIT")
        .env_remove("PERFSPEC_CORPUS_UNSET_9F3")
        .current_dir(dir)
        .arg("validate");
    if json {
        cmd.args(["--format", "json"]);
    }
    cmd.arg(file).stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output().expect("perfspec runs");
    Validated {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// `validate --format json` on one file: exit 2, no panic, in time, every diagnostic located
/// in this file. Returns the parsed report.
fn check_rejected(dir: &Path, file: &str) -> serde_json::Value {
    let v = validate(dir, file, true);
    assert_ne!(
        v.code,
        Some(101),
        "{file}: perfspec panicked:\n{}",
        v.stderr
    );
    assert_eq!(
        v.code,
        Some(2),
        "{file}: expected exit 2\nstdout: {}\nstderr: {}",
        v.stdout,
        v.stderr
    );
    assert!(
        v.elapsed < MAX_RUN,
        "{file}: validation took {:?}",
        v.elapsed
    );
    let report: serde_json::Value = serde_json::from_str(&v.stdout)
        .unwrap_or_else(|e| panic!("{file}: stdout is not JSON ({e}):\n{}", v.stdout));
    assert_eq!(report["valid"], false, "{file}");
    let diags = report["diagnostics"]
        .as_array()
        .expect("a diagnostics array");
    assert!(!diags.is_empty(), "{file}: rejected without a diagnostic");
    assert!(
        diags.iter().any(|d| d["severity"] == "error"),
        "{file}: no error among {diags:?}"
    );
    for d in diags {
        // usage-level problems (`usage::…`) are the only ones allowed to lack a location
        if d["code"].as_str().is_some_and(|c| c.starts_with("usage::")) {
            continue;
        }
        assert_eq!(d["file"], file, "{file}: diagnostic in another file: {d}");
        assert!(
            d["line"].as_u64().is_some_and(|l| l >= 1),
            "{file}: diagnostic without a line: {d}"
        );
        assert!(
            d["column"].as_u64().is_some_and(|c| c >= 1),
            "{file}: diagnostic without a column: {d}"
        );
        assert!(
            d["span"]["start"].is_u64() && d["span"]["end"].is_u64(),
            "{file}: diagnostic without a span: {d}"
        );
    }
    report
}

/// The stable text that is snapshotted: per diagnostic `LINE:COL code: message`, the text its
/// span covers (first line, shortened), its label and its hint.
fn compact(source: &[u8], report: &serde_json::Value) -> String {
    let mut out = String::new();
    for d in report["diagnostics"].as_array().into_iter().flatten() {
        let at = match (d["line"].as_u64(), d["column"].as_u64()) {
            (Some(l), Some(c)) => format!("{l}:{c}"),
            _ => "-".to_string(),
        };
        let severity = if d["severity"] == "warning" {
            "warning "
        } else {
            ""
        };
        let (code, message) = (
            d["code"].as_str().unwrap_or("?"),
            d["message"].as_str().unwrap_or("?"),
        );
        writeln!(out, "{at} {severity}{code}: {message}").unwrap();
        if let (Some(start), Some(end)) = (d["span"]["start"].as_u64(), d["span"]["end"].as_u64()) {
            let (start, end) = (start as usize, end as usize);
            writeln!(out, "  at: {}", covered(source, start, end)).unwrap();
        }
        for key in ["label", "hint"] {
            if let Some(text) = d[key].as_str() {
                writeln!(out, "  {key}: {}", redact_catalog(text)).unwrap();
            }
        }
    }
    out
}

/// Hints that list a kind's metric catalog keep their start only: backends extend the
/// catalog, and the did-you-mean before the list is what these snapshots pin.
fn redact_catalog(text: &str) -> String {
    match text
        .find("metrics of a ")
        .and_then(|i| text[i..].find(": ").map(|j| i + j))
    {
        Some(end) => format!("{}: [catalog]", &text[..end]),
        None => text.to_string(),
    }
}

/// What a span covers, as a reader would point at it: `` `5%` ``, or for an empty span the
/// place it marks.
fn covered(source: &[u8], start: usize, end: usize) -> String {
    // spans index the text perfspec read: invalid UTF-8 replaced by U+FFFD
    let text = String::from_utf8_lossy(source);
    let source = text.as_bytes();
    let start = start.min(source.len());
    let end = end.clamp(start, source.len());
    let shorten = |s: &str| -> String {
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(60).collect::<String>())
        } else {
            s.to_string()
        }
    };
    if start == end {
        let rest = String::from_utf8_lossy(&source[start..]);
        let line_rest = rest.split('\n').next().unwrap_or("");
        return if line_rest.is_empty() {
            "‸ (end of line)".to_string()
        } else {
            format!("‸ before `{}`", shorten(line_rest))
        };
    }
    let text = String::from_utf8_lossy(&source[start..end]);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let more = lines.count();
    if more > 0 {
        format!("`{}` (+{more} more lines)", shorten(first))
    } else {
        format!("`{}`", shorten(first))
    }
}

fn snapshot_name(prefix: &str, file: &str) -> String {
    format!("{prefix}@{file}")
}

#[test]
fn every_invalid_fixture_is_rejected_with_located_snapshotted_diagnostics() {
    let dir = fixtures_dir();
    let files = fixtures();
    let toml = files.iter().filter(|f| f.ends_with(".toml")).count();
    let yaml = files.len() - toml;
    assert!(
        files.len() >= 48 && toml >= 20 && yaml >= 20,
        "{toml} toml + {yaml} yaml fixtures"
    );

    let listed: BTreeSet<&str> = CASES.iter().map(|(f, _, _)| *f).collect();
    let on_disk: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(listed.len(), CASES.len(), "a file is listed twice in CASES");
    let unlisted: Vec<_> = on_disk.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "fixtures without a CASES row: {unlisted:?}; rows without a fixture: {missing:?}"
    );

    let mut codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut misplaced = Vec::new();
    for (file, at, code) in CASES {
        let report = check_rejected(&dir, file);
        let diags = report["diagnostics"].as_array().unwrap();
        let found = diags
            .iter()
            .any(|d| d["code"] == *code && format!("{}:{}", d["line"], d["column"]) == *at);
        let source = std::fs::read(dir.join(file)).unwrap();
        let text = compact(&source, &report);
        if !found {
            misplaced.push(format!("{file}: expected {code} at {at}, got:\n{text}"));
        }
        codes.insert(
            file.to_string(),
            diags
                .iter()
                .map(|d| d["code"].as_str().unwrap().to_string())
                .collect(),
        );
        insta::assert_snapshot!(snapshot_name("json", file), text);
    }
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n"));

    // the same problem in both formats reports the same codes
    for (file, toml_codes) in codes.iter().filter(|(f, _)| f.ends_with(".toml")) {
        let stem = file.trim_end_matches(".toml");
        let Some(yaml_codes) = codes.get(&format!("{stem}.yaml")) else {
            continue;
        };
        assert_eq!(
            toml_codes, yaml_codes,
            "{stem}: the TOML and YAML files report different codes"
        );
    }
}

#[test]
fn human_rendering_points_at_the_token() {
    let dir = fixtures_dir();
    for file in RENDERED {
        let v = validate(&dir, file, false);
        assert_eq!(v.code, Some(2), "{file}: {}", v.stderr);
        insta::assert_snapshot!(snapshot_name("human", file), v.stderr);
    }
}

/// `depth` levels of nesting in each shape the front ends handle differently.
fn deep_inputs(depth: usize) -> Vec<(String, Vec<u8>)> {
    let head_toml = "kind = \"load\"\nname = \"deep\"\n";
    let head_yaml = "kind: load\nname: deep\n";
    vec![
        (
            "deep-arrays.toml".into(),
            format!(
                "{head_toml}x = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )
            .into_bytes(),
        ),
        (
            "deep-inline-tables.toml".into(),
            format!(
                "{head_toml}x = {}1{}\n",
                "{ a = ".repeat(depth),
                " }".repeat(depth)
            )
            .into_bytes(),
        ),
        (
            "deep-dotted-key.toml".into(),
            format!("{head_toml}{} = 1\n", vec!["a"; depth].join(".")).into_bytes(),
        ),
        (
            "deep-table-header.toml".into(),
            format!("{head_toml}[{}]\nx = 1\n", vec!["a"; depth].join(".")).into_bytes(),
        ),
        (
            "deep-flow.yaml".into(),
            format!("{head_yaml}x: {}{}\n", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
        ),
        (
            "deep-flow-maps.yaml".into(),
            format!(
                "{head_yaml}x: {}1{}\n",
                "{a: ".repeat(depth),
                "}".repeat(depth)
            )
            .into_bytes(),
        ),
        (
            "deep-block-sequences.yaml".into(),
            format!("{head_yaml}x:\n  {}1\n", "- ".repeat(depth)).into_bytes(),
        ),
        (
            // block mappings need one more space per level: 1 000 levels keep the file small
            "deep-block-mappings.yaml".into(),
            {
                let mut s = format!("{head_yaml}x:\n");
                for i in 1..=depth.min(1000) {
                    writeln!(s, "{}a:", " ".repeat(i)).unwrap();
                }
                s.into_bytes()
            },
        ),
    ]
}

#[test]
fn twenty_thousand_levels_of_nesting_are_rejected_without_a_crash() {
    let inputs = deep_inputs(20_000);
    let files: Vec<(&str, &[u8])> = inputs
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let d = Dir::new(&[]);
    for (name, bytes) in &files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    for (name, bytes) in &files {
        let report = check_rejected(d.path(), name);
        let diags = report["diagnostics"].as_array().unwrap();
        assert!(
            diags.iter().any(|d| d["code"] == "spec::too-deep"),
            "{name}: {diags:?}"
        );
        insta::assert_snapshot!(snapshot_name("generated", name), compact(bytes, &report));
    }
}

#[test]
fn invalid_utf8_is_located_at_the_first_bad_byte() {
    let files: [(&str, &[u8]); 3] = [
        ("latin1.toml", b"kind = \"load\"\nname = \"caf\xe9\"\n"),
        ("latin1.yaml", b"kind: load\nname: caf\xe9\n"),
        (
            "truncated-utf8.yaml",
            b"kind: load\nname: \"\xc3\xa9t\xc3\"\n",
        ),
    ];
    let d = Dir::new(&[]);
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
        let report = check_rejected(d.path(), name);
        assert_eq!(report["diagnostics"][0]["code"], "spec::utf8", "{name}");
        insta::assert_snapshot!(snapshot_name("generated", name), compact(bytes, &report));
    }
}

#[test]
fn all_fixtures_in_one_run_report_every_file() {
    // one invocation over the whole folder: every file is reported, none hides another
    let start = Instant::now();
    let out = bin()
        .env_remove("PERFSPEC_TESTKIT")
        .current_dir(fixtures_dir())
        .args(["validate", "--format", "json", "."])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < MAX_RUN * 3);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = fixtures();
    assert_eq!(report["files"], files.len());
    let reported: BTreeSet<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["file"].as_str())
        .map(|f| f.trim_start_matches("./").to_string())
        .collect();
    let silent: Vec<_> = files.iter().filter(|f| !reported.contains(*f)).collect();
    assert!(
        silent.is_empty(),
        "files without a diagnostic in a folder run: {silent:?}"
    );
}

/// Every prefix of every fixture and example spec (at a stride), and the same files with one
/// byte removed, go through the whole validation pipeline in-process: no input panics, and a
/// rejected input always says where.
#[test]
fn truncated_and_mutilated_inputs_never_panic() {
    let mut sources: Vec<PathBuf> = Vec::new();
    for dir in [
        fixtures_dir(),
        root().join("specs"),
        root().join("specs/services"),
    ] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml" | "yaml" | "yml")
            ) {
                sources.push(path);
            }
        }
    }
    sources.sort();
    let registry = perfspec::backends::Registry::standard();
    let d = Dir::new(&[]);
    let mut checked = 0;
    for path in &sources {
        let bytes = std::fs::read(path).unwrap();
        let ext = path.extension().unwrap().to_str().unwrap();
        let stride = (bytes.len() / 40).max(1);
        let mut variants: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(stride)
            .map(|n| bytes[..n].to_vec())
            .collect();
        variants.extend(
            (0..bytes.len())
                .step_by(stride)
                .map(|i| [&bytes[..i], &bytes[i + 1..]].concat()),
        );
        for (i, variant) in variants.iter().enumerate() {
            let file = d.join(&format!("v{i}.{ext}"));
            std::fs::write(&file, variant).unwrap();
            let checked_files =
                perfspec::cli::check_paths(std::slice::from_ref(&file), &[], &registry, false)
                    .unwrap_or_else(|d| panic!("{}: usage error {d}", path.display()));
            for diag in &checked_files.diagnostics {
                assert!(
                    diag.code.starts_with("usage::") || diag.line_col().is_some(),
                    "{} variant {i}: diagnostic without a location: {diag}\n{}",
                    path.display(),
                    String::from_utf8_lossy(variant)
                );
            }
            std::fs::remove_file(&file).unwrap();
            checked += 1;
        }
    }
    assert!(checked > 5000, "{checked} variants");
}

/// A cache spec with an integer beyond 64 bits, a NaN latency, negative keys, an infinite
/// zipf θ, zero ops and zero concurrency reports all six problems, each at its line: the
/// overflow no longer hides the rest (in YAML and in TOML).
#[test]
fn cross_field_problems_do_not_hide_behind_one_decode_error() {
    for (file, lines) in [
        ("cache-every-problem-at-once.yaml", [7, 8, 10, 11, 13, 14]),
        ("cache-every-problem-at-once.toml", [7, 10, 13, 14, 16, 17]),
    ] {
        let report = check_rejected(&fixtures_dir(), file);
        let got: Vec<(u64, String)> = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["line"].as_u64().unwrap(),
                    d["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let wants = [
            "does not fit in a 64-bit signed integer",
            "must be a finite number",
            "must not be negative",
            "must be a finite number",
            "`ops` must be at least 1",
            "`concurrency` must be at least 1",
        ];
        for (line, want) in lines.into_iter().zip(wants) {
            assert!(
                got.iter().any(|(l, m)| *l == line && m.contains(want)),
                "{file}: no `{want}` at line {line}: {got:?}"
            );
        }
        assert_eq!(got.len(), 6, "{file}: exactly the six problems: {got:?}");
    }
}

/// Rates, durations, user counts, think times, stress bounds and cache `ops` that cannot be
/// meant are located validation errors, and the planned request count is computed with
/// checked arithmetic (an overflow is an error, not a wrapped number).
#[test]
fn absurd_rates_and_durations_do_not_validate() {
    for (file, wants) in [
        (
            "absurd-rate-and-duration.toml",
            &["beyond what one process can issue", "longer than 31 days"][..],
        ),
        (
            "absurd-rate-and-duration.yaml",
            &["beyond what one process can issue", "longer than 31 days"][..],
        ),
        (
            "planned-requests-overflow.toml",
            &["does not fit in a 64-bit count"][..],
        ),
        (
            "absurd-users-and-think-time.yaml",
            &[
                "more than one process can run",
                "longer than 31 days",
                "longer than 1 hour",
            ][..],
        ),
        (
            "absurd-stress-until.toml",
            &["`stress.until` is beyond", "longer than 1 hour"][..],
        ),
        (
            "absurd-cache-ops.yaml",
            &[
                "more than one run can issue",
                "more than one process can run",
                "longer than 31 days",
            ][..],
        ),
        (
            "absurd-cache-ops.toml",
            &[
                "more than one run can issue",
                "more than one process can run",
                "longer than 31 days",
            ][..],
        ),
    ] {
        let report = check_rejected(&fixtures_dir(), file);
        let messages: Vec<&str> = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["message"].as_str().unwrap())
            .collect();
        for want in wants {
            assert!(
                messages.iter().any(|m| m.contains(want)),
                "{file}: no `{want}` in {messages:?}"
            );
        }
    }
}

/// Comments and docs say how a tool is installed (`cargo install oha`), never which package
/// registry's host it comes from.
#[test]
fn no_package_registry_host_names_in_comments_or_docs() {
    // spelled in pieces so that this file does not match itself
    let hosts = [
        ["crates", ".io"].concat(),
        ["docs", ".rs"].concat(),
        ["pypi", ".org"].concat(),
        ["from Py", "PI"].concat(),
        ["npmjs", ".com"].concat(),
        ["registry", ".npmjs"].concat(),
        ["deb", ".debian.org"].concat(),
        ["archive", ".ubuntu.com"].concat(),
        ["rubygems", ".org"].concat(),
        ["pkg", ".go.dev"].concat(),
        ["proxy", ".golang.org"].concat(),
        ["(Deb", "ian)"].concat(),
    ];
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" || name == "snapshots" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for sub in ["src", "tests", "benches", "specs", "templates", "schemas"] {
        walk(&root().join(sub), &mut files);
    }
    files.extend(["README.md", "Cargo.toml"].map(|f| root().join(f)));
    let mut hits = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(h) = hosts.iter().find(|h| line.contains(h.as_str())) {
                hits.push(format!("{}:{}: {h}", f.display(), n + 1));
            }
        }
    }
    assert!(hits.is_empty(), "registry host names: {hits:#?}");
}

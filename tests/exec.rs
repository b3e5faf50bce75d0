//! `backend = "exec"`: a command's own document judged by the spec's SLOs.

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2Serializer};

use crate::cli::{Dir, bin, results, root, run_cli, scalar, slo_outcome as slo, stderr};

/// An HDR histogram of 1…1000 ms (in microseconds), V2, base64.
fn hdr_1_to_1000_ms() -> String {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for ms in 1..=1000u64 {
        h.record(ms * 1000).unwrap();
    }
    let mut buf = Vec::new();
    V2Serializer::new().serialize(&h, &mut buf).unwrap();
    base64::engine::general_purpose::STANDARD.encode(buf)
}

const DECLARED: &str = r#"
[exec.metrics]
render_time = { dimension = "duration", labels = ["page"] }
score = { dimension = "ratio" }
cache_misses = { dimension = "count", shape = "counter", labels = ["page"] }
"#;

#[test]
fn a_command_that_prints_a_histogram_gets_its_slos_judged() {
    let doc = serde_json::json!({
        "version": 1,
        "elapsed_s": 10.0,
        "histograms": [{"metric": "latency", "labels": {"step": "login"}, "scale": 1e-6, "hdr": hdr_1_to_1000_ms()}],
        "samples": [{"metric": "render_time", "labels": {"page": "home"}, "scale": 0.001, "values": [10, 20, 30, 40]}],
        "scalars": [
            {"metric": "score", "value": 0.93},
            {"metric": "cache_misses", "labels": {"page": "home"}, "value": 3},
            {"metric": "cache_misses", "labels": {"page": "cart"}, "value": 4}
        ],
        "errors": [{"message": "timeout talking to the db", "count": 2}],
        "notes": ["measured by our own harness"]
    });
    let spec = format!(
        r#"
kind = "load"
name = "own-harness"
slo = [
  "p95(latency) <= 951ms",
  "p95(latency) > 949ms",
  "p95(latency{{step=login}}) < 1s",
  "rate(latency) == 100/s",
  "max(render_time{{page=home}}) < 40.1ms",
  "score >= 0.9",
  "cache_misses == 7",
  "cache_misses{{page=cart}} == 4",
]
[exec]
command = ["cat", "doc.json"]
{DECLARED}"#
    );
    let d = Dir::new(&[("own.toml", &spec), ("doc.json", &doc.to_string())]);
    let out = run_cli(&d, &["run", "own.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    assert_eq!(s["backend"], "exec", "{s}");
    for o in s["slos"].as_array().unwrap() {
        assert_eq!(o["status"], "pass", "{o}");
    }
    let p95 = slo(s, "p95(latency) <= 951ms")["observed"]
        .as_f64()
        .unwrap();
    assert!((p95 - 0.950).abs() <= 0.001, "p95 {p95}");
    assert_eq!(scalar(s, "score", &[]), Some(0.93));
    assert_eq!(
        s["measurements"]["counters"],
        serde_json::json!(["cache_misses"])
    );
    assert_eq!(s["measurements"]["error_samples"][0]["count"], 2);
    assert!(
        s["measurements"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "measured by our own harness")
    );
    // the command's stdout is kept in the spec's artifacts folder
    assert!(d.join("out/own-harness/exec-stdout.txt").is_file());
}

#[test]
fn a_document_in_perfspec_out_wins_over_stdout_and_a_stale_one_is_never_judged() {
    let spec = |body: &str| {
        format!(
            "kind = \"cache\"\nname = \"file-doc\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"sh\", \"-c\", '{body}']\n{DECLARED}"
        )
    };
    let write = r#"echo "log line, not JSON"; printf "{\"version\":1,\"scalars\":[{\"metric\":\"score\",\"value\":0.95}]}" > "$PERFSPEC_OUT/metrics.json""#;
    let d = Dir::new(&[("a.toml", &spec(write))]);
    let out = run_cli(&d, &["run", "a.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(scalar(&results(&d)["specs"][0], "score", &[]), Some(0.95));
    // the second run writes nothing: the first run's metrics.json must not be judged again
    std::fs::write(d.join("a.toml"), spec("echo nothing here")).unwrap();
    let out = run_cli(&d, &["run", "a.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let s = &results(&d)["specs"][0];
    assert_eq!(s["status"], "error", "{s}");
}

#[test]
fn invalid_json_is_an_error_with_the_output_tail_and_the_reports_are_written() {
    let spec = format!(
        "kind = \"load\"\nname = \"garbage\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"sh\", \"-c\", 'echo \"{{\\\"version\\\": 1,\"; echo \"  oops\"; echo \"the harness crashed\" >&2']\n{DECLARED}"
    );
    let d = Dir::new(&[("g.toml", &spec)]);
    let out = run_cli(&d, &["run", "g.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let s = &results(&d)["specs"][0];
    assert_eq!(s["status"], "error", "{s}");
    let err = s["error"].as_str().unwrap();
    assert!(
        err.contains("line 2 column"),
        "located in the document: {err}"
    );
    assert!(err.contains("the harness crashed"), "the tail: {err}");
    for f in ["report.html", "junit.xml", "summary.md"] {
        assert!(d.join("out").join(f).is_file(), "{f}");
    }
    let junit = std::fs::read_to_string(d.join("out/junit.xml")).unwrap();
    assert!(junit.contains("the harness crashed"), "{junit}");
}

#[test]
fn a_document_that_breaks_the_rules_names_where() {
    let cases = [
        (
            r#"{"version":1,"samples":[{"metric":"nope","values":[1]}]}"#,
            "samples[0]: `nope` is neither a load metric nor declared",
        ),
        (
            r#"{"version":1,"scalars":[{"metric":"render_time","value":1}]}"#,
            "scalars[0]: `render_time` is a distribution: it belongs in `samples` or `histograms`",
        ),
        (
            r#"{"version":1,"samples":[{"metric":"render_time","labels":{"tier":"x"},"values":[1]}]}"#,
            "`tier` is not a label of `render_time` (its labels: page)",
        ),
        (
            r#"{"version":1,"samples":[{"metric":"render_time","values":[-1]}]}"#,
            "samples[0]: a negative value",
        ),
        (r#"{"version":2}"#, "`version` is 2"),
        (
            r#"{"version":1,"scalar":[]}"#,
            "line 1 column 21: unknown field `scalar`",
        ),
        (
            r#"{"version":1,"histograms":[{"metric":"latency","scale":1e-6,"hdr":"bm90IGhkcg=="}]}"#,
            "histograms[0].hdr: not an HDR histogram",
        ),
    ];
    for (i, (doc, want)) in cases.iter().enumerate() {
        let spec = format!(
            "kind = \"load\"\nname = \"rules\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"cat\", \"doc.json\"]\n{DECLARED}"
        );
        let d = Dir::new(&[("r.toml", &spec), ("doc.json", doc)]);
        let out = run_cli(&d, &["run", "r.toml", "--out", "out"]);
        assert_eq!(out.status.code(), Some(3), "case {i}: {}", stderr(&out));
        let err = results(&d)["specs"][0]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains(want), "case {i}: want `{want}` in: {err}");
    }
}

#[test]
fn a_failing_command_is_judged_on_the_document_it_left() {
    let spec = format!(
        "kind = \"load\"\nname = \"fails\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"sh\", \"-c\", 'echo \"{{\\\"version\\\":1,\\\"scalars\\\":[{{\\\"metric\\\":\\\"score\\\",\\\"value\\\":0.95}}]}}\"; echo \"half done\" >&2; exit 4']\n{DECLARED}"
    );
    let d = Dir::new(&[("f.toml", &spec)]);
    let out = run_cli(&d, &["run", "f.toml", "--out", "out"]);
    let s = &results(&d)["specs"][0];
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = s["error"].as_str().unwrap();
    assert!(err.contains("exited with status 4"), "{err}");
    assert!(err.contains("half done"), "{err}");
    assert_eq!(slo(s, "score >= 0.9")["observed"], 0.95, "{s}");
}

#[test]
fn a_command_past_its_timeout_is_stopped_with_its_children() {
    let spec = format!(
        "kind = \"load\"\nname = \"slow\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"sh\", \"-c\", 'sleep 30 & echo $! > child.pid; echo $$ > sh.pid; wait']\ntimeout = \"1500ms\"\n{DECLARED}"
    );
    let d = Dir::new(&[("s.toml", &spec)]);
    let t0 = std::time::Instant::now();
    let out = run_cli(&d, &["run", "s.toml", "--out", "out"]);
    assert!(t0.elapsed().as_secs_f64() < 10.0, "stopped at its timeout");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = results(&d)["specs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("did not finish within its timeout of 1.5s"),
        "{err}"
    );
    for f in ["child.pid", "sh.pid"] {
        let pid: i32 = std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // a zombie (killed, not yet reaped by init) counts as gone
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z");
        assert!(!alive, "{f} ({pid}) survived the timeout");
    }
}

#[test]
fn exec_secrets_never_reach_the_outputs() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("Xk{nanos:x}");
    let spec = format!(
        "kind = \"load\"\nname = \"leaky-exec\"\nslo = [\"score >= 0.9\"]\n[exec]\ncommand = [\"sh\", \"-c\", 'echo \"token $TOKEN\" >&2; exit 2', \"${{env:PERFSPEC_T_EXEC}}\"]\nenv = {{ TOKEN = \"${{env:PERFSPEC_T_EXEC}}\" }}\n{DECLARED}"
    );
    let d = Dir::new(&[("l.toml", &spec)]);
    let out = bin()
        .current_dir(d.path())
        .args(["run", "l.toml", "--out", "out"])
        .env("PERFSPEC_T_EXEC", &secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = results(&d)["specs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("token [redacted]"), "{err}");
    for f in ["results.json", "report.html", "junit.xml", "summary.md"] {
        let body = std::fs::read_to_string(d.join("out").join(f)).unwrap();
        assert!(!body.contains(&secret), "the secret leaks into {f}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));
    assert!(!stderr(&out).contains(&secret));
}

#[test]
fn validate_checks_slos_against_the_declared_metrics() {
    let spec = r#"
kind = "load"
name = "declared"
slo = ["p95(render_tme) < 1s", "p95(score) < 1", "p95(render_time{tier=a}) < 1s"]
[exec]
command = ["./bench.sh"]
timeout = "2d"
[exec.metrics]
render_time = { dimension = "duration", labels = ["page"] }
score = { dimension = "ratio" }
latency = { dimension = "duration" }
Bad = { dimension = "count" }
"#;
    let d = Dir::new(&[("v.toml", spec)]);
    let out = run_cli(&d, &["validate", "v.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    for want in [
        "v.toml:4:13: unknown metric `render_tme` for a load spec",
        "did you mean `render_time`?",
        "`p95` needs a distribution, but `score` is a gauge",
        "`tier` is not a label of `render_time`",
        "`latency` is a load metric already",
        "`Bad` is not a metric name",
        "unknown unit `d`",
    ] {
        assert!(e.contains(want), "want `{want}` in:\n{e}");
    }
}

#[test]
fn the_exec_schema_is_printed_checked_in_and_accepts_a_real_document() {
    let out = bin().args(["schema", "--exec"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = root().join("schemas/exec.schema.json");
    let text = serde_json::to_string_pretty(&printed).unwrap() + "\n";
    if std::env::var_os("PERFSPEC_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        text,
        "schemas/exec.schema.json is stale: run `PERFSPEC_UPDATE_SCHEMAS=1 cargo nextest run --release schema`"
    );
    let v = jsonschema::validator_for(&printed).unwrap();
    let doc = serde_json::json!({"version": 1, "samples": [{"metric": "x", "values": [1.0]}], "scalars": [{"metric": "y", "value": 2}]});
    assert!(v.is_valid(&doc));
    assert!(!v.is_valid(&serde_json::json!({"version": 1, "extra": 1})));
}

#[test]
fn the_bundled_exec_example_measures_gzip() {
    let t = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(root())
        .args(["run", "specs/gzip-levels.toml", "--out"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("results.json")).unwrap()).unwrap();
    let s = &res["specs"][0];
    // real measurements: level 9 compresses at least as well as level 1, and both shrink it
    let r1 = scalar(s, "compressed_ratio", &[("level", "1")]).unwrap();
    let r9 = scalar(s, "compressed_ratio", &[("level", "9")]).unwrap();
    assert!(r9 <= r1 && r1 < 1.0 && r9 > 0.0, "{r1} {r9}");
    let hist = s["measurements"]["histograms"].as_array().unwrap();
    assert_eq!(hist.len(), 2, "one histogram per level");
    for h in hist {
        assert_eq!(h["count"], 20, "{h}");
    }
}

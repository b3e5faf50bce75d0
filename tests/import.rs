//! `backend = "import"`: another tool's results judged by perfspec's SLOs.

use crate::cli::{Dir, results, run_cli, scalar, stderr};

/// A JTL of 1 000 samples: `elapsed` 1…1000 ms (shuffled in time), 10 failures, `login` for
/// every tenth sample.
fn jtl() -> String {
    let mut s = String::from(
        "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect\n",
    );
    for i in 0..1000u64 {
        let elapsed = (i * 389) % 1000 + 1; // a permutation of 1..=1000
        let label = if i % 10 == 0 { "login" } else { "browse" };
        let (ok, code) = if i % 100 == 7 {
            ("false", "500")
        } else {
            ("true", "200")
        };
        let ts = 1_796_205_600_000 + i * 10;
        s.push_str(&format!(
            "{ts},{elapsed},{label},{code},OK,Shoppers 1-{},text,{ok},,100,50,1,1,http://h/{label},{elapsed},0,1\n",
            i % 4 + 1
        ));
    }
    s
}

fn slo_value(spec: &serde_json::Value, expr: &str) -> serde_json::Value {
    crate::cli::slo_outcome(spec, expr).clone()
}

#[test]
fn a_jmeter_jtl_is_judged_with_exact_percentiles_and_label_filters() {
    let spec = r#"
kind = "load"
name = "jmeter-checkout"
slo = ["p95(latency) <= 951ms", "error_rate <= 1%", "p95(latency{step=login}) < 1s", "requests{journey=Shoppers} == 1000"]
[import]
format = "jmeter-jtl"
file = "results/*.jtl"
"#;
    let d = Dir::new(&[("import.toml", spec), ("results/run-1.jtl", &jtl())]);
    let out = run_cli(&d, &["run", "import.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    assert_eq!(s["backend"], "import", "{s}");
    let p95 = scalar_quantile(s, "p95(latency) <= 951ms");
    assert!((p95 - 0.950).abs() <= 0.001, "p95 {p95}");
    let rate = scalar(s, "error_rate", &[]).unwrap();
    assert!((rate - 0.01).abs() < 1e-12, "{rate}");
    assert_eq!(
        scalar(
            s,
            "requests",
            &[
                ("step", "login"),
                ("journey", "Shoppers"),
                ("status", "200"),
                ("phase", "imported"),
            ]
        ),
        Some(100.0)
    );
    let login = slo_value(s, "p95(latency{step=login}) < 1s");
    assert_eq!(login["status"], "pass", "{login}");
    // late and arrivals are unknown for an import: absent, not 0
    assert_eq!(scalar(s, "late_ratio", &[]), None);
    assert_eq!(fidelity(s, "latency")["fidelity"], "exact");
    assert_eq!(fidelity(s, "error_rate")["source"], "the jmeter-jtl file");
    let notes = s["measurements"]["notes"].to_string();
    assert!(
        notes.contains("imported 1000 samples (jmeter-jtl"),
        "{notes}"
    );
}

fn scalar_quantile(spec: &serde_json::Value, expr: &str) -> f64 {
    let v = slo_value(spec, expr);
    v["observed"]
        .as_f64()
        .unwrap_or_else(|| panic!("no observed value in {v}"))
}

#[test]
fn a_k6_json_output_gates_like_a_run_and_a_slow_step_fails() {
    let mut lines = Vec::new();
    for i in 0..200u64 {
        let (name, ms) = if i % 2 == 0 {
            ("home", 10 + i % 7)
        } else {
            ("search", 300 + i)
        };
        let failed = u8::from(i == 5);
        let status = if failed == 1 { 503 } else { 200 };
        let time = format!(
            "2026-12-02T10:00:{:02}.{:03}000+00:00",
            i / 10,
            (i % 10) * 100
        );
        let tags = format!(
            r#"{{"group":"","method":"GET","name":"{name}","scenario":"browse","status":"{status}","expected_response":"{}"}}"#,
            failed == 0
        );
        lines.push(format!(r#"{{"type":"Point","metric":"http_reqs","data":{{"time":"{time}","value":1,"tags":{tags}}}}}"#));
        lines.push(format!(r#"{{"type":"Point","metric":"http_req_duration","data":{{"time":"{time}","value":{ms},"tags":{tags}}}}}"#));
        lines.push(format!(r#"{{"type":"Point","metric":"http_req_failed","data":{{"time":"{time}","value":{failed},"tags":{tags}}}}}"#));
    }
    let spec = "kind: load\nname: k6-browse\nslo:\n  - p95(latency{step=home}) < 50ms\n  - p95(latency{step=search}) < 250ms\n  - error_rate < 1%\nimport:\n  format: k6-json\n  file: k6.json\n";
    let d = Dir::new(&[("k6.yaml", spec), ("k6.json", &lines.join("\n"))]);
    let out = run_cli(&d, &["run", "k6.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    assert_eq!(
        slo_value(s, "p95(latency{step=home}) < 50ms")["status"],
        "pass"
    );
    assert_eq!(
        slo_value(s, "p95(latency{step=search}) < 250ms")["status"],
        "fail"
    );
    assert_eq!(slo_value(s, "error_rate < 1%")["status"], "pass");
    let rate = scalar(s, "error_rate", &[]).unwrap();
    assert!((rate - 0.005).abs() < 1e-12, "{rate}");
    assert_eq!(
        scalar(
            s,
            "requests",
            &[
                ("journey", "browse"),
                ("step", "home"),
                ("status", "200"),
                ("phase", "imported")
            ]
        ),
        Some(100.0)
    );
}

#[test]
fn import_problems_are_located_validation_errors() {
    let spec = "kind = \"load\"\nname = \"i\"\nslo = [\"error_rate < 1%\"]\n[import]\nformat = \"jmeter-jtl\"\nfile = \"missing.jtl\"\n";
    let d = Dir::new(&[
        ("missing.toml", spec),
        ("broken.toml", &spec.replace("missing.jtl", "broken.jtl")),
        (
            "broken.jtl",
            "timeStamp,elapsed,label,success\n1,2,a,true\n1,x,a,true\n",
        ),
        ("format.toml", &spec.replace("jmeter-jtl", "gatling")),
        (
            "backend.toml",
            &spec.replace("[import]", "backend = \"goose\"\n[import]"),
        ),
    ]);
    let out = run_cli(&d, &["validate", "missing.toml"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("missing.toml:6:") && err.contains("no file"),
        "{err}"
    );
    let out = run_cli(&d, &["validate", "broken.toml"]);
    let err = stderr(&out);
    assert!(err.contains("broken.jtl:3: elapsed `x`"), "{err}");
    let out = run_cli(&d, &["validate", "format.toml"]);
    let err = stderr(&out);
    assert!(
        err.contains("format.toml:5:") && err.contains("k6-json"),
        "{err}"
    );
    let out = run_cli(&d, &["validate", "backend.toml"]);
    let err = stderr(&out);
    assert!(err.contains("runs on the `import` backend"), "{err}");
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(crate::cli::root().join("tests/fixtures/import").join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn observed(spec: &serde_json::Value, expr: &str) -> f64 {
    scalar_quantile(spec, expr)
}

/// The outcome of `expr`: not evaluable, with `why` in its message.
fn assert_not_evaluable(spec: &serde_json::Value, expr: &str, status: &str, why: &[&str]) {
    let o = slo_value(spec, expr);
    assert_eq!(o["reason"], "not-evaluable", "{o}");
    assert_eq!(o["status"], status, "{o}");
    assert!(o["observed"].is_null(), "no fake value: {o}");
    let msg = o["message"].as_str().unwrap();
    for w in why {
        assert!(msg.contains(w), "`{w}` not in: {msg}");
    }
}

fn fidelity(spec: &serde_json::Value, metric: &str) -> serde_json::Value {
    spec["measurements"]["fidelity"]
        .as_array()
        .unwrap_or_else(|| panic!("no fidelity in {}", spec["measurements"]))
        .iter()
        .find(|f| f["metric"] == metric)
        .unwrap_or_else(|| panic!("no fidelity of {metric}"))
        .clone()
}

fn out_file(d: &Dir, name: &str) -> String {
    std::fs::read_to_string(d.join("out").join(name)).unwrap()
}

#[test]
fn a_k6_summary_reproduces_its_percentiles_and_a_p99_is_not_evaluable() {
    let spec = r#"
kind = "load"
name = "k6-summary"
slo = [
  "p95(latency) < 400ms",
  "p90(latency) < 300ms",
  "p50(latency) < 200ms",
  "p95(latency{step=login}) < 500ms",
  "p99(latency) < 1s",
  { expr = "p99.9(latency) < 2s", no_data = "warn" },
  "p95(latency{status=200}) < 1s",
  "error_rate <= 1%",
  "throughput >= 40/s",
  "requests{step=login} == 100",
]
[import]
format = "k6-summary"
file = "summary.json"
"#;
    let d = Dir::new(&[
        ("k6.toml", spec),
        ("summary.json", &fixture("k6-summary.json")),
    ]);
    let out = run_cli(&d, &["validate", "k6.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("k6.toml:9:") && err.contains("`p99(latency) < 1s` is not evaluable"),
        "{err}"
    );
    let out = run_cli(&d, &["run", "k6.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    // the given percentiles, exactly as written (ms → s)
    assert_eq!(observed(s, "p95(latency) < 400ms"), 0.310875);
    assert_eq!(observed(s, "p90(latency) < 300ms"), 0.2505);
    assert_eq!(observed(s, "p50(latency) < 200ms"), 0.100125);
    assert_eq!(observed(s, "p95(latency{step=login}) < 500ms"), 0.4805);
    assert_not_evaluable(
        s,
        "p99(latency) < 1s",
        "fail",
        &[
            "the k6 summary has no p99 of latency (it gives p50, p90, p95, min, max, mean)",
            "--summary-trend-stats",
            "--out json",
        ],
    );
    assert_not_evaluable(s, "p99.9(latency) < 2s", "warn", &["no p99.9"]);
    assert_not_evaluable(
        s,
        "p95(latency{status=200}) < 1s",
        "fail",
        &["the k6 summary has no `status` label on latency (only step)"],
    );
    assert_eq!(slo_value(s, "error_rate <= 1%")["status"], "pass");
    assert_eq!(scalar(s, "error_rate", &[]), Some(0.01));
    assert_eq!(observed(s, "throughput >= 40/s"), 50.0);
    assert_eq!(
        slo_value(s, "requests{step=login} == 100")["status"],
        "pass"
    );
    let f = fidelity(s, "latency");
    assert_eq!(f["fidelity"], "percentiles", "{f}");
    assert_eq!(fidelity(s, "requests")["fidelity"], "exact");
    let notes = s["measurements"]["notes"].to_string();
    assert!(
        notes.contains("k6-summary: latency percentiles only"),
        "{notes}"
    );
    for file in ["junit.xml", "report.html"] {
        let text = out_file(&d, file);
        assert!(
            text.contains("is not evaluable: the k6 summary has no p99 of latency"),
            "{file} lacks the reason"
        );
    }
    assert!(out_file(&d, "report.html").contains("latency percentiles only"));
}

#[test]
fn oha_json_gives_its_percentiles_and_status_counts() {
    let spec = "kind: load\nname: oha\nslo:\n  - p95(latency) < 50ms\n  - p99.9(latency) <= 200ms\n  - p97(latency) < 1s\n  - p95(latency{step=home}) < 1s\n  - max(latency) < 1s\n  - error_rate < 5%\n  - requests{status=503} == 8\nimport:\n  format: oha-json\n  file: oha.json\n";
    let d = Dir::new(&[("oha.yaml", spec), ("oha.json", &fixture("oha.json"))]);
    let out = run_cli(&d, &["run", "oha.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    assert_eq!(observed(s, "p95(latency) < 50ms"), 0.04);
    assert_eq!(observed(s, "p99.9(latency) <= 200ms"), 0.2);
    assert_eq!(observed(s, "max(latency) < 1s"), 0.25);
    assert_not_evaluable(s, "p97(latency) < 1s", "fail", &["oha's output has no p97"]);
    assert_not_evaluable(
        s,
        "p95(latency{step=home}) < 1s",
        "fail",
        &["no `step` label on latency (no labels)"],
    );
    // 498 responses (8 of them 503) and 2 connection errors; 3 cut off by the deadline
    assert_eq!(scalar(s, "requests", &[]), Some(500.0));
    assert_eq!(scalar(s, "error_rate", &[]), Some(0.02));
    assert_eq!(slo_value(s, "requests{status=503} == 8")["status"], "pass");
    assert_eq!(observed(s, "error_rate < 5%"), 0.02);
}

#[test]
fn locust_csv_stats_answer_their_columns_per_name() {
    let spec = r#"
kind = "load"
name = "locust"
slo = [
  "p95(latency) < 300ms",
  "p95(latency{step=/login}) <= 300ms",
  "p99.9(latency{step=/}) < 1s",
  "p97(latency) < 1s",
  "p95(latency{status=200}) < 1s",
  "error_rate{step=/login} <= 2%",
  "throughput > 10/s",
]
[import]
format = "locust-csv"
file = "run_stats.csv"
"#;
    let d = Dir::new(&[
        ("locust.toml", spec),
        ("run_stats.csv", &fixture("locust_stats.csv")),
    ]);
    let out = run_cli(&d, &["run", "locust.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    // the Aggregated row answers the whole run
    assert_eq!(observed(s, "p95(latency) < 300ms"), 0.25);
    assert_eq!(observed(s, "p95(latency{step=/login}) <= 300ms"), 0.3);
    assert_eq!(observed(s, "p99.9(latency{step=/}) < 1s"), 0.11);
    assert_not_evaluable(
        s,
        "p97(latency) < 1s",
        "fail",
        &["Locust's CSV stats has no p97", "PERCENTILES_TO_REPORT"],
    );
    assert_not_evaluable(
        s,
        "p95(latency{status=200}) < 1s",
        "fail",
        &["no `status` label"],
    );
    assert_eq!(observed(s, "error_rate{step=/login} <= 2%"), 0.02);
    assert_eq!(scalar(s, "error_rate", &[]), Some(0.008));
    // 1000 requests at 16.67/s: 60 s
    assert!((observed(s, "throughput > 10/s") - 16.666_666).abs() < 1e-3);
    assert_eq!(fidelity(s, "latency")["fidelity"], "percentiles");
}

#[test]
fn locust_json_buckets_answer_any_percentile() {
    let spec = "kind: load\nname: locust-json\nslo:\n  - p95(latency{step=/search}) < 100ms\n  - p97(latency) < 1s\n  - error_rate{step=/login} <= 10%\nimport:\n  format: locust-json\n  file: locust.json\n";
    let d = Dir::new(&[("l.yaml", spec), ("locust.json", &fixture("locust.json"))]);
    let out = run_cli(&d, &["run", "l.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    // /search: one request at each of 1…100 ms
    let p95 = observed(s, "p95(latency{step=/search}) < 100ms");
    assert!((p95 - 0.095).abs() <= 0.095 * 1e-3, "{p95}");
    // every request: 100 at 1…100 ms and 10 at 150 ms; the 97th percentile is the 107th
    let p97 = observed(s, "p97(latency) < 1s");
    assert!((p97 - 0.150).abs() <= 0.150 * 1e-3, "{p97}");
    assert_eq!(observed(s, "error_rate{step=/login} <= 10%"), 0.1);
    assert_eq!(fidelity(s, "latency")["fidelity"], "bucketed");
    assert_eq!(scalar(s, "requests", &[]), Some(110.0));
}

/// memtier's JSON as its `run_stats.cpp` writes it, with the HDR histograms encoded here
/// (V2 + DEFLATE, base64) from known latencies.
fn memtier_json() -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let encode = |values: &[u64]| {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        let mut buf = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut buf).unwrap();
        base64::engine::general_purpose::STANDARD.encode(buf)
    };
    // Gets: 10 µs … 10 ms in steps of 10 µs; Sets: 500 at 2 ms
    let gets: Vec<u64> = (1..=1000).map(|i| i * 10).collect();
    let sets = vec![2000u64; 500];
    let command = |count: usize, avg: f64, hist: String| {
        serde_json::json!({
            "Count": count, "Ops/sec": count as f64 / 10.0, "Hits/sec": 0.0, "Misses/sec": 0.0,
            "Latency": avg, "Average Latency": avg, "Min Latency": 0.01, "Max Latency": 10.0,
            "KB/sec": 1.0,
            "Time-Serie": {},
            "Percentile Latencies": {
                "p50.00": 5.0, "p99.00": 9.9,
                "Histogram log format": { "Compressed Histogram": hist }
            }
        })
    };
    serde_json::json!({
        "configuration": { "server": "127.0.0.1", "port": 6379, "protocol": "redis" },
        "ALL STATS": {
            "Runtime": { "Start time": 1796205600000u64, "Finish time": 1796205610000u64, "Total duration": 10000, "Time unit": "MILLISECONDS", "Interrupted": "false" },
            "Sets": command(500, 2.0, encode(&sets)),
            "Gets": command(1000, 5.005, encode(&gets)),
            "Waits": { "Count": 0, "Ops/sec": 0.0 },
            "Totals": { "Count": 1500, "Ops/sec": 150.0, "Connection Errors": 0, "Connection Errors/sec": 0.0 }
        }
    })
    .to_string()
}

#[test]
fn memtier_json_histograms_are_exact() {
    let spec = "kind = \"load\"\nname = \"memtier\"\nslo = [\"p95(latency{step=Gets}) < 10ms\", \"p97(latency) < 10ms\", \"throughput >= 150/s\", \"error_rate == 0\"]\n[import]\nformat = \"memtier-json\"\nfile = \"memtier.json\"\n";
    let d = Dir::new(&[("m.toml", spec), ("memtier.json", &memtier_json())]);
    let out = run_cli(&d, &["run", "m.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let s = &res["specs"][0];
    let p95 = observed(s, "p95(latency{step=Gets}) < 10ms");
    assert!((p95 - 0.0095).abs() <= 0.0095 * 1e-3, "{p95}");
    // all 1500: 500 at 2 ms below; the 97th percentile is the 1455th: Gets' 955th, 9.55 ms
    let p97 = observed(s, "p97(latency) < 10ms");
    assert!((p97 - 0.00955).abs() <= 0.00955 * 1e-3, "{p97}");
    assert_eq!(observed(s, "throughput >= 150/s"), 150.0);
    assert_eq!(fidelity(s, "latency")["fidelity"], "exact");
}

#[test]
fn bad_summary_files_are_clear_errors() {
    let spec = |format: &str, file: &str| {
        format!(
            "kind = \"load\"\nname = \"b\"\nslo = [\"error_rate < 1%\"]\n[import]\nformat = \"{format}\"\nfile = \"{file}\"\n"
        )
    };
    let truncated: String = fixture("oha.json")
        .lines()
        .take(5)
        .collect::<Vec<_>>()
        .join("\n");
    let d = Dir::new(&[
        ("truncated.toml", &spec("oha-json", "oha.json")),
        ("oha.json", &truncated),
        ("wrong.toml", &spec("k6-summary", "run.jtl")),
        ("run.jtl", "timeStamp,elapsed,label,success\n1,2,a,true\n"),
        ("columns.toml", &spec("locust-csv", "stats.csv")),
        ("stats.csv", "Name,Requests\n/a,1\n"),
        ("two.toml", &spec("k6-summary", "s/*.json")),
        ("s/a.json", &fixture("k6-summary.json")),
        ("s/b.json", &fixture("k6-summary.json")),
        ("shape.toml", &spec("locust-json", "l.json")),
        ("l.json", "{\"stats\": []}"),
    ]);
    let cases = [
        ("truncated.toml", "oha.json:5: not oha's JSON output"),
        ("wrong.toml", "run.jtl:1: not a k6 summary"),
        (
            "columns.toml",
            "stats.csv:1: the Locust stats header has no column Type",
        ),
        ("two.toml", "those of 2 files cannot be merged"),
        ("shape.toml", "l.json: not a list of stats entries"),
    ];
    for (file, want) in cases {
        let out = run_cli(&d, &["validate", file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: `{want}` not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

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
    spec["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expr"] == expr)
        .unwrap_or_else(|| panic!("no SLO `{expr}` in {}", spec["slos"]))
        .clone()
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

//! Scaling specs end to end: a USL fit from a CSV (fit-only), "not enough points", bad CSV
//! files, and sweeps that cannot run yet.

use std::process::{Output, Stdio};

use crate::cli::{Dir, bin, root};

fn run_cli(d: &Dir, args: &[&str]) -> Output {
    bin()
        .current_dir(d.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("perfspec runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn results(d: &Dir) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(d.join("out/results.json")).expect("results.json"))
        .unwrap()
}

fn scalar(spec: &serde_json::Value, metric: &str) -> Option<f64> {
    spec["measurements"]["scalars"]
        .as_array()?
        .iter()
        .find(|s| s["metric"] == metric && s.get("labels").is_none())?["value"]
        .as_f64()
}

/// The published Cisco benchmark shipped with the examples.
fn cisco_csv() -> String {
    std::fs::read_to_string(root().join("specs/data/web-tier.csv")).unwrap()
}

const FIT_TOML: &str = r#"
kind = "scaling"
name = "fit"
measurements = "data/prod.csv"
slo = ["usl.peak_concurrency >= 30", "usl.sigma < 0.05", "usl.kappa < 0.001", "usl.max_throughput > 12000/s", "usl.r_squared >= 0.99"]
"#;

#[test]
fn fit_only_spec_reproduces_the_published_usl_coefficients() {
    let d = Dir::new(&[
        ("specs/fit.toml", FIT_TOML),
        ("specs/data/prod.csv", &cisco_csv()),
    ]);
    let out = run_cli(&d, &["run", "specs", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "pass", "{spec}");
    let close = |metric: &str, expected: f64| {
        let v = scalar(spec, metric).unwrap_or_else(|| panic!("no {metric}"));
        assert!(
            ((v - expected) / expected).abs() < 0.01,
            "{metric} = {v}, published {expected}"
        );
    };
    close("usl.sigma", 0.02671591);
    close("usl.kappa", 7.690945e-4);
    close("usl.lambda", 995.6486);
    close("usl.max_throughput", 12341.0);
    assert_eq!(scalar(spec, "usl.peak_concurrency"), Some(35.0));
    assert!(scalar(spec, "usl.r_squared").unwrap() > 0.99);
    let scalars = spec["measurements"]["scalars"].as_array().unwrap();
    let at_8 = scalars
        .iter()
        .find(|s| s["metric"] == "throughput" && s["labels"]["concurrency"] == "8")
        .unwrap();
    assert_eq!(at_8["value"], 6531.08);
    let series: Vec<&str> = spec["measurements"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    assert_eq!(series, ["usl.fit", "usl.ideal"]);
}

#[test]
fn five_points_are_not_enough_and_usl_slos_fail_as_no_data() {
    let five: String = cisco_csv()
        .lines()
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let d = Dir::new(&[("fit.toml", FIT_TOML), ("data/prod.csv", &five)]);
    let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "fail");
    for slo in spec["slos"].as_array().unwrap() {
        assert_eq!(
            (&slo["status"], &slo["reason"]),
            (&"fail".into(), &"no-data".into()),
            "{slo}"
        );
    }
    let notes = spec["measurements"]["notes"].to_string();
    assert!(
        notes.contains("not enough points for a USL fit: 5 distinct concurrency levels"),
        "{notes}"
    );
    // the measured points are still reported
    assert!(
        spec["measurements"]["scalars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metric"] == "throughput")
    );
}

#[test]
fn a_missing_measurements_file_is_a_located_validation_error() {
    let yaml =
        "kind: scaling\nname: fit\nmeasurements: data/nope.csv\nslo: [\"usl.sigma < 0.1\"]\n";
    let d = Dir::new(&[("fit.yaml", yaml)]);
    let out = run_cli(&d, &["validate", "--format", "json", "fit.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diag = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "backend::missing-file")
        .expect("a missing-file diagnostic");
    assert_eq!(
        (diag["line"].as_u64(), diag["column"].as_u64()),
        (Some(3), Some(15)),
        "{diag}"
    );
    assert!(
        diag["message"].as_str().unwrap().contains("data/nope.csv"),
        "{diag}"
    );
}

#[test]
fn a_malformed_csv_row_is_a_backend_error_with_its_line() {
    let d = Dir::new(&[
        ("fit.toml", FIT_TOML),
        (
            "data/prod.csv",
            "concurrency,throughput\n1,955.16\n2,fast\n",
        ),
    ]);
    let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let res = results(&d);
    let error = res["specs"][0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "read measurements `data/prod.csv`: line 3: throughput `fast` is not a finite number ≥ 0 (operations per second)"
    );
}

#[test]
fn replica_sweeps_are_not_available_yet() {
    let toml = r#"
kind = "scaling"
name = "sweep"
slo = ["usl.peak_concurrency >= 4"]
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1, 2, 3, 4, 6, 8]
[load]
mode = "concurrency"
concurrency = 8
"#;
    let d = Dir::new(&[("sweep.toml", toml)]);
    let out = run_cli(&d, &["run", "sweep.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        results(&d)["specs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("scaling sweeps with replicas or threads are not available yet")
    );
}

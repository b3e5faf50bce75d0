//! The Plan stage through the CLI: `run --dry-run [--format json]` prints every spec's plan
//! without starting anything, and `validate` fails exactly where planning does.

use crate::cli::{Dir, bin, root, run_cli, stderr};

/// `perfspec run --dry-run --format json DIR` from the repository root, parsed.
fn dry_run_json(dir: &str) -> Vec<serde_json::Value> {
    let out = bin()
        .current_dir(root())
        .args(["run", "--dry-run", "--format", "json", dir])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("perfspec runs");
    assert_eq!(out.status.code(), Some(0), "{dir}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{dir}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array().expect("a JSON array").clone()
}

fn named<'a>(specs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    specs
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no spec `{name}` in the dry run"))
}

#[test]
fn dry_run_json_for_every_example_spec() {
    let mut all = Vec::new();
    for dir in ["specs", "specs/services"] {
        let files = std::fs::read_dir(root().join(dir))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.ends_with(".toml") || n.ends_with(".yaml") || n.ends_with(".yml")
            })
            .count();
        let specs = dry_run_json(dir);
        assert_eq!(specs.len(), files, "{dir}: one object per spec file");
        for s in &specs {
            for key in ["name", "kind", "backend"] {
                assert!(
                    s[key].as_str().is_some_and(|v| !v.is_empty()),
                    "{dir}: `{key}` missing in {s}"
                );
            }
            let plan = s["plan"].as_object();
            assert!(
                plan.is_some_and(|p| !p.is_empty()),
                "{dir}: empty plan in {s}"
            );
        }
        all.extend(specs);
    }

    // checkout.toml: a ramp 0 → 20/s over 5 s, then a hold of 20/s for 15 s
    let checkout = named(&all, "checkout");
    assert_eq!(checkout["kind"], "load");
    assert_eq!(checkout["backend"], "goose");
    let ramp = 20u64.checked_mul(5).and_then(|a| a.checked_div(2)).unwrap();
    let hold = 20u64.checked_mul(15).unwrap();
    let p = &checkout["plan"];
    assert_eq!(p["model"]["kind"], "open");
    assert_eq!(p["model"]["arrivals"], ramp + hold);
    assert_eq!(p["model"]["max_in_flight"], 64);
    assert_eq!(p["model"]["late_tolerance_s"], 0.01);
    assert_eq!(p["duration_s"], 20.0);
    assert_eq!(p["stages"][1]["phase"], "steady");
    assert_eq!(p["journeys"][0]["name"], "browse");
    assert_eq!(p["journeys"][0]["probability"], 0.75);
    assert_eq!(p["journeys"][1]["steps"].as_array().map(Vec::len), Some(3));
    assert_eq!(p["target"]["kind"], "embedded");
    assert_eq!(p["data"][0]["name"], "users");
    // the default late_ratio SLO of an open model is part of what the dry run states
    let slos = checkout["slos"].as_array().unwrap();
    assert!(
        slos.iter()
            .any(|s| s["default"] == true && s["expr"].as_str().unwrap().starts_with("late_ratio")),
        "{slos:?}"
    );

    // digits-int8: fp32 + two int8 schemes in both modes, at two batch sizes
    let q = &named(&all, "digits-mlp-int8")["plan"];
    assert_eq!(q["candidates"].as_array().map(Vec::len), Some(5));
    assert_eq!(q["benchmarks"], 10);
    assert_eq!(q["dataset"]["features"], 64);

    // web-tier-client: a replica sweep with its fault on step 4
    let w = &named(&all, "web-tier-client")["plan"];
    assert_eq!(w["mode"], "sweep");
    assert_eq!(w["axis"], "replicas");
    let steps = w["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    let faulted: Vec<&serde_json::Value> = steps.iter().filter(|s| !s["fault"].is_null()).collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(faulted[0]["value"], 4);
    assert_eq!(faulted[0]["fault"]["at_s"], 2.0);
    assert_eq!(w["step_duration_s"], 6.0);
    assert_eq!(named(&all, "web-tier-usl-fit")["plan"]["mode"], "fit_only");
}

#[test]
fn dry_run_human_text_shows_each_kinds_plan() {
    let out = bin()
        .current_dir(root())
        .args(["run", "--dry-run", "specs"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("perfspec runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "open model: 350 arrivals over 20s, at most 64 in flight",
        "stage hold 20/s for 15s [steady]",
        "journey browse (weight 3, 75%)",
        "candidates (5): fp32/reference, int8/quantized",
        "sweep of replicas over embedded shop, 6s per step",
        "fault: kill replica 1 at 2s",
        "fit only: the USL fitted to",
        "run 1/",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

const QUANTIZE: &str = r#"kind = "quantize"
name = "q"
backend = "flex"
slo = ["accuracy_drop{scheme=int8} <= 1pp"]

[model]
architecture = "mlp"
layers = [3, 8, 2]

[dataset]
csv = "data.csv"
label = "label"

[[scheme]]
name = "int8"
dtype = "int8"
"#;

/// The quantize backend read the dataset only when it ran (exit 3): its header is now read
/// at plan time, so `validate` (and a dry run) reports a missing label column with its place.
#[test]
fn quantize_dataset_without_its_label_column_is_invalid_at_validate() {
    let d = Dir::new(&[("q.toml", QUANTIZE), ("data.csv", "a,b,c,digit\n1,2,3,0\n")]);
    let out = run_cli(&d, &["validate", "q.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has no label column `label`") && err.contains("q.toml:11:7"),
        "{err}"
    );
    let out = run_cli(&d, &["run", "--dry-run", "--format", "json", "q.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no label column `label`"));

    // the same spec plans (and validates) once the column is there
    let d = Dir::new(&[("q.toml", QUANTIZE), ("data.csv", "a,b,c,label\n1,2,3,0\n")]);
    let out = run_cli(&d, &["validate", "q.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_cli(&d, &["run", "--dry-run", "--format", "json", "q.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["plan"]["dataset"]["features"], 3);
}

#[test]
fn quantize_dataset_feature_count_must_match_the_input_width() {
    let d = Dir::new(&[("q.toml", QUANTIZE), ("data.csv", "a,b,label\n1,2,0\n")]);
    let out = run_cli(&d, &["validate", "q.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // located at `layers`, line 8
    assert!(
        err.contains("has 2 feature columns") && err.contains("q.toml:8:10"),
        "{err}"
    );
    // a missing file is a located error too, not a run-time surprise
    let d = Dir::new(&[("q.toml", QUANTIZE)]);
    let out = run_cli(&d, &["validate", "q.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the header of the dataset `data.csv`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_of_an_invalid_spec_exits_2_with_the_diagnostics() {
    let spec = r#"kind = "load"
name = "bad"
[target]
embedded = "shop"
[load]
stages = [{ hold = "10/s", for = "1s" }]
[[journey]]
name = "j"
steps = [{ request = "GET /{{ nope }}" }]
"#;
    let d = Dir::new(&[("bad.toml", spec)]);
    let validate = run_cli(&d, &["validate", "bad.toml"]);
    assert_eq!(validate.status.code(), Some(2));
    let out = run_cli(&d, &["run", "--dry-run", "--format", "json", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "no plan is printed for an invalid spec"
    );
    // the same diagnostics as validate prints
    let first = stderr(&validate)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        !first.is_empty() && stderr(&out).contains(&first),
        "{}",
        stderr(&out)
    );
}

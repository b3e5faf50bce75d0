//! The checked-in JSON Schemas stay current, and real output validates against them.

use std::path::Path;

use crate::cli::{Dir, bin, root};

fn check_current(file: &str, generated: &serde_json::Value) {
    let path = root().join("schemas").join(file);
    let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if std::env::var_os("PERFSPEC_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is stale: run `PERFSPEC_UPDATE_SCHEMAS=1 cargo test --release -- schema` and commit it",
        path.display()
    );
}

fn validator(file: &str) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas").join(file)).unwrap())
            .unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[test]
fn checked_in_schemas_are_current() {
    check_current(
        "results.schema.json",
        &perfspec::report::results::json_schema(),
    );
    check_current("spec.schema.json", &perfspec::spec::schema::spec_schema());
}

#[test]
fn schema_command_prints_the_spec_schema() {
    let out = bin().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, perfspec::spec::schema::spec_schema());
}

#[test]
fn real_results_validate_against_the_results_schema() {
    let spec = r#"
kind = "load"
name = "schema-check"
backend = "testkit"
slo = ["p95(latency) < 1s", "error_rate < 1%", "p50(latency{status=599}) < 1s"]
[target]
url = "http://127.0.0.1:9"
[load]
stages = [{ hold = "10/s", for = "1s" }]
[[journey]]
name = "j"
steps = [{ request = "GET /" }]
"#;
    let d = Dir::new(&[
        ("a.toml", spec),
        (
            "b.toml",
            &spec
                .replace(
                    "backend = \"testkit\"\n",
                    "backend = \"testkit\"\ndescription = \"unavailable\"\n",
                )
                .replace("schema-check", "pending"),
        ),
    ]);
    let out = bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TESTKIT_SECONDS", "0.5")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/results.json")).unwrap())
            .unwrap();
    let v = validator("results.schema.json");
    let errors: Vec<String> = v
        .iter_errors(&results)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // the no-data SLO (a status that never occurs) fails rather than passing silently
    assert_eq!(results["specs"][0]["slos"][2]["reason"], "no-data");
    assert_eq!(results["specs"][0]["status"], "fail");
}

#[test]
fn example_specs_validate_against_the_spec_schema() {
    let v = validator("spec.schema.json");
    for dir in ["specs", "specs/services"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let Some(doc) = as_json(&path) else { continue };
            let errors: Vec<String> = v
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
}

fn as_json(path: &Path) -> Option<serde_json::Value> {
    let src = perfspec::spec::loader::read_source(path).ok()?;
    perfspec::spec::source::Format::from_path(path)?;
    let node = perfspec::spec::loader::parse_source(&src).ok()?;
    Some(node.to_json())
}

//! The quantize backends end to end (feature `quantize`): the real binary on the example specs
//! and the digits data.

use crate::cli::{Dir, bin, root};

fn run_example(spec: &str) -> serde_json::Value {
    let d = Dir::new(&[]);
    let out = bin()
        .arg("run")
        .arg(root().join("specs").join(spec))
        .arg("--out")
        .arg(d.join("out"))
        .arg("-q")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    res["specs"][0].clone()
}

fn scalar(spec: &serde_json::Value, metric: &str, labels: serde_json::Value) -> f64 {
    let scalars = spec["measurements"]["scalars"].as_array().unwrap();
    let s = scalars
        .iter()
        .find(|s| s["metric"] == metric && s["labels"] == labels)
        .unwrap_or_else(|| panic!("no {metric}{labels} in {scalars:?}"));
    s["value"].as_f64().unwrap()
}

#[test]
fn digits_int8_on_flex_passes_with_honest_measurements() {
    let spec = run_example("digits-int8.toml");
    assert_eq!(spec["backend"], "flex");
    let fp32 = scalar(&spec, "accuracy", serde_json::json!({"scheme": "fp32"}));
    assert!(fp32 > 0.9, "trained fp32 accuracy {fp32}");
    let ratio = scalar(&spec, "size_ratio", serde_json::json!({"scheme": "int8"}));
    assert!(ratio > 0.2 && ratio < 0.3, "{ratio}");
    let block = scalar(&spec, "size", serde_json::json!({"scheme": "int8-block32"}));
    let int8 = scalar(&spec, "size", serde_json::json!({"scheme": "int8"}));
    assert!(
        block > int8,
        "per-block scales cost bytes: {block} vs {int8}"
    );
    let sqnr = scalar(
        &spec,
        "sqnr",
        serde_json::json!({"scheme": "int8", "layer": "layers.0", "tensor": "weight"}),
    );
    assert!(sqnr > 30.0, "{sqnr}");
    scalar(
        &spec,
        "sqnr",
        serde_json::json!({"scheme": "int8", "layer": "layers.2", "tensor": "output"}),
    );
    scalar(&spec, "recommended", serde_json::json!({"scheme": "int8"}));
    let notes = spec["measurements"]["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("dequantizes the weights inside every matmul")),
        "{notes:?}"
    );
    let hists = spec["measurements"]["histograms"].as_array().unwrap();
    assert!(hists.iter().any(|h| h["labels"]
        == serde_json::json!({"scheme": "int8", "mode": "quantized", "batch": "64"})));
}

#[test]
fn digits_int8_on_ndarray_passes_with_the_slowdown_as_a_warning() {
    let spec = run_example("digits-int8-ndarray.yaml");
    assert_eq!(spec["backend"], "ndarray");
    let q = scalar(
        &spec,
        "latency_ratio",
        serde_json::json!({"scheme": "int8", "mode": "quantized"}),
    );
    let d = scalar(
        &spec,
        "latency_ratio",
        serde_json::json!({"scheme": "int8", "mode": "dequantize_at_load"}),
    );
    assert!(q > d, "quantized execution {q} vs dequantized at load {d}");
}

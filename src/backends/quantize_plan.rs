//! The plan of a quantize spec (built with or without the `quantize` feature): the model,
//! the dataset — whose CSV header is read here, so that a missing label column or a feature
//! count that does not match the model's input width is a located validation error, not a
//! run-time exit 3 — the candidates (schemes × deployment modes) and the batch sizes they are
//! benchmarked at, with every default resolved.

use std::fmt;
use std::path::Path;

use crate::spec::Spec;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::quantize::{Architecture, DType, Mode, QuantizeDoc, Scheme};
use crate::spec::source::resolve_in;

/// Batch sizes benchmarked when `[bench] batch_sizes` is absent.
pub const DEFAULT_BATCHES: [u32; 2] = [1, 64];
/// Benchmark iterations per candidate and batch size.
pub const DEFAULT_ITERATIONS: u32 = 200;
/// Untimed warm-up iterations.
pub const DEFAULT_WARMUP: u32 = 20;
/// Share of the dataset held out for testing.
pub const DEFAULT_TEST_SPLIT: f64 = 0.2;
/// The CSV's label column.
pub const DEFAULT_LABEL: &str = "label";

#[derive(Debug, Clone, serde::Serialize)]
pub struct QuantizePlan {
    pub model: ModelPlan,
    pub dataset: DatasetPlan,
    /// The fp32 reference first, then every scheme in every mode it is measured in.
    pub candidates: Vec<Candidate>,
    pub batch_sizes: Vec<u32>,
    pub iterations: u32,
    pub warmup: u32,
    /// Latency benchmarks: candidates × batch sizes.
    pub benchmarks: usize,
    /// Accuracy-driven tuning, when `[tune]` asks for it.
    pub tune: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelPlan {
    pub architecture: &'static str,
    pub layers: Vec<u32>,
    /// Features per sample the model takes.
    pub input_width: u64,
    pub classes: u32,
    /// The fp32 weights file, or `None`: trained here.
    pub weights: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetPlan {
    /// `csv PATH` or `npy FEATURES + LABELS`.
    pub source: String,
    /// CSV: the label column and the feature columns its header has.
    pub label: Option<String>,
    pub features: Option<u64>,
    pub test_split: f64,
    pub seed: u64,
    pub scale: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Candidate {
    pub scheme: String,
    pub dtype: String,
    pub block: Option<u32>,
    pub mode: &'static str,
}

pub fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Quantized => "quantized",
        Mode::DequantizeAtLoad => "dequantize_at_load",
    }
}

/// The deployment modes a scheme is measured in: the spec's `modes`, or both for a cast or an
/// integer scheme, or `dequantize_at_load` alone for an fp32 one (nothing to quantize).
pub fn modes(s: &Scheme) -> Vec<Mode> {
    match (&s.modes, s.dtype.value) {
        (Some(m), _) => m.value.clone(),
        (None, DType::Fp32) => vec![Mode::DequantizeAtLoad],
        (None, _) => vec![Mode::Quantized, Mode::DequantizeAtLoad],
    }
}

fn input_width(doc: &QuantizeDoc) -> u64 {
    match (doc.model.architecture, doc.conv()) {
        (Architecture::Cnn, Some(c)) => u64::from(c.input[0]) * u64::from(c.input[1]),
        _ => doc.model.layers.first().map_or(0, |&w| u64::from(w)),
    }
}

/// The plan of a quantize spec; `Err` with located errors when the dataset does not fit.
pub fn plan(spec: &Spec, doc: &QuantizeDoc) -> Result<QuantizePlan, Vec<Diagnostic>> {
    let m = &doc.model;
    let model = ModelPlan {
        architecture: match m.architecture {
            Architecture::Mlp => "mlp",
            Architecture::Cnn => "cnn",
        },
        layers: m.layers.value.clone(),
        input_width: input_width(doc),
        classes: m.layers.last().copied().unwrap_or(0),
        weights: m.weights.as_ref().map(|w| w.value.clone()),
    };
    let dataset = dataset(spec, doc, model.input_width)?;
    let mut candidates = vec![Candidate {
        scheme: "fp32".into(),
        dtype: "fp32".into(),
        block: None,
        mode: "reference",
    }];
    for s in doc.scheme.iter() {
        for mode in modes(s) {
            candidates.push(Candidate {
                scheme: s.name.value.clone(),
                dtype: s.dtype.value.to_string(),
                block: s.block.as_ref().map(|b| b.value),
                mode: mode_str(mode),
            });
        }
    }
    let b = doc.bench.as_ref();
    let batch_sizes = b
        .and_then(|b| b.batch_sizes.as_ref())
        .map_or(DEFAULT_BATCHES.to_vec(), |v| v.value.clone());
    let tune = doc.tune.as_ref().map(|t| {
        // as the tuner reads it: `absolute` wins, else `relative` (default 1% of fp32)
        let c = t.accuracy_criterion.as_ref();
        let mut s = match c.and_then(|c| c.absolute) {
            Some(p) => format!("accuracy drop at most {}pp", p.0),
            None => format!(
                "accuracy drop at most {}% of fp32",
                c.and_then(|c| c.relative).map_or(0.01, |r| r.0) * 100.0
            ),
        };
        if t.sensitivity == Some(true) {
            s.push_str(", per-layer sensitivity");
        }
        if t.mixed_precision == Some(true) {
            s.push_str(", mixed precision");
        }
        s
    });
    Ok(QuantizePlan {
        benchmarks: candidates.len() * batch_sizes.len(),
        model,
        dataset,
        candidates,
        batch_sizes,
        iterations: b
            .and_then(|b| b.iterations.as_ref())
            .map_or(DEFAULT_ITERATIONS, |i| i.value),
        warmup: b.and_then(|b| b.warmup).unwrap_or(DEFAULT_WARMUP),
        tune,
    })
}

fn dataset(spec: &Spec, doc: &QuantizeDoc, width: u64) -> Result<DatasetPlan, Vec<Diagnostic>> {
    let d = &doc.dataset;
    let mut plan = DatasetPlan {
        source: String::new(),
        label: None,
        features: None,
        test_split: d
            .test_split
            .as_ref()
            .map_or(DEFAULT_TEST_SPLIT, |s| s.value.0),
        seed: d.seed.unwrap_or(0),
        scale: d.scale,
    };
    match (&d.csv, &d.npy_features, &d.npy_labels) {
        (Some(csv), _, _) => {
            let label = d.label.clone().unwrap_or_else(|| DEFAULT_LABEL.into());
            let path = resolve_in(&spec.file.folder(), &csv.value);
            let columns = header(&path).map_err(|why| {
                vec![
                    Diagnostic::error("backend::dataset", format!("cannot read the header of the dataset `{}`: {why}", csv.value))
                        .at(&spec.file, csv.span)
                        .label(format!("looked for {}", path.display()))
                        .hint("paths are relative to the spec file; the CSV needs a header row of feature names and a label column"),
                ]
            })?;
            let features = check_columns(spec, doc, &columns, &label, width)?;
            plan.source = format!("csv {}", csv.value);
            plan.label = Some(label);
            plan.features = Some(features);
        }
        (None, Some(x), Some(y)) => {
            plan.source = format!("npy {} + {}", x.value, y.value);
        }
        // the spec's own validation reports a dataset with neither
        _ => plan.source = "none".into(),
    }
    Ok(plan)
}

/// The label column exists and the other columns are as many as the model's input width.
fn check_columns(
    spec: &Spec,
    doc: &QuantizeDoc,
    columns: &[String],
    label: &str,
    width: u64,
) -> Result<u64, Vec<Diagnostic>> {
    let d = &doc.dataset;
    let Some(csv) = &d.csv else {
        return Ok(0);
    };
    if !columns.iter().any(|c| c == label) {
        let shown: Vec<&str> = columns.iter().take(6).map(String::as_str).collect();
        let more = if columns.len() > 6 { ", …" } else { "" };
        let near = crate::spec::diagnostic::did_you_mean(label, columns.iter().map(String::as_str));
        let hint = match near {
            Some(n) => format!("did you mean `label = \"{n}\"`?"),
            None => format!(
                "its {} columns: {}{more}; name the label column with `dataset.label`",
                columns.len(),
                shown.join(", ")
            ),
        };
        return Err(vec![
            Diagnostic::error(
                "backend::dataset",
                format!("the dataset `{}` has no label column `{label}`", csv.value),
            )
            .at(&spec.file, csv.span)
            .label(format!("no column `{label}` in its header"))
            .hint(hint),
        ]);
    }
    let features = (columns.len() - 1) as u64;
    if features == width {
        return Ok(features);
    }
    let m = &doc.model;
    let (span, what) = match (doc.conv(), &m.input_shape) {
        (Some(c), Some(s)) => (
            s.span,
            format!(
                "the cnn's input_shape {}x{} takes {width}",
                c.input[0], c.input[1]
            ),
        ),
        _ => (
            m.layers.span,
            format!("the model's input width `layers[0]` is {width}"),
        ),
    };
    Err(vec![
        Diagnostic::error(
            "backend::dataset",
            format!(
                "the dataset `{}` has {features} feature columns but {what}",
                csv.value
            ),
        )
        .at(&spec.file, span)
        .label(format!("{features} features in the dataset"))
        .hint(format!(
            "every column but `{label}` is a feature: make the model's input take {features} features, or fix the dataset"
        )),
    ])
}

/// The column names of a CSV's header row.
fn header(path: &Path) -> Result<Vec<String>, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let h = rdr.headers().map_err(|e| e.to_string())?;
    if h.is_empty() {
        return Err("the file is empty".into());
    }
    Ok(h.iter().map(|c| c.trim().to_string()).collect())
}

impl fmt::Display for QuantizePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.model;
        let layers: Vec<String> = m.layers.iter().map(u32::to_string).collect();
        writeln!(
            f,
            "model {} [{}], {} inputs, {} classes, weights {}",
            m.architecture,
            layers.join(", "),
            m.input_width,
            m.classes,
            m.weights.as_deref().unwrap_or("trained here")
        )?;
        let d = &self.dataset;
        write!(f, "dataset {}", d.source)?;
        if let (Some(l), Some(n)) = (&d.label, d.features) {
            write!(f, " ({n} features, label `{l}`)")?;
        }
        writeln!(f, ", test split {}, seed {}", d.test_split, d.seed)?;
        let cands: Vec<String> = self
            .candidates
            .iter()
            .map(|c| format!("{}/{}", c.scheme, c.mode))
            .collect();
        writeln!(f, "candidates ({}): {}", cands.len(), cands.join(", "))?;
        let batches: Vec<String> = self.batch_sizes.iter().map(u32::to_string).collect();
        write!(
            f,
            "latency: {} benchmarks (candidates × batch sizes [{}]), {} iterations + {} warm-up each",
            self.benchmarks,
            batches.join(", "),
            self.iterations,
            self.warmup
        )?;
        if let Some(t) = &self.tune {
            write!(f, "\ntune: {t}")?;
        }
        Ok(())
    }
}

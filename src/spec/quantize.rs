//! `kind = "quantize"`: quantization schemes applied to a model, measured for size, accuracy
//! and latency against fp32 on a dataset.

use std::collections::BTreeMap;

use super::decode::{Ctx, Duration, Points, Ratio, spec_table, word_enum};
use super::model::{SloList, SpecName};
use super::source::Spanned;

spec_table! {
    /// A quantize spec file.
    pub struct QuantizeDoc {
        kind: req String,
        name: req SpecName,
        description: opt String,
        /// burn CPU backend: `flex` (default) or `ndarray`.
        backend: opt Spanned<String>,
        max_duration: opt Duration,
        slo: opt SloList,
        model: req Model,
        dataset: req Dataset,
        /// Training of the fallback model when `model.weights` is absent.
        train: opt Train,
        scheme: req Spanned<Vec<Scheme>>,
        bench: opt Bench,
        tune: opt Tune,
    }
}

word_enum! {
    /// Model architectures perfspec builds.
    pub enum Architecture { Mlp = "mlp", Cnn = "cnn" }
}

word_enum! {
    /// Activation functions.
    pub enum Activation { Relu = "relu", Gelu = "gelu", Tanh = "tanh", Sigmoid = "sigmoid" }
}

spec_table! {
    /// The model.
    pub struct Model {
        architecture: req Architecture,
        /// Layer widths from input to output, e.g. `[64, 128, 64, 10]`.
        layers: req Spanned<Vec<u32>>,
        activation: opt Activation,
        /// CNN: channels of each conv layer; the input is `input_shape`.
        channels: opt Vec<u32>,
        /// CNN: square kernel size.
        kernel: opt u32,
        /// CNN: `[height, width]` of one sample.
        input_shape: opt Spanned<Vec<u32>>,
        /// fp32 weights: `.safetensors`, `.pt`/`.pth` or `.bpk` (relative to the spec).
        weights: opt Spanned<String>,
        /// Map perfspec's tensor names (`layers.0.weight`) to the file's.
        tensor_names: opt BTreeMap<String, String>,
    }
}

spec_table! {
    /// The dataset: a CSV (features + label) or `.npy` arrays.
    pub struct Dataset {
        csv: opt Spanned<String>,
        /// Label column of the CSV (default `label`).
        label: opt String,
        npy_features: opt Spanned<String>,
        npy_labels: opt Spanned<String>,
        test_split: opt Spanned<Ratio>,
        seed: opt u64,
        /// Divide features by this value (e.g. 16 for the 8×8 digits).
        scale: opt f64,
    }
}

spec_table! {
    /// Training of the fallback model.
    pub struct Train {
        epochs: opt Spanned<u32>,
        learning_rate: opt f64,
        batch_size: opt Spanned<u32>,
        seed: opt u64,
    }
}

word_enum! {
    /// Number formats.
    pub enum DType {
        Fp32 = "fp32", Fp16 = "fp16", Bf16 = "bf16", Int8 = "int8", Int4 = "int4", Ternary = "ternary", Fp8 = "fp8"
    }
}

word_enum! {
    /// Quantization granularity.
    pub enum Granularity { Tensor = "tensor", Block = "block" }
}

word_enum! {
    /// Deployment modes measured separately.
    pub enum Mode { Quantized = "quantized", DequantizeAtLoad = "dequantize_at_load" }
}

spec_table! {
    /// One quantization scheme.
    pub struct Scheme {
        name: req Spanned<String>,
        dtype: req Spanned<DType>,
        granularity: opt Granularity,
        /// Block size for per-block quantization (must divide every weight tensor).
        block: opt Spanned<u32>,
        /// Quantize biases too (default: weights only).
        include_bias: opt bool,
        /// Calibration: `minmax` (the only one so far).
        calibration: opt Spanned<String>,
        /// Modes to measure (default both for integer schemes).
        modes: opt Vec<Mode>,
    }
}

spec_table! {
    /// Latency benchmark settings.
    pub struct Bench {
        batch_sizes: opt Spanned<Vec<u32>>,
        iterations: opt Spanned<u32>,
        warmup: opt u32,
    }
}

spec_table! {
    /// Accuracy-driven tuning, as Neural Compressor users expect.
    pub struct Tune {
        accuracy_criterion: opt Criterion,
        objective: opt Objective,
        /// Quantize one layer at a time to rank sensitivity.
        sensitivity: opt bool,
        /// Keep the most sensitive layers in fp32 until the criterion holds.
        mixed_precision: opt bool,
    }
}

spec_table! {
    /// Exactly one of `relative` (a ratio of fp32 accuracy) or `absolute` (points).
    pub struct Criterion {
        relative: opt Ratio,
        absolute: opt Points,
    }
}

word_enum! {
    /// What tuning optimizes among schemes that meet the criterion.
    pub enum Objective { Smallest = "smallest", Fastest = "fastest" }
}

impl QuantizeDoc {
    /// Weight tensors `(name, elements)` of the declared MLP, input → output.
    pub fn weight_shapes(&self) -> Vec<(String, u64)> {
        let layers = &self.model.layers.value;
        layers
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                (
                    format!("layers.{i}.weight"),
                    u64::from(w[0]) * u64::from(w[1]),
                )
            })
            .collect()
    }

    pub fn validate(&self, cx: &mut Ctx) {
        let m = &self.model;
        if m.layers.len() < 2 || m.layers.contains(&0) {
            cx.error::<()>(
                m.layers.span,
                "spec::model",
                "`layers` needs at least an input and an output width, all positive",
            );
        }
        if m.architecture == Architecture::Cnn {
            if m.channels.is_none() || m.input_shape.is_none() {
                cx.error::<()>(
                    m.layers.span,
                    "spec::model",
                    "a cnn needs `channels` and `input_shape`",
                );
            }
            if let Some(s) = &m.input_shape
                && s.len() != 2
            {
                cx.error::<()>(s.span, "spec::model", "`input_shape` is `[height, width]`");
            }
        }
        if let Some(w) = &m.weights {
            let ok = [".safetensors", ".pt", ".pth", ".bpk"]
                .iter()
                .any(|e| w.ends_with(e));
            if !ok {
                cx.error::<()>(
                    w.span,
                    "spec::model",
                    "weights must be a .safetensors, .pt/.pth or .bpk file",
                );
            }
        }
        let d = &self.dataset;
        let sources = [d.csv.is_some(), d.npy_features.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if sources != 1 {
            cx.error::<()>(
                self.name.span,
                "spec::dataset",
                "the dataset needs exactly one of `csv` or `npy_features` (+ `npy_labels`)",
            );
        }
        if d.npy_features.is_some() != d.npy_labels.is_some() {
            cx.error::<()>(
                self.name.span,
                "spec::dataset",
                "`npy_features` and `npy_labels` go together",
            );
        }
        if let Some(s) = &d.test_split
            && !(s.value.0 > 0.0 && s.value.0 < 1.0)
        {
            cx.error::<()>(
                s.span,
                "spec::range",
                "`test_split` must be between 0 and 1 (exclusive)",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        if self.scheme.is_empty() {
            cx.error::<()>(
                self.scheme.span,
                "spec::scheme",
                "at least one `[[scheme]]` is needed",
            );
        }
        let shapes = self.weight_shapes();
        for s in self.scheme.iter() {
            if !names.insert(s.name.value.clone()) {
                cx.error::<()>(
                    s.name.span,
                    "spec::scheme",
                    format!("duplicate scheme name `{}`", s.name.value),
                );
                cx.label("used before");
                cx.hint(
                    "scheme names label measurements (`size_ratio{scheme=…}`): make them unique",
                );
            }
            if s.name.value == "fp32" && s.dtype.value != DType::Fp32 {
                cx.error::<()>(
                    s.name.span,
                    "spec::scheme",
                    "`fp32` names the reference; pick another name",
                );
            }
            let block = s.granularity == Some(Granularity::Block) || s.block.is_some();
            match (block, &s.block) {
                (true, None) => {
                    cx.error::<()>(
                        s.name.span,
                        "spec::scheme",
                        "block granularity needs `block = N`",
                    );
                }
                (true, Some(b)) => {
                    if b.value == 0 {
                        cx.error::<()>(b.span, "spec::range", "the block size must be at least 1");
                    } else if let Some((name, n)) =
                        shapes.iter().find(|(_, n)| n % u64::from(b.value) != 0)
                    {
                        cx.error::<()>(
                            b.span,
                            "spec::scheme",
                            format!(
                                "block {} does not divide weight `{name}` ({n} elements)",
                                b.value
                            ),
                        );
                        cx.label(format!("{n} is not a multiple of {}", b.value));
                        cx.hint(
                            "pick a block size that divides every weight tensor's element count",
                        );
                    }
                }
                _ => {}
            }
            if let Some(c) = &s.calibration
                && c.value != "minmax"
            {
                cx.error::<()>(
                    c.span,
                    "spec::scheme",
                    format!("unknown calibration `{}`", c.value),
                );
                cx.hint("the only calibration is `minmax`");
            }
            if block && !matches!(s.dtype.value, DType::Int8 | DType::Int4) {
                cx.error::<()>(
                    s.dtype.span,
                    "spec::scheme",
                    format!("{} has no per-block form", s.dtype.value),
                );
            }
        }
        if let Some(t) = &self.tune
            && let Some(c) = &t.accuracy_criterion
            && c.relative.is_some() == c.absolute.is_some()
        {
            cx.error::<()>(
                self.name.span,
                "spec::tune",
                "`accuracy_criterion` needs exactly one of `relative` or `absolute`",
            );
        }
        if let Some(b) = &self.bench {
            if let Some(bs) = &b.batch_sizes
                && (bs.is_empty() || bs.contains(&0))
            {
                cx.error::<()>(bs.span, "spec::range", "batch sizes are positive");
            }
            if let Some(i) = &b.iterations
                && i.value == 0
            {
                cx.error::<()>(i.span, "spec::range", "`iterations` must be at least 1");
            }
        }
    }
}

//! `kind = "quantize"`: quantization schemes applied to a model, measured for size, accuracy
//! and latency against fp32 on a dataset.

use std::collections::BTreeMap;

use super::decode::{Ctx, Duration, Points, Ratio, spec_table, word_enum};
use super::model::{RepeatCount, SloList, SpecName};
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
        /// Run the spec this many times (1 to 100, default 1): a fresh backend run each time; SLOs are judged on the pooled data and the report shows the spread.
        repeat: opt RepeatCount,
        /// With `repeat`: a different seed in every repeat (the spec's seed + k − 1) instead of the same one.
        reseed: opt bool,
        slo: opt SloList,
        model: req Model,
        dataset: req Spanned<Dataset>,
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
        /// Layer widths from input to output, e.g. `[64, 128, 64, 10]`. For a CNN, the dense
        /// head after flattening: `layers[0]` is the flattened conv output (channels × height ×
        /// width after the last conv block).
        layers: req Spanned<Vec<u32>>,
        activation: opt Activation,
        /// CNN: output channels of each conv layer (the input has one channel). Each conv block
        /// is a `kernel`×`kernel` convolution with "same" padding and stride 1, the activation
        /// and, with `pool`, a 2×2 max pool (stride 2, floor).
        channels: opt Spanned<Vec<u32>>,
        /// CNN: square kernel size (default 3).
        kernel: opt Spanned<u32>,
        /// CNN: `[height, width]` of one sample (its features in row-major order).
        input_shape: opt Spanned<Vec<u32>>,
        /// CNN: a 2×2 max pool after each conv layer (default true).
        pool: opt bool,
        /// fp32 weights: `.safetensors`, `.pt`/`.pth` or `.bpk` (relative to the spec).
        weights: opt Spanned<String>,
        /// Map perfspec's tensor names (`layers.0.weight`) to the file's.
        tensor_names: opt Spanned<BTreeMap<String, String>>,
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
        learning_rate: opt Spanned<f64>,
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
        granularity: opt Spanned<Granularity>,
        /// Block size for per-block quantization: this many consecutive weights of one output
        /// along the input (reduction) dimension, in PyTorch's row-major order. It must divide
        /// every dense layer's input width; for a conv weight `[out, in, k, k]` it must divide
        /// `k`, or be `k`·m with m dividing `k`, or `k`·`k`·m with m dividing `in`.
        block: opt Spanned<u32>,
        /// Quantize biases too (default: weights only).
        include_bias: opt bool,
        /// Calibration: `minmax` (the only one so far).
        calibration: opt Spanned<String>,
        /// Modes to measure (default both for integer schemes).
        modes: opt Spanned<Vec<Mode>>,
        /// Quantization-aware training: fine-tune a copy of the fp32 model with this scheme's
        /// weights fake-quantized (straight-through estimator) before exporting it.
        qat: opt Spanned<Qat>,
    }
}

spec_table! {
    /// Quantization-aware training of one scheme, on the training part of the dataset.
    pub struct Qat {
        /// Fine-tuning epochs (default 3).
        epochs: opt Spanned<u32>,
        /// Adam's learning rate (default 0.001).
        learning_rate: opt Spanned<f64>,
        /// Rows per step (default `train.batch_size`, else 64).
        batch_size: opt Spanned<u32>,
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
        accuracy_criterion: opt Spanned<Criterion>,
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

/// The conv stack of a CNN, as perfspec builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[height, width]` of one sample.
    pub input: [u32; 2],
    /// Output channels of each conv layer.
    pub channels: Vec<u32>,
    pub kernel: u32,
    pub pool: bool,
}

impl ConvGeometry {
    /// `[channels, height, width]` after the last conv block.
    pub fn output(&self) -> [u32; 3] {
        let n = if self.pool { self.channels.len() } else { 0 };
        let shrink = |d: u32| d.checked_shr(n as u32).unwrap_or(0);
        [
            *self.channels.last().unwrap_or(&1),
            shrink(self.input[0]),
            shrink(self.input[1]),
        ]
    }

    /// Elements of the flattened conv output: what `layers[0]` must be.
    pub fn flattened(&self) -> u64 {
        self.output().iter().map(|&d| u64::from(d)).product()
    }
}

/// burn's block shape for `block` consecutive weights of one output along the reduction
/// dimension of a weight in burn's layout (`[d_in, d_out]` dense, `[out, in, k, k]` conv), or
/// `None` when no rectangular block of that many weights exists. Block sizes are right-aligned
/// over the tensor's dimensions.
pub fn block_dims(shape: &[u64], block: u64) -> Option<Vec<u64>> {
    if block == 0 {
        return None;
    }
    match *shape {
        [d_in, _] => d_in.is_multiple_of(block).then(|| vec![block, 1]),
        [_, c_in, kh, kw] => {
            if kw.is_multiple_of(block) {
                Some(vec![block])
            } else if block.is_multiple_of(kw) && kh.is_multiple_of(block / kw) {
                Some(vec![block / kw, kw])
            } else if block.is_multiple_of(kh * kw) && c_in.is_multiple_of(block / (kh * kw)) {
                Some(vec![block / (kh * kw), kh, kw])
            } else {
                None
            }
        }
        _ => None,
    }
}

impl QuantizeDoc {
    /// The conv stack when the architecture is a CNN with its keys present.
    pub fn conv(&self) -> Option<ConvGeometry> {
        let m = &self.model;
        if m.architecture != Architecture::Cnn {
            return None;
        }
        let s = m.input_shape.as_ref().filter(|s| s.len() == 2)?;
        Some(ConvGeometry {
            input: [s[0], s[1]],
            channels: m.channels.as_ref()?.value.clone(),
            kernel: m.kernel.as_ref().map_or(3, |k| k.value),
            pool: m.pool.unwrap_or(true),
        })
    }

    /// Weight tensors `(name, shape in burn's layout)`, input → output: the conv layers
    /// (`convs.{i}.weight`, `[out, in, k, k]`), then the dense layers (`layers.{i}.weight`,
    /// `[d_in, d_out]`).
    pub fn weight_tensors(&self) -> Vec<(String, Vec<u64>)> {
        let mut out = Vec::new();
        if let Some(c) = self.conv() {
            let k = u64::from(c.kernel);
            let mut c_in = 1u64;
            for (i, &ch) in c.channels.iter().enumerate() {
                out.push((format!("convs.{i}.weight"), vec![u64::from(ch), c_in, k, k]));
                c_in = u64::from(ch);
            }
        }
        let layers = &self.model.layers.value;
        out.extend(layers.windows(2).enumerate().map(|(i, w)| {
            (
                format!("layers.{i}.weight"),
                vec![u64::from(w[0]), u64::from(w[1])],
            )
        }));
        out
    }

    fn validate_cnn(&self, cx: &mut Ctx) {
        let m = &self.model;
        let (Some(channels), Some(shape)) = (&m.channels, &m.input_shape) else {
            cx.error::<()>(
                m.layers.span,
                "spec::model",
                "a cnn needs `channels` and `input_shape`",
            );
            cx.hint("e.g. `channels = [8, 16]`, `input_shape = [8, 8]` (one input channel)");
            return;
        };
        if channels.is_empty() || channels.contains(&0) {
            cx.error::<()>(
                channels.span,
                "spec::model",
                "`channels` lists at least one conv layer, all positive",
            );
            return;
        }
        if shape.len() != 2 || shape.contains(&0) {
            cx.error::<()>(
                shape.span,
                "spec::model",
                "`input_shape` is `[height, width]`, both positive",
            );
            return;
        }
        if let Some(k) = &m.kernel
            && !(1..=shape[0].min(shape[1])).contains(&k.value)
        {
            cx.error::<()>(
                k.span,
                "spec::range",
                format!(
                    "the kernel must be between 1 and the input's smaller side ({})",
                    shape[0].min(shape[1])
                ),
            );
            return;
        }
        let Some(g) = self.conv() else { return };
        let [c, h, w] = g.output();
        if h == 0 || w == 0 {
            cx.error::<()>(
                channels.span,
                "spec::model",
                format!(
                    "{} conv blocks with 2x2 max pooling shrink the {}x{} input to nothing",
                    g.channels.len(),
                    g.input[0],
                    g.input[1]
                ),
            );
            cx.hint("use fewer conv layers, a larger `input_shape` or `pool = false`");
            return;
        }
        if let Some(&first) = m.layers.first()
            && u64::from(first) != g.flattened()
        {
            cx.error::<()>(
                m.layers.span,
                "spec::model",
                format!(
                    "the dense head starts at {first} but the conv stack flattens to {c}x{h}x{w} = {}",
                    g.flattened()
                ),
            );
            cx.label(format!("`layers[0]` must be {}", g.flattened()));
            cx.hint("for a cnn, `layers` is the dense head after flattening: its first width is channels × height × width after the last conv block");
        }
    }

    /// Cross-field checks the table decoders cannot express, section by section in the order
    /// their diagnostics are reported.
    pub fn validate(&self, cx: &mut Ctx) {
        self.validate_model(cx);
        self.validate_train(cx);
        self.validate_tensor_names(cx);
        self.validate_dataset(cx);
        self.validate_schemes(cx);
        self.validate_tune(cx);
        self.validate_bench(cx);
    }

    /// `layers`, the conv keys (checked by [`Self::validate_cnn`] for a cnn, refused for an
    /// mlp) and the `weights` file's extension.
    fn validate_model(&self, cx: &mut Ctx) {
        let m = &self.model;
        if m.layers.len() < 2 || m.layers.contains(&0) {
            cx.error::<()>(
                m.layers.span,
                "spec::model",
                "`layers` needs at least an input and an output width, all positive",
            );
        }
        if m.architecture == Architecture::Cnn {
            self.validate_cnn(cx);
        } else {
            let cnn_keys = [
                m.channels.as_ref().map(|c| c.span),
                m.kernel.as_ref().map(|k| k.span),
                m.input_shape.as_ref().map(|s| s.span),
            ];
            if let Some(span) = cnn_keys.into_iter().flatten().next() {
                cx.error::<()>(
                    span,
                    "spec::model",
                    "`channels`, `kernel` and `input_shape` describe a cnn",
                );
                cx.hint("set `architecture = \"cnn\"` or remove the conv keys");
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
    }

    /// `[train]`: positive epochs, batch size and learning rate.
    fn validate_train(&self, cx: &mut Ctx) {
        let Some(t) = &self.train else { return };
        check_training(
            t.epochs.as_ref(),
            t.batch_size.as_ref(),
            t.learning_rate.as_ref(),
            cx,
        );
    }

    /// `model.tensor_names`: every key one of this model's tensors, and a `weights` file
    /// (not a burnpack) whose names it maps.
    fn validate_tensor_names(&self, cx: &mut Ctx) {
        let m = &self.model;
        let Some(names) = &m.tensor_names else { return };
        let ours: Vec<String> = self
            .weight_tensors()
            .into_iter()
            .flat_map(|(w, _)| {
                let b = w.replace(".weight", ".bias");
                [w, b]
            })
            .collect();
        for key in names.keys() {
            if !ours.contains(key) {
                cx.error::<()>(
                    names.span,
                    "spec::model",
                    format!("`tensor_names` maps `{key}`, which this model does not have"),
                );
                let near = ours
                    .iter()
                    .min_by_key(|o| strsim::levenshtein(o, key))
                    .cloned()
                    .unwrap_or_default();
                cx.hint(format!(
                    "keys are perfspec's tensor names ({} … {}); did you mean `{near}`?",
                    ours.first().cloned().unwrap_or_default(),
                    ours.last().cloned().unwrap_or_default()
                ));
            }
        }
        if m.weights.as_ref().is_some_and(|w| w.ends_with(".bpk")) {
            cx.error::<()>(
                names.span,
                "spec::model",
                "`tensor_names` does not apply to a burnpack (.bpk) file, which perfspec wrote with its own names",
            );
        } else if m.weights.is_none() {
            cx.error::<()>(
                names.span,
                "spec::model",
                "`tensor_names` maps the names of a `weights` file, and no `weights` are given",
            );
        }
    }

    /// `[dataset]`: exactly one source, npy arrays in pairs, a split strictly inside (0, 1).
    fn validate_dataset(&self, cx: &mut Ctx) {
        let d = &self.dataset;
        let sources = [d.csv.is_some(), d.npy_features.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if sources != 1 {
            cx.error::<()>(
                d.span,
                "spec::dataset",
                "the dataset needs exactly one of `csv` or `npy_features` (+ `npy_labels`)",
            );
        }
        if d.npy_features.is_some() != d.npy_labels.is_some() {
            cx.error::<()>(
                d.span,
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
    }

    /// At least one `[[scheme]]`; each checked by [`Self::validate_scheme`].
    fn validate_schemes(&self, cx: &mut Ctx) {
        let mut names = std::collections::BTreeSet::new();
        if self.scheme.is_empty() {
            cx.error::<()>(
                self.scheme.span,
                "spec::scheme",
                "at least one `[[scheme]]` is needed",
            );
        }
        let shapes = self.weight_tensors();
        for s in self.scheme.iter() {
            self.validate_scheme(s, &mut names, &shapes, cx);
        }
    }

    /// One scheme: its name (unique among `seen`), granularity, modes, block size (against
    /// the weight `shapes`), calibration and dtype.
    fn validate_scheme(
        &self,
        s: &Scheme,
        seen: &mut std::collections::BTreeSet<String>,
        shapes: &[(String, Vec<u64>)],
        cx: &mut Ctx,
    ) {
        self.validate_scheme_name(s, seen, cx);
        if let (Some(g), Some(_)) = (&s.granularity, &s.block)
            && g.value == Granularity::Tensor
        {
            cx.error::<()>(
                g.span,
                "spec::scheme",
                "`granularity = \"tensor\"` contradicts `block`",
            );
            cx.hint("remove `block` for one scale per tensor, or set `granularity = \"block\"`");
        }
        if let Some(modes) = &s.modes {
            if modes.is_empty() {
                cx.error::<()>(
                    modes.span,
                    "spec::scheme",
                    "`modes` lists no mode: name `quantized`, `dequantize_at_load` or both",
                );
            } else if modes
                .iter()
                .enumerate()
                .any(|(i, m)| modes[..i].contains(m))
            {
                cx.error::<()>(modes.span, "spec::scheme", "`modes` lists a mode twice");
            }
        }
        let block = s.granularity.as_ref().map(|g| g.value) == Some(Granularity::Block)
            || s.block.is_some();
        if block {
            match &s.block {
                None => {
                    cx.error::<()>(
                        s.name.span,
                        "spec::scheme",
                        "block granularity needs `block = N`",
                    );
                }
                Some(b) => check_block_size(b, shapes, cx),
            }
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
        if let Some(q) = &s.qat {
            if !matches!(s.dtype.value, DType::Int8 | DType::Int4 | DType::Ternary) {
                cx.error::<()>(
                    q.span,
                    "spec::scheme",
                    format!(
                        "`qat` fine-tunes for an integer scheme, and {} is none",
                        s.dtype.value
                    ),
                );
                cx.hint("use `qat` on an int8, int4 or ternary scheme, or remove it");
            }
            check_training(
                q.epochs.as_ref(),
                q.batch_size.as_ref(),
                q.learning_rate.as_ref(),
                cx,
            );
        }
    }

    /// A scheme name that is new among `seen`, not `fp32` and not the name mixed precision
    /// gives its variant of another scheme.
    fn validate_scheme_name(
        &self,
        s: &Scheme,
        seen: &mut std::collections::BTreeSet<String>,
        cx: &mut Ctx,
    ) {
        if !seen.insert(s.name.value.clone()) {
            cx.error::<()>(
                s.name.span,
                "spec::scheme",
                format!("duplicate scheme name `{}`", s.name.value),
            );
            cx.label("used before");
            cx.hint("scheme names label measurements (`size_ratio{scheme=…}`): make them unique");
        }
        if s.name.value == "fp32" {
            cx.error::<()>(
                s.name.span,
                "spec::scheme",
                "`fp32` names the reference; pick another name",
            );
            cx.hint("the fp32 reference is always measured: it needs no scheme");
        }
        let mixed = self
            .tune
            .as_ref()
            .is_some_and(|t| t.mixed_precision == Some(true));
        if mixed
            && let Some(base) = s.name.value.strip_suffix("-mixed")
            && self.scheme.iter().any(|o| o.name.value == base)
        {
            cx.error::<()>(
                s.name.span,
                "spec::scheme",
                format!(
                    "`{}` is the name mixed precision gives its variant of `{base}`",
                    s.name.value
                ),
            );
            cx.hint("pick another name for this scheme");
        }
    }

    /// `[tune]`: an accuracy criterion with exactly one of `relative` or `absolute`.
    fn validate_tune(&self, cx: &mut Ctx) {
        if let Some(t) = &self.tune
            && let Some(c) = &t.accuracy_criterion
            && c.relative.is_some() == c.absolute.is_some()
        {
            cx.error::<()>(
                c.span,
                "spec::tune",
                "`accuracy_criterion` needs exactly one of `relative` or `absolute`",
            );
        }
    }

    /// `[bench]`: positive batch sizes and iterations.
    fn validate_bench(&self, cx: &mut Ctx) {
        let Some(b) = &self.bench else { return };
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

/// A block size of at least 1 that fits every weight tensor in `shapes` (see [`block_dims`]),
/// else a located error naming the first weight it does not fit and why.
/// Positive `epochs`, `batch_size` and `learning_rate` (of `[train]` or a scheme's `qat`).
fn check_training(
    epochs: Option<&Spanned<u32>>,
    batch_size: Option<&Spanned<u32>>,
    learning_rate: Option<&Spanned<f64>>,
    cx: &mut Ctx,
) {
    if let Some(e) = epochs
        && e.value == 0
    {
        cx.error::<()>(e.span, "spec::range", "`epochs` must be at least 1");
    }
    if let Some(b) = batch_size
        && b.value == 0
    {
        cx.error::<()>(b.span, "spec::range", "`batch_size` must be at least 1");
    }
    if let Some(lr) = learning_rate
        && !(lr.value.is_finite() && lr.value > 0.0)
    {
        cx.error::<()>(
            lr.span,
            "spec::range",
            "`learning_rate` must be a positive number, e.g. 0.01",
        );
    }
}

fn check_block_size(b: &Spanned<u32>, shapes: &[(String, Vec<u64>)], cx: &mut Ctx) {
    if b.value == 0 {
        cx.error::<()>(b.span, "spec::range", "the block size must be at least 1");
        return;
    }
    let Some((name, shape)) = shapes
        .iter()
        .find(|(_, shape)| block_dims(shape, u64::from(b.value)).is_none())
    else {
        return;
    };
    let (why, hint) = if let [d_in, _] = shape[..] {
        (
            format!("{} does not divide the input width {d_in}", b.value),
            "burn quantizes blocks along each weight's input dimension: pick a block size that divides every input width",
        )
    } else {
        (
            format!(
                "{} is not a run of whole rows of the {}x{}x{} inputs of each output",
                b.value, shape[1], shape[2], shape[3]
            ),
            "a conv block must divide the kernel width k, or be k·m with m dividing k, or k·k·m with m dividing the input channels",
        )
    };
    cx.error::<()>(
        b.span,
        "spec::scheme",
        format!("block {} does not fit weight `{name}`", b.value),
    );
    cx.label(why);
    cx.hint(hint);
}

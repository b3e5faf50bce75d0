//! The declared model built as burn modules at run time: an optional conv stack (a CNN) and a
//! dense head (an MLP is the head alone), whose fp32 weights are either loaded (safetensors,
//! PyTorch, burnpack) or trained here on the spec's dataset with a fixed seed (Adam, autodiff).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, PaddingConfig2d, conv::Conv2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::data::Dataset;
use super::guard;
use crate::spec::quantize::Activation;

/// The network: `convs.{i}` are `Conv2d` modules ("same" padding, stride 1, each followed by
/// the activation and, with `pool`, a 2×2 max pool), flattened in channel, row, column order
/// (PyTorch's `flatten(1)`), then `layers.{i}` are `Linear` modules with the activation between
/// them. Without convs it is a plain MLP.
#[derive(Module, Debug)]
pub struct Net {
    pub convs: Vec<Conv2d>,
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Act,
    #[module(skip)]
    pub conv: Option<ConvShape>,
}

/// How a CNN's input is laid out and pooled (not a burn module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// `[height, width]` of one sample, one channel.
    pub input: [usize; 2],
    pub pool: bool,
}

/// The architecture to build: the dense head's widths and, for a CNN, its conv stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arch {
    /// Dense head widths; for a CNN `widths[0]` is the flattened conv output.
    pub widths: Vec<usize>,
    pub activation: Act,
    pub conv: Option<ConvArch>,
}

/// A CNN's conv stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvArch {
    pub shape: ConvShape,
    pub channels: Vec<usize>,
    pub kernel: usize,
}

impl Arch {
    /// A plain MLP.
    pub fn mlp(widths: &[usize], activation: Act) -> Arch {
        Arch {
            widths: widths.to_vec(),
            activation,
            conv: None,
        }
    }

    /// Features per sample the model takes.
    pub fn input_dim(&self) -> usize {
        match &self.conv {
            Some(c) => c.shape.input[0] * c.shape.input[1],
            None => self.widths.first().copied().unwrap_or(0),
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.widths.last().copied().unwrap_or(0)
    }
}

/// The activation between layers (a copy of the spec's, which is no burn module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Relu,
    Gelu,
    Tanh,
    Sigmoid,
}

impl From<Activation> for Act {
    fn from(a: Activation) -> Act {
        match a {
            Activation::Relu => Act::Relu,
            Activation::Gelu => Act::Gelu,
            Activation::Tanh => Act::Tanh,
            Activation::Sigmoid => Act::Sigmoid,
        }
    }
}

impl Act {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Relu => activation::relu(x),
            Act::Gelu => activation::gelu(x),
            Act::Tanh => activation::tanh(x),
            Act::Sigmoid => activation::sigmoid(x),
        }
    }
}

impl Net {
    /// Logits for a `[batch, features]` input.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_layers(x)
            .pop()
            .expect("a model has at least one dense layer")
    }

    /// The output of every layer, conv layers first (after activation and pooling, flattened
    /// to `[batch, c·h·w]`), then dense layers (after the activation, except the last).
    pub fn forward_layers(&self, mut x: Tensor<2>) -> Vec<Tensor<2>> {
        let n = self.layers.len();
        let mut outs = Vec::with_capacity(self.convs.len() + n);
        if let Some(shape) = self.conv {
            let [batch, _] = x.dims();
            let mut t: Tensor<4> = x.reshape([batch, 1, shape.input[0], shape.input[1]]);
            for c in &self.convs {
                t = self.activation.apply(c.forward(t));
                if shape.pool {
                    t = max_pool2d(t, MaxPoolOptions::new([2, 2]));
                }
                outs.push(t.clone().flatten(1, 3));
            }
            x = t.flatten(1, 3);
        }
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i + 1 < n {
                x = self.activation.apply(x);
            }
            outs.push(x.clone());
        }
        outs
    }
}

/// Plain fp32 weights of one conv layer: `weight` is `[c_out, c_in, k, k]` row-major (burn's
/// and PyTorch's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Plain fp32 weights of one layer: `weight` is `[d_in, d_out]` row-major (burn's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The fp32 reference weights, independent of any device.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Conv layers (empty for an MLP).
    pub convs: Vec<ConvWeights>,
    pub layers: Vec<LayerWeights>,
    pub activation: Act,
    pub conv: Option<ConvShape>,
}

/// One quantizable layer's tensors, as the runner reports them.
pub struct LayerTensors<'a> {
    /// `convs.{i}` or `layers.{i}`.
    pub name: String,
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

impl Weights {
    /// Uniform `U(-k, k)`, `k = 1/sqrt(fan_in)` (burn's and PyTorch's default), from `seed`.
    pub fn init(arch: &Arch, seed: u64) -> Weights {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |n: usize, fan_in: usize| {
            let k = 1.0 / (fan_in as f32).sqrt();
            (0..n)
                .map(|_| rng.random_range(-k..k))
                .collect::<Vec<f32>>()
        };
        let mut convs = Vec::new();
        if let Some(c) = &arch.conv {
            let mut c_in = 1;
            for &c_out in &c.channels {
                let fan_in = c_in * c.kernel * c.kernel;
                let weight = draw(c_out * fan_in, fan_in);
                let bias = draw(c_out, fan_in);
                convs.push(ConvWeights {
                    c_in,
                    c_out,
                    kernel: c.kernel,
                    weight,
                    bias,
                });
                c_in = c_out;
            }
        }
        let layers = arch
            .widths
            .windows(2)
            .map(|w| {
                let weight = draw(w[0] * w[1], w[0]);
                let bias = draw(w[1], w[0]);
                LayerWeights {
                    d_in: w[0],
                    d_out: w[1],
                    weight,
                    bias,
                }
            })
            .collect();
        Weights {
            convs,
            layers,
            activation: arch.activation,
            conv: arch.conv.as_ref().map(|c| c.shape),
        }
    }

    /// Every quantizable layer, conv layers first: the unit of per-layer SQNR, sensitivity
    /// and mixed precision (indices into this list are [`Plan::fp32_layers`]).
    ///
    /// [`Plan::fp32_layers`]: super::schemes::Plan::fp32_layers
    pub fn tensors(&self) -> Vec<LayerTensors<'_>> {
        let convs = self.convs.iter().enumerate().map(|(i, c)| LayerTensors {
            name: format!("convs.{i}"),
            weight: &c.weight,
            bias: &c.bias,
        });
        let dense = self.layers.iter().enumerate().map(|(i, l)| LayerTensors {
            name: format!("layers.{i}"),
            weight: &l.weight,
            bias: &l.bias,
        });
        convs.chain(dense).collect()
    }

    /// Number of quantizable layers.
    pub fn layer_count(&self) -> usize {
        self.convs.len() + self.layers.len()
    }

    /// Build the module on `device` (fp32).
    pub fn build(&self, device: &Device) -> Net {
        let convs = self
            .convs
            .iter()
            .map(|c| Conv2d {
                weight: Param::from_data(
                    TensorData::new(c.weight.clone(), [c.c_out, c.c_in, c.kernel, c.kernel]),
                    device,
                ),
                bias: Some(Param::from_data(
                    TensorData::new(c.bias.clone(), [c.c_out]),
                    device,
                )),
                stride: [1, 1],
                kernel_size: [c.kernel, c.kernel],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Same,
            })
            .collect();
        let layers = self
            .layers
            .iter()
            .map(|l| Linear {
                weight: Param::from_data(
                    TensorData::new(l.weight.clone(), [l.d_in, l.d_out]),
                    device,
                ),
                bias: Some(Param::from_data(
                    TensorData::new(l.bias.clone(), [l.d_out]),
                    device,
                )),
            })
            .collect();
        Net {
            convs,
            layers,
            activation: self.activation,
            conv: self.conv,
        }
    }

    /// Read the weights back from a module (dequantizing and casting to f32 as needed).
    pub fn from_module(m: &Net) -> Result<Weights, String> {
        let convs = m
            .convs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = c.weight.val().dequantize();
                let [c_out, c_in, kernel, _] = w.dims();
                let weight = to_f32(w).map_err(|e| format!("read convs.{i}.weight: {e}"))?;
                let bias = match &c.bias {
                    Some(b) => to_f32(b.val().dequantize())
                        .map_err(|e| format!("read convs.{i}.bias: {e}"))?,
                    None => vec![0.0; c_out],
                };
                Ok(ConvWeights {
                    c_in,
                    c_out,
                    kernel,
                    weight,
                    bias,
                })
            })
            .collect::<Result<_, String>>()?;
        let layers = m
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let w = l.weight.val().dequantize();
                let [d_in, d_out] = w.dims();
                let weight = to_f32(w).map_err(|e| format!("read layers.{i}.weight: {e}"))?;
                let bias = match &l.bias {
                    Some(b) => to_f32(b.val().dequantize())
                        .map_err(|e| format!("read layers.{i}.bias: {e}"))?,
                    None => vec![0.0; d_out],
                };
                Ok(LayerWeights {
                    d_in,
                    d_out,
                    weight,
                    bias,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Weights {
            convs,
            layers,
            activation: m.activation,
            conv: m.conv,
        })
    }
}

/// A tensor's values as `f32`, whatever its float dtype.
pub fn to_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// A `[rows, dim]` float tensor of the given rows.
pub fn input(data: &Dataset, rows: std::ops::Range<usize>, device: &Device) -> Tensor<2> {
    let n = rows.len();
    let feats = data.features[rows.start * data.dim..rows.end * data.dim].to_vec();
    Tensor::from_data(TensorData::new(feats, [n, data.dim]), device)
}

/// Top-1 predictions of `forward` on every row of `data`, in chunks of `chunk` rows.
pub fn predict(
    forward: impl Fn(Tensor<2>) -> Tensor<2>,
    data: &Dataset,
    device: &Device,
    chunk: usize,
) -> Result<Vec<i64>, String> {
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let end = (start + chunk).min(data.len());
        let logits = forward(input(data, start..end, device));
        let idx = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| format!("{e:?}"))?;
        out.extend(idx);
        start = end;
    }
    Ok(out)
}

/// Fraction of rows whose prediction equals the label.
pub fn accuracy(pred: &[i64], labels: &[i64]) -> f64 {
    let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Settings of the fallback training.
#[derive(Debug, Clone, Copy)]
pub struct TrainSettings {
    pub epochs: u32,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
}

/// Train the model with Adam and cross-entropy on `device` (made autodiff here), deterministically:
/// the initial weights and the batch order come from `seed`. `cancelled` is polled per epoch.
pub fn train(
    arch: &Arch,
    data: &Dataset,
    s: TrainSettings,
    device: &Device,
    cancelled: &dyn Fn() -> bool,
) -> Result<Weights, String> {
    let ad = device.clone().autodiff();
    let model = Weights::init(arch, s.seed).build(&ad);
    let (model, _) = fit(model, data, s, &ad, cancelled, &|m: &Net, x| m.forward(x));
    Weights::from_module(&model.valid())
}

/// Adam on cross-entropy of `forward(model, x)`, from `model` (on the autodiff device `ad`),
/// the batch order shuffled with `s.seed`; returns the model and the mean training loss of
/// every epoch run (`cancelled` is polled per epoch).
pub fn fit(
    mut model: Net,
    data: &Dataset,
    s: TrainSettings,
    ad: &Device,
    cancelled: &dyn Fn() -> bool,
    forward: &dyn Fn(&Net, Tensor<2>) -> Tensor<2>,
) -> (Net, Vec<f64>) {
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(ad);
    let mut rng = StdRng::seed_from_u64(s.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut losses = Vec::new();
    for _ in 0..s.epochs {
        if cancelled() {
            break;
        }
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for batch in order.chunks(s.batch_size.max(1)) {
            let b = data.select(batch);
            let x = input(&b, 0..b.len(), ad);
            let y: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(b.labels.clone(), [b.len()]), ad);
            let loss = loss_fn.forward(forward(&model, x), y);
            total += loss.clone().into_scalar::<f64>() * batch.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(s.learning_rate, model, grads);
        }
        losses.push(total / data.len().max(1) as f64);
    }
    (model, losses)
}

/// Where fp32 weights come from.
pub fn load_weights(
    path: &Path,
    arch: &Arch,
    names: &BTreeMap<String, String>,
) -> Result<Weights, String> {
    let device = Device::flex();
    let mut model = Weights::init(arch, 0).build(&device);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if !path.is_file() {
        return Err(format!("weights file {} does not exist", path.display()));
    }
    // the file's names → perfspec's: `tensor_names` maps ours to theirs
    let remap = |mut remapper: burn_store::KeyRemapper| -> Result<burn_store::KeyRemapper, String> {
        for (ours, theirs) in names {
            remapper = remapper
                .add_pattern(format!("^{}$", regex::escape(theirs)), ours.clone())
                .map_err(|e| format!("bad tensor name `{theirs}`: {e}"))?;
        }
        Ok(remapper)
    };
    let result = match ext {
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .remap(remap(burn_store::KeyRemapper::new())?)
                .allow_partial(true);
            guard("load safetensors weights", || {
                model.load_from(&mut store).map_err(|e| e.to_string())
            })??
        }
        "pt" | "pth" => {
            let mut store = PytorchStore::from_file(path)
                .remap(remap(burn_store::KeyRemapper::new())?)
                .allow_partial(true);
            guard("load PyTorch weights", || {
                model.load_from(&mut store).map_err(|e| e.to_string())
            })??
        }
        "bpk" => {
            let loaded = guard("load burnpack weights", || {
                model.clone().try_load_file(path).map_err(|e| e.to_string())
            })??;
            return Weights::from_module(&loaded);
        }
        _ => return Err(format!("unknown weights format `.{ext}`")),
    };
    let mut problems: Vec<String> = result.errors.iter().map(|e| format!("{e}")).collect();
    for (name, _) in &result.missing {
        problems.push(format!("tensor `{name}` is missing from the file"));
    }
    if !problems.is_empty() {
        let unused = if result.unused.is_empty() {
            String::new()
        } else {
            format!(" (file tensors not used: {})", result.unused.join(", "))
        };
        return Err(format!(
            "weights in {} do not fit the declared model: {}{unused}; map names with `model.tensor_names`",
            path.display(),
            problems.join("; ")
        ));
    }
    Weights::from_module(&model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file written by hand: 8-byte header length, JSON header, f32 data.
    fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in tensors {
            let start = data.len();
            values.iter().for_each(|v| data.extend(v.to_le_bytes()));
            header.insert(name.to_string(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
        }
        let mut h = serde_json::to_string(&header).unwrap();
        while !h.len().is_multiple_of(8) {
            h.push(' ');
        }
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend(h.as_bytes());
        bytes.extend(data);
        std::fs::write(path, bytes).unwrap();
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// PyTorch layout (`[out, in]`): y = x·Wᵀ + b, with plain loops.
    fn reference_logits(x: &[f32], layers: &[(Vec<f32>, Vec<f32>, usize, usize)]) -> Vec<f32> {
        let mut h = x.to_vec();
        for (k, (w, b, d_in, d_out)) in layers.iter().enumerate() {
            let mut y = vec![0.0f32; *d_out];
            for o in 0..*d_out {
                y[o] = b[o] + (0..*d_in).map(|i| h[i] * w[o * d_in + i]).sum::<f32>();
            }
            if k + 1 < layers.len() {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = y;
        }
        h
    }

    fn argmax(v: &[f32]) -> i64 {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as i64)
            .unwrap()
    }

    #[test]
    fn safetensors_weights_give_the_independent_reference_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlp.safetensors");
        let (w0, b0, w1, b1) = (
            values(5 * 4, 1),
            values(5, 2),
            values(3 * 5, 3),
            values(3, 4),
        );
        write_safetensors(
            &path,
            &[
                ("fc1.weight", vec![5, 4], w0.clone()),
                ("fc1.bias", vec![5], b0.clone()),
                ("fc2.weight", vec![3, 5], w1.clone()),
                ("fc2.bias", vec![3], b1.clone()),
            ],
        );
        let names: BTreeMap<String, String> = [
            ("layers.0.weight", "fc1.weight"),
            ("layers.0.bias", "fc1.bias"),
            ("layers.1.weight", "fc2.weight"),
            ("layers.1.bias", "fc2.bias"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let w = load_weights(&path, &Arch::mlp(&[4, 5, 3], Act::Relu), &names).unwrap();
        let layers = [(w0, b0, 4, 5), (w1, b1, 5, 3)];
        let x = values(40 * 4, 5);
        let data = Dataset {
            features: x.clone(),
            labels: vec![0; 40],
            dim: 4,
        };
        for device in [
            super::super::run::device("flex"),
            super::super::run::device("ndarray"),
        ] {
            let model = w.build(&device);
            let pred = predict(|x| model.forward(x), &data, &device, 16).unwrap();
            let logits = to_f32(model.forward(input(&data, 0..40, &device))).unwrap();
            for r in 0..40 {
                let want = reference_logits(&x[r * 4..(r + 1) * 4], &layers);
                assert_eq!(pred[r], argmax(&want), "row {r}");
                for (a, b) in logits[r * 3..(r + 1) * 3].iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "row {r}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn wrong_names_and_shapes_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        write_safetensors(
            &path,
            &[
                ("layers.0.weight", vec![5, 3], values(15, 1)),
                ("layers.0.bias", vec![5], values(5, 2)),
            ],
        );
        let err =
            load_weights(&path, &Arch::mlp(&[4, 5], Act::Relu), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("layers.0.weight"), "{err}");
        let path = dir.path().join("names.safetensors");
        write_safetensors(
            &path,
            &[
                ("fc.weight", vec![5, 4], values(20, 1)),
                ("fc.bias", vec![5], values(5, 2)),
            ],
        );
        let err =
            load_weights(&path, &Arch::mlp(&[4, 5], Act::Relu), &BTreeMap::new()).unwrap_err();
        assert!(
            err.contains("missing") && err.contains("tensor_names"),
            "{err}"
        );
    }

    #[test]
    fn training_is_deterministic() {
        let data = Dataset {
            features: values(64 * 4, 9),
            labels: (0..64).map(|i| i % 3).collect(),
            dim: 4,
        };
        let s = TrainSettings {
            epochs: 2,
            learning_rate: 0.01,
            batch_size: 16,
            seed: 3,
        };
        let a = train(
            &Arch::mlp(&[4, 8, 3], Act::Relu),
            &data,
            s,
            &Device::flex(),
            &|| false,
        )
        .unwrap();
        let b = train(
            &Arch::mlp(&[4, 8, 3], Act::Relu),
            &data,
            s,
            &Device::flex(),
            &|| false,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a,
            Weights::init(&Arch::mlp(&[4, 8, 3], Act::Relu), 3),
            "training moved the weights"
        );
    }
}

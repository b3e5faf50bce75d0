//! The declared model built as burn modules at run time: a sequential MLP whose fp32 weights are
//! either loaded (safetensors, PyTorch, burnpack) or trained here on the spec's dataset with a
//! fixed seed (Adam, autodiff).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::data::Dataset;
use super::guard;
use crate::spec::quantize::Activation;

/// A sequential MLP: `layers.{i}` are `Linear` modules, the activation runs between them.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Act,
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

impl Mlp {
    /// Logits for a `[batch, in]` input.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_layers(x)
            .pop()
            .expect("an MLP has at least one layer")
    }

    /// The output of every layer (after its activation, except the last).
    pub fn forward_layers(&self, mut x: Tensor<2>) -> Vec<Tensor<2>> {
        let n = self.layers.len();
        let mut outs = Vec::with_capacity(n);
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
    pub layers: Vec<LayerWeights>,
    pub activation: Act,
}

impl Weights {
    /// Uniform `U(-k, k)`, `k = 1/sqrt(d_in)` (burn's and PyTorch's default), from `seed`.
    pub fn init(widths: &[usize], activation: Act, seed: u64) -> Weights {
        let mut rng = StdRng::seed_from_u64(seed);
        let layers = widths
            .windows(2)
            .map(|w| {
                let k = 1.0 / (w[0] as f32).sqrt();
                let mut draw = |n: usize| {
                    (0..n)
                        .map(|_| rng.random_range(-k..k))
                        .collect::<Vec<f32>>()
                };
                let weight = draw(w[0] * w[1]);
                let bias = draw(w[1]);
                LayerWeights {
                    d_in: w[0],
                    d_out: w[1],
                    weight,
                    bias,
                }
            })
            .collect();
        Weights { layers, activation }
    }

    /// Build the module on `device` (fp32).
    pub fn build(&self, device: &Device) -> Mlp {
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
        Mlp {
            layers,
            activation: self.activation,
        }
    }

    /// Read the weights back from a module (dequantizing and casting to f32 as needed).
    pub fn from_module(m: &Mlp) -> Result<Weights, String> {
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
            layers,
            activation: m.activation,
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

/// Top-1 predictions of `model` on every row of `data`, in chunks of `chunk` rows.
#[cfg(test)]
pub fn predict(
    model: &Mlp,
    data: &Dataset,
    device: &Device,
    chunk: usize,
) -> Result<Vec<i64>, String> {
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let end = (start + chunk).min(data.len());
        let logits = model.forward(input(data, start..end, device));
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

/// Train the MLP with Adam and cross-entropy on `device` (made autodiff here), deterministically:
/// the initial weights and the batch order come from `seed`. `cancelled` is polled per epoch.
pub fn train(
    widths: &[usize],
    act: Act,
    data: &Dataset,
    s: TrainSettings,
    device: &Device,
    cancelled: &dyn Fn() -> bool,
) -> Result<Weights, String> {
    let ad = device.clone().autodiff();
    let mut model = Weights::init(widths, act, s.seed).build(&ad);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut rng = StdRng::seed_from_u64(s.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    for _ in 0..s.epochs {
        if cancelled() {
            break;
        }
        order.shuffle(&mut rng);
        for batch in order.chunks(s.batch_size.max(1)) {
            let b = data.select(batch);
            let x = input(&b, 0..b.len(), &ad);
            let y: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(b.labels.clone(), [b.len()]), &ad);
            let loss = loss_fn.forward(model.forward(x), y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(s.learning_rate, model, grads);
        }
    }
    Weights::from_module(&model.valid())
}

/// Where fp32 weights come from.
pub fn load_weights(
    path: &Path,
    widths: &[usize],
    act: Act,
    names: &BTreeMap<String, String>,
) -> Result<Weights, String> {
    let device = Device::flex();
    let mut model = Weights::init(widths, act, 0).build(&device);
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
        let w = load_weights(&path, &[4, 5, 3], Act::Relu, &names).unwrap();
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
            let pred = predict(&model, &data, &device, 16).unwrap();
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
        let err = load_weights(&path, &[4, 5], Act::Relu, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("layers.0.weight"), "{err}");
        let path = dir.path().join("names.safetensors");
        write_safetensors(
            &path,
            &[
                ("fc.weight", vec![5, 4], values(20, 1)),
                ("fc.bias", vec![5], values(5, 2)),
            ],
        );
        let err = load_weights(&path, &[4, 5], Act::Relu, &BTreeMap::new()).unwrap_err();
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
        let a = train(&[4, 8, 3], Act::Relu, &data, s, &Device::flex(), &|| false).unwrap();
        let b = train(&[4, 8, 3], Act::Relu, &data, s, &Device::flex(), &|| false).unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a,
            Weights::init(&[4, 8, 3], Act::Relu, 3),
            "training moved the weights"
        );
    }
}

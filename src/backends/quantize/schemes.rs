//! Schemes: the fp32 reference, fp16/bf16 casts and int8 per-tensor / per-block min-max
//! quantization, applied to the reference weights as burn tensors, saved as burnpack files and
//! reloaded for the two deployment modes:
//!
//! - `quantized`: the reloaded model runs as stored; burn's CPU backends dequantize the weight
//!   inside every matmul, so int8 execution is slower than fp32.
//! - `dequantize_at_load`: the reloaded weights are converted back to f32 once, which keeps
//!   fp32 speed while the file on disk stays small.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{Device, FloatDType, Tensor};

use super::guard;
use super::model::{Mlp, Weights};
use crate::spec::quantize::{DType, Granularity, Mode, Scheme};

/// What a scheme does to a weight tensor.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Fp32,
    Cast(FloatDType),
    Quant(QuantScheme),
}

/// One scheme, resolved for burn.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub dtype: DType,
    pub format: Format,
    pub include_bias: bool,
    pub modes: Vec<Mode>,
    /// Layers kept in fp32 (mixed precision, sensitivity scans).
    pub fp32_layers: Vec<usize>,
}

impl Plan {
    /// The fp32 reference.
    pub fn reference() -> Plan {
        Plan {
            name: "fp32".into(),
            dtype: DType::Fp32,
            format: Format::Fp32,
            include_bias: false,
            modes: vec![],
            fp32_layers: vec![],
        }
    }

    /// Resolve a spec scheme; `Err` for dtypes this runner does not execute.
    pub fn from_spec(s: &Scheme) -> Result<Plan, String> {
        let block = s.block.as_ref().map(|b| b.value);
        let per_block = s.granularity == Some(Granularity::Block) || block.is_some();
        let format = match s.dtype.value {
            DType::Fp32 => Format::Fp32,
            DType::Fp16 => Format::Cast(FloatDType::F16),
            DType::Bf16 => Format::Cast(FloatDType::BF16),
            DType::Int8 => {
                // the default packed store panics on ndarray: always the native one
                let q = QuantScheme::default()
                    .with_value(QuantValue::Q8S)
                    .with_store(QuantStore::Native);
                Format::Quant(match (per_block, block) {
                    (true, Some(b)) => {
                        let b = u8::try_from(b).map_err(|_| {
                            format!(
                                "scheme `{}`: burn's block size is at most 255 (got {b})",
                                s.name.value
                            )
                        })?;
                        // blocks of `b` consecutive inputs of one output (weights are
                        // `[d_in, d_out]`): group-wise along the reduction dimension
                        q.per_block([b, 1], ScaleDtype::F32)
                    }
                    _ => q.per_tensor(ScaleDtype::F32),
                })
            }
            other => {
                return Err(format!(
                    "scheme `{}`: {other} is not executed by perfspec's burn runner yet",
                    s.name.value
                ));
            }
        };
        let modes = match (&s.modes, format) {
            (Some(m), _) => m.clone(),
            (None, Format::Fp32) => vec![],
            (None, _) => vec![Mode::Quantized, Mode::DequantizeAtLoad],
        };
        Ok(Plan {
            name: s.name.value.clone(),
            dtype: s.dtype.value,
            format,
            include_bias: s.include_bias.unwrap_or(false),
            modes,
            fp32_layers: vec![],
        })
    }

    /// Block size of a per-block scheme.
    pub fn block(&self) -> Option<usize> {
        match self.format {
            Format::Quant(q) => q
                .block_size()
                .map(|b| b.as_slice().iter().map(|&d| d as usize).product()),
            _ => None,
        }
    }

    fn convert<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        match self.format {
            Format::Fp32 => t,
            Format::Cast(d) => t.cast(d),
            // a bias is one row: per-block schemes quantize it per tensor
            Format::Quant(q) if D == 1 && q.block_size().is_some() => t.quantize_dynamic(
                &QuantScheme::default()
                    .with_value(q.value)
                    .with_store(q.store)
                    .per_tensor(ScaleDtype::F32),
            ),
            Format::Quant(q) => t.quantize_dynamic(&q),
        }
    }

    /// Apply the scheme to the reference weights on `device` (panics become errors).
    pub fn apply(&self, w: &Weights, device: &Device) -> Result<Mlp, String> {
        if let Some(b) = self.block() {
            for (i, l) in w.layers.iter().enumerate() {
                if l.d_in % b != 0 {
                    return Err(format!(
                        "scheme `{}`: block {b} does not divide the input width {} of layers.{i}",
                        self.name, l.d_in
                    ));
                }
            }
        }
        guard(&format!("apply scheme `{}`", self.name), || {
            let base = w.build(device);
            let layers = base
                .layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    if self.fp32_layers.contains(&i) {
                        return l;
                    }
                    let weight = Param::from_tensor(self.convert(l.weight.val()));
                    let bias = l.bias.map(|b| match (self.format, self.include_bias) {
                        (Format::Quant(_), false) => b,
                        _ => Param::from_tensor(self.convert(b.val())),
                    });
                    Linear { weight, bias }
                })
                .collect();
            Mlp {
                layers,
                activation: base.activation,
            }
        })
    }

    /// The dtype inputs must have for `quantized` execution of this scheme.
    pub fn input_dtype(&self) -> Option<FloatDType> {
        match self.format {
            Format::Cast(d) => Some(d),
            _ => None,
        }
    }
}

/// A model ready to serve, with the input dtype it expects.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub model: Mlp,
    pub input_dtype: Option<FloatDType>,
}

impl Deployed {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self.input_dtype {
            Some(d) => self.model.forward(x.cast(d)),
            None => self.model.forward(x),
        }
    }

    pub fn forward_layers(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        match self.input_dtype {
            Some(d) => self.model.forward_layers(x.cast(d)),
            None => self.model.forward_layers(x),
        }
    }
}

/// Save `model` as burnpack at `path`; returns the file's size in bytes.
pub fn save(model: &Mlp, path: &Path) -> Result<u64, String> {
    let _ = std::fs::remove_file(path);
    guard("save the model", || {
        model.clone().save_file(path).map_err(|e| e.to_string())
    })??;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("stat {}: {e}", path.display()))
}

/// Load a burnpack file saved by [`save`] onto `device`, for `mode`.
pub fn load(
    path: &Path,
    w: &Weights,
    plan: &Plan,
    mode: Mode,
    device: &Device,
) -> Result<Deployed, String> {
    let skeleton = w.build(device);
    let loaded = guard("reload the model", || {
        skeleton.try_load_file(path).map_err(|e| e.to_string())
    })??;
    match mode {
        Mode::Quantized => Ok(Deployed {
            model: loaded,
            input_dtype: plan.input_dtype(),
        }),
        Mode::DequantizeAtLoad => {
            let model = guard("dequantize at load", || {
                let layers = loaded
                    .layers
                    .into_iter()
                    .map(|l| Linear {
                        weight: Param::from_tensor(
                            l.weight.val().dequantize().cast(FloatDType::F32),
                        ),
                        bias: l.bias.map(|b| {
                            Param::from_tensor(b.val().dequantize().cast(FloatDType::F32))
                        }),
                    })
                    .collect();
                Mlp {
                    layers,
                    activation: loaded.activation,
                }
            })?;
            Ok(Deployed {
                model,
                input_dtype: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::quantize::model::Act;

    fn plan(dtype: DType, block: Option<u8>) -> Plan {
        let q = QuantScheme::default()
            .with_value(QuantValue::Q8S)
            .with_store(QuantStore::Native);
        let format = match (dtype, block) {
            (DType::Int8, Some(b)) => Format::Quant(q.per_block([b, 1], ScaleDtype::F32)),
            (DType::Int8, None) => Format::Quant(q.per_tensor(ScaleDtype::F32)),
            (DType::Fp16, _) => Format::Cast(FloatDType::F16),
            _ => Format::Fp32,
        };
        Plan {
            name: format!("{dtype}-{block:?}"),
            dtype,
            format,
            include_bias: false,
            modes: vec![Mode::Quantized, Mode::DequantizeAtLoad],
            fp32_layers: vec![],
        }
    }

    #[test]
    fn int8_sizes_per_tensor_and_per_block() {
        let widths = [64, 128, 64, 10];
        let w = Weights::init(&widths, Act::Relu, 1);
        let n_weights: usize = widths.windows(2).map(|p| p[0] * p[1]).sum();
        let dir = tempfile::tempdir().unwrap();
        for device in [
            super::super::run::device("flex"),
            super::super::run::device("ndarray"),
        ] {
            let size = |p: &Plan| {
                save(
                    &p.apply(&w, &device).unwrap(),
                    &dir.path().join(format!("{}.bpk", p.name)),
                )
                .unwrap() as f64
            };
            let fp32 = size(&plan(DType::Fp32, None));
            let int8 = size(&plan(DType::Int8, None));
            let block32 = size(&plan(DType::Int8, Some(32)));
            assert!(fp32 >= 4.0 * n_weights as f64, "{fp32}");
            assert!(int8 / fp32 < 0.3, "int8 {int8} vs fp32 {fp32}");
            // one f32 scale per 32 weights
            let extra = block32 - int8;
            let most = (n_weights / 32 * 4) as f64;
            assert!(
                extra > 0.0 && extra <= most + 256.0,
                "block32 adds {extra} bytes, at most ~{most}"
            );
            if device != super::super::run::device("flex") {
                continue; // fp16 casts panic on ndarray ("Unsupported dtype: F16")
            }
            let fp16 = size(&plan(DType::Fp16, None));
            assert!(
                (fp16 / fp32 - 0.5).abs() < 0.05,
                "fp16 {fp16} vs fp32 {fp32}"
            );
        }
    }

    #[test]
    fn both_modes_reload_and_stay_close_to_fp32() {
        let widths = [64, 128, 64, 10];
        let w = Weights::init(&widths, Act::Relu, 1);
        let dir = tempfile::tempdir().unwrap();
        for device in [
            super::super::run::device("flex"),
            super::super::run::device("ndarray"),
        ] {
            for p in [plan(DType::Int8, None), plan(DType::Int8, Some(32))] {
                let path = dir.path().join(format!("{}.bpk", p.name));
                save(&p.apply(&w, &device).unwrap(), &path).unwrap();
                for mode in [Mode::Quantized, Mode::DequantizeAtLoad] {
                    let d = load(&path, &w, &p, mode, &device).unwrap();
                    let back = Weights::from_module(&d.model).unwrap();
                    let s = crate::backends::quantize::run::sqnr(
                        &w.layers[0].weight,
                        &back.layers[0].weight,
                    );
                    assert!(s > 30.0, "{} {mode:?}: sqnr {s}", p.name);
                }
            }
        }
    }
}

//! Schemes: the fp32 reference, fp16/bf16 casts and int8 / int4 / ternary per-tensor or
//! per-block min-max quantization, applied to the reference weights as burn tensors, saved as
//! burnpack files and reloaded for the two deployment modes:
//!
//! - `quantized`: the reloaded model runs as stored; burn's CPU backends dequantize the weight
//!   inside every matmul and convolution, so int8 execution is slower than fp32.
//! - `dequantize_at_load`: the reloaded weights are converted back to f32 once, which keeps
//!   fp32 speed while the file on disk stays small.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{Device, FloatDType, Tensor};

use super::guard;
use super::model::{Net, Weights};
use super::qat::QatSettings;
use crate::spec::quantize::{DType, Granularity, Mode, Scheme, block_dims};

/// What a scheme does to a weight tensor.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Fp32,
    Cast(FloatDType),
    /// Min-max quantization to this value type and store; the scale levels (per tensor or
    /// per block) are set per tensor from [`Plan::block`].
    Quant(QuantScheme),
}

/// One scheme, resolved for burn.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub dtype: DType,
    pub format: Format,
    /// Block size of a per-block scheme: consecutive weights of one output along the
    /// reduction dimension ([`block_dims`]).
    pub block: Option<u32>,
    pub include_bias: bool,
    pub modes: Vec<Mode>,
    /// Layers kept in fp32 (mixed precision, sensitivity scans), as indices into
    /// [`Weights::tensors`].
    pub fp32_layers: Vec<usize>,
    /// Quantization-aware training before export (`qat` on the scheme).
    pub qat: Option<QatSettings>,
}

/// Fine-tuning epochs of a `qat` without `epochs`.
pub const DEFAULT_QAT_EPOCHS: u32 = 3;
/// Adam's learning rate of a `qat` without `learning_rate`.
pub const DEFAULT_QAT_LEARNING_RATE: f64 = 1e-3;

/// The quantized value type of a dtype (always the native store: packed stores panic on
/// ndarray, and flex stores every one of these one byte per value anyway).
fn quant_value(d: DType) -> Option<QuantValue> {
    match d {
        DType::Int8 => Some(QuantValue::Q8S),
        DType::Int4 => Some(QuantValue::Q4S),
        DType::Ternary => Some(QuantValue::Q2S),
        _ => None,
    }
}

impl Plan {
    /// The fp32 reference.
    pub fn reference() -> Plan {
        Plan {
            name: "fp32".into(),
            dtype: DType::Fp32,
            format: Format::Fp32,
            block: None,
            include_bias: false,
            modes: vec![],
            fp32_layers: vec![],
            qat: None,
        }
    }

    /// A min-max quantization of `dtype`, per tensor or per `block`.
    pub fn quant(name: &str, dtype: DType, block: Option<u32>) -> Result<Plan, String> {
        let value = quant_value(dtype)
            .ok_or_else(|| format!("scheme `{name}`: {dtype} is not a quantized integer type"))?;
        if let Some(b) = block
            && !(1..=255).contains(&b)
        {
            return Err(format!(
                "scheme `{name}`: burn's block size is between 1 and 255 (got {b})"
            ));
        }
        Ok(Plan {
            name: name.to_string(),
            dtype,
            format: Format::Quant(
                QuantScheme::default()
                    .with_value(value)
                    .with_store(QuantStore::Native),
            ),
            block,
            include_bias: false,
            modes: vec![Mode::Quantized, Mode::DequantizeAtLoad],
            fp32_layers: vec![],
            qat: None,
        })
    }

    /// Resolve a spec scheme; `Err` for dtypes this runner does not execute.
    pub fn from_spec(s: &Scheme) -> Result<Plan, String> {
        let block = s.block.as_ref().map(|b| b.value);
        let per_block =
            s.granularity.as_ref().map(|g| g.value) == Some(Granularity::Block) || block.is_some();
        let name = s.name.value.as_str();
        let mut plan = match s.dtype.value {
            DType::Fp32 => Plan {
                name: name.to_string(),
                ..Plan::reference()
            },
            DType::Fp16 | DType::Bf16 => Plan {
                name: name.to_string(),
                dtype: s.dtype.value,
                format: Format::Cast(if s.dtype.value == DType::Fp16 {
                    FloatDType::F16
                } else {
                    FloatDType::BF16
                }),
                modes: vec![Mode::Quantized, Mode::DequantizeAtLoad],
                ..Plan::reference()
            },
            DType::Int8 | DType::Int4 | DType::Ternary => {
                Plan::quant(name, s.dtype.value, block.filter(|_| per_block))?
            }
            DType::Fp8 => {
                return Err(format!(
                    "scheme `{name}`: fp8 is not executed by perfspec's burn runner (wrong or panicking on burn 0.22's CPU backends)"
                ));
            }
        };
        plan.include_bias = s.include_bias.unwrap_or(false);
        plan.modes = crate::backends::quantize_plan::modes(s);
        plan.qat = s.qat.as_ref().map(|q| QatSettings {
            epochs: q.epochs.as_ref().map_or(DEFAULT_QAT_EPOCHS, |e| e.value),
            learning_rate: q
                .learning_rate
                .as_ref()
                .map_or(DEFAULT_QAT_LEARNING_RATE, |l| l.value),
            batch_size: q.batch_size.as_ref().map(|b| b.value as usize),
        });
        Ok(plan)
    }

    /// burn's scheme for one tensor of `shape` (burn's layout): per block for weights of a
    /// per-block plan (a bias is one row: per tensor), per tensor otherwise.
    fn scheme_for(
        &self,
        q: QuantScheme,
        shape: &[usize],
        what: &str,
    ) -> Result<QuantScheme, String> {
        match self.block {
            Some(b) if shape.len() > 1 => {
                let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
                let dims = block_dims(&shape, u64::from(b)).ok_or_else(|| {
                    format!(
                        "scheme `{}`: block {b} does not fit {what} of shape {shape:?}",
                        self.name
                    )
                })?;
                let dims: Vec<u8> = dims.iter().map(|&d| d as u8).collect();
                Ok(q.per_block(dims, ScaleDtype::F32))
            }
            _ => Ok(q.per_tensor(ScaleDtype::F32)),
        }
    }

    /// The schemes of every weight tensor, checked before anything runs.
    fn weight_schemes(&self, w: &Weights) -> Result<Vec<Option<QuantScheme>>, String> {
        let Format::Quant(q) = self.format else {
            return Ok(vec![None; w.layer_count()]);
        };
        let convs = w.convs.iter().enumerate().map(|(i, c)| {
            self.scheme_for(
                q,
                &[c.c_out, c.c_in, c.kernel, c.kernel],
                &format!("convs.{i}.weight"),
            )
        });
        let dense =
            w.layers.iter().enumerate().map(|(i, l)| {
                self.scheme_for(q, &[l.d_in, l.d_out], &format!("layers.{i}.weight"))
            });
        convs.chain(dense).map(|r| r.map(Some)).collect()
    }

    /// The scheme of every layer's weight as [`Plan::apply`] quantizes it: `None` for a layer
    /// kept in fp32 and for every layer of a cast or fp32 plan.
    pub fn layer_schemes(&self, w: &Weights) -> Result<Vec<Option<QuantScheme>>, String> {
        let mut schemes = self.weight_schemes(w)?;
        for &i in &self.fp32_layers {
            if let Some(s) = schemes.get_mut(i) {
                *s = None;
            }
        }
        Ok(schemes)
    }

    fn convert<const D: usize>(&self, t: Tensor<D>, q: Option<QuantScheme>) -> Tensor<D> {
        match (self.format, q) {
            (Format::Cast(d), _) => t.cast(d),
            (_, Some(q)) => t.quantize_dynamic(&q),
            _ => t,
        }
    }

    fn convert_bias(&self, b: Param<Tensor<1>>) -> Param<Tensor<1>> {
        match self.format {
            Format::Fp32 => b,
            Format::Cast(d) => Param::from_tensor(b.val().cast(d)),
            Format::Quant(_) if !self.include_bias => b,
            Format::Quant(q) => {
                Param::from_tensor(b.val().quantize_dynamic(&q.per_tensor(ScaleDtype::F32)))
            }
        }
    }

    /// Apply the scheme to the reference weights on `device` (panics become errors).
    pub fn apply(&self, w: &Weights, device: &Device) -> Result<Net, String> {
        let schemes = self.weight_schemes(w)?;
        guard(&format!("apply scheme `{}`", self.name), || {
            let base = w.build(device);
            let n_convs = base.convs.len();
            let keep = |i: usize| self.fp32_layers.contains(&i);
            let convs = base
                .convs
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    if keep(i) {
                        return c;
                    }
                    Conv2d {
                        weight: Param::from_tensor(self.convert(c.weight.val(), schemes[i])),
                        bias: c.bias.map(|b| self.convert_bias(b)),
                        ..c
                    }
                })
                .collect();
            let layers = base
                .layers
                .into_iter()
                .enumerate()
                .map(|(j, l)| {
                    let i = n_convs + j;
                    if keep(i) {
                        return l;
                    }
                    Linear {
                        weight: Param::from_tensor(self.convert(l.weight.val(), schemes[i])),
                        bias: l.bias.map(|b| self.convert_bias(b)),
                    }
                })
                .collect();
            Net {
                convs,
                layers,
                ..base
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
    pub model: Net,
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
pub fn save(model: &Net, path: &Path) -> Result<u64, String> {
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
            let f32_param = |p: Param<Tensor<4>>| {
                Param::from_tensor(p.val().dequantize().cast(FloatDType::F32))
            };
            let f32_bias = |b: Param<Tensor<1>>| {
                Param::from_tensor(b.val().dequantize().cast(FloatDType::F32))
            };
            let model = guard("dequantize at load", || {
                let convs = loaded
                    .convs
                    .into_iter()
                    .map(|c| Conv2d {
                        weight: f32_param(c.weight),
                        bias: c.bias.map(f32_bias),
                        ..c
                    })
                    .collect();
                let layers = loaded
                    .layers
                    .into_iter()
                    .map(|l| Linear {
                        weight: Param::from_tensor(
                            l.weight.val().dequantize().cast(FloatDType::F32),
                        ),
                        bias: l.bias.map(f32_bias),
                    })
                    .collect();
                Net {
                    convs,
                    layers,
                    ..loaded
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
    use crate::backends::quantize::model::{Act, Arch};

    fn plan(dtype: DType, block: Option<u32>) -> Plan {
        let name = format!("{dtype}-{block:?}");
        match dtype {
            DType::Fp16 => Plan {
                name,
                dtype,
                format: Format::Cast(FloatDType::F16),
                ..Plan::reference()
            },
            DType::Fp32 => Plan::reference(),
            _ => Plan::quant(&name, dtype, block).unwrap(),
        }
    }

    #[test]
    fn int8_sizes_per_tensor_and_per_block() {
        let widths = [64, 128, 64, 10];
        let w = Weights::init(&Arch::mlp(&widths, Act::Relu), 1);
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
        let w = Weights::init(&Arch::mlp(&widths, Act::Relu), 1);
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

    /// The measured facts behind the capability table's int4 and ternary rows.
    #[test]
    fn int4_and_ternary_on_flex_store_one_byte_per_value_and_ternary_reloads_only_there() {
        let w = Weights::init(&Arch::mlp(&[64, 128, 64, 10], Act::Relu), 1);
        let dir = tempfile::tempdir().unwrap();
        let flex = super::super::run::device("flex");
        let mut sizes = Vec::new();
        for dtype in [DType::Int8, DType::Int4, DType::Ternary] {
            let p = plan(dtype, None);
            let path = dir.path().join(format!("{}.bpk", p.name));
            sizes.push(save(&p.apply(&w, &flex).unwrap(), &path).unwrap());
            for mode in [Mode::Quantized, Mode::DequantizeAtLoad] {
                let d = load(&path, &w, &p, mode, &flex).unwrap();
                let back = Weights::from_module(&d.model).unwrap();
                let s = crate::backends::quantize::run::sqnr(
                    &w.layers[0].weight,
                    &back.layers[0].weight,
                );
                let (lo, hi) = match dtype {
                    DType::Int8 => (40.0, 60.0),
                    DType::Int4 => (15.0, 30.0),
                    _ => (0.0, 10.0), // min-max ternary zeroes most weights
                };
                assert!(s > lo && s < hi, "{dtype} {mode:?}: weight sqnr {s}");
            }
        }
        assert!(
            sizes.iter().all(|s| *s == sizes[0]),
            "int8, int4, ternary sizes {sizes:?}"
        );
        // ndarray: int4 does not quantize, ternary quantizes but does not reload
        let nd = super::super::run::device("ndarray");
        assert!(plan(DType::Int4, None).apply(&w, &nd).is_err());
        let p = plan(DType::Ternary, None);
        let path = dir.path().join("nd-ternary.bpk");
        save(&p.apply(&w, &nd).unwrap(), &path).unwrap();
        let err = load(&path, &w, &p, Mode::Quantized, &nd).unwrap_err();
        assert!(err.contains("burn panicked"), "{err}");
    }

    #[test]
    fn conv_weights_quantize_per_block_on_flex_only() {
        let arch = Arch {
            widths: vec![72, 10],
            activation: Act::Relu,
            conv: Some(crate::backends::quantize::model::ConvArch {
                shape: crate::backends::quantize::model::ConvShape {
                    input: [8, 8],
                    pool: true,
                },
                channels: vec![9, 18],
                kernel: 3,
            }),
        };
        let w = Weights::init(&arch, 2);
        let p = plan(DType::Int8, Some(9));
        let m = p.apply(&w, &super::super::run::device("flex")).unwrap();
        let back = Weights::from_module(&m).unwrap();
        let s = crate::backends::quantize::run::sqnr(&w.convs[1].weight, &back.convs[1].weight);
        assert!(s > 40.0, "conv block-9 sqnr {s}");
        let err = p
            .apply(&w, &super::super::run::device("ndarray"))
            .unwrap_err();
        assert!(err.contains("up to 6 dimensions"), "{err}");
        // a block that is no rectangle of a conv weight's inputs is refused before burn runs
        let err = plan(DType::Int8, Some(8))
            .apply(&w, &super::super::run::device("flex"))
            .unwrap_err();
        assert!(err.contains("convs.0.weight"), "{err}");
    }
}

//! Quantization-aware training: the fp32 model fine-tuned with the scheme's weights
//! fake-quantized in every forward pass, then exported by [`Plan::apply`] like any scheme.
//!
//! burn 0.22.1 has no QAT (its autodiff `quantize` detaches, and `round` has a zero
//! gradient), so the fake quantization is a straight-through estimator written here:
//! `q(w).detach() + (w − w.detach())`, whose value is exactly the dequantized `q(w)` (adding
//! an exact zero) and whose gradient with respect to `w` is the identity. The parameter itself
//! is never detached: burn keeps `require_grad` on a detached leaf and its gradient would
//! silently go missing.
//!
//! `q` follows burn's own min-max symmetric rule bit for bit, so the integers exported after
//! fine-tuning are the ones the forward passes trained against: per tensor or per block, scale
//! `2·max|w| / (b − a)` for the value range `[a, b]` (`±127` int8, `±7` int4, `±1` ternary),
//! then `round(w · (1/scale))` on flex and `round(w / scale)` on ndarray, rounding half away from
//! zero (`f32::round`, computed on the host as burn's quantizers compute it; burn's
//! `Tensor::round` rounds half to even, which would disagree on every tie), clamped to `[a, b]`.

use burn::module::{Module, Param, ParamId};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::quantization::{BlockLayout, QuantScheme, ScaleDtype};
use burn::tensor::{Device, Shape, Tensor, TensorData};

use super::data::Dataset;
use super::model::{self, Net, TrainSettings, Weights};
use super::schemes::Plan;

/// How a backend divides by the scale before rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divide {
    /// `w · (1/scale)` (flex).
    ByInverse,
    /// `w / scale` (ndarray).
    ByScale,
}

impl Divide {
    pub fn of(backend: &str) -> Divide {
        if backend == "ndarray" {
            Divide::ByScale
        } else {
            Divide::ByInverse
        }
    }
}

/// The integers burn's min-max symmetric quantization gives `values` (a tensor of `shape`,
/// row-major) under `q`, per tensor or per block, with the scale of each value.
pub fn quantize_values(
    values: &[f32],
    shape: &[usize],
    q: &QuantScheme,
    divide: Divide,
) -> (Vec<f32>, Vec<f32>) {
    let (a, b) = q.value.range();
    let blocks = q
        .block_size()
        .map(|size| BlockLayout::new(&Shape::from(shape.to_vec()), &size));
    let block_of = |i: usize| blocks.as_ref().map_or(0, |l| l.block_of(i));
    let mut alpha = vec![0.0f32; blocks.as_ref().map_or(1, |l| l.num_blocks())];
    for (i, &x) in values.iter().enumerate() {
        let peak = &mut alpha[block_of(i)];
        *peak = peak.max(x.abs());
    }
    // burn replaces only a zero (or non-finite) scale, by the smallest normal f32
    let scales: Vec<f32> = alpha
        .iter()
        .map(|&peak| Some(2.0 * peak / (b - a)).filter(|s| *s > 0.0 && s.is_finite()))
        .map(|s| s.unwrap_or(f32::MIN_POSITIVE))
        .collect();
    values
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let scale = scales[block_of(i)];
            let t = match divide {
                Divide::ByInverse => x * (1.0 / scale),
                Divide::ByScale => x / scale,
            };
            // `f32::round` rounds half away from zero, as burn's quantizers do
            (t.round().clamp(a, b), scale)
        })
        .unzip()
}

/// `w` fake-quantized: the dequantized `q(w)` forward, the identity backward.
pub fn fake_quant<const D: usize>(w: Tensor<D>, q: &QuantScheme, divide: Divide) -> Tensor<D> {
    let shape = w.dims();
    let values = model::to_f32(w.clone().detach()).expect("weights are f32 while training");
    let (ints, scales) = quantize_values(&values, &shape, q, divide);
    let deq: Vec<f32> = ints.iter().zip(&scales).map(|(i, s)| i * s).collect();
    let deq = Tensor::<D>::from_data(TensorData::new(deq, shape), &w.device());
    deq + (w.clone() - w.detach())
}

/// The settings of one scheme's fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QatSettings {
    pub epochs: u32,
    pub learning_rate: f64,
    pub batch_size: Option<usize>,
}

/// What fine-tuning gave: the fp32 weights to export and the fake-quantized training loss of
/// every epoch.
#[derive(Debug, Clone)]
pub struct Tuned {
    pub weights: Weights,
    pub losses: Vec<f64>,
}

/// A view of `m` whose quantized weights (per `schemes`, [`Weights::tensors`] order; biases
/// too with `include_bias`) are fake-quantized, still wired to `m`'s parameters.
fn fake_net(m: &Net, schemes: &[Option<QuantScheme>], include_bias: bool, divide: Divide) -> Net {
    // `Param::initialized` keeps the tensor as computed: `Param::from_tensor` would mark it
    // `require_grad`, a leaf cut off from the parameter it came from
    let wrap4 = |t: Tensor<4>| Param::initialized(ParamId::new(), t);
    let bias = |b: &Option<Param<Tensor<1>>>, q: &QuantScheme| {
        b.as_ref().map(|b| {
            let v = b.val();
            let v = if include_bias {
                fake_quant(v, &q.per_tensor(ScaleDtype::F32), divide)
            } else {
                v
            };
            Param::initialized(ParamId::new(), v)
        })
    };
    let n_convs = m.convs.len();
    let convs = m
        .convs
        .iter()
        .enumerate()
        .map(|(i, c)| match &schemes[i] {
            None => c.clone(),
            Some(q) => Conv2d {
                weight: wrap4(fake_quant(c.weight.val(), q, divide)),
                bias: bias(&c.bias, q),
                ..c.clone()
            },
        })
        .collect();
    let layers = m
        .layers
        .iter()
        .enumerate()
        .map(|(j, l)| match &schemes[n_convs + j] {
            None => l.clone(),
            Some(q) => Linear {
                weight: Param::initialized(ParamId::new(), fake_quant(l.weight.val(), q, divide)),
                bias: bias(&l.bias, q),
            },
        })
        .collect();
    Net {
        convs,
        layers,
        activation: m.activation,
        conv: m.conv,
    }
}

/// Fine-tune a copy of `w` for `plan` on `train` (Adam, cross-entropy, batches shuffled with
/// `seed`), the plan's quantized layers fake-quantized as `backend` rounds them.
pub fn finetune(
    w: &Weights,
    plan: &Plan,
    settings: TrainSettings,
    train: &Dataset,
    backend: &str,
    device: &Device,
    cancelled: &dyn Fn() -> bool,
) -> Result<Tuned, String> {
    if train.is_empty() {
        return Err(format!(
            "scheme `{}`: quantization-aware training needs training rows, and the dataset's training part is empty",
            plan.name
        ));
    }
    let schemes = plan.layer_schemes(w)?;
    let divide = Divide::of(backend);
    let ad = device.clone().autodiff();
    let forward =
        |m: &Net, x: Tensor<2>| fake_net(m, &schemes, plan.include_bias, divide).forward(x);
    let (tuned, losses) = super::guard("quantization-aware training", || {
        model::fit(w.build(&ad), train, settings, &ad, cancelled, &forward)
    })?;
    Ok(Tuned {
        weights: Weights::from_module(&tuned.valid())?,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::quantize::model::{Act, Arch};
    use crate::backends::quantize::run::device;
    use crate::backends::quantize::schemes::Format;
    use crate::spec::quantize::DType;
    use burn::tensor::TensorData;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Values with ties: max |w| = `qmax`, so the scale is exactly 1 and `k + ½` is a tie.
    fn with_ties(qmax: f32, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v: Vec<f32> = vec![qmax, -0.5, 0.5, 1.5, -2.5, 2.5, qmax - 0.5, -(qmax - 1.5)];
        v.extend((0..248).map(|_| rng.random_range(-qmax..qmax)));
        v
    }

    fn f32s<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        model::to_f32(t).unwrap()
    }

    /// The integers burn's quantizer stores are the ones the fake-quantized forward used.
    #[test]
    fn fake_quant_integers_match_burns_quantizer_on_ties_and_random_weights() {
        let cases = [
            ("flex", DType::Int8, None),
            ("flex", DType::Int4, None),
            ("ndarray", DType::Int8, None),
            ("flex", DType::Int8, Some(4)),
            ("flex", DType::Int4, Some(8)),
            ("ndarray", DType::Int8, Some(4)),
        ];
        for (backend, dtype, block) in cases {
            let dev = device(backend);
            let plan = Plan::quant("q", dtype, None).unwrap();
            let Format::Quant(q) = plan.format else {
                unreachable!()
            };
            let q = match block {
                Some(b) => q.per_block(vec![b, 1], ScaleDtype::F32),
                None => q.per_tensor(ScaleDtype::F32),
            };
            let (_, b) = q.value.range();
            let divide = Divide::of(backend);
            for (k, values) in [with_ties(b, 1), with_ties(b * 0.37, 2)]
                .into_iter()
                .enumerate()
            {
                let what = format!("{backend} {dtype} block {block:?} case {k}");
                let w = Tensor::<2>::from_data(TensorData::new(values.clone(), [16, 16]), &dev);
                let burn = f32s(w.clone().quantize_dynamic(&q).dequantize());
                let (ours, scales) = quantize_values(&values, &[16, 16], &q, divide);
                let theirs: Vec<f32> = burn
                    .iter()
                    .zip(&scales)
                    .map(|(d, s)| (d / s).round())
                    .collect();
                assert_eq!(ours, theirs, "{what}: integers");
                assert_eq!(f32s(fake_quant(w, &q, divide)), burn, "{what}: dequantized");
                if k == 0 && block.is_none() {
                    // scale 1: the ties are ties, and half-to-even rounding would miss them
                    assert!(scales.iter().all(|s| *s == 1.0));
                    let even: Vec<f32> = values.iter().map(|v| v.round_ties_even()).collect();
                    assert_ne!(even, theirs, "{what}: ties present");
                    assert_eq!(&ours[1..6], &[-1.0, 1.0, 2.0, -3.0, 3.0]);
                }
            }
        }
    }

    /// A conv weight `[out, in, k, k]` per block of `k·k`, as a cnn's per-block scheme has it.
    #[test]
    fn fake_quant_of_conv_blocks_matches_burn_on_flex() {
        let dev = device("flex");
        let Format::Quant(q) = Plan::quant("q", DType::Int4, None).unwrap().format else {
            unreachable!()
        };
        let q = q.per_block(vec![1, 1, 3, 3], ScaleDtype::F32);
        let values = with_ties(7.0, 3)[..8 * 2 * 9].to_vec();
        let w = Tensor::<4>::from_data(TensorData::new(values.clone(), [8, 2, 3, 3]), &dev);
        let burn = f32s(w.clone().quantize_dynamic(&q).dequantize());
        assert_eq!(f32s(fake_quant(w, &q, Divide::ByInverse)), burn);
        let (_, scales) = quantize_values(&values, &[8, 2, 3, 3], &q, Divide::ByInverse);
        assert!(scales[..9].iter().all(|s| *s == scales[0]) && scales[0] != scales[9]);
    }

    /// The straight-through estimator trains: the fake-quantized loss falls over the epochs
    /// and every layer's parameters move (a detached leaf would leave them as they were).
    #[test]
    fn qat_lowers_the_fake_quantized_loss_and_moves_every_layer() {
        let mut rng = StdRng::seed_from_u64(4);
        let n = 240;
        let features: Vec<f32> = (0..n * 8).map(|_| rng.random_range(-1.0..1.0)).collect();
        let labels = (0..n)
            .map(|r| i64::from(features[r * 8] + features[r * 8 + 1] > 0.0))
            .collect();
        let data = Dataset {
            features,
            labels,
            dim: 8,
        };
        let w = Weights::init(&Arch::mlp(&[8, 16, 2], Act::Relu), 5);
        let plan = Plan::quant("int4-qat", DType::Int4, None).unwrap();
        let s = TrainSettings {
            epochs: 6,
            learning_rate: 0.01,
            batch_size: 32,
            seed: 3,
        };
        let dev = device("flex");
        let a = finetune(&w, &plan, s, &data, "flex", &dev, &|| false).unwrap();
        assert_eq!(a.losses.len(), 6);
        assert!(
            a.losses[5] < a.losses[0] * 0.9,
            "fake-quantized loss per epoch {:?}",
            a.losses
        );
        for (before, after) in w.tensors().iter().zip(a.weights.tensors()) {
            assert_ne!(before.weight, after.weight, "{} weight moved", before.name);
            assert_ne!(before.bias, after.bias, "{} bias moved", before.name);
        }
        let b = finetune(&w, &plan, s, &data, "flex", &dev, &|| false).unwrap();
        assert_eq!(a.weights, b.weights, "deterministic");
        // per block as well
        let block = Plan::quant("b", DType::Int4, Some(4)).unwrap();
        let c = finetune(&w, &block, s, &data, "flex", &dev, &|| false).unwrap();
        assert!(c.losses[5] < c.losses[0] * 0.9, "per block: {:?}", c.losses);
        assert_ne!(c.weights, w);
    }
}

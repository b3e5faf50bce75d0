//! The quantize runner: data → fp32 reference (loaded or trained) → every scheme saved as
//! burnpack and reloaded per deployment mode → size, accuracy, per-layer SQNR and interleaved
//! latency benchmarks → tuning. Runs synchronously on a blocking thread; polls `cx.cancel`
//! between steps and benchmark rounds.

use std::time::Instant;

use burn::tensor::{Device, Tensor};

use super::data::{self, Dataset};
use super::model::{self, Act, Arch, ConvArch, ConvShape, TrainSettings, Weights};
use super::qat;
use super::schemes::{self, Deployed, Format, Plan};
use super::tune;
use crate::backends::quantize_plan::{DEFAULT_LABEL, QuantizePlan};
use crate::engine::metrics::{Labels, Measurements, labels};
use crate::engine::{BackendError, RunContext};
use crate::spec::quantize::{DType, Mode, QuantizeDoc};
use crate::spec::{Body, Spec};

/// Benchmarks alternate between models in this many rounds so that background load hits
/// every model alike.
const ROUNDS: u32 = 10;

/// Run a quantize spec's plan on `backend` (`flex` or `ndarray`).
pub async fn run(
    backend: &'static str,
    spec: &Spec,
    plan: &QuantizePlan,
    cx: &RunContext,
) -> Result<Measurements, BackendError> {
    let spec = spec.clone();
    let plan = plan.clone();
    let cx = cx.clone();
    tokio::task::spawn_blocking(move || {
        let Body::Quantize(doc) = &spec.body else {
            return Err(BackendError::Unavailable("not a quantize spec".into()));
        };
        let mut m = Measurements::default();
        let started = Instant::now();
        let res = Runner {
            doc,
            plan: &plan,
            cx: &cx,
            device: device(backend),
            backend,
        }
        .run(&mut m);
        m.elapsed_s = started.elapsed().as_secs_f64();
        match res {
            Ok(()) => Ok(m),
            Err(Stop::Unavailable(e)) => Err(BackendError::Unavailable(e)),
            Err(Stop::Failed(message)) => Err(BackendError::Failed {
                message,
                partial: Some(Box::new(m)),
            }),
        }
    })
    .await
    .map_err(|e| BackendError::Failed {
        message: format!("the quantize runner crashed: {e}"),
        partial: None,
    })?
}

#[expect(
    deprecated,
    reason = "burn-ndarray is deprecated upstream, but specs name it explicitly"
)]
pub fn device(backend: &str) -> Device {
    if backend == "ndarray" {
        Device::ndarray()
    } else {
        Device::flex()
    }
}

enum Stop {
    /// Nothing could be measured (bad data or weights): no verdict.
    Unavailable(String),
    /// Failed after the reference was measured: keep what was measured.
    Failed(String),
}

/// A model under benchmark.
struct Candidate {
    scheme: String,
    mode: &'static str,
    model: Deployed,
}

struct Runner<'a> {
    doc: &'a QuantizeDoc,
    plan: &'a QuantizePlan,
    cx: &'a RunContext,
    device: Device,
    backend: &'static str,
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Quantized => "quantized",
        Mode::DequantizeAtLoad => "dequantize_at_load",
    }
}

impl Runner<'_> {
    fn cancelled(&self) -> bool {
        self.cx.cancel.is_cancelled()
    }

    fn progress(&self, f: f64, msg: &str) {
        self.cx.progress.update(Some(f), msg);
    }

    fn dataset(&self) -> Result<Dataset, String> {
        let d = &self.doc.dataset;
        let mut data = match (&d.csv, &d.npy_features, &d.npy_labels) {
            (Some(csv), _, _) => data::load_csv(
                &self.cx.resolve(csv),
                self.plan.dataset.label.as_deref().unwrap_or(DEFAULT_LABEL),
            )?,
            (None, Some(x), Some(y)) => data::load_npy(&self.cx.resolve(x), &self.cx.resolve(y))?,
            _ => return Err("the dataset needs `csv` or `npy_features` + `npy_labels`".into()),
        };
        if let Some(s) = d.scale {
            if s == 0.0 {
                return Err("`dataset.scale` must not be 0".into());
            }
            data.scale((1.0 / s) as f32);
        }
        let arch = self.arch();
        if data.dim != arch.input_dim() {
            return Err(match &arch.conv {
                Some(c) => format!(
                    "the dataset has {} features per sample but the cnn's input_shape {}x{} takes {}",
                    data.dim,
                    c.shape.input[0],
                    c.shape.input[1],
                    arch.input_dim()
                ),
                None => format!(
                    "the dataset has {} features per sample but the model's input width is {}",
                    data.dim,
                    arch.input_dim()
                ),
            });
        }
        let classes = arch.classes() as i64;
        if let Some(bad) = data.labels.iter().find(|&&l| l >= classes) {
            return Err(format!(
                "label {bad} does not fit the model's {classes} outputs"
            ));
        }
        Ok(data)
    }

    fn arch(&self) -> Arch {
        let m = &self.doc.model;
        Arch {
            widths: m.layers.iter().map(|&w| w as usize).collect(),
            activation: m.activation.map(Act::from).unwrap_or(Act::Relu),
            conv: self.doc.conv().map(|c| ConvArch {
                shape: ConvShape {
                    input: c.input.map(|d| d as usize),
                    pool: c.pool,
                },
                channels: c.channels.iter().map(|&c| c as usize).collect(),
                kernel: c.kernel as usize,
            }),
        }
    }

    /// `[train]` with its defaults; the seed also orders the batches of QAT.
    fn train_settings(&self) -> TrainSettings {
        let t = self.doc.train.as_ref();
        TrainSettings {
            epochs: t.and_then(|t| t.epochs.as_ref()).map_or(20, |e| e.value),
            learning_rate: t
                .and_then(|t| t.learning_rate.as_ref())
                .map_or(0.01, |l| l.value),
            batch_size: t
                .and_then(|t| t.batch_size.as_ref())
                .map_or(64, |b| b.value as usize),
            seed: self.cx.repeat.seed(
                t.and_then(|t| t.seed)
                    .or(self.doc.dataset.seed)
                    .unwrap_or(0),
            ),
        }
    }

    /// The fp32 weights `plan` exports: the reference's, or, with `qat`, a copy fine-tuned
    /// with the plan's weights fake-quantized (noted with its loss per epoch).
    fn scheme_weights(
        &self,
        plan: &Plan,
        w: &Weights,
        train: &Dataset,
        m: &mut Measurements,
    ) -> Result<Option<Weights>, String> {
        let Some(q) = plan.qat else { return Ok(None) };
        let base = self.train_settings();
        let s = TrainSettings {
            epochs: q.epochs,
            learning_rate: q.learning_rate,
            batch_size: q.batch_size.unwrap_or(base.batch_size),
            seed: base.seed,
        };
        let started = Instant::now();
        let tuned = qat::finetune(w, plan, s, train, self.backend, &self.device, &|| {
            self.cancelled()
        })?;
        let losses: Vec<String> = tuned.losses.iter().map(|l| format!("{l:.4}")).collect();
        m.notes.push(format!(
            "{}: quantization-aware training from the fp32 weights ({} epochs of Adam, learning rate {}, batch {}, seed {}, {} weights fake-quantized {}) in {:.1}s; fake-quantized training loss per epoch {}",
            plan.name,
            s.epochs,
            s.learning_rate,
            s.batch_size,
            s.seed,
            plan.dtype,
            plan.block
                .map_or("per tensor".to_string(), |b| format!("per block of {b}")),
            started.elapsed().as_secs_f64(),
            losses.join(" → ")
        ));
        Ok(Some(tuned.weights))
    }

    fn reference(&self, train: &Dataset, m: &mut Measurements) -> Result<Weights, String> {
        let md = &self.doc.model;
        if let Some(w) = &md.weights {
            let path = self.cx.resolve(w);
            let names = md
                .tensor_names
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_default();
            let weights = model::load_weights(&path, &self.arch(), &names)?;
            m.notes
                .push(format!("fp32 weights loaded from {}", path.display()));
            return Ok(weights);
        }
        let s = self.train_settings();
        let started = Instant::now();
        let cancel = || self.cancelled();
        // burn reports many errors by panicking: a failure while training is an error
        let w = super::guard("train the fp32 model", || {
            model::train(&self.arch(), train, s, &self.device, &cancel)
        })??;
        m.notes.push(format!(
            "no weights given: trained the fp32 model here ({} epochs of Adam, learning rate {}, batch {}, seed {}) in {:.1}s on {}",
            s.epochs,
            s.learning_rate,
            s.batch_size,
            s.seed,
            started.elapsed().as_secs_f64(),
            self.backend
        ));
        Ok(w)
    }

    fn run(&self, m: &mut Measurements) -> Result<(), Stop> {
        self.progress(0.0, "loading data");
        let data = self.dataset().map_err(Stop::Unavailable)?;
        let ds = &self.plan.dataset;
        let split = data::split(&data, ds.test_split, self.cx.repeat.seed(ds.seed));
        m.notes.push(format!(
            "dataset: {} samples, {} for training, {} for testing",
            data.len(),
            split.train.len(),
            split.test.len()
        ));
        self.progress(0.05, "fp32 reference");
        let w = self.reference(&split.train, m).map_err(Stop::Unavailable)?;
        if self.cancelled() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.cx.out_dir)
            .map_err(|e| Stop::Unavailable(format!("create {}: {e}", self.cx.out_dir.display())))?;

        // the fp32 reference
        let fp32 = Plan::reference();
        let fp32_model = fp32.apply(&w, &self.device).map_err(Stop::Unavailable)?;
        let fp32_size = schemes::save(&fp32_model, &self.cx.out_dir.join("fp32.bpk"))
            .map_err(Stop::Unavailable)?;
        let reference = Deployed {
            model: fp32_model,
            input_dtype: None,
        };
        let fp32_acc = self
            .accuracy(&reference, &split.test)
            .map_err(Stop::Unavailable)?;
        m.scalar("size", labels(&[("scheme", "fp32")]), fp32_size as f64);
        m.scalar("size_ratio", labels(&[("scheme", "fp32")]), 1.0);
        m.scalar("accuracy", labels(&[("scheme", "fp32")]), fp32_acc);
        let ref_outputs = self
            .layer_outputs(&reference, &split.test)
            .map_err(Stop::Unavailable)?;

        let mut candidates = vec![Candidate {
            scheme: "fp32".into(),
            mode: "reference",
            model: reference.clone(),
        }];
        let mut results: Vec<tune::SchemeResult> = Vec::new();
        let mut failures = Vec::new();
        let plans: Vec<Plan> = self
            .doc
            .scheme
            .iter()
            .map(Plan::from_spec)
            .collect::<Result<_, _>>()
            .map_err(Stop::Unavailable)?;
        for (i, plan) in plans.iter().enumerate() {
            if self.cancelled() {
                return Ok(());
            }
            self.progress(
                0.1 + 0.3 * i as f64 / plans.len() as f64,
                &format!("scheme {}", plan.name),
            );
            let measured = self
                .scheme_weights(plan, &w, &split.train, m)
                .and_then(|tuned| {
                    let w = tuned.as_ref().unwrap_or(&w);
                    self.measure_scheme(plan, w, &split.test, fp32_size, fp32_acc, &ref_outputs, m)
                });
            match measured {
                Ok((res, models)) => {
                    results.push(res);
                    candidates.extend(models);
                }
                Err(e) => {
                    m.error_sample(&e, labels(&[("scheme", &plan.name)]));
                    failures.push(format!("scheme `{}`: {e}", plan.name));
                }
            }
        }

        self.bench(&candidates, &split.test, m);
        if self.cancelled() {
            return Ok(());
        }
        self.notes(&results, m);
        qat_notes(&plans, &results, fp32_acc, m);

        if let Some(t) = &self.doc.tune {
            self.progress(0.9, "tuning");
            // a tuned model's latency, interleaved with a fresh run of the fp32 reference
            let bench_one = |name: &str, deployed: &[tune::ModeModel]| {
                let mut cands = vec![Candidate {
                    scheme: "fp32".into(),
                    mode: "reference",
                    model: reference.clone(),
                }];
                cands.extend(deployed.iter().map(|(mode, d)| Candidate {
                    scheme: name.to_string(),
                    mode,
                    model: d.clone(),
                }));
                let mut lat = Measurements::default();
                self.bench(&cands, &split.test, &mut lat);
                lat.histograms
                    .retain(|h| h.labels.get("scheme").map(String::as_str) == Some(name));
                lat.scalars
                    .retain(|s| s.labels.get("scheme").map(String::as_str) == Some(name));
                lat
            };
            let tuner = tune::Tuner {
                runner_accuracy: &|d: &Deployed| self.accuracy(d, &split.test),
                runner_latency: &bench_one,
                weights: &w,
                device: &self.device,
            };
            if let Err(e) = tune::tune(
                t,
                fp32_acc,
                fp32_size,
                &plans,
                &mut results,
                m,
                &tuner,
                &|| self.cancelled(),
                &self.cx.out_dir,
            ) {
                failures.push(format!("tuning: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Stop::Failed(failures.join("; ")))
        }
    }

    fn accuracy(&self, d: &Deployed, test: &Dataset) -> Result<f64, String> {
        let pred = super::guard("evaluate accuracy", || {
            model::predict(|x| d.forward(x), test, &self.device, 256)
        })??;
        Ok(model::accuracy(&pred, &test.labels))
    }

    fn layer_outputs(&self, d: &Deployed, test: &Dataset) -> Result<Vec<Vec<f32>>, String> {
        super::guard("compute layer outputs", || {
            d.forward_layers(model::input(test, 0..test.len(), &self.device))
                .into_iter()
                .map(model::to_f32)
                .collect::<Result<Vec<_>, _>>()
        })?
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the reference values travel together"
    )]
    fn measure_scheme(
        &self,
        plan: &Plan,
        w: &Weights,
        test: &Dataset,
        fp32_size: u64,
        fp32_acc: f64,
        ref_outputs: &[Vec<f32>],
        m: &mut Measurements,
    ) -> Result<(tune::SchemeResult, Vec<Candidate>), String> {
        let s = plan.name.as_str();
        let applied = plan.apply(w, &self.device)?;
        let path = self.cx.out_dir.join(format!("{}.bpk", super::sanitize(s)));
        let size = schemes::save(&applied, &path)?;
        m.scalar("size", labels(&[("scheme", s)]), size as f64);
        m.scalar(
            "size_ratio",
            labels(&[("scheme", s)]),
            size as f64 / fp32_size as f64,
        );

        // SQNR of each weight tensor (what the file holds vs the reference)
        let back = super::guard("read the quantized weights back", || {
            Weights::from_module(&applied)
        })??;
        for (r, q) in w.tensors().iter().zip(&back.tensors()) {
            let layer = r.name.as_str();
            m.scalar(
                "sqnr",
                labels(&[("scheme", s), ("layer", layer), ("tensor", "weight")]),
                sqnr(r.weight, q.weight),
            );
            if plan.include_bias || !matches!(plan.format, Format::Quant(_)) {
                m.scalar(
                    "sqnr",
                    labels(&[("scheme", s), ("layer", layer), ("tensor", "bias")]),
                    sqnr(r.bias, q.bias),
                );
            }
        }

        let mut models = Vec::new();
        let mut accs = Vec::new();
        let modes = if plan.modes.is_empty() {
            vec![Mode::DequantizeAtLoad]
        } else {
            plan.modes.clone()
        };
        for mode in modes {
            let ms = mode_str(mode);
            let d = schemes::load(&path, w, plan, mode, &self.device)?;
            let acc = self.accuracy(&d, test)?;
            m.scalar("accuracy", labels(&[("scheme", s), ("mode", ms)]), acc);
            m.scalar(
                "accuracy_drop",
                labels(&[("scheme", s), ("mode", ms)]),
                (fp32_acc - acc) * 100.0,
            );
            if mode == Mode::Quantized {
                // SQNR of each layer's output on the test set, as the quantized model runs
                let outs = self.layer_outputs(&d, test)?;
                for ((r, q), t) in ref_outputs.iter().zip(&outs).zip(w.tensors()) {
                    m.scalar(
                        "sqnr",
                        labels(&[("scheme", s), ("layer", &t.name), ("tensor", "output")]),
                        sqnr(r, q),
                    );
                }
            }
            accs.push(acc);
            models.push(Candidate {
                scheme: s.to_string(),
                mode: ms,
                model: d,
            });
        }
        // the scheme as a whole: its worst mode
        let acc = accs.iter().copied().fold(f64::INFINITY, f64::min);
        m.scalar("accuracy", labels(&[("scheme", s)]), acc);
        m.scalar(
            "accuracy_drop",
            labels(&[("scheme", s)]),
            (fp32_acc - acc) * 100.0,
        );
        Ok((
            tune::SchemeResult {
                name: s.to_string(),
                size,
                accuracy: acc,
                latency_ratio: None,
            },
            models,
        ))
    }

    /// Latency of every candidate at every batch size, interleaved in rounds.
    fn bench(&self, cands: &[Candidate], test: &Dataset, m: &mut Measurements) {
        let batches: Vec<u32> = self.plan.batch_sizes.clone();
        let (iterations, warmup) = (self.plan.iterations, self.plan.warmup);
        let per_round = iterations.div_ceil(ROUNDS).max(1);
        let mut failed: std::collections::BTreeSet<(String, &'static str, u32)> =
            Default::default();
        for (bi, &batch) in batches.iter().enumerate() {
            let rows: Vec<usize> = (0..batch as usize).map(|i| i % test.len()).collect();
            let x = model::input(&test.select(&rows), 0..rows.len(), &self.device);
            let run_once = |c: &Candidate, x: &Tensor<2>| {
                super::guard("run inference", || {
                    let t = Instant::now();
                    let _ = c.model.forward(x.clone()).into_data();
                    t.elapsed().as_secs_f64()
                })
            };
            let mut broken = vec![false; cands.len()];
            for (ci, c) in cands.iter().enumerate() {
                for _ in 0..warmup {
                    if let Err(e) = run_once(c, &x) {
                        m.error_sample(&e, labels(&[("scheme", &c.scheme), ("mode", c.mode)]));
                        broken[ci] = true;
                        break;
                    }
                }
            }
            let bs = batch.to_string();
            let mut done = 0;
            let mut round = 0;
            'rounds: while done < iterations {
                let n = per_round.min(iterations - done);
                // each round starts with another model, so that no model always runs first
                round += 1;
                for k in 0..cands.len() {
                    let ci = (k + round) % cands.len();
                    let c = &cands[ci];
                    if broken[ci] {
                        continue;
                    }
                    let l = labels(&[("scheme", &c.scheme), ("mode", c.mode), ("batch", &bs)]);
                    // one unrecorded call first: the model that ran before this one (e.g. a
                    // slow quantized one) left the caches cold, which would bias the first
                    // samples of every round against whoever comes next
                    if let Err(e) = run_once(c, &x) {
                        m.error_sample(&e, l.clone());
                        broken[ci] = true;
                        continue;
                    }
                    for _ in 0..n {
                        if self.cancelled() {
                            break 'rounds;
                        }
                        match run_once(c, &x) {
                            Ok(s) => m.histogram("latency", l.clone(), 1e-9).record(s),
                            Err(e) => {
                                m.error_sample(&e, l.clone());
                                broken[ci] = true;
                                break;
                            }
                        }
                    }
                }
                done += n;
                self.progress(
                    0.4 + 0.5 * (bi as f64 + done as f64 / iterations as f64)
                        / batches.len() as f64,
                    &format!("latency at batch {batch}"),
                );
            }
            for (_, c) in cands.iter().enumerate().filter(|(ci, _)| broken[*ci]) {
                failed.insert((c.scheme.clone(), c.mode, batch));
            }
        }
        // a candidate that failed part-way has a partial histogram: no ratio or throughput
        // from it, and a per-mode ratio only over batch sizes that every candidate completed
        let complete = |batch: u32| !failed.iter().any(|f| f.2 == batch);
        // ratios and throughput
        let p50 = |m: &Measurements, l: &Labels| {
            m.histograms
                .iter()
                .find(|h| h.metric == "latency" && &h.labels == l)
                .map(|h| h.summary().p50)
        };
        let mut per_mode: std::collections::BTreeMap<(String, String), Vec<f64>> =
            Default::default();
        for c in cands {
            for &batch in &batches {
                if failed.contains(&(c.scheme.clone(), c.mode, batch)) {
                    continue;
                }
                let bs = batch.to_string();
                let l = labels(&[("scheme", &c.scheme), ("mode", c.mode), ("batch", &bs)]);
                let Some(p) = p50(&*m, &l).filter(|p| *p > 0.0) else {
                    continue;
                };
                m.scalar("throughput", l.clone(), batch as f64 / p);
                let r = labels(&[("scheme", "fp32"), ("mode", "reference"), ("batch", &bs)]);
                if let Some(base) = p50(&*m, &r).filter(|p| *p > 0.0)
                    && c.scheme != "fp32"
                {
                    m.scalar("latency_ratio", l, p / base);
                    if complete(batch) {
                        per_mode
                            .entry((c.scheme.clone(), c.mode.to_string()))
                            .or_default()
                            .push(p / base);
                    }
                }
            }
        }
        // one ratio per (scheme, mode): the geometric mean over batch sizes
        for ((s, mode), rs) in per_mode {
            let g = (rs.iter().map(|r| r.ln()).sum::<f64>() / rs.len() as f64).exp();
            m.scalar(
                "latency_ratio",
                labels(&[("scheme", &s), ("mode", &mode)]),
                g,
            );
        }
    }

    fn notes(&self, results: &[tune::SchemeResult], m: &mut Measurements) {
        for r in results {
            let get = |mode: &str| {
                m.scalars
                    .iter()
                    .find(|x| {
                        x.metric == "latency_ratio"
                            && x.labels == labels(&[("scheme", &r.name), ("mode", mode)])
                    })
                    .map(|x| x.value)
            };
            if let (Some(q), Some(d)) = (get("quantized"), get("dequantize_at_load")) {
                let ops = if self.doc.conv().is_some() {
                    "matmul and convolution"
                } else {
                    "matmul"
                };
                let cast = self
                    .doc
                    .scheme
                    .iter()
                    .find(|sc| sc.name.value == r.name)
                    .map(|sc| sc.dtype.value)
                    .filter(|d| matches!(d, DType::Fp16 | DType::Bf16));
                // the reason is given only where it explains the direction measured
                let why = if let Some(d) = cast {
                    format!(
                        "{}: the weights and the input are cast to {d}, nothing is dequantized",
                        if q > 1.0 { "slower" } else { "not slower" }
                    )
                } else if q > 1.0 {
                    format!(
                        "slower: burn's {} backend dequantizes the weights inside every {ops}",
                        self.backend
                    )
                } else {
                    "not slower here, although burn dequantizes the weights inside every op"
                        .to_string()
                };
                m.notes.push(format!(
                    "{}: {:.2}x the fp32 file size; quantized execution measured {:.2}x fp32 latency ({why}), dequantized at load {:.2}x",
                    r.name,
                    r.size as f64 / m.scalars.iter().find(|x| x.metric == "size" && x.labels == labels(&[("scheme", "fp32")])).map_or(1.0, |x| x.value),
                    q,
                    d
                ));
            }
        }
    }
}

/// One note per measured QAT scheme that has a measured PTQ twin (same dtype and block, no
/// `qat`): their accuracy drops and sizes side by side.
fn qat_notes(plans: &[Plan], results: &[tune::SchemeResult], fp32_acc: f64, m: &mut Measurements) {
    let result = |name: &str| results.iter().find(|r| r.name == name);
    for p in plans.iter().filter(|p| p.qat.is_some()) {
        let twin = plans
            .iter()
            .find(|o| o.qat.is_none() && o.dtype == p.dtype && o.block == p.block);
        let (Some(q), Some(t)) = (result(&p.name), twin.and_then(|t| result(&t.name))) else {
            continue;
        };
        m.notes.push(format!(
            "{} (QAT) vs {} (PTQ), {}{}: accuracy drop {:.2}pp vs {:.2}pp, size {:.2}x of the PTQ file",
            q.name,
            t.name,
            p.dtype,
            p.block.map(|b| format!(" per block of {b}")).unwrap_or_default(),
            (fp32_acc - q.accuracy) * 100.0,
            (fp32_acc - t.accuracy) * 100.0,
            q.size as f64 / t.size as f64
        ));
    }
}

/// `20·log10(‖x‖/‖x−x̂‖)` in dB; `+inf` is reported as 200 dB (exact copy).
pub fn sqnr(x: &[f32], xq: &[f32]) -> f64 {
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (a, b) in x.iter().zip(xq) {
        s += (*a as f64).powi(2);
        n += (*a as f64 - *b as f64).powi(2);
    }
    if n == 0.0 {
        200.0
    } else {
        10.0 * (s / n).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqnr_is_20_log10_of_the_norm_ratio() {
        let x = [3.0f32, 4.0];
        let xq = [3.0f32, 4.5];
        // ‖x‖ = 5, ‖x−x̂‖ = 0.5 → 20 dB
        assert!((sqnr(&x, &xq) - 20.0).abs() < 1e-9);
        assert_eq!(sqnr(&x, &x), 200.0);
    }
}

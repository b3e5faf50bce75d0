//! Accuracy-driven tuning, as Intel Neural Compressor users expect: among the schemes whose
//! accuracy meets `accuracy_criterion` (relative to fp32, or absolute points; default 1%
//! relative), pick the smallest file or the fastest one. Optionally a per-layer sensitivity
//! scan (quantize one layer at a time) and a mixed-precision variant of each failing scheme
//! that keeps the most sensitive layers in fp32 until the criterion holds.

use burn::tensor::Device;

use super::model::Weights;
use super::schemes::{self, Deployed, Format, Plan};
use crate::engine::metrics::{Measurements, labels};
use crate::spec::quantize::{Mode, Objective, Tune};

/// What tuning knows of a measured scheme.
#[derive(Debug, Clone)]
pub struct SchemeResult {
    pub name: String,
    pub size: u64,
    /// Worst accuracy over the measured modes.
    pub accuracy: f64,
    /// Best latency ratio over the measured modes (geometric mean over batch sizes).
    pub latency_ratio: Option<f64>,
}

/// A deployment mode (`quantized`, `dequantize_at_load`) and the model deployed that way.
pub type ModeModel = (&'static str, Deployed);

/// What tuning needs from the runner.
pub struct Tuner<'a> {
    pub runner_accuracy: &'a dyn Fn(&Deployed) -> Result<f64, String>,
    /// Latency histograms, `latency_ratio` and `throughput` of a model tuning made (scheme
    /// name, its deployments per mode), benchmarked with the fp32 reference in the same
    /// interleaved rounds.
    pub runner_latency: &'a dyn Fn(&str, &[ModeModel]) -> Measurements,
    pub weights: &'a Weights,
    pub device: &'a Device,
}

/// The accuracy drop the criterion allows, in points.
pub fn allowed_drop(t: &Tune, fp32_acc: f64) -> f64 {
    match &t.accuracy_criterion {
        Some(c) if c.absolute.is_some() => c.absolute.map_or(1.0, |p| p.0),
        Some(c) => c.relative.map_or(0.01, |r| r.0) * fp32_acc * 100.0,
        None => 0.01 * fp32_acc * 100.0,
    }
}

/// Pick among `results`: those within `allowed` points of `fp32_acc`, then by objective.
pub fn recommend(
    results: &[SchemeResult],
    fp32_acc: f64,
    allowed: f64,
    objective: Objective,
) -> Option<&SchemeResult> {
    let ok = results
        .iter()
        .filter(|r| (fp32_acc - r.accuracy) * 100.0 <= allowed + 1e-9);
    match objective {
        Objective::Smallest => {
            ok.min_by(|a, b| a.size.cmp(&b.size).then(b.accuracy.total_cmp(&a.accuracy)))
        }
        Objective::Fastest => ok.min_by(|a, b| {
            let la = a.latency_ratio.unwrap_or(f64::INFINITY);
            let lb = b.latency_ratio.unwrap_or(f64::INFINITY);
            la.total_cmp(&lb).then(a.size.cmp(&b.size))
        }),
    }
}

#[expect(clippy::too_many_arguments, reason = "one call site in the runner")]
pub fn tune(
    t: &Tune,
    fp32_acc: f64,
    fp32_size: u64,
    plans: &[Plan],
    results: &mut Vec<SchemeResult>,
    m: &mut Measurements,
    tuner: &Tuner,
    cancelled: &dyn Fn() -> bool,
    out_dir: &std::path::Path,
) -> Result<(), String> {
    for r in results.iter_mut() {
        r.latency_ratio = m
            .scalars
            .iter()
            .filter(|s| {
                s.metric == "latency_ratio"
                    && s.labels.len() == 2
                    && s.labels.get("scheme") == Some(&r.name)
            })
            .map(|s| s.value)
            .reduce(f64::min);
    }
    let allowed = allowed_drop(t, fp32_acc);
    let objective = t.objective.unwrap_or(Objective::Smallest);
    let scan = t.sensitivity == Some(true) || t.mixed_precision == Some(true);
    // only schemes that were measured; a scheme whose scan fails is noted, the others go on
    let measured: Vec<&Plan> = plans
        .iter()
        .filter(|p| {
            // a QAT scheme's weights are its own fine-tuned ones, not `tuner.weights`
            matches!(p.format, Format::Quant(_))
                && p.qat.is_none()
                && results.iter().any(|r| r.name == p.name)
        })
        .collect();
    let scanner = Scan {
        mixed_precision: t.mixed_precision == Some(true),
        fp32_acc,
        fp32_size,
        allowed,
        tuner,
        cancelled,
        out_dir,
    };
    for plan in measured {
        if !scan || cancelled() {
            break;
        }
        if let Err(e) = scanner.scheme(plan, results, m) {
            m.error_sample(&e, labels(&[("scheme", &plan.name)]));
            m.notes
                .push(format!("tuning of `{}` stopped: {e}", plan.name));
        }
    }
    let pick = recommend(results, fp32_acc, allowed, objective);
    let (name, why) = match pick {
        Some(r) => (
            r.name.clone(),
            format!(
                "{:.2}pp accuracy drop within the allowed {allowed:.2}pp, {:.2}x the fp32 size{}",
                (fp32_acc - r.accuracy) * 100.0,
                r.size as f64 / fp32_size as f64,
                r.latency_ratio
                    .map(|l| format!(", {l:.2}x fp32 latency in its best mode"))
                    .unwrap_or_default()
            ),
        ),
        None => (
            "fp32".to_string(),
            format!("no scheme stays within the allowed {allowed:.2}pp accuracy drop"),
        ),
    };
    let obj = match objective {
        Objective::Smallest => "smallest",
        Objective::Fastest => "fastest",
    };
    m.scalar("recommended", labels(&[("scheme", &name)]), 1.0);
    m.notes.push(format!(
        "tuning ({obj}): recommended scheme `{name}`: {why}"
    ));
    Ok(())
}

/// What the sensitivity scan and the mixed-precision search of every scheme share.
struct Scan<'a> {
    /// `tune.mixed_precision`: look for a mixed-precision variant of a failing scheme.
    mixed_precision: bool,
    fp32_acc: f64,
    fp32_size: u64,
    /// The accuracy drop the criterion allows, in points.
    allowed: f64,
    tuner: &'a Tuner<'a>,
    cancelled: &'a dyn Fn() -> bool,
    out_dir: &'a std::path::Path,
}

impl Scan<'_> {
    /// The sensitivity scan of one scheme and, when it misses the criterion, its
    /// mixed-precision variant (added to `results` when one meets it).
    fn scheme(
        &self,
        plan: &Plan,
        results: &mut Vec<SchemeResult>,
        m: &mut Measurements,
    ) -> Result<(), String> {
        let names: Vec<String> = self
            .tuner
            .weights
            .tensors()
            .into_iter()
            .map(|t| t.name)
            .collect();
        let ranking = self.sensitivity(plan, &names, m)?;
        let full = results
            .iter()
            .find(|r| r.name == plan.name)
            .map(|r| r.accuracy);
        let fails = full.is_some_and(|a| (self.fp32_acc - a) * 100.0 > self.allowed + 1e-9);
        if self.mixed_precision
            && fails
            && let Some(r) = self.mixed(plan, &ranking, &names, m)?
        {
            results.push(r);
        }
        Ok(())
    }

    /// Quantize one layer at a time (the others in fp32): the accuracy drop of each layer
    /// (`sensitivity{scheme, layer}`), and the layers' indices with their drops, most
    /// sensitive first.
    fn sensitivity(
        &self,
        plan: &Plan,
        names: &[String],
        m: &mut Measurements,
    ) -> Result<Vec<(usize, f64)>, String> {
        let n = self.tuner.weights.layer_count();
        let mut ranking = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut p = plan.clone();
            p.fp32_layers = (0..n).filter(|&j| j != i).collect();
            let model = p.apply(self.tuner.weights, self.tuner.device)?;
            let acc = (self.tuner.runner_accuracy)(&Deployed {
                model,
                input_dtype: None,
            })?;
            let drop = (self.fp32_acc - acc) * 100.0;
            m.scalar(
                "sensitivity",
                labels(&[("scheme", &plan.name), ("layer", name)]),
                drop,
            );
            ranking.push((i, drop));
        }
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1));
        let order: Vec<String> = ranking
            .iter()
            .map(|(i, d)| format!("{} ({d:.2}pp)", names[*i]))
            .collect();
        m.notes.push(format!(
            "sensitivity of `{}`, most sensitive first: {}",
            plan.name,
            order.join(", ")
        ));
        Ok(ranking)
    }

    /// `{scheme}-mixed`: keep the layers of `ranking` in fp32, most sensitive first, until
    /// the criterion holds (never all of them: that is the reference itself); that variant
    /// measured by [`Self::measure_mixed`], or `None` when none holds or tuning is cancelled.
    fn mixed(
        &self,
        plan: &Plan,
        ranking: &[(usize, f64)],
        names: &[String],
        m: &mut Measurements,
    ) -> Result<Option<SchemeResult>, String> {
        let n = self.tuner.weights.layer_count();
        let mut p = plan.clone();
        p.name = format!("{}-mixed", plan.name);
        for (k, (i, _)) in ranking.iter().enumerate() {
            if k + 1 == n || (self.cancelled)() {
                break; // all layers in fp32 would be the reference itself
            }
            p.fp32_layers.push(*i);
            let model = p.apply(self.tuner.weights, self.tuner.device)?;
            let acc = (self.tuner.runner_accuracy)(&Deployed {
                model: model.clone(),
                input_dtype: None,
            })?;
            if (self.fp32_acc - acc) * 100.0 <= self.allowed + 1e-9 {
                return self.measure_mixed(&p, &model, names, m).map(Some);
            }
        }
        Ok(None)
    }

    /// A mixed-precision variant `p` measured like every scheme: saved, reloaded from its
    /// file in both modes, its accuracy, size and latency recorded in `m` with a note.
    fn measure_mixed(
        &self,
        p: &Plan,
        model: &super::model::Net,
        names: &[String],
        m: &mut Measurements,
    ) -> Result<SchemeResult, String> {
        let (tuner, fp32_acc, fp32_size) = (self.tuner, self.fp32_acc, self.fp32_size);
        let path = self
            .out_dir
            .join(format!("{}.bpk", super::sanitize(&p.name)));
        let size = schemes::save(model, &path)?;
        let quantized = schemes::load(&path, tuner.weights, p, Mode::Quantized, tuner.device)?;
        let dequantized = schemes::load(
            &path,
            tuner.weights,
            p,
            Mode::DequantizeAtLoad,
            tuner.device,
        )?;
        let s = p.name.as_str();
        let mut acc = f64::INFINITY;
        for (mode, d) in [
            ("quantized", &quantized),
            ("dequantize_at_load", &dequantized),
        ] {
            let a = (tuner.runner_accuracy)(d)?;
            m.scalar("accuracy", labels(&[("scheme", s), ("mode", mode)]), a);
            m.scalar(
                "accuracy_drop",
                labels(&[("scheme", s), ("mode", mode)]),
                (fp32_acc - a) * 100.0,
            );
            acc = acc.min(a);
        }
        m.scalar("size", labels(&[("scheme", s)]), size as f64);
        m.scalar(
            "size_ratio",
            labels(&[("scheme", s)]),
            size as f64 / fp32_size as f64,
        );
        m.scalar("accuracy", labels(&[("scheme", s)]), acc);
        m.scalar(
            "accuracy_drop",
            labels(&[("scheme", s)]),
            (fp32_acc - acc) * 100.0,
        );
        let mut lat = (tuner.runner_latency)(
            s,
            &[
                ("quantized", quantized),
                ("dequantize_at_load", dequantized),
            ],
        );
        let (q, d) = (
            mode_latency_ratio(&lat, "quantized"),
            mode_latency_ratio(&lat, "dequantize_at_load"),
        );
        // like the other schemes: the best of its modes
        let latency_ratio = match (q, d) {
            (Some(q), Some(d)) => Some(q.min(d)),
            (q, d) => q.or(d),
        };
        m.histograms.append(&mut lat.histograms);
        m.scalars.append(&mut lat.scalars);
        m.error_samples.append(&mut lat.error_samples);
        let kept: Vec<String> = p.fp32_layers.iter().map(|i| names[*i].clone()).collect();
        let fmt =
            |r: Option<f64>| r.map_or_else(|| "not measured".to_string(), |r| format!("{r:.2}x"));
        m.notes.push(format!(
            "mixed precision `{s}`: {} kept in fp32 meets the criterion ({:.2}pp drop, {:.2}x the fp32 size; fp32 latency ratio: quantized {}, dequantized at load {})",
            kept.join(", "),
            (fp32_acc - acc) * 100.0,
            size as f64 / fp32_size as f64,
            fmt(q),
            fmt(d)
        ));
        Ok(SchemeResult {
            name: s.to_string(),
            size,
            accuracy: acc,
            latency_ratio,
        })
    }
}

/// The `latency_ratio{mode}` (over all batch sizes: two labels, scheme and mode) that a
/// latency benchmark measured for `mode`.
fn mode_latency_ratio(lat: &Measurements, mode: &str) -> Option<f64> {
    lat.scalars
        .iter()
        .find(|x| {
            x.metric == "latency_ratio"
                && x.labels.len() == 2
                && x.labels.get("mode").map(String::as_str) == Some(mode)
        })
        .map(|x| x.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, size: u64, accuracy: f64, lat: f64) -> SchemeResult {
        SchemeResult {
            name: name.into(),
            size,
            accuracy,
            latency_ratio: Some(lat),
        }
    }

    #[test]
    fn mode_latency_ratio_is_the_ratio_over_all_batch_sizes_of_that_mode() {
        let mut lat = Measurements::default();
        let per_batch = [("scheme", "s"), ("mode", "quantized"), ("batch", "8")];
        lat.scalar("latency_ratio", labels(&per_batch), 9.0);
        lat.scalar(
            "throughput",
            labels(&[("scheme", "s"), ("mode", "quantized")]),
            5.0,
        );
        lat.scalar(
            "latency_ratio",
            labels(&[("scheme", "s"), ("mode", "quantized")]),
            1.5,
        );
        assert_eq!(mode_latency_ratio(&lat, "quantized"), Some(1.5));
        assert_eq!(mode_latency_ratio(&lat, "dequantize_at_load"), None);
    }

    #[test]
    fn recommendation_follows_criterion_and_objective() {
        let rs = vec![
            r("int8", 100, 0.95, 1.2),
            r("int8-block32", 120, 0.97, 1.1),
            r("fp16", 200, 0.97, 0.9),
        ];
        assert_eq!(
            recommend(&rs, 0.97, 1.0, Objective::Smallest).unwrap().name,
            "int8-block32"
        );
        assert_eq!(
            recommend(&rs, 0.97, 3.0, Objective::Smallest).unwrap().name,
            "int8"
        );
        assert_eq!(
            recommend(&rs, 0.97, 1.0, Objective::Fastest).unwrap().name,
            "fp16"
        );
        assert!(recommend(&rs[..1], 0.97, 1.0, Objective::Smallest).is_none());
    }
}

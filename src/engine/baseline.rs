//! `--baseline results.json`: earlier measurements that SLO `baseline` terms and report
//! deltas refer to, matched by spec name (then metric + labels inside the evaluator).

use std::path::Path;

use super::metrics::Measurements;
use super::verdict::{BaseInput, Slo};
use crate::results::{Results, SpecResult};

pub struct Baseline {
    pub path: String,
    pub results: Results,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, String> {
        Ok(Baseline {
            path: path.display().to_string(),
            results: Results::read(path)?,
        })
    }

    /// The measurements of the spec with this name, if the baseline ran it.
    pub fn measurements(&self, spec_name: &str) -> Option<&Measurements> {
        self.results.spec(spec_name)?.measurements.as_ref()
    }

    /// What the baseline offers `slo` of the spec `spec_name`: its value and per-repeat
    /// values.
    pub fn input(&self, spec_name: &str, slo: &Slo) -> BaseInput {
        spec_input(self.results.spec(spec_name), slo)
    }
}

/// What a baseline spec result offers `slo` (a baseline without the spec, or without
/// measurements of it, has no data for it).
pub fn spec_input(spec: Option<&SpecResult>, slo: &Slo) -> BaseInput {
    let Some(spec) = spec else {
        return BaseInput::Given {
            value: None,
            samples: Vec::new(),
        };
    };
    let repeats: Vec<&Measurements> = spec.repeats.iter().map(|r| &r.measurements).collect();
    match BaseInput::from_measurements(slo, spec.measurements.as_ref(), &repeats) {
        BaseInput::NotGiven => BaseInput::Given {
            value: None,
            samples: Vec::new(),
        },
        given => given,
    }
}

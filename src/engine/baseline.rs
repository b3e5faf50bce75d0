//! `--baseline results.json`: earlier measurements that SLO `baseline` terms and report
//! deltas refer to, matched by spec name (then metric + labels inside the evaluator).

use std::path::Path;

use super::metrics::Measurements;
use crate::results::Results;

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
}

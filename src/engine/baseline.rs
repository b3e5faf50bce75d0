//! `--baseline results.json`: earlier measurements that SLO `baseline` terms and report
//! deltas refer to, matched by spec name (then metric + labels inside the evaluator).

use std::path::Path;

use super::metrics::Measurements;
use super::verdict::{BaseInput, Slo};
use crate::results::{Results, SpecResult};

pub struct Baseline {
    pub path: String,
    pub source: Source,
}

/// Where baseline values come from.
pub enum Source {
    /// A `results.json`.
    File(Box<Results>),
    /// The last runs of a branch in `--history` (`history:main~10`).
    History(crate::history::HistoryBaseline),
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, String> {
        Ok(Baseline {
            path: path.display().to_string(),
            source: Source::File(Box::new(Results::read(path)?)),
        })
    }

    /// `history:BRANCH[~N]` read from the history database `db`; `before`: the start time
    /// of a run judged again (`perfspec report`), whose own and later runs are left out.
    pub fn from_history(
        db: &Path,
        branch: &str,
        n: usize,
        before: Option<&str>,
    ) -> Result<Baseline, String> {
        Ok(Baseline {
            path: format!("history:{branch}~{n} in {}", db.display()),
            source: Source::History(crate::history::baseline(db, branch, n, before)?),
        })
    }

    /// `history:BRANCH[~N]` of a history that does not exist yet (the run creates it): no
    /// runs, so `baseline` SLOs follow `on_missing_baseline`.
    pub fn new_history(db: &Path, branch: &str, n: usize) -> Baseline {
        Baseline {
            path: format!("history:{branch}~{n} in {}", db.display()),
            source: Source::History(crate::history::HistoryBaseline::default()),
        }
    }

    /// A warning for a history baseline without runs (naming the branches it has).
    pub fn empty_note(&self) -> Option<String> {
        match &self.source {
            Source::File(_) => None,
            Source::History(h) => h.empty_note(),
        }
    }

    /// The measurements of the spec with this name, if the baseline is a results file
    /// that ran it.
    pub fn measurements(&self, spec_name: &str) -> Option<&Measurements> {
        match &self.source {
            Source::File(r) => r.spec(spec_name)?.measurements.as_ref(),
            Source::History(_) => None,
        }
    }

    /// What the baseline offers `slo` of the spec `spec_name`: its value and per-repeat
    /// values.
    pub fn input(&self, spec_name: &str, slo: &Slo) -> BaseInput {
        match &self.source {
            Source::File(r) => spec_input(r.spec(spec_name), slo),
            Source::History(h) => h.input(spec_name, slo),
        }
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

//! `backend = "import"`: measurements another tool already took, read into the load
//! engine's recorder so that the spec's SLOs, baselines and reports work exactly as for a
//! run.
//!
//! Exact formats carry every sample (k6's `--out json`, JMeter's CSV JTL): each becomes one
//! request of the recorder (HDR histograms at the recorder's precision), so percentiles,
//! label filters and per-second series are computed as if perfspec had sent the requests.
//! These tools measure from the actual send, like perfspec's closed model, so `latency` and
//! `service_time` are the same samples; `late` and `arrivals` are unknown and absent.
//!
//! Summary formats carry statistics per request name ([`summary`]): a k6 summary, Locust's
//! CSV stats and oha's JSON give percentiles only (a percentile they lack is not evaluable),
//! Locust's JSON gives its response-time buckets (bucketed), memtier's JSON gives HDR
//! histograms (exact).

mod backend;
mod columns;
mod jmeter;
mod k6;
mod k6_summary;
mod locust;
mod memtier;
mod oha;
mod summary;
mod time;

pub use backend::Import;

use std::collections::BTreeMap;
use std::path::Path;

use crate::backends::http::recorder::{Key, Names, Recorder, StatusLabel};
use crate::engine::metrics::Measurements;
use crate::spec::import::ImportFormat;
pub use summary::Summary;

/// One request another tool measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When it ended, seconds since the Unix epoch.
    pub end_s: f64,
    /// How long it took, seconds.
    pub elapsed_s: f64,
    /// The `journey` label (a k6 group or scenario, a JMeter thread group).
    pub journey: String,
    /// The `step` label (a k6 request name, a JMeter sampler label).
    pub step: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A problem at one line of an imported file (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What one file holds.
#[derive(Debug, Clone)]
pub enum Imported {
    /// Every request (k6 `--out json`, JMeter JTL).
    Samples(Vec<Sample>),
    /// Statistics per label set (the other formats).
    Summary(Summary),
}

/// Read `text` (the contents of one file) in `format`.
pub fn read(format: ImportFormat, text: &str) -> Result<Imported, Vec<ImportError>> {
    use Imported::{Samples, Summary as S};
    match format {
        ImportFormat::K6Json => k6::read(text).map(Samples),
        ImportFormat::JmeterJtl => jmeter::read(text).map(Samples),
        ImportFormat::K6Summary => k6_summary::read(text).map(S),
        ImportFormat::LocustCsv => locust::read_csv(text).map(S),
        ImportFormat::LocustJson => locust::read_json(text).map(S),
        ImportFormat::OhaJson => oha::read(text).map(S),
        ImportFormat::MemtierJson => memtier::read(text).map(S),
    }
}

/// Read `path` in `format`; errors carry `path:line` (just `path` for the file as a whole).
pub fn read_file(format: ImportFormat, path: &Path) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    read(format, &text).map_err(|errors| {
        let mut lines: Vec<String> = errors
            .iter()
            .take(5)
            .map(|e| match e.line {
                0 => format!("{}: {}", path.display(), e.message),
                n => format!("{}:{n}: {}", path.display(), e.message),
            })
            .collect();
        if errors.len() > 5 {
            lines.push(format!("… and {} more", errors.len() - 5));
        }
        lines.join("\n")
    })
}

/// The measurements of `samples`, as the load engine's recorder computes them for a closed
/// model: latency and service time, requests, errors, error rates and throughput per
/// journey, step and status, per-second series. Seconds count from the first request's start.
pub fn measure(mut samples: Vec<Sample>) -> Measurements {
    samples.sort_by(|a, b| a.end_s.total_cmp(&b.end_s));
    let t0 = samples
        .iter()
        .map(|s| s.end_s - s.elapsed_s)
        .fold(f64::INFINITY, f64::min);
    let end = samples
        .iter()
        .map(|s| s.end_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let elapsed = if samples.is_empty() {
        0.0
    } else {
        (end - t0).max(1e-3)
    };
    let named = journeys(&samples);
    let index: BTreeMap<(&str, &str), (usize, usize)> = named
        .iter()
        .enumerate()
        .flat_map(|(j, (journey, steps))| {
            steps
                .iter()
                .enumerate()
                .map(move |(k, step)| ((journey.as_str(), step.as_str()), (j, k)))
        })
        .collect();
    let names = Names {
        journeys: named.iter().map(|(j, _)| j.clone()).collect(),
        steps: named.iter().map(|(_, s)| s.clone()).collect(),
        phases: vec![PHASE.to_string()],
    };
    let mut recorder = Recorder::new(names, f64::INFINITY);
    for s in &samples {
        let (journey, step) = index[&(s.journey.as_str(), s.step.as_str())];
        let key = Key {
            journey,
            step,
            status: s.status.map_or(StatusLabel::Error, StatusLabel::Code),
            phase: 0,
        };
        let times = Some((s.elapsed_s, s.elapsed_s));
        recorder.request(key, times, s.error.as_deref(), s.end_s - t0);
    }
    let mut m = recorder.finish(elapsed, &[elapsed], false, 0.0, &|_| 0.0);
    // the source does not say when requests were meant to start
    m.scalars
        .retain(|s| !matches!(s.metric.as_str(), "late" | "late_ratio"));
    m
}

/// Measure what one import read (in `format`): samples by the recorder (every metric
/// exact), summaries by their groups.
pub fn measure_imported(format: ImportFormat, data: &Imported) -> Measurements {
    match data {
        Imported::Samples(s) => {
            let mut m = measure(s.clone());
            // every metric of requests, by every label the recorder gives them
            let per_request = crate::spec::catalog::metrics(crate::spec::catalog::Kind::Load)
                .iter()
                .filter(|d| d.labels.contains(&"step"));
            for d in per_request {
                m.fidelity.push(crate::engine::metrics::MetricFidelity {
                    metric: d.name.to_string(),
                    fidelity: crate::engine::metrics::Fidelity::Exact,
                    source: format!("the {format} file"),
                    labels: d.labels.iter().map(|l| l.to_string()).collect(),
                    hint: String::new(),
                    label_hint: "perfspec labels imported samples by journey, step and status"
                        .to_string(),
                });
            }
            m
        }
        Imported::Summary(s) => summary::measure(s),
    }
}

/// The journeys of `samples` and the steps of each, in order of first appearance: the
/// values of the `journey` and `step` labels.
pub fn journeys(samples: &[Sample]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for s in samples {
        let i = match out.iter().position(|(j, _)| *j == s.journey) {
            Some(i) => i,
            None => {
                out.push((s.journey.clone(), Vec::new()));
                out.len() - 1
            }
        };
        if !out[i].1.contains(&s.step) {
            out[i].1.push(s.step.clone());
        }
    }
    out
}

/// The one phase of an import.
pub const PHASE: &str = "imported";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix (at a stride) of every import fixture, and the fixture with one byte
    /// removed, read in every format: an error or measurements, never a panic.
    #[test]
    fn truncated_and_mutilated_files_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
        let mut read_ok = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let stride = (text.len() / 60).max(1);
            let cuts = (0..text.len())
                .step_by(stride)
                .filter(|i| text.is_char_boundary(*i));
            let variants: Vec<String> = cuts
                .clone()
                .map(|i| text[..i].to_string())
                .chain(
                    cuts.filter(|i| text.is_char_boundary(i + 1))
                        .map(|i| format!("{}{}", &text[..i], &text[i + 1..])),
                )
                .chain([text.clone()])
                .collect();
            for format in [
                ImportFormat::K6Json,
                ImportFormat::JmeterJtl,
                ImportFormat::K6Summary,
                ImportFormat::LocustCsv,
                ImportFormat::LocustJson,
                ImportFormat::OhaJson,
                ImportFormat::MemtierJson,
            ] {
                for v in &variants {
                    if let Ok(data) = read(format, v) {
                        let _ = measure_imported(format, &data);
                        read_ok += 1;
                    }
                }
            }
        }
        assert!(read_ok > 0);
    }
}

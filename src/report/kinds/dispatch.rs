//! Kind → chart builder.

use crate::engine::metrics::Measurements;
use crate::engine::verdict::SloOutcome;
use crate::report::view::Section;
use crate::spec::catalog::Kind;

/// The sections of a spec's report for its kind (or, for an `exec` spec, what its command
/// measured), followed by the generic ones (other time series, every measured value).
/// `slos` are the spec's outcomes: their thresholds are drawn on the charts of their
/// metrics, and their values shown in the units written.
pub fn sections(kind: Kind, backend: &str, m: &Measurements, slos: &[SloOutcome]) -> Vec<Section> {
    let mut used: Vec<String> = Vec::new();
    let mut out = match kind {
        _ if backend == "exec" => super::exec::sections(m, slos, &mut used),
        Kind::Load => super::load::sections(m, slos, &mut used),
        Kind::Cache => super::cache::sections(m, slos, &mut used),
        Kind::Scaling => super::scaling::sections(m, slos, &mut used),
        Kind::Quantize => super::quantize::sections(m, slos, &mut used),
    };
    out.extend(super::common::other_series(kind, m, slos, &used));
    out.push(super::common::values_table(kind, m, slos));
    out
}

//! Kind → chart builder.

use crate::engine::metrics::Measurements;
use crate::report::view::Section;
use crate::spec::catalog::Kind;

/// The sections of a spec's report for its kind, followed by the generic ones (other time
/// series, every measured value).
pub fn sections(kind: Kind, m: &Measurements) -> Vec<Section> {
    let mut used: Vec<String> = Vec::new();
    let mut out = match kind {
        Kind::Load => super::load::sections(m, &mut used),
        Kind::Cache => super::cache::sections(m, &mut used),
        Kind::Scaling => super::scaling::sections(m, &mut used),
        Kind::Quantize => super::quantize::sections(m, &mut used),
    };
    out.extend(super::common::other_series(kind, m, &used));
    out.push(super::common::values_table(kind, m));
    out
}

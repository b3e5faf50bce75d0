//! The section of an `exec` spec: what the team's own command measured, whatever the kind
//! (the kind's own charts assume its backend's metrics and would only say "no data").

use super::common::histogram_table_in;
use crate::engine::metrics::Measurements;
use crate::engine::verdict::SloOutcome;
use crate::report::view::Section;
use crate::spec::units::Dimension;

/// One table per distribution the command reported (count and quantiles per label set),
/// in the unit of an SLO on it when there is one.
pub fn sections(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Vec<Section> {
    let mut sec = Section::new("Measured by the command");
    let mut names: Vec<&str> = m.histograms.iter().map(|h| h.metric.as_str()).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for metric in names {
        let dim = slos
            .iter()
            .find(|o| crate::spec::slo::parse(&o.expr).is_ok_and(|e| e.metric == metric))
            .map_or(Dimension::Count, |o| o.dimension);
        sec.tables.push(histogram_table_in(
            m,
            metric,
            &format!("{metric}: distribution per label set"),
            dim,
        ));
        used.push(metric.to_string());
    }
    vec![sec.or_empty("the command reported no distributions (its values are listed below)")]
}

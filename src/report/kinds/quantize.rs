//! Quantization section: size, accuracy and latency per scheme (and mode), SQNR per layer.

use super::common::{
    distribution, histogram_table, labels_text, round_sig, scalars, sort_label_values,
};
use crate::engine::metrics::Measurements;
use crate::report::charts::{self, BarChart};
use crate::report::view::{Section, Table};
use crate::spec::units::Dimension;

/// Bars of `metric` per scheme, one series per `mode` (or one series).
fn per_scheme(m: &Measurements, metric: &str, title: &str, dim: Dimension, sec: &mut Section) {
    let mut schemes: Vec<String> = Vec::new();
    let mut modes: Vec<String> = Vec::new();
    for s in scalars(m, metric) {
        let Some(scheme) = s.labels.get("scheme") else {
            continue;
        };
        if !schemes.contains(scheme) {
            schemes.push(scheme.clone());
        }
        let mode = s.labels.get("mode").cloned().unwrap_or_default();
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    sort_label_values(&mut modes);
    let series = modes
        .iter()
        .map(|mode| {
            let vals = schemes
                .iter()
                .map(|sc| {
                    scalars(m, metric)
                        .find(|s| {
                            s.labels.get("scheme") == Some(sc)
                                && s.labels.get("mode").map_or("", String::as_str) == mode
                                && !s.labels.contains_key("layer")
                        })
                        .map(|s| s.value)
                })
                .collect();
            (
                if mode.is_empty() {
                    metric.to_string()
                } else {
                    mode.clone()
                },
                vals,
            )
        })
        .collect();
    sec.chart(
        title,
        charts::bar_chart(&BarChart {
            title: title.into(),
            y_dim: dim,
            categories: schemes,
            series,
        }),
    );
}

pub fn sections(m: &Measurements, used: &mut Vec<String>) -> Vec<Section> {
    let _ = used;
    let mut sec = Section::new("Size, accuracy and latency per scheme");
    per_scheme(
        m,
        "size",
        "Model size per scheme",
        Dimension::Bytes,
        &mut sec,
    );
    per_scheme(
        m,
        "accuracy",
        "Accuracy per scheme",
        Dimension::Ratio,
        &mut sec,
    );
    per_scheme(
        m,
        "latency_ratio",
        "Latency vs fp32 per scheme and mode",
        Dimension::Ratio,
        &mut sec,
    );
    distribution(
        m,
        "latency",
        "Inference latency per scheme and mode (p50, p90, p99, max)",
        &mut sec,
    );
    let sec = sec.or_empty("no size, accuracy or latency values per scheme");

    let mut lat = Section::new("Latency detail");
    lat.tables
        .push(histogram_table(m, "latency", "latency per batch"));
    let lat = lat.or_empty("no latency histogram was recorded");

    let mut sq = Section::new("SQNR per layer");
    sq.tables.push(Table {
        title: "20·log10(‖x‖/‖x−x̂‖)".into(),
        headers: vec!["labels".into(), "SQNR".into()],
        rows: scalars(m, "sqnr")
            .map(|s| {
                vec![
                    labels_text(&s.labels),
                    Dimension::Decibels.format(round_sig(s.value)),
                ]
            })
            .collect(),
    });
    let sq = sq.or_empty("no SQNR values");
    vec![sec, lat, sq]
}

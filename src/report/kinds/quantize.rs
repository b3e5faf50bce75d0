//! Quantization section: size, accuracy and latency per scheme (and mode), SQNR per layer,
//! sensitivity per layer. Metric and label names are the burn runner's
//! (`backends::quantize::run`): `size`, `accuracy`, `latency_ratio` per `scheme` (and `mode`;
//! per-`batch` values also exist), `sqnr` per `scheme`, `layer`, `tensor`, `sensitivity` per
//! `scheme`, `layer`.

use super::common::{
    distribution, histogram_table, round_sig, scalars, shown, sort_label_values, thresholds,
};
use crate::engine::metrics::Measurements;
use crate::engine::verdict::SloOutcome;
use crate::report::charts::{self, BarChart};
use crate::report::view::{Section, Table};
use crate::spec::catalog::Kind;
use crate::spec::units::Dimension;

/// Only labels `scheme` and optionally `mode`: one value per scheme (and mode), not the
/// per-batch or per-layer ones.
fn is_aggregate(l: &crate::engine::metrics::Labels) -> bool {
    l.contains_key("scheme") && l.keys().all(|k| k == "scheme" || k == "mode")
}

/// Bars of `metric` per scheme, one series per `mode` (or one series).
fn per_scheme(
    m: &Measurements,
    slos: &[SloOutcome],
    metric: &str,
    title: &str,
    dim: Dimension,
    sec: &mut Section,
) {
    let mut schemes: Vec<String> = Vec::new();
    let mut modes: Vec<String> = Vec::new();
    for s in scalars(m, metric).filter(|s| is_aggregate(&s.labels)) {
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
                                && is_aggregate(&s.labels)
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
    let mut chart = BarChart::new(title, shown(Kind::Quantize, metric, slos), schemes, series);
    chart.thresholds = thresholds(slos, &[metric], dim);
    sec.chart(title, charts::bar_chart(&chart));
}

pub fn sections(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Vec<Section> {
    let _ = used;
    let mut sec = Section::new("Size, accuracy and latency per scheme");
    per_scheme(
        m,
        slos,
        "size",
        "Model size per scheme",
        Dimension::Bytes,
        &mut sec,
    );
    per_scheme(
        m,
        slos,
        "accuracy",
        "Accuracy per scheme",
        Dimension::Ratio,
        &mut sec,
    );
    per_scheme(
        m,
        slos,
        "latency_ratio",
        "Latency vs fp32 per scheme and mode",
        Dimension::Ratio,
        &mut sec,
    );
    distribution(
        m,
        slos,
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
    sq.tables.push(per_layer(
        m,
        "sqnr",
        "SQNR 20·log10(‖x‖/‖x−x̂‖) of each layer's weight (as stored) and output (quantized execution on the test set)",
        Dimension::Decibels,
    ));
    sq.tables.push(per_layer(
        m,
        "sensitivity",
        "Sensitivity: accuracy drop with only this layer quantized",
        Dimension::Points,
    ));
    sq.tables.retain(|t| !t.rows.is_empty());
    let sq = sq.or_empty("no SQNR values");
    vec![sec, lat, sq]
}

/// A table of `metric` with one row per layer (and `tensor`, when labelled) and one column
/// per scheme, in the order the runner measured them.
fn per_layer(m: &Measurements, metric: &str, title: &str, dim: Dimension) -> Table {
    let mut schemes: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for s in scalars(m, metric) {
        let (Some(scheme), Some(layer)) = (s.labels.get("scheme"), s.labels.get("layer")) else {
            continue;
        };
        if !schemes.contains(scheme) {
            schemes.push(scheme.clone());
        }
        let row = (
            layer.clone(),
            s.labels.get("tensor").cloned().unwrap_or_default(),
        );
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    // weights first, then outputs; layers in network order within each
    rows.sort_by_key(|(_, tensor)| match tensor.as_str() {
        "weight" => 0,
        "bias" => 1,
        _ => 2,
    });
    let with_tensor = rows.iter().any(|(_, t)| !t.is_empty());
    let mut headers = vec!["layer".to_string()];
    if with_tensor {
        headers.push("tensor".into());
    }
    headers.extend(schemes.iter().cloned());
    let rows = rows
        .iter()
        .map(|(layer, tensor)| {
            let mut r = vec![layer.clone()];
            if with_tensor {
                r.push(tensor.clone());
            }
            r.extend(schemes.iter().map(|sc| {
                scalars(m, metric)
                    .find(|s| {
                        s.labels.get("scheme") == Some(sc)
                            && s.labels.get("layer") == Some(layer)
                            && s.labels.get("tensor").map_or("", String::as_str) == tensor
                    })
                    .map_or("—".to_string(), |s| dim.format(round_sig(s.value)))
            }));
            r
        })
        .collect();
    Table {
        title: title.into(),
        headers,
        rows,
    }
}

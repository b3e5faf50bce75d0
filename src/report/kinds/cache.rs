//! Cache section: hit ratio per tier against the LRU and optimal (Bélády) bounds, the
//! hit-ratio-vs-capacity curve of a sweep, operation latency, residency vs capacity.

use super::common::{
    distribution, histogram_table, labels_text, scalars, sort_label_values, thresholds,
};
use crate::engine::metrics::Measurements;
use crate::engine::verdict::SloOutcome;
use crate::report::charts::{self, BarChart, Line, LineChart};
use crate::report::view::Section;
use crate::spec::units::Dimension;

pub fn sections(m: &Measurements, slos: &[SloOutcome], used: &mut Vec<String>) -> Vec<Section> {
    let _ = used;
    vec![
        hit_ratio(m, slos),
        capacity_curve(m, slos),
        latency(m, slos),
    ]
}

/// Why the LRU and optimal bounds were not measured: the backend's note, or a default.
fn bounds_missing(m: &Measurements) -> String {
    const NOTE: &str = "lru_hit_ratio and optimal_hit_ratio: ";
    let why = m
        .notes
        .iter()
        .find_map(|n| n.split_once(NOTE).map(|(_, why)| why.to_string()))
        .unwrap_or_else(|| {
            "the results hold no lru_hit_ratio or optimal_hit_ratio values (the key trace was not replayed)".into()
        });
    format!("The LRU and optimal (Bélády) bounds are not shown: {why}.")
}

/// Bars: one group per tier plus the two bounds; one series per capacity (or one for the
/// run). Only run-wide values (no `instance` label).
fn hit_ratio(m: &Measurements, slos: &[SloOutcome]) -> Section {
    let mut sec = Section::new("Hit ratio against the LRU and optimal bounds");
    let run_wide =
        |metric: &'static str| scalars(m, metric).filter(|s| !s.labels.contains_key("instance"));
    let mut capacities: Vec<String> = Vec::new();
    let mut tiers: Vec<String> = Vec::new();
    for s in run_wide("hit_ratio")
        .chain(run_wide("lru_hit_ratio"))
        .chain(run_wide("optimal_hit_ratio"))
    {
        let c = s.labels.get("capacity").cloned().unwrap_or_default();
        if !capacities.contains(&c) {
            capacities.push(c);
        }
    }
    for s in run_wide("hit_ratio") {
        let t = s
            .labels
            .get("tier")
            .cloned()
            .unwrap_or_else(|| "overall".into());
        if !tiers.contains(&t) {
            tiers.push(t);
        }
    }
    sort_label_values(&mut capacities);
    let mut categories = tiers.clone();
    categories.push("LRU bound".into());
    categories.push("optimal (Bélády)".into());
    let series: Vec<(String, Vec<Option<f64>>)> = capacities
        .iter()
        .map(|cap| {
            let at = |metric: &'static str, tier: Option<&str>| {
                run_wide(metric)
                    .find(|s| {
                        s.labels.get("capacity").map_or("", String::as_str) == cap
                            && s.labels.get("tier").map(String::as_str)
                                == tier.filter(|t| *t != "overall")
                    })
                    .map(|s| s.value)
            };
            let mut vals: Vec<Option<f64>> =
                tiers.iter().map(|t| at("hit_ratio", Some(t))).collect();
            vals.push(at("lru_hit_ratio", None));
            vals.push(at("optimal_hit_ratio", None));
            let name = if cap.is_empty() {
                "this run".to_string()
            } else {
                format!("capacity {cap}")
            };
            (name, vals)
        })
        .collect::<Vec<_>>();
    let series = if series.len() > 6 {
        series[series.len() - 6..].to_vec()
    } else {
        series
    };
    let mut series = series;
    let mut notes = Vec::new();
    let bounds_measured = series
        .iter()
        .any(|(_, v)| v[tiers.len()..].iter().any(Option::is_some));
    if !bounds_measured {
        // no empty bars: say why they are missing instead
        categories.truncate(tiers.len());
        for (_, v) in &mut series {
            v.truncate(tiers.len());
        }
        notes.push(bounds_missing(m));
    }
    let title = "Hit ratio per tier vs LRU and optimal bounds";
    let mut chart = BarChart::new(title, Dimension::Ratio, categories, series);
    chart.thresholds = thresholds(slos, &["hit_ratio"], Dimension::Ratio);
    chart.notes = notes;
    sec.chart(title, charts::bar_chart(&chart));
    let bad: Vec<String> = m
        .invalid
        .iter()
        .filter(|i| i.metric == "hit_ratio")
        .map(|i| format!("{}: {}", labels_text(&i.labels), i.reason))
        .collect();
    if !bad.is_empty() {
        sec.tables.push(crate::report::view::Table {
            title: "hit ratios flagged invalid".into(),
            headers: vec!["labels".into(), "why".into()],
            rows: bad.into_iter().map(|b| vec![b]).collect(),
        });
    }
    sec.or_empty("no hit_ratio, lru_hit_ratio or optimal_hit_ratio values")
}

/// Lines over the `capacity` label: hit ratio per tier, LRU and optimal bounds (dashed).
fn capacity_curve(m: &Measurements, slos: &[SloOutcome]) -> Section {
    let mut sec = Section::new("Hit ratio vs capacity");
    let mut lines: Vec<Line> = Vec::new();
    let mut add = |metric: &str,
                   name_of: &dyn Fn(&crate::engine::metrics::Scalar) -> String,
                   dashed: bool| {
        let mut by_name: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for s in scalars(m, metric).filter(|s| !s.labels.contains_key("instance")) {
            let Some(cap) = s.labels.get("capacity").and_then(|c| c.parse::<f64>().ok()) else {
                continue;
            };
            let name = name_of(s);
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, pts)) => pts.push((cap, s.value)),
                None => by_name.push((name, vec![(cap, s.value)])),
            }
        }
        for (name, pts) in by_name {
            let l = Line::new(name, pts);
            lines.push(if dashed { l.dashed() } else { l });
        }
    };
    add(
        "hit_ratio",
        &|s| {
            format!(
                "hit ratio {}",
                s.labels.get("tier").map_or("overall", String::as_str)
            )
        },
        false,
    );
    add("lru_hit_ratio", &|_| "LRU bound".into(), true);
    add("optimal_hit_ratio", &|_| "optimal (Bélády)".into(), true);
    if lines.iter().map(|l| l.points.len()).max().unwrap_or(0) >= 2 {
        let title = "Hit ratio vs capacity";
        let mut c = LineChart::new(
            title,
            "capacity (entries)",
            Dimension::Count,
            Dimension::Ratio,
            lines,
        );
        c.thresholds = thresholds(slos, &["hit_ratio"], Dimension::Ratio);
        sec.chart(title, charts::line_chart(&c));
    }
    sec.or_empty("no capacity sweep (values labelled `capacity` at two or more capacities)")
}

fn latency(m: &Measurements, slos: &[SloOutcome]) -> Section {
    let mut sec = Section::new("Operation latency");
    distribution(
        m,
        slos,
        "latency",
        "Latency per operation and tier (p50, p90, p99, max)",
        &mut sec,
    );
    sec.tables.push(histogram_table(m, "latency", "latency"));
    sec.or_empty("no latency histogram was recorded")
}

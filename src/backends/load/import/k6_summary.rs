//! k6's end-of-test summary as JSON: `k6 run --summary-export=FILE` (the legacy shape: each
//! metric's statistics directly under `metrics.<name>`, a rate's fraction as `value`) or
//! the `data` object `handleSummary()` receives, written with `JSON.stringify(data)` (each
//! metric's statistics under `values`, a rate's fraction as `rate`; `state.testRunDurationMs`).
//!
//! Read: `http_req_duration` (a trend in ms: `avg`, `min`, `med`, `max`, `p(N)`, `count` as
//! `--summary-trend-stats` chose), `http_reqs` (a counter: `count`, `rate` per second) and
//! `http_req_failed` (a rate: `passes` counts the failed requests, its true values). A
//! submetric such as `http_req_duration{name:login}` (k6 exports those a threshold names)
//! is the label set `step=login` (`group` → `journey`, `scenario` → `journey`, `status`);
//! one with any other tag (`expected_response:true`) is skipped.

use serde_json::{Map, Value};

use super::ImportError;
use super::summary::{Dist, Summary, count, number, parse_json, percentile_key, whole};
use crate::engine::metrics::{Fidelity, Labels, QuantileTable};

const HINT: &str = "export it with `--summary-trend-stats` (e.g. \"avg,min,med,max,p(90),p(95),p(99)\"), or import k6's `--out json` (every sample)";
const LABEL_HINT: &str = "give the submetric a threshold (e.g. `http_req_duration{name:login}`) so that k6 exports it, or import k6's `--out json` (every sample, with its tags)";

pub fn read(text: &str) -> Result<Summary, Vec<ImportError>> {
    let v = parse_json(
        text,
        "a k6 summary (`--summary-export` or handleSummary's data)",
    )?;
    let metrics = v.get("metrics").and_then(Value::as_object).ok_or_else(|| {
        whole(
            "no `metrics` object: not a k6 summary (write it with `k6 run --summary-export=FILE`)",
        )
    })?;
    let mut s = Summary::new("the k6 summary", Fidelity::Percentiles, HINT, LABEL_HINT);
    let mut errors = Vec::new();
    for (key, metric) in metrics {
        let (name, tags) = match key.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')),
            None => (key.as_str(), Some("")),
        };
        if !matches!(name, "http_req_duration" | "http_reqs" | "http_req_failed") {
            continue;
        }
        let Some(labels) = tags.and_then(tag_labels) else {
            continue;
        };
        // handleSummary's data nests the statistics under `values`
        let values = metric
            .get("values")
            .unwrap_or(metric)
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut bad = |what: &str| {
            errors.push(ImportError {
                line: 0,
                message: format!("metrics.{key} has no {what}"),
            })
        };
        let g = s.group(labels);
        match name {
            "http_req_duration" => match table(&values) {
                Some(t) => g.latency = Some(Dist::Table(t)),
                None => bad("statistic of a trend (avg, min, med, max, p(N))"),
            },
            "http_reqs" => match count(values.get("count")) {
                Some(c) => g.requests = Some(c),
                None => bad("integer `count`"),
            },
            _ => match count(values.get("passes")) {
                Some(c) => g.errors = Some(c),
                None => bad("integer `passes` (the failed requests)"),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    s.elapsed_s = elapsed(&v, metrics).ok_or_else(|| {
        whole("neither state.testRunDurationMs nor metrics.http_reqs with `count` and `rate`: the run's duration is unknown")
    })?;
    if s.groups.iter().all(|g| g.latency.is_none()) {
        return Err(whole(
            "metrics.http_req_duration is missing: the summary holds no HTTP requests",
        ));
    }
    s.notes.push(
        "the k6 summary gives statistics, not samples: only the percentiles it exported can be judged"
            .to_string(),
    );
    Ok(s)
}

/// The labels of a submetric's tags (`name:login,status:200`); `None` for a tag perfspec
/// has no label for.
fn tag_labels(tags: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    for tag in tags.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = tag.split_once(':')?;
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        let label = match k.trim() {
            "name" => "step",
            "group" => {
                let g = v.trim_start_matches("::").replace("::", " / ");
                labels.insert("journey".into(), g);
                continue;
            }
            "scenario" => "journey",
            "status" => "status",
            _ => return None,
        };
        labels.entry(label.to_string()).or_insert(v);
    }
    Some(labels)
}

/// A trend's statistics (ms) as a table in seconds; `None` when it has none.
fn table(values: &Map<String, Value>) -> Option<QuantileTable> {
    let mut t = QuantileTable::new("latency", Labels::new());
    for (k, v) in values {
        let Some(ms) = number(Some(v)) else { continue };
        let s = ms / 1000.0;
        match k.as_str() {
            "avg" => t.mean = Some(s),
            "min" => t.min = Some(s),
            "max" => t.max = Some(s),
            "count" => t.count = Some(ms as u64),
            "med" => push(&mut t, 50.0, s),
            k => {
                if let Some(p) = percentile_key(k) {
                    push(&mut t, p, s);
                }
            }
        }
    }
    t.percentiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    let any = t.mean.is_some() || t.min.is_some() || t.max.is_some();
    (any || !t.percentiles.is_empty()).then_some(t)
}

fn push(t: &mut QuantileTable, p: f64, v: f64) {
    if t.percentile(p).is_none() {
        t.percentiles.push((p, v));
    }
}

/// The run's seconds: `state.testRunDurationMs` (handleSummary's data), else the whole
/// run's `http_reqs` count over its rate.
fn elapsed(v: &Value, metrics: &Map<String, Value>) -> Option<f64> {
    if let Some(ms) = number(v.pointer("/state/testRunDurationMs")).filter(|ms| *ms > 0.0) {
        return Some(ms / 1000.0);
    }
    let reqs = metrics.get("http_reqs")?;
    let values = reqs.get("values").unwrap_or(reqs);
    let n = number(values.get("count"))?;
    let rate = number(values.get("rate")).filter(|r| *r > 0.0)?;
    Some(n / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submetric_tags_become_labels() {
        let l = tag_labels("name:login,status:\"200\"").unwrap();
        assert_eq!(l["step"], "login");
        assert_eq!(l["status"], "200");
        assert_eq!(
            tag_labels("group:::shop::cart").unwrap()["journey"],
            "shop / cart"
        );
        assert_eq!(tag_labels("expected_response:true"), None);
        assert!(tag_labels("").unwrap().is_empty());
    }

    #[test]
    fn both_shapes_read_the_same() {
        let legacy = r#"{"metrics":{"http_req_duration":{"avg":10,"min":1,"med":8,"max":90,"p(90)":20,"p(95)":30},"http_reqs":{"count":100,"rate":10},"http_req_failed":{"passes":2,"fails":98,"value":0.02}}}"#;
        let data = r#"{"state":{"testRunDurationMs":10000},"metrics":{"http_req_duration":{"type":"trend","contains":"time","values":{"avg":10,"min":1,"med":8,"max":90,"p(90)":20,"p(95)":30}},"http_reqs":{"type":"counter","values":{"count":100,"rate":10}},"http_req_failed":{"type":"rate","values":{"rate":0.02,"passes":2,"fails":98}}}}"#;
        for text in [legacy, data] {
            let s = read(text).unwrap();
            assert_eq!(s.elapsed_s, 10.0);
            let g = &s.groups[s.groups.iter().position(|g| g.latency.is_some()).unwrap()];
            let Some(Dist::Table(t)) = &g.latency else {
                panic!()
            };
            assert_eq!(
                t.percentiles,
                vec![(50.0, 0.008), (90.0, 0.02), (95.0, 0.03)]
            );
            assert_eq!(t.max, Some(0.09));
            assert_eq!(s.requests(), 100);
        }
    }

    #[test]
    fn not_a_summary_says_so() {
        let e = read("{\"metrics\": {\n").unwrap_err();
        assert_eq!(e[0].line, 2);
        let e = read("[]").unwrap_err();
        assert!(e[0].message.contains("no `metrics`"), "{e:?}");
        let e = read(r#"{"metrics":{"http_reqs":{"count":"x"},"http_req_duration":{"avg":1}}}"#)
            .unwrap_err();
        assert!(
            e[0].message
                .contains("metrics.http_reqs has no integer `count`"),
            "{e:?}"
        );
    }
}

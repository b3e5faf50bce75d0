//! memtier_benchmark's JSON (`--json-out-file FILE`), as its `run_stats.cpp` writes it:
//! under `ALL STATS`, `Runtime` (`Total duration` in ms) and one object per command
//! (`Sets`, `Gets`, `Waits`, or the arbitrary commands) and `Totals`, each with `Count`,
//! `Ops/sec`, `Average`/`Min`/`Max Latency` (ms) and `Percentile Latencies`: `p50.000` …
//! (ms) and `Histogram log format.Compressed Histogram`, the HDR histogram of its
//! latencies in microseconds (base64 of the V2 encoding with DEFLATE) — exact.
//!
//! The command is the `step` label. Without the histograms (memtier before 2.0) the
//! percentiles are read as given (percentiles only). `Totals.Connection Errors` are the
//! run's errors; memtier counts none per command.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::{Map, Value};

use super::ImportError;
use super::summary::{Dist, Summary, count, number, parse_json, percentile_key, whole};
use crate::engine::metrics::{Fidelity, Labels, QuantileTable, labels};

const HINT: &str = "memtier's percentiles are those of `--print-percentiles`; a memtier with HDR histograms in its JSON (2.0 or later) answers every percentile";
const LABEL_HINT: &str = "memtier's stats are per command (`step`) only";

pub fn read(text: &str) -> Result<Summary, Vec<ImportError>> {
    let v = parse_json(text, "memtier_benchmark's JSON (`--json-out-file`)")?;
    let stats = v
        .get("ALL STATS")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            whole("no `ALL STATS` object: not memtier_benchmark's `--json-out-file` of one run")
        })?;
    let duration_ms = number(stats.get("Runtime").and_then(|r| r.get("Total duration")))
        .filter(|d| *d > 0.0)
        .ok_or_else(|| {
            whole("`ALL STATS.Runtime.Total duration` is not a positive number of ms")
        })?;
    let unit = stats
        .get("Runtime")
        .and_then(|r| r.get("Time unit"))
        .and_then(Value::as_str);
    if unit.is_some_and(|u| u != "MILLISECONDS") {
        return Err(whole(format!(
            "`Runtime.Time unit` is {unit:?}; memtier writes MILLISECONDS"
        )));
    }
    let commands: Vec<(&String, &Map<String, Value>)> = stats
        .iter()
        .filter(|(k, _)| *k != "Runtime" && *k != "Totals")
        .filter_map(|(k, c)| Some((k, c.as_object()?)))
        .filter(|(_, c)| c.contains_key("Count") && count(c.get("Count")) != Some(0))
        .collect();
    let totals = stats
        .get("Totals")
        .and_then(Value::as_object)
        .ok_or_else(|| whole("no `ALL STATS.Totals` object"))?;
    let exact = commands.iter().all(|(_, c)| {
        c.get("Percentile Latencies")
            .and_then(|p| p.get("Histogram log format"))
            .is_some()
    });
    let (fidelity, hint) = if exact {
        (Fidelity::Exact, "")
    } else {
        (Fidelity::Percentiles, HINT)
    };
    let mut s = Summary::new("memtier's JSON", fidelity, hint, LABEL_HINT);
    s.elapsed_s = duration_ms / 1000.0;
    for (name, c) in &commands {
        let n =
            count(c.get("Count")).ok_or_else(|| whole(format!("`{name}.Count` is not a count")))?;
        if n == 0 {
            continue;
        }
        let latency = if exact {
            Dist::Histogram(histogram(name, c)?)
        } else {
            Dist::Table(table(c, n))
        };
        let g = s.group(labels(&[("step", name)]));
        g.requests = Some(n);
        g.latency = Some(latency);
    }
    let all = s.group(Labels::new());
    all.requests =
        Some(count(totals.get("Count")).ok_or_else(|| whole("`Totals.Count` is not a count"))?);
    all.errors = Some(count(totals.get("Connection Errors")).unwrap_or(0));
    if !exact {
        all.latency = count(totals.get("Count")).map(|n| Dist::Table(table(totals, n)));
    }
    s.notes.push(format!(
        "memtier's JSON gives {} per command; errors are its connection errors, for the whole run",
        if exact {
            "HDR histograms (exact)"
        } else {
            "percentiles only"
        }
    ));
    Ok(s)
}

/// The command's HDR histogram (microseconds).
fn histogram(name: &str, c: &Map<String, Value>) -> Result<Histogram<u64>, Vec<ImportError>> {
    let text = c
        .get("Percentile Latencies")
        .and_then(|p| p.get("Histogram log format"))
        .and_then(|h| h.get("Compressed Histogram"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            whole(format!(
                "`{name}` has no `Histogram log format.Compressed Histogram` string"
            ))
        })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| {
            whole(format!(
                "`{name}`'s compressed histogram is not base64: {e}"
            ))
        })?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| {
            whole(format!(
                "`{name}`'s compressed histogram is not an HDR histogram: {e:?}"
            ))
        })?;
    h.auto(true);
    Ok(h)
}

/// The percentiles of a command as given (ms → s).
fn table(c: &Map<String, Value>, n: u64) -> QuantileTable {
    let ms = |k: &str| number(c.get(k)).map(|v| v / 1000.0);
    let mut t = QuantileTable::new("latency", Labels::new());
    t.count = Some(n);
    t.mean = ms("Average Latency");
    t.min = ms("Min Latency");
    t.max = ms("Max Latency");
    if let Some(p) = c.get("Percentile Latencies").and_then(Value::as_object) {
        for (k, v) in p {
            if let (Some(q), Some(x)) = (percentile_key(k), number(Some(v))) {
                t.percentiles.push((q, x / 1000.0));
            }
        }
    }
    t.percentiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_histograms_the_percentiles_are_read_as_given() {
        let text = r#"{"ALL STATS":{"Runtime":{"Total duration":2000,"Time unit":"MILLISECONDS"},
            "Gets":{"Count":100,"Average Latency":0.5,"Min Latency":0.1,"Max Latency":3.0,"Percentile Latencies":{"p50.00":0.4,"p99.00":2.0}},
            "Waits":{"Count":0},
            "Totals":{"Count":100,"Connection Errors":0,"Percentile Latencies":{"p50.00":0.4}}}}"#;
        let s = read(text).unwrap();
        assert_eq!(s.fidelity, Fidelity::Percentiles);
        assert_eq!(s.elapsed_s, 2.0);
        assert_eq!(s.groups.len(), 2);
        let Some(Dist::Table(t)) = &s.groups[0].latency else {
            panic!()
        };
        assert_eq!(t.percentile(99.0), Some(0.002));
    }

    #[test]
    fn a_bad_histogram_is_named() {
        let text = r#"{"ALL STATS":{"Runtime":{"Total duration":2000},
            "Gets":{"Count":1,"Percentile Latencies":{"Histogram log format":{"Compressed Histogram":"bm90IGhkcg=="}}},
            "Totals":{"Count":1}}}"#;
        let e = read(text).unwrap_err();
        assert!(
            e[0].message
                .contains("`Gets`'s compressed histogram is not an HDR"),
            "{e:?}"
        );
        assert!(read(r#"{"ALL STATS":{}}"#).is_err());
    }
}

//! oha's JSON output (`oha --output-format json URL`, `-j` in older versions): `summary`
//! (`total` seconds, `slowest`, `fastest`, `average` in seconds), `latencyPercentiles`
//! (`p10` … `p99.99`, seconds, over the requests that got a response),
//! `statusCodeDistribution` (responses per status) and `errorDistribution` (requests without
//! a response, per error message).
//!
//! A response with a status of 400 or more counts as an error, as in perfspec's own runs
//! and k6's default; requests `aborted due to deadline` (cut off by `-z`) are not requests.
//! oha has no request names: its only label is `status`, on the counts.

use serde_json::Value;

use super::ImportError;
use super::summary::{Dist, Summary, count, number, parse_json, percentile_key, whole};
use crate::engine::metrics::{Fidelity, Labels, QuantileTable, labels};

const HINT: &str = "oha exports p10, p25, p50, p75, p90, p95, p99, p99.9 and p99.99 only; for other statistics run the load with perfspec";
const LABEL_HINT: &str = "oha measures one URL and gives its percentiles over all responses; run one oha per URL and import each in its own spec";
/// oha's error for requests its `-z` deadline cut off.
const DEADLINE: &str = "aborted due to deadline";

pub fn read(text: &str) -> Result<Summary, Vec<ImportError>> {
    let v = parse_json(text, "oha's JSON output (`oha --output-format json`)")?;
    let summary = v.get("summary").filter(|s| s.is_object()).ok_or_else(|| {
        whole("no `summary` object: not oha's JSON output (write it with `oha --output-format json URL > FILE`)")
    })?;
    let total = number(summary.get("total"))
        .filter(|t| *t > 0.0)
        .ok_or_else(|| whole("summary.total is not a positive number of seconds"))?;
    let percentiles = v
        .get("latencyPercentiles")
        .and_then(Value::as_object)
        .ok_or_else(|| whole("no `latencyPercentiles` object"))?;
    let statuses = v
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
        .ok_or_else(|| whole("no `statusCodeDistribution` object"))?;
    let mut s = Summary::new("oha's output", Fidelity::Percentiles, HINT, LABEL_HINT);
    s.elapsed_s = total;
    let (mut requests, mut errors, mut responses) = (0u64, 0u64, 0u64);
    for (code, n) in statuses {
        let (Ok(c), Some(n)) = (code.parse::<u16>(), count(Some(n))) else {
            return Err(whole(format!(
                "statusCodeDistribution.{code} is not a count of an HTTP status"
            )));
        };
        let failed = if c >= 400 { n } else { 0 };
        let g = s.group(labels(&[("status", code)]));
        g.requests = Some(n);
        g.errors = Some(failed);
        requests += n;
        errors += failed;
        responses += n;
    }
    let failures = v.get("errorDistribution").and_then(Value::as_object);
    for (msg, n) in failures.into_iter().flatten() {
        let n = count(Some(n))
            .ok_or_else(|| whole(format!("errorDistribution.{msg:?} is not a count")))?;
        if msg == DEADLINE {
            continue;
        }
        let status = if msg == "timeout" { "timeout" } else { "error" };
        let g = s.group(labels(&[("status", status)]));
        g.requests = Some(g.requests.unwrap_or(0) + n);
        g.errors = Some(g.errors.unwrap_or(0) + n);
        s.errors
            .push((msg.clone(), labels(&[("status", status)]), n));
        requests += n;
        errors += n;
    }
    let mut t = QuantileTable::new("latency", Labels::new());
    for (k, val) in percentiles {
        let p = percentile_key(k)
            .ok_or_else(|| whole(format!("latencyPercentiles.{k} is not a percentile")))?;
        // oha writes null where no request got a response
        if let Some(x) = number(Some(val)) {
            t.percentiles.push((p, x));
        }
    }
    t.percentiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    if responses > 0 {
        t.count = Some(responses);
        t.mean = number(summary.get("average"));
        t.min = number(summary.get("fastest"));
        t.max = number(summary.get("slowest"));
    }
    let all = s.group(Labels::new());
    all.requests = Some(requests);
    all.errors = Some(errors);
    if responses > 0 {
        all.latency = Some(Dist::Table(t));
    }
    s.notes.push("oha's percentiles cover the requests that got a response; a status of 400 or more counts as an error".to_string());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_errors_are_counted_and_deadlines_dropped() {
        let text = r#"{"summary":{"successRate":0.99,"total":2.0,"slowest":0.5,"fastest":0.001,"average":0.01,"requestsPerSec":50},
            "latencyPercentiles":{"p50":0.008,"p99":0.2,"p99.9":null},
            "statusCodeDistribution":{"200":90,"503":8},
            "errorDistribution":{"timeout":1,"connection refused":1,"aborted due to deadline":5}}"#;
        let s = read(text).unwrap();
        let all = s.groups.iter().find(|g| g.labels.is_empty()).unwrap();
        assert_eq!(all.requests, Some(100));
        assert_eq!(all.errors, Some(10));
        let Some(Dist::Table(t)) = &all.latency else {
            panic!()
        };
        assert_eq!(t.percentiles, vec![(50.0, 0.008), (99.0, 0.2)]);
        assert_eq!(t.count, Some(98));
        assert_eq!(s.errors.len(), 2);
    }

    #[test]
    fn missing_parts_are_named() {
        let e = read(r#"{"summary":{"total":1}}"#).unwrap_err();
        assert!(e[0].message.contains("latencyPercentiles"), "{e:?}");
        let e = read(
            r#"{"summary":{"total":1},"latencyPercentiles":{},"statusCodeDistribution":{"OK":1}}"#,
        )
        .unwrap_err();
        assert!(e[0].message.contains("statusCodeDistribution.OK"), "{e:?}");
    }
}

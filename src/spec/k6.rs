//! k6 vocabulary in SLOs: `p(95)<200`, `http_req_duration`, `http_req_failed`, `http_reqs`,
//! `iterations`, `vus`, `checks`. Such an SLO does not parse or check; this module turns it
//! into the perfspec SLO it most likely means, for the hint. k6's names and threshold syntax
//! are from its documentation (<https://grafana.com/docs/k6/latest/using-k6/thresholds/> and
//! `…/metrics/reference/`): durations are in milliseconds, `http_req_failed` is a rate (0 … 1).

use std::sync::LazyLock;

use regex::Regex;

/// `AGG OP NUMBER[UNIT]` (k6's threshold form, the metric implied), `METRIC OP NUMBER`,
/// or `AGG(METRIC) OP NUMBER`.
static FORM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:(?P<agg>p\(\s*(?P<pct>\d+(?:\.\d+)?)\s*\)|p\d+(?:\.\d+)?|avg|med|mean|min|max|rate|count)\s*(?:\(\s*(?P<m1>[A-Za-z_]+)\s*\))?|(?P<m2>[A-Za-z_]+))\s*(?P<op><=|>=|==|<|>)\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z%/]*)\s*$",
    )
    .expect("the k6 pattern compiles")
});

/// k6 metric names perfspec knows a counterpart of.
const K6_METRICS: &[&str] = &[
    "http_req_duration",
    "http_req_failed",
    "http_reqs",
    "iterations",
    "vus",
    "vus_max",
    "checks",
];

/// A hint for an SLO written in k6's vocabulary, or `None` when it does not look like k6.
pub fn hint(text: &str) -> Option<String> {
    let c = FORM.captures(text)?;
    let agg = c.name("agg").map(|m| m.as_str());
    let metric = c.name("m1").or(c.name("m2")).map(|m| m.as_str());
    let k6_agg = agg.is_some_and(|a| a.starts_with("p(") || a == "avg" || a == "med");
    let k6_metric = metric.is_some_and(|m| K6_METRICS.contains(&m));
    // `p95(latency) < 1s` and `error_rate < 1` are perfspec's own: not k6
    if !(k6_agg || k6_metric || (agg.is_some() && metric.is_none())) {
        return None;
    }
    let (op, num, unit) = (&c["op"], &c["num"], &c["unit"]);
    let value: f64 = num.parse().ok()?;
    let pct = |v: f64| format!("{}%", crate::spec::units::trim_float(v * 100.0));
    let suggestion = match metric.unwrap_or(match agg {
        Some("rate") if value < 1.0 => "http_req_failed",
        Some("rate") => "http_reqs",
        Some("count") => "http_reqs",
        _ => "http_req_duration",
    }) {
        "http_req_duration" => {
            let agg = match agg {
                Some(a) if a.starts_with("p(") => format!("p{}", &c["pct"]),
                Some("avg") => "mean".into(),
                Some("med") => "p50".into(),
                Some(a @ ("mean" | "min" | "max")) => a.into(),
                Some(a) if a.starts_with('p') => a.into(),
                _ => "p95".into(),
            };
            let unit = if unit.is_empty() { "ms" } else { unit };
            format!("{agg}(latency) {op} {num}{unit}")
        }
        "http_req_failed" | "checks" if unit.is_empty() && value <= 1.0 => {
            format!("error_rate {op} {}", pct(value))
        }
        "http_req_failed" | "checks" => format!("error_rate {op} {num}{unit}"),
        "http_reqs" if agg == Some("rate") || unit.contains('/') => {
            format!("throughput {op} {num}/s")
        }
        "http_reqs" => format!("requests {op} {num}"),
        "iterations" if agg == Some("rate") || unit.contains('/') => {
            format!("rate(arrivals) {op} {num}/s")
        }
        "iterations" => format!("arrivals {op} {num}"),
        "vus" | "vus_max" => {
            return Some(
                "k6's `vus` is not a metric here: perfspec sets virtual users in the stages (`model = \"closed\"`, `{ hold = 10, for = \"30s\" }`)".into(),
            );
        }
        _ => return None,
    };
    let note = if suggestion.contains("(latency)") {
        " (k6 durations are milliseconds; perfspec writes the unit)"
    } else {
        ""
    };
    Some(format!(
        "this looks like k6: did you mean `{suggestion}`?{note}"
    ))
}

#[cfg(test)]
mod tests {
    use super::hint;

    fn suggests(text: &str) -> String {
        let h = hint(text).unwrap_or_else(|| panic!("no k6 hint for `{text}`"));
        h.split('`').nth(1).unwrap_or_default().to_string()
    }

    #[test]
    fn k6_thresholds_map_to_perfspec_slos() {
        assert_eq!(suggests("p(95)<200"), "p95(latency) < 200ms");
        assert_eq!(suggests("p(99.9) <= 1500"), "p99.9(latency) <= 1500ms");
        assert_eq!(suggests("avg<100"), "mean(latency) < 100ms");
        assert_eq!(suggests("med < 80"), "p50(latency) < 80ms");
        assert_eq!(suggests("http_req_duration < 200"), "p95(latency) < 200ms");
        assert_eq!(
            suggests("p95(http_req_duration) < 200ms"),
            "p95(latency) < 200ms"
        );
        assert_eq!(suggests("http_req_failed < 0.01"), "error_rate < 1%");
        assert_eq!(suggests("rate<0.01"), "error_rate < 1%");
        assert_eq!(suggests("rate(http_reqs) > 10/s"), "throughput > 10/s");
        assert_eq!(suggests("http_reqs > 1000"), "requests > 1000");
        assert_eq!(suggests("iterations > 5"), "arrivals > 5");
        assert!(hint("vus < 3").unwrap().contains("stages"));
    }

    #[test]
    fn perfspec_slos_are_not_k6() {
        for text in [
            "p95(latency) < 250ms",
            "error_rate < 1",
            "throughput > 20/s",
            "p95(latncy) < 1s",
        ] {
            assert_eq!(hint(text), None, "{text}");
        }
    }
}

//! k6's JSON output (`k6 run --out json=FILE`): one JSON object per line. Lines of `"type":
//! "Point"` carry one sample of one metric; every HTTP request gives one `http_req_duration`
//! point (milliseconds) and one `http_req_failed` point (1 = failed, k6 ≥ 0.31), stamped
//! with the same time and tags. Other metrics and `"type": "Metric"` lines are skipped.

use std::collections::HashMap;

use serde_json::Value;

use super::time::rfc3339;
use super::{ImportError, Sample};

/// The request's identity across its points: time and tags as written.
type PointKey = (String, String);

pub fn read(text: &str) -> Result<Vec<Sample>, Vec<ImportError>> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut by_key: HashMap<PointKey, Vec<usize>> = HashMap::new();
    // `http_req_failed` points seen before their duration point
    let mut failed_early: HashMap<PointKey, Vec<bool>> = HashMap::new();
    let mut saw_failed = false;
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut err = |message: String| {
            errors.push(ImportError {
                line: line_no,
                message,
            })
        };
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                err(format!("not a JSON object of k6's --out json: {e}"));
                continue;
            }
        };
        if v.get("type").and_then(Value::as_str) != Some("Point") {
            continue;
        }
        let metric = v.get("metric").and_then(Value::as_str).unwrap_or_default();
        if metric != "http_req_duration" && metric != "http_req_failed" {
            continue;
        }
        let data = v.get("data");
        let time = data.and_then(|d| d.get("time")).and_then(Value::as_str);
        let value = data.and_then(|d| d.get("value")).and_then(Value::as_f64);
        let tags = data
            .and_then(|d| d.get("tags"))
            .cloned()
            .unwrap_or(Value::Null);
        let (Some(time), Some(value)) = (time, value) else {
            err(format!(
                "a {metric} point without data.time or a numeric data.value"
            ));
            continue;
        };
        let key = (time.to_string(), tags.to_string());
        if metric == "http_req_failed" {
            saw_failed = true;
            let failed = value != 0.0;
            match by_key.get_mut(&key).and_then(|v| v.pop()) {
                Some(i) => set_failed(&mut samples[i], failed),
                None => failed_early.entry(key).or_default().push(failed),
            }
            continue;
        }
        let Some(end_s) = rfc3339(time) else {
            err(format!("data.time `{time}` is not an RFC 3339 time"));
            continue;
        };
        if !(value.is_finite() && value >= 0.0) {
            err(format!("http_req_duration {value} is not a duration in ms"));
            continue;
        }
        let mut s = sample(end_s, value / 1000.0, &tags);
        if let Some(f) = failed_early.get_mut(&key).and_then(|v| v.pop()) {
            set_failed(&mut s, f);
        } else {
            by_key.entry(key).or_default().push(samples.len());
        }
        samples.push(s);
    }
    if !saw_failed {
        // before k6 0.31 (no http_req_failed): k6's default expectation, 200–399
        for s in &mut samples {
            let ok = s.status.is_some_and(|c| (200..400).contains(&c));
            set_failed(s, !ok);
        }
    }
    if errors.is_empty() {
        Ok(samples)
    } else {
        Err(errors)
    }
}

/// A sample from a duration point; not failed until its `http_req_failed` says so.
fn sample(end_s: f64, elapsed_s: f64, tags: &Value) -> Sample {
    let tag = |k: &str| tags.get(k).and_then(Value::as_str).unwrap_or_default();
    let group = tag("group").trim_start_matches("::");
    let journey = match (group, tag("scenario")) {
        ("", "") => "default".to_string(),
        ("", scenario) => scenario.to_string(),
        (group, _) => group.replace("::", " / "),
    };
    let step = match (tag("name"), tag("method"), tag("url")) {
        ("", m, u) if !u.is_empty() => format!("{m} {u}").trim().to_string(),
        (name, _, _) if !name.is_empty() => name.to_string(),
        _ => "request".to_string(),
    };
    Sample {
        end_s,
        elapsed_s,
        journey,
        step,
        status: tag("status").parse().ok().filter(|&c| c > 0),
        error: None,
    }
}

fn set_failed(s: &mut Sample, failed: bool) {
    s.error = failed.then(|| match s.status {
        Some(c) => format!("{}: status {c}", s.step),
        None => format!("{}: no response", s.step),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(metric: &str, time: &str, value: f64, name: &str, status: &str) -> String {
        format!(
            r#"{{"type":"Point","metric":"{metric}","data":{{"time":"{time}","value":{value},"tags":{{"group":"::login","method":"GET","name":"{name}","scenario":"default","status":"{status}"}}}}}}"#
        )
    }

    #[test]
    fn durations_pair_with_their_failed_points() {
        let t = "2026-12-02T10:00:01.5Z";
        let text = [
            r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend"},"metric":"http_req_duration"}"#.to_string(),
            point("http_reqs", t, 1.0, "home", "200"),
            point("http_req_duration", t, 12.5, "home", "200"),
            point("http_req_failed", t, 0.0, "home", "200"),
            // the failed point may come first
            point("http_req_failed", t, 1.0, "home", "503"),
            point("http_req_duration", t, 40.0, "home", "503"),
        ]
        .join("\n");
        let s = read(&text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].journey, "login");
        assert_eq!(s[0].step, "home");
        assert_eq!(s[0].status, Some(200));
        assert!((s[0].elapsed_s - 0.0125).abs() < 1e-12);
        assert_eq!(s[0].error, None);
        assert_eq!(s[1].error.as_deref(), Some("home: status 503"));
    }

    #[test]
    fn without_failed_points_k6s_default_expectation_decides() {
        let t = "2026-12-02T10:00:01Z";
        let text = [
            point("http_req_duration", t, 5.0, "a", "200"),
            point("http_req_duration", t, 5.0, "a", "404"),
            point("http_req_duration", t, 5.0, "a", "0"),
        ]
        .join("\n");
        let s = read(&text).unwrap();
        let failed: Vec<bool> = s.iter().map(|s| s.error.is_some()).collect();
        assert_eq!(failed, [false, true, true]);
        assert_eq!(s[2].status, None);
    }

    #[test]
    fn broken_lines_are_located() {
        let text = format!(
            "{}\nnot json\n{}\n",
            point("http_req_duration", "2026-12-02T10:00:01Z", 5.0, "a", "200"),
            point("http_req_duration", "yesterday", 5.0, "a", "200"),
        );
        let e = read(&text).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].line, 2);
        assert_eq!(e[1].line, 3);
        assert!(e[1].message.contains("RFC 3339"), "{:?}", e[1]);
    }
}

//! Locust's results. `locust --csv PREFIX` writes `PREFIX_stats.csv`: one row per request
//! name (`Type`, `Name`, `Request Count`, `Failure Count`, `Median`/`Average`/`Min`/`Max
//! Response Time` in ms, `Requests/s`, and the percentile columns `50%` … `100%`), and a last
//! row `Aggregated` for the whole run — percentiles only (Locust computes them from its
//! response-time buckets). `locust --json` prints the stats entries themselves: per name
//! and method `num_requests`, `num_failures` and `response_times`, Locust's buckets
//! `{ms rounded to 2 significant digits: count}` — bucketed, any percentile.
//!
//! The request name is the `step` label (`METHOD name` where one name has several
//! methods); Locust has no journeys and no status per request.

use hdrhistogram::Histogram;
use serde_json::Value;

use super::ImportError;
use super::summary::{Dist, Summary, count, number, parse_json, whole};
use crate::engine::metrics::{Fidelity, Labels, QuantileTable, labels};

const CSV_HINT: &str = "Locust's CSV has the percentiles 50%, 66%, 75%, 80%, 90%, 95%, 98%, 99%, 99.9%, 99.99% and 100% (set others with `locust.stats.PERCENTILES_TO_REPORT`), or import `locust --json` (its response-time buckets)";
const JSON_HINT: &str = "Locust's JSON has every percentile of its response-time buckets";
const LABEL_HINT: &str = "Locust's stats are per request name (`step`) only";
const REQUIRED: [&str; 4] = ["Type", "Name", "Request Count", "Failure Count"];

pub fn read_csv(text: &str) -> Result<Summary, Vec<ImportError>> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = super::columns::header(
        &mut rdr,
        "Locust stats",
        &REQUIRED,
        "not Locust's `_stats.csv` (write it with `locust --csv PREFIX`)",
    )?;
    let col = |name: &str| super::columns::position(&header, name);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for row in rdr.records() {
        match row {
            Ok(r) => rows.push(r),
            Err(e) => errors.push(ImportError {
                line: e.position().map_or(0, |p| p.line() as usize),
                message: format!("not a row of Locust's stats: {e}"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let names: Vec<(String, String)> = rows
        .iter()
        .map(|r| (field(r, col("Type")), field(r, col("Name"))))
        .collect();
    let mut s = Summary::new(
        "Locust's CSV stats",
        Fidelity::Percentiles,
        CSV_HINT,
        LABEL_HINT,
    );
    for (r, (method, name)) in rows.iter().zip(&names) {
        let line = r.position().map_or(0, |p| p.line() as usize);
        let err = |message: String| vec![ImportError { line, message }];
        let num = |c: &str| -> Result<Option<f64>, Vec<ImportError>> {
            match field(r, col(c)).as_str() {
                "" | "N/A" => Ok(None),
                v => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .map(Some)
                    .ok_or_else(|| err(format!("{c} `{v}` is not a number"))),
            }
        };
        let whole_count = |c: &str| -> Result<u64, Vec<ImportError>> {
            num(c)?
                .filter(|x| x.fract() == 0.0)
                .map(|x| x as u64)
                .ok_or_else(|| err(format!("{c} `{}` is not a count", field(r, col(c)))))
        };
        let requests = whole_count("Request Count")?;
        let failures = whole_count("Failure Count")?;
        let total = name == "Aggregated" && matches!(method.as_str(), "" | "None");
        let mut t = QuantileTable::new("latency", Labels::new());
        t.mean = num("Average Response Time")?.map(|ms| ms / 1000.0);
        t.min = num("Min Response Time")?.map(|ms| ms / 1000.0);
        t.max = num("Max Response Time")?.map(|ms| ms / 1000.0);
        for h in header.iter() {
            let Some(p) = h
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.parse::<f64>().ok())
            else {
                continue;
            };
            let Some(ms) = num(h.trim())? else { continue };
            if p >= 100.0 {
                t.max = t.max.or(Some(ms / 1000.0));
            } else if p > 0.0 {
                t.percentiles.push((p, ms / 1000.0));
            }
        }
        if t.percentile(50.0).is_none()
            && let Some(ms) = num("Median Response Time")?
        {
            t.percentiles.push((50.0, ms / 1000.0));
        }
        t.percentiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        t.count = Some(requests);
        let labels = if total {
            if let Some(rps) = num("Requests/s")?.filter(|r| *r > 0.0) {
                s.elapsed_s = requests as f64 / rps;
            }
            Labels::new()
        } else {
            labels(&[("step", &step_name(&names, method, name))])
        };
        let g = s.group(labels);
        g.requests = Some(requests);
        g.errors = Some(failures);
        g.latency = (requests > 0).then_some(Dist::Table(t));
    }
    if !s.groups.iter().any(|g| g.labels.is_empty()) {
        return Err(whole(
            "no `Aggregated` row: the file is not a complete `_stats.csv` (Locust writes that row last)",
        ));
    }
    s.notes.push("Locust's CSV gives percentiles computed from its response-time buckets (2 significant digits); only those columns can be judged".to_string());
    Ok(s)
}

fn field(r: &csv::StringRecord, i: Option<usize>) -> String {
    i.and_then(|i| r.get(i))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A request's step label: its name, or `METHOD name` when the name has several methods.
fn step_name(all: &[(String, String)], method: &str, name: &str) -> String {
    let methods = all.iter().filter(|(_, n)| n == name).count();
    if methods > 1 && !method.is_empty() {
        format!("{method} {name}")
    } else {
        name.to_string()
    }
}

pub fn read_json(text: &str) -> Result<Summary, Vec<ImportError>> {
    let v = parse_json(text, "Locust's JSON stats (`locust --json`)")?;
    let entries = v.as_array().ok_or_else(|| {
        whole("not a list of stats entries: not `locust --json` output (write it with `locust --headless --json > FILE`)")
    })?;
    let names: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let text = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (text("method"), text("name"))
        })
        .collect();
    let mut s = Summary::new(
        "Locust's JSON stats",
        Fidelity::Bucketed,
        JSON_HINT,
        LABEL_HINT,
    );
    let (mut start, mut end) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut requests, mut failures) = (0u64, 0u64);
    for (i, (e, (method, name))) in entries.iter().zip(&names).enumerate() {
        let at = |what: &str| whole(format!("entry {i} ({method} {name}): {what}"));
        let n = count(e.get("num_requests")).ok_or_else(|| at("no integer num_requests"))?;
        let f = count(e.get("num_failures")).ok_or_else(|| at("no integer num_failures"))?;
        let buckets = e
            .get("response_times")
            .and_then(Value::as_object)
            .ok_or_else(|| at("no response_times object"))?;
        let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        h.auto(true);
        for (ms, c) in buckets {
            let (Some(ms), Some(c)) =
                (ms.parse::<f64>().ok().filter(|x| *x >= 0.0), count(Some(c)))
            else {
                return Err(at(&format!(
                    "response_times has `{ms}` that is not ms: count"
                )));
            };
            let _ = h.record_n((ms * 1000.0).round() as u64, c);
        }
        if let Some(t) = number(e.get("start_time")) {
            start = start.min(t);
        }
        if let Some(t) = number(e.get("last_request_timestamp")) {
            end = end.max(t);
        }
        let g = s.group(labels(&[("step", &step_name(&names, method, name))]));
        g.requests = Some(n);
        g.errors = Some(f);
        g.latency = Some(Dist::Histogram(h));
        requests += n;
        failures += f;
    }
    if entries.is_empty() {
        return Err(whole("no stats entries: the run made no requests"));
    }
    s.elapsed_s = if end > start { end - start } else { 0.0 };
    let all = s.group(Labels::new());
    all.requests = Some(requests);
    all.errors = Some(failures);
    s.notes.push("Locust's JSON gives response times in Locust's buckets (ms rounded to 2 significant digits): percentiles are exact to that resolution".to_string());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

    #[test]
    fn csv_rows_become_steps_and_the_aggregate() {
        let text = format!(
            "{HEADER}\nGET,/login,10,1,20,25,10,90,100,1.0,0.1,20,22,24,26,30,40,60,80,90,90,90\nGET,/cart,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n,Aggregated,10,1,20,25,10,90,100,2.0,0.1,20,22,24,26,30,40,60,80,90,90,90\n"
        );
        let s = read_csv(&text).unwrap();
        assert_eq!(s.elapsed_s, 5.0);
        assert_eq!(s.groups.len(), 3);
        assert_eq!(s.groups[0].labels["step"], "/login");
        let Some(Dist::Table(t)) = &s.groups[0].latency else {
            panic!()
        };
        assert_eq!(t.percentile(95.0), Some(0.04));
        assert_eq!(t.percentile(99.99), Some(0.09));
        assert_eq!(t.max, Some(0.09));
        assert!(s.groups[1].latency.is_none());
    }

    #[test]
    fn csv_problems_are_located() {
        let e = read_csv("Name,Request Count\n/a,1\n").unwrap_err();
        assert!(e[0].message.contains("Type, Failure Count"), "{e:?}");
        let text = format!("{HEADER}\nGET,/a,x,0,1,1,1,1,1,1,0,1,1,1,1,1,1,1,1,1,1,1\n");
        let e = read_csv(&text).unwrap_err();
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("Request Count `x`"), "{e:?}");
        let text = format!("{HEADER}\nGET,/a,1,0\n");
        assert_eq!(read_csv(&text).unwrap_err()[0].line, 2);
    }

    #[test]
    fn one_name_with_two_methods_is_two_steps() {
        let all = [("GET".into(), "/a".into()), ("POST".into(), "/a".into())];
        assert_eq!(step_name(&all, "POST", "/a"), "POST /a");
        assert_eq!(step_name(&all[..1], "GET", "/a"), "/a");
    }

    #[test]
    fn json_buckets_become_histograms() {
        let text = r#"[{"name":"/a","method":"GET","num_requests":3,"num_failures":1,"start_time":100.0,"last_request_timestamp":110.0,"response_times":{"5":1,"150.0":2}}]"#;
        let s = read_json(text).unwrap();
        assert_eq!(s.elapsed_s, 10.0);
        let Some(Dist::Histogram(h)) = &s.groups[0].latency else {
            panic!()
        };
        assert_eq!(h.len(), 3);
        assert_eq!(h.max(), h.highest_equivalent(150_000));
        assert!(read_json("{}").is_err());
        assert!(
            read_json(r#"[{"name":"/a"}]"#).unwrap_err()[0]
                .message
                .contains("num_requests")
        );
    }
}

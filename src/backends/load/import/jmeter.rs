//! JMeter's CSV results (`jmeter -n -t plan.jmx -l results.jtl`, the default CSV format with
//! its header line). Each row is one sample: `timeStamp` (ms since the epoch, when the
//! sample started: JMeter's default `timestamp_format=ms`), `elapsed` (ms), `label`,
//! `responseCode`, `success`, and optionally `failureMessage`, `responseMessage` and
//! `threadName` (its thread group becomes the `journey`).

use super::{ImportError, Sample};

const REQUIRED: [&str; 4] = ["timeStamp", "elapsed", "label", "success"];

pub fn read(text: &str) -> Result<Vec<Sample>, Vec<ImportError>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = super::columns::header(
        &mut rdr,
        "JTL",
        &REQUIRED,
        "write results as CSV with a header (jmeter.save.saveservice.print_field_names=true)",
    )?;
    let col = |name: &str| super::columns::position(&header, name);
    let [ts, elapsed, label, success] = REQUIRED.map(|c| col(c).unwrap_or_default());
    let code = col("responseCode");
    let failure = col("failureMessage");
    let message = col("responseMessage");
    let thread = col("threadName");
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for row in rdr.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(ImportError {
                    line,
                    message: format!("not a JTL row: {e}"),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| row.get(i).unwrap_or_default().trim();
        let opt = |i: Option<usize>| i.map(field).filter(|s| !s.is_empty());
        let mut err = |message: String| errors.push(ImportError { line, message });
        let Ok(start_ms) = field(ts).parse::<f64>() else {
            err(format!(
                "timeStamp `{}` is not milliseconds since the epoch (set jmeter.save.saveservice.timestamp_format=ms)",
                field(ts)
            ));
            continue;
        };
        let Some(ms) = field(elapsed).parse::<f64>().ok().filter(|v| *v >= 0.0) else {
            err(format!(
                "elapsed `{}` is not a duration in ms",
                field(elapsed)
            ));
            continue;
        };
        let ok = match field(success) {
            s if s.eq_ignore_ascii_case("true") => true,
            s if s.eq_ignore_ascii_case("false") => false,
            s => {
                err(format!("success `{s}` is neither true nor false"));
                continue;
            }
        };
        let step = field(label).to_string();
        let status = opt(code).and_then(|c| c.parse().ok()).filter(|&c| c > 0);
        let error = (!ok).then(|| {
            let why = opt(failure)
                .or(opt(message))
                .or(opt(code))
                .unwrap_or("failed");
            format!("{step}: {why}")
        });
        samples.push(Sample {
            end_s: (start_ms + ms) / 1000.0,
            elapsed_s: ms / 1000.0,
            journey: opt(thread).map_or_else(|| "jmeter".to_string(), thread_group),
            step,
            status,
            error,
        });
    }
    if errors.is_empty() {
        Ok(samples)
    } else {
        Err(errors)
    }
}

/// The thread group of a JMeter thread name: `Checkout 1-7` → `Checkout` (JMeter names
/// threads `<group> <group number>-<thread number>`).
fn thread_group(name: &str) -> String {
    match name.rsplit_once(' ') {
        Some((group, n))
            if !group.is_empty()
                && n.split_once('-').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                }) =>
        {
            group.to_string()
        }
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect";

    #[test]
    fn rows_become_samples() {
        let text = format!(
            "{HEADER}\n1796205600000,120,login,200,OK,Shoppers 1-1,text,true,,100,50,1,1,http://h/login,100,0,3\n1796205600100,30,cart,500,Server Error,Shoppers 1-2,text,false,\"expected 200, got 500\",10,5,1,1,http://h/cart,30,0,1\n1796205600200,1000,cart,Non HTTP response code: java.net.ConnectException,refused,Shoppers 1-2,text,false,,0,0,1,1,http://h/cart,0,0,1000\n"
        );
        let s = read(&text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].journey, "Shoppers");
        assert_eq!(s[0].step, "login");
        assert!((s[0].end_s - 1_796_205_600.120).abs() < 1e-6);
        assert!((s[0].elapsed_s - 0.120).abs() < 1e-12);
        assert_eq!(s[0].error, None);
        assert_eq!(s[1].error.as_deref(), Some("cart: expected 200, got 500"));
        assert_eq!(s[1].status, Some(500));
        assert_eq!(s[2].status, None);
        assert_eq!(s[2].error.as_deref(), Some("cart: refused"));
    }

    #[test]
    fn a_header_without_the_needed_columns_says_which() {
        let e = read("time,label\n1,a\n").unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(
            e[0].message.contains("timeStamp, elapsed, success"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_rows_are_located() {
        let text = "timeStamp,elapsed,label,success\n1,2,a,true\n2026/12/02 10:00,2,a,true\n3,x,a,true\n4,2,a,maybe\n5,2,a\n";
        let e = read(text).unwrap_err();
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6], "{e:?}");
        assert!(e[0].message.contains("timestamp_format=ms"), "{e:?}");
    }

    #[test]
    fn thread_groups() {
        assert_eq!(thread_group("Checkout 1-7"), "Checkout");
        assert_eq!(thread_group("Thread Group 12-100"), "Thread Group");
        assert_eq!(thread_group("worker"), "worker");
        assert_eq!(thread_group("a 1-"), "a 1-");
    }
}

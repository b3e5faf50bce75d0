//! Fit-only input: a CSV of measured `(concurrency, throughput)` pairs that capacity planners
//! bring from production or from an earlier benchmark.
//!
//! The first line is a header naming the load column and the throughput column (in any
//! order, any case; other columns are ignored): the load is the column named `concurrency`,
//! `load`, `N`, `clients`, `users`, `threads` or `replicas` (R's `usl` package and most
//! published data sets say `load` or `N`), the throughput the one named `throughput`, `X`,
//! `tput`, `rps`, `qps` or `ops`; `columns = { load = "…", throughput = "…" }` names them
//! when the file says something else. Concurrency is a whole number ≥ 1 (the USL
//! fit evaluates the model at integer concurrency); throughput is a finite number ≥ 0 in
//! operations per second. A level may appear on several rows (repeated measurements). Every
//! problem names the file and the line it is on.

use std::io::Read;
use std::path::Path;

/// The largest concurrency a row may give (the fit evaluates the model at `u32` levels).
pub const MAX_CONCURRENCY: u32 = 1_000_000;

/// Header names taken as the load level when the spec does not name the column.
pub const LOAD_NAMES: &[&str] = &[
    "concurrency",
    "load",
    "n",
    "clients",
    "users",
    "threads",
    "replicas",
];
/// Header names taken as the throughput when the spec does not name the column.
pub const THROUGHPUT_NAMES: &[&str] = &["throughput", "x", "tput", "rps", "qps", "ops"];

/// The columns a spec names (`columns = { load = "…", throughput = "…" }`); `None` takes the
/// usual names.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub load: Option<String>,
    pub throughput: Option<String>,
}

/// One measured point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub concurrency: u32,
    /// Operations per second.
    pub throughput: f64,
}

/// Why a measurements file could not be read. Messages read after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum MeasurementsError {
    #[error("read measurements `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The header lacks a column (or has several candidates): `role` is `load` or `throughput`.
    #[error("read measurements `{path}`: line 1: {message}")]
    Column {
        path: String,
        role: &'static str,
        message: String,
    },
    /// A problem at a line of the file (1-based).
    #[error("read measurements `{path}`: line {line}: {message}")]
    Row {
        path: String,
        line: u64,
        message: String,
    },
}

impl MeasurementsError {
    /// The 1-based line of a row problem.
    pub fn line(&self) -> Option<u64> {
        match self {
            MeasurementsError::Row { line, .. } => Some(*line),
            MeasurementsError::Column { .. } => Some(1),
            MeasurementsError::Io { .. } => None,
        }
    }
}

/// Read a measurements CSV from a file; `display` is the path as the user wrote it.
pub fn read(path: &Path, display: &str, cols: &Columns) -> Result<Vec<Point>, MeasurementsError> {
    parse(open(path, display)?, display, cols)
}

/// Check a measurements file's header only (`validate`): the file opens and has both columns.
/// Returns the header's column names.
pub fn check_header(
    path: &Path,
    display: &str,
    cols: &Columns,
) -> Result<Vec<String>, MeasurementsError> {
    let mut reader = reader(open(path, display)?);
    let (names, _) = header(&mut reader, display, cols)?;
    Ok(names)
}

fn open(
    path: &Path,
    display: &str,
) -> Result<std::io::BufReader<std::fs::File>, MeasurementsError> {
    let file = std::fs::File::open(path).map_err(|source| MeasurementsError::Io {
        path: display.to_string(),
        source,
    })?;
    Ok(std::io::BufReader::new(file))
}

fn reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input)
}

fn csv_error(display: &str, e: csv::Error) -> MeasurementsError {
    let row = |line: u64, message: String| MeasurementsError::Row {
        path: display.to_string(),
        line,
        message,
    };
    match e.position() {
        Some(p) => row(p.line(), e.to_string()),
        None => match e.into_kind() {
            csv::ErrorKind::Io(source) => MeasurementsError::Io {
                path: display.to_string(),
                source,
            },
            kind => row(1, format!("{kind:?}")),
        },
    }
}

/// The header's names and the indices of the load and throughput columns.
fn header<R: Read>(
    reader: &mut csv::Reader<R>,
    display: &str,
    cols: &Columns,
) -> Result<(Vec<String>, (usize, usize)), MeasurementsError> {
    let header = reader.headers().map_err(|e| csv_error(display, e))?.clone();
    let written: Vec<String> = header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let names: Vec<String> = written.iter().map(|n| n.to_ascii_lowercase()).collect();
    let row = |message: String| MeasurementsError::Row {
        path: display.to_string(),
        line: 1,
        message,
    };
    if names.iter().all(|n| n.is_empty()) {
        return Err(row(
            "the file is empty: the first line must be a header `concurrency,throughput`".into(),
        ));
    }
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(row(format!(
            "no header: the first line must name the columns, e.g. `concurrency,throughput` (found `{}`)",
            written.join(",")
        )));
    }
    let column = |role: &'static str, given: Option<&String>, usual: &[&str]| {
        let err = |message: String| MeasurementsError::Column {
            path: display.to_string(),
            role,
            message,
        };
        let wanted: Vec<String> = match given {
            Some(g) => vec![g.to_ascii_lowercase()],
            None => usual.iter().map(|u| u.to_string()).collect(),
        };
        let found: Vec<usize> = (0..names.len())
            .filter(|i| wanted.contains(&names[*i]))
            .collect();
        let has = written.join(", ");
        match found.as_slice() {
            [i] => Ok(*i),
            [] => Err(err(match given {
                Some(g) => format!("missing column `{g}` (the header has: {has})"),
                None => format!(
                    "no {role} column: none is named {} (the header has: {has})",
                    usual.join(", ")
                ),
            })),
            [first, ..] if found.iter().all(|i| names[*i] == names[*first]) => Err(err(format!(
                "column `{}` appears {} times in the header",
                written[*first],
                found.len()
            ))),
            _ => Err(err(format!(
                "several columns could be the {role}: {}",
                found
                    .iter()
                    .map(|i| format!("`{}`", written[*i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    };
    let load = column("load", cols.load.as_ref(), LOAD_NAMES)?;
    let throughput = column("throughput", cols.throughput.as_ref(), THROUGHPUT_NAMES)?;
    Ok((written, (load, throughput)))
}

/// Parse measurements CSV text (see the module docs for the format).
pub fn parse(
    input: impl Read,
    display: &str,
    cols: &Columns,
) -> Result<Vec<Point>, MeasurementsError> {
    let row = |line: u64, message: String| MeasurementsError::Row {
        path: display.to_string(),
        line,
        message,
    };
    let mut reader = reader(input);
    let (_, (ci, ti)) = header(&mut reader, display, cols)?;
    let mut points = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(display, e))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let field = |i: usize, name: &str| match record.get(i) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(row(line, format!("missing value for `{name}`"))),
        };
        let c = field(ci, "concurrency")?;
        let concurrency = parse_concurrency(c).ok_or_else(|| {
            row(
                line,
                format!("concurrency `{c}` is not a whole number from 1 to {MAX_CONCURRENCY}"),
            )
        })?;
        let t = field(ti, "throughput")?;
        let throughput = t
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                row(
                    line,
                    format!("throughput `{t}` is not a finite number ≥ 0 (operations per second)"),
                )
            })?;
        points.push(Point {
            concurrency,
            throughput,
        });
    }
    Ok(points)
}

/// `8` or `8.0` → 8; fractions, zero, negatives and huge values → `None`.
fn parse_concurrency(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=MAX_CONCURRENCY).contains(&n).then_some(n);
    }
    let f = s.parse::<f64>().ok()?;
    (f.fract() == 0.0 && (1.0..=f64::from(MAX_CONCURRENCY)).contains(&f)).then_some(f as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Point>, MeasurementsError> {
        parse(text.as_bytes(), "data/x.csv", &Columns::default())
    }

    fn err(text: &str) -> (Option<u64>, String) {
        let e = p(text).expect_err("an error");
        (e.line(), e.to_string())
    }

    #[test]
    fn reads_points_in_any_column_order_with_extra_columns() {
        let pts =
            p("Throughput, latency ,concurrency\n955.16,1ms,1\n1878.91,1ms,2.0\n\n2688.01,2ms,3\n")
                .unwrap();
        assert_eq!(
            pts,
            vec![
                Point {
                    concurrency: 1,
                    throughput: 955.16
                },
                Point {
                    concurrency: 2,
                    throughput: 1878.91
                },
                Point {
                    concurrency: 3,
                    throughput: 2688.01
                },
            ]
        );
        assert_eq!(p("\u{feff}concurrency,throughput\n1,2\n").unwrap().len(), 1);
        assert!(p("concurrency,throughput\n").unwrap().is_empty());
    }

    #[test]
    fn bad_rows_name_their_line() {
        let (line, msg) = err("concurrency,throughput\n1,955\n2,abc\n");
        assert_eq!(line, Some(3));
        assert_eq!(
            msg,
            "read measurements `data/x.csv`: line 3: throughput `abc` is not a finite number ≥ 0 (operations per second)"
        );
        assert_eq!(err("concurrency,throughput\n1,955\n2.5,1000\n").0, Some(3));
        assert_eq!(err("concurrency,throughput\n0,955\n").0, Some(2));
        assert_eq!(err("concurrency,throughput\n-1,955\n").0, Some(2));
        assert_eq!(err("concurrency,throughput\n1,-5\n").0, Some(2));
        assert_eq!(err("concurrency,throughput\n1,NaN\n").0, Some(2));
        assert_eq!(err("concurrency,throughput\n1,inf\n").0, Some(2));
        assert_eq!(
            err("concurrency,throughput\n1,5\n2\n").1,
            "read measurements `data/x.csv`: line 3: missing value for `throughput`"
        );
        assert_eq!(
            err("concurrency,throughput\n1,5\n,7\n").1,
            "read measurements `data/x.csv`: line 3: missing value for `concurrency`"
        );
        // a comment line is not CSV: it is a bad row, not silently skipped
        assert_eq!(err("concurrency,throughput\n# prod\n1,5\n").0, Some(2));
    }

    #[test]
    fn the_header_is_required_and_checked() {
        let (line, msg) = err("1,955.16\n2,1878.91\n");
        assert_eq!(line, Some(1));
        assert!(msg.contains("no header"), "{msg}");
        let (line, msg) = err("a,b\n1,955.16\n");
        assert_eq!(line, Some(1));
        assert!(
            msg.contains("no load column: none is named concurrency, load, n, clients, users, threads, replicas (the header has: a, b)"),
            "{msg}"
        );
        assert!(
            err("concurrency,throughput,throughput\n1,2,3\n")
                .1
                .contains("appears 2 times")
        );
        assert!(err("").1.contains("the file is empty"));
    }

    #[test]
    fn usl_csv_column_names_of_r_and_published_data_sets_are_accepted() {
        for header in [
            "N,X",
            "load,throughput",
            "Clients,tput",
            "threads,rps",
            "users,X",
        ] {
            let pts = p(&format!("{header}\n1,955.16\n2,1878.91\n")).unwrap();
            assert_eq!(pts.len(), 2, "{header}");
            assert_eq!(pts[1].concurrency, 2, "{header}");
            assert_eq!(pts[1].throughput, 1878.91, "{header}");
        }
        // several candidates are ambiguous: the spec must name one
        let (line, msg) = err("load,concurrency,X\n1,1,5\n");
        assert_eq!(line, Some(1));
        assert!(
            msg.contains("several columns could be the load: `load`, `concurrency`"),
            "{msg}"
        );
        let named = Columns {
            load: Some("VUs".into()),
            throughput: Some("req_per_s".into()),
        };
        let pts = parse(&b"vus,req_per_s,X\n3,10,99\n"[..], "x.csv", &named).unwrap();
        assert_eq!(pts[0].concurrency, 3);
        assert_eq!(pts[0].throughput, 10.0);
        let e = parse(&b"load,X\n1,5\n"[..], "x.csv", &named).unwrap_err();
        assert!(
            matches!(&e, MeasurementsError::Column { role: "load", .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("missing column `VUs` (the header has: load, X)"),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_is_a_located_error_not_a_panic() {
        let e = parse(
            &b"concurrency,throughput\n1,5\n2,\xff\xfe\n"[..],
            "x.csv",
            &Columns::default(),
        )
        .unwrap_err();
        assert_eq!(e.line(), Some(3), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let e = read(
            Path::new("/nonexistent/x.csv"),
            "x.csv",
            &Columns::default(),
        )
        .unwrap_err();
        assert!(matches!(e, MeasurementsError::Io { .. }));
        assert!(
            e.to_string().starts_with("read measurements `x.csv`: "),
            "{e}"
        );
    }
}

//! The header of a CSV results file (JMeter's JTL, Locust's stats): every required column
//! present, or one error at line 1 that names the missing ones.

use super::ImportError;

/// The header of `rdr` when it has every column of `required`; otherwise an error at line
/// 1 naming the missing ones, the columns it has, and `fix` (how to write the right file).
pub fn header<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    what: &str,
    required: &[&str],
    fix: &str,
) -> Result<csv::StringRecord, Vec<ImportError>> {
    let at_1 = |message: String| vec![ImportError { line: 1, message }];
    let header = rdr
        .headers()
        .map_err(|e| at_1(format!("not a CSV header: {e}")))?
        .clone();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| position(&header, c).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(header);
    }
    Err(at_1(format!(
        "the {what} header has no column {} (it has: {}); {fix}",
        missing.join(", "),
        header.iter().collect::<Vec<_>>().join(", ")
    )))
}

/// The index of column `name` in `header`.
pub fn position(header: &csv::StringRecord, name: &str) -> Option<usize> {
    header.iter().position(|h| h.trim() == name)
}

//! `summary.md`: the verdict first, failing SLOs first, deltas against the baseline,
//! details folded — for pull requests and `$GITHUB_STEP_SUMMARY` (rendered from
//! `summary.md.j2`).

use std::path::Path;

use super::templates::{ReportError, Templates};
use super::view::View;
use crate::results::{Results, write_atomic};

pub use super::templates::md_cell;
pub use super::view::one_line;

/// `$GITHUB_STEP_SUMMARY` stays under 1 MiB.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024 - 1024;

/// Render the Markdown summary.
pub fn render(r: &Results, templates: &Templates) -> Result<String, ReportError> {
    templates.render("summary.md.j2", &View::new(r).without_charts())
}

/// `md` cut to fit the step summary limit, on a character boundary, with a note.
pub fn fit_step_summary(md: &str) -> String {
    if md.len() <= STEP_SUMMARY_LIMIT {
        return md.to_string();
    }
    let mut cut = STEP_SUMMARY_LIMIT - 64;
    while !md.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n\n… (truncated; see summary.md)\n", &md[..cut])
}

/// Append to `$GITHUB_STEP_SUMMARY` when it is set.
pub fn append_step_summary(md: &str) -> std::io::Result<()> {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        std::io::Write::write_all(&mut f, fit_step_summary(md).as_bytes())?;
    }
    Ok(())
}

/// Write `summary.md` into `out`.
pub fn write(md: &str, out: &Path) -> std::io::Result<()> {
    write_atomic(&out.join("summary.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_summary_is_cut_under_the_limit() {
        let md = "é".repeat(STEP_SUMMARY_LIMIT);
        let cut = fit_step_summary(&md);
        assert!(cut.len() < STEP_SUMMARY_LIMIT);
        assert!(cut.ends_with("(truncated; see summary.md)\n"));
    }
}

//! `summary.md`: the verdict first, failing SLOs first, for pull requests and
//! `$GITHUB_STEP_SUMMARY`.

use std::path::Path;

use super::results::{Results, SpecStatus, write_atomic};
use crate::engine::verdict::Status;

/// `$GITHUB_STEP_SUMMARY` stays under 1 MiB.
const STEP_SUMMARY_LIMIT: usize = 1024 * 1024 - 1024;

/// Escape a value for a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn status_word(s: SpecStatus) -> &'static str {
    match s {
        SpecStatus::Pass => "pass",
        SpecStatus::Warn => "warn",
        SpecStatus::Fail => "fail",
        SpecStatus::Error => "error",
        SpecStatus::Interrupted => "interrupted",
    }
}

/// `perfspec: 3 specs — 2 pass, 1 fail (exit 1)`.
pub fn one_line(r: &Results) -> String {
    let count = |s: SpecStatus| r.specs.iter().filter(|x| x.status == s).count();
    let mut parts = Vec::new();
    for s in [SpecStatus::Pass, SpecStatus::Warn, SpecStatus::Fail, SpecStatus::Error, SpecStatus::Interrupted] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", status_word(s)));
        }
    }
    let interrupted = if r.interrupted { ", interrupted" } else { "" };
    format!("perfspec: {} spec(s) — {}{interrupted} (exit {})", r.specs.len(), parts.join(", "), r.exit_code)
}

/// Render the Markdown summary.
pub fn render(r: &Results) -> String {
    let verdict = match r.exit_code {
        0 => "✅ **pass**",
        1 => "❌ **fail**",
        3 => "⛔ **error**: a backend could not start",
        130 => "⏹ **interrupted**",
        _ => "❌ **fail**",
    };
    let mut out = format!("## perfspec: {verdict}\n\n{}\n\n", md_cell(&one_line(r)));
    let mut rows: Vec<(u8, String)> = Vec::new();
    for s in &r.specs {
        if let Some(e) = &s.error {
            rows.push((0, format!("| {} | — | error | {} | | | |\n", md_cell(&s.name), md_cell(e))));
        }
        for o in &s.slos {
            let rank = match o.status {
                Status::Fail => 1,
                Status::Warn => 2,
                Status::Pass => 3,
            };
            let delta = o.delta_pct.map(|d| format!("{d:+.1}%")).unwrap_or_default();
            rows.push((
                rank,
                format!(
                    "| {} | `{}` | {} | {} | {} | {} | {}:{} |\n",
                    md_cell(&s.name),
                    md_cell(&o.expr).replace('`', "'"),
                    format!("{:?}", o.status).to_lowercase(),
                    md_cell(o.observed_text.as_deref().unwrap_or("—")),
                    md_cell(o.threshold_text.as_deref().unwrap_or("—")),
                    delta,
                    md_cell(&s.file),
                    o.line
                ),
            ));
        }
    }
    rows.sort_by_key(|(rank, _)| *rank);
    out.push_str("| spec | SLO | status | observed | threshold | Δ baseline | where |\n|---|---|---|---|---|---|---|\n");
    for (_, row) in rows {
        out.push_str(&row);
    }
    out.push_str(&format!(
        "\n<details><summary>run details</summary>\n\nperfspec {} on {} ({} CPUs){}{}\n\n</details>\n",
        r.tool.version,
        md_cell(&r.host.hostname),
        r.host.cpus,
        r.git.as_ref().map(|g| format!(", commit {}", &g.commit[..g.commit.len().min(12)])).unwrap_or_default(),
        r.baseline.as_ref().map(|b| format!(", baseline {}", md_cell(b))).unwrap_or_default(),
    ));
    out
}

/// Write `summary.md` into `out`, and append it to `$GITHUB_STEP_SUMMARY` when set.
pub fn write(r: &Results, out: &Path) -> std::io::Result<()> {
    let md = render(r);
    write_atomic(&out.join("summary.md"), md.as_bytes())?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut text = md;
        if text.len() > STEP_SUMMARY_LIMIT {
            let mut cut = STEP_SUMMARY_LIMIT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n\n… (truncated; see summary.md)\n");
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_markup() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(md_cell("<script>"), "&lt;script&gt;");
    }
}

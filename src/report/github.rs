//! GitHub Actions workflow commands: `::error file=…,line=…,title=…::message` at each
//! failing SLO's line (warnings as `::warning`), escaped per the runner's rules, capped.

use super::view::delta_text;
use crate::engine::verdict::Status;
use crate::results::{Results, SpecStatus};

/// At most this many annotations; the rest are counted in one last notice.
pub const MAX_ANNOTATIONS: usize = 50;

/// Escape a command's message: `%`, `\r`, `\n`.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a command property value: as data, plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(level: &str, file: &str, line: usize, title: &str, message: &str) -> String {
    let mut props = vec![format!("file={}", escape_property(file))];
    if line > 0 {
        props.push(format!("line={line}"));
    }
    props.push(format!("title={}", escape_property(title)));
    format!("::{level} {}::{}", props.join(","), escape_data(message))
}

/// The annotation lines for a run (without a trailing newline each).
pub fn annotations(r: &Results) -> Vec<String> {
    let mut all: Vec<(u8, String)> = Vec::new();
    for s in &r.specs {
        if s.status == SpecStatus::Error {
            let why = s.error.as_deref().unwrap_or("the spec could not run");
            all.push((
                0,
                command(
                    "error",
                    &s.file,
                    0,
                    &format!("perfspec: {} could not run", s.name),
                    why,
                ),
            ));
        }
        for o in &s.slos {
            let level = match o.status {
                Status::Fail => "error",
                Status::Warn => "warning",
                Status::Pass => continue,
            };
            if s.status == SpecStatus::Error && o.reason == crate::engine::verdict::Reason::NotRun {
                continue;
            }
            let mut msg = o.message.clone();
            if o.baseline.is_some() && !msg.contains("baseline") {
                msg.push_str(&format!(
                    " (baseline {}, {})",
                    o.baseline.map(|b| o.shown().format(b)).unwrap_or_default(),
                    delta_text(o.delta_pct)
                ));
            }
            let title = format!("perfspec {}: {} — {}", level_word(o.status), s.name, o.expr);
            all.push((
                if o.status == Status::Fail { 1 } else { 2 },
                command(level, &s.file, o.line, &title, &msg),
            ));
        }
    }
    all.sort_by_key(|(rank, _)| *rank);
    let total = all.len();
    let mut out: Vec<String> = all
        .into_iter()
        .take(MAX_ANNOTATIONS)
        .map(|(_, l)| l)
        .collect();
    if total > MAX_ANNOTATIONS {
        out.push(format!("::notice title=perfspec::{} more annotation(s) not shown; see summary.md and junit.xml", total - MAX_ANNOTATIONS));
    }
    out
}

fn level_word(s: Status) -> &'static str {
    match s {
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Pass => "pass",
    }
}

/// Print the annotations on stdout when `GITHUB_ACTIONS=true`.
pub fn print_if_github(r: &Results) {
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        let mut text = annotations(r).join("\n");
        if !text.is_empty() {
            text.push('\n');
            let mut out = std::io::stdout().lock();
            // a closed stdout must not fail the run: the annotations are a courtesy
            let _ = std::io::Write::write_all(&mut out, text.as_bytes());
            let _ = std::io::Write::flush(&mut out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_runner_rules() {
        assert_eq!(escape_data("100%\r\nx"), "100%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            command("error", "specs/a,b.toml", 7, "t: x", "p95 = 3ms\nboom"),
            "::error file=specs/a%2Cb.toml,line=7,title=t%3A x::p95 = 3ms%0Aboom"
        );
    }
}

//! Every report of a run, written atomically into the output folder: results.json,
//! report.html, summary.md, junit.xml; plus `$GITHUB_STEP_SUMMARY` and GitHub annotations
//! when running in GitHub Actions.

use std::path::{Path, PathBuf};

use super::templates::{ReportError, Templates};
use super::{github, html, junit, summary};
use crate::results::{Results, write_atomic};

/// Where reports come from and go.
pub struct ReportOptions<'a> {
    pub out: &'a Path,
    /// `--templates DIR`: overrides of the embedded templates.
    pub templates: Option<&'a Path>,
    /// Also write results.json (a run does; `perfspec report` does not touch its input
    /// unless a baseline changed it).
    pub write_results: bool,
    /// `--history`: the runs the HTML report's trend charts draw.
    pub trends: Option<&'a crate::history::Trends>,
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<(), ReportError> {
    write_atomic(&path, bytes).map_err(|source| ReportError::Write { path, source })
}

/// Render and write every report. Each file is written even if another failed; the first
/// error is returned.
pub fn write_all(r: &Results, opts: &ReportOptions<'_>) -> Result<(), ReportError> {
    let mut first: Option<ReportError> = None;
    let mut keep = |res: Result<(), ReportError>| {
        if let Err(e) = res {
            first.get_or_insert(e);
        }
    };
    if opts.write_results {
        keep(
            r.write(&opts.out.join("results.json"))
                .map_err(|source| ReportError::Write {
                    path: opts.out.join("results.json"),
                    source,
                }),
        );
    }
    keep(junit::render(r).and_then(|x| write(opts.out.join("junit.xml"), x.as_bytes())));
    match Templates::load(opts.templates) {
        Ok(t) => {
            keep(
                html::render_with(r, &t, opts.trends)
                    .and_then(|x| write(opts.out.join("report.html"), x.as_bytes())),
            );
            keep(summary::render(r, &t).and_then(|md| {
                summary::write(&md, opts.out)
                    .and_then(|()| summary::append_step_summary(&md))
                    .map_err(|source| ReportError::Write {
                        path: opts.out.join("summary.md"),
                        source,
                    })
            }));
        }
        Err(e) => keep(Err(e)),
    }
    github::print_if_github(r);
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

//! `--history FILE.db` (or `PERFSPEC_HISTORY`): every run appended to a SQLite database
//! (bundled SQLite: nothing to install) — commit, branch, time, and each SLO's value,
//! verdict and per-repeat values — and read back as a baseline (`--baseline history:main`,
//! `history:main~10`) or as a table (`perfspec history`).
//!
//! Concurrent writers (two CI jobs on one cache) are safe: WAL journal, a 30 s busy
//! timeout, and each run written in one immediate transaction.

mod trend;

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::engine::repeats::median_sorted;
use crate::engine::verdict::{BaseInput, Slo};
use crate::results::Results;

pub use trend::{Point, Trends, WINDOW, read as trends};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    commit_sha TEXT,
    branch TEXT,
    exit_code INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS slos (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    spec TEXT NOT NULL,
    expr TEXT NOT NULL,
    lhs TEXT NOT NULL,
    phase TEXT,
    value REAL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    repeats TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS slos_by_lhs ON slos(spec, lhs);
";

/// Open (and create) a history database; a file that is not one (not SQLite, or another
/// program's SQLite database) is an error and is left untouched.
pub fn open(path: &Path) -> Result<Connection, String> {
    let fail = failure(path);
    let c = Connection::open(path).map_err(fail)?;
    c.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(fail)?;
    check_tables(&c, path)?;
    c.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
    c.execute_batch(SCHEMA).map_err(fail)?;
    Ok(c)
}

/// An empty database, or one with perfspec's tables.
fn check_tables(c: &Connection, path: &Path) -> Result<(), String> {
    let not_ours = |why: String| {
        format!(
            "`{}` is not a perfspec history: {why} (give another `--history` file)",
            path.display()
        )
    };
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => not_ours("not a SQLite database".into()),
            _ => failure(path)(e),
        })?;
    let ours = |t: &str| tables.iter().any(|x| x == t);
    if tables.is_empty() || (ours("runs") && ours("slos")) {
        return Ok(());
    }
    Err(not_ours(format!(
        "a SQLite database with the tables {}",
        tables.join(", ")
    )))
}

/// A history that must exist already (reading one never creates it).
fn open_existing(path: &Path) -> Result<Connection, String> {
    if !path.exists() {
        return Err(format!("history `{}` does not exist", path.display()));
    }
    open(path)
}

/// A database error of the history at `path`, as a message.
fn failure(path: &Path) -> impl Fn(rusqlite::Error) -> String + Copy + '_ {
    move |e| format!("history `{}`: {e}", path.display())
}

/// The branch of this run: `GITHUB_HEAD_REF` (a pull request) or `GITHUB_REF_NAME`, else
/// `git rev-parse --abbrev-ref HEAD`.
pub fn branch() -> Option<String> {
    for var in ["GITHUB_HEAD_REF", "GITHUB_REF_NAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return Some(v);
        }
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|b| !b.is_empty() && b != "HEAD")
}

/// The left-hand side of an SLO text (`p95(latency)` of `p95(latency) <= baseline * 1.1`),
/// by which runs with different thresholds still match.
fn lhs_of(spec_kind: crate::spec::catalog::Kind, expr: &str) -> String {
    Slo::compile(expr, spec_kind).map_or_else(|_| expr.to_string(), |s| s.expr.lhs_text())
}

/// Append a run, in one transaction.
pub fn append(path: &Path, res: &Results) -> Result<(), String> {
    let mut c = open(path)?;
    let fail = failure(path);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let commit = std::env::var("GITHUB_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| res.git.as_ref().map(|g| g.commit.clone()));
    tx.execute(
        "INSERT INTO runs (started_at, commit_sha, branch, exit_code) VALUES (?1, ?2, ?3, ?4)",
        params![res.started_at, commit, branch(), res.exit_code],
    )
    .map_err(fail)?;
    let run = tx.last_insert_rowid();
    for spec in &res.specs {
        for o in &spec.slos {
            let repeats = serde_json::to_string(&o.repeats).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO slos (run_id, spec, expr, lhs, phase, value, status, reason, repeats)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run,
                    spec.name,
                    o.expr,
                    lhs_of(spec.kind, &o.expr),
                    o.phase,
                    o.observed,
                    o.status.as_str(),
                    o.reason.as_str(),
                    repeats
                ],
            )
            .map_err(fail)?;
        }
    }
    tx.commit().map_err(fail)
}

/// `history:BRANCH` or `history:BRANCH~N` (N ≥ 1): the branch and how many of its last runs.
pub fn parse_ref(s: &str) -> Option<Result<(String, usize), String>> {
    let rest = s.strip_prefix("history:")?;
    let (branch, n) = match rest.rsplit_once('~') {
        Some((b, n)) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => (b, n),
            _ => {
                return Some(Err(format!(
                    "`{s}`: after `~` comes a number of runs, at least 1"
                )));
            }
        },
        None => (rest, 1),
    };
    if branch.is_empty() {
        return Some(Err(format!("`{s}`: name a branch, e.g. `history:main`")));
    }
    Some(Ok((branch.to_string(), n)))
}

/// One SLO of one run in the history: `(spec, lhs, phase, value, per-repeat values)`.
type Row = (String, String, Option<String>, Option<f64>, Vec<f64>);

/// The baseline values of one SLO: its value in each of the last `n` runs of `branch`.
#[derive(Debug, Clone, Default)]
pub struct HistoryBaseline {
    /// Per SLO and run, newest run first.
    rows: Vec<Row>,
    /// The branch read.
    pub branch: String,
    /// How many of its runs were read.
    pub runs: usize,
    /// The branches the history has runs of (to name them when `branch` has none).
    pub branches: Vec<String>,
}

/// The id of the run of the history that started at `started_at` (a results.json that was
/// appended), if any.
fn run_id(c: &Connection, path: &Path, started_at: &str) -> Result<Option<i64>, String> {
    c.query_row(
        "SELECT max(id) FROM runs WHERE started_at = ?1",
        params![started_at],
        |r| r.get(0),
    )
    .map_err(failure(path))
}

/// The branches with runs, most runs first.
fn branches(c: &Connection, path: &Path) -> Result<Vec<String>, String> {
    let fail = failure(path);
    let mut q = c
        .prepare(
            "SELECT branch FROM runs WHERE branch IS NOT NULL
             GROUP BY branch ORDER BY count(*) DESC, branch",
        )
        .map_err(fail)?;
    q.query_map([], |r| r.get(0))
        .map_err(fail)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(fail)
}

/// Read the last `n` runs of `branch`; with `before` (the start time of a run being judged
/// again), only runs older than that run when the history holds it, and never that run.
pub fn baseline(
    path: &Path,
    branch: &str,
    n: usize,
    before: Option<&str>,
) -> Result<HistoryBaseline, String> {
    let c = open_existing(path)?;
    let fail = failure(path);
    let until = match before {
        Some(t) => run_id(&c, path, t)?,
        None => None,
    };
    let mut q = c
        .prepare(
            "SELECT s.spec, s.lhs, s.phase, s.value, s.repeats, s.run_id FROM slos s
             WHERE s.run_id IN (SELECT id FROM runs WHERE branch = ?1 AND (?3 IS NULL OR id < ?3)
                                ORDER BY id DESC LIMIT ?2)
             ORDER BY s.run_id DESC",
        )
        .map_err(fail)?;
    let mut ids = std::collections::BTreeSet::new();
    let rows = q
        .query_map(params![branch, n as i64, until], |r| {
            let repeats: String = r.get(4)?;
            let values: Vec<Option<f64>> = serde_json::from_str(&repeats).unwrap_or_default();
            Ok((
                (
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    values.into_iter().flatten().collect(),
                ),
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(fail)?
        .map(|row| {
            row.map(|(row, id)| {
                ids.insert(id);
                row
            })
        })
        .collect::<Result<Vec<Row>, _>>()
        .map_err(fail)?;
    Ok(HistoryBaseline {
        rows,
        branch: branch.to_string(),
        runs: ids.len(),
        branches: branches(&c, path)?,
    })
}

impl HistoryBaseline {
    /// Why the baseline is empty, when it is: `branch` has no runs (before the one judged).
    pub fn empty_note(&self) -> Option<String> {
        if self.runs > 0 {
            return None;
        }
        let others = match self.branches.as_slice() {
            [] => "it holds no runs".to_string(),
            b => format!("it has runs of {}", quoted(b)),
        };
        Some(format!(
            "no runs of branch `{}` to compare with ({others}); SLOs that use `baseline` follow `on_missing_baseline`",
            self.branch
        ))
    }

    /// The median of the runs' values, and every run's per-repeat values (its one value
    /// for a run without repeats).
    pub fn input(&self, spec: &str, slo: &Slo) -> BaseInput {
        let lhs = slo.expr.lhs_text();
        let mut values = Vec::new();
        let mut samples = Vec::new();
        for (s, l, p, v, reps) in &self.rows {
            if s == spec && *l == lhs && *p == slo.phase {
                if let Some(v) = v {
                    values.push(*v);
                }
                if reps.is_empty() {
                    samples.extend(*v);
                } else {
                    samples.extend(reps);
                }
            }
        }
        values.sort_by(f64::total_cmp);
        BaseInput::Given {
            value: (!values.is_empty()).then(|| median_sorted(&values)),
            samples,
        }
    }
}

/// `` `a`, `b` `` (at most 5, then how many more).
fn quoted(names: &[String]) -> String {
    let mut out: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    if names.len() > 5 {
        out.push(format!("{} more", names.len() - 5));
    }
    out.join(", ")
}

/// `perfspec history`: one line per SLO and run, oldest first.
pub fn table(path: &Path, spec: Option<&str>, metric: Option<&str>) -> Result<String, String> {
    let c = open_existing(path)?;
    let fail = failure(path);
    let mut q = c
        .prepare(
            "SELECT r.id, r.started_at, COALESCE(substr(r.commit_sha, 1, 10), '—'),
                    COALESCE(r.branch, '—'), s.spec, s.expr, s.value, s.status, s.repeats
             FROM slos s JOIN runs r ON r.id = s.run_id
             WHERE (?1 IS NULL OR s.spec = ?1)
               AND (?2 IS NULL OR s.expr = ?2 OR s.lhs = ?2)
             ORDER BY r.id, s.rowid",
        )
        .map_err(fail)?;
    let mut out = format!(
        "{:>5}  {:<20}  {:<10}  {:<14}  {:<16}  {:<36}  {:>12}  {:<4}  repeats\n",
        "run", "time", "commit", "branch", "spec", "SLO", "value", ""
    );
    let rows = q
        .query_map(params![spec, metric], |r| {
            let v: Option<f64> = r.get(6)?;
            let reps: String = r.get(8)?;
            let n = serde_json::from_str::<Vec<Option<f64>>>(&reps).map_or(0, |v| v.len());
            Ok(format!(
                "{:>5}  {:<20}  {:<10}  {:<14}  {:<16}  {:<36}  {:>12}  {:<4}  {}\n",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                v.map_or_else(|| "—".into(), |v| format!("{v:.6}")),
                r.get::<_, String>(7)?,
                if n > 0 { n.to_string() } else { "—".into() },
            ))
        })
        .map_err(fail)?;
    let mut any = false;
    for row in rows {
        out.push_str(&row.map_err(fail)?);
        any = true;
    }
    if !any {
        out.push_str("(no runs match)\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_refs_name_a_branch_and_a_count() {
        assert_eq!(parse_ref("results.json"), None);
        assert_eq!(parse_ref("history:main"), Some(Ok(("main".into(), 1))));
        assert_eq!(parse_ref("history:main~10"), Some(Ok(("main".into(), 10))));
        assert_eq!(
            parse_ref("history:feat~x~3"),
            Some(Ok(("feat~x".into(), 3)))
        );
        assert!(matches!(parse_ref("history:main~0"), Some(Err(_))));
        assert!(matches!(parse_ref("history:main~"), Some(Err(_))));
        assert!(matches!(parse_ref("history:"), Some(Err(_))));
    }

    #[test]
    fn a_missing_database_is_an_error_not_an_empty_baseline() {
        let d = tempfile::tempdir().unwrap();
        let e = baseline(&d.path().join("none.db"), "main", 1, None).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(table(&d.path().join("none.db"), None, None).is_err());
    }

    #[test]
    fn files_that_are_not_a_perfspec_history_are_refused_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let text = d.path().join("notes.db");
        std::fs::write(
            &text,
            "just some text, long enough to be no SQLite header at all\n",
        )
        .unwrap();
        let e = open(&text).unwrap_err();
        assert!(
            e.contains("is not a perfspec history: not a SQLite database"),
            "{e}"
        );
        let other = d.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE users (id INTEGER);")
            .unwrap();
        let e = baseline(&other, "main", 1, None).unwrap_err();
        assert!(e.contains("the tables users"), "{e}");
        let tables: i64 = Connection::open(&other)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1, "the other program's database was changed");
        // an empty database, and one of perfspec's, open
        let fresh = d.path().join("fresh.db");
        open(&fresh).unwrap();
        open(&fresh).unwrap();
        let b = baseline(&fresh, "main", 3, None).unwrap();
        let note = b.empty_note().unwrap();
        assert!(note.contains("no runs of branch `main`"), "{note}");
        assert!(note.contains("it holds no runs"), "{note}");
    }
}

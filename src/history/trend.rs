//! The runs a report's trend charts draw: this run and the runs of its branch before it.
//!
//! This run's point always comes from the results being rendered (so `perfspec report
//! --baseline` shows its new verdicts); the history supplies the earlier runs. The run is
//! found in the history by its start time: when it is there (`perfspec run --history`
//! appends before it renders), its branch and commit are the recorded ones and only older
//! runs are drawn before it — a re-rendered old results.json shows the trend up to it, and
//! is never counted twice. When it is not there, the earlier runs are the last ones of the
//! current branch.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{failure, lhs_of, open_existing};
use crate::engine::verdict::{Reason, SloOutcome};
use crate::results::{Results, SpecResult};

/// Runs on one trend chart, this run included.
pub const WINDOW: usize = 30;

/// One SLO of an earlier run.
#[derive(Debug, Clone)]
struct Value {
    spec: String,
    expr: String,
    lhs: String,
    phase: Option<String>,
    value: Option<f64>,
    status: String,
}

/// An earlier run of the branch.
#[derive(Debug, Clone)]
struct PastRun {
    id: i64,
    started_at: String,
    commit: Option<String>,
    values: Vec<Value>,
}

/// What the history holds for the run being reported.
#[derive(Debug, Clone)]
pub struct Trends {
    /// The database, as given.
    pub path: String,
    /// The branch drawn (`None`: the run has no branch; runs without one are drawn).
    pub branch: Option<String>,
    /// This run's id in the history, when it is there.
    pub this_run: Option<i64>,
    /// This run's commit: as recorded, else the results' own.
    pub commit: Option<String>,
    /// This run's start time.
    started_at: String,
    /// Up to [`WINDOW`] − 1 runs of the branch before this one, oldest first.
    runs: Vec<PastRun>,
    /// Runs in the whole history.
    pub total_runs: usize,
}

/// One point of a trend chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The run's id in the history (`None`: this run, not in it).
    pub run: Option<i64>,
    pub started_at: String,
    pub commit: Option<String>,
    pub value: f64,
    /// `pass`, `warn`, `fail` (as recorded).
    pub status: String,
    /// This run.
    pub current: bool,
}

/// This run in the history: `(id, branch, commit)`.
type Found = (i64, Option<String>, Option<String>);

/// Read the runs of `res`'s branch before it from the history at `path`.
pub fn read(path: &Path, res: &Results) -> Result<Trends, String> {
    let c = open_existing(path)?;
    let fail = failure(path);
    let found: Option<Found> = c
        .query_row(
            "SELECT id, branch, commit_sha FROM runs WHERE started_at = ?1 ORDER BY id DESC LIMIT 1",
            params![res.started_at],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(fail)?;
    let (this_run, branch, commit) = match found {
        Some((id, branch, commit)) => (Some(id), branch, commit),
        None => (
            None,
            super::branch(),
            res.git.as_ref().map(|g| g.commit.clone()),
        ),
    };
    let runs = past_runs(&c, path, branch.as_deref(), this_run)?;
    let total_runs = c
        .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .map_err(fail)? as usize;
    Ok(Trends {
        path: path.display().to_string(),
        branch,
        this_run,
        commit,
        started_at: res.started_at.clone(),
        runs,
        total_runs,
    })
}

/// The last [`WINDOW`] − 1 runs of `branch` before run `until` (all when `None`), oldest
/// first, with their SLOs.
fn past_runs(
    c: &Connection,
    path: &Path,
    branch: Option<&str>,
    until: Option<i64>,
) -> Result<Vec<PastRun>, String> {
    let fail = failure(path);
    let mut q = c
        .prepare(
            "SELECT r.id, r.started_at, r.commit_sha, s.spec, s.expr, s.lhs, s.phase, s.value, s.status
             FROM runs r JOIN slos s ON s.run_id = r.id
             WHERE r.id IN (SELECT id FROM runs WHERE branch IS ?1 AND (?2 IS NULL OR id < ?2)
                            ORDER BY id DESC LIMIT ?3)
             ORDER BY r.id, s.rowid",
        )
        .map_err(fail)?;
    let rows = q
        .query_map(params![branch, until, (WINDOW - 1) as i64], |r| {
            let run = (r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?);
            let value = Value {
                spec: r.get(3)?,
                expr: r.get(4)?,
                lhs: r.get(5)?,
                phase: r.get(6)?,
                value: r.get(7)?,
                status: r.get(8)?,
            };
            Ok((run, value))
        })
        .map_err(fail)?;
    let mut runs: Vec<PastRun> = Vec::new();
    for row in rows {
        let ((id, started_at, commit), value) = row.map_err(fail)?;
        match runs.last_mut() {
            Some(last) if last.id == id => last.values.push(value),
            _ => runs.push(PastRun {
                id,
                started_at,
                commit,
                values: vec![value],
            }),
        }
    }
    Ok(runs)
}

impl Trends {
    /// How many earlier runs of the branch are drawn.
    pub fn earlier_runs(&self) -> usize {
        self.runs.len()
    }

    /// The points of one SLO, oldest first, this run last. Earlier runs match by spec
    /// name, left-hand side and phase (a changed threshold keeps its trend), the same
    /// expression preferred; runs without a value of it have no point.
    pub fn points(&self, spec: &SpecResult, o: &SloOutcome) -> Vec<Point> {
        let lhs = lhs_of(spec.kind, &o.expr);
        let mut out: Vec<Point> = self
            .runs
            .iter()
            .filter_map(|run| {
                let same = |v: &&Value| v.spec == spec.name && v.lhs == lhs && v.phase == o.phase;
                let v = run
                    .values
                    .iter()
                    .filter(same)
                    .find(|v| v.expr == o.expr)
                    .or_else(|| run.values.iter().find(same))?;
                Some(Point {
                    run: Some(run.id),
                    started_at: run.started_at.clone(),
                    commit: run.commit.clone(),
                    value: v.value.filter(|v| v.is_finite())?,
                    status: v.status.clone(),
                    current: false,
                })
            })
            .collect();
        if let Some(value) = o.observed.filter(|v| v.is_finite())
            && o.reason != Reason::NotRun
        {
            out.push(Point {
                run: self.this_run,
                started_at: self.started_at.clone(),
                commit: self.commit.clone(),
                value,
                status: o.status.as_str().to_string(),
                current: true,
            });
        }
        out
    }
}

//! Running selected specs: backend execution under cancellation and time limits, SLO
//! evaluation, and results written after every spec so an interrupted run keeps its data.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::backend::{BackendError, Repeat, RunContext};
use super::baseline::Baseline;
use super::metrics::Measurements;
use super::plan::{Plan, Planned};
use super::progress::Progress;
use super::repeats::{self, RepeatRun};
use super::verdict::{BaseInput, Status, judge, not_run};
use crate::backends::Registry;
use crate::exit;
use crate::results::{self, Results, SpecResult, SpecStatus};
use crate::spec::Spec;

pub struct RunOptions {
    pub out_dir: PathBuf,
    pub baseline: Option<Baseline>,
    /// Bound on the whole run.
    pub timeout: Option<Duration>,
    pub command: Vec<String>,
    /// `--repeat N`: run every spec N times, whatever its `repeat` says.
    pub repeat: Option<u32>,
    /// `--shard K/N`: this process runs its stripe of every spec's load.
    pub shard: Option<super::shard::Shard>,
    /// `--start-at`: wait until then before the first spec (shards start together).
    pub start_at: Option<std::time::SystemTime>,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupted,
    Timeout,
}

/// How long a backend may take to hand back partial results after cancellation.
const GRACE: Duration = Duration::from_secs(10);

/// Run every planned spec in order. `interrupt` is cancelled by Ctrl-C. Results are written
/// to `out_dir/results.json` after each spec.
pub async fn run_specs(
    specs: &[Planned],
    registry: &Registry,
    opts: &RunOptions,
    interrupt: CancellationToken,
    progress: Arc<Progress>,
) -> Results {
    let started_at = results::now_rfc3339();
    let t0 = Instant::now();
    let git = specs.first().and_then(|s| {
        s.spec.file.path.parent().and_then(|p| {
            results::git_info(if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            })
        })
    });
    let mut res = Results {
        schema_version: results::SCHEMA_VERSION,
        tool: results::Tool {
            name: "perfspec".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at: started_at.clone(),
        finished_at: started_at,
        duration_s: 0.0,
        git,
        host: results::host(),
        command: opts.command.clone(),
        baseline: opts.baseline.as_ref().map(|b| b.path.clone()),
        interrupted: false,
        exit_code: exit::SUCCESS,
        shard: None,
        specs: Vec::new(),
    };
    if let Some(at) = opts.start_at
        && !wait_until(at, &interrupt, &progress).await
    {
        res.interrupted = true;
    }
    if let Some(shard) = opts.shard {
        res.shard = Some(super::shard::ShardInfo {
            index: shard.index,
            count: shard.count,
            planned_start: opts.start_at.map(super::shard::rfc3339),
            started_at: results::now_rfc3339(),
        });
    }
    // the whole-run timeout cancels the same way Ctrl-C does, but is reported as a timeout
    let run_cancel = interrupt.child_token();
    let timed_out_run = CancellationToken::new();
    if let Some(limit) = opts.timeout {
        let (c, t) = (run_cancel.clone(), timed_out_run.clone());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            t.cancel();
            c.cancel();
        });
    }
    let total = specs.len();
    let names: Vec<&str> = specs.iter().map(|p| p.spec.name.as_str()).collect();
    let folders = artifact_dirs(&names);
    for (i, Planned { spec, plan }) in specs.iter().enumerate() {
        if interrupt.is_cancelled() {
            break;
        }
        let r = if timed_out_run.is_cancelled() {
            // the run's --timeout passed: later specs are listed as failed, not silently dropped
            let mut r = SpecResult::new(spec, results::now_rfc3339());
            r.status = SpecStatus::Fail;
            r.error = Some("not run: the run exceeded --timeout".into());
            r.slos = spec
                .slos
                .iter()
                .map(|s| not_run(s, "the run exceeded --timeout"))
                .collect();
            r
        } else {
            let started = std::time::SystemTime::now();
            let prefix = format!(
                "[{}/{total}] {} ({} / {})",
                i + 1,
                spec.name,
                spec.kind,
                spec.backend
            );
            let count = spec.repeat_count(opts.repeat);
            progress.start(&if count > 1 {
                format!("{prefix} repeat 1/{count}")
            } else {
                prefix.clone()
            });
            progress.set_secrets(&spec.secrets);
            let folder = &folders[i];
            let one = SpecRun {
                registry,
                opts,
                folder,
                prefix,
                interrupt: &interrupt,
                run_cancel: &run_cancel,
                progress: &progress,
            };
            let mut r = run_one(spec, plan, &one).await;
            if written_since(&opts.out_dir.join(folder), started) {
                r.artifacts_dir = Some(folder.clone());
            }
            r
        };
        // the last line of defence: no `${env:…}` value leaves in a result, whatever put it there
        let r = r.redacted(&spec.secrets);
        progress.println(&outcome_line(&r));
        res.specs.push(r);
        finish(&mut res, t0, interrupt.is_cancelled());
        if let Err(e) = res.write(&opts.out_dir.join("results.json")) {
            progress.println(&format!("perfspec: cannot write results.json: {e}"));
        }
    }
    progress.finish();
    finish(&mut res, t0, interrupt.is_cancelled());
    res
}

/// The artifacts folder of each spec, in order: its name made file-safe (ASCII letters,
/// digits, `-` and `_`; anything else becomes `-`; never empty, never a dot file), and
/// unique (case-insensitively) with `-2`, `-3`, … suffixes in the order the specs run.
pub fn artifact_dirs(names: &[&str]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    names
        .iter()
        .map(|name| {
            let mut base = String::new();
            for c in name.chars() {
                let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                };
                if !(c == '-' && base.ends_with('-')) {
                    base.push(c);
                }
            }
            let mut base: String = base.trim_matches('-').chars().take(64).collect();
            if base.is_empty() {
                base = "spec".into();
            }
            let mut folder = base.clone();
            let mut n = 1;
            while !taken.insert(folder.to_ascii_lowercase()) {
                n += 1;
                folder = format!("{base}-{n}");
            }
            folder
        })
        .collect()
}

/// Whether `dir` holds anything written at or after `since` (artifacts of this run, not
/// of an earlier run into the same `--out`).
fn written_since(dir: &std::path::Path, since: std::time::SystemTime) -> bool {
    let since = since - Duration::from_secs(1);
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
    })
}

fn finish(res: &mut Results, t0: Instant, interrupted: bool) {
    res.finished_at = results::now_rfc3339();
    res.duration_s = t0.elapsed().as_secs_f64();
    res.interrupted = interrupted;
    res.exit_code = exit_code(res);
}

/// The exit code a results record stands for (worst wins).
pub fn exit_code(res: &Results) -> i32 {
    let mut code = exit::SUCCESS;
    for s in &res.specs {
        let c = match s.status {
            SpecStatus::Pass | SpecStatus::Warn => exit::SUCCESS,
            SpecStatus::Fail => exit::SLO_FAILED,
            SpecStatus::Error => exit::BACKEND_UNAVAILABLE,
            SpecStatus::Interrupted => exit::INTERRUPTED,
        };
        code = exit::worst(code, c);
    }
    if res.interrupted {
        exit::worst(code, exit::INTERRUPTED)
    } else {
        code
    }
}

/// One spec's run: what [`run_one`] needs besides the spec.
struct SpecRun<'a> {
    registry: &'a Registry,
    opts: &'a RunOptions,
    folder: &'a str,
    /// The progress prefix of this spec, e.g. `[1/3] checkout (load / goose)`.
    prefix: String,
    interrupt: &'a CancellationToken,
    run_cancel: &'a CancellationToken,
    progress: &'a Arc<Progress>,
}

/// What the repeats of one spec measured.
struct Repeated {
    runs: Vec<RepeatRun>,
    errors: Vec<String>,
    /// The spec's `max_duration` passed.
    timed_out: bool,
}

/// The result of a spec whose SLOs are all `why`: not run.
fn unjudged(mut result: SpecResult, spec: &Spec, status: SpecStatus, why: &str) -> SpecResult {
    result.status = status;
    result.slos = spec.slos.iter().map(|s| not_run(s, why)).collect();
    result
}

async fn run_one(spec: &Spec, plan: &Plan, r: &SpecRun<'_>) -> SpecResult {
    let started_at = results::now_rfc3339();
    let t0 = Instant::now();
    let mut result = SpecResult::new(spec, started_at);
    let Some(backend) = r.registry.get(spec.kind, &spec.backend) else {
        // validation rejects unknown backends; this guards library users
        result.error = Some(format!(
            "no backend `{}` for kind {}",
            spec.backend, spec.kind
        ));
        return unjudged(result, spec, SpecStatus::Error, "the backend is unknown");
    };
    let count = spec.repeat_count(r.opts.repeat);
    let done = match run_repeats(backend, spec, plan, r, count).await {
        Ok(done) => done,
        Err(msg) => {
            result.duration_s = t0.elapsed().as_secs_f64();
            result.error = Some(results::redact(&msg, &spec.secrets));
            return unjudged(
                result,
                spec,
                SpecStatus::Error,
                "the backend could not start",
            );
        }
    };
    result.duration_s = t0.elapsed().as_secs_f64();
    let interrupted = r.interrupt.is_cancelled();
    let run_timeout = !interrupted && r.run_cancel.is_cancelled();
    if !done.errors.is_empty() {
        result.error = Some(results::redact(&done.errors.join("; "), &spec.secrets));
    }
    if done.runs.is_empty() {
        let status = if interrupted {
            SpecStatus::Interrupted
        } else {
            SpecStatus::Fail
        };
        return unjudged(result, spec, status, "nothing was measured");
    }
    let mut runs = done.runs;
    for run in &mut runs {
        for e in &mut run.measurements.error_samples {
            e.message = results::redact(&e.message, &spec.secrets);
        }
    }
    let each: Vec<&Measurements> = runs.iter().map(|x| &x.measurements).collect();
    let pooled = repeats::pool(&each);
    result.slos = spec
        .slos
        .iter()
        .map(|s| {
            let values = if count > 1 {
                repeats::per_repeat(s, &each)
            } else {
                Vec::new()
            };
            let base = match &r.opts.baseline {
                Some(b) => b.input(&spec.name, s),
                None => BaseInput::NotGiven,
            };
            judge(s, &pooled, &values, &base)
        })
        .collect();
    result.measurements = Some(pooled);
    if count > 1 {
        result.repeats = runs;
    }
    let timed_out = done.timed_out || run_timeout;
    result.timed_out = timed_out;
    if timed_out {
        let msg = if run_timeout {
            "the run exceeded --timeout".to_string()
        } else {
            format!(
                "exceeded max_duration ({})",
                spec.max_duration.map(|d| d.to_string()).unwrap_or_default()
            )
        };
        result.error = Some(match result.error.take() {
            Some(e) => format!("{msg}; {e}"),
            None => msg,
        });
    }
    result.status = if interrupted {
        SpecStatus::Interrupted
    } else {
        // exceeding max_duration, or a backend that failed after it started, is a failure
        // with a verdict on what was measured: never a pass
        SpecResult::verdict(&result.slos, timed_out || !done.errors.is_empty())
    };
    result
}

/// Run the backend `count` times, each a fresh [`Backend::run`](super::Backend::run), under
/// one `max_duration` for all of them. Stops after a repeat that failed or was cancelled
/// (Ctrl-C, `--timeout`, `max_duration`), keeping what the repeats so far measured. `Err`:
/// the first repeat could not start.
async fn run_repeats(
    backend: &dyn super::Backend,
    spec: &Spec,
    plan: &Plan,
    r: &SpecRun<'_>,
    count: u32,
) -> Result<Repeated, String> {
    let spec_cancel = r.run_cancel.child_token();
    let deadline = spec
        .max_duration
        .map(|d| tokio::time::Instant::now() + d.as_std());
    let mut done = Repeated {
        runs: Vec::new(),
        errors: Vec::new(),
        timed_out: false,
    };
    let tag = |index: u32, msg: String| {
        if count > 1 {
            format!("repeat {index}/{count}: {msg}")
        } else {
            msg
        }
    };
    for index in 1..=count {
        if index > 1 {
            if spec_cancel.is_cancelled() {
                break;
            }
            r.progress
                .start(&format!("{} repeat {index}/{count}", r.prefix));
        }
        let t0 = Instant::now();
        let cx = RunContext {
            out_dir: r.opts.out_dir.join(r.folder),
            spec_dir: spec.file.folder(),
            cancel: spec_cancel.clone(),
            progress: r.progress.clone(),
            started: t0,
            shard: r.opts.shard.unwrap_or(super::shard::Shard::WHOLE),
            repeat: Repeat {
                index,
                count,
                reseed: spec.reseed,
            },
        };
        let (outcome, hit) =
            run_backend_once(backend, spec, plan, &cx, deadline, r.run_cancel).await;
        done.timed_out |= hit;
        let duration_s = t0.elapsed().as_secs_f64();
        let (measurements, error) = match outcome {
            Ok(m) => (Some(m), None),
            Err(BackendError::Unavailable(msg)) if done.runs.is_empty() => return Err(msg),
            Err(BackendError::Unavailable(msg)) => (None, Some(tag(index, msg))),
            Err(BackendError::Failed { message, partial }) => {
                (partial.map(|b| *b), Some(tag(index, message)))
            }
        };
        let failed = error.is_some();
        done.errors.extend(error.clone());
        if let Some(measurements) = measurements {
            done.runs.push(RepeatRun {
                index,
                duration_s,
                error,
                measurements,
            });
        }
        if failed {
            break;
        }
    }
    Ok(done)
}

/// `--start-at`: sleep until `at` (now when it has passed); `false` when Ctrl-C came first.
async fn wait_until(
    at: std::time::SystemTime,
    interrupt: &CancellationToken,
    progress: &Progress,
) -> bool {
    let Ok(wait) = at.duration_since(std::time::SystemTime::now()) else {
        return true;
    };
    progress.println(&format!(
        "waiting {:.1}s for --start-at {}",
        wait.as_secs_f64(),
        super::shard::rfc3339(at)
    ));
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = interrupt.cancelled() => false,
    }
}

/// One backend run under the spec's deadline and the run's cancellation; `true` when the
/// deadline passed.
async fn run_backend_once(
    backend: &dyn super::Backend,
    spec: &Spec,
    plan: &Plan,
    cx: &RunContext,
    deadline: Option<tokio::time::Instant>,
    run_cancel: &CancellationToken,
) -> (Result<Measurements, BackendError>, bool) {
    let fut = backend.run(spec, plan, cx);
    tokio::pin!(fut);
    let limit = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(limit);
    tokio::select! {
        r = &mut fut => (r, false),
        () = &mut limit => {
            cx.cancel.cancel();
            (wait_grace(&mut fut).await, true)
        }
        () = run_cancel.cancelled() => (wait_grace(&mut fut).await, false),
    }
}

async fn wait_grace<F: std::future::Future<Output = Result<Measurements, BackendError>> + Unpin>(
    fut: &mut F,
) -> Result<Measurements, BackendError> {
    match tokio::time::timeout(GRACE, fut).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Failed {
            message: "the backend did not stop within 10s of cancellation".into(),
            partial: None,
        }),
    }
}

/// The verdict of one spec for the terminal: its status, every SLO marked `✓` (met), `!`
/// (warn) or `✗` (fail) with its value, or — when the spec did not run — its error on one
/// line and the count of SLOs not judged (not one "not run" line per SLO).
pub fn outcome_line(r: &SpecResult) -> String {
    let word = match r.status {
        SpecStatus::Pass => "PASS",
        SpecStatus::Warn => "WARN",
        SpecStatus::Fail => "FAIL",
        SpecStatus::Error => "ERROR",
        SpecStatus::Interrupted => "INTERRUPTED",
    };
    let mut line = format!("{word:>11} {} ({:.1}s)", r.name, r.duration_s);
    if let Some(e) = &r.error {
        line.push_str(&format!("\n              error: {e}"));
    }
    let not_run = r
        .slos
        .iter()
        .filter(|s| s.reason == crate::engine::verdict::Reason::NotRun)
        .count();
    for s in r
        .slos
        .iter()
        .filter(|s| s.reason != crate::engine::verdict::Reason::NotRun)
    {
        let mark = match s.status {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        };
        line.push_str(&format!("\n              {mark} {}", s.message));
    }
    if not_run > 0 {
        let why = r
            .slos
            .iter()
            .find(|s| s.reason == crate::engine::verdict::Reason::NotRun)
            .map(|s| s.message.trim_start_matches("not run: ").to_string())
            .unwrap_or_default();
        let same_as_error = r.error.as_deref().is_some_and(|e| e.contains(why.as_str()));
        let why = if same_as_error || why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        line.push_str(&format!("\n              ✗ {not_run} SLO(s) not run{why}"));
    }
    line
}

/// [`outcome_line`] with only the SLOs that did not pass (for `--quiet`); `None` for a spec
/// that passed.
pub fn failing_line(r: &SpecResult) -> Option<String> {
    if r.status == SpecStatus::Pass {
        return None;
    }
    let full = outcome_line(r);
    let kept: Vec<&str> = full
        .lines()
        .filter(|l| !l.trim_start().starts_with('✓'))
        .collect();
    Some(kept.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_folders_are_file_safe_and_unique_in_order() {
        let names = [
            "int8 model",
            "int8-model",
            "INT8/model",
            "../..",
            "",
            "report.html",
            "ünïcode",
            "spec",
        ];
        assert_eq!(
            artifact_dirs(&names),
            [
                "int8-model",
                "int8-model-2",
                "INT8-model-3",
                "spec",
                "spec-2",
                "report-html",
                "n-code",
                "spec-3",
            ]
        );
    }

    #[test]
    fn only_fresh_files_count_as_artifacts() {
        let d = tempfile::tempdir().unwrap();
        let t0 = std::time::SystemTime::now();
        assert!(!written_since(&d.path().join("missing"), t0));
        assert!(!written_since(d.path(), t0));
        std::fs::write(d.path().join("fp32.bpk"), b"x").unwrap();
        assert!(written_since(d.path(), t0));
        assert!(!written_since(d.path(), t0 + Duration::from_secs(60)));
    }
}

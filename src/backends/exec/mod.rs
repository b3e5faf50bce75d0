//! `backend = "exec"`, for every kind: run the team's own command and judge the document it
//! produces ([`document`]) by the spec's SLOs.
//!
//! The command runs in the spec's folder as a child perfspec owns (its own process group,
//! stopped on Ctrl-C, `max_duration` or its `timeout`, killed with perfspec). Its stdout is
//! kept in full as `exec-stdout.txt` in the spec's artifacts folder, which is also
//! `$PERFSPEC_OUT`; the document is `$PERFSPEC_OUT/metrics.json` when the command wrote
//! one, else its stdout. A command that fails, times out or produces no valid document is
//! an error with its output tail, judged on whatever valid document it left.

pub mod document;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::metrics::Measurements;
use crate::engine::{Backend, BackendError, Plan, RunContext};
use crate::spec::catalog::{Kind, MetricDef};
use crate::spec::diagnostic::Diagnostic;
use crate::spec::exec::ExecDoc;
use crate::spec::{Body, Spec};

/// The document a command may write instead of printing it.
pub const METRICS_FILE: &str = "metrics.json";
/// Where the command's stdout is kept.
pub const STDOUT_FILE: &str = "exec-stdout.txt";
/// Largest document read (stdout or metrics.json).
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;

/// The exec backend of one kind (one is registered per kind).
pub struct Exec {
    pub kind: Kind,
}

/// What an exec spec runs.
#[derive(serde::Serialize)]
pub struct ExecPlan {
    /// argv as written (`${env:…}` references, never their values).
    pub command: Vec<String>,
    #[serde(skip)]
    argv: Vec<String>,
    #[serde(skip)]
    env: Vec<(String, String)>,
    /// Names of the extra environment variables.
    pub env_names: Vec<String>,
    pub timeout_s: f64,
    /// The declared metrics, by name.
    pub metrics: Vec<String>,
    #[serde(skip)]
    declared: Vec<MetricDef>,
}

impl fmt::Display for ExecPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run `{}` (timeout {}s) and judge its document",
            self.command.join(" "),
            self.timeout_s
        )?;
        if !self.env_names.is_empty() {
            writeln!(f, "  environment: {}", self.env_names.join(", "))?;
        }
        if !self.metrics.is_empty() {
            writeln!(f, "  declared metrics: {}", self.metrics.join(", "))?;
        }
        Ok(())
    }
}

fn doc(spec: &Spec) -> Option<&ExecDoc> {
    match &spec.body {
        Body::Exec(d) => Some(d),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Backend for Exec {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn name(&self) -> &'static str {
        "exec"
    }
    fn describe(&self) -> &'static str {
        "your own command, printing a perfspec exec document (`perfspec schema --exec`)"
    }

    fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>> {
        let Some(d) = doc(spec) else {
            return Err(vec![
                Diagnostic::error(
                    "spec::backend",
                    "the exec backend runs a spec's `[exec]` table, and this spec has none",
                )
                .in_file(&spec.file)
                .hint("add `[exec]` with `command`, or remove `backend = \"exec\"`"),
            ]);
        };
        let cmd = &d.exec.command;
        let env = d.exec.env.iter().flatten();
        Ok(Plan::new(ExecPlan {
            command: cmd.value.iter().map(|a| a.written.clone()).collect(),
            argv: cmd.value.iter().map(|a| a.value.clone()).collect(),
            env: env
                .clone()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            env_names: env.map(|(k, _)| k.clone()).collect(),
            timeout_s: d.timeout_s(),
            metrics: d.declared().iter().map(|m| m.name.to_string()).collect(),
            declared: d.declared().to_vec(),
        }))
    }

    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError> {
        let p = plan
            .get::<ExecPlan>()
            .ok_or_else(|| crate::engine::plan::wrong_plan("exec"))?;
        let out = if cx.repeat.count > 1 {
            cx.out_dir.join(format!("repeat-{}", cx.repeat.index))
        } else {
            cx.out_dir.clone()
        };
        let ran = execute(p, spec, cx, &out).await?;
        judge(p, self.kind, &out, ran)
    }
}

/// How the command ended.
struct Ran {
    seconds: f64,
    /// `None` when it exited 0.
    problem: Option<String>,
    cancelled: bool,
    tail: String,
}

/// Start the command with its environment and wait for it (bounded by its timeout and the
/// run's cancellation).
async fn execute(
    p: &ExecPlan,
    spec: &Spec,
    cx: &RunContext,
    out: &Path,
) -> Result<Ran, BackendError> {
    let unavailable = |what: String| BackendError::Unavailable(what);
    std::fs::create_dir_all(out)
        .map_err(|e| unavailable(format!("create {}: {e}", out.display())))?;
    // a document left by an earlier run must not be judged as this one's
    let _ = std::fs::remove_file(out.join(METRICS_FILE));
    let stdout = std::fs::File::create(out.join(STDOUT_FILE))
        .map_err(|e| unavailable(format!("create {}: {e}", out.join(STDOUT_FILE).display())))?;
    let shown = p.command.join(" ");
    let mut cmd = std::process::Command::new(program(&p.argv[0], &cx.spec_dir));
    cmd.args(&p.argv[1..])
        .current_dir(&cx.spec_dir)
        .env("PERFSPEC_OUT", absolute(out))
        .env("PERFSPEC_SPEC", &spec.name)
        .env("PERFSPEC_KIND", spec.kind.as_str())
        .env("PERFSPEC_REPEAT", cx.repeat.index.to_string())
        .env("PERFSPEC_REPEATS", cx.repeat.count.to_string())
        .env("PERFSPEC_SEED", cx.repeat.seed(0).to_string())
        .envs(p.env.iter().map(|(k, v)| (k, v)));
    let mut child = crate::process::spawn_to_file(cmd, stdout)
        .map_err(|e| unavailable(format!("cannot start `{shown}`: {e}")))?;
    let t0 = Instant::now();
    let timeout = Duration::from_secs_f64(p.timeout_s);
    let mut last_update = Instant::now() - Duration::from_secs(1);
    let (status, cancelled) = loop {
        if let Some(s) = child.exit_status() {
            break (Some(s), false);
        }
        if cx.cancel.is_cancelled() || t0.elapsed() >= timeout {
            break (None, cx.cancel.is_cancelled());
        }
        if last_update.elapsed() >= Duration::from_millis(500) {
            last_update = Instant::now();
            let last = child.tail_lines(1);
            let progress = if last.is_empty() {
                format!("running `{shown}`")
            } else {
                format!("running `{shown}` · {last}")
            };
            cx.progress
                .update(Some(t0.elapsed().as_secs_f64() / p.timeout_s), &progress);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = t0.elapsed().as_secs_f64();
    let problem = match status {
        Some(s) if s.success() => None,
        Some(s) => Some(format!("`{shown}` exited with {}", describe_status(s))),
        None if cancelled => {
            child.stop();
            Some(format!(
                "`{shown}` was stopped after {seconds:.1}s (cancelled)"
            ))
        }
        None => {
            child.stop();
            Some(format!(
                "`{shown}` did not finish within its timeout of {}s and was stopped",
                p.timeout_s
            ))
        }
    };
    // its last stderr lines may still be in the pipe (a forked grandchild holding it open
    // is not waited for long)
    child.drained(Duration::from_millis(500)).await;
    let tail = child.tail_lines(20);
    drop(child);
    Ok(Ran {
        seconds,
        problem,
        cancelled,
        tail,
    })
}

/// Read the document the command left, check it, and turn the outcome into the run's
/// result: measurements when all went well; a failure with the output tail (judged on the
/// document) when the command failed but left a valid one; else an error (exit 3).
fn judge(p: &ExecPlan, kind: Kind, out: &Path, ran: Ran) -> Result<Measurements, BackendError> {
    let read = read_document(out).and_then(|(where_, text)| {
        let d = document::parse(&text).map_err(|e| format!("{where_}: {e}"))?;
        let known = document::Known {
            kind,
            declared: &p.declared,
        };
        document::measurements(d, &known, ran.seconds).map_err(|e| format!("{where_}: {e}"))
    });
    let tail = if ran.tail.is_empty() {
        String::new()
    } else {
        format!("; its last output (stderr): {}", ran.tail)
    };
    match (read, ran.problem) {
        (Ok(m), None) => Ok(m),
        // Ctrl-C or max_duration: what the command wrote before it stopped, if anything
        (Ok(m), Some(_)) if ran.cancelled => Ok(m),
        (Ok(m), Some(problem)) => Err(BackendError::Failed {
            message: format!("{problem}{tail}"),
            partial: Some(Box::new(m)),
        }),
        // nothing valid to judge: an error without a verdict (exit 3), as a run that
        // could not start
        (Err(e), None) => Err(BackendError::Unavailable(format!(
            "the command's document is not valid: {e}{tail}"
        ))),
        (Err(e), Some(problem)) => Err(BackendError::Unavailable(format!(
            "{problem}, and its document is not valid: {e}{tail}"
        ))),
    }
}

/// `(where it came from, its text)`: `metrics.json` when the command wrote one, else its
/// stdout.
fn read_document(out: &Path) -> Result<(String, String), String> {
    let file = out.join(METRICS_FILE);
    let (path, name) = if file.is_file() {
        (file, "$PERFSPEC_OUT/metrics.json")
    } else {
        (out.join(STDOUT_FILE), "stdout")
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_DOCUMENT {
        return Err(format!(
            "{name} is {size} bytes, more than {MAX_DOCUMENT}: send HDR histograms instead of raw samples"
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
    if text.trim().is_empty() {
        return Err(format!(
            "{name} is empty: print the document on stdout or write it to $PERFSPEC_OUT/{METRICS_FILE}"
        ));
    }
    Ok((name.to_string(), text))
}

/// A program written with a `/` is relative to the spec's folder; a bare name is looked up
/// on `PATH`.
fn program(name: &str, spec_dir: &Path) -> PathBuf {
    if name.contains('/') {
        crate::spec::source::resolve_in(spec_dir, name)
    } else {
        PathBuf::from(name)
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn describe_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "an unknown status".into(),
    }
}

//! Command-line definitions and dispatch.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::backends::Registry;
use crate::engine::Planned;
use crate::engine::baseline::Baseline;
use crate::engine::progress::Progress;
use crate::engine::run::{RunOptions, run_specs};
use crate::exit;
use crate::results::Results;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::loader::{Override, discover, load_file_with};

#[derive(Parser, Debug)]
#[command(name = "perfspec", version, about = "Declarative performance specs with SLO gates", long_about = None)]
#[command(
    after_help = "Exit codes: 0 all SLOs passed (warnings allowed), 1 an SLO failed, 2 invalid spec or usage, \
3 a backend could not start, 4 nothing matched, 130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (results still written)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and check every spec; print every problem with file:line:col.
    Validate {
        /// Spec files or folders (default `specs/`).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// Override a spec value: `--set load.max_in_flight=100`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Validate, execute, evaluate SLOs and write results into `--out`.
    Run {
        /// Spec files or folders (default `specs/`).
        paths: Vec<PathBuf>,
        /// Only specs whose name matches this glob.
        #[arg(long)]
        filter: Option<String>,
        /// Output folder.
        #[arg(long, default_value = "perfspec-out")]
        out: PathBuf,
        /// A results.json from an earlier run: `baseline` terms and deltas refer to it; or
        /// `history:BRANCH` / `history:BRANCH~N`: the last (N) runs of BRANCH in `--history`.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Append this run to a SQLite history database (created when missing).
        #[arg(long, value_name = "FILE.db", env = "PERFSPEC_HISTORY")]
        history: Option<PathBuf>,
        /// Override a spec value: `--set load.max_in_flight=100` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
        /// Bound on the whole run, e.g. `10m`.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Run every selected spec N times (1 to 100), whatever its `repeat` says.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: Option<u32>,
        /// Validate and print the plan of every selected spec without executing anything.
        #[arg(long)]
        dry_run: bool,
        /// `--dry-run` output: human text, or a JSON array with one object per spec.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// No progress output (failing SLOs are still printed).
        #[arg(long, short)]
        quiet: bool,
        /// Quick check that the specs work: every load stage (and cache `duration`) lasts at most
        /// 1 s. The results are not a performance measurement.
        #[arg(long)]
        smoke: bool,
        /// Folder of template overrides (`report.html.j2`, `summary.md.j2`, `kinds/*.html.j2`).
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        #[command(flatten)]
        sharding: crate::merge::ShardArgs,
    },
    /// Join the results of `run --shard K/N` (folders or results.json files, one per shard)
    /// into one run: histograms and counters added, SLOs judged, reports rendered; exit 5
    /// when a shard is missing, repeated, of another spec version or did not overlap in time.
    Merge {
        /// The shards' `--out` folders or results.json files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "perfspec-out")]
        out: PathBuf,
        /// Folder of template overrides.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
    },
    /// Re-render the reports (report.html, summary.md, junit.xml) from a saved results.json,
    /// without re-running.
    Report {
        results: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "perfspec-out")]
        out: PathBuf,
        /// Folder of template overrides (`report.html.j2`, `summary.md.j2`, `kinds/*.html.j2`).
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// A results.json from an earlier run: baseline values and deltas are taken from it,
        /// and SLOs that use `baseline` are judged again (the others keep their verdicts);
        /// or `history:BRANCH` / `history:BRANCH~N`: the last (N) runs of BRANCH in
        /// `--history` before this run.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// A history database (as `perfspec run --history` writes): the report draws each
        /// SLO's trend over the runs of this run's branch.
        #[arg(long, value_name = "FILE.db", env = "PERFSPEC_HISTORY")]
        history: Option<PathBuf>,
    },
    /// One line per spec: kind, name, file, backend.
    List { paths: Vec<PathBuf> },
    /// Run the embedded demo service (the shop the example specs load, and its database tier).
    Demo {
        #[command(subcommand)]
        command: crate::demo::DemoCommand,
    },
    /// Print the runs in a `--history` database: one line per SLO and run, oldest first.
    History {
        /// The database (default: `PERFSPEC_HISTORY`).
        #[arg(long, value_name = "FILE.db", env = "PERFSPEC_HISTORY")]
        history: PathBuf,
        /// Only this spec.
        #[arg(long)]
        spec: Option<String>,
        /// Only this SLO: its expression or its left-hand side, e.g. `p95(latency)`.
        #[arg(long)]
        metric: Option<String>,
    },
    /// Write a commented starter spec (`--url` of your service, or the embedded demo shop).
    Init(crate::init::InitArgs),
    /// Print the JSON Schema of spec files (or of results.json).
    Schema {
        /// The schema of results.json instead.
        #[arg(long, conflicts_with = "exec")]
        results: bool,
        /// The schema of the document an `exec` spec's command prints.
        #[arg(long)]
        exec: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let v = crate::spec::units::Quantity::parse_as(s, crate::spec::units::Dimension::Time)?;
    if v <= 0.0 {
        return Err("must be greater than 0".into());
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// Run the CLI; returns the exit code.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate { paths, format, set } => validate(paths, format, &set),
        Command::Run {
            paths,
            filter,
            out,
            baseline,
            history,
            set,
            timeout,
            repeat,
            dry_run,
            format,
            quiet,
            smoke,
            templates,
            sharding,
        } => run(RunArgs {
            paths,
            filter,
            out,
            baseline,
            history,
            set,
            timeout,
            repeat,
            dry_run,
            format,
            quiet,
            smoke,
            templates,
            sharding,
        }),
        Command::Merge {
            inputs,
            out,
            templates,
        } => crate::merge::main(&inputs, &out, templates.as_deref()),
        Command::Report {
            results,
            out,
            templates,
            baseline,
            history,
        } => report(&ReportArgs {
            results: &results,
            out: &out,
            templates: templates.as_deref(),
            baseline: baseline.as_deref(),
            history: history.as_deref(),
        }),
        Command::List { paths } => list(paths),
        Command::History {
            history,
            spec,
            metric,
        } => match crate::history::table(&history, spec.as_deref(), metric.as_deref()) {
            Ok(t) => print_stdout(&t),
            Err(e) => {
                eprintln!("perfspec: {e}");
                exit::INVALID
            }
        },
        Command::Init(args) => crate::init::main(&args),
        Command::Demo { command } => match command {
            crate::demo::DemoCommand::Serve(args) => crate::demo::shop::main(args),
            crate::demo::DemoCommand::Db(args) => crate::demo::db::main(args),
        },
        Command::Schema { results, exec } => {
            let schema = if results {
                crate::results::json_schema()
            } else if exec {
                crate::backends::exec::document::json_schema()
            } else {
                crate::spec::schema::spec_schema()
            };
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            ))
        }
    }
}

/// Print to stdout; a closed pipe is not an error (exit 0 quietly, like ripgrep).
fn print_stdout(s: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(e) => {
            eprintln!("perfspec: cannot write to stdout: {e}");
            exit::INVALID
        }
    }
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn print_diagnostics(diags: &[Diagnostic]) {
    let color = color();
    for d in diags {
        eprintln!("{}", d.render(color));
    }
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("specs")]
    } else {
        paths
    }
}

/// Every file loaded and planned: the valid specs with their plans, and all diagnostics.
pub struct Checked {
    pub files: usize,
    pub specs: Vec<Planned>,
    pub diagnostics: Vec<Diagnostic>,
    pub invalid_files: usize,
}

/// Load and validate every spec under `paths` (parse, decode, then the backend's plan, which
/// holds its capability checks), collecting all problems of all files.
pub fn check_paths(
    paths: &[PathBuf],
    overrides: &[Override],
    registry: &Registry,
    smoke: bool,
) -> Result<Checked, Box<Diagnostic>> {
    let files = discover(paths)?;
    let env = |name: &str| std::env::var(name).ok();
    let mut specs = Vec::new();
    let mut diagnostics = Vec::new();
    let mut invalid_files = 0;
    let mut applied = vec![false; overrides.len()];
    let mut set_problems: Vec<Option<String>> = vec![None; overrides.len()];
    let mut names: std::collections::BTreeMap<String, String> = Default::default();
    for f in &files {
        let loaded = load_file_with(f, overrides, &env, smoke);
        for (a, b) in applied.iter_mut().zip(&loaded.applied) {
            *a |= *b;
        }
        for (p, why) in set_problems.iter_mut().zip(&loaded.set_problems) {
            if p.is_none() {
                p.clone_from(why);
            }
        }
        let mut file_diags = loaded.diagnostics;
        if let Some(spec) = loaded.spec {
            let plan = match registry.plan(&spec) {
                Ok(mut p) => {
                    for d in &mut p.warnings {
                        d.redact(&spec.secrets);
                    }
                    file_diags.append(&mut p.warnings);
                    Some(p)
                }
                Err(d) => {
                    file_diags.extend(d.into_iter().map(|mut d| {
                        d.redact(&spec.secrets);
                        d
                    }));
                    None
                }
            };
            if let Some(first) = names.get(&spec.name) {
                file_diags.push(
                    Diagnostic::error(
                        "spec::duplicate-name",
                        format!("spec name `{}` is also used by {first}", spec.name),
                    )
                    .in_file(&spec.file)
                    .hint("names identify specs in results and baselines: make them unique"),
                );
            } else {
                names.insert(spec.name.clone(), spec.file.name.clone());
            }
            if let Some(plan) = plan
                && !file_diags.iter().any(Diagnostic::is_error)
            {
                specs.push(Planned { spec, plan });
            }
        }
        if file_diags.iter().any(Diagnostic::is_error) {
            invalid_files += 1;
        }
        diagnostics.extend(file_diags);
    }
    for ((ov, used), why) in overrides.iter().zip(applied).zip(set_problems) {
        if !used && !files.is_empty() {
            let first = ov.path.split('.').next().unwrap_or("");
            let d = match why {
                Some(why) => Diagnostic::error(
                    "usage::set",
                    format!("`--set {}` cannot be applied: {why}", ov.path),
                )
                .hint("paths follow the spec's keys; numbers index arrays, e.g. `--set load.stages.1.for=3s`"),
                None => Diagnostic::error(
                    "usage::set",
                    format!("`--set {}` matches no spec: no spec has a top-level `{first}` key", ov.path),
                )
                .hint("the first part of the path must be a top-level key of the spec, e.g. `load.max_in_flight`"),
            };
            diagnostics.push(d);
            invalid_files += 1;
        }
    }
    Ok(Checked {
        files: files.len(),
        specs,
        diagnostics,
        invalid_files,
    })
}

fn validate(paths: Vec<PathBuf>, format: OutputFormat, set: &[Override]) -> i32 {
    let paths = default_paths(paths);
    let registry = Registry::standard();
    let checked = match check_paths(&paths, set, &registry, false) {
        Ok(c) => c,
        Err(d) => {
            match format {
                OutputFormat::Json => {
                    print_stdout(&format!(
                        "{}\n",
                        serde_json::json!({"valid": false, "files": 0, "diagnostics": [d.to_json()]})
                    ));
                }
                OutputFormat::Human => print_diagnostics(&[*d]),
            }
            return exit::INVALID;
        }
    };
    let code = if checked.invalid_files > 0 {
        exit::INVALID
    } else if checked.files == 0 {
        exit::NOTHING_SELECTED
    } else {
        exit::SUCCESS
    };
    match format {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "valid": code == exit::SUCCESS,
                "files": checked.files,
                "specs": checked.specs.iter().map(|p| &p.spec).map(|s| serde_json::json!({"name": s.name, "kind": s.kind, "backend": s.backend, "file": s.file.name})).collect::<Vec<_>>(),
                "diagnostics": checked.diagnostics.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
            });
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            ));
        }
        OutputFormat::Human => {
            print_diagnostics(&checked.diagnostics);
            let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = checked.diagnostics.len() - errors;
            if checked.files == 0 {
                eprintln!(
                    "perfspec: no spec files found in {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                eprintln!(
                    "perfspec: {} file(s) checked: {} valid, {} invalid ({errors} error(s), {warnings} warning(s))",
                    checked.files,
                    checked.files - checked.invalid_files.min(checked.files),
                    checked.invalid_files
                );
            }
        }
    }
    code
}

fn list(paths: Vec<PathBuf>) -> i32 {
    let registry = Registry::standard();
    let checked = match check_paths(&default_paths(paths), &[], &registry, false) {
        Ok(c) => c,
        Err(d) => {
            print_diagnostics(&[*d]);
            return exit::INVALID;
        }
    };
    print_diagnostics(&checked.diagnostics);
    let mut out = String::new();
    for s in checked.specs.iter().map(|p| &p.spec) {
        out.push_str(&format!(
            "{:<9} {:<32} {:<40} {}\n",
            s.kind.as_str(),
            s.name,
            s.file.name,
            s.backend
        ));
    }
    let printed = print_stdout(&out);
    if checked.invalid_files > 0 {
        exit::INVALID
    } else if checked.files == 0 {
        exit::NOTHING_SELECTED
    } else {
        printed
    }
}

struct RunArgs {
    paths: Vec<PathBuf>,
    filter: Option<String>,
    out: PathBuf,
    baseline: Option<PathBuf>,
    history: Option<PathBuf>,
    set: Vec<Override>,
    timeout: Option<std::time::Duration>,
    repeat: Option<u32>,
    dry_run: bool,
    format: OutputFormat,
    quiet: bool,
    smoke: bool,
    templates: Option<PathBuf>,
    sharding: crate::merge::ShardArgs,
}

fn run(mut args: RunArgs) -> i32 {
    let registry = Registry::standard();
    let checked = match check_paths(&default_paths(args.paths), &args.set, &registry, args.smoke) {
        Ok(c) => c,
        Err(d) => {
            print_diagnostics(&[*d]);
            return exit::INVALID;
        }
    };
    print_diagnostics(&checked.diagnostics);
    if checked.invalid_files > 0 {
        eprintln!(
            "perfspec: {} invalid spec file(s); nothing was run",
            checked.invalid_files
        );
        return exit::INVALID;
    }
    let mut specs = checked.specs;
    if let Some(pattern) = &args.filter {
        let glob = match globset::Glob::new(pattern) {
            Ok(g) => g.compile_matcher(),
            Err(e) => {
                eprintln!("perfspec: invalid --filter `{pattern}`: {e}");
                return exit::INVALID;
            }
        };
        specs.retain(|p| glob.is_match(&p.spec.name));
    }
    if specs.is_empty() {
        eprintln!("perfspec: no spec matched the selection");
        return exit::NOTHING_SELECTED;
    }
    let (shard, start_at) = match args.sharding.resolve(&specs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("perfspec: {e}");
            return exit::INVALID;
        }
    };
    if let Some(s) = shard {
        // `--out results/shard-{shard}`: one folder per shard from one command line
        let out = args
            .out
            .to_string_lossy()
            .replace("{shard}", &s.index.to_string());
        args.out = PathBuf::from(out);
    }
    if args.dry_run {
        return print_stdout(&match args.format {
            OutputFormat::Human => plan_text(&specs, &registry),
            OutputFormat::Json => plan_json(&specs),
        });
    }
    let baseline = match args
        .baseline
        .as_deref()
        .map(|p| load_baseline(p, args.history.as_deref(), None))
    {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            eprintln!("perfspec: --baseline: {e}");
            return exit::INVALID;
        }
        None => None,
    };
    if let Err(e) = crate::results::create_dir_public(&args.out) {
        eprintln!("perfspec: cannot create `{}`: {e}", args.out.display());
        return exit::INVALID;
    }
    let opts = RunOptions {
        out_dir: args.out.clone(),
        baseline,
        timeout: args.timeout,
        command: std::env::args().collect(),
        repeat: args.repeat,
        shard,
        start_at,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perfspec: cannot start the async runtime: {e}");
            return exit::BACKEND_UNAVAILABLE;
        }
    };
    let progress = Arc::new(if args.quiet {
        Progress::silent()
    } else {
        Progress::auto(false)
    });
    let results = runtime.block_on(async {
        let interrupt = CancellationToken::new();
        spawn_signal_handlers(interrupt.clone());
        run_specs(&specs, &registry, &opts, interrupt, progress).await
    });
    let mut results = results;
    let stopped_by = STOPPED_BY.load(std::sync::atomic::Ordering::SeqCst);
    if results.interrupted && stopped_by != 0 {
        // SIGTERM / SIGHUP: the same partial results, with the exit code of that signal
        results.exit_code = exit::for_signal(stopped_by);
    }
    // appended first, so that the report's trend charts see the history as it now is
    let trends = args.history.as_deref().and_then(|db| {
        if let Err(e) = crate::history::append(db, &results) {
            eprintln!("perfspec: cannot append to the history: {e}");
        }
        read_trends(db, &results)
    });
    if let Err(e) = write_reports(
        &results,
        &args.out,
        args.templates.as_deref(),
        trends.as_ref(),
    ) {
        eprintln!("perfspec: cannot write reports: {e}");
    }
    if args.quiet {
        // quiet drops progress, never which SLO failed
        for r in &results.specs {
            if let Some(line) = crate::engine::run::failing_line(r) {
                eprintln!("{line}");
            }
        }
    }
    eprintln!("{}", crate::report::summary::one_line(&results));
    let report = args.out.join("report.html");
    if report.is_file() {
        eprintln!("perfspec: report {}", report.display());
    }
    eprintln!("perfspec: results in {}", args.out.display());
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match shard {
        // a shard judges only its share of the load: its SLO verdicts are informative, the
        // gate is `perfspec merge` (errors, interruptions and invalid input still count)
        Some(s) if results.exit_code == exit::SLO_FAILED => {
            eprintln!(
                "perfspec: shard {s}: SLOs judged on this shard's share only; `perfspec merge` of all {} shards gates the run",
                s.count
            );
            exit::SUCCESS
        }
        _ => results.exit_code,
    }
}

/// `--baseline`: a results.json, or `history:BRANCH[~N]` from the `--history` database
/// (`before`: the start time of a saved run judged again, whose own and later runs are
/// left out; without it, a `run`, a missing history is one this run creates). A history
/// branch without runs is a warning: `on_missing_baseline` decides.
fn load_baseline(
    p: &std::path::Path,
    history: Option<&std::path::Path>,
    before: Option<&str>,
) -> Result<Baseline, String> {
    let text = p.to_string_lossy();
    match crate::history::parse_ref(&text) {
        None => Baseline::load(p),
        Some(Err(e)) => Err(e),
        Some(Ok((branch, n))) => match history {
            // `run` creates a missing history: its first run has no baseline yet
            Some(db) if before.is_none() && !db.exists() => {
                eprintln!(
                    "perfspec: warning: --baseline {text}: the history `{}` does not exist yet (this run creates it); SLOs that use `baseline` follow `on_missing_baseline`",
                    db.display()
                );
                Ok(Baseline::new_history(db, &branch, n))
            }
            Some(db) => {
                let b = Baseline::from_history(db, &branch, n, before)?;
                if let Some(note) = b.empty_note() {
                    eprintln!("perfspec: warning: --baseline {text}: {note}");
                }
                Ok(b)
            }
            None => Err(format!(
                "`{text}` reads the history: give `--history FILE.db` (or PERFSPEC_HISTORY)"
            )),
        },
    }
}

/// The trend charts' runs; a history that cannot be read is said on stderr, and the report
/// goes without them.
fn read_trends(db: &std::path::Path, res: &Results) -> Option<crate::history::Trends> {
    match crate::history::trends(db, res) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("perfspec: no trend charts: {e}");
            None
        }
    }
}

/// The first of SIGINT / SIGTERM / SIGHUP that stopped the run (0: none).
static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// SIGINT, SIGTERM and SIGHUP, handled once for the whole run: the first cancels (backends
/// stop and hand back what they measured; SLOs are judged, results and reports written,
/// children stopped; exit 130, 143 or 129 — see [`exit::for_signal`]); a second of any of
/// them exits at once (children die with perfspec: parent-death signal).
///
/// perfspec owns SIGINT through the `ctrlc` crate, installed once per process before any
/// backend runs. goose calls `ctrlc::set_handler` at every load test; with ours in place
/// that call fails (one handler per process) and leaves ours alone, instead of replacing it
/// and exiting 1 on the second Ctrl-C. The load backend forwards the cancellation to
/// `goose::trigger_killswitch`. SIGTERM and SIGHUP go through tokio's signal handling
/// (`ctrlc`'s `termination` feature cannot tell the signals apart).
fn spawn_signal_handlers(interrupt: CancellationToken) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    static TARGET: std::sync::Mutex<Option<CancellationToken>> = std::sync::Mutex::new(None);
    static SIGNALS: AtomicU32 = AtomicU32::new(0);
    static OWNED: AtomicBool = AtomicBool::new(false);
    static INSTALL: std::sync::Once = std::sync::Once::new();
    fn on_signal(sig: i32) {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(exit::for_signal(sig));
        }
        STOPPED_BY.store(sig, Ordering::SeqCst);
        let (what, again) = match sig {
            libc::SIGTERM => ("terminated (SIGTERM)", "a second signal exits now"),
            libc::SIGHUP => ("hung up (SIGHUP)", "a second signal exits now"),
            _ => ("interrupted", "Ctrl-C again to exit now"),
        };
        eprintln!("\nperfspec: {what}; writing what was measured ({again})");
        if let Some(t) = TARGET.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            t.cancel();
        }
    }
    *TARGET.lock().unwrap_or_else(|e| e.into_inner()) = Some(interrupt.clone());
    SIGNALS.store(0, Ordering::SeqCst);
    STOPPED_BY.store(0, Ordering::SeqCst);
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, sig) in [
        (SignalKind::terminate(), libc::SIGTERM),
        (SignalKind::hangup(), libc::SIGHUP),
    ] {
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    on_signal(sig);
                }
            });
        }
    }
    INSTALL.call_once(|| {
        let ok = ctrlc::set_handler(|| on_signal(libc::SIGINT));
        OWNED.store(ok.is_ok(), Ordering::SeqCst);
    });
    if OWNED.load(Ordering::SeqCst) {
        return;
    }
    // another SIGINT handler already owns the process (a library user): fall back to tokio's
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_signal(libc::SIGINT);
        }
    });
}

/// Every report of a results record into `out` (results.json included).
fn write_reports(
    results: &Results,
    out: &std::path::Path,
    templates: Option<&std::path::Path>,
    trends: Option<&crate::history::Trends>,
) -> Result<(), crate::report::templates::ReportError> {
    let opts = crate::report::write::ReportOptions {
        out,
        templates,
        write_results: true,
        trends,
    };
    crate::report::write::write_all(results, &opts)
}

/// `perfspec report`'s inputs.
struct ReportArgs<'a> {
    results: &'a std::path::Path,
    out: &'a std::path::Path,
    templates: Option<&'a std::path::Path>,
    baseline: Option<&'a std::path::Path>,
    history: Option<&'a std::path::Path>,
}

fn report(a: &ReportArgs<'_>) -> i32 {
    let mut res = match Results::read(a.results) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perfspec: {e}");
            return exit::INVALID;
        }
    };
    if let Some(b) = a.baseline {
        match load_baseline(b, a.history, Some(&res.started_at)) {
            Ok(base) => crate::engine::rebase::apply(&mut res, &base),
            Err(e) => {
                eprintln!("perfspec: --baseline: {e}");
                return exit::INVALID;
            }
        }
    }
    let trends = match a.history.map(|db| crate::history::trends(db, &res)) {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("perfspec: --history: {e}");
            return exit::INVALID;
        }
        None => None,
    };
    if let Err(e) = crate::results::create_dir_public(a.out) {
        eprintln!("perfspec: cannot create `{}`: {e}", a.out.display());
        return exit::INVALID;
    }
    // the input is rewritten only when it changed (a baseline) or lives elsewhere
    let same_file = std::fs::canonicalize(a.results).ok()
        == std::fs::canonicalize(a.out.join("results.json")).ok();
    let opts = crate::report::write::ReportOptions {
        out: a.out,
        templates: a.templates,
        write_results: a.baseline.is_some() || !same_file,
        trends: trends.as_ref(),
    };
    if let Err(e) = crate::report::write::write_all(&res, &opts) {
        eprintln!(
            "perfspec: cannot render reports into `{}`: {e}",
            a.out.display()
        );
        return exit::INVALID;
    }
    eprintln!("{}", crate::report::summary::one_line(&res));
    res.exit_code
}

/// `--dry-run`: for each spec its header, the backend's plan and the SLOs (defaults marked).
fn plan_text(specs: &[Planned], registry: &Registry) -> String {
    let mut out = format!("plan: {} spec(s)\n", specs.len());
    for (i, Planned { spec: s, plan }) in specs.iter().enumerate() {
        let backend = registry
            .get(s.kind, &s.backend)
            .map(|b| b.describe())
            .unwrap_or("?");
        out.push_str(&format!(
            "{:>3}. {} [{}] {} — backend {} ({backend})\n",
            i + 1,
            s.name,
            s.kind,
            s.file.name,
            s.backend
        ));
        if let Some(d) = s.max_duration {
            out.push_str(&format!("     max_duration {d}\n"));
        }
        let shown = crate::report::results::redact(&plan.to_string(), &s.secrets);
        for line in shown.lines() {
            out.push_str(&format!("     {line}\n"));
        }
        for slo in &s.slos {
            let origin = if slo.line == 0 {
                " (default)".to_string()
            } else {
                format!(" (line {})", slo.line)
            };
            out.push_str(&format!(
                "     slo [{}] {}{origin}\n",
                severity(slo),
                slo.text
            ));
        }
    }
    out
}

fn severity(slo: &crate::engine::verdict::Slo) -> &'static str {
    match slo.severity {
        crate::engine::verdict::SloSeverity::Fail => "fail",
        crate::engine::verdict::SloSeverity::Warn => "warn",
    }
}

/// `--dry-run --format json`: one object per spec with its plan, secrets redacted.
fn plan_json(specs: &[Planned]) -> String {
    let all: Vec<serde_json::Value> = specs
        .iter()
        .map(|Planned { spec: s, plan }| {
            let mut plan = plan.to_json();
            redact_json(&mut plan, &s.secrets);
            serde_json::json!({
                "name": s.name,
                "kind": s.kind,
                "backend": s.backend,
                "file": s.file.name,
                "max_duration_s": s.max_duration.map(|d| d.as_std().as_secs_f64()),
                "plan": plan,
                "slos": s.slos.iter().map(|slo| serde_json::json!({
                    "expr": slo.text,
                    "severity": severity(slo),
                    "default": slo.line == 0,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&all).unwrap_or_default()
    )
}

fn redact_json(v: &mut serde_json::Value, secrets: &[String]) {
    match v {
        serde_json::Value::String(s) => *s = crate::report::results::redact(s, secrets),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(x, secrets)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| redact_json(x, secrets)),
        _ => {}
    }
}

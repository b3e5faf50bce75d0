//! The CLI end to end: validate, list, dry-run, run with the testkit backend, cancellation,
//! baselines and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perfspec"));
    c.env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("NO_COLOR", "1")
        .env("CI", "1");
    c
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `perfspec ARGS` in `d`, with no standard input.
pub fn run_cli(d: &Dir, args: &[&str]) -> Output {
    bin()
        .current_dir(d.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("perfspec runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `out/results.json` in `d`.
pub fn results(d: &Dir) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(d.join("out/results.json")).expect("results.json"))
        .unwrap()
}

/// The scalar `metric` of a spec result with exactly `labels`.
pub fn scalar(spec: &serde_json::Value, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    spec["measurements"]["scalars"]
        .as_array()?
        .iter()
        .find(|s| {
            let l = s.get("labels").and_then(|l| l.as_object());
            s["metric"] == metric
                && l.map_or(0, |l| l.len()) == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.and_then(|l| l.get(*k)).and_then(|x| x.as_str()) == Some(*v))
        })?["value"]
        .as_f64()
}

/// The outcome of the SLO written `expr` in a spec result of results.json.
pub fn slo_outcome<'a>(spec: &'a serde_json::Value, expr: &str) -> &'a serde_json::Value {
    spec["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expr"] == expr)
        .unwrap_or_else(|| panic!("no SLO `{expr}` in {}", spec["slos"]))
}

/// Whether a program a test needs is installed: `true` when `found` says so. When it is
/// missing, a developer's machine skips the test with a note (`false`), but CI (`CI` set in
/// the test's own environment) fails it with the install hint: CI installs these programs,
/// and a skip there would hide a broken install step.
pub fn require_program(name: &str, found: bool, hint: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("{name} is required when CI is set, but it is not installed: {hint}");
    }
    eprintln!("note: skipped: {name} is not installed ({hint})");
    false
}

/// Whether every one of `programs` (binary, Debian package) is installed; see
/// [`require_program`].
pub fn require_programs(programs: &[(&str, &str)]) -> bool {
    programs.iter().all(|(name, package)| {
        require_program(
            name,
            on_path(name, &[]),
            &format!("install the Debian package {package}"),
        )
    })
}

/// Whether `program` is a file in a folder of `PATH`, in /usr/sbin or /usr/local/sbin, or
/// one of the `extra` paths.
pub fn on_path(program: &str, extra: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra.iter().any(|p| Path::new(p).is_file())
        || std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
            .any(|d| d.join(program).is_file())
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("perfspec runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temp dir with spec files written into it.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Dir {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        Dir(d)
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.path().join(p)
    }
}

const TESTKIT_LOAD: &str = r#"
kind = "load"
name = "tk"
backend = "testkit"
slo = [
  "p50(latency) < 80ms",
  "max(latency) <= 101ms",
  { expr = "p99(latency) < 10ms", severity = "warn" },
]
[target]
url = "http://127.0.0.1:9"
[load]
stages = [{ hold = "10/s", for = "1s" }]
[[journey]]
name = "j"
steps = [{ request = "GET /" }]
"#;

#[test]
fn validate_accepts_every_example_spec() {
    for dir in ["specs", "specs/services"] {
        let out = run(bin().current_dir(root()).args(["validate", dir]));
        assert_eq!(out.status.code(), Some(0), "{dir}: {}", text(&out.stderr));
    }
}

#[test]
fn list_prints_one_line_per_spec() {
    let out = run(bin().current_dir(root()).args(["list", "specs"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("load") && l.contains("checkout") && l.contains("goose")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("quantize") && l.contains("flex")),
        "{stdout}"
    );
}

#[test]
fn missing_path_is_usage_error_and_empty_dir_matches_nothing() {
    let out = run(bin().args(["validate", "/nonexistent/specs"]));
    assert_eq!(out.status.code(), Some(2));
    let d = Dir::new(&[("README.txt", "not a spec")]);
    let out = run(bin().arg("validate").arg(d.path()));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

#[test]
fn validate_json_reports_positions() {
    let d = Dir::new(&[(
        "bad.toml",
        "kind = \"load\"\nname = \"x\"\nslo = [\"p95(latency) < 5%\"]\n",
    )]);
    let out = run(bin().args(["validate", "--format", "json"]).arg(d.path()));
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    let unit = diags
        .iter()
        .find(|d| d["code"] == "slo::check")
        .expect("an SLO unit error");
    assert_eq!(unit["line"], 3);
    assert_eq!(unit["column"], 24, "{unit}");
    // the missing tables are reported in the same pass
    assert!(diags.iter().any(|d| {
        d["message"]
            .as_str()
            .unwrap()
            .contains("missing key `target`")
    }));
}

#[test]
fn dry_run_prints_the_plan_without_running() {
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["run", "--dry-run"])
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("tk [load]") && plan.contains("late_ratio < 1% (default)"),
        "{plan}"
    );
    assert!(!d.join("out/results.json").exists());
}

#[test]
fn testkit_run_writes_results_and_judges_slos() {
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    assert_eq!(res["schema_version"], 1);
    let spec = &res["specs"][0];
    assert_eq!(spec["backend"], "testkit");
    assert_eq!(spec["status"], "warn");
    let slos = spec["slos"].as_array().unwrap();
    assert_eq!(slos[0]["status"], "pass");
    assert_eq!(slos[2]["status"], "warn");
    assert_eq!(slos[0]["line"], 6);
    assert!(d.join("out/summary.md").exists());
}

#[test]
fn failing_slo_exits_1_and_pending_backend_exits_3() {
    let failing = TESTKIT_LOAD.replace("\"p50(latency) < 80ms\"", "\"p50(latency) < 1ms\"");
    let d = Dir::new(&[("a.toml", &failing)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let pending = TESTKIT_LOAD.replace("backend = \"testkit\"\n", "");
    let d = Dir::new(&[
        ("a.toml", &pending),
        (
            "b.toml",
            &failing.replace("name = \"tk\"", "name = \"tk2\""),
        ),
    ]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    // worst wins: 3 (no verdict) over 1 (SLO failed)
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    // the goose backend cannot reach http://127.0.0.1:9: it could not start, no verdict
    assert!(
        res["specs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to the target"),
        "{}",
        res["specs"][0]["error"]
    );
    assert_eq!(res["specs"][0]["measurements"], serde_json::Value::Null);
}

#[test]
fn filter_that_matches_nothing_exits_4() {
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["run", "--filter", "nope*"])
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn max_duration_stops_a_spec_with_a_verdict_on_what_was_measured() {
    let spec = TESTKIT_LOAD.replace(
        "backend = \"testkit\"",
        "backend = \"testkit\"\nmax_duration = \"300ms\"",
    );
    let d = Dir::new(&[("a.toml", &spec)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TESTKIT_SECONDS", "30")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    let spec = &res["specs"][0];
    assert_eq!(spec["timed_out"], true);
    assert!(spec["error"].as_str().unwrap().contains("max_duration"));
    let count = spec["measurements"]["histograms"][0]["count"]
        .as_u64()
        .unwrap();
    assert!(count > 5 && count < 100, "{count}");
    assert!(spec["duration_s"].as_f64().unwrap() < 5.0);
}

#[test]
fn baseline_arithmetic_and_missing_baseline() {
    let spec = TESTKIT_LOAD.replace(
        "\"max(latency) <= 101ms\",",
        "\"max(latency) <= 101ms\",\n  \"p95(latency) <= baseline * 1.10 + 5ms\",",
    );
    let d = Dir::new(&[("a.toml", &spec)]);
    // no baseline: the baseline SLO warns (no-baseline), the run still passes
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("base")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("base/results.json")).unwrap()).unwrap();
    assert_eq!(res["specs"][0]["slos"][2]["reason"], "no-baseline");
    // with the first run as baseline the same measurements pass with a delta of 0
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("next"))
        .arg("--baseline")
        .arg(d.join("base/results.json")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("next/results.json")).unwrap()).unwrap();
    let slo = &res["specs"][0]["slos"][2];
    assert_eq!(slo["status"], "pass", "{slo}");
    assert!(slo["baseline"].as_f64().unwrap() > 0.09);
}

#[test]
fn set_overrides_values_and_rejects_unknown_paths() {
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["validate", "--set", "load.max_in_flight=0"])
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("max_in_flight"), "{err}");
    // the file has no `max_in_flight`: the diagnostic says the key was added by --set
    assert!(err.contains("added by --set load.max_in_flight=0"), "{err}");
    assert!(err.contains("come from `--set`"), "{err}");
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["validate", "--set", "nosuch.key=1"])
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(2));
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["validate", "--set", "load.max_in_flight=10"])
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Regression (issue 18): `--set load.stages.1.for=3s` said "no spec has a `load` key".
#[test]
fn set_indexes_arrays_and_says_why_a_path_does_not_apply() {
    let spec = TESTKIT_LOAD.replace(
        "stages = [{ hold = \"10/s\", for = \"1s\" }]",
        "stages = [{ hold = \"10/s\", for = \"1s\" }, { hold = \"20/s\", for = \"1s\" }]",
    );
    let d = Dir::new(&[("a.toml", &spec)]);
    let validate = |set: &str| {
        run(bin()
            .env("PERFSPEC_TESTKIT", "1")
            .args(["validate", "--format", "json", "--set", set])
            .arg(d.path()))
    };
    // an index into an array applies, and a bad value it sets is located at the element
    let out = validate("load.stages.1.for=3s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = validate("load.stages.1.for=3 parsecs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("replaced by --set load.stages.1.for"),
        "{}",
        text(&out.stdout)
    );
    // out of range, not a number, through a scalar: each says what is wrong
    for (set, says) in [
        ("load.stages.2.for=3s", "`load.stages` has 2 element(s)"),
        (
            "load.stages.first.for=3s",
            "`load.stages` is an array: index it with a number",
        ),
        ("target.url.host=x", "`target.url` is a string"),
        ("nosuch.key=1", "no spec has a top-level `nosuch` key"),
    ] {
        let out = validate(set);
        assert_eq!(out.status.code(), Some(2), "{set}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains(says), "{set}: {stdout}");
        assert!(
            !stdout.contains("no spec has a `load` key"),
            "{set}: {stdout}"
        );
    }
}

/// Issue 18: the end of a run lists every SLO with its value and the report's path; `--quiet`
/// still names the SLOs that did not pass; a target that never answers is one cause line.
#[test]
fn run_end_lists_every_slo_and_quiet_keeps_the_failing_ones() {
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let run_with = |extra: &[&str]| {
        run(bin()
            .env("PERFSPEC_TESTKIT", "1")
            .arg("run")
            .args(extra)
            .arg(d.path())
            .arg("--out")
            .arg(d.join("out")))
    };
    let out = run_with(&[]);
    let err = text(&out.stderr);
    assert!(err.contains("✓ p50(latency) = "), "{err}");
    assert!(err.contains("! p99(latency) = "), "{err}");
    assert!(
        err.contains(&format!("report {}", d.join("out/report.html").display())),
        "{err}"
    );
    let out = run_with(&["--quiet"]);
    let err = text(&out.stderr);
    assert!(err.contains("! p99(latency) = "), "{err}");
    assert!(!err.contains('✓'), "{err}");

    let dead = TESTKIT_LOAD.replace("backend = \"testkit\"\n", "");
    let d = Dir::new(&[("dead.toml", &dead)]);
    let out = run(bin()
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.matches("not run").count(), 1, "{err}");
    // three written SLOs and the default `late_ratio < 1%`
    assert!(err.contains("4 SLO(s) not run"), "{err}");
}

/// Issue 18: outputs are readable by others (0644 files, 0755 folders) whatever the umask
/// did to a temp file.
#[cfg(unix)]
#[test]
fn output_files_are_0644_and_folders_0755() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new(&[("a.toml", TESTKIT_LOAD)]);
    let out_dir = d.join("nested/out");
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("run")
        .arg(d.join("a.toml"))
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in [d.join("nested"), out_dir.clone()] {
        assert_eq!(mode(&dir), 0o755, "{}", dir.display());
    }
    for file in ["results.json", "report.html", "junit.xml", "summary.md"] {
        assert_eq!(mode(&out_dir.join(file)), 0o644, "{file}");
    }
}

#[test]
fn env_interpolation_and_redaction() {
    let spec = TESTKIT_LOAD.replace("steps = [{ request = \"GET /\" }]", "steps = [{ request = \"GET /\", headers = { authorization = \"Bearer ${env:PERFSPEC_TEST_TOKEN}\" } }]");
    let d = Dir::new(&[("a.toml", &spec)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("validate")
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("PERFSPEC_TEST_TOKEN` is not set"),
        "{}",
        text(&out.stderr)
    );
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TEST_TOKEN", "s3cr3t-value")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let raw = std::fs::read_to_string(d.join("out/results.json")).unwrap();
    assert!(!raw.contains("s3cr3t-value"));
    assert!(raw.contains("${env:PERFSPEC_TEST_TOKEN}"));
}

/// SIGINT in the middle of a spec: partial results are written and the exit code is 130.
#[test]
fn sigint_mid_spec_writes_partial_results_and_exits_130() {
    let d = Dir::new(&[
        ("a.toml", TESTKIT_LOAD),
        (
            "b.toml",
            &TESTKIT_LOAD.replace("name = \"tk\"", "name = \"tk-second\""),
        ),
    ]);
    let child = bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TESTKIT_SECONDS", "60")
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid
    unsafe { libc_kill(child.id() as i32, 2) };
    let start = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    assert_eq!(res["interrupted"], true);
    assert_eq!(res["exit_code"], 130);
    let specs = res["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 1, "the second spec never started");
    assert_eq!(specs[0]["status"], "interrupted");
    let count = specs[0]["measurements"]["histograms"][0]["count"]
        .as_u64()
        .unwrap();
    assert!(
        count > 10,
        "what was measured before the interrupt is kept: {count}"
    );
    assert!(d.join("out/summary.md").exists());
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn run_timeout_fails_the_running_spec_and_lists_the_rest() {
    let d = Dir::new(&[
        ("a.toml", TESTKIT_LOAD),
        (
            "b.toml",
            &TESTKIT_LOAD.replace("name = \"tk\"", "name = \"tk-second\""),
        ),
    ]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("PERFSPEC_TESTKIT_SECONDS", "30")
        .args(["run", "--timeout", "500ms"])
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    let specs = res["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0]["timed_out"], true);
    assert!(
        specs[0]["measurements"]["histograms"][0]["count"]
            .as_u64()
            .unwrap()
            > 10
    );
    assert!(specs[1]["error"].as_str().unwrap().contains("--timeout"));
    assert_eq!(specs[1]["slos"][0]["reason"], "not-run");
}

#[test]
fn rss_growth_limit_becomes_a_leak_slo() {
    let spec = TESTKIT_LOAD.replace(
        "url = \"http://127.0.0.1:9\"",
        "command = [\"./app\", \"{port}\"]",
    ) + "[monitor]\nrss_growth_limit = \"64MiB\"\n";
    let d = Dir::new(&[("a.toml", &spec)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .args(["run", "--dry-run"])
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("target.rss_growth <= 67108864B (default)"),
        "{}",
        text(&out.stdout)
    );
    // a url target cannot be sampled: the limit is a validation error
    let spec = TESTKIT_LOAD.to_string() + "[monitor]\nrss_growth_limit = \"64MiB\"\n";
    let d = Dir::new(&[("a.toml", &spec)]);
    let out = run(bin()
        .env("PERFSPEC_TESTKIT", "1")
        .arg("validate")
        .arg(d.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("rss_growth_limit"),
        "{}",
        text(&out.stderr)
    );
}

//! The goose load backend end to end: the real CLI against the demo shop on loopback (ports
//! picked by the OS). Tests named `timing_*` / `sigint_*` measure time: nextest runs them in
//! the `serial` group, and under `cargo test` they take a lock so they never overlap.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use perfspec::engine::metrics::{Labels, Measurements, Selection, labels};

use crate::cli::{Dir, bin, results, root};

/// Serializes the timing-sensitive tests under `cargo test` (nextest runs them one at a time).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const BIN: &str = env!("CARGO_BIN_EXE_perfspec");

/// A demo shop the test started itself (killed on drop).
struct Shop {
    child: Child,
    url: String,
}

impl Shop {
    fn start(args: &[&str]) -> Shop {
        let mut child = Command::new(BIN)
            .args(["demo", "serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the demo shop starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split("listening on ")
            .nth(1)
            .expect("an announcement line")
            .trim()
            .to_string();
        Shop { child, url }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        signal(self.pid(), SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started
    unsafe { kill(pid, sig) };
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_spec(dir: &Dir) -> Output {
    bin()
        .arg("run")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.join("out"))
        .stdin(Stdio::null())
        .output()
        .expect("perfspec runs")
}

fn measurements(spec: &serde_json::Value) -> Measurements {
    serde_json::from_value(spec["measurements"].clone()).expect("measurements")
}

/// `q`-quantile of `metric` over every label set matching `sel`, in seconds.
fn quantile(m: &Measurements, metric: &str, sel: &Labels, q: f64) -> f64 {
    match m.select(metric, sel, false) {
        Selection::Histogram(h, scale) => h.value_at_quantile(q) as f64 * scale,
        other => panic!("no histogram {metric}: {other:?}"),
    }
}

fn value(m: &Measurements, metric: &str, sel: &Labels) -> f64 {
    match m.select(
        metric,
        sel,
        matches!(metric, "requests" | "errors" | "late" | "arrivals"),
    ) {
        Selection::Value(v) => v,
        other => panic!("no value {metric}{sel:?}: {other:?}"),
    }
}

fn slo<'a>(spec: &'a serde_json::Value, starts: &str) -> &'a serde_json::Value {
    spec["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expr"].as_str().unwrap_or("").starts_with(starts))
        .unwrap_or_else(|| {
            panic!("no SLO `{starts}` in {}", spec["slos"]);
        })
}

fn open_spec(target: &str, stages: &str, extra: &str) -> String {
    format!(
        "kind = \"load\"\nname = \"t\"\nslo = [\"error_rate < 1%\"]\n[target]\n{target}\n[load]\nstages = {stages}\n{extra}\n\
         [[journey]]\nname = \"item\"\nsteps = [{{ request = \"GET /products/{{{{ random(1, 50) }}}}\", name = \"item\", expect = {{ status = 200 }} }}]\n"
    )
}

/// A journey keeps its cookies: `/login` sets `session`, and `/cart` and `/checkout` succeed
/// only because later steps send it back (no authorization header anywhere).
#[test]
fn session_cookies_are_carried_between_the_steps_of_a_journey() {
    let shop = Shop::start(&["--latency", "*=0ms"]);
    let spec = format!(
        "kind = \"load\"\nname = \"cookies\"\nslo = [\"error_rate == 0%\"]\n[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nstages = [{{ hold = 2, for = \"1s\" }}]\n\
         [[journey]]\nname = \"buy\"\nsteps = [\n  \
         {{ request = \"POST /login\", json = {{ user = \"u{{{{ iteration }}}}\" }} }},\n  \
         {{ request = \"POST /cart\", json = {{ product = 7 }}, expect = {{ status = 201 }} }},\n  \
         {{ request = \"POST /checkout\", expect = {{ status = 200, json = {{ \"$.items\" = 1 }} }} }},\n]\n",
        shop.url
    );
    let d = Dir::new(&[("cookies.toml", &spec)]);
    let out = run_spec(&d);
    let res = results(&d);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stderr), res);
    let m = measurements(&res["specs"][0]);
    assert!(value(&m, "requests", &labels(&[("step", "POST /checkout")])) >= 3.0);
    assert_eq!(value(&m, "errors", &Labels::new()), 0.0);
}

/// A fixed 20 ms service: p50 of latency (from the intended start) is within [20 ms, 25 ms].
#[test]
fn timing_fixed_delay_p50_is_within_20_to_25ms() {
    let _s = serial();
    let target = format!(
        "command = [\"{BIN}\", \"demo\", \"serve\", \"--port\", \"{{port}}\", \"--fixed-delay\", \"20ms\"]"
    );
    let d = Dir::new(&[(
        "a.toml",
        &open_spec(
            &target,
            "[{ hold = \"50/s\", for = \"4s\", label = \"steady\" }]",
            "",
        ),
    )]);
    let out = run_spec(&d);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res = results(&d);
    let m = measurements(&res["specs"][0]);
    let p50 = quantile(&m, "latency", &Labels::new(), 0.5);
    assert!((0.020..=0.025).contains(&p50), "p50 = {p50}");
    let svc = quantile(&m, "service_time", &Labels::new(), 0.5);
    eprintln!("fixed 20ms: latency p50 {p50:.4}s, service_time p50 {svc:.4}s");
    assert!(
        (0.020..=0.025).contains(&svc) && svc <= p50 + 1e-4,
        "service_time p50 = {svc}"
    );
    assert_eq!(value(&m, "requests", &Labels::new()), 200.0);
    assert_eq!(value(&m, "late", &Labels::new()), 0.0);
    // perfspec started the target: its resources were sampled
    assert!(value(&m, "target.rss", &Labels::new()) > 1e6);
    assert!(value(&m, "target.cpu", &Labels::new()) >= 0.0);
    assert!(value(&m, "throughput", &labels(&[("phase", "steady")])) > 40.0);
}

/// The whole target paused for 1 s during a 10 s, 100/s open run with 4 in flight: latency
/// (from the intended start) sees the pause, service time (from the send) hides it, and the
/// queued arrivals are late — coordinated omission, measured instead of hidden.
#[test]
fn timing_sigstop_pause_shows_in_latency_not_service_time() {
    let _s = serial();
    let shop = Shop::start(&["--fixed-delay", "5ms"]);
    let spec = open_spec(
        &format!("url = \"{}\"", shop.url),
        "[{ hold = \"100/s\", for = \"10s\" }]",
        "max_in_flight = 4",
    );
    let d = Dir::new(&[("a.toml", &spec)]);
    let child = bin()
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    signal(shop.pid(), SIGSTOP);
    std::thread::sleep(Duration::from_secs(1));
    signal(shop.pid(), SIGCONT);
    let out = child.wait_with_output().unwrap();
    let res = results(&d);
    let spec = &res["specs"][0];
    let m = measurements(spec);
    let all = Labels::new();
    let lat = quantile(&m, "latency", &all, 0.99);
    let svc = quantile(&m, "service_time", &all, 0.99);
    let late = value(&m, "late", &all);
    eprintln!("SIGSTOP 1s: latency p99 {lat:.3}s, service_time p99 {svc:.4}s, late {late}");
    assert!(lat >= 0.5, "latency p99 = {lat}");
    assert!(svc < 0.1, "service_time p99 = {svc}");
    assert!(late > 0.0, "late = {late}");
    assert_eq!(
        value(&m, "requests", &all),
        1000.0,
        "arrivals queue, they are never dropped"
    );
    // the default SLO catches the saturated generator
    assert_eq!(slo(spec, "late_ratio")["status"], "fail");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// A target that never answers its readiness path: exit 3, no verdict, and the process
/// perfspec started is gone.
#[test]
fn never_ready_target_exits_3_and_is_killed() {
    let d = Dir::new(&[]);
    let pidfile = d.join("pid");
    let target = format!(
        "command = [\"sh\", \"-c\", \"echo $$ > {}; exec sleep 60\", \"{{port}}\"]\nready_timeout = \"1s\"",
        pidfile.display()
    );
    std::fs::write(
        d.join("a.toml"),
        open_spec(&target, "[{ hold = \"10/s\", for = \"2s\" }]", ""),
    )
    .unwrap();
    let t0 = Instant::now();
    let out = run_spec(&d);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(20));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "error");
    assert!(
        spec["error"]
            .as_str()
            .unwrap()
            .contains("never became ready"),
        "{}",
        spec["error"]
    );
    assert_eq!(spec["measurements"], serde_json::Value::Null);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dead(pid), "the target {pid} outlived perfspec");
}

/// A target perfspec started dies mid-run: errors are measured and judged (exit 1), the
/// death is reported, nothing crashes.
#[test]
fn timing_target_killed_mid_run_is_errors_and_a_verdict() {
    let _s = serial();
    let d = Dir::new(&[]);
    let pidfile = d.join("pid");
    let target = format!(
        "command = [\"sh\", \"-c\", \"echo $$ > {}; exec {BIN} demo serve --port $0 --fixed-delay 5ms\", \"{{port}}\"]",
        pidfile.display()
    );
    std::fs::write(
        d.join("a.toml"),
        open_spec(&target, "[{ hold = \"50/s\", for = \"4s\" }]", ""),
    )
    .unwrap();
    let child = bin()
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(pid, SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "fail");
    assert!(
        spec["error"]
            .as_str()
            .unwrap()
            .contains("exited during the run"),
        "{}",
        spec["error"]
    );
    let m = measurements(spec);
    let errors = value(&m, "errors", &Labels::new());
    let ok = value(&m, "requests", &labels(&[("status", "200")]));
    eprintln!("killed target: {errors} errors, {ok} ok");
    assert!(errors > 50.0 && ok > 20.0, "errors {errors}, ok {ok}");
    assert_eq!(value(&m, "errors", &labels(&[("status", "error")])), errors);
    assert_eq!(slo(spec, "error_rate")["status"], "fail");
    assert!(!m.error_samples.is_empty());
}

/// Ctrl-C in the middle of a load run: goose stops, partial results and reports are written,
/// exit 130, and the embedded shop perfspec started is gone.
#[test]
fn sigint_mid_load_run_writes_partial_results_and_exits_130() {
    let _s = serial();
    let d = Dir::new(&[(
        "a.toml",
        &open_spec(
            "embedded = \"shop\"",
            "[{ hold = \"20/s\", for = \"60s\" }]",
            "",
        ),
    )]);
    let child = bin()
        .arg("run")
        .arg(d.path())
        .arg("--out")
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let shops = children_of(child.id() as i32);
    assert!(
        !shops.is_empty(),
        "the embedded shop runs as a child process"
    );
    signal(child.id() as i32, SIGINT);
    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    let res = results(&d);
    assert_eq!(res["interrupted"], true);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "interrupted");
    let m = measurements(spec);
    let n = value(&m, "requests", &Labels::new());
    eprintln!(
        "SIGINT after 4s: {n} requests kept, stopped in {:?}",
        t0.elapsed()
    );
    assert!(
        (40.0..=120.0).contains(&n),
        "what was measured before Ctrl-C is kept: {n}"
    );
    assert!(
        m.notes.iter().any(|n| n.contains("partial")),
        "{:?}",
        m.notes
    );
    assert!(d.join("out/summary.md").exists());
    for pid in shops {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dead(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(dead(pid), "the shop {pid} outlived perfspec");
    }
}

fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// The example load specs (open TOML and closed YAML) pass against the embedded shop.
#[test]
fn timing_example_load_specs_pass() {
    let _s = serial();
    let d = Dir::new(&[]);
    let out = bin()
        .current_dir(root())
        .args([
            "run",
            "specs/checkout.toml",
            "specs/browse-closed.yaml",
            "--out",
        ])
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res = results(&d);
    let specs = res["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 2);
    for spec in specs {
        assert!(
            spec["status"] == "pass" || spec["status"] == "warn",
            "{}: {}",
            spec["name"],
            spec["slos"]
        );
        let m = measurements(spec);
        assert!(value(&m, "requests", &Labels::new()) > 100.0);
    }
    // the checkout journey logged in with CSV users and used the captured token
    let m = measurements(&specs[0]);
    assert!(
        value(
            &m,
            "requests",
            &labels(&[("journey", "checkout"), ("status", "201")])
        ) > 10.0
    );
}

/// Stress and spike on a shop whose database pool bounds it at ~200 requests/s (2
/// connections × 10 ms): the rate search holds 100/s and breaks at 250/s; after a 1 s spike
/// to 400/s, latency and errors recover and `recovery_time` is measured.
#[test]
fn timing_stress_search_and_spike_recovery_on_a_pool_bound_shop() {
    let _s = serial();
    let shop = Shop::start(&["--pool", "2", "--query-time", "10ms", "--latency", "*=0ms"]);
    let journey = "[[journey]]\nname = \"item\"\nsteps = [{ request = \"GET /products/{{ random(1, 50) }}\" }]\n";
    let stress = format!(
        "kind = \"load\"\nname = \"stress\"\nslo = [{{ expr = \"p95(latency) < 100ms\", severity = \"warn\" }}, {{ expr = \"late_ratio < 1%\", severity = \"warn\" }}, \"max_rate >= 100/s\"]\n\
         [target]\nurl = \"{}\"\n[load]\nstages = [{{ hold = \"10/s\", for = \"1s\" }}]\nmax_in_flight = 300\n\
         stress = {{ from = \"100/s\", step = \"150/s\", every = \"2s\", until = \"700/s\" }}\n{journey}",
        shop.url
    );
    let spike = format!(
        "kind = \"load\"\nname = \"spike\"\nslo = [\"recovery_time < 5s\", {{ expr = \"p95(latency) < 100ms\", phase = \"before\" }}]\n\
         [target]\nurl = \"{}\"\n[load]\nmax_in_flight = 500\nstages = [{{ hold = \"20/s\", for = \"2s\", label = \"before\" }}, \
         {{ hold = \"400/s\", for = \"1s\", label = \"spike\" }}, {{ hold = \"20/s\", for = \"7s\", label = \"after\" }}]\n{journey}",
        shop.url
    );
    let d = Dir::new(&[("stress.toml", &stress), ("spike.toml", &spike)]);
    let out = run_spec(&d);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res = results(&d);
    let by_name = |n: &str| {
        res["specs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    let stress = by_name("stress");
    let m = measurements(&stress);
    eprintln!("stress notes: {:?}", m.notes);
    assert_eq!(value(&m, "max_rate", &Labels::new()), 100.0);
    assert!(
        m.notes.iter().any(|n| n.contains("broke at 250/s")),
        "{:?}",
        m.notes
    );
    // the search stopped at the break: the 400/s step and above never ran
    assert!(matches!(
        m.select("latency", &labels(&[("phase", "stress-550")]), false),
        Selection::Empty
    ));
    let spike = by_name("spike");
    let m = measurements(&spike);
    let r = value(&m, "recovery_time", &Labels::new());
    eprintln!("spike notes: {:?}", m.notes);
    assert!((0.0..5.0).contains(&r), "recovery_time = {r}");
    assert!(
        quantile(&m, "latency", &labels(&[("phase", "spike")]), 0.99) > 0.1,
        "the spike hurt"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A `${env:…}` value used in a request line (path and query), a query table, a header, a
/// JSON body, an expectation and a Redis URL never reaches an output: results.json, the
/// reports, JUnit, GitHub annotations and step summary, stdout and stderr carry the reference
/// (step labels) or `[redacted]`, never the value.
#[test]
fn secret_in_env_never_reaches_outputs() {
    let _s = serial();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("Zq{nanos:x}{}", std::process::id());
    let load = r#"
kind = "load"
name = "secret-load"
slo = ["error_rate < 100%"]
[target]
embedded = "shop"
[load]
stages = [{ hold = "10/s", for = "1500ms" }]
[[journey]]
name = "leaky"
steps = [
  { request = "GET /products?token=${env:PERFSPEC_T_SECRET}", headers = { x-trace = "${env:PERFSPEC_T_SECRET}" }, expect = { status = 200, body_contains = "${env:PERFSPEC_T_SECRET}" } },
  { request = "GET /products/${env:PERFSPEC_T_SECRET}", query = { q = "${env:PERFSPEC_T_SECRET}" } },
  { request = "POST /login", json = { user = "${env:PERFSPEC_T_SECRET}", password = "x" }, expect = { status = 299 } },
]
"#;
    let cache = r#"
kind: cache
name: secret-cache
topology:
  l2: { backend: redis, url: "redis://:${env:PERFSPEC_T_SECRET}@127.0.0.1:1" }
workload: { keys: 100, ops: 100 }
"#;
    let d = Dir::new(&[("a-load.toml", load), ("b-cache.yaml", cache)]);
    let summary = d.join("out/step-summary.md");
    let out = bin()
        .current_dir(d.path())
        .args(["run", ".", "--out", "out"])
        .env("PERFSPEC_T_SECRET", &secret)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        matches!(out.status.code(), Some(1..=3)),
        "the run fails (expectations, no redis): {stderr}"
    );
    let res = results(&d);
    assert_eq!(res["specs"].as_array().unwrap().len(), 2, "{res}");
    // the load spec ran and its failures were recorded; the cache spec could not connect
    let m = measurements(&res["specs"][0]);
    assert!(value(&m, "requests", &Labels::new()) >= 5.0);
    assert!(!m.error_samples.is_empty());
    assert_eq!(res["specs"][1]["status"], "error", "{}", res["specs"][1]);
    let files = files_under(&d.join("out"));
    for want in ["results.json", "report.html", "summary.md", "junit.xml"] {
        assert!(files.iter().any(|f| f.ends_with(want)), "{want}: {files:?}");
    }
    assert!(files.contains(&summary), "{files:?}");
    for f in &files {
        let body = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert!(
            !body.contains(&secret),
            "the secret leaks into {}",
            f.display()
        );
    }
    assert!(
        !stdout.contains(&secret),
        "the secret leaks to stdout: {stdout}"
    );
    assert!(
        !stderr.contains(&secret),
        "the secret leaks to stderr: {stderr}"
    );
    // the step label is the request line as written, with the reference
    let written = "GET /products?token=${env:PERFSPEC_T_SECRET}";
    assert!(
        value(&m, "requests", &labels(&[("step", written)])) >= 1.0,
        "{:?}",
        m.error_samples
    );
    assert!(
        m.error_samples
            .iter()
            .any(|e| e.labels.get("step").map(String::as_str) == Some(written)),
        "{:?}",
        m.error_samples
    );
    let results_json = std::fs::read_to_string(d.join("out/results.json")).unwrap();
    assert!(results_json.contains("/products/${env:PERFSPEC_T_SECRET}"));
    assert!(
        results_json.contains("[redacted]"),
        "error messages carry [redacted]"
    );
}

/// Issue 18: from "I have a URL" to a passing run: `init --url` writes a starter spec that
/// validates and runs (`--smoke`), and a second `init` does not overwrite it.
#[test]
fn init_writes_a_starter_spec_that_runs_against_a_url() {
    let _g = serial();
    let shop = Shop::start(&[]);
    let d = Dir::new(&[]);
    let spec = d.join("first.toml");
    let init = |extra: &[&str]| {
        bin()
            .args(["init", "--url", &shop.url, "--out"])
            .arg(&spec)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("perfspec runs")
    };
    let out = init(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&spec).unwrap();
    assert!(
        written.contains(&format!("url = \"{}\"", shop.url)),
        "{written}"
    );
    // a second init refuses to overwrite, `--force` replaces
    std::fs::write(&spec, "# mine\n").unwrap();
    let out = init(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not overwritten"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), "# mine\n");
    let out = init(&["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // it runs, and measured real requests against the shop
    let out = bin()
        .args(["run", "--smoke", "--out"])
        .arg(d.join("out"))
        .arg(&spec)
        .stdin(Stdio::null())
        .output()
        .expect("perfspec runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let res = results_in(&d.join("out"));
    let spec = &res["specs"][0];
    assert_eq!(spec["name"], "first-test");
    let m = measurements(spec);
    assert!(value(&m, "requests", &Labels::new()) >= 1.0);
    assert_eq!(value(&m, "errors", &Labels::new()), 0.0);
}

fn results_in(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

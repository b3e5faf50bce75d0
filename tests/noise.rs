//! Repeats and noise-aware baseline comparisons end to end: the real CLI against the demo
//! shop (`perfspec demo serve --fixed-delay`, started by the spec on a port the OS picks),
//! every repeat a fresh shop. Named `timing_*`: nextest runs them in the `serial` group.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Dir, bin};

const BIN: &str = env!("CARGO_BIN_EXE_perfspec");

/// A spec of 5 repeats of 1.5 s at 40/s against a shop that answers after `delay`. The
/// lateness limit is loose: on a busy 2-core machine the generator falls behind now and
/// then, and this test is about the comparison, not about lateness.
fn spec(delay: &str) -> String {
    format!(
        "kind = \"load\"\nname = \"noise\"\nrepeat = 5\n\
         slo = [{{ expr = \"p50(latency) <= baseline * 1.10\", confidence = \"95%\" }}, \"error_rate < 1%\", \"late_ratio < 20%\"]\n\
         [target]\ncommand = [\"{BIN}\", \"demo\", \"serve\", \"--port\", \"{{port}}\", \"--fixed-delay\", \"{delay}\"]\n\
         [load]\nstages = [{{ hold = \"40/s\", for = \"1500ms\" }}]\n\
         [[journey]]\nname = \"item\"\nsteps = [{{ request = \"GET /products/1\", expect = {{ status = 200 }} }}]\n"
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Two runs of the same shop pass "within noise"; the shop 30% slower fails "regressed".
#[test]
fn timing_repeats_judge_a_30_percent_slowdown_as_regressed_and_the_same_shop_as_noise() {
    let d = Dir::new(&[
        ("a/noise.toml", &spec("20ms")),
        ("b/noise.toml", &spec("26ms")),
    ]);
    // the baseline: 5 repeats, per-repeat values kept, no baseline yet (a warning)
    let (o, base) = run_dir(&d, "a", "base", None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = &base["specs"][0];
    assert_eq!(s["repeats"].as_array().unwrap().len(), 5, "{s}");
    let slo = &s["slos"][0];
    assert_eq!(slo["reason"], "no-baseline");
    assert_eq!(slo["repeats"].as_array().unwrap().len(), 5);
    assert!(stderr(&o).contains("repeat 5/5"), "{}", stderr(&o));
    let summary = std::fs::read_to_string(d.join("base/summary.md")).unwrap();
    assert!(summary.contains("over 5 repeats"), "{summary}");

    // the same shop again: within noise
    let (o, res) = run_dir(&d, "a", "same", Some("base"));
    let slo = &res["specs"][0]["slos"][0];
    assert_eq!(o.status.code(), Some(0), "{}\n{slo}", stderr(&o));
    assert!(
        slo["message"].as_str().unwrap().contains("within noise"),
        "{slo}"
    );
    assert_eq!(slo["comparison"]["regressed"], false);

    // 26 ms instead of 20 ms: regressed
    let (o, res) = run_dir(&d, "b", "slow", Some("base"));
    let slo = &res["specs"][0]["slos"][0];
    assert_eq!(o.status.code(), Some(1), "{}\n{slo}", stderr(&o));
    let msg = slo["message"].as_str().unwrap();
    assert!(msg.contains("regressed: +"), "{slo}");
    let change = slo["comparison"]["change"].as_f64().unwrap();
    assert!((15.0..=45.0).contains(&change), "{slo}");
    eprintln!("same shop: within noise; 26ms vs 20ms: {msg}");
}

/// `perfspec run DIR/spec_dir --out DIR/out [--baseline DIR/baseline/results.json]`.
fn run_dir(
    d: &Dir,
    spec_dir: &str,
    out: &str,
    baseline: Option<&str>,
) -> (Output, serde_json::Value) {
    let mut c = bin();
    c.arg("run")
        .arg(d.join(spec_dir))
        .arg("--out")
        .arg(d.join(out))
        .arg("--timeout")
        .arg("90s")
        .stdin(Stdio::null());
    if let Some(b) = baseline {
        c.arg("--baseline").arg(d.join(b).join("results.json"));
    }
    let o = c.output().expect("perfspec runs");
    let res = serde_json::from_slice(
        &std::fs::read(d.join(out).join("results.json")).expect("results.json"),
    )
    .unwrap();
    (o, res)
}

/// Ctrl-C during repeat 2 of 4 keeps repeat 1 and what repeat 2 measured, judged; exit 130.
#[test]
fn sigint_during_a_repeat_keeps_the_repeats_so_far() {
    let d = Dir::new(&[(
        "a/noise.toml",
        &spec("5ms")
            .replace("repeat = 5", "repeat = 4")
            .replace("for = \"1500ms\"", "for = \"3s\""),
    )]);
    let mut child = bin()
        .arg("run")
        .arg(d.join("a"))
        .arg("--out")
        .arg(d.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for "repeat 2/4" on stderr (bounded), then stop in the middle of repeat 2
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push_str(&l);
            log.push('\n');
            if l.contains("repeat 2/4") {
                break;
            }
        }
    }
    assert!(log.contains("repeat 2/4"), "{log}");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on a pid this test started
    unsafe { kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/results.json")).unwrap()).unwrap();
    let s = &res["specs"][0];
    assert_eq!(s["status"], "interrupted");
    let repeats = s["repeats"].as_array().unwrap();
    assert_eq!(repeats.len(), 2, "{log}");
    assert_eq!(repeats[0]["index"], 1);
    assert_eq!(s["slos"][1]["repeats"].as_array().unwrap().len(), 2);
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

pub(crate) const TESTKIT: &str = r#"
kind = "load"
name = "tk"
backend = "testkit"
repeat = 3
slo = [{ expr = "p50(latency) <= baseline * 1.05", confidence = "95%" }]
[target]
url = "http://127.0.0.1:9"
[load]
stages = [{ hold = "10/s", for = "300ms" }]
[[journey]]
name = "j"
steps = [{ request = "GET /" }]
"#;

fn history_run(d: &Dir, out: &str, extra: &[&str]) -> std::process::Child {
    history_run_at(d, out, "0123456789abcdef", extra)
}

/// `perfspec run DIR/a.toml --out DIR/out --history DIR/h.db` on branch `main` at commit
/// `sha`, the testkit backend (stdout and stdin closed, stderr piped).
pub(crate) fn history_run_at(d: &Dir, out: &str, sha: &str, extra: &[&str]) -> std::process::Child {
    bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env("GITHUB_REF_NAME", "main")
        .env("GITHUB_SHA", sha)
        .env_remove("GITHUB_HEAD_REF")
        .env_remove("PERFSPEC_HISTORY")
        .arg("run")
        .arg(d.join("a.toml"))
        .arg("--out")
        .arg(d.join(out))
        .arg("--history")
        .arg(d.join("h.db"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two runs appending to one history at the same time both land; the history then serves
/// as the baseline (`history:main~2`) and prints as a table.
#[test]
fn two_concurrent_runs_append_to_one_history_which_then_serves_as_baseline() {
    let d = Dir::new(&[("a.toml", TESTKIT)]);
    let (a, b) = (history_run(&d, "o1", &[]), history_run(&d, "o2", &[]));
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(!stderr(&o).contains("history"), "{}", stderr(&o));
    }
    let table = bin()
        .args(["history", "--history"])
        .arg(d.join("h.db"))
        .args(["--spec", "tk"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("p50(latency)"))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("main") && r.contains("0123456789")),
        "{text}"
    );
    let o = history_run(&d, "o3", &["--baseline", "history:main~2"])
        .wait_with_output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let res: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("o3/results.json")).unwrap()).unwrap();
    let slo = &res["specs"][0]["slos"][0];
    assert_eq!(slo["comparison"]["baseline_n"], 6, "{slo}");
    assert!(
        slo["message"].as_str().unwrap().contains("within noise"),
        "{slo}"
    );
    // a history baseline needs the database
    let o = bin()
        .env("PERFSPEC_TESTKIT", "1")
        .env_remove("PERFSPEC_HISTORY")
        .arg("run")
        .arg(d.join("a.toml"))
        .args(["--baseline", "history:main"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--history"), "{}", stderr(&o));
}

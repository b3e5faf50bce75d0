//! Every process perfspec starts dies with it: after a `kill -9` of perfspec mid-run no
//! redis-server, memcached, nutcracker, nginx, replica or command target is left running (checked by pid). And
//! SIGTERM is a clean stop: results and reports are written, children stopped, exit 143.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Dir, bin, on_path, require_program, require_programs, results};

const EXE: &str = env!("CARGO_BIN_EXE_perfspec");

/// `(parent pid, command name)` of every process, from /proc.
fn processes() -> HashMap<u32, (u32, String)> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        out.insert(pid, (ppid, comm));
    }
    out
}

/// Every descendant of `root` now: `pid → command name`.
fn descendants(root: u32) -> HashMap<u32, String> {
    let all = processes();
    let mut out = HashMap::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, (ppid, comm)) in &all {
            if *ppid == p && out.insert(*pid, comm.clone()).is_none() {
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Whether `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// `perfspec run SPEC --out out` in `d`, in the background.
fn start_run(d: &Dir, spec: &str) -> Child {
    bin()
        .current_dir(d.path())
        .args(["run", spec, "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("perfspec runs")
}

/// Wait (at most 60 s) until `perfspec`'s descendants satisfy `ready`; returns them.
fn wait_for_children(
    perfspec: &mut Child,
    ready: impl Fn(&HashMap<u32, String>) -> bool,
) -> HashMap<u32, String> {
    let t0 = Instant::now();
    loop {
        let d = descendants(perfspec.id());
        if ready(&d) {
            return d;
        }
        if let Ok(Some(status)) = perfspec.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = perfspec.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("perfspec exited ({status}) before its children were seen: {err}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the expected children never appeared: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL perfspec; within 5 s none of `children` may still run.
fn kill_and_check(mut perfspec: Child, children: &HashMap<u32, String>) {
    // let the children settle into their work for a moment
    std::thread::sleep(Duration::from_millis(500));
    let children: HashMap<u32, String> = children
        .iter()
        .filter(|(p, _)| alive(**p))
        .map(|(p, c)| (*p, c.clone()))
        .collect();
    perfspec.kill().unwrap();
    perfspec.wait().unwrap();
    let t0 = Instant::now();
    let mut left: BTreeSet<(u32, String)> = children.into_iter().collect();
    while !left.is_empty() && t0.elapsed() < Duration::from_secs(5) {
        left.retain(|(p, _)| alive(*p));
        std::thread::sleep(Duration::from_millis(50));
    }
    if !left.is_empty() {
        for (p, _) in &left {
            // SAFETY: kill(2) of a leftover the test found: it must not outlive the test
            unsafe { libc::kill(*p as i32, libc::SIGKILL) };
        }
        panic!("still running 5s after `kill -9` of perfspec: {left:?}");
    }
}

#[test]
fn sigkill_leaves_no_redis_server() {
    if !require_program(
        "redis-server",
        on_path("redis-server", &[]),
        "install the Debian package redis-server",
    ) {
        return;
    }
    let spec = r#"
kind: cache
name: redis-l2
topology:
  l1: { backend: moka, capacity: 100 }
  l2: { backend: redis, spawn: true }
origin: { latency: 1ms }
workload: { keys: 1000, distribution: { zipf: 0.99 }, duration: 60s, concurrency: 2 }
slo: [ hit_ratio >= 0.1 ]
"#;
    let d = Dir::new(&[("c.yaml", spec)]);
    let mut perfspec = start_run(&d, "c.yaml");
    let children = wait_for_children(&mut perfspec, |d| {
        d.values().any(|c| c.starts_with("redis-server"))
    });
    kill_and_check(perfspec, &children);
}

#[test]
fn sigkill_leaves_no_memcached_or_nutcracker() {
    if !require_programs(&[("memcached", "memcached"), ("nutcracker", "nutcracker")]) {
        return;
    }
    let spec = r#"
kind: cache
name: memcached-l2
topology: { l2: { backend: memcached, spawn: true, nodes: 2, proxy: twemproxy } }
workload: { keys: 1000, duration: 60s, concurrency: 2 }
slo: [ hit_ratio >= 0.1 ]
"#;
    let d = Dir::new(&[("c.yaml", spec)]);
    let mut perfspec = start_run(&d, "c.yaml");
    let children = wait_for_children(&mut perfspec, |d| {
        d.values().filter(|c| c.starts_with("memcached")).count() == 2
            && d.values().any(|c| c.starts_with("nutcracker"))
    });
    kill_and_check(perfspec, &children);
}

#[test]
fn sigkill_leaves_no_nginx_or_replicas() {
    if !require_program(
        "nginx",
        on_path("nginx", &[]),
        "install the Debian package nginx-light",
    ) {
        return;
    }
    let spec = r#"
kind = "scaling"
name = "behind-nginx"
slo = ["error_rate < 50%"]
[service]
embedded = "shop"
[balancer]
kind = "nginx"
[sweep]
replicas = [2]
[load]
mode = "concurrency"
concurrency = 2
step_duration = "60s"
"#;
    let d = Dir::new(&[("s.toml", spec)]);
    let mut perfspec = start_run(&d, "s.toml");
    // the database tier, two replicas and nginx
    let children = wait_for_children(&mut perfspec, |d| {
        d.values().filter(|c| c.as_str() == "perfspec").count() >= 3
            && d.values().any(|c| c.starts_with("nginx"))
    });
    kill_and_check(perfspec, &children);
}

/// A load spec of `secs` against perfspec's own demo shop started as a `command` target
/// (which starts a database child of its own).
fn command_target_spec(secs: u32) -> String {
    format!(
        r#"
kind = "load"
name = "command-target"
slo = ["error_rate < 1%"]
[target]
command = ["{EXE}", "demo", "serve", "--port", "{{port}}"]
ready = "/health"
[load]
stages = [{{ hold = "20/s", for = "{secs}s" }}]
[[journey]]
name = "browse"
steps = [{{ request = "GET /products" }}]
"#
    )
}

#[test]
fn sigkill_leaves_no_command_target() {
    let d = Dir::new(&[("l.toml", &command_target_spec(60))]);
    let mut perfspec = start_run(&d, "l.toml");
    // the shop and its database tier
    let children = wait_for_children(&mut perfspec, |d| {
        d.values().filter(|c| c.as_str() == "perfspec").count() >= 2
    });
    kill_and_check(perfspec, &children);
}

#[test]
fn sigterm_writes_results_and_reports() {
    let d = Dir::new(&[("l.toml", &command_target_spec(20))]);
    let mut perfspec = start_run(&d, "l.toml");
    let children = wait_for_children(&mut perfspec, |d| {
        d.values().filter(|c| c.as_str() == "perfspec").count() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on our own child's pid
    unsafe { libc::kill(perfspec.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    let out = perfspec.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("terminated (SIGTERM)"), "{err}");
    // the summary line says it once (it said "1 interrupted, interrupted")
    let summary = err
        .lines()
        .find(|l| l.contains("spec(s) —"))
        .unwrap_or_else(|| panic!("no summary line: {err}"));
    assert_eq!(summary.matches("interrupted").count(), 1, "{summary}");
    let res = results(&d);
    assert_eq!(res["interrupted"], true);
    assert_eq!(res["exit_code"], 143);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "interrupted", "{spec}");
    let requests: f64 = spec["measurements"]["scalars"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing measured: {spec}"))
        .iter()
        .filter(|s| s["metric"] == "requests")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert!(requests > 0.0, "{spec}");
    for f in ["report.html", "summary.md", "junit.xml"] {
        let text = std::fs::read_to_string(d.join("out").join(f)).unwrap_or_default();
        assert!(text.contains("command-target"), "{f}: {text}");
    }
    let junit = std::fs::read_to_string(d.join("out/junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml") && junit.trim_end().ends_with("</testsuites>"));
    let left: Vec<_> = children.iter().filter(|(p, _)| alive(**p)).collect();
    assert!(left.is_empty(), "children left running: {left:?}");
}

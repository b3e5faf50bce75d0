//! `run --shard K/N` and `perfspec merge`: three generators share one load exactly.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::{Dir, bin, root, run_cli, stderr};

/// A loopback HTTP/1.1 server (port 0) that answers every request `200 ok` and records
/// each request line's path with its arrival time. Keep-alive connections are served by a
/// thread each; everything stops when the test process ends.
struct Recording {
    url: String,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Recording {
    fn start() -> Recording {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Recording { url, seen }
    }

    fn paths(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: std::net::TcpStream, log: &Mutex<Vec<(Instant, String)>>) {
    let mut out = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        // the headers, up to the blank line (GET requests carry no body)
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
        }
        log.lock().unwrap().push((Instant::now(), path));
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

fn spec(url: &str) -> String {
    format!(
        r#"
kind = "load"
name = "sharded"
slo = ["p95(latency) < 500ms", "error_rate < 1%", "requests >= 299"]
[target]
url = "{url}"
[load]
stages = [{{ hold = "100/s", for = "3s" }}]
[[journey]]
name = "browse"
steps = [{{ request = "GET /item/{{{{ iteration }}}}" }}]
"#
    )
}

fn results_of(d: &Dir, dir: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(d.join(dir).join("results.json")).unwrap()).unwrap()
}

fn scalar_total(spec: &serde_json::Value, metric: &str) -> f64 {
    spec["measurements"]["scalars"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == metric)
        .filter(|s| s["labels"].as_object().is_none_or(|l| l.len() == 4))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[test]
fn three_shards_at_once_merge_into_the_unsharded_load() {
    let server = Recording::start();
    let d = Dir::new(&[("load.toml", &spec(&server.url))]);
    let start = format!("+{}s", 3);
    let children: Vec<_> = (1..=3)
        .map(|k| {
            bin()
                .current_dir(d.path())
                .args(["run", "load.toml", "--quiet", "--shard", &format!("{k}/3")])
                .args(["--start-at", &start, "--out", &format!("s{k}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        // a shard judges only its share: its SLO verdicts never fail the shard's job
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // every global iteration index exactly once
    let seen = server.paths();
    let mut indices: Vec<u64> = seen
        .iter()
        .map(|(_, p)| p.trim_start_matches("/item/").parse().unwrap())
        .collect();
    indices.sort();
    assert_eq!(
        indices,
        (0..300).collect::<Vec<u64>>(),
        "indices unique and complete"
    );
    // the merged cadence is the unsharded one: one request every ~10 ms, not bursts of 3
    let mut times: Vec<Instant> = seen.iter().map(|(t, _)| *t).collect();
    times.sort();
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    assert!(
        (0.005..0.015).contains(&median),
        "median gap {median}s (bursts of 3 would give ~0)"
    );
    // each shard: a third of the arrivals, recorded as a shard
    for k in 1..=3u32 {
        let r = results_of(&d, &format!("s{k}"));
        assert_eq!(r["shard"]["index"], k);
        assert_eq!(r["shard"]["count"], 3);
        assert!(r["shard"]["planned_start"].is_string());
        assert_eq!(scalar_total(&r["specs"][0], "requests"), 100.0);
    }
    let out = run_cli(&d, &["merge", "s1", "s2", "s3", "--out", "merged"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = results_of(&d, "merged");
    let s = &m["specs"][0];
    assert_eq!(scalar_total(s, "requests"), 300.0);
    let hist_total: u64 = s["measurements"]["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["metric"] == "latency")
        .map(|h| h["count"].as_u64().unwrap())
        .sum();
    let shard_hist: u64 = (1..=3)
        .map(|k| {
            results_of(&d, &format!("s{k}"))["specs"][0]["measurements"]["histograms"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["metric"] == "latency")
                .map(|h| h["count"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(
        hist_total, shard_hist,
        "merged HDR counts are the shards' sums"
    );
    assert_eq!(hist_total, 300);
    assert_eq!(s["status"], "pass", "{}", s["slos"]);
    for f in ["report.html", "junit.xml", "summary.md"] {
        assert!(d.join("merged").join(f).is_file(), "{f}");
    }
    // a missing shard is exit 5, never a pass
    std::fs::remove_dir_all(d.join("s2")).unwrap();
    let out = run_cli(&d, &["merge", "s1", "s3", "--out", "partial"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard 2/3 missing"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("partial/results.json").exists());
    // the same shard twice
    let out = run_cli(&d, &["merge", "s1", "s1", "s3", "--out", "twice"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

#[test]
fn merging_one_unsharded_run_reproduces_its_verdicts() {
    let server = Recording::start();
    let d = Dir::new(&[(
        "load.toml",
        &spec(&server.url).replace("requests >= 299", "requests >= 1000"),
    )]);
    let out = run_cli(&d, &["run", "load.toml", "--quiet", "--out", "one"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run_cli(&d, &["merge", "one", "--out", "merged"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (a, b) = (results_of(&d, "one"), results_of(&d, "merged"));
    let verdicts = |r: &serde_json::Value| -> Vec<(String, String, String)> {
        r["specs"][0]["slos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["expr"].to_string(),
                    s["status"].to_string(),
                    s["observed"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(verdicts(&a), verdicts(&b));
    assert_eq!(a["specs"][0]["status"], b["specs"][0]["status"]);
}

#[test]
fn shards_of_other_spec_versions_or_other_times_do_not_merge() {
    let server = Recording::start();
    let short = spec(&server.url).replace("for = \"3s\"", "for = \"500ms\"");
    let d = Dir::new(&[("load.toml", &short)]);
    for k in 1..=2 {
        let out = run_cli(
            &d,
            &[
                "run",
                "load.toml",
                "--quiet",
                "--shard",
                &format!("{k}/2"),
                "--out",
                &format!("s{k}"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        if k == 1 {
            // the second shard starts after the first ended: no overlap
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let out = run_cli(&d, &["merge", "s1", "s2", "--out", "m"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not run at the same time"),
        "{}",
        stderr(&out)
    );
    // another version of the spec file
    std::fs::write(d.join("load.toml"), short.replace("< 500ms", "< 400ms")).unwrap();
    let out = run_cli(
        &d,
        &[
            "run",
            "load.toml",
            "--quiet",
            "--shard",
            "2/2",
            "--out",
            "s2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_cli(&d, &["merge", "s1", "s2", "--out", "m"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("another version"), "{}", stderr(&out));
}

#[test]
fn shard_options_are_checked() {
    let cache = "kind = \"cache\"\nname = \"c\"\n[topology]\nl1 = { backend = \"moka\", capacity = 100 }\n[workload]\nkeys = 100\nops = 100\n";
    let d = Dir::new(&[("c.toml", cache), ("l.toml", &spec("http://127.0.0.1:9"))]);
    for (args, want) in [
        (vec!["run", "l.toml", "--shard", "4/3"], "does not exist"),
        (vec!["run", "l.toml", "--shard", "x"], "K/N"),
        (
            vec!["run", "l.toml", "--shard", "1/3", "--shards", "3"],
            "--shard auto",
        ),
        (vec!["run", "l.toml", "--shard", "auto"], "--shards N"),
        (
            vec!["run", "c.toml", "--shard", "1/2"],
            "only load specs split",
        ),
        (vec!["run", "l.toml", "--start-at", "soon"], "RFC 3339"),
    ] {
        let out = run_cli(&d, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(want),
            "{args:?}: want `{want}` in {}",
            stderr(&out)
        );
    }
    // `--shard auto` reads the Indexed Job's index
    let out = bin()
        .current_dir(d.path())
        .args([
            "run",
            "l.toml",
            "--dry-run",
            "--shard",
            "auto",
            "--shards",
            "3",
        ])
        .env("JOB_COMPLETION_INDEX", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard 8 of 3 does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_kubernetes_indexed_job_runs_one_shard_per_completion() {
    let text = std::fs::read_to_string(root().join("deploy/k8s/perfspec-job.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let job = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Job"))
        .expect("a Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(n));
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(after("--shard").as_deref(), Some("auto"));
    assert_eq!(after("--shards"), Some(n.to_string()));
    assert!(after("--start-at").is_some(), "{args:?}");
    assert!(
        after("--out").is_some_and(|o| o.contains("{shard}")),
        "{args:?}"
    );
}

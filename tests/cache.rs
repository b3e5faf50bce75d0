//! Cache specs end to end: in-process moka and stretto against the LRU and optimal bounds, a
//! capacity sweep, restarts and warm-up, capability errors, a missing `redis-server`, Ctrl-C,
//! and a real Redis L2 killed mid-run (skipped, with a note, only when `redis-server` is not
//! installed).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{
    Dir, bin, on_path, require_program, require_programs, results, run_cli, scalar, stderr,
};

fn notes(spec: &serde_json::Value) -> Vec<String> {
    spec["measurements"]["notes"]
        .as_array()
        .map_or_else(Vec::new, |n| {
            n.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
}

/// Every metric the backend emitted is in the catalog, with labels the catalog allows.
fn assert_in_catalog(spec: &serde_json::Value) {
    let m = &spec["measurements"];
    for group in ["scalars", "histograms", "series"] {
        for e in m[group].as_array().into_iter().flatten() {
            let metric = e["metric"].as_str().unwrap();
            let def = perfspec::spec::catalog::lookup(perfspec::spec::catalog::Kind::Cache, metric)
                .unwrap_or_else(|| panic!("{metric} is not in the cache catalog"));
            for label in e
                .get("labels")
                .and_then(|l| l.as_object())
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                assert!(
                    perfspec::spec::catalog::allows_label(def, label),
                    "{metric} has label {label} the catalog does not allow"
                );
            }
        }
    }
}

const MOKA_SWEEP: &str = r#"
kind: cache
name: moka-sweep
topology:
  l1: { backend: moka, capacity: 400 }
origin: { latency: 0ms }
workload:
  keys: 4000
  distribution: { zipf: 0.99 }
  ops: 20000
  concurrency: 4
  seed: 3
sweep: { "topology.l1.capacity": [100, 400, 1600] }
slo:
  - hit_ratio >= 0.3
  - hit_ratio{capacity=1600} >= 0.5
  - p99(latency{op=get,tier=l1}) < 50ms
"#;

#[test]
fn moka_capacity_sweep_stays_within_its_bounds() {
    let d = Dir::new(&[("specs/sweep.yaml", MOKA_SWEEP)]);
    let out = run_cli(&d, &["run", "specs", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    let mut last = 0.0;
    for cap in ["100", "400", "1600"] {
        let c = [("capacity", cap)];
        let hit = scalar(spec, "hit_ratio", &c).unwrap();
        let lru = scalar(spec, "lru_hit_ratio", &c).unwrap();
        let opt = scalar(spec, "optimal_hit_ratio", &c).unwrap();
        assert!(
            hit > last,
            "the hit ratio grows with the capacity: {hit} at {cap}"
        );
        assert!(
            lru <= opt && hit <= opt + 0.005,
            "capacity {cap}: hit {hit}, lru {lru}, optimal {opt}"
        );
        // W-TinyLFU beats LRU on a Zipf trace
        assert!(hit > lru - 0.02, "capacity {cap}: hit {hit}, lru {lru}");
        let resident = scalar(
            spec,
            "resident_entries",
            &[("capacity", cap), ("tier", "l1")],
        )
        .unwrap();
        assert!(resident <= cap.parse::<f64>().unwrap(), "{resident}");
        assert_eq!(scalar(spec, "ops", &c), Some(20000.0));
        last = hit;
    }
    // the spec's own capacity is also reported without a label, and says so
    assert_eq!(
        scalar(spec, "hit_ratio", &[]),
        scalar(spec, "hit_ratio", &[("capacity", "400")])
    );
    assert!(
        notes(spec)
            .iter()
            .any(|n| n.contains("spec's own value (400)")),
        "{:?}",
        notes(spec)
    );
    assert!(
        spec["measurements"]["invalid"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    let series = spec["measurements"]["series"].as_array().unwrap();
    assert!(
        series
            .iter()
            .any(|s| s["metric"] == "hit_ratio" && s["labels"]["capacity"] == "1600")
    );
}

#[test]
fn stretto_overshoot_is_reported_and_an_impossible_hit_ratio_is_invalid() {
    let spec = r#"
kind = "cache"
name = "stretto"
slo = [{ expr = "hit_ratio >= 0.1", severity = "warn" }]
[topology]
l1 = { backend = "stretto", capacity = 200 }
[origin]
latency = "0ms"
[workload]
keys = 5000
distribution = { zipf = 0.99 }
ops = 30000
concurrency = 4
seed = 11
"#;
    let d = Dir::new(&[("s.toml", spec)]);
    let out = run_cli(&d, &["run", "s.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    let hit = scalar(spec, "hit_ratio", &[("tier", "l1")]).unwrap();
    let opt = scalar(spec, "optimal_hit_ratio", &[]).unwrap();
    assert!(scalar(spec, "peak_resident_ratio", &[("tier", "l1")]).unwrap() > 0.0);
    // flagged exactly when it beats the optimum
    let invalid = spec["measurements"]["invalid"]
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(
        invalid > 0,
        hit > opt + 0.005,
        "hit {hit}, optimal {opt}, {invalid} invalid"
    );
    if invalid > 0 {
        assert_eq!(spec["slos"][0]["reason"], "invalid-measurement");
    }
}

#[test]
fn a_restart_is_measured_with_its_warmup() {
    let spec = r#"
kind: cache
name: restart
topology:
  instances: 2
  l1: { backend: moka, capacity: 500 }
origin: { latency: 1ms }
workload:
  keys: 5000
  distribution: { zipf: 0.99 }
  mix: { read: 0.9, update: 0.1 }
  ops: 24000
  concurrency: 8
  seed: 5
events: [ { at: 40%, restart: 2 } ]
slo:
  - warmup_time{instance=2} < 30s
  - hit_ratio >= 0.3
"#;
    let d = Dir::new(&[("r.yaml", spec)]);
    let out = run_cli(&d, &["run", "r.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    assert!(scalar(spec, "warmup_time", &[("instance", "2")]).unwrap() > 0.0);
    let n = notes(spec);
    assert!(
        n.iter().any(|n| n.contains("instance 2 restarted")),
        "{n:?}"
    );
    // with writes from another instance and no invalidation, the bound is still exact per
    // instance (its own L1 only sees its own writes): both instances have one
    for i in ["1", "2"] {
        let opt = scalar(spec, "optimal_hit_ratio", &[("instance", i)]).unwrap();
        let hit = scalar(spec, "hit_ratio", &[("tier", "l1"), ("instance", i)]).unwrap();
        assert!(hit <= opt + 0.005, "instance {i}: {hit} > {opt}");
    }
    // without invalidation, instance 1 reads copies instance 2 overwrote
    assert!(scalar(spec, "stale_reads", &[]).unwrap() > 0.0);
}

#[test]
fn ttl_makes_the_bounds_not_applicable_and_says_why() {
    let spec = r#"
kind = "cache"
name = "ttl"
slo = ["hit_ratio >= 0.1"]
[topology]
l1 = { backend = "moka", capacity = 100, ttl = "50ms" }
[origin]
latency = "0ms"
[workload]
keys = 1000
distribution = { zipf = 0.9 }
ops = 5000
seed = 1
"#;
    let d = Dir::new(&[("t.toml", spec)]);
    let out = run_cli(&d, &["run", "t.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert!(scalar(spec, "optimal_hit_ratio", &[]).is_none());
    assert!(
        notes(spec)
            .iter()
            .any(|n| n.contains("not applicable: entries expire")),
        "{:?}",
        notes(spec)
    );
}

#[test]
fn what_the_backend_cannot_run_is_a_validation_error() {
    let caps = r#"
kind: cache
name: caps
topology:
  instances: 2
  l1: { backend: stretto, capacity: 100 }
  l2: { backend: redis, cluster: { masters: 3, spawn: true } }
  invalidation: tracking
origin: { latency: 1ms, pattern: read-through }
workload: { keys: 100, ops: 100 }
sweep: { "workload.keys": [10, 20] }
"#;
    let kill = r#"
kind: cache
name: kill-a-shared-redis
topology: { l2: { backend: redis, url: "redis://127.0.0.1:1" } }
workload: { keys: 100, ops: 100 }
events: [ { at: 50%, kill_redis: true } ]
"#;
    let d = Dir::new(&[("c.yaml", caps), ("k.yaml", kill)]);
    let out = run_cli(&d, &["validate", "c.yaml", "k.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages: Vec<String> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "`tracking` invalidation with a Redis Cluster is not supported yet",
        "read-through needs a loading cache",
        "sweeping `workload.keys` is not supported yet",
        "`kill_redis` kills a Redis perfspec started",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "{want}: {messages:?}"
        );
    }
    // every one of them points at its line
    assert!(
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["line"].as_u64().is_some())
    );
}

#[test]
fn a_missing_redis_server_is_exit_3_naming_the_package() {
    let spec = r#"
kind: cache
name: needs-redis
topology: { l2: { backend: redis, spawn: true } }
workload: { keys: 100, ops: 100 }
slo: [ hit_ratio >= 0.1 ]
"#;
    let d = Dir::new(&[("r.yaml", spec)]);
    let empty = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(d.path())
        .env("PATH", empty.path())
        .args(["run", "r.yaml", "--out", "out"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let res = results(&d);
    assert_eq!(
        res["specs"][0]["error"],
        "redis-server not found: install the Debian package redis-server"
    );
}

#[test]
fn sigint_stops_a_cache_run_promptly_with_partial_results() {
    let spec = r#"
kind: cache
name: long
topology: { l1: { backend: moka, capacity: 100 } }
origin: { latency: 1ms }
workload: { keys: 1000, distribution: { zipf: 0.99 }, duration: 60s, concurrency: 4 }
slo: [ hit_ratio >= 0.1 ]
"#;
    let d = Dir::new(&[("l.yaml", spec)]);
    let child = bin()
        .current_dir(d.path())
        .args(["run", "l.yaml", "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    // SAFETY: kill(2) on our own child's pid
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "interrupted");
    assert!(scalar(spec, "ops", &[]).unwrap() > 100.0);
    assert!(scalar(spec, "hit_ratio", &[]).is_some());
}

fn redis_installed() -> bool {
    require_program(
        "redis-server",
        on_path("redis-server", &[]) && on_path("redis-cli", &[]),
        "apt-get install -y redis-server redis-tools",
    )
}

#[test]
fn two_tier_redis_with_pubsub_survives_a_killed_server() {
    if !redis_installed() {
        return;
    }
    let spec = r#"
kind: cache
name: two-tier
topology:
  instances: 3
  l1: { backend: moka, capacity: 300 }
  l2: { backend: redis, spawn: true }
  invalidation: pubsub
origin: { latency: 1ms }
workload:
  preset: ycsb-b
  keys: 3000
  value_size: 256B
  ops: 15000
  concurrency: 8
  seed: 9
events: [ { at: 30%, kill_redis: true, restore_after: 500ms } ]
slo:
  - hit_ratio >= 0.3
  - error_rate < 50%
"#;
    let d = Dir::new(&[("t.yaml", spec)]);
    let out = run_cli(&d, &["run", "t.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    assert_eq!(scalar(spec, "ops", &[]), Some(15000.0));
    assert!(
        scalar(spec, "errors", &[("tier", "l2")]).unwrap() > 0.0,
        "killing redis is counted"
    );
    assert!(scalar(spec, "hit_ratio", &[("tier", "l2")]).unwrap() > 0.0);
    assert!(
        scalar(spec, "invalidations", &[]).unwrap() > 0.0,
        "writes were broadcast"
    );
    let n = notes(spec);
    assert!(
        n.iter().any(|n| n.contains("redis-server killed"))
            && n.iter().any(|n| n.contains("restarted, empty")),
        "{n:?}"
    );
    assert!(
        spec["measurements"]["error_samples"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
}

#[test]
fn tracking_invalidation_uses_resp3_pushes_and_recovers_from_a_lost_connection() {
    if !redis_installed() {
        return;
    }
    let spec = r#"
kind: cache
name: tracking
topology:
  instances: 2
  l1: { backend: moka, capacity: 300 }
  l2: { backend: redis, spawn: true }
  invalidation: tracking
origin: { latency: 1ms }
workload: { preset: ycsb-a, keys: 2000, ops: 8000, concurrency: 8, seed: 4 }
events: [ { at: 50%, kill_redis: true, restore_after: 300ms } ]
slo: [ hit_ratio >= 0.2 ]
"#;
    let d = Dir::new(&[("t.yaml", spec)]);
    let out = run_cli(&d, &["run", "t.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert!(
        scalar(spec, "invalidations", &[]).unwrap() > 0.0,
        "the server pushed invalidations"
    );
    let n = notes(spec);
    assert!(
        n.iter()
            .any(|n| n.contains("lost its Redis connection: l1 flushed, tracking on again")),
        "{n:?}"
    );
}

/// Pub/sub over a cluster: each instance subscribes on one node, a PUBLISH on any node
/// reaches all of them; against the same seeded workload without invalidation, far fewer
/// reads are stale.
#[test]
fn pubsub_invalidation_works_across_a_redis_cluster() {
    if !redis_installed() {
        return;
    }
    let spec = |inv: &str| {
        format!(
            r#"
kind: cache
name: cluster-{inv}
topology:
  instances: 3
  l1: {{ backend: moka, capacity: 500 }}
  l2: {{ backend: redis, cluster: {{ masters: 3, spawn: true }} }}
  invalidation: {inv}
origin: {{ latency: 1ms }}
workload: {{ preset: ycsb-b, keys: 2000, value_size: 256B, ops: 12000, concurrency: 8, seed: 4 }}
slo: [ error_rate < 1% ]
"#
        )
    };
    let d = Dir::new(&[("p.yaml", &spec("pubsub")), ("n.yaml", &spec("none"))]);
    let out = run_cli(&d, &["run", "p.yaml", "n.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let (pubsub, none) = (&res["specs"][0], &res["specs"][1]);
    assert_eq!(pubsub["name"], "cluster-pubsub");
    assert_in_catalog(pubsub);
    let received = scalar(pubsub, "invalidations", &[]).unwrap_or(0.0);
    assert!(
        received > 100.0,
        "broadcasts reached the instances: {received}"
    );
    let stale_pubsub = scalar(pubsub, "stale_ratio", &[]).unwrap();
    let stale_none = scalar(none, "stale_ratio", &[]).unwrap();
    assert!(
        stale_pubsub < stale_none / 2.0,
        "pubsub {stale_pubsub} vs none {stale_none}"
    );
}

#[test]
fn a_local_three_master_cluster_serves_as_l2() {
    if !redis_installed() {
        return;
    }
    let spec = r#"
kind: cache
name: cluster
topology:
  instances: 2
  l1: { backend: moka, capacity: 200, ttl: 100ms }
  l2: { backend: redis, cluster: { masters: 3, spawn: true } }
  invalidation: ttl
origin: { latency: 1ms }
workload: { preset: ycsb-c, keys: 2000, ops: 6000, concurrency: 8, seed: 2 }
slo: [ hit_ratio >= 0.3, error_rate < 1% ]
"#;
    let d = Dir::new(&[("c.yaml", spec)]);
    let out = run_cli(&d, &["run", "c.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    assert!(scalar(spec, "hit_ratio", &[("tier", "l2")]).unwrap() > 0.0);
    // keys spread over the masters: DBSIZE summed over them holds every key read
    let resident = scalar(spec, "resident_entries", &[("tier", "l2")]).unwrap();
    let origin = scalar(spec, "origin_calls", &[]).unwrap();
    assert!(
        resident > 100.0 && resident <= origin,
        "{resident} resident, {origin} origin calls"
    );
}

fn memcached_installed() -> bool {
    require_programs(&[("memcached", "memcached")])
}

/// The example: 3 memcached nodes under perfspec's ketama ring, node 2 killed half-way.
/// Each node serves about a third, the ejection moves about a third of the key space, and
/// the failed calls are counted. On the same trace modula moves about two thirds.
#[test]
fn a_killed_memcached_node_remaps_a_third_under_ketama_and_most_under_modula() {
    if !memcached_installed() {
        return;
    }
    let example = crate::cli::root().join("specs/services/memcached-ketama.yaml");
    let d = Dir::new(&[]);
    let spec_path = example.to_str().unwrap();
    let out = run_cli(&d, &["run", spec_path, "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_in_catalog(spec);
    for node in ["1", "2", "3"] {
        let share = scalar(spec, "node_share", &[("node", node)]).unwrap();
        assert!((share - 1.0 / 3.0).abs() < 0.2, "node {node}: {share}");
    }
    let remap = scalar(spec, "remap_ratio", &[]).unwrap();
    assert!((remap - 1.0 / 3.0).abs() < 0.1, "ketama remap {remap}");
    let errors = scalar(spec, "node_errors", &[("node", "2")]).unwrap();
    assert!(errors >= 2.0, "the calls to the dead node failed: {errors}");
    assert_eq!(scalar(spec, "node_errors", &[("node", "1")]), Some(0.0));
    assert_eq!(scalar(spec, "node_keys", &[("node", "2")]), None, "dead");
    assert!(scalar(spec, "recovery_time", &[("event", "1")]).is_some());
    let n = notes(spec);
    assert!(
        n.iter().any(|n| n.contains("ejected after 2 failed calls")),
        "{n:?}"
    );

    let d = Dir::new(&[]);
    let set = "topology.l2.distribution=modula";
    let out = run_cli(&d, &["run", spec_path, "--set", set, "--out", "out"]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    let spec = &results(&d)["specs"][0];
    let remap = scalar(spec, "remap_ratio", &[]).unwrap();
    assert!(remap > 0.55, "modula remap {remap}");
}

/// Behind a twemproxy perfspec starts: nutcracker ejects the killed node itself, its
/// configuration is in the run folder, and the surviving nodes hold the keys.
#[test]
fn memcached_behind_twemproxy_survives_a_killed_node() {
    if !require_programs(&[("memcached", "memcached"), ("nutcracker", "nutcracker")]) {
        return;
    }
    let spec = r#"
kind: cache
name: behind-twemproxy
topology:
  l2: { backend: memcached, spawn: true, nodes: 3, proxy: twemproxy }
workload: { keys: 2000, mix: { read: 0.9, update: 0.1 }, ops: 30000, concurrency: 4 }
events: [ { at: 50%, kill_node: 3 } ]
slo: [ hit_ratio >= 0.5 ]
"#;
    let d = Dir::new(&[("p.yaml", spec)]);
    let out = run_cli(&d, &["run", "p.yaml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let spec = &results(&d)["specs"][0];
    assert_in_catalog(spec);
    let conf = std::fs::read_to_string(d.path().join("out/behind-twemproxy/nutcracker.yml"))
        .expect("nutcracker.yml in the run folder");
    assert!(conf.contains("distribution: ketama") && conf.contains("auto_eject_hosts: true"));
    let kept = scalar(spec, "node_keys", &[("node", "1")]).unwrap()
        + scalar(spec, "node_keys", &[("node", "2")]).unwrap();
    assert!(kept > 1500.0, "the survivors hold the key space: {kept}");
    assert!(scalar(spec, "hit_ratio_after", &[("event", "1")]).unwrap() > 0.5);
}

/// What cannot run with memcached is a located error, in TOML as in YAML.
#[test]
fn memcached_mistakes_are_located_errors_in_both_formats() {
    let yaml = r#"
kind: cache
name: mc-yaml
topology:
  instances: 2
  l1: { backend: moka, capacity: 100 }
  l2: { backend: memcached, spawn: true, nodes: 3, distribution: ketamaa }
  invalidation: pubsub
workload: { keys: 100, ops: 100 }
events: [ { at: 50%, kill_node: 4 } ]
"#;
    let toml = r#"
kind = "cache"
name = "mc-toml"
[topology]
instances = 2
invalidation = "tracking"
l1 = { backend = "moka", capacity = 100 }
l2 = { backend = "memcached", spawn = true, nodes = 3 }
[workload]
keys = 100
ops = 100
[[events]]
at = "50%"
kill_node = 0
"#;
    let toml_dist = "kind = \"cache\"\nname = \"d\"\n[topology]\nl2 = { backend = \"memcached\", spawn = true, nodes = 2, distribution = \"crc32\" }\n[workload]\nkeys = 10\nops = 10\n";
    let d = Dir::new(&[("m.yaml", yaml), ("m.toml", toml), ("d.toml", toml_dist)]);
    for (file, wants) in [
        ("m.yaml", &["ketamaa", "there is no memcached node 4"][..]),
        ("m.toml", &["there is no memcached node 0"][..]),
        ("d.toml", &["crc32"][..]),
    ] {
        let out = run_cli(&d, &["validate", file, "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let diags = v["diagnostics"].as_array().unwrap();
        for want in wants {
            let hit = diags
                .iter()
                .find(|d| d["message"].as_str().unwrap().contains(want))
                .unwrap_or_else(|| panic!("{file}: {want}: {diags:?}"));
            assert!(hit["line"].as_u64().is_some(), "{file}: {hit}");
        }
    }
    // pubsub and tracking are Redis features (a capability check, once the spec decodes)
    let fixed = yaml
        .replace("ketamaa", "ketama")
        .replace("kill_node: 4", "kill_node: 2");
    let toml_fixed = toml.replace("kill_node = 0", "kill_node = 1");
    let d = Dir::new(&[("m.yaml", &fixed), ("m.toml", &toml_fixed)]);
    for (file, inv) in [("m.yaml", "pubsub"), ("m.toml", "tracking")] {
        let out = run_cli(&d, &["validate", file, "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let diags = v["diagnostics"].as_array().unwrap();
        let want = format!("`{inv}` invalidation is a Redis feature");
        let hit = diags
            .iter()
            .find(|d| d["message"].as_str().unwrap().contains(&want))
            .unwrap_or_else(|| panic!("{file}: {diags:?}"));
        assert!(hit["line"].as_u64().is_some(), "{file}: {hit}");
    }
}

//! Scaling specs end to end: a USL fit from a CSV (fit-only), "not enough points", bad CSV
//! files, replica sweeps with client balancing, and crash / hang failover (nginx and client).

use std::process::Stdio;

use crate::cli::{Dir, bin, on_path, require_program, results, root, run_cli, scalar, stderr};

/// The published Cisco benchmark shipped with the examples.
fn cisco_csv() -> String {
    std::fs::read_to_string(root().join("specs/data/web-tier.csv")).unwrap()
}

const FIT_TOML: &str = r#"
kind = "scaling"
name = "fit"
measurements = "data/prod.csv"
slo = ["usl.peak_concurrency >= 30", "usl.sigma < 0.05", "usl.kappa < 0.001", "usl.max_throughput > 12000/s", "usl.r_squared >= 0.99"]
"#;

#[test]
fn fit_only_spec_reproduces_the_published_usl_coefficients() {
    let d = Dir::new(&[
        ("specs/fit.toml", FIT_TOML),
        ("specs/data/prod.csv", &cisco_csv()),
    ]);
    let out = run_cli(&d, &["run", "specs", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "pass", "{spec}");
    let close = |metric: &str, expected: f64| {
        let v = scalar(spec, metric, &[]).unwrap_or_else(|| panic!("no {metric}"));
        assert!(
            ((v - expected) / expected).abs() < 0.01,
            "{metric} = {v}, published {expected}"
        );
    };
    close("usl.sigma", 0.02671591);
    close("usl.kappa", 7.690945e-4);
    close("usl.lambda", 995.6486);
    close("usl.max_throughput", 12341.0);
    assert_eq!(scalar(spec, "usl.peak_concurrency", &[]), Some(35.0));
    assert!(scalar(spec, "usl.r_squared", &[]).unwrap() > 0.99);
    let scalars = spec["measurements"]["scalars"].as_array().unwrap();
    let at_8 = scalars
        .iter()
        .find(|s| s["metric"] == "throughput" && s["labels"]["concurrency"] == "8")
        .unwrap();
    assert_eq!(at_8["value"], 6531.08);
    let series: Vec<&str> = spec["measurements"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    assert_eq!(series, ["usl.fit", "usl.ideal"]);
}

#[test]
fn five_points_are_not_enough_and_usl_slos_fail_as_no_data() {
    let five: String = cisco_csv()
        .lines()
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let d = Dir::new(&[("fit.toml", FIT_TOML), ("data/prod.csv", &five)]);
    let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(spec["status"], "fail");
    for slo in spec["slos"].as_array().unwrap() {
        assert_eq!(
            (&slo["status"], &slo["reason"]),
            (&"fail".into(), &"no-data".into()),
            "{slo}"
        );
    }
    let notes = spec["measurements"]["notes"].to_string();
    assert!(
        notes.contains("not enough points for a USL fit: 5 distinct concurrency levels"),
        "{notes}"
    );
    // the measured points are still reported
    assert!(
        spec["measurements"]["scalars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metric"] == "throughput")
    );
}

#[test]
fn a_missing_measurements_file_is_a_located_validation_error() {
    let yaml =
        "kind: scaling\nname: fit\nmeasurements: data/nope.csv\nslo: [\"usl.sigma < 0.1\"]\n";
    let d = Dir::new(&[("fit.yaml", yaml)]);
    let out = run_cli(&d, &["validate", "--format", "json", "fit.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diag = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "backend::missing-file")
        .expect("a missing-file diagnostic");
    assert_eq!(
        (diag["line"].as_u64(), diag["column"].as_u64()),
        (Some(3), Some(15)),
        "{diag}"
    );
    assert!(
        diag["message"].as_str().unwrap().contains("data/nope.csv"),
        "{diag}"
    );
}

/// R's `usl` package and published data sets call the load column `load` or `N` (and the
/// throughput `X`): a fit-only spec reads them as it reads `concurrency,throughput`.
#[test]
fn usl_csv_column_names_load_n_and_x_are_accepted() {
    let cisco = cisco_csv();
    let rows = cisco.split_once('\n').unwrap().1;
    for header in ["load,throughput", "N,X"] {
        let d = Dir::new(&[
            ("fit.toml", FIT_TOML),
            ("data/prod.csv", &format!("{header}\n{rows}")),
        ]);
        let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
        assert_eq!(out.status.code(), Some(0), "{header}: {}", stderr(&out));
        let spec = &results(&d)["specs"][0];
        assert_eq!(
            scalar(spec, "usl.peak_concurrency", &[]),
            Some(35.0),
            "{header}"
        );
    }
    // names outside the usual ones are given with `columns`
    let named = format!("{FIT_TOML}columns = {{ load = \"vus\", throughput = \"req_per_s\" }}\n");
    let d = Dir::new(&[
        ("fit.toml", &named),
        ("data/prod.csv", &format!("vus,req_per_s\n{rows}")),
    ]);
    let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A CSV without a usable load column fails `validate` (exit 2, not exit 3 at run time),
/// located at `measurements` (or at the `columns` entry naming it), listing the columns found.
#[test]
fn usl_csv_missing_column_is_a_located_validation_error() {
    let yaml =
        "kind: scaling\nname: fit\nmeasurements: data/prod.csv\nslo: [\"usl.sigma < 0.1\"]\n";
    let d = Dir::new(&[
        ("fit.yaml", yaml),
        ("data/prod.csv", "procs,ops_per_s\n1,955.16\n"),
    ]);
    let diag = |d: &Dir, file: &str| {
        let out = run_cli(d, &["validate", "--format", "json", file]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == "backend::measurements")
            .cloned()
            .expect("a measurements diagnostic")
    };
    let got = diag(&d, "fit.yaml");
    assert_eq!(
        (got["line"].as_u64(), got["column"].as_u64()),
        (Some(3), Some(15)),
        "{got}"
    );
    let message = got["message"].as_str().unwrap();
    assert!(
        message.contains("no load column") && message.contains("the header has: procs, ops_per_s"),
        "{got}"
    );
    // a named column that is not there points at its name
    let named = format!("{FIT_TOML}columns = {{ load = \"procs\", throughput = \"rate\" }}\n");
    let d = Dir::new(&[
        ("fit.toml", &named),
        ("data/prod.csv", "procs,ops_per_s\n1,955.16\n"),
    ]);
    let got = diag(&d, "fit.toml");
    assert_eq!(got["line"].as_u64(), Some(6), "{got}");
    assert!(
        got["message"]
            .as_str()
            .unwrap()
            .contains("missing column `rate` (the header has: procs, ops_per_s)"),
        "{got}"
    );
}

#[test]
fn a_malformed_csv_row_is_a_backend_error_with_its_line() {
    let d = Dir::new(&[
        ("fit.toml", FIT_TOML),
        (
            "data/prod.csv",
            "concurrency,throughput\n1,955.16\n2,fast\n",
        ),
    ]);
    let out = run_cli(&d, &["run", "fit.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let res = results(&d);
    let error = res["specs"][0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "read measurements `data/prod.csv`: line 3: throughput `fast` is not a finite number ≥ 0 (operations per second)"
    );
}

/// The perfspec binary as a user's `command` (TOML string, escaped).
fn perfspec_exe() -> String {
    env!("CARGO_BIN_EXE_perfspec")
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// A load spec whose journeys a sweep reuses: a GET and a login → cart → checkout journey
/// with a CSV feeder, a captured token and expectations.
const PROFILE_TOML: &str = r#"
kind = "load"
name = "shop-journeys"
slo = ["error_rate < 1%"]
[target]
embedded = "shop"
[load]
model = "closed"
stages = [{ hold = 2, for = "2s" }]
[data.users]
csv = "users.csv"
[[journey]]
name = "browse"
weight = 1
steps = [{ request = "GET /products/{{ random(1, 50) }}", expect = { status = 200 } }]
[[journey]]
name = "checkout"
weight = 1
steps = [
  { request = "POST /login", json = { user = "{{ users.name }}" }, capture = { token = "$.token" } },
  { request = "POST /cart", headers = { authorization = "Bearer {{ token }}" }, json = { product = 3 }, expect = { status = 201 } },
  { request = "POST /checkout", headers = { authorization = "Bearer {{ token }}" }, expect = { status = 200, json = { "$.status" = "ok" } } },
]
"#;

#[test]
fn timing_command_replicas_run_the_journeys_of_a_load_profile() {
    // the user's command is perfspec's own demo shop, started as any other program would be
    let toml = format!(
        r#"
kind = "scaling"
name = "command-sweep"
slo = ["throughput{{replicas=1}} > 20/s", "error_rate < 1%"]
[service]
command = ["{exe}", "demo", "serve", "--port", "{{port}}", "--workers", "{{threads}}", "--latency", "*=5ms"]
ready = "/health"
threads = 1
[balancer]
kind = "client"
[sweep]
replicas = [1, 2]
cpus = [1, 1]
[load]
profile = "profile.toml"
mode = "concurrency"
concurrency = 2
step_duration = "2s"
"#,
        exe = perfspec_exe()
    );
    let d = Dir::new(&[
        ("sweep.toml", &toml),
        ("profile.toml", PROFILE_TOML),
        ("users.csv", "name\nada\nbob\ncyd\n"),
    ]);
    let out = run_cli(&d, &["run", "sweep.toml", "--out", "out"]);
    let res = results(&d);
    let spec = &res["specs"][0];
    assert_eq!(out.status.code(), Some(0), "{}\n{spec}", stderr(&out));
    let x1 = scalar(spec, "throughput", &[("replicas", "1")]).unwrap_or_else(|| panic!("{spec}"));
    let x2 = scalar(spec, "throughput", &[("replicas", "2")]).unwrap();
    // 2 users per replica, 5ms per request: far from any limit, so two replicas do more
    assert!(x1 > 20.0 && x2 > x1 * 1.3, "{x1} {x2}");
    assert!(
        spec["measurements"]["error_samples"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{spec}"
    );
}

#[test]
fn failing_journey_expectations_are_errors_with_samples() {
    let profile = PROFILE_TOML.replace("expect = { status = 201 }", "expect = { status = 299 }");
    let toml = r#"
kind = "scaling"
name = "bad-expectation"
slo = ["error_rate < 1%"]
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1]
[load]
profile = "profile.toml"
mode = "concurrency"
concurrency = 2
step_duration = "1s"
"#;
    let d = Dir::new(&[
        ("sweep.toml", toml),
        ("profile.toml", &profile),
        ("users.csv", "name\nada\n"),
    ]);
    let out = run_cli(&d, &["run", "sweep.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    let samples = spec["measurements"]["error_samples"].to_string();
    assert!(
        samples.contains("POST /cart: expected status 299, got 201"),
        "{samples}"
    );
    assert!(samples.contains("\"replicas\":\"1\""), "{samples}");
}

/// Run `toml` (with an extra environment variable); it must end in exit 3. Returns the
/// spec's error.
fn cannot_start(toml: &str, env: Option<(&str, &str)>) -> String {
    let d = Dir::new(&[("sweep.toml", toml)]);
    let mut cmd = bin();
    cmd.current_dir(d.path())
        .args(["run", "sweep.toml", "--out", "out"])
        .stdin(Stdio::null());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    results(&d)["specs"][0]["error"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_unique_data_source_that_runs_out_ends_the_step_and_the_sweep() {
    let profile = PROFILE_TOML.replace(
        "[data.users]\ncsv = \"users.csv\"",
        "[data.users]\ncsv = \"users.csv\"\nmode = \"unique\"",
    );
    assert_ne!(profile, PROFILE_TOML);
    let toml = r#"
kind = "scaling"
name = "runs-out"
slo = ["error_rate < 1%"]
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1, 2]
[load]
profile = "profile.toml"
mode = "concurrency"
concurrency = 2
step_duration = "10s"
"#;
    let d = Dir::new(&[
        ("sweep.toml", toml),
        ("profile.toml", &profile),
        ("users.csv", "name\nada\nbob\ncyd\n"),
    ]);
    let t0 = std::time::Instant::now();
    let out = run_cli(&d, &["run", "sweep.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // three checkout journeys use up the rows long before the 10 s step is over
    assert!(t0.elapsed().as_secs_f64() < 9.0, "{:?}", t0.elapsed());
    let spec = results(&d)["specs"][0].clone();
    let notes = spec["measurements"]["notes"].to_string();
    assert!(notes.contains("ran out of rows after"), "{notes}");
    assert!(notes.contains("later steps were not run"), "{notes}");
    assert!(scalar(&spec, "throughput", &[("replicas", "1")]).unwrap() > 0.0);
    assert_eq!(scalar(&spec, "throughput", &[("replicas", "2")]), None);
}

#[test]
fn a_command_replica_that_never_gets_ready_cannot_start() {
    let toml = r#"
kind = "scaling"
name = "never-ready"
[service]
command = ["sh", "-c", "echo 'listen {port}: permission denied' >&2; exit 7"]
[balancer]
kind = "client"
[sweep]
replicas = [1, 2]
[load]
mode = "concurrency"
concurrency = 1
step_duration = "1s"
"#;
    let error = cannot_start(toml, None);
    assert!(error.contains("replica 1 of 1 did not start"), "{error}");
    assert!(error.contains("permission denied"), "{error}");
}

#[test]
fn a_missing_nginx_is_exit_3_naming_the_package() {
    let toml = r#"
kind = "scaling"
name = "no-nginx"
[service]
embedded = "shop"
[balancer]
kind = "nginx"
[sweep]
replicas = [1, 2]
[load]
mode = "concurrency"
concurrency = 1
step_duration = "1s"
"#;
    let error = cannot_start(toml, Some(("PERFSPEC_NGINX", "no-such-nginx")));
    assert!(error.contains("nginx not found"), "{error}");
    assert!(error.contains("nginx-light"), "{error}");
}

#[test]
fn sweep_validation_points_at_the_offending_keys() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "command = [\"./app\", \"--listen\", \"8080\"]",
            "mode = \"concurrency\"\nconcurrency = 1",
            "the command needs a `{port}` placeholder",
        ),
        (
            "embedded = \"shop\"",
            "mode = \"concurrency\"\nconcurrency = 1\nprofile = \"p.toml\"\npath = \"/x\"",
            "`path` and `profile` exclude each other",
        ),
        (
            "embedded = \"shop\"",
            "mode = \"concurrency\"\nconcurrency = 1\nprofile = \"missing.toml\"",
            "profile `missing.toml` does not exist",
        ),
        (
            "embedded = \"shop\"",
            "mode = \"concurrency\"\nconcurrency = 1\nprofile = \"fit.toml\"",
            "the profile is a scaling spec",
        ),
        (
            "embedded = \"shop\"",
            "mode = \"concurrency\"\nconcurrency = 1\npath = \"products\"",
            "`path` is a path on the replicas, starting with `/`",
        ),
    ];
    for (service, load, want) in cases {
        let toml = format!(
            "kind = \"scaling\"\nname = \"v\"\n[service]\n{service}\n[balancer]\nkind = \"client\"\n[sweep]\nreplicas = [1, 2]\n[load]\n{load}\n"
        );
        let d = Dir::new(&[
            ("sweep.toml", &toml),
            ("fit.toml", FIT_TOML),
            ("data/prod.csv", &cisco_csv()),
        ]);
        let out = run_cli(&d, &["validate", "sweep.toml"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{want}\n{err}");
        assert!(err.contains("sweep.toml:"), "{err}");
    }
    // a profile with a broken journey: the diagnostic points into the profile file
    let broken = PROFILE_TOML.replace("{{ token }}", "{{ tokn }}");
    let d = Dir::new(&[
        (
            "sweep.toml",
            "kind = \"scaling\"\nname = \"v\"\n[service]\nembedded = \"shop\"\n[balancer]\nkind = \"client\"\n[sweep]\nreplicas = [1]\n[load]\nmode = \"concurrency\"\nconcurrency = 1\nprofile = \"profile.toml\"\n",
        ),
        ("profile.toml", &broken),
        ("users.csv", "name\nada\n"),
    ]);
    let out = run_cli(&d, &["validate", "sweep.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("profile.toml:"), "{err}");
    assert!(err.contains("tokn"), "{err}");
}

#[test]
fn faults_after_the_step_or_twice_on_a_step_are_validation_errors() {
    let toml = r#"
kind = "scaling"
name = "faults"
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1, 2]
[load]
mode = "concurrency"
concurrency = 1
step_duration = "5s"
[[fault]]
step = 2
at = "6s"
action = "kill"
replica = 1
[[fault]]
step = 2
at = "1s"
action = "hang"
replica = 2
"#;
    let d = Dir::new(&[("faults.toml", toml)]);
    let out = run_cli(&d, &["validate", "faults.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("faults.toml:16:6: the fault is due 6s into a step that lasts 5s"),
        "{err}"
    );
    assert!(
        err.contains("faults.toml:20:8: step 2 already has a fault"),
        "{err}"
    );
}

#[test]
fn cpus_beyond_the_machine_are_a_validation_error() {
    let toml = r#"
kind = "scaling"
name = "cpus"
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
threads = [1, 2]
cpus = [1, 4096]
[load]
mode = "concurrency"
concurrency = 1
"#;
    let d = Dir::new(&[("sweep.toml", toml)]);
    let out = run_cli(&d, &["validate", "sweep.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`cpus` asks for 4096 CPU(s) per replica"),
        "{err}"
    );
}

fn series_names(spec: &serde_json::Value) -> Vec<String> {
    spec["measurements"]["series"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["metric"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn nginx_present() -> bool {
    on_path(
        "nginx",
        &["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"],
    )
}

#[test]
fn timing_client_balanced_sweep_reports_each_step_and_not_enough_points() {
    let toml = r#"
kind = "scaling"
name = "small-sweep"
slo = ["throughput{replicas=1} > 10/s", "usl.peak_concurrency >= 2"]
[service]
embedded = "shop"
[balancer]
kind = "client"
method = "least_conn"
[sweep]
replicas = [1, 2, 3]
[load]
mode = "concurrency"
concurrency = 2
step_duration = "2s"
"#;
    let d = Dir::new(&[("sweep.toml", toml)]);
    let out = run_cli(&d, &["run", "sweep.toml", "--out", "out"]);
    // three points: the usl SLO fails as no-data
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    let x: Vec<f64> = ["1", "2", "3"]
        .iter()
        .map(|n| scalar(spec, "throughput", &[("replicas", n)]).unwrap_or_else(|| panic!("{spec}")))
        .collect();
    assert!(x[0] > 10.0, "{x:?}");
    // the shared database is far from saturated at 6 users: more replicas, more throughput
    assert!(x[2] > x[0] * 1.5, "{x:?}");
    assert_eq!(scalar(spec, "speedup", &[("replicas", "1")]), Some(1.0));
    assert!(scalar(spec, "efficiency", &[("replicas", "3")]).is_some());
    let notes = spec["measurements"]["notes"].to_string();
    assert!(
        notes.contains("not enough points for a USL fit: 3 distinct"),
        "{notes}"
    );
    let usl = spec["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expr"] == "usl.peak_concurrency >= 2")
        .unwrap();
    assert_eq!(usl["reason"], "no-data", "{usl}");
}

/// A 2-replica step of 6 s with one fault 1 s in, restored `restore` later. `nginx`: behind
/// nginx with retries off and a passive check of one failure for 1 s; else client-balanced.
fn failover_spec(nginx: bool, action: &str, replica: u32, users: u32, restore: &str) -> String {
    let balancer = if nginx {
        "kind = \"nginx\"\nmethod = \"round_robin\"\nretries = false\nmax_fails = 1\nfail_timeout = \"1s\""
    } else {
        "kind = \"client\""
    };
    format!(
        r#"
kind = "scaling"
name = "failover"
slo = ["failover.errors >= 1"]
[service]
embedded = "shop"
[balancer]
{balancer}
[sweep]
replicas = [2]
[load]
mode = "concurrency"
concurrency = {users}
latency_slo = "p95(latency) < 500ms"
step_duration = "6s"
[[fault]]
step = 2
at = "1s"
action = "{action}"
replica = {replica}
restore_after = "{restore}"
"#
    )
}

/// Run a failover spec; check that the fault cost errors (but not most requests) and that
/// recovery was measured and short. Returns the spec's result.
fn run_failover(toml: &str) -> serde_json::Value {
    let d = Dir::new(&[("failover.toml", toml)]);
    let out = run_cli(&d, &["run", "failover.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let spec = results(&d)["specs"][0].clone();
    let errors = scalar(&spec, "failover.errors", &[]).unwrap_or_else(|| panic!("{spec}"));
    assert!(errors >= 1.0, "the fault caused no error: {spec}");
    let rate = scalar(&spec, "failover.error_rate", &[]).unwrap();
    assert!(rate > 0.0 && rate < 0.5, "{rate}");
    let recovery = scalar(&spec, "failover.recovery_time", &[]).unwrap_or_else(|| panic!("{spec}"));
    assert!((0.0..5.0).contains(&recovery), "{recovery}");
    spec
}

fn skip_without_nginx(test: &str) -> bool {
    !require_program(
        "nginx",
        nginx_present(),
        &format!("the {test} test needs the Debian package nginx-light"),
    )
}

#[test]
fn timing_crash_failover_through_nginx_counts_errors_and_recovers() {
    if skip_without_nginx("nginx crash") {
        return;
    }
    // retries off, so the crash shows up as errors before nginx marks the replica down
    let spec = run_failover(&failover_spec(true, "kill", 1, 4, "1s"));
    assert!(scalar(&spec, "throughput", &[("replicas", "2")]).unwrap() > 10.0);
    let names = series_names(&spec);
    assert!(names.contains(&"failover.errors".to_string()), "{names:?}");
    assert!(names.contains(&"failover.p95".to_string()), "{names:?}");
}

#[test]
fn timing_hang_failover_through_nginx_counts_timeouts_and_recovers() {
    if skip_without_nginx("nginx hang") {
        return;
    }
    // retries off: requests on the stopped replica end as nginx's 504 after its read timeout
    let spec = run_failover(&failover_spec(true, "hang", 2, 2, "1500ms"));
    let samples = spec["measurements"]["error_samples"].to_string();
    assert!(samples.contains("status 504"), "{samples}");
}

#[test]
fn timing_hang_failover_with_client_balancing_times_out_then_recovers() {
    // requests in flight on the stopped replica time out (1s) and are not retried
    let spec = run_failover(&failover_spec(false, "hang", 2, 2, "1500ms"));
    let samples = spec["measurements"]["error_samples"].to_string();
    assert!(samples.contains("timed out"), "{samples}");
}

#[test]
fn timing_max_rate_mode_searches_the_highest_rate_within_the_latency_slo() {
    let toml = r#"
kind = "scaling"
name = "rate-search"
slo = ["throughput{replicas=1} > 40/s"]
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1]
[load]
mode = "max_rate"
latency_slo = "p95(latency) < 300ms"
max_rate = "200/s"
step_duration = "3s"
"#;
    let d = Dir::new(&[("rate.toml", toml)]);
    let out = run_cli(&d, &["run", "rate.toml", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let res = results(&d);
    let spec = &res["specs"][0];
    let notes = spec["measurements"]["notes"].to_string();
    // rungs of 25/s up to 200/s, one second each; the shop holds all of them
    assert!(notes.contains("replicas=1: 25/s offered"), "{notes}");
    assert!(notes.contains("held"), "{notes}");
    let x = scalar(spec, "throughput", &[("replicas", "1")]).unwrap();
    assert!(x > 40.0 && x < 260.0, "{x}");
}

/// A one-replica rate search (rungs of 100/s up to 800/s, one second each) against the demo
/// shop started as a command with extra `demo serve` options, judged by `slos` (TOML lines
/// of `[load]`). Returns the exit code, the spec's result and its notes.
fn rate_search(shop_args: &str, slos: &str) -> (Option<i32>, serde_json::Value, String) {
    let toml = format!(
        r#"
kind = "scaling"
name = "rate-search"
[service]
command = ["{exe}", "demo", "serve", "--port", "{{port}}", {shop_args}]
[balancer]
kind = "client"
[sweep]
replicas = [1]
[load]
path = "/products"
mode = "max_rate"
max_rate = "800/s"
step_duration = "3s"
{slos}
"#,
        exe = perfspec_exe()
    );
    let d = Dir::new(&[("rate.toml", &toml)]);
    let out = run_cli(&d, &["run", "rate.toml", "--out", "out"]);
    let spec = results(&d)["specs"][0].clone();
    let notes = spec["measurements"]["notes"].to_string();
    eprintln!("{}\n{notes}", stderr(&out));
    (out.status.code(), spec, notes)
}

/// The note of the first rung (100/s) of replicas=1.
fn first_rung(notes: &str) -> &str {
    let at = notes
        .find("replicas=1: 100/s offered")
        .unwrap_or_else(|| panic!("no note of the first rung: {notes}"));
    let rest = &notes[at..];
    &rest[..rest.find("\",").unwrap_or(rest.len())]
}

#[test]
fn rate_search_judges_p99_as_written() {
    // 3 of every 100 product lists take 300ms, the others 2ms: p95 is fast, p99 is not
    let shop = r#""--latency", "*=2ms", "--slow", "products=3%:300ms""#;
    let (_, spec, notes) = rate_search(shop, r#"latency_slo = "p95(latency) < 100ms""#);
    let rung = first_rung(&notes);
    assert!(rung.contains(": held ("), "p95 holds at 100/s: {rung}");
    assert!(
        scalar(&spec, "throughput", &[("replicas", "1")]).is_some(),
        "{spec}"
    );

    // the same target judged at p99, as written: the first rung already breaks
    let (_, spec, notes) = rate_search(shop, r#"latency_slo = "p99(latency) < 100ms""#);
    let rung = first_rung(&notes);
    assert!(rung.contains(": broke ("), "p99 breaks at 100/s: {rung}");
    assert!(rung.contains("p99(latency) = 30"), "{rung}");
    assert!(
        notes.contains("not even the lowest rate held the step SLOs"),
        "{notes}"
    );
    assert!(
        scalar(&spec, "throughput", &[("replicas", "1")]).is_none(),
        "{spec}"
    );
}

#[test]
fn rung_holds_with_error_rate_under_spec_limit() {
    // exactly 3 of every 100 product lists fail with 500
    let shop = r#""--latency", "*=2ms", "--error-rate", "products=3%""#;
    let (code, spec, notes) = rate_search(
        shop,
        r#"step_slo = ["p95(latency) < 500ms", "error_rate < 5%"]"#,
    );
    assert_eq!(code, Some(0), "{notes}");
    let rung = first_rung(&notes);
    assert!(rung.contains(": held ("), "3% errors hold under 5%: {rung}");
    assert!(rung.contains("error_rate = 3"), "{rung}");
    assert!(
        scalar(&spec, "throughput", &[("replicas", "1")]).is_some(),
        "{spec}"
    );

    // without an error_rate step SLO the limit is the default `error_rate < 1%`
    let (_, spec, notes) = rate_search(shop, r#"latency_slo = "p95(latency) < 500ms""#);
    let rung = first_rung(&notes);
    assert!(
        rung.contains(": broke ("),
        "3% errors break the default 1%: {rung}"
    );
    assert!(rung.contains("threshold < 1%"), "{rung}");
    assert!(
        scalar(&spec, "throughput", &[("replicas", "1")]).is_none(),
        "{spec}"
    );
}

#[test]
fn step_slo_typos_and_out_of_range_steps_are_located_validation_errors() {
    let toml = r#"
kind = "scaling"
name = "bad-steps"
[service]
embedded = "shop"
[balancer]
kind = "client"
[sweep]
replicas = [1, 2]
[load]
mode = "max_rate"
step_slo = ["p99(latency) < 200ms", "eror_rate < 5%", "target.cpu < 0.5"]
step_duration = "200s"
[[fault]]
step = 2
at = "150s"
action = "kill"
replica = 1
"#;
    let d = Dir::new(&[("steps.toml", toml)]);
    let out = run_cli(&d, &["validate", "steps.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("steps.toml:12:38: step_slo: unknown metric `eror_rate`"),
        "{err}"
    );
    assert!(err.contains("eror_rate"), "{err}");
    assert!(
        err.contains("step_slo: `target.cpu` is not measured in a scaling step"),
        "{err}"
    );
    assert!(
        err.contains("steps.toml:13:17: `step_duration` is 200s: a step lasts from 1s to 120s"),
        "{err}"
    );
}

//! Replica and thread sweeps of the embedded shop: N `perfspec demo serve` replicas sharing
//! ONE database tier (`perfspec demo db`, a small bounded pool), closed load spread over the
//! replicas by the client (round robin / least connections, with a passive down-mark and
//! one retry on connection errors) or by a real nginx, faults (SIGKILL / SIGSTOP) with
//! restore, and the USL fit of (sweep value, throughput).
//!
//! The shop is made sleep-bound (`--latency *=20ms`) and the database pool small (4
//! connections of 5ms queries), so on a 2-core machine a horizontal sweep measures the
//! architecture: throughput grows with replicas until the shared database saturates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::demo::launch::{self, ChildGuard};
use crate::engine::metrics::{Labels, Measurements, labels};
use crate::engine::search;
use crate::engine::verdict::Slo;
use crate::engine::{BackendError, RunContext};
use crate::spec::catalog::Kind;
use crate::spec::scaling::{BalancerKind, FaultAction, LoadMode, Method, ScalingDoc};

use super::measurements::Point;

/// Database tier of the sweep: pool size and query time.
const DB_POOL: &str = "4";
const DB_QUERY: &str = "5ms";
/// Own latency of every shop endpoint.
const SHOP_LATENCY: &str = "*=20ms";
/// Per-request timeout of the load generator (a hung replica shows up as timeouts).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Most in-flight requests the load generator ever holds.
const MAX_USERS: u32 = 256;
/// Longest step.
const MAX_STEP: f64 = 120.0;
/// Most rungs of a rate search per step.
const MAX_RUNGS: usize = 8;

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One replica: its fixed port (a restarted replica comes back on the same one).
struct Replica {
    port: u16,
    guard: Option<ChildGuard>,
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

fn start_db() -> Result<(ChildGuard, u16), BackendError> {
    let args: Vec<String> = [
        "db",
        "--port",
        "0",
        "--pool",
        DB_POOL,
        "--query-time",
        DB_QUERY,
    ]
    .map(String::from)
    .to_vec();
    let cmd = launch::demo_command(&args)
        .map_err(|e| unavailable(format!("cannot start the demo db: {e}")))?;
    let (guard, url) = launch::spawn_announced(cmd, Duration::from_secs(10))
        .map_err(|e| unavailable(format!("the demo db did not start: {e}")))?;
    let port =
        port_of(&url).ok_or_else(|| unavailable(format!("the demo db announced `{url}`")))?;
    Ok((guard, port))
}

fn start_replica(port: u16, db_port: u16, workers: u32) -> Result<ChildGuard, BackendError> {
    let args: Vec<String> = vec![
        "serve".into(),
        "--port".into(),
        port.to_string(),
        "--db-port".into(),
        db_port.to_string(),
        "--workers".into(),
        workers.to_string(),
        "--latency".into(),
        SHOP_LATENCY.into(),
    ];
    let cmd = launch::demo_command(&args)
        .map_err(|e| unavailable(format!("cannot start a shop replica: {e}")))?;
    let (guard, _) = launch::spawn_announced(cmd, Duration::from_secs(10))
        .map_err(|e| unavailable(format!("a shop replica did not start: {e}")))?;
    Ok(guard)
}

async fn wait_healthy(
    client: &reqwest::Client,
    url: &str,
    cx: &RunContext,
) -> Result<(), BackendError> {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(unavailable(format!(
                "{url}/health did not answer 2xx within 10s"
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = cx.cancel.cancelled() => return Err(unavailable("interrupted while starting replicas")),
        }
    }
}

/// Per-second counters of one step (relative to the step's start).
#[derive(Default, Clone)]
struct Second {
    ok: u64,
    errors: u64,
    latencies: Vec<f64>,
}

#[derive(Default)]
struct Record {
    seconds: BTreeMap<u64, Second>,
}

impl Record {
    fn add(&mut self, at: f64, latency: Option<f64>) {
        let s = self.seconds.entry(at.max(0.0) as u64).or_default();
        match latency {
            Some(l) => {
                s.ok += 1;
                s.latencies.push(l);
            }
            None => s.errors += 1,
        }
    }
}

fn p95(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64) * 0.95).ceil() as usize;
    Some(v[i.clamp(1, v.len()) - 1])
}

/// Client-side balancer over backends (one backend for nginx).
struct Balancer {
    urls: Vec<String>,
    least_conn: bool,
    retries: bool,
    fail_timeout: f64,
    next: AtomicUsize,
    in_flight: Vec<AtomicU64>,
    /// Down until this many ms after `t0`.
    down_until: Vec<AtomicU64>,
    t0: Instant,
}

impl Balancer {
    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn pick(&self, avoid: Option<usize>) -> usize {
        let n = self.urls.len();
        let now = self.now_ms();
        let up = |i: usize| Some(i) != avoid && self.down_until[i].load(Ordering::Relaxed) <= now;
        if self.least_conn {
            let best = (0..n)
                .filter(|&i| up(i))
                .min_by_key(|&i| (self.in_flight[i].load(Ordering::Relaxed), i));
            if let Some(b) = best {
                return b;
            }
        } else {
            for _ in 0..n {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
                if up(i) {
                    return i;
                }
            }
        }
        self.next.fetch_add(1, Ordering::Relaxed) % n
    }

    async fn request(&self, client: &reqwest::Client) -> bool {
        let attempts = if self.retries && self.urls.len() > 1 {
            2
        } else {
            1
        };
        let mut avoid = None;
        for _ in 0..attempts {
            let i = self.pick(avoid);
            self.in_flight[i].fetch_add(1, Ordering::Relaxed);
            let r = client
                .get(format!("{}/products", self.urls[i]))
                .send()
                .await;
            let outcome = match r {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(_) => None,
                    Err(e) => Some(e.is_timeout()),
                },
                Ok(_) => Some(false),
                Err(e) => Some(e.is_timeout()),
            };
            self.in_flight[i].fetch_sub(1, Ordering::Relaxed);
            let Some(timed_out) = outcome else {
                return true;
            };
            if self.urls.len() > 1 {
                let until = self.now_ms() + (self.fail_timeout * 1000.0) as u64;
                self.down_until[i].store(until, Ordering::Relaxed);
            }
            if timed_out {
                // a timed-out request is not retried (it may have had effects)
                return false;
            }
            avoid = Some(i);
        }
        false
    }
}

/// What one step measured.
struct StepResult {
    ok: u64,
    errors: u64,
    seconds: f64,
    record: Record,
    fault_at: Option<f64>,
}

/// Run closed load (`users` loops) or open load (`rate`/s) for `secs`.
async fn drive(
    balancer: &Arc<Balancer>,
    client: &reqwest::Client,
    users: u32,
    rate: Option<f64>,
    secs: f64,
    cx: &RunContext,
    fault: Option<FaultPlan>,
) -> StepResult {
    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    if let Some(rate) = rate {
        let sem = Arc::new(tokio::sync::Semaphore::new(MAX_USERS as usize));
        let (b, c, r, st, cancel) = (
            balancer.clone(),
            client.clone(),
            record.clone(),
            stop.clone(),
            cx.cancel.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut k = 0u64;
            let mut inner = Vec::new();
            loop {
                let due = k as f64 / rate.max(0.001);
                if due >= secs || st.load(Ordering::Relaxed) || cancel.is_cancelled() {
                    break;
                }
                let wait = due - t0.elapsed().as_secs_f64();
                if wait > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                }
                k += 1;
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    r.lock().unwrap().add(t0.elapsed().as_secs_f64(), None);
                    continue;
                };
                let (b, c, r) = (b.clone(), c.clone(), r.clone());
                inner.push(tokio::spawn(async move {
                    let s = Instant::now();
                    let ok = b.request(&c).await;
                    let at = t0.elapsed().as_secs_f64();
                    r.lock()
                        .unwrap()
                        .add(at, ok.then(|| s.elapsed().as_secs_f64()));
                    drop(permit);
                }));
            }
            for t in inner {
                let _ = t.await;
            }
        }));
    } else {
        for _ in 0..users.clamp(1, MAX_USERS) {
            let (b, c, r, st) = (
                balancer.clone(),
                client.clone(),
                record.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !st.load(Ordering::Relaxed) && t0.elapsed().as_secs_f64() < secs {
                    let s = Instant::now();
                    let ok = b.request(&c).await;
                    let at = t0.elapsed().as_secs_f64();
                    if at <= secs + REQUEST_TIMEOUT.as_secs_f64() {
                        r.lock()
                            .unwrap()
                            .add(at, ok.then(|| s.elapsed().as_secs_f64()));
                    }
                }
            }));
        }
    }
    let fault_task = fault.map(|f| tokio::spawn(f.run(t0)));
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
        () = cx.cancel.cancelled() => {}
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let fault_at = match fault_task {
        Some(t) => t.await.ok().flatten(),
        None => None,
    };
    let seconds = t0.elapsed().as_secs_f64().min(secs).max(1e-3);
    let record = std::mem::take(&mut *record.lock().unwrap());
    let (ok, errors) = record
        .seconds
        .values()
        .fold((0, 0), |(o, e), s| (o + s.ok, e + s.errors));
    StepResult {
        ok,
        errors,
        seconds,
        record,
        fault_at,
    }
}

/// A fault to inject during one step.
struct FaultPlan {
    at: f64,
    action: FaultAction,
    restore_after: Option<f64>,
    replicas: Arc<Mutex<Vec<Replica>>>,
    index: usize,
    db_port: u16,
    workers: u32,
    cancel: tokio_util::sync::CancellationToken,
}

impl FaultPlan {
    /// Returns the fault time (seconds into the step) if the fault was injected.
    async fn run(self, t0: Instant) -> Option<f64> {
        let wait = self.at - t0.elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                () = self.cancel.cancelled() => return None,
            }
        }
        let pid = {
            let r = self.replicas.lock().unwrap();
            r.get(self.index)?.guard.as_ref()?.id()?
        };
        let sig = match self.action {
            FaultAction::Kill => libc::SIGKILL,
            FaultAction::Hang => libc::SIGSTOP,
        };
        let at = t0.elapsed().as_secs_f64();
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
        if let Some(after) = self.restore_after {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(after)) => {}
                () = self.cancel.cancelled() => {}
            }
            self.restore(pid).await;
        }
        Some(at)
    }

    async fn restore(&self, pid: u32) {
        match self.action {
            // SAFETY: as above.
            FaultAction::Hang => unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGCONT);
            },
            FaultAction::Kill => {
                let old = self.replicas.lock().unwrap()[self.index].guard.take();
                drop(old);
                let port = self.replicas.lock().unwrap()[self.index].port;
                let (db, w) = (self.db_port, self.workers);
                if let Ok(Ok(g)) =
                    tokio::task::spawn_blocking(move || start_replica(port, db, w)).await
                {
                    self.replicas.lock().unwrap()[self.index].guard = Some(g);
                }
            }
        }
    }
}

/// Everything one sweep spec reports.
pub async fn run(doc: &ScalingDoc, cx: &RunContext) -> Result<Measurements, BackendError> {
    let sweep = doc.sweep.as_ref().ok_or_else(|| unavailable("no sweep"))?;
    let (label, values, horizontal) = match (&sweep.replicas, &sweep.threads) {
        (Some(r), _) => ("replicas", r.value.clone(), true),
        (None, Some(t)) => ("threads", t.value.clone(), false),
        _ => return Err(unavailable("the sweep needs `replicas` or `threads`")),
    };
    let service = doc
        .service
        .as_ref()
        .ok_or_else(|| unavailable("no service"))?;
    if service.command.is_some() {
        return Err(unavailable(
            "scaling sweeps of a user `command` are not available yet: use `embedded = \"shop\"`",
        ));
    }
    let balancer = doc.balancer.as_ref();
    let nginx_kind = balancer.is_some_and(|b| b.kind == BalancerKind::Nginx);
    let nginx_bin = if nginx_kind && horizontal {
        Some(super::nginx::find().ok_or_else(|| {
            unavailable("nginx not found: install the Debian package nginx-light")
        })?)
    } else {
        None
    };
    let load = doc.load.as_ref().ok_or_else(|| unavailable("no [load]"))?;
    let mode = load.mode.unwrap_or(LoadMode::MaxRate);
    let step_secs = load
        .step_duration
        .map_or(20.0, |d| d.0)
        .clamp(1.0, MAX_STEP);
    let per_unit = load.concurrency.as_ref().map_or(4, |c| c.value);
    let objective = load
        .latency_slo
        .as_ref()
        .and_then(|s| Slo::compile(s, Kind::Load).ok())
        .map(|s| vec![s]);
    let latency_limit = objective
        .as_deref()
        .and_then(search::latency_objective)
        .map(|(_, v)| v);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_USERS as usize)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;

    cx.progress.update(None, "starting the database tier");
    let (_db, db_port) = tokio::task::spawn_blocking(start_db)
        .await
        .map_err(|e| unavailable(e.to_string()))??;

    let mut m = Measurements::default();
    let mut points = Vec::new();
    let mut lat_labels: Vec<(Labels, Vec<f64>)> = Vec::new();
    for &v in &values {
        if cx.cancel.is_cancelled() {
            m.notes.push("interrupted: the sweep stopped early".into());
            break;
        }
        let (n, workers) = if horizontal { (v, 2) } else { (1, v) };
        cx.progress
            .update(None, &format!("{label}={v}: starting {n} replica(s)"));
        let mut reps = Vec::new();
        for _ in 0..n {
            let port = free_port().map_err(|e| unavailable(e.to_string()))?;
            let g = tokio::task::spawn_blocking(move || start_replica(port, db_port, workers))
                .await
                .map_err(|e| unavailable(e.to_string()))??;
            reps.push(Replica {
                port,
                guard: Some(g),
            });
        }
        for r in &reps {
            wait_healthy(&client, &r.url(), cx).await?;
        }
        let urls: Vec<String> = reps.iter().map(Replica::url).collect();
        let replicas = Arc::new(Mutex::new(reps));
        let nginx = match &nginx_bin {
            Some(bin) => {
                let b = balancer.expect("nginx balancer");
                let ng = super::nginx::start(bin, &urls, b).map_err(unavailable)?;
                wait_healthy(&client, &ng.url, cx).await?;
                Some(ng)
            }
            None => None,
        };
        let targets = match &nginx {
            Some(ng) => vec![ng.url.clone()],
            None => urls,
        };
        let bal = Arc::new(Balancer {
            in_flight: targets.iter().map(|_| AtomicU64::new(0)).collect(),
            down_until: targets.iter().map(|_| AtomicU64::new(0)).collect(),
            urls: targets,
            least_conn: balancer.and_then(|b| b.method) == Some(Method::LeastConn),
            retries: balancer.and_then(|b| b.retries).unwrap_or(true),
            fail_timeout: balancer.and_then(|b| b.fail_timeout).map_or(1.0, |d| d.0),
            next: AtomicUsize::new(0),
            t0: Instant::now(),
        });
        let fault = doc.fault.iter().flatten().find(|f| f.step.value == v);
        let plan = |fault: Option<&crate::spec::scaling::Fault>| {
            fault.map(|f| FaultPlan {
                at: f.at.0,
                action: f.action,
                restore_after: f.restore_after.map(|d| d.0),
                replicas: replicas.clone(),
                index: if horizontal {
                    (f.replica.value.max(1) - 1) as usize
                } else {
                    0
                },
                db_port,
                workers,
                cancel: cx.cancel.clone(),
            })
        };
        let users = per_unit.saturating_mul(n).min(MAX_USERS);
        let result = match mode {
            LoadMode::Concurrency => {
                cx.progress.update(
                    None,
                    &format!("{label}={v}: {users} users for {step_secs}s"),
                );
                drive(&bal, &client, users, None, step_secs, cx, plan(fault)).await
            }
            LoadMode::MaxRate => {
                let top = load.max_rate.map_or(2000.0, |r| r.0);
                let rungs = search::staircase(top / MAX_RUNGS as f64, top / MAX_RUNGS as f64, top);
                let rung_secs = (step_secs / 3.0).max(1.0);
                let limit = latency_limit.unwrap_or(f64::INFINITY);
                let mut best: Option<StepResult> = None;
                for &rate in rungs.iter().take(MAX_RUNGS) {
                    if cx.cancel.is_cancelled() {
                        break;
                    }
                    cx.progress
                        .update(None, &format!("{label}={v}: {rate:.0}/s"));
                    let mut r = drive(&bal, &client, 0, Some(rate), rung_secs, cx, None).await;
                    let mut all: Vec<f64> = r
                        .record
                        .seconds
                        .values_mut()
                        .flat_map(|s| s.latencies.drain(..))
                        .collect();
                    let p = p95(&mut all).unwrap_or(f64::INFINITY);
                    let err = r.errors as f64 / (r.ok + r.errors).max(1) as f64;
                    let held = p < limit && err < 0.01;
                    m.notes.push(format!(
                        "{label}={v}: {rate:.0}/s offered: {} ok, {} errors, p95 {:.1}ms: {}",
                        r.ok,
                        r.errors,
                        p * 1000.0,
                        if held { "held" } else { "broke" }
                    ));
                    if !held {
                        // let the backlog of the broken rung drain before anything else runs
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                    best = Some(r);
                }
                // the fault runs for a full step at half the sustained rate: at the limit
                // any disturbance would overload the survivors
                if let Some(f) = plan(fault) {
                    let rate = 0.5
                        * best
                            .as_ref()
                            .map_or(top / MAX_RUNGS as f64, |b| b.ok as f64 / b.seconds);
                    let r = drive(&bal, &client, 0, Some(rate), step_secs, cx, Some(f)).await;
                    failover(&mut m, &r, latency_limit);
                }
                match best {
                    Some(b) => b,
                    None => StepResult {
                        ok: 0,
                        errors: 0,
                        seconds: 1.0,
                        record: Record::default(),
                        fault_at: None,
                    },
                }
            }
        };
        if mode == LoadMode::Concurrency && fault.is_some() {
            failover(&mut m, &result, latency_limit);
        }
        let throughput = result.ok as f64 / result.seconds;
        points.push(Point {
            concurrency: v,
            throughput,
        });
        let mut all: Vec<f64> = result
            .record
            .seconds
            .values()
            .flat_map(|s| s.latencies.iter().copied())
            .collect();
        all.retain(|x| x.is_finite());
        lat_labels.push((labels(&[(label, &v.to_string())]), all));
        m.notes.push(format!(
            "{label}={v}: {:.1} req/s ({} ok, {} errors in {:.1}s)",
            throughput, result.ok, result.errors, result.seconds
        ));
    }
    let mut fit = super::runner::measure_labelled(&points, label);
    for (l, lats) in lat_labels {
        let h = fit.histogram("latency", l, 1e-6);
        for x in lats {
            h.record(x);
        }
    }
    fit.scalars.append(&mut m.scalars);
    fit.series.append(&mut m.series);
    fit.notes.append(&mut m.notes);
    fit.elapsed_s = cx.elapsed();
    Ok(fit)
}

/// failover.* from a step with a fault.
fn failover(m: &mut Measurements, r: &StepResult, latency_limit: Option<f64>) {
    let Some(at) = r.fault_at else {
        m.notes
            .push("the fault was not injected (the step ended first)".into());
        return;
    };
    let from = at.floor() as u64;
    let mut errs = 0;
    let mut total = 0;
    let mut err_series = Vec::new();
    let mut p95_series = Vec::new();
    let mut bad = Vec::new();
    for (&s, sec) in &r.record.seconds {
        let t = s as f64;
        let mut l = sec.latencies.clone();
        let p = p95(&mut l);
        err_series.push((t, sec.errors as f64));
        if let Some(p) = p {
            p95_series.push((t, p));
        }
        if s >= from {
            errs += sec.errors;
            total += sec.errors + sec.ok;
        }
        let rate = sec.errors as f64 / (sec.ok + sec.errors).max(1) as f64;
        let lat_ok = match (latency_limit, p) {
            (Some(lim), Some(p)) => p < lim,
            (Some(_), None) => false,
            (None, _) => true,
        };
        bad.push((t, if lat_ok && rate < 0.01 { 0.0 } else { 1.0 }));
    }
    m.scalar("failover.errors", Labels::new(), errs as f64);
    m.scalar(
        "failover.error_rate",
        Labels::new(),
        errs as f64 / total.max(1) as f64,
    );
    match search::recovery_time(&bad, from as f64, 1.0, |v| v == 0.0) {
        Some(rt) => m.scalar(
            "failover.recovery_time",
            Labels::new(),
            (rt + from as f64 - at).max(0.0),
        ),
        None => m
            .notes
            .push("failover: p95 and the error rate did not recover within the step".into()),
    }
    let x = labels(&[("x", "seconds")]);
    m.push_series("failover.errors", x.clone(), err_series);
    m.push_series("failover.p95", x, p95_series);
    m.notes.push(format!(
        "failover: fault at {at:.1}s into the step, {errs} errors of {total} requests after it"
    ));
}

//! Replica and thread sweeps: N replicas — `perfspec demo serve` sharing ONE database tier
//! (`perfspec demo db`, a small bounded pool), or the user's `command` with `{port}` and
//! `{threads}` — optionally pinned to `cpus` CPUs each; load spread over the replicas by the
//! client (round robin / least connections, with a passive down-mark and one retry on
//! connection errors and 5xx) or by a real nginx; faults (SIGKILL / SIGSTOP) with restore;
//! and the USL fit of (sweep value, throughput).
//!
//! Each iteration of a virtual user is one `GET path`, or one journey of the load spec named
//! by `profile` (picked by weight; every step is a request through the balancer, with the
//! journey's templates, data, captures, expectations and think times). Throughput counts
//! successful requests per second; a request that fails its expectations is an error. A
//! step is recorded and scheduled by the load engine (see [`super::step`]) and its rungs
//! are judged by the evaluator against the step SLOs.
//!
//! The shop is made sleep-bound (`--latency *=20ms`) and the database pool small (4
//! connections of 5ms queries), so on a 2-core machine a horizontal sweep measures the
//! architecture: throughput grows with replicas until the shared database saturates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backends::load::journey::Plan;
use crate::backends::load::recorder::{Key, Recorder, StatusLabel};
use crate::backends::load::schedule::Stages;
use crate::backends::load::target::{self, CommandLaunch, Target};
use crate::demo::launch;
use crate::engine::metrics::{HistogramEntry, Labels, Measurements, Selection, labels};
use crate::engine::search;
use crate::engine::verdict::Slo;
use crate::engine::{BackendError, RunContext};
use crate::process::{self, NotReady, Probe};
use crate::spec::load::Level;
use crate::spec::scaling::{BalancerKind, FaultAction, LoadMode, Method, ScalingDoc};

use super::measurements::Point;
use super::plan::{Axis, SweepPlan};
use super::step::{self, Judgement};

/// Database tier of the sweep: pool size and query time.
const DB_POOL: &str = "4";
const DB_QUERY: &str = "5ms";
/// Own latency of every shop endpoint.
const SHOP_LATENCY: &str = "*=20ms";
/// Per-request timeout of the load generator (a hung replica shows up as timeouts).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Most in-flight requests the load generator ever holds.
pub(super) const MAX_USERS: u32 = 256;
/// Tries to restart a crashed replica on its port.
const RESTART_ATTEMPTS: usize = 3;
/// Most rungs of a rate search per step.
const MAX_RUNGS: usize = 8;

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

/// A running replica process.
enum Proc {
    Shop(process::Child),
    Command(Box<Target>),
}

impl Proc {
    fn pid(&self) -> Option<u32> {
        match self {
            Proc::Shop(g) => Some(g.pid()),
            Proc::Command(t) => t.pid(),
        }
    }
}

/// One replica: its fixed port (a restarted replica comes back on the same one).
struct Replica {
    port: u16,
    proc: Option<Proc>,
}

/// How replicas are started.
#[derive(Clone)]
enum LaunchKind {
    Shop {
        db_port: u16,
    },
    Command {
        argv: Vec<String>,
        env: Option<BTreeMap<String, String>>,
        ready: String,
        ready_timeout: Duration,
    },
}

/// How the replicas of one step are started: threads and CPUs per replica.
#[derive(Clone)]
struct Launcher {
    kind: LaunchKind,
    threads: u32,
    cpus: Option<u32>,
}

impl Launcher {
    /// Start replica `index` (from 0) on `port` (or a free port) and wait until it is ready.
    /// With `cpus`, replica `index` gets its own slice of the CPUs (wrapping around).
    async fn start(
        &self,
        index: usize,
        port: Option<u16>,
        cx: &RunContext,
    ) -> Result<Replica, BackendError> {
        let cpus = match self.cpus {
            Some(n) => Some(process::cpu_slice(n, index).map_err(|e| unavailable(e.to_string()))?),
            None => None,
        };
        match &self.kind {
            LaunchKind::Shop { db_port } => {
                let port = match port {
                    Some(p) => p,
                    None => process::free_port().map_err(|e| unavailable(e.to_string()))?,
                };
                let (db, threads) = (*db_port, self.threads);
                let g = tokio::task::spawn_blocking(move || start_replica(port, db, threads, cpus))
                    .await
                    .map_err(|e| unavailable(e.to_string()))??;
                Ok(Replica {
                    port,
                    proc: Some(Proc::Shop(g)),
                })
            }
            LaunchKind::Command {
                argv,
                env,
                ready,
                ready_timeout,
            } => {
                let launch = CommandLaunch {
                    argv,
                    env: env.as_ref(),
                    ready,
                    ready_timeout: *ready_timeout,
                    vars: vec![("{threads}", self.threads.to_string())],
                    cpus,
                };
                let t = target::start_command(&launch, port, cx).await?;
                let port = port_of(&t.base_url)
                    .ok_or_else(|| unavailable(format!("a replica announced `{}`", t.base_url)))?;
                Ok(Replica {
                    port,
                    proc: Some(Proc::Command(Box::new(t))),
                })
            }
        }
    }
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

fn start_db() -> Result<(process::Child, u16), BackendError> {
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

fn start_replica(
    port: u16,
    db_port: u16,
    workers: u32,
    cpus: Option<Vec<usize>>,
) -> Result<process::Child, BackendError> {
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
    let mut cmd = launch::demo_command(&args)
        .map_err(|e| unavailable(format!("cannot start a shop replica: {e}")))?;
    if let Some(cpus) = &cpus {
        process::pin_cpus(&mut cmd, cpus).map_err(|e| unavailable(e.to_string()))?;
    }
    let (guard, _) = launch::spawn_announced(cmd, Duration::from_secs(10))
        .map_err(|e| unavailable(format!("a shop replica did not start: {e}")))?;
    Ok(guard)
}

async fn wait_healthy(url: &str, path: &str, cx: &RunContext) -> Result<(), BackendError> {
    let probe = join(url, path).map_err(unavailable)?;
    let http = Probe::Http(probe.to_string());
    match process::wait_ready(None, &http, Duration::from_secs(10), &cx.cancel).await {
        Ok(_) => Ok(()),
        Err(NotReady::Cancelled) => Err(unavailable("interrupted while starting replicas")),
        Err(_) => Err(unavailable(format!(
            "{probe} did not answer 2xx within 10s"
        ))),
    }
}

/// Most distinct error messages kept per step.
const MAX_ERROR_KINDS: usize = 20;

/// What a step counts besides its recorder: answers and errors per second of completion
/// (the throughput of the fit counts the answers within the step) and the error messages.
#[derive(Default)]
struct Tally {
    seconds: BTreeMap<u64, (u64, u64)>,
    /// Error messages and how often each happened.
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, at: f64, error: Option<&str>) {
        let s = self.seconds.entry(at.max(0.0) as u64).or_default();
        let Some(message) = error else {
            s.0 += 1;
            return;
        };
        s.1 += 1;
        let kinds = self.errors.len();
        match self.errors.get_mut(message) {
            Some(n) => *n += 1,
            None if kinds < MAX_ERROR_KINDS => {
                self.errors.insert(message.to_string(), 1);
            }
            None => {}
        }
    }
}

/// Status, headers and body of a response.
type Response = (u16, reqwest::header::HeaderMap, Vec<u8>);

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
        // ties (e.g. nothing in flight anywhere) start at a rotating offset, so that light
        // load still spreads over every replica
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        if self.least_conn {
            let best = (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| up(i))
                .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed));
            if let Some(b) = best {
                return b;
            }
        } else {
            for k in 0..n {
                let i = (start + k) % n;
                if up(i) {
                    return i;
                }
            }
        }
        // every other replica is down: anyone but the one to avoid
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != avoid)
            .unwrap_or(start % n)
    }

    fn mark_down(&self, i: usize) {
        if self.urls.len() > 1 {
            let until = self.now_ms() + (self.fail_timeout * 1000.0) as u64;
            self.down_until[i].store(until, Ordering::Relaxed);
        }
    }

    /// Send one request built by `make` for a base URL, like nginx with passive checks and
    /// `proxy_next_upstream error timeout http_502 http_503`: a refused connection, a
    /// timeout or a 5xx marks the replica down for `fail_timeout`; with retries, a request
    /// that never reached a replica (connection error) is sent once more to another one, and
    /// so is an idempotent request answered 502/503. Timeouts and other answers are final:
    /// the request may have had effects.
    async fn send(
        &self,
        idempotent: bool,
        make: impl Fn(&str) -> Result<reqwest::RequestBuilder, String>,
    ) -> Result<Response, (StatusLabel, String)> {
        let attempts = if self.retries && self.urls.len() > 1 {
            2
        } else {
            1
        };
        let mut avoid = None;
        let mut last = (StatusLabel::Error, String::new());
        for attempt in 0..attempts {
            let final_try = attempt + 1 == attempts;
            let i = self.pick(avoid);
            let rb = make(&self.urls[i]).map_err(|e| (StatusLabel::Error, e))?;
            let outcome = {
                let _busy = InFlight::new(&self.in_flight[i]);
                match rb.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let headers = resp.headers().clone();
                        resp.bytes()
                            .await
                            .map(|body| (status, headers, body.to_vec()))
                    }
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok(r) => {
                    if r.0 >= 500 {
                        self.mark_down(i);
                    }
                    if final_try || !(idempotent && matches!(r.0, 502 | 503)) {
                        return Ok(r);
                    }
                    last = (StatusLabel::Code(r.0), format!("status {}", r.0));
                }
                Err(e) if e.is_builder() => {
                    return Err((StatusLabel::Error, target::error_chain(&e)));
                }
                Err(e) => {
                    self.mark_down(i);
                    let status = if e.is_timeout() {
                        StatusLabel::Timeout
                    } else {
                        StatusLabel::Error
                    };
                    let msg = (status, target::error_chain(&e));
                    if final_try || !e.is_connect() {
                        return Err(msg);
                    }
                    last = msg;
                }
            }
            avoid = Some(i);
        }
        Err(last)
    }
}

/// Counts a request in flight on one replica for as long as it lives (also when the
/// request's future is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn new(c: &'a AtomicU64) -> InFlight<'a> {
        c.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one iteration of a virtual user sends.
enum Work {
    /// One `GET path`.
    Get(String),
    /// One journey of the `profile` load spec.
    Journeys(Arc<Plan>),
}

impl Work {
    /// Journey and step names, as the recorder labels them.
    fn names(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Work::Get(path) => vec![("get".into(), vec![format!("GET {path}")])],
            Work::Journeys(plan) => plan
                .journeys
                .iter()
                .map(|j| {
                    (
                        j.name.clone(),
                        j.steps.iter().map(|s| s.label.clone()).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// Methods a balancer may send twice (RFC 9110 §9.2.2).
fn idempotent(m: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ]
    .contains(m)
}

/// Join a journey's rendered path (or absolute URL) to a replica's base URL.
fn join(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path.to_string()
    } else if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    };
    reqwest::Url::parse(&url).map_err(|e| format!("invalid url: {e}"))
}

/// Everything the virtual users of one step share.
struct Driver {
    balancer: Arc<Balancer>,
    client: reqwest::Client,
    work: Arc<Work>,
    /// The load engine's recorder: latency from the intended time, service time, arrivals.
    recorder: Mutex<Recorder>,
    /// The step's schedule: one stage (phase) per second.
    stages: Stages,
    tally: Mutex<Tally>,
    t0: Instant,
    /// Journey iterations started over the whole sweep (`{{ iteration }}` stays unique).
    iterations: Arc<AtomicU64>,
    /// Set at the end of the step: no new work, think times cut short.
    stop: CancellationToken,
    /// The `unique` data source that ran out, if one did; cancels `ran_out`.
    exhausted: Mutex<Option<String>>,
    ran_out: CancellationToken,
}

impl Driver {
    /// One request of `journey`'s `step` finished now: `due` is when it was meant to start
    /// (`latency` counts from there), `sent` when it was sent (`None`: it never was).
    fn record(
        &self,
        (journey, step, phase): (usize, usize, usize),
        status: StatusLabel,
        due: Instant,
        sent: Option<Instant>,
        error: Option<String>,
    ) {
        let end = Instant::now();
        let times = sent.map(|s| {
            (
                end.saturating_duration_since(due).as_secs_f64(),
                end.saturating_duration_since(s).as_secs_f64(),
            )
        });
        let at = end.saturating_duration_since(self.t0).as_secs_f64();
        let key = Key {
            journey,
            step,
            status,
            phase,
        };
        self.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .request(key, times, error.as_deref(), at);
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(at, error.as_deref());
    }

    fn done(&self) -> bool {
        self.stop.is_cancelled() || self.ran_out.is_cancelled()
    }

    /// One iteration, meant to start at `due`, of phase (second) `phase`: a `GET` or one
    /// journey. As in a load spec, the first request's latency counts from `due`, a later
    /// step's from when it was due (the end of the previous one plus think time). `pace`
    /// (closed users) sleeps the think time after the last step too. Returns early when the
    /// step stops.
    async fn iterate(&self, due: Instant, phase: usize, pace: bool) {
        let plan = match &*self.work {
            Work::Get(path) => {
                let sent = Instant::now();
                let r = self
                    .balancer
                    .send(true, |base| Ok(self.client.get(join(base, path)?)))
                    .await;
                let (status, error) = match r {
                    Ok((code, _, _)) if code < 400 => (StatusLabel::Code(code), None),
                    Ok((code, _, _)) => (
                        StatusLabel::Code(code),
                        Some(format!("GET {path}: status {code}")),
                    ),
                    Err((status, e)) => (status, Some(format!("GET {path}: {e}"))),
                };
                return self.record((0, 0, phase), status, due, Some(sent), error);
            }
            Work::Journeys(plan) => plan,
        };
        let k = self.iterations.fetch_add(1, Ordering::Relaxed);
        let journey = plan.pick();
        let mut it = match plan.start(journey, k) {
            Ok(it) => it,
            Err(e) => {
                let mut x = self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
                x.get_or_insert(e.0);
                self.ran_out.cancel();
                return;
            }
        };
        let steps = &plan.journeys[journey].steps;
        let mut due = due;
        for (i, step) in steps.iter().enumerate() {
            if self.stop.is_cancelled() {
                return;
            }
            let at = (journey, i, phase);
            let label = &step.label;
            let rendered = match plan.render(&mut it, i) {
                Ok(r) => r,
                Err(e) => {
                    let msg = it.redact(&format!("{label}: {e}"));
                    return self.record(at, StatusLabel::Error, due, None, Some(msg));
                }
            };
            let sent = Instant::now();
            let r = self
                .balancer
                .send(idempotent(&step.method), |base| {
                    let url = join(base, &rendered.path)?;
                    Ok(rendered.clone().request(&self.client, step, url))
                })
                .await;
            let (status, error) = match r {
                Ok((code, headers, body)) => (
                    StatusLabel::Code(code),
                    plan.check(&mut it, i, code, &headers, &body).err(),
                ),
                Err((status, e)) => (status, Some(e)),
            };
            let error = error.map(|e| it.redact(&format!("{label}: {e}")));
            let failed = error.is_some();
            self.record(at, status, due, Some(sent), error);
            if failed {
                return;
            }
            due = Instant::now();
            let last = i + 1 == steps.len();
            if let Some(think) = step.think
                && (pace || !last)
            {
                let (lo, hi) = (think.min.0, think.max.0);
                let secs = if hi > lo {
                    rand::Rng::random_range(&mut rand::rng(), lo..hi)
                } else {
                    lo
                };
                due += Duration::from_secs_f64(secs);
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = self.stop.cancelled() => return,
                }
            }
        }
    }
}

/// What one step measured.
struct StepResult {
    /// Answers and errors within the step's time.
    ok: u64,
    errors: u64,
    seconds: f64,
    /// What the recorder measured, with one phase per second (`second-N`).
    m: Measurements,
    /// The phases of `m`, in order.
    phases: Vec<String>,
    /// Error messages and how often each happened.
    error_kinds: BTreeMap<String, u64>,
    fault_at: Option<f64>,
    /// Why a faulted replica did not come back, if it did not.
    fault_note: Option<String>,
    /// The `unique` data source that ran out during the step.
    exhausted: Option<String>,
}

impl StepResult {
    /// The step's `latency`, all requests merged, labelled `labels`.
    fn latency(&self, labels: Labels) -> Option<HistogramEntry> {
        match self.m.select("latency", &Labels::new(), false) {
            Selection::Histogram(hist, scale) => Some(HistogramEntry {
                metric: "latency".into(),
                labels,
                scale,
                hist,
            }),
            _ => None,
        }
    }
}

/// Arrivals of the open model at `rate`: each waits for its intended time, then for a free
/// slot among [`MAX_USERS`] in flight (queueing, so it may start late: `late`, and its
/// latency counts from the intended time), until the schedule or the step ends.
async fn arrive(d: Arc<Driver>, cancel: CancellationToken) {
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_USERS as usize));
    let mut inner = Vec::new();
    let mut k = 0u64;
    while let Some((at, phase)) = d.stages.arrival(k) {
        if d.done() || cancel.is_cancelled() {
            break;
        }
        let intended = d.t0 + Duration::from_secs_f64(at);
        tokio::select! {
            () = tokio::time::sleep_until(intended.into()) => {}
            () = d.stop.cancelled() => break,
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = d.stop.cancelled() => break,
        };
        let started = d.t0.elapsed().as_secs_f64();
        d.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arrival(phase, (started - at).max(0.0), started);
        k += 1;
        let d = d.clone();
        inner.push(tokio::spawn(async move {
            d.iterate(intended, phase, false).await;
            drop(permit);
        }));
    }
    for t in inner {
        let _ = t.await;
    }
}

/// Run closed load (`users` loops) or open load (`rate` iterations/s) for `secs`, or until
/// a `unique` data source runs out (the step's time then ends there).
#[allow(clippy::too_many_arguments)]
async fn drive(
    balancer: &Arc<Balancer>,
    client: &reqwest::Client,
    work: &Arc<Work>,
    iterations: &Arc<AtomicU64>,
    users: u32,
    rate: Option<f64>,
    secs: f64,
    cx: &RunContext,
    fault: Option<FaultPlan>,
) -> StepResult {
    let level = match rate {
        Some(r) => Level::Rate(r),
        None => Level::Users(u64::from(users)),
    };
    let stages = step::stages(level, secs);
    let t0 = Instant::now();
    let driver = Arc::new(Driver {
        balancer: balancer.clone(),
        client: client.clone(),
        work: work.clone(),
        recorder: Mutex::new(step::recorder(work.names(), &stages)),
        stages,
        tally: Mutex::new(Tally::default()),
        t0,
        iterations: iterations.clone(),
        stop: CancellationToken::new(),
        exhausted: Mutex::new(None),
        ran_out: CancellationToken::new(),
    });
    let mut tasks = Vec::new();
    if rate.is_some() {
        tasks.push(tokio::spawn(arrive(driver.clone(), cx.cancel.clone())));
    } else {
        for _ in 0..users.clamp(1, MAX_USERS) {
            let d = driver.clone();
            tasks.push(tokio::spawn(async move {
                while !d.done() && t0.elapsed().as_secs_f64() < secs {
                    let now = Instant::now();
                    let phase = d.stages.phase_at(now.duration_since(t0).as_secs_f64());
                    d.iterate(now, phase, true).await;
                }
            }));
        }
    }
    let step_end = CancellationToken::new();
    let fault_task = fault.map(|f| tokio::spawn(f.run(t0, step_end.clone())));
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(secs)) => {}
        () = cx.cancel.cancelled() => {}
        () = driver.ran_out.cancelled() => {}
    }
    let seconds = t0.elapsed().as_secs_f64().min(secs).max(1e-3);
    driver.stop.cancel();
    step_end.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let (fault_at, fault_note) = match fault_task {
        Some(t) => t.await.unwrap_or((None, None)),
        None => (None, None),
    };
    let tally = std::mem::take(&mut *driver.tally.lock().unwrap_or_else(|e| e.into_inner()));
    // only answers within the step count (a request in flight at its end may answer later;
    // it stays in the recorder, in the second it arrived, for the failover timeline)
    let (ok, errors) = tally
        .seconds
        .iter()
        .filter(|&(&s, _)| (s as f64) < seconds)
        .fold((0, 0), |(o, e), (_, c)| (o + c.0, e + c.1));
    let recorder = {
        let mut r = driver.recorder.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *r, step::recorder(Vec::new(), &driver.stages))
    };
    let stages = &driver.stages;
    let m = recorder.finish(
        seconds,
        &stages.phase_durations(seconds),
        rate.is_some(),
        0.0,
        &|s| stages.scheduled_between(s as f64, s as f64 + 1.0),
    );
    let exhausted = driver
        .exhausted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    StepResult {
        ok,
        errors,
        seconds,
        m,
        phases: stages.phases.clone(),
        error_kinds: tally.errors,
        fault_at,
        fault_note,
        exhausted,
    }
}

/// A fault to inject during one step.
struct FaultPlan {
    at: f64,
    action: FaultAction,
    restore_after: Option<f64>,
    replicas: Arc<Mutex<Vec<Replica>>>,
    index: usize,
    launcher: Launcher,
    cx: RunContext,
}

impl FaultPlan {
    /// The fault time (seconds into the step) if the fault was injected, and a note when the
    /// replica could not be brought back. `step_end` ends every wait: a fault due after the
    /// step is not injected, and a hung replica is let go on at the step's end.
    async fn run(self, t0: Instant, step_end: CancellationToken) -> (Option<f64>, Option<String>) {
        let wait = self.at - t0.elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                () = self.cx.cancel.cancelled() => return (None, None),
                () = step_end.cancelled() => {
                    return (None, Some(format!(
                        "the fault was due {:.1}s into the step, which ended first",
                        self.at
                    )));
                }
            }
        }
        let pid = {
            let r = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
            r.get(self.index)
                .and_then(|r| r.proc.as_ref())
                .and_then(Proc::pid)
        };
        let Some(pid) = pid else {
            return (
                None,
                Some(format!("replica {} was not running", self.index + 1)),
            );
        };
        let sig = match self.action {
            FaultAction::Kill => libc::SIGKILL,
            FaultAction::Hang => libc::SIGSTOP,
        };
        let at = t0.elapsed().as_secs_f64();
        process::signal_group(pid, sig);
        let Some(after) = self.restore_after else {
            if self.action == FaultAction::Hang {
                // a stopped replica is let go on when the step ends
                step_end.cancelled().await;
                process::signal_group(pid, libc::SIGCONT);
            }
            return (Some(at), None);
        };
        let on_time = tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(after)) => true,
            () = self.cx.cancel.cancelled() => false,
            () = step_end.cancelled() => false,
        };
        if !on_time && self.action == FaultAction::Kill {
            // interrupted, or the step is over: the replica is not needed any more
            return (
                Some(at),
                (!self.cx.cancel.is_cancelled()).then(|| {
                    format!(
                        "the step ended before replica {} was due back ({}s after the crash)",
                        self.index + 1,
                        after
                    )
                }),
            );
        }
        (Some(at), self.restore(pid).await)
    }

    /// SIGCONT a hung replica, or start a crashed one again on its port (the balancer's
    /// list stays as it is). A note when that failed.
    async fn restore(&self, pid: u32) -> Option<String> {
        match self.action {
            FaultAction::Hang => {
                process::signal_group(pid, libc::SIGCONT);
                None
            }
            FaultAction::Kill => {
                let old = self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index]
                    .proc
                    .take();
                drop(old);
                let port = self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index].port;
                // the port may linger a moment after the crash: a few tries
                let mut last = String::new();
                for attempt in 0..RESTART_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    match self.launcher.start(self.index, Some(port), &self.cx).await {
                        Ok(r) => {
                            self.replicas.lock().unwrap_or_else(|e| e.into_inner())[self.index]
                                .proc = r.proc;
                            return None;
                        }
                        Err(e) => last = e.to_string(),
                    }
                    if self.cx.cancel.is_cancelled() {
                        break;
                    }
                }
                Some(format!(
                    "replica {} could not be restarted on port {port}: {last}",
                    self.index + 1
                ))
            }
        }
    }
}

/// Everything one sweep spec reports: the sweep of `plan`, with the spec's balancer and faults.
pub async fn run(
    plan: &SweepPlan,
    doc: &ScalingDoc,
    cx: &RunContext,
) -> Result<Measurements, BackendError> {
    let label = plan.axis.label();
    let horizontal = plan.axis == Axis::Replicas;
    let values: Vec<u32> = plan.steps.iter().map(|s| s.value).collect();
    let cpus: Option<Vec<u32>> = plan.steps.iter().map(|s| s.cpus).collect();
    let service = &plan.service_spec;
    let balancer = doc.balancer.as_ref();
    let nginx_kind = balancer.is_some_and(|b| b.kind == BalancerKind::Nginx);
    let nginx_bin = if nginx_kind && horizontal {
        Some(super::nginx::find().map_err(unavailable)?)
    } else {
        None
    };
    let load = &plan.load_spec;
    let work = Arc::new(match &plan.profile {
        Some(journeys) => Work::Journeys(journeys.clone()),
        None => Work::Get(match (&load.path, &service.command) {
            (Some(p), _) => p.value.clone(),
            (None, Some(_)) => "/".into(),
            (None, None) => "/products".into(),
        }),
    });
    let ready_path = match &service.command {
        Some(_) => service
            .ready
            .clone()
            .unwrap_or_else(|| target::DEFAULT_READY.to_string()),
        None => "/health".to_string(),
    };
    let mode = load.mode.unwrap_or(LoadMode::MaxRate);
    // validation keeps `step_duration` within its range: no clamp here
    let step_secs = load.step_secs();
    let per_unit = load.concurrency.as_ref().map_or(4, |c| c.value);
    let criteria = step::criteria(load).map_err(unavailable)?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_USERS as usize)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;

    // the shop's shared database tier; a user's command brings its own backends
    let (_db, kind) = match &service.command {
        Some(argv) => (
            None,
            LaunchKind::Command {
                argv: argv.value.clone(),
                env: service.env.clone(),
                ready: ready_path.clone(),
                ready_timeout: Duration::from_secs_f64(
                    service
                        .ready_timeout
                        .map_or(target::DEFAULT_READY_TIMEOUT, |d| d.0),
                ),
            },
        ),
        None => {
            cx.progress.update(None, "starting the database tier");
            let (db, db_port) = tokio::task::spawn_blocking(start_db)
                .await
                .map_err(|e| unavailable(e.to_string()))??;
            (Some(db), LaunchKind::Shop { db_port })
        }
    };
    let base_threads = service.threads.as_ref().map_or(2, |t| t.value);

    let mut m = Measurements::default();
    let mut points = Vec::new();
    let mut latencies: Vec<HistogramEntry> = Vec::new();
    // (ok, errors) over the sweep
    let mut totals = (0u64, 0u64);
    let iterations = Arc::new(AtomicU64::new(0));
    for (step_index, &v) in values.iter().enumerate() {
        if cx.cancel.is_cancelled() {
            m.notes.push("interrupted: the sweep stopped early".into());
            break;
        }
        let (n, threads) = if horizontal {
            (v, base_threads)
        } else {
            (1, v)
        };
        let launcher = Launcher {
            kind: kind.clone(),
            threads,
            cpus: cpus.as_ref().and_then(|c| c.get(step_index).copied()),
        };
        let step_label = labels(&[(label, &v.to_string())]);
        let outcome = run_step(
            StepSetup {
                label,
                v,
                n,
                launcher,
                horizontal,
                nginx_bin: nginx_bin.as_deref(),
                ready_path: &ready_path,
                client: &client,
                work: &work,
                iterations: &iterations,
                balancer,
                fault: doc.fault.iter().flatten().find(|f| f.step.value == v),
            },
            load,
            mode,
            step_secs,
            per_unit,
            &criteria,
            &mut m,
            cx,
        )
        .await;
        let result = match outcome {
            Ok(Some(r)) => r,
            Ok(None) => {
                m.notes.push(format!(
                    "{label}={v}: not even the lowest rate held the step SLOs ({}): no throughput point for this step",
                    texts(&criteria)
                ));
                continue;
            }
            Err(e) if points.is_empty() => return Err(e),
            Err(e) => {
                // keep what the earlier steps measured
                let message = format!("{label}={v}: {e}");
                let mut partial = finish(points, latencies, totals, label, m, cx);
                partial.notes.push(message.clone());
                return Err(BackendError::Failed {
                    message,
                    partial: Some(Box::new(partial)),
                });
            }
        };
        for (msg, count) in &result.error_kinds {
            m.error_samples_n(msg, step_label.clone(), *count);
        }
        m.scalar("errors", step_label.clone(), result.errors as f64);
        m.scalar(
            "error_rate",
            step_label.clone(),
            result.errors as f64 / (result.ok + result.errors).max(1) as f64,
        );
        totals.0 += result.ok;
        totals.1 += result.errors;
        let used_up = result.exhausted.clone();
        if let Some(source) = &used_up {
            m.notes.push(format!(
                "{label}={v}: the data source `{source}` (mode unique) ran out of rows after {:.1}s: the step ended there, and later steps were not run",
                result.seconds
            ));
        }
        let throughput = result.ok as f64 / result.seconds;
        points.push(Point {
            concurrency: v,
            throughput,
        });
        latencies.extend(result.latency(step_label));
        m.notes.push(format!(
            "{label}={v}: {:.1} req/s ({} ok, {} errors in {:.1}s)",
            throughput, result.ok, result.errors, result.seconds
        ));
        if used_up.is_some() {
            break;
        }
    }
    if mode == LoadMode::Concurrency {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        m.notes.extend(super::fit_metrics::offered_load_warning(
            &points, label, per_unit, cpus,
        ));
    }
    Ok(finish(points, latencies, totals, label, m, cx))
}

/// The step SLOs, as written, for a note.
fn texts(criteria: &[Slo]) -> String {
    criteria
        .iter()
        .map(|s| format!("`{}`", s.text))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fit of the measured points, the latency histograms and what the steps recorded.
fn finish(
    points: Vec<Point>,
    latencies: Vec<HistogramEntry>,
    (ok, errors): (u64, u64),
    label: &str,
    mut m: Measurements,
    cx: &RunContext,
) -> Measurements {
    if ok + errors > 0 {
        m.scalar(
            "error_rate",
            Labels::new(),
            errors as f64 / (ok + errors) as f64,
        );
    }
    let mut fit = super::fit_metrics::measure_labelled(&points, label);
    fit.histograms.extend(latencies);
    fit.scalars.append(&mut m.scalars);
    fit.series.append(&mut m.series);
    fit.notes.append(&mut m.notes);
    fit.error_samples.append(&mut m.error_samples);
    fit.elapsed_s = cx.elapsed();
    fit
}

/// What one sweep step needs besides the load settings.
struct StepSetup<'a> {
    label: &'a str,
    v: u32,
    /// Replicas at this step.
    n: u32,
    launcher: Launcher,
    horizontal: bool,
    nginx_bin: Option<&'a std::path::Path>,
    ready_path: &'a str,
    client: &'a reqwest::Client,
    work: &'a Arc<Work>,
    iterations: &'a Arc<AtomicU64>,
    balancer: Option<&'a crate::spec::scaling::Balancer>,
    fault: Option<&'a crate::spec::scaling::Fault>,
}

/// Start the step's replicas (and nginx), run its load (and fault), stop them.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    s: StepSetup<'_>,
    load: &crate::spec::scaling::ScalingLoad,
    mode: LoadMode,
    step_secs: f64,
    per_unit: u32,
    criteria: &[Slo],
    m: &mut Measurements,
    cx: &RunContext,
) -> Result<Option<StepResult>, BackendError> {
    let (label, v, n) = (s.label, s.v, s.n);
    let pinned = s
        .launcher
        .cpus
        .map(|c| format!(", {c} CPU(s) each"))
        .unwrap_or_default();
    cx.progress.update(
        None,
        &format!("{label}={v}: starting {n} replica(s){pinned}"),
    );
    let mut reps = Vec::new();
    for i in 0..n {
        let r = s
            .launcher
            .start(i as usize, None, cx)
            .await
            .map_err(|e| unavailable(format!("replica {} of {n} did not start: {e}", i + 1)))?;
        reps.push(r);
    }
    for r in &reps {
        wait_healthy(&r.url(), s.ready_path, cx).await?;
    }
    let urls: Vec<String> = reps.iter().map(Replica::url).collect();
    let replicas = Arc::new(Mutex::new(reps));
    let balancer = s.balancer;
    let nginx = match s.nginx_bin {
        Some(bin) => {
            let b = balancer.ok_or_else(|| unavailable("no [balancer]"))?;
            let ng = super::nginx::start(bin, &urls, b)
                .await
                .map_err(unavailable)?;
            wait_healthy(&ng.url, s.ready_path, cx).await?;
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
    let plan = |fault: Option<&crate::spec::scaling::Fault>| {
        fault.map(|f| FaultPlan {
            at: f.at.value.0,
            action: f.action,
            restore_after: f.restore_after.map(|d| d.0),
            replicas: replicas.clone(),
            index: if s.horizontal {
                (f.replica.value.max(1) - 1) as usize
            } else {
                0
            },
            launcher: s.launcher.clone(),
            cx: cx.clone(),
        })
    };
    let (client, work) = (s.client, s.work);
    let users = per_unit.saturating_mul(n).min(MAX_USERS);
    if mode == LoadMode::Concurrency && per_unit.saturating_mul(n) > MAX_USERS {
        m.notes.push(format!(
            "{label}={v}: {per_unit} users per replica × {n} replicas is more than the {MAX_USERS} users perfspec runs: the step ran {MAX_USERS}"
        ));
    }
    let result = match mode {
        LoadMode::Concurrency => {
            cx.progress.update(
                None,
                &format!("{label}={v}: {users} users for {step_secs}s"),
            );
            let r = drive(
                &bal,
                client,
                work,
                s.iterations,
                users,
                None,
                step_secs,
                cx,
                plan(s.fault),
            )
            .await;
            if s.fault.is_some() {
                failover(m, &r, criteria);
            }
            Some(r)
        }
        LoadMode::MaxRate => {
            let top = load.max_rate.map_or(2000.0, |r| r.0);
            let rung_secs = rung_secs(step_secs);
            let mut best: Option<StepResult> = None;
            for rate in step::rungs(top, MAX_RUNGS) {
                if cx.cancel.is_cancelled() {
                    break;
                }
                cx.progress
                    .update(None, &format!("{label}={v}: {rate:.0}/s"));
                let r = drive(
                    &bal,
                    client,
                    work,
                    s.iterations,
                    0,
                    Some(rate),
                    rung_secs,
                    cx,
                    None,
                )
                .await;
                let j: Judgement = step::judge(criteria, &r.m, None);
                m.notes.push(format!(
                    "{label}={v}: {rate:.0}/s offered: {} ok, {} errors: {}",
                    r.ok,
                    r.errors,
                    step::describe(&j)
                ));
                if !j.held {
                    // what broke it is worth seeing
                    let l = labels(&[(label, &v.to_string())]);
                    for (msg, count) in &r.error_kinds {
                        m.error_samples_n(msg, l.clone(), *count);
                    }
                    // let the backlog of the broken rung drain before anything else runs
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
                if rate >= top {
                    m.notes.push(format!(
                        "{label}={v}: the highest rate tried ({top:.0}/s, `max_rate`) held: the capacity may be higher; raise `max_rate`"
                    ));
                }
                best = Some(r);
            }
            // the fault runs for a full step at half the sustained rate: at the limit
            // any disturbance would overload the survivors
            if let Some(f) = plan(s.fault) {
                let rate = 0.5
                    * best
                        .as_ref()
                        .map_or(top / MAX_RUNGS as f64, |b| b.ok as f64 / b.seconds);
                let r = drive(
                    &bal,
                    client,
                    work,
                    s.iterations,
                    0,
                    Some(rate),
                    step_secs,
                    cx,
                    Some(f),
                )
                .await;
                failover(m, &r, criteria);
            }
            best
        }
    };
    // nginx first, then the replicas
    drop(nginx);
    drop(replicas);
    Ok(result)
}

/// A rung of the rate search lasts a third of the step (at least one second).
fn rung_secs(step_secs: f64) -> f64 {
    (step_secs / 3.0).max(1.0)
}

/// failover.* from a step with a fault. Each second of the step (by arrival) is judged by
/// the step SLOs with the evaluator; `failover.recovery_time` is how long after the fault
/// they hold again for a second, and `failover.p95` the per-second p95 for the chart.
fn failover(m: &mut Measurements, r: &StepResult, criteria: &[Slo]) {
    let Some(at) = r.fault_at else {
        m.notes.push(
            r.fault_note
                .clone()
                .unwrap_or_else(|| "the fault was not injected (the step ended first)".into()),
        );
        return;
    };
    if let Some(note) = &r.fault_note {
        m.notes.push(format!("failover: {note}"));
    }
    let from = at.floor();
    let (mut errs, mut total) = (0.0, 0.0);
    let mut err_series = Vec::new();
    let mut p95_series = Vec::new();
    let mut bad = Vec::new();
    for (i, phase) in r.phases.iter().enumerate() {
        let t = i as f64;
        let errors = step::count(&r.m, "errors", phase);
        err_series.push((t, errors));
        if let Some(p) = step::latency_quantile(&r.m, Some(phase), 0.95) {
            p95_series.push((t, p));
        }
        if t >= from {
            errs += errors;
            total += step::count(&r.m, "requests", phase);
        }
        let held = step::judge(criteria, &r.m, Some(phase)).held;
        bad.push((t, if held { 0.0 } else { 1.0 }));
    }
    m.scalar("failover.errors", Labels::new(), errs);
    m.scalar("failover.error_rate", Labels::new(), errs / total.max(1.0));
    match search::recovery_time(&bad, from, 1.0, |v| v == 0.0) {
        Some(rt) => m.scalar(
            "failover.recovery_time",
            Labels::new(),
            (rt + from - at).max(0.0),
        ),
        None => m.notes.push(format!(
            "failover: the step SLOs ({}) did not hold again within the step",
            texts(criteria)
        )),
    }
    // the fault's time rides on the series so that a report can mark it on the timeline
    let x = labels(&[("x", "seconds"), ("fault_at", &format!("{at:.3}"))]);
    m.push_series("failover.errors", x.clone(), err_series);
    m.push_series("failover.p95", x, p95_series);
    m.notes.push(format!(
        "failover: fault at {at:.1}s into the step, {errs} errors of {total} requests after it"
    ));
}

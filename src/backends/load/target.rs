//! The service under test: a running `url`, a `command` perfspec starts on a free loopback
//! port (`{port}`), or the `embedded` demo shop (`perfspec demo serve` as a child process).
//! perfspec waits for readiness (a target that never becomes ready is "could not start",
//! exit 3), samples the processes it started from /proc during the run (CPU, RSS, open
//! connections, the whole process tree), scrapes a Prometheus endpoint if asked, and stops
//! what it started on every exit path ([`crate::process::Child`]'s guard, and the
//! parent-death signal should perfspec itself die).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::demo::launch;
use crate::engine::metrics::{Labels, Measurements};
use crate::engine::{BackendError, RunContext};
use crate::process::{self, Child, NotReady, PortTry, Probe};
use crate::spec::load::{EmbeddedService, Target as TargetSpec};

pub use crate::process::error_chain;

/// Default readiness path and timeout.
pub const DEFAULT_READY: &str = "/health";
pub const DEFAULT_READY_TIMEOUT: f64 = 30.0;
/// How many times a `command` target is retried on a fresh port when it exits at once
/// complaining that its address is in use (free-port probes race with other processes).
const PORT_ATTEMPTS: usize = 3;

/// A started (or found) target.
pub struct Target {
    pub base_url: String,
    /// How the target was described, for messages.
    pub what: String,
    child: Option<Child>,
}

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

fn interrupted() -> BackendError {
    BackendError::Failed {
        message: "interrupted before the target was ready".into(),
        partial: None,
    }
}

/// `; its last output: …` for a tail, or nothing.
fn note(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its last output: {tail}")
    }
}

/// Start or find the target of a spec and wait until it is ready.
pub async fn start(spec: &TargetSpec, cx: &RunContext) -> Result<Target, BackendError> {
    let ready_timeout =
        Duration::from_secs_f64(spec.ready_timeout.map_or(DEFAULT_READY_TIMEOUT, |d| d.0));
    let ready_path = spec.ready.clone();
    if let Some(url) = &spec.url {
        let base = url.value.trim_end_matches('/').to_string();
        let target = Target {
            base_url: base.clone(),
            what: format!("the target {base}"),
            child: None,
        };
        match ready_path {
            Some(p) => wait_ready(&base, &p, ready_timeout, None, cx).await?,
            None => wait_connectable(&base, ready_timeout.min(Duration::from_secs(5)), cx).await?,
        }
        return Ok(target);
    }
    if let Some(argv) = &spec.command {
        let launch = CommandLaunch {
            argv,
            env: spec.env.as_ref(),
            ready: ready_path.as_deref().unwrap_or(DEFAULT_READY),
            ready_timeout,
            vars: Vec::new(),
            cpus: None,
        };
        return start_command(&launch, None, cx).await;
    }
    match spec.embedded.as_ref().map(|e| e.value) {
        Some(EmbeddedService::Shop) => start_shop(ready_timeout, cx).await,
        None => Err(unavailable("the spec names no target")),
    }
}

/// How to start a `command` target or replica.
pub struct CommandLaunch<'a> {
    /// argv with `{port}` (and the `vars`) as placeholders.
    pub argv: &'a [String],
    pub env: Option<&'a BTreeMap<String, String>>,
    /// Readiness path (`GET` must answer 2xx).
    pub ready: &'a str,
    pub ready_timeout: Duration,
    /// More placeholders and their values, e.g. `("{threads}", "4")`.
    pub vars: Vec<(&'static str, String)>,
    /// Pin the process to these CPUs.
    pub cpus: Option<Vec<usize>>,
}

impl CommandLaunch<'_> {
    fn argv_for(&self, port: u16) -> Vec<String> {
        self.argv
            .iter()
            .map(|a| {
                let mut a = a.replace("{port}", &port.to_string());
                for (k, v) in &self.vars {
                    a = a.replace(k, v);
                }
                a
            })
            .collect()
    }
}

/// Start a command on `port` (or on a free loopback port, retried when the command exits
/// at once saying its address is in use) and wait until it is ready.
pub async fn start_command(
    launch: &CommandLaunch<'_>,
    port: Option<u16>,
    cx: &RunContext,
) -> Result<Target, BackendError> {
    match port {
        Some(p) => match try_command(launch, p, cx).await {
            PortTry::Done(t) => Ok(t),
            PortTry::Taken(e) | PortTry::Failed(e) => Err(e),
        },
        None => {
            process::on_free_port(
                PORT_ATTEMPTS,
                |e| unavailable(format!("cannot find a free loopback port: {e}")),
                |p| try_command(launch, p, cx),
            )
            .await
        }
    }
}

/// One try at starting a command on `port`.
async fn try_command(
    launch: &CommandLaunch<'_>,
    port: u16,
    cx: &RunContext,
) -> PortTry<Target, BackendError> {
    let args = launch.argv_for(port);
    let Some(program) = args.first() else {
        return PortTry::Failed(unavailable("the command is empty"));
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(&args[1..]).current_dir(&cx.spec_dir);
    for (k, v) in launch.env.into_iter().flatten() {
        cmd.env(k, v);
    }
    if let Some(cpus) = &launch.cpus
        && let Err(e) = process::pin_cpus(&mut cmd, cpus)
    {
        return PortTry::Failed(unavailable(e.to_string()));
    }
    let mut child = match process::spawn(cmd, None) {
        Ok(c) => c,
        Err(e) => {
            return PortTry::Failed(unavailable(format!(
                "cannot start the target `{program}`: {e}"
            )));
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    match wait_ready(
        &base,
        launch.ready,
        launch.ready_timeout,
        Some(&mut child),
        cx,
    )
    .await
    {
        Ok(()) => PortTry::Done(Target {
            base_url: base,
            what: format!("the target `{program}`"),
            child: Some(child),
        }),
        Err(BackendError::Unavailable(msg))
            if msg.contains("exited") && child.tail().to_ascii_lowercase().contains("in use") =>
        {
            PortTry::Taken(unavailable(msg))
        }
        Err(e) => PortTry::Failed(e),
    }
}

/// `perfspec demo serve --port 0`: its first stdout line says where it listens.
async fn start_shop(ready_timeout: Duration, cx: &RunContext) -> Result<Target, BackendError> {
    let args = ["serve", "--port", "0"].map(String::from);
    let cmd = launch::demo_command(&args).map_err(|e| {
        unavailable(format!(
            "cannot find the perfspec binary for the demo shop: {e}"
        ))
    })?;
    let mut child = process::spawn(cmd, Some(launch::LISTENING))
        .map_err(|e| unavailable(format!("cannot start the demo shop: {e}")))?;
    let announced = process::wait_ready(
        Some(&mut child),
        &Probe::Announced,
        ready_timeout,
        &cx.cancel,
    )
    .await;
    let base = match announced {
        Ok(url) => url.unwrap_or_default(),
        Err(NotReady::Cancelled) => return Err(interrupted()),
        Err(NotReady::Exited { status, tail }) => {
            return Err(unavailable(format!(
                "the demo shop did not start (it exited: {status}){}",
                note(&tail)
            )));
        }
        Err(NotReady::TimedOut { .. }) => {
            return Err(unavailable(format!(
                "the demo shop did not start{}",
                child.tail_note()
            )));
        }
    };
    wait_ready(&base, DEFAULT_READY, ready_timeout, Some(&mut child), cx).await?;
    Ok(Target {
        base_url: base,
        what: "the demo shop".into(),
        child: Some(child),
    })
}

/// Poll `GET base+path` until it answers 2xx. Fails when the child exits, on timeout, or
/// when the run is cancelled.
async fn wait_ready(
    base: &str,
    path: &str,
    timeout: Duration,
    mut child: Option<&mut Child>,
    cx: &RunContext,
) -> Result<(), BackendError> {
    let url = format!(
        "{base}{}{path}",
        if path.starts_with('/') { "" } else { "/" }
    );
    let probe = Probe::Http(url.clone());
    match process::wait_ready(child.as_deref_mut(), &probe, timeout, &cx.cancel).await {
        Ok(_) => Ok(()),
        Err(NotReady::Cancelled) => Err(interrupted()),
        Err(NotReady::Exited { status, tail }) => Err(unavailable(format!(
            "the target exited ({status}) before it became ready{}",
            note(&tail)
        ))),
        Err(NotReady::TimedOut { last }) => Err(unavailable(format!(
            "the target never became ready: GET {url} did not answer 2xx within {} (last: {last}){}",
            crate::spec::units::Dimension::Time.format(timeout.as_secs_f64()),
            child.as_deref().map(Child::tail_note).unwrap_or_default()
        ))),
    }
}

/// A `url` target without `ready`: its host and port must accept a TCP connection.
async fn wait_connectable(
    base: &str,
    timeout: Duration,
    cx: &RunContext,
) -> Result<(), BackendError> {
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| unavailable(format!("invalid target url `{base}`: {e}")))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    match process::wait_ready(None, &Probe::Tcp(host, port), timeout, &cx.cancel).await {
        Ok(_) => Ok(()),
        Err(NotReady::Cancelled) => Err(interrupted()),
        Err(NotReady::TimedOut { last: err }) | Err(NotReady::Exited { tail: err, .. }) => Err(
            unavailable(format!("cannot connect to the target {base}: {err}")),
        ),
    }
}

impl Target {
    /// The pid of the process perfspec started, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }

    /// If the started process has exited: a sentence saying so.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        let status = c.exit_status()?;
        Some(format!(
            "{} exited during the run ({status}){}",
            self.what,
            c.tail_note()
        ))
    }
}

/// CPU ticks per second and page size.
fn sysconf() -> (f64, u64) {
    // SAFETY: sysconf(3) only reads configuration values
    let (tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (
        if tck > 0 { tck as f64 } else { 100.0 },
        if page > 0 { page as u64 } else { 4096 },
    )
}

/// `(utime + stime ticks, parent pid)` from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u64, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name is in parentheses and may contain spaces: fields follow the last ')'
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ticks, ppid))
}

/// CPU seconds this process has used so far.
pub fn self_cpu_seconds() -> Option<f64> {
    let (ticks, _) = stat(std::process::id())?;
    Some(ticks as f64 / sysconf().0)
}

/// `root` and all its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && let Some((_, ppid)) = stat(pid)
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// Established TCP connections held by `pids`.
fn established(pids: &[u32]) -> u64 {
    let mut inodes = HashSet::new();
    for pid in pids {
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in dir.flatten() {
                if let Ok(link) = std::fs::read_link(e.path())
                    && let Some(ino) = link
                        .to_str()
                        .and_then(|l| l.strip_prefix("socket:["))
                        .and_then(|l| l.strip_suffix(']'))
                {
                    inodes.insert(ino.to_string());
                }
            }
        }
    }
    let Some(root) = pids.first() else { return 0 };
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{root}/net/{table}")) {
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // state 01 = ESTABLISHED; field 9 is the inode
                if f.get(3) == Some(&"01") && f.get(9).is_some_and(|i| inodes.contains(*i)) {
                    n += 1;
                }
            }
        }
    }
    n
}

/// One /proc sample of the target's process tree.
#[derive(Debug, Clone, Copy)]
struct ProcSample {
    at: f64,
    cpu_ticks: u64,
    rss: u64,
    connections: u64,
}

fn sample_tree(root: u32, at: f64, page: u64) -> Option<ProcSample> {
    stat(root)?;
    let pids = tree(root);
    let mut s = ProcSample {
        at,
        cpu_ticks: 0,
        rss: 0,
        connections: established(&pids),
    };
    for pid in &pids {
        if let Some((t, _)) = stat(*pid) {
            s.cpu_ticks += t;
        }
        if let Some(pages) = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        {
            s.rss += pages * page;
        }
    }
    Some(s)
}

/// A Prometheus sample family: `(name, labels)` → values over the run.
#[derive(Debug, Default)]
struct PromSeries {
    counter: bool,
    first: f64,
    last: f64,
    max: f64,
    points: Vec<(f64, f64)>,
}

/// Parse Prometheus text exposition: `(name, labels, value)` and the counter families.
pub fn parse_prometheus(text: &str) -> (Vec<(String, Labels, f64)>, HashSet<String>) {
    let mut out = Vec::new();
    let mut counters = HashSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut f = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (f.next(), f.next())
                && matches!(kind, "counter" | "histogram" | "summary")
            {
                counters.insert(name.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(i) if line[..i].find(' ').is_none() => {
                let Some(close) = line.rfind('}') else {
                    continue;
                };
                (
                    &line[..i],
                    parse_labels(&line[i + 1..close]),
                    &line[close + 1..],
                )
            }
            _ => match line.split_once(' ') {
                Some((n, r)) => (n, Labels::new(), r),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if value.is_finite() {
            out.push((name.to_string(), labels, value));
        }
    }
    (out, counters)
}

fn parse_labels(s: &str) -> Labels {
    let mut labels = Labels::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        if !key.is_empty() {
            labels.insert(key, value);
        }
        rest = &body[end.min(body.len())..];
    }
    labels
}

fn family_is_counter(name: &str, counters: &HashSet<String>) -> bool {
    counters.contains(name)
        || ["_total", "_count", "_sum", "_bucket"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| counters.contains(base))
        })
}

/// Samples the target during the run: /proc of the started process tree, and a Prometheus
/// endpoint. Call [`Monitor::finish`] to stop it and add what it saw to the measurements.
pub struct Monitor {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<MonitorData>,
}

#[derive(Default)]
struct MonitorData {
    proc: Vec<ProcSample>,
    prom: BTreeMap<(String, Labels), PromSeries>,
    prom_errors: u64,
    prom_last_error: Option<String>,
}

/// Most Prometheus series kept as time series in results (all become scalars).
const MAX_PROM_SERIES: usize = 50;

impl Monitor {
    /// Start sampling every `interval`. `pid` is the started process (if any); `prometheus`
    /// a URL or a path on the target. `origin` is the moment series times count from.
    pub fn start(
        pid: Option<u32>,
        prometheus: Option<String>,
        base_url: &str,
        interval: Duration,
        origin: Instant,
    ) -> Monitor {
        let stop = CancellationToken::new();
        let prom_url = prometheus.map(|p| {
            if p.starts_with("http://") || p.starts_with("https://") {
                p
            } else {
                format!("{base_url}{}{p}", if p.starts_with('/') { "" } else { "/" })
            }
        });
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let (_, page) = sysconf();
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .ok();
            let mut data = MonitorData::default();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = token.cancelled() => {}
                }
                let at = origin.elapsed().as_secs_f64();
                if let Some(pid) = pid {
                    let s = tokio::task::spawn_blocking(move || sample_tree(pid, at, page))
                        .await
                        .ok()
                        .flatten();
                    data.proc.extend(s);
                }
                if let (Some(url), Some(client)) = (&prom_url, &client) {
                    match client
                        .get(url)
                        .send()
                        .await
                        .and_then(reqwest::Response::error_for_status)
                    {
                        Ok(r) => match r.text().await {
                            Ok(text) => {
                                let (samples, counters) = parse_prometheus(&text);
                                for (name, labels, v) in samples {
                                    let counter = family_is_counter(&name, &counters);
                                    let s = data.prom.entry((name, labels)).or_insert_with(|| {
                                        PromSeries {
                                            counter,
                                            first: v,
                                            max: v,
                                            ..Default::default()
                                        }
                                    });
                                    s.last = v;
                                    s.max = s.max.max(v);
                                    s.points.push((at, v));
                                }
                            }
                            Err(e) => {
                                data.prom_errors += 1;
                                data.prom_last_error = Some(error_chain(&e));
                            }
                        },
                        Err(e) => {
                            data.prom_errors += 1;
                            data.prom_last_error = Some(error_chain(&e));
                        }
                    }
                }
                if token.is_cancelled() {
                    break;
                }
            }
            data
        });
        Monitor { stop, task }
    }

    /// Take a last sample, stop, and add `target.*` and `prom.*` metrics to `m`.
    pub async fn finish(self, m: &mut Measurements) {
        self.stop.cancel();
        let Ok(data) = self.task.await else { return };
        let (tck, _) = sysconf();
        if data.proc.len() >= 2 {
            let (first, last) = (data.proc[0], data.proc[data.proc.len() - 1]);
            let wall = last.at - first.at;
            if wall > 0.0 {
                m.scalar(
                    "target.cpu",
                    Labels::new(),
                    last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / tck / wall,
                );
            }
            m.scalar(
                "target.rss",
                Labels::new(),
                data.proc.iter().map(|s| s.rss).max().unwrap_or(0) as f64,
            );
            m.scalar(
                "target.rss_growth",
                Labels::new(),
                last.rss as f64 - first.rss as f64,
            );
            m.scalar(
                "target.connections",
                Labels::new(),
                data.proc.iter().map(|s| s.connections).max().unwrap_or(0) as f64,
            );
            let cpu: Vec<(f64, f64)> = data
                .proc
                .windows(2)
                .filter(|w| w[1].at > w[0].at)
                .map(|w| {
                    (
                        w[1].at,
                        w[1].cpu_ticks.saturating_sub(w[0].cpu_ticks) as f64
                            / tck
                            / (w[1].at - w[0].at),
                    )
                })
                .collect();
            m.push_series("target.cpu", Labels::new(), cpu);
            m.push_series(
                "target.rss",
                Labels::new(),
                data.proc.iter().map(|s| (s.at, s.rss as f64)).collect(),
            );
        }
        for (i, ((name, labels), s)) in data.prom.into_iter().enumerate() {
            let metric = format!("prom.{name}");
            let value = if s.counter { s.last - s.first } else { s.max };
            m.scalar(&metric, labels.clone(), value);
            if i < MAX_PROM_SERIES {
                m.push_series(&metric, labels, s.points);
            }
        }
        if data.prom_errors > 0 {
            m.notes.push(format!(
                "the Prometheus endpoint failed {} time(s) (last: {})",
                data.prom_errors,
                data.prom_last_error.unwrap_or_default()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_parses() {
        let text = "# HELP x help\n# TYPE demo_db_queries_total counter\ndemo_db_queries_total 12\n\
                    # TYPE req counter\nreq_total{endpoint=\"a\",code=\"2\\\"00\"} 3 1700000000\n\
                    pool_in_use 4\nbad line\nnan_metric NaN\n";
        let (samples, counters) = parse_prometheus(text);
        assert_eq!(samples.len(), 3, "{samples:?}");
        assert_eq!(samples[1].0, "req_total");
        assert_eq!(samples[1].1["code"], "2\"00");
        assert_eq!(samples[1].2, 3.0);
        assert!(family_is_counter("req_total", &counters));
        assert!(family_is_counter("demo_db_queries_total", &counters));
        assert!(!family_is_counter("pool_in_use", &counters));
    }

    #[test]
    fn proc_sampling_sees_this_process() {
        let s = sample_tree(std::process::id(), 0.0, sysconf().1).unwrap();
        assert!(s.rss > 1_000_000, "{s:?}");
        assert!(self_cpu_seconds().is_some());
    }
}

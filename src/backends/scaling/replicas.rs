//! The replicas of a scaling step: the embedded shop (with its shared database) or the
//! user's `command`, each on a fixed port (a restarted replica comes back on the same one),
//! started through the process module and waited for until healthy.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backends::load::target::{self, CommandLaunch, Target};
use crate::demo::launch;
use crate::engine::{BackendError, RunContext};
use crate::process::{self, NotReady, Probe};

use super::balancer::join;

/// Database tier of the sweep: pool size and query time.
pub(super) const DB_POOL: &str = "4";

pub(super) const DB_QUERY: &str = "5ms";

/// Own latency of every shop endpoint.
pub(super) const SHOP_LATENCY: &str = "*=20ms";

pub(super) fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

/// A running replica process.
pub(super) enum Proc {
    Shop(process::Child),
    Command(Box<Target>),
}

impl Proc {
    pub(super) fn pid(&self) -> Option<u32> {
        match self {
            Proc::Shop(g) => Some(g.pid()),
            Proc::Command(t) => t.pid(),
        }
    }
}

/// One replica: its fixed port (a restarted replica comes back on the same one).
pub(super) struct Replica {
    pub(super) port: u16,
    pub(super) proc: Option<Proc>,
}

/// How replicas are started.
#[derive(Clone)]
pub(super) enum LaunchKind {
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
pub(super) struct Launcher {
    pub(super) kind: LaunchKind,
    pub(super) threads: u32,
    pub(super) cpus: Option<u32>,
}

impl Launcher {
    /// Start replica `index` (from 0) on `port` (or a free port) and wait until it is ready.
    /// With `cpus`, replica `index` gets its own slice of the CPUs (wrapping around).
    pub(super) async fn start(
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
    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub(super) fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

pub(super) fn start_db() -> Result<(process::Child, u16), BackendError> {
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

pub(super) fn start_replica(
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

pub(super) async fn wait_healthy(
    url: &str,
    path: &str,
    cx: &RunContext,
) -> Result<(), BackendError> {
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

//! Real `memcached` nodes (Debian package `memcached`) and a `nutcracker` (twemproxy,
//! Debian package `nutcracker`) in front of them, started by perfspec for a spec. Each is a
//! [`crate::process`] child: its own process group, killed if perfspec dies, stopped by its
//! guard on every exit path; bound to 127.0.0.1 on a free port (retried when taken). A node
//! can be killed mid-run and restarted, empty, on the same port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::protocol::Conn;
use crate::engine::BackendError;
use crate::process::{self, Child, NotReady, PortTry, Probe, Restartable};

/// How long a new node or proxy may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a free port (another process can take a probed port before the child binds).
const PORT_ATTEMPTS: usize = 5;
/// Memory of each node perfspec starts, in MiB (memcached's `-m`; its default is 64).
const NODE_MEGABYTES: u32 = 64;

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

/// Whether something answers memcached's text protocol on 127.0.0.1:`port` (a `get` of a
/// key no run uses answers `END`; twemproxy has no `version` command).
pub async fn answers(port: u16) -> Result<(), String> {
    let mut c = Conn::connect(&format!("127.0.0.1:{port}")).await?;
    match tokio::time::timeout(Duration::from_millis(500), c.get("perfspec-ready")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer to get".into()),
    }
}

/// Start `cmd` and wait until it answers on `port`.
async fn start_child(what: &str, cmd: Command, port: u16) -> Result<Child, String> {
    let mut child = process::spawn(cmd, None).map_err(|e| format!("cannot run {what}: {e}"))?;
    let probe = Probe::custom(move || answers(port));
    let never = CancellationToken::new();
    match process::wait_ready(Some(&mut child), &probe, READY_TIMEOUT, &never).await {
        Ok(_) => Ok(child),
        Err(NotReady::Exited { status, .. }) => Err(format!(
            "{what} exited with {status}: {}",
            child.tail_lines(3)
        )),
        Err(_) => Err(format!(
            "{what} did not answer on port {port} within {}s: {}",
            READY_TIMEOUT.as_secs(),
            child.tail_lines(3)
        )),
    }
}

/// Start what `command(port)` builds on a free port, retried on a fresh one when it fails.
async fn on_free_port(
    what: &str,
    command: impl Fn(u16) -> Command,
) -> Result<(u16, Child), BackendError> {
    process::on_free_port(
        PORT_ATTEMPTS,
        |e| unavailable(format!("cannot find a free port: {e}")),
        |port| {
            let cmd = command(port);
            async move {
                match start_child(what, cmd, port).await {
                    Ok(child) => PortTry::Done((port, child)),
                    Err(e) => PortTry::Taken(unavailable(format!("{what} did not start: {e}"))),
                }
            }
        },
    )
    .await
}

/// A running `memcached` child; stopped on drop.
pub struct MemcachedNode {
    binary: PathBuf,
    port: u16,
    /// The process: killed by `kill_node` (SIGKILL), as a crash would.
    pub child: Restartable,
}

fn memcached_command(binary: &Path, port: u16) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"])
        .args(["-m", &NODE_MEGABYTES.to_string(), "-c", "4096"]);
    // memcached refuses to run as root. Its own `-u nobody` would switch users after the
    // exec, which clears the parent-death signal (a `kill -9` of perfspec would leave it
    // running): the child becomes `nobody` before the exec instead, and the signal is set
    // after that.
    if let Some((uid, gid)) = nobody_when_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// `nobody`'s uid and gid when perfspec runs as root.
fn nobody_when_root() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam reads a static entry, copied at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

impl MemcachedNode {
    pub async fn start() -> Result<MemcachedNode, BackendError> {
        let binary = process::MEMCACHED.find().map_err(unavailable)?;
        let (port, child) = on_free_port("memcached", |p| memcached_command(&binary, p)).await?;
        Ok(MemcachedNode {
            binary,
            port,
            child: Restartable::new(child),
        })
    }

    #[cfg(test)]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start again on the same port, empty.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.child.kill();
        let cmd = memcached_command(&self.binary, self.port);
        self.child
            .replace(start_child("memcached", cmd, self.port).await?);
        Ok(())
    }
}

/// twemproxy's settings for a pool: ejection after `failure_limit` failures, retry after
/// `retry_timeout`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ejection {
    pub failure_limit: u32,
    pub retry_timeout: Duration,
}

/// The YAML configuration of one nutcracker pool over `servers` (`host:port`), ketama over
/// MD5 like perfspec's own ring, with automatic ejection.
pub fn nutcracker_config(listen: u16, servers: &[String], hashing: &str, ej: Ejection) -> String {
    let mut out = format!(
        "perfspec:\n  listen: 127.0.0.1:{listen}\n  hash: md5\n  distribution: {hashing}\n  timeout: 500\n  auto_eject_hosts: {}\n  server_failure_limit: {}\n  server_retry_timeout: {}\n  servers:\n",
        ej.failure_limit > 0,
        ej.failure_limit.max(1),
        ej.retry_timeout.as_millis()
    );
    for s in servers {
        out.push_str(&format!("    - {s}:1\n"));
    }
    out
}

/// A running `nutcracker`; stopped on drop.
pub struct Nutcracker {
    port: u16,
    _child: Child,
}

impl Nutcracker {
    /// Start nutcracker over `servers`, its configuration written to `dir`
    /// (`nutcracker.yml`, the spec's run folder).
    pub async fn start(
        dir: &Path,
        servers: &[String],
        hashing: &str,
        ej: Ejection,
    ) -> Result<Nutcracker, BackendError> {
        let binary = process::NUTCRACKER.find().map_err(unavailable)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        let conf = dir.join("nutcracker.yml");
        let (port, child) = on_free_port("nutcracker", |port| {
            let _ = std::fs::write(&conf, nutcracker_config(port, servers, hashing, ej));
            let stats = process::free_port().unwrap_or(0);
            let mut cmd = Command::new(&binary);
            cmd.arg("-c")
                .arg(&conf)
                .args(["-a", "127.0.0.1", "-s", &stats.to_string(), "-v", "4"]);
            cmd
        })
        .await?;
        Ok(Nutcracker {
            port,
            _child: child,
        })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nutcracker_pool_names_its_servers_and_ejection() {
        let c = nutcracker_config(
            7000,
            &["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            "ketama",
            Ejection {
                failure_limit: 2,
                retry_timeout: Duration::from_secs(30),
            },
        );
        assert!(c.contains("listen: 127.0.0.1:7000\n"), "{c}");
        assert!(
            c.contains(
                "auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 30000\n"
            ),
            "{c}"
        );
        assert!(
            c.ends_with("    - 127.0.0.1:1:1\n    - 127.0.0.1:2:1\n"),
            "{c}"
        );
    }

    /// Whether `p` is installed; a missing one skips the test, except under CI.
    fn installed(p: process::Program) -> bool {
        if p.find().is_ok() {
            return true;
        }
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
        assert!(
            !ci,
            "{} is required when CI is set: {}",
            p.name,
            p.missing()
        );
        eprintln!("skipped: {}", p.missing());
        false
    }

    /// The node of `nodes` that holds `key`, read on each node directly.
    async fn holder(conns: &mut [Conn], key: &str) -> Vec<usize> {
        let mut found = Vec::new();
        for (i, c) in conns.iter_mut().enumerate() {
            if c.get(key).await.unwrap().is_some() {
                found.push(i);
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nutcracker_places_keys_where_perfspecs_ring_does() {
        use super::super::ring::Hashing;
        use super::super::tier::MemcachedTier;
        if !installed(process::MEMCACHED) || !installed(process::NUTCRACKER) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(MemcachedNode::start().await.unwrap());
        }
        let addrs: Vec<String> = nodes.iter().map(MemcachedNode::addr).collect();
        for hashing in [Hashing::Ketama, Hashing::Modula] {
            let ej = Ejection {
                failure_limit: 2,
                retry_timeout: Duration::from_secs(30),
            };
            let proxy = Nutcracker::start(dir.path(), &addrs, hashing.as_str(), ej)
                .await
                .unwrap();
            let mut via = Conn::connect(&proxy.addr()).await.unwrap();
            let mut conns = Vec::new();
            for a in &addrs {
                conns.push(Conn::connect(a).await.unwrap());
            }
            let ring = MemcachedTier::ring_over(hashing, &addrs);
            let mut per_node = [0u32; 3];
            for k in 0..3000 {
                // a key space of its own per distribution (flush_all works in whole seconds)
                let key = format!("perfspec:{}:{k}", hashing.as_str());
                via.set(&key, b"v", 0).await.unwrap();
                let on = holder(&mut conns, &key).await;
                let ours = ring.node_of(key.as_bytes()).unwrap();
                assert_eq!(on, vec![ours], "{hashing:?}: {key}");
                per_node[ours] += 1;
            }
            eprintln!("{hashing:?}: 3000 keys split {per_node:?}");
        }
    }

    #[tokio::test]
    async fn a_node_starts_answers_and_dies_with_its_guard() {
        if !installed(process::MEMCACHED) {
            return;
        }
        let mut n = MemcachedNode::start().await.unwrap();
        let port = n.port();
        answers(port).await.unwrap();
        n.child.kill();
        assert!(answers(port).await.is_err());
        n.restart().await.unwrap();
        answers(port).await.unwrap();
        drop(n);
        assert!(answers(port).await.is_err());
    }
}

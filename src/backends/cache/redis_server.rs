//! A real `redis-server` (Debian package `redis-server`) that perfspec starts for a spec:
//! foreground (`--daemonize no`), no persistence, bound to 127.0.0.1 on a free port, its
//! files in a temp dir. The guard kills it on every exit path (`Drop`), and can kill and
//! restart it on the same port mid-run (`kill_redis` events).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::BackendError;

/// The message when the binary is missing (exit 3).
pub const MISSING: &str = "redis-server not found: install the Debian package redis-server";

/// How long a new server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a free port (another process can take a probed port before the server binds).
const PORT_ATTEMPTS: usize = 5;

/// Find an executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port the OS says is free now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `redis-server` child; killed on drop.
pub struct RedisServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Start a server with extra arguments (e.g. `--maxmemory 64mb`).
    pub async fn start(extra: &[String]) -> Result<RedisServer, BackendError> {
        Self::start_with(|_| Ok(extra.to_vec())).await
    }

    /// Start a server whose extra arguments depend on its port.
    async fn start_with(
        extra: impl Fn(u16) -> std::io::Result<Vec<String>>,
    ) -> Result<RedisServer, BackendError> {
        let binary =
            which("redis-server").ok_or_else(|| BackendError::Unavailable(MISSING.into()))?;
        let dir = tempfile::Builder::new()
            .prefix("perfspec-redis-")
            .tempdir()
            .map_err(|e| {
                BackendError::Unavailable(format!("cannot create a temp dir for redis-server: {e}"))
            })?;
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()
                .map_err(|e| BackendError::Unavailable(format!("cannot find a free port: {e}")))?;
            let args = extra(port)
                .map_err(|e| BackendError::Unavailable(format!("cannot find a free port: {e}")))?;
            match spawn(&binary, dir.path(), port, &args).await {
                Ok(child) => {
                    return Ok(RedisServer {
                        binary,
                        dir,
                        port,
                        args,
                        child: Some(child),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(BackendError::Unavailable(format!(
            "redis-server did not start: {last}"
        )))
    }

    #[cfg(test)]
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Start again on the same port (empty: nothing was persisted).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.child = Some(spawn(&self.binary, self.dir.path(), self.port, &self.args).await?);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The message when `redis-cli` is missing (exit 3).
pub const MISSING_CLI: &str = "redis-cli not found: install the Debian package redis-tools";

/// A local Redis Cluster of real `redis-server --cluster-enabled yes` nodes, created with
/// `redis-cli --cluster create`. Each node's cluster bus gets its own free port
/// (`cluster-port`), so node ports need not stay below 55535. Killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How long a new cluster may take to agree on its slots.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisCluster {
    pub async fn start(masters: u32, replicas: u32) -> Result<RedisCluster, BackendError> {
        which("redis-server").ok_or_else(|| BackendError::Unavailable(MISSING.into()))?;
        let cli =
            which("redis-cli").ok_or_else(|| BackendError::Unavailable(MISSING_CLI.into()))?;
        let count = masters as usize * (1 + replicas as usize);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            nodes.push(
                RedisServer::start_with(|port| {
                    Ok(vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                        "--cluster-port".into(),
                        free_port()?.to_string(),
                        "--cluster-node-timeout".into(),
                        "5000".into(),
                    ])
                })
                .await?,
            );
        }
        let cluster = RedisCluster { nodes };
        let mut cmd = tokio::process::Command::new(cli);
        cmd.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        cmd.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(CLUSTER_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                BackendError::Unavailable(
                    "redis-cli --cluster create did not finish within 30s".into(),
                )
            })?
            .map_err(|e| BackendError::Unavailable(format!("cannot run redis-cli: {e}")))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let last: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(BackendError::Unavailable(format!(
                "redis-cli --cluster create failed: {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        let t0 = Instant::now();
        for n in &cluster.nodes {
            while !cluster_ok(n.port).await {
                if t0.elapsed() > CLUSTER_TIMEOUT {
                    return Err(BackendError::Unavailable(format!(
                        "the Redis Cluster did not reach cluster_state:ok within {}s",
                        CLUSTER_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(cluster)
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// Whether the node on `port` says `cluster_state:ok`.
async fn cluster_ok(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
            .await
            .ok()?;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.ok()?;
        String::from_utf8_lossy(&buf[..n])
            .contains("cluster_state:ok")
            .then_some(())
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// Spawn `redis-server` on `port` with its files in `dir`, and wait until it answers PING.
async fn spawn(binary: &Path, dir: &Path, port: u16, extra: &[String]) -> Result<Child, String> {
    let log_path = dir.join(format!("redis-{port}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("cannot create the log file: {e}"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let tail = || {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&log_path) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    };
    let t0 = Instant::now();
    while t0.elapsed() < READY_TIMEOUT {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}: {}", tail()));
        }
        if ping(port).await {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "no answer to PING on port {port} within {}s: {}",
        READY_TIMEOUT.as_secs(),
        tail()
    ))
}

/// Whether a Redis server answers PING on 127.0.0.1:`port`.
pub async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        buf[..n].starts_with(b"+PONG").then_some(())
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_answers_and_dies_with_its_guard() {
        if which("redis-server").is_none() {
            eprintln!("skipped: redis-server is not on PATH (apt-get install redis-server)");
            return;
        }
        let mut s = RedisServer::start(&[]).await.unwrap();
        let port = s.port();
        assert_ne!(port, 6379);
        assert!(ping(port).await);
        s.kill();
        assert!(!ping(port).await);
        s.restart().await.unwrap();
        assert!(ping(port).await);
        drop(s);
        assert!(!ping(port).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_three_master_cluster_forms_and_dies_with_its_guard() {
        if which("redis-server").is_none() || which("redis-cli").is_none() {
            eprintln!(
                "skipped: redis-server or redis-cli is not on PATH (apt-get install redis-server redis-tools)"
            );
            return;
        }
        let c = RedisCluster::start(3, 0).await.unwrap();
        let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
        assert_eq!(ports.len(), 3);
        for p in &ports {
            assert!(cluster_ok(*p).await);
        }
        drop(c);
        for p in ports {
            assert!(!ping(p).await);
        }
    }

    #[test]
    fn missing_binaries_are_not_found() {
        assert!(which("perfspec-no-such-binary").is_none());
        assert!(which("sh").is_some());
    }
}

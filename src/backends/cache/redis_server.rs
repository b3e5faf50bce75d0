//! A real `redis-server` (Debian package `redis-server`) that perfspec starts for a spec:
//! foreground (`--daemonize no`), no persistence, bound to 127.0.0.1 on a free port, its
//! files in a temp dir. It is a [`crate::process`] child: its own process group, killed if
//! perfspec dies, stopped by its guard on every exit path; it can be killed and restarted on
//! the same port mid-run (`kill_redis` events).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::engine::BackendError;
use crate::process::{self, Child, NotReady, PortTry, Probe, Restartable};

/// How long a new server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a free port (another process can take a probed port before the server binds).
const PORT_ATTEMPTS: usize = 5;

fn unavailable(msg: impl Into<String>) -> BackendError {
    BackendError::Unavailable(msg.into())
}

/// A running `redis-server` child; stopped on drop.
pub struct RedisServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
    child: Restartable,
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
        let binary = process::REDIS_SERVER.find().map_err(unavailable)?;
        let dir = tempfile::Builder::new()
            .prefix("perfspec-redis-")
            .tempdir()
            .map_err(|e| unavailable(format!("cannot create a temp dir for redis-server: {e}")))?;
        let (port, args, child) = process::on_free_port(
            PORT_ATTEMPTS,
            |e| unavailable(format!("cannot find a free port: {e}")),
            |port| {
                let args = extra(port);
                let (binary, dir) = (&binary, dir.path().to_path_buf());
                async move {
                    let args = match args {
                        Ok(a) => a,
                        Err(e) => {
                            return PortTry::Failed(unavailable(format!(
                                "cannot find a free port: {e}"
                            )));
                        }
                    };
                    match spawn(binary, &dir, port, &args).await {
                        Ok(child) => PortTry::Done((port, args, child)),
                        Err(e) => {
                            PortTry::Taken(unavailable(format!("redis-server did not start: {e}")))
                        }
                    }
                }
            },
        )
        .await?;
        Ok(RedisServer {
            binary,
            dir,
            port,
            args,
            child: Restartable::new(child),
        })
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
        self.child.kill();
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Start again on the same port (empty: nothing was persisted).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let child = spawn(&self.binary, self.dir.path(), self.port, &self.args).await?;
        self.child.replace(child);
        Ok(())
    }
}

/// A local Redis Cluster of real `redis-server --cluster-enabled yes` nodes, created with
/// `redis-cli --cluster create`. Each node's cluster bus gets its own free port
/// (`cluster-port`), so node ports need not stay below 55535. Stopped on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How long a new cluster may take to agree on its slots.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisCluster {
    pub async fn start(masters: u32, replicas: u32) -> Result<RedisCluster, BackendError> {
        process::REDIS_SERVER.find().map_err(unavailable)?;
        let cli = process::REDIS_CLI.find().map_err(unavailable)?;
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
                        process::free_port()?.to_string(),
                        "--cluster-node-timeout".into(),
                        "5000".into(),
                    ])
                })
                .await?,
            );
        }
        let cluster = RedisCluster { nodes };
        let mut cmd = Command::new(cli);
        cmd.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        cmd.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let mut create = process::spawn(cmd, None)
            .map_err(|e| unavailable(format!("cannot run redis-cli: {e}")))?;
        let status = create
            .wait_exit(CLUSTER_TIMEOUT)
            .await
            .ok_or_else(|| unavailable("redis-cli --cluster create did not finish within 30s"))?;
        if !status.success() {
            return Err(unavailable(format!(
                "redis-cli --cluster create failed: {}",
                create.tail_lines(3)
            )));
        }
        let t0 = Instant::now();
        for n in &cluster.nodes {
            while !cluster_ok(n.port).await {
                if t0.elapsed() > CLUSTER_TIMEOUT {
                    return Err(unavailable(format!(
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
async fn spawn(
    binary: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    extra: &[String],
) -> Result<Child, String> {
    let mut cmd = Command::new(binary);
    cmd.args([
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
    .args(extra);
    let mut child =
        process::spawn(cmd, None).map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let probe = Probe::custom(move || async move {
        if ping(port).await {
            Ok(())
        } else {
            Err("no answer to PING".to_string())
        }
    });
    let never = CancellationToken::new();
    match process::wait_ready(Some(&mut child), &probe, READY_TIMEOUT, &never).await {
        Ok(_) => Ok(child),
        Err(NotReady::Exited { status, .. }) => {
            Err(format!("it exited with {status}: {}", child.tail_lines(3)))
        }
        Err(_) => Err(format!(
            "no answer to PING on port {port} within {}s: {}",
            READY_TIMEOUT.as_secs(),
            child.tail_lines(3)
        )),
    }
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
        if process::which("redis-server").is_none() {
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
        if process::which("redis-server").is_none() || process::which("redis-cli").is_none() {
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
}

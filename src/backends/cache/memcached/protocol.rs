//! A small async client for memcached's text protocol (`get`, `set`, `delete`, `stats`,
//! `flush_all`) over a tokio `TcpStream`, every call bounded by a timeout, with a pool of
//! idle connections per node. perfspec owns it because no maintained crate fits: `memcache`
//! is synchronous, and `async-memcached` holds one connection without key distribution.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bound on connecting to a node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on one call (request written, answer read).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// The largest value perfspec reads back (memcached's default item limit is 1 MiB).
const MAX_VALUE: usize = 64 << 20;
/// Idle connections kept per node.
const MAX_IDLE: usize = 256;

/// One connection.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

/// A failed call: the text says which node and why.
pub type CallResult<T> = Result<T, String>;

impl Conn {
    pub async fn connect(addr: &str) -> CallResult<Conn> {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(Conn {
                    stream: BufReader::new(s),
                })
            }
            Ok(Err(e)) => Err(format!("memcached {addr}: cannot connect: {e}")),
            Err(_) => Err(format!(
                "memcached {addr}: no connection within {}ms",
                CONNECT_TIMEOUT.as_millis()
            )),
        }
    }

    async fn line(&mut self) -> CallResult<String> {
        let mut line = String::new();
        let n = self
            .stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    async fn send(&mut self, bytes: &[u8]) -> CallResult<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())
    }

    /// `get key`: the value, or `None` on a miss.
    pub async fn get(&mut self, key: &str) -> CallResult<Option<Vec<u8>>> {
        self.send(format!("get {key}\r\n").as_bytes()).await?;
        let head = self.line().await?;
        if head == "END" {
            return Ok(None);
        }
        let parts: Vec<&str> = head.split(' ').collect();
        let len = match parts.as_slice() {
            ["VALUE", k, _flags, len] if *k == key => len
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_VALUE)
                .ok_or_else(|| format!("bad value length in `{head}`"))?,
            _ => return Err(format!("unexpected answer to get: `{head}`")),
        };
        let mut data = vec![0u8; len + 2];
        self.stream
            .read_exact(&mut data)
            .await
            .map_err(|e| e.to_string())?;
        data.truncate(len);
        match self.line().await?.as_str() {
            "END" => Ok(Some(data)),
            other => Err(format!("unexpected end of a get answer: `{other}`")),
        }
    }

    /// `set key 0 exptime len`: stored (memcached answers `STORED`).
    pub async fn set(&mut self, key: &str, value: &[u8], exptime: u64) -> CallResult<()> {
        let mut req = format!("set {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.send(&req).await?;
        match self.line().await?.as_str() {
            "STORED" => Ok(()),
            other => Err(format!("set not stored: `{other}`")),
        }
    }

    /// `delete key` (a missing key is no error).
    pub async fn delete(&mut self, key: &str) -> CallResult<()> {
        self.send(format!("delete {key}\r\n").as_bytes()).await?;
        match self.line().await?.as_str() {
            "DELETED" | "NOT_FOUND" => Ok(()),
            other => Err(format!("unexpected answer to delete: `{other}`")),
        }
    }

    /// `stats`: name → value.
    pub async fn stats(&mut self) -> CallResult<Vec<(String, String)>> {
        self.send(b"stats\r\n").await?;
        let mut out = Vec::new();
        for _ in 0..1000 {
            let l = self.line().await?;
            if l == "END" {
                return Ok(out);
            }
            let mut it = l.splitn(3, ' ');
            if let (Some("STAT"), Some(k), Some(v)) = (it.next(), it.next(), it.next()) {
                out.push((k.to_string(), v.to_string()));
            } else {
                return Err(format!("unexpected stats line `{l}`"));
            }
        }
        Err("stats did not end".into())
    }

    pub async fn flush_all(&mut self) -> CallResult<()> {
        self.send(b"flush_all\r\n").await?;
        match self.line().await?.as_str() {
            "OK" => Ok(()),
            other => Err(format!("unexpected answer to flush_all: `{other}`")),
        }
    }
}

/// One call of the tier.
pub enum Request<'a> {
    Get(&'a str),
    /// Key, value, expiry in seconds (0: never).
    Set(&'a str, &'a [u8], u64),
    Delete(&'a str),
}

/// Idle connections to one node (`host:port`); a call takes one (or connects), and puts it
/// back only when the call succeeded (a failed connection is dropped).
pub struct Pool {
    pub addr: String,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(addr: String) -> Pool {
        Pool {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Run one request on a connection, bounded by [`CALL_TIMEOUT`]: a get answers the
    /// value (or `None`), a set or delete `None`.
    pub async fn call(&self, req: Request<'_>) -> CallResult<Option<Vec<u8>>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) => c,
            None => Conn::connect(&self.addr).await?,
        };
        let run = async {
            match req {
                Request::Get(k) => conn.get(k).await,
                Request::Set(k, v, exp) => conn.set(k, v, exp).await.map(|()| None),
                Request::Delete(k) => conn.delete(k).await.map(|()| None),
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, run).await {
            Ok(Ok(v)) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Ok(v)
            }
            Ok(Err(e)) => Err(format!("memcached {}: {e}", self.addr)),
            Err(_) => Err(format!(
                "memcached {}: no answer within {}ms",
                self.addr,
                CALL_TIMEOUT.as_millis()
            )),
        }
    }

    /// Drop the idle connections (the node died or restarted).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

//! Waiting until a child (or a server perfspec did not start) is ready.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Child;

/// A check that says "ready" (Ok) or why not yet (Err, the last reason).
pub type Check =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What "ready" means.
pub enum Probe {
    /// `GET url` answers 2xx.
    Http(String),
    /// `host:port` accepts a TCP connection.
    Tcp(String, u16),
    /// The child printed its announce line (see [`super::spawn`]).
    Announced,
    /// A check of the caller's.
    Custom(Check),
}

impl Probe {
    /// A [`Probe::Custom`] from an async closure answering `Ok(())` when ready.
    pub fn custom<F, Fut>(f: F) -> Probe
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Probe::Custom(Box::new(
            move || -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> { Box::pin(f()) },
        ))
    }
}

/// Why a child did not become ready.
#[derive(Debug)]
pub enum NotReady {
    /// It exited first; its last output.
    Exited { status: ExitStatus, tail: String },
    /// The timeout passed; the last reason the probe gave.
    TimedOut { last: String },
    /// The run was cancelled.
    Cancelled,
}

/// How often the probe is tried.
const POLL: Duration = Duration::from_millis(50);

/// Try `probe` until it succeeds, `child` (if any) exits, `timeout` passes or `cancel` is
/// cancelled. With [`Probe::Announced`], answers the announced text.
pub async fn wait_ready(
    mut child: Option<&mut Child>,
    probe: &Probe,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Option<String>, NotReady> {
    let client = match probe {
        Probe::Http(_) => reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok(),
        _ => None,
    };
    let t0 = Instant::now();
    loop {
        if let Some(c) = child.as_deref_mut()
            && let Some(status) = c.exit_status()
        {
            // give the output readers a moment to collect the last words
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(NotReady::Exited {
                status,
                tail: c.tail(),
            });
        }
        let attempt = async {
            match probe {
                Probe::Http(url) => http(client.as_ref(), url).await.map(|()| None),
                Probe::Tcp(host, port) => tcp(host, *port).await.map(|()| None),
                Probe::Announced => match child.as_deref().and_then(Child::announced) {
                    Some(a) => Ok(Some(a)),
                    None => Err("no announcement yet".to_string()),
                },
                Probe::Custom(check) => check().await.map(|()| None),
            }
        };
        let outcome = tokio::select! {
            r = attempt => r,
            () = cancel.cancelled() => return Err(NotReady::Cancelled),
        };
        let last = match outcome {
            Ok(a) => return Ok(a),
            Err(e) => e,
        };
        if t0.elapsed() >= timeout {
            return Err(NotReady::TimedOut { last });
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => return Err(NotReady::Cancelled),
        }
    }
}

async fn http(client: Option<&reqwest::Client>, url: &str) -> Result<(), String> {
    let client = client.ok_or("no HTTP client")?;
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("status {}", r.status())),
        Err(e) => Err(error_chain(&e)),
    }
}

async fn tcp(host: &str, port: u16) -> Result<(), String> {
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    }
}

/// The error and its causes, without the URL (which may carry captured values).
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "error reading the response".to_string()
    } else {
        "request failed".to_string()
    }];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[tokio::test]
    async fn an_early_exit_is_seen_before_the_timeout() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo bind: address in use >&2; exit 1"]);
        let mut c = super::super::spawn(cmd, None).unwrap();
        let port = super::super::free_port().unwrap();
        let t0 = Instant::now();
        let r = wait_ready(
            Some(&mut c),
            &Probe::Tcp("127.0.0.1".into(), port),
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await;
        assert!(t0.elapsed() < Duration::from_secs(5));
        match r {
            Err(NotReady::Exited { status, tail }) => {
                assert_eq!(status.code(), Some(1));
                assert!(tail.contains("in use"), "{tail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn tcp_custom_timeout_and_cancel() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let never = CancellationToken::new();
        let tcp = Probe::Tcp("127.0.0.1".into(), port);
        assert!(
            wait_ready(None, &tcp, Duration::from_secs(2), &never)
                .await
                .is_ok()
        );
        drop(l);
        let r = wait_ready(None, &tcp, Duration::from_millis(200), &never).await;
        assert!(matches!(r, Err(NotReady::TimedOut { .. })), "{r:?}");

        let custom = Probe::custom(|| async { Err("not yet".to_string()) });
        match wait_ready(None, &custom, Duration::from_millis(120), &never).await {
            Err(NotReady::TimedOut { last }) => assert_eq!(last, "not yet"),
            other => panic!("{other:?}"),
        }
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        let r = wait_ready(None, &custom, Duration::from_secs(10), &cancelled).await;
        assert!(matches!(r, Err(NotReady::Cancelled)), "{r:?}");
    }

    #[tokio::test]
    async fn an_announced_line_is_handed_back() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'x listening on http://127.0.0.1:1'; sleep 5"]);
        let mut c = super::super::spawn(cmd, Some("listening on ")).unwrap();
        let r = wait_ready(
            Some(&mut c),
            &Probe::Announced,
            Duration::from_secs(5),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(r.as_deref(), Some("http://127.0.0.1:1"));
    }
}

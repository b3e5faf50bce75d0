//! Demo processes (`perfspec demo serve`, `perfspec demo db`) are the perfspec binary itself:
//! how to build their command line, how they announce where they listen, and how they shut
//! down. Starting and stopping them is [`crate::process`]'s job.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{self, Child};

/// The line prefix every demo process prints first on stdout, followed by its base URL.
pub const LISTENING: &str = "listening on ";

/// The `perfspec` binary running now (demo processes are the same binary).
pub fn self_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// `perfspec demo <args…>`, to be started with [`process::spawn`].
pub fn demo_command(args: &[String]) -> std::io::Result<Command> {
    let mut cmd = Command::new(self_exe()?);
    cmd.arg("demo").args(args);
    Ok(cmd)
}

/// Spawn `cmd` (see [`process::spawn`]) and wait (at most `timeout`, blocking this thread)
/// for its `… listening on URL` line; returns the guarded child and the URL.
pub fn spawn_announced(cmd: Command, timeout: Duration) -> std::io::Result<(Child, String)> {
    let mut child = process::spawn(cmd, Some(LISTENING))?;
    let t0 = Instant::now();
    loop {
        if let Some(url) = child.announced() {
            return Ok((child, url));
        }
        if let Some(status) = child.exit_status() {
            return Err(std::io::Error::other(format!(
                "it exited ({status}){}",
                child.tail_note()
            )));
        }
        if t0.elapsed() >= timeout {
            return Err(std::io::Error::other(format!(
                "no `{LISTENING}URL` line within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Print the announcement line on stdout and flush it.
pub fn announce(what: &str, addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "perfspec demo {what} {LISTENING}http://{addr}");
    let _ = out.flush();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

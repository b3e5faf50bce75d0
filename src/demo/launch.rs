//! Starting demo processes (and other children perfspec owns) so they never outlive it:
//! each child gets its own process group (a terminal's Ctrl-C reaches perfspec only, which
//! then stops its children itself), is killed when its parent dies (Linux
//! `PR_SET_PDEATHSIG`), and is held by a guard that kills it on every exit path.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The line prefix every demo process prints first on stdout, followed by its base URL.
pub const LISTENING: &str = "listening on ";

/// Put `cmd` in its own process group and have the kernel kill it when its parent dies.
pub fn configure(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs between fork and exec and only calls the async-signal-safe
    // prctl(2); it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The `perfspec` binary running now (demo processes are the same binary).
pub fn self_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// `perfspec demo <args…>`, configured by [`configure`], stdout piped, stderr inherited.
pub fn demo_command(args: &[String]) -> std::io::Result<Command> {
    let mut cmd = Command::new(self_exe()?);
    cmd.arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    configure(&mut cmd);
    Ok(cmd)
}

/// A child process that is killed (SIGKILL) and reaped when the guard drops.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawn `cmd` and wait (at most `timeout`) for its `… listening on URL` line; returns the
/// guarded child and the URL. The rest of its stdout is drained in the background.
pub fn spawn_announced(
    mut cmd: Command,
    timeout: Duration,
) -> std::io::Result<(ChildGuard, String)> {
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the child has no stdout"))?;
    let guard = ChildGuard::new(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if !sent && let Some(i) = line.find(LISTENING) {
                let _ = tx.send(line[i + LISTENING.len()..].trim().to_string());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(url) => Ok((guard, url)),
        Err(_) => Err(std::io::Error::other(format!(
            "no `{LISTENING}URL` line within {timeout:?}"
        ))),
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

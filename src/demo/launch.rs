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

/// The CPUs this process may run on (its affinity mask), ascending.
#[cfg(target_os = "linux")]
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity(2) writes at most
    // `size_of::<cpu_set_t>()` bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: CPU_ISSET reads the set for indices below CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The `n` CPUs replica `index` is pinned to: consecutive slices of the allowed CPUs, one
/// per replica, wrapping around when replicas × n exceeds them. Fails when fewer than `n`
/// CPUs are allowed at all.
pub fn cpu_slice(n: u32, index: usize) -> std::io::Result<Vec<usize>> {
    let allowed = allowed_cpus()?;
    let n = n as usize;
    if n == 0 || n > allowed.len() {
        return Err(std::io::Error::other(format!(
            "cannot pin to {n} CPU(s): this machine lets perfspec use {}",
            allowed.len()
        )));
    }
    Ok((0..n)
        .map(|k| allowed[(index * n + k) % allowed.len()])
        .collect())
}

/// Pin `cmd` (and every thread it starts) to `cpus`.
#[cfg(target_os = "linux")]
pub fn pin_cpus(cmd: &mut Command, cpus: &[usize]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes indices below
    // CPU_SETSIZE (checked).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::other(format!("CPU {c} is out of range")));
        }
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: the closure runs between fork and exec and only calls sched_setaffinity(2)
    // on a set built before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// CPU affinity is Linux-only here.
#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    Err(std::io::Error::other(
        "CPU pinning (`sweep.cpus`) is only supported on Linux",
    ))
}

/// CPU affinity is Linux-only here.
#[cfg(not(target_os = "linux"))]
pub fn pin_cpus(_cmd: &mut Command, _cpus: &[usize]) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "CPU pinning (`sweep.cpus`) is only supported on Linux",
    ))
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
            // the child leads its own process group (`configure`): whatever it forked goes too
            // SAFETY: kill(2) on the group of a child we own and have not reaped yet.
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn pinned_children_run_on_the_first_allowed_cpu_only() {
        let allowed = allowed_cpus().unwrap();
        assert!(!allowed.is_empty());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "grep Cpus_allowed_list /proc/self/status"])
            .stdout(Stdio::piped());
        pin_cpus(&mut cmd, &cpu_slice(1, 0).unwrap()).unwrap();
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split(':').nth(1).map(str::trim),
            Some(allowed[0].to_string().as_str()),
            "{text}"
        );
        let err = cpu_slice(allowed.len() as u32 + 1, 0).unwrap_err();
        assert!(err.to_string().contains("cannot pin"), "{err}");
        // replicas get consecutive slices, wrapping around
        let n = allowed.len();
        assert_eq!(cpu_slice(1, 1).unwrap(), vec![allowed[1 % n]]);
        assert_eq!(cpu_slice(1, n).unwrap(), vec![allowed[0]]);
    }
}

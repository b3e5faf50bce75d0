//! Spawning a child perfspec owns, and the guard that stops it.
//!
//! Every child is forked by one long-lived thread (the "spawner"). Linux delivers the
//! parent-death signal when the *thread* that forked the child ends, not the process:
//! forking from a tokio blocking-pool thread (which exits after 10 s idle) would kill the
//! child mid-run. The spawner lives as long as the process, so the signal fires exactly
//! when perfspec dies — including `kill -9`.
//!
//! Limits: the signal reaches the direct child only. A child that forks workers of its own
//! (a `sh -c` wrapper, a pre-forking server) is stopped as a group by the guard, but after a
//! `kill -9` of perfspec its workers live on unless they watch their parent; so nginx runs
//! as one process (`master_process off`), and a `command` should `exec` its server.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a child may take to exit after SIGTERM before it is killed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// Bytes of a child's output kept for error messages.
const TAIL_BYTES: usize = 4096;

/// What a child wrote (stdout and stderr interleaved, the last [`TAIL_BYTES`]), and the
/// rest of the first line that contained the announce marker.
#[derive(Default)]
struct Output {
    tail: Mutex<VecDeque<u8>>,
    marker: Option<String>,
    announced: Mutex<Option<String>>,
    /// Streams still being read (stdout and stderr until they close).
    open: std::sync::atomic::AtomicUsize,
}

impl Output {
    fn line(&self, line: &[u8]) {
        {
            let mut t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            t.extend(line);
            let excess = t.len().saturating_sub(TAIL_BYTES);
            t.drain(..excess);
        }
        if let Some(marker) = &self.marker {
            let mut a = self.announced.lock().unwrap_or_else(|e| e.into_inner());
            let text = String::from_utf8_lossy(line);
            if a.is_none()
                && let Some(i) = text.find(marker.as_str())
            {
                *a = Some(text[i + marker.len()..].trim().to_string());
            }
        }
    }
}

/// Copy a child's stream into its output, line by line, until it closes.
fn drain(stream: impl Read + Send + 'static, out: Arc<Output>) {
    use std::sync::atomic::Ordering;
    out.open.fetch_add(1, Ordering::SeqCst);
    let closer = out.clone();
    let started = std::thread::Builder::new()
        .name("perfspec-child-output".into())
        .spawn(move || {
            let mut r = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => out.line(&line),
                }
            }
            out.open.fetch_sub(1, Ordering::SeqCst);
        });
    if started.is_err() {
        closer.open.fetch_sub(1, Ordering::SeqCst);
    }
}

type Job = (Command, mpsc::Sender<std::io::Result<std::process::Child>>);

/// The spawner thread's queue (None when the thread could not be started).
fn spawner() -> Option<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("perfspec-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Fork `cmd` on the spawner thread (or here, should that thread be missing).
fn fork(cmd: Command) -> std::io::Result<std::process::Child> {
    if let Some(q) = spawner() {
        let (tx, rx) = mpsc::channel();
        if q.send((cmd, tx)).is_ok() {
            return rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")));
        }
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    let mut cmd = cmd;
    cmd.spawn()
}

/// Its own process group, and SIGKILL when perfspec dies.
fn configure(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec and only calls the
        // async-signal-safe prctl(2) and getppid(2); it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // perfspec died between the fork and the prctl: do not outlive it
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

/// Start `cmd` as a child perfspec owns: stdin closed, stdout and stderr kept as a tail,
/// its own process group, killed when perfspec dies. With `announce`, the first output
/// line containing it is remembered (see [`Child::announced`]).
pub fn spawn(cmd: Command, announce: Option<&str>) -> std::io::Result<Child> {
    start(cmd, announce, None)
}

/// [`spawn`] with stdout written to `stdout` in full (a command whose output is a document,
/// not a log); the tail then holds stderr only.
pub fn spawn_to_file(cmd: Command, stdout: std::fs::File) -> std::io::Result<Child> {
    start(cmd, None, Some(stdout))
}

fn start(
    mut cmd: Command,
    announce: Option<&str>,
    stdout: Option<std::fs::File>,
) -> std::io::Result<Child> {
    configure(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(stdout.map_or_else(Stdio::piped, Stdio::from))
        .stderr(Stdio::piped());
    let mut child = fork(cmd)?;
    let output = Arc::new(Output {
        marker: announce.map(str::to_string),
        ..Output::default()
    });
    if let Some(o) = child.stdout.take() {
        drain(o, output.clone());
    }
    if let Some(e) = child.stderr.take() {
        drain(e, output.clone());
    }
    Ok(Child {
        pid: child.id(),
        child: Some(child),
        output,
        grace: DEFAULT_GRACE,
    })
}

/// Send `sig` to the process group led by `pid` (a child started by [`spawn`] leads its
/// own): a command that forked workers is signalled as a whole.
pub fn signal_group(pid: u32, sig: libc::c_int) {
    if pid == 0 {
        return;
    }
    // SAFETY: kill(2) on the process group of a child we own.
    unsafe { libc::kill(-(pid as libc::pid_t), sig) };
}

/// A running child. Dropping it stops it: SIGTERM to its group, up to the grace period for
/// it to exit, SIGKILL to whatever of the group is left, and the child reaped.
pub struct Child {
    child: Option<std::process::Child>,
    pid: u32,
    output: Arc<Output>,
    grace: Duration,
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the child has exited (it is then reaped).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// What the child wrote last (up to 4 KiB), trimmed.
    pub fn tail(&self) -> String {
        let t = self.output.tail.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = t.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).trim().to_string()
    }

    /// The last `n` lines of the tail joined by ` | `.
    pub fn tail_lines(&self, n: usize) -> String {
        let text = self.tail();
        let lines: Vec<&str> = text.lines().rev().take(n).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// `; its last output: …`, or nothing when it wrote nothing (for error messages).
    pub fn tail_note(&self) -> String {
        let t = self.tail();
        if t.is_empty() {
            t
        } else {
            format!("; its last output: {t}")
        }
    }

    /// Wait (at most `timeout`) until everything the child wrote has been read: after it
    /// exited, its last lines may still be in the pipe.
    pub async fn drained(&self, timeout: Duration) {
        let t0 = Instant::now();
        while self.output.open.load(std::sync::atomic::Ordering::SeqCst) > 0
            && t0.elapsed() < timeout
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// What followed the announce marker on its first line that had one.
    pub fn announced(&self) -> Option<String> {
        self.output
            .announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wait (at most `timeout`) for the child to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.exit_status() {
                return Some(s);
            }
            if t0.elapsed() >= timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kill the group now (SIGKILL), as a crash would, and reap the child.
    pub fn kill_now(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                signal_group(self.pid, libc::SIGKILL);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The stop policy: SIGTERM to the group (and SIGCONT, should it be stopped), up to the
    /// grace period for the child to exit, then SIGKILL to the group, and reap.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if matches!(c.try_wait(), Ok(None)) {
            signal_group(self.pid, libc::SIGTERM);
            signal_group(self.pid, libc::SIGCONT);
            let t0 = Instant::now();
            // a zombie keeps its pid (and group id) reserved until reaped: stragglers of
            // the group can still be killed safely below
            while !is_zombie_or_gone(self.pid) && t0.elapsed() < self.grace {
                std::thread::sleep(Duration::from_millis(10));
            }
            signal_group(self.pid, libc::SIGKILL);
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `/proc/PID` is gone or says the process is a zombie.
fn is_zombie_or_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        !is_zombie_or_gone(pid)
    }

    #[test]
    fn output_keeps_the_tail_and_the_announced_line() {
        let o = Output {
            marker: Some("listening on ".into()),
            ..Output::default()
        };
        o.line(b"starting\n");
        o.line(b"perfspec demo shop listening on http://127.0.0.1:5\n");
        o.line(b"x listening on later\n");
        assert_eq!(
            o.announced.lock().unwrap().as_deref(),
            Some("http://127.0.0.1:5")
        );
        for _ in 0..TAIL_BYTES {
            o.line(b"yy\n");
        }
        assert_eq!(o.tail.lock().unwrap().len(), TAIL_BYTES);
    }

    #[test]
    fn a_child_leads_its_own_group_and_its_output_is_kept() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hello; echo oops >&2; exit 3"]);
        let mut c = spawn(cmd, None).unwrap();
        let pid = c.pid();
        let t0 = Instant::now();
        while c.exit_status().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(c.exit_status().and_then(|s| s.code()), Some(3));
        std::thread::sleep(Duration::from_millis(50));
        let t = c.tail();
        assert!(t.contains("hello") && t.contains("oops"), "{t}");
        let last = c.tail_lines(1);
        assert!(last == "hello" || last == "oops", "{last}");
        assert!(c.tail_note().starts_with("; its last output: "));
        assert!(pid > 0);
    }

    #[test]
    fn the_guard_stops_a_process_group_that_ignores_sigterm() {
        // a shell that ignores SIGTERM, with a child of its own in the same group
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; sleep 30 & echo $!; wait"]);
        let mut c = spawn(cmd, None).unwrap();
        c.grace = Duration::from_millis(200);
        let t0 = Instant::now();
        while c.tail().is_empty() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let grandchild: u32 = c.tail().parse().unwrap();
        // SAFETY: getpgid(2) only reads
        let pgid = unsafe { libc::getpgid(grandchild as libc::pid_t) };
        assert_eq!(pgid as u32, c.pid(), "the child leads its own group");
        let pid = c.pid();
        let t0 = Instant::now();
        drop(c);
        assert!(t0.elapsed() >= Duration::from_millis(200));
        assert!(!alive(pid));
        let t0 = Instant::now();
        // the grandchild is not ours to reap: init does, a moment later
        while alive(grandchild) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(grandchild));
    }

    #[test]
    fn a_child_that_honours_sigterm_stops_within_the_grace() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut c = spawn(cmd, None).unwrap();
        let pid = c.pid();
        let t0 = Instant::now();
        c.stop();
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert!(!alive(pid));
    }
}

/// A server child that can be killed mid-run and started again in its place (a Redis or
/// memcached node): empty after [`Restartable::kill`], stopped (SIGTERM, grace, SIGKILL)
/// when dropped.
#[derive(Default)]
pub struct Restartable(Option<Child>);

impl Restartable {
    pub fn new(child: Child) -> Restartable {
        Restartable(Some(child))
    }

    /// Kill it now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill_now();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.0.as_mut().is_some_and(|c| c.exit_status().is_none())
    }

    /// The child started in its place (the old one killed first).
    pub fn replace(&mut self, child: Child) {
        self.kill();
        self.0 = Some(child);
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.stop();
        }
    }
}

//! CPU affinity for the processes perfspec starts (`sweep.cpus`: replicas pinned to slices).

use std::process::Command;

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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::process::Stdio;

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

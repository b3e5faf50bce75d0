//! A real nginx in front of the replicas: the config is rendered from
//! `templates/nginx.conf.j2` into a temp dir (pid, logs and temp paths included), nginx runs
//! as a foreground child (`daemon off;`) on a free loopback port and is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::demo::launch::{self, ChildGuard};
use crate::spec::scaling::{Balancer, Method};

const TEMPLATE: &str = include_str!("../../../templates/nginx.conf.j2");

/// Seconds nginx waits for a replica's answer before trying the next one.
const READ_TIMEOUT: f64 = 0.5;

/// The nginx binary: `PERFSPEC_NGINX` if set, else on PATH or in the usual Debian place.
pub fn find() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PERFSPEC_NGINX") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "nginx not found: PERFSPEC_NGINX names `{}`, which is not a file (install the Debian package nginx-light, or point PERFSPEC_NGINX at the nginx binary)",
                p.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "nginx not found (on PATH, in /usr/sbin or /usr/local/sbin): install the Debian package nginx-light, set PERFSPEC_NGINX to the binary, or use `balancer.kind = \"client\"`".to_string()
        })
}

/// A running nginx; dropping it stops nginx (master and workers: its whole process group)
/// and removes its directory.
pub struct Nginx {
    pub url: String,
    guard: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(pid) = self.guard.id() else { return };
        // SIGTERM is nginx's fast shutdown: the master stops and reaps its workers. Wait for
        // the master to exit (a zombie until the guard reaps it), at most one second.
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let stat = format!("/proc/{pid}/stat");
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(1) {
            let exited = std::fs::read_to_string(&stat)
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true);
            if exited {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // whatever is left of the group (the master leads it, see `launch::configure`); the
        // guard then reaps the master
        // SAFETY: as above, on the child's own process group.
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
    }
}

/// Render the config for these replica URLs.
pub fn render(prefix: &Path, listen: u16, urls: &[String], b: &Balancer) -> Result<String, String> {
    let ports: Vec<String> = urls
        .iter()
        .filter_map(|u| u.rsplit(':').next().map(str::to_string))
        .collect();
    let mut env = minijinja::Environment::new();
    env.add_template("nginx.conf", TEMPLATE)
        .map_err(|e| format!("nginx template: {e}"))?;
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    env.get_template("nginx.conf")
        .and_then(|t| {
            t.render(minijinja::context! {
                prefix => prefix.display().to_string(),
                root => root,
                method => if b.method == Some(Method::LeastConn) { "least_conn" } else { "round_robin" },
                ports => ports,
                max_fails => b.max_fails.unwrap_or(3),
                fail_timeout => b.fail_timeout.map_or(2.0, |d| d.0).max(1.0).round() as u64,
                retries => b.retries.unwrap_or(true),
                listen => listen,
                read_timeout_ms => (READ_TIMEOUT * 1000.0).round() as u64,
            })
        })
        .map_err(|e| format!("nginx template: {e}"))
}

/// Start nginx in a fresh temp dir on a free loopback port.
pub fn start(bin: &Path, urls: &[String], b: &Balancer) -> Result<Nginx, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("nginx temp dir: {e}"))?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for nginx: {e}"))?
        .port();
    let conf = render(dir.path(), listen, urls, b)?;
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| format!("write nginx.conf: {e}"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    launch::configure(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start nginx ({}): {e}", bin.display()))?;
    // nginx either binds within a moment or exits with an error
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {}", log.trim()));
        }
        if std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok() {
            break;
        }
        if t0.elapsed() > std::time::Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("nginx did not listen within 5s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(Nginx {
        url: format!("http://127.0.0.1:{listen}"),
        guard: ChildGuard::new(child),
        _dir: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::decode::Duration;
    use crate::spec::scaling::BalancerKind;

    #[test]
    fn the_config_has_the_upstreams_checks_and_retries() {
        let b = Balancer {
            kind: BalancerKind::Nginx,
            method: Some(Method::LeastConn),
            retries: None,
            max_fails: Some(2),
            fail_timeout: Some(Duration(3.0)),
            broken: Default::default(),
        };
        let urls = [
            "http://127.0.0.1:4001".to_string(),
            "http://127.0.0.1:4002".into(),
        ];
        let conf = render(Path::new("/tmp/x"), 9000, &urls, &b).unwrap();
        assert!(conf.contains("least_conn;"), "{conf}");
        assert!(
            conf.contains("server 127.0.0.1:4001 max_fails=2 fail_timeout=3s;"),
            "{conf}"
        );
        assert!(conf.contains("server 127.0.0.1:4002 "), "{conf}");
        assert!(
            conf.contains("proxy_next_upstream error timeout http_502 http_503;"),
            "{conf}"
        );
        assert!(conf.contains("listen 127.0.0.1:9000;"), "{conf}");
        assert!(conf.contains("pid /tmp/x/nginx.pid;"), "{conf}");
        let plain = Balancer {
            method: None,
            retries: Some(false),
            ..b
        };
        let conf = render(Path::new("/tmp/x"), 9000, &urls, &plain).unwrap();
        assert!(
            !conf.contains("least_conn;") && conf.contains("proxy_next_upstream off;"),
            "{conf}"
        );
    }
}

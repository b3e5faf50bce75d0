//! A real nginx in front of the replicas: the config is rendered from
//! `templates/nginx.conf.j2` into a temp dir (pid, logs and temp paths included), nginx runs
//! as one foreground process (`daemon off;`, `master_process off;`: no worker that could
//! outlive perfspec) on a free loopback port and is stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::process::{self, Child, NotReady, Probe};
use crate::spec::scaling::{Balancer, Method};

const TEMPLATE: &str = include_str!("../../../templates/nginx.conf.j2");

/// Seconds nginx waits for a replica's answer before trying the next one.
const READ_TIMEOUT: f64 = 0.5;
/// How long nginx may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

/// The nginx binary: `PERFSPEC_NGINX` if set, else on PATH or in the usual Debian place.
pub fn find() -> Result<PathBuf, String> {
    process::NGINX.find().map_err(|e| {
        if std::env::var_os("PERFSPEC_NGINX").is_some() {
            e
        } else {
            format!("{e}, or use `balancer.kind = \"client\"`")
        }
    })
}

/// A running nginx; dropping it stops nginx (SIGTERM is its fast shutdown) and then removes
/// its directory.
pub struct Nginx {
    pub url: String,
    /// Held for its `Drop` (the stop policy), before the directory goes.
    _child: Child,
    _dir: tempfile::TempDir,
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
pub async fn start(bin: &Path, urls: &[String], b: &Balancer) -> Result<Nginx, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("nginx temp dir: {e}"))?;
    let listen = process::free_port().map_err(|e| format!("no free port for nginx: {e}"))?;
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
        .args(["-g", "daemon off;"]);
    let mut child = process::spawn(cmd, None)
        .map_err(|e| format!("cannot start nginx ({}): {e}", bin.display()))?;
    // nginx either binds within a moment or exits with an error
    let probe = Probe::Tcp("127.0.0.1".into(), listen);
    let never = CancellationToken::new();
    match process::wait_ready(Some(&mut child), &probe, LISTEN_TIMEOUT, &never).await {
        Ok(_) => Ok(Nginx {
            url: format!("http://127.0.0.1:{listen}"),
            _child: child,
            _dir: dir,
        }),
        Err(NotReady::Exited { status, .. }) => {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            Err(format!("nginx exited ({status}): {}", log.trim()))
        }
        Err(_) => Err("nginx did not listen within 5s".into()),
    }
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
        assert!(conf.contains("master_process off;"), "{conf}");
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

//! Finding the programs perfspec starts, with an install hint when one is missing.

use std::path::{Path, PathBuf};

/// A program perfspec may need, where to look for it and how to get it.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The binary's name.
    pub name: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    /// An environment variable that names the binary, overriding the search.
    pub env: Option<&'static str>,
    /// Folders searched after `PATH` (daemons live in `sbin`, often not on a user's PATH).
    pub dirs: &'static [&'static str],
}

/// `redis-server`, for caches with `spawn = true` and Redis Cluster nodes.
pub const REDIS_SERVER: Program = Program {
    name: "redis-server",
    package: "redis-server",
    env: None,
    dirs: &[],
};

/// `redis-cli`, which creates a local Redis Cluster.
pub const REDIS_CLI: Program = Program {
    name: "redis-cli",
    package: "redis-tools",
    env: None,
    dirs: &[],
};

/// `memcached`, for memcached tiers with `spawn = true`.
pub const MEMCACHED: Program = Program {
    name: "memcached",
    package: "memcached",
    env: None,
    dirs: &["/usr/bin", "/usr/local/bin"],
};

/// `nutcracker` (twemproxy), the proxy of a memcached tier with `proxy = "twemproxy"`.
pub const NUTCRACKER: Program = Program {
    name: "nutcracker",
    package: "nutcracker",
    env: None,
    dirs: &["/usr/sbin", "/usr/local/sbin"],
};

/// nginx, the balancer of `balancer.kind = "nginx"`.
pub const NGINX: Program = Program {
    name: "nginx",
    package: "nginx-light",
    env: Some("PERFSPEC_NGINX"),
    dirs: &["/usr/sbin", "/usr/local/sbin"],
};

impl Program {
    /// The binary: the environment override if set (it must name a file), else the first
    /// executable on `PATH` or in `dirs`. The error says how to install it.
    pub fn find(&self) -> Result<PathBuf, String> {
        if let Some(var) = self.env
            && let Some(p) = std::env::var_os(var)
        {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{} not found: {var} names `{}`, which is not a file (install the Debian package {}, or point {var} at the {} binary)",
                    self.name,
                    p.display(),
                    self.package,
                    self.name
                ))
            };
        }
        let extra = self.dirs.iter().map(PathBuf::from);
        search(self.name, extra).ok_or_else(|| self.missing())
    }

    /// The message when the program is not installed.
    pub fn missing(&self) -> String {
        let place = if self.dirs.is_empty() {
            String::new()
        } else {
            format!(" (on PATH, in {})", self.dirs.join(" or "))
        };
        let set = self
            .env
            .map(|v| format!(", or set {v} to the binary"))
            .unwrap_or_default();
        format!(
            "{} not found{place}: install the Debian package {}{set}",
            self.name, self.package
        )
    }
}

/// An executable named `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    search(name, std::iter::empty())
}

fn search(name: &str, extra: impl Iterator<Item = PathBuf>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOPE: Program = Program {
        name: "perfspec-no-such-binary",
        package: "perfspec-nothing",
        env: None,
        dirs: &[],
    };

    #[test]
    fn a_missing_program_names_its_package_and_override() {
        assert!(which("perfspec-no-such-binary").is_none());
        assert!(which("sh").is_some());
        assert_eq!(
            NOPE.find().unwrap_err(),
            "perfspec-no-such-binary not found: install the Debian package perfspec-nothing"
        );
        let sbin = Program {
            dirs: &["/nonexistent/sbin"],
            env: Some("PERFSPEC_TEST_NO_SUCH_VAR"),
            ..NOPE
        };
        let msg = sbin.find().unwrap_err();
        assert!(
            msg.contains("not found (on PATH, in /nonexistent/sbin): install"),
            "{msg}"
        );
        assert!(
            msg.ends_with("or set PERFSPEC_TEST_NO_SUCH_VAR to the binary"),
            "{msg}"
        );
        assert_eq!(
            REDIS_CLI.missing(),
            "redis-cli not found: install the Debian package redis-tools"
        );
        assert!(
            NGINX
                .missing()
                .contains("nginx-light, or set PERFSPEC_NGINX to the binary")
        );
        assert_eq!(
            REDIS_SERVER.missing(),
            "redis-server not found: install the Debian package redis-server"
        );
    }

    #[test]
    fn programs_are_found_on_path() {
        let sh = Program { name: "sh", ..NOPE };
        assert!(sh.find().unwrap().ends_with("sh"));
    }
}

//! `results.json`: the versioned record of a run — everything a report needs without the
//! spec files. Checked against `schemas/results.schema.json` in the test suite.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::metrics::Measurements;
use crate::engine::verdict::{SloOutcome, Status};

/// Bumped on any incompatible change of this file's shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Results {
    pub schema_version: u32,
    pub tool: Tool,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub git: Option<GitInfo>,
    pub host: Host,
    /// The command line, with `--set` values kept (they are not secrets by contract).
    pub command: Vec<String>,
    /// The baseline results file the deltas refer to.
    pub baseline: Option<String>,
    /// The run was interrupted (Ctrl-C or `--timeout`); later specs did not run.
    pub interrupted: bool,
    pub exit_code: i32,
    /// `--shard K/N`: this run is one shard of a spec's load (`perfspec merge` joins them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::engine::shard::ShardInfo>,
    pub specs: Vec<SpecResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Host {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub memory_bytes: Option<u64>,
}

/// What happened to one spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SpecStatus {
    /// Every SLO passed.
    Pass,
    /// Every `fail` SLO passed; some warned.
    Warn,
    /// A `fail` SLO failed.
    Fail,
    /// The backend could not start: no verdict.
    Error,
    /// Interrupted before or during the run; SLOs judged on what was measured.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SpecResult {
    pub name: String,
    pub kind: crate::spec::catalog::Kind,
    pub backend: String,
    pub description: Option<String>,
    /// The spec file as given on the command line (relative to the working directory).
    pub file: String,
    /// SHA-256 of the spec file.
    pub hash: String,
    /// The spec after `--set` overrides; `${env:…}` references are kept unresolved.
    pub resolved: serde_json::Value,
    pub status: SpecStatus,
    /// Why the spec could not run or stopped early.
    pub error: Option<String>,
    pub started_at: String,
    pub duration_s: f64,
    /// The spec hit its `max_duration` (its SLOs are judged on what was measured).
    pub timed_out: bool,
    /// The spec's own folder for artifacts (e.g. quantized model files), relative to
    /// `--out`; absent when the spec wrote none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_dir: Option<String>,
    /// With `repeat = N` (N > 1), the pooled measurements of every repeat (see
    /// `repeats`); otherwise the one run's.
    pub measurements: Option<Measurements>,
    /// Each repeat's own measurements, in order; empty without `repeat`. An interrupted run
    /// keeps the repeats it finished and what the interrupted one measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<crate::engine::repeats::RepeatRun>,
    pub slos: Vec<SloOutcome>,
}

impl SpecResult {
    /// A result for `spec` before it ran: no measurements, no verdicts yet.
    pub fn new(spec: &crate::spec::Spec, started_at: String) -> SpecResult {
        SpecResult {
            name: spec.name.clone(),
            kind: spec.kind,
            backend: spec.backend.clone(),
            description: spec.description.clone(),
            file: spec.file.name.clone(),
            hash: spec.hash.clone(),
            resolved: spec.resolved.clone(),
            status: SpecStatus::Pass,
            error: None,
            started_at,
            duration_s: 0.0,
            timed_out: false,
            artifacts_dir: None,
            measurements: None,
            repeats: Vec::new(),
            slos: Vec::new(),
        }
    }

    /// Status from SLO outcomes and the time limit: a spec that exceeded its
    /// `max_duration` (or `--timeout`) fails even when every SLO held on what was measured.
    pub fn verdict(slos: &[SloOutcome], timed_out: bool) -> SpecStatus {
        match SpecResult::status_from(slos) {
            SpecStatus::Pass | SpecStatus::Warn if timed_out => SpecStatus::Fail,
            s => s,
        }
    }

    /// Status from SLO outcomes.
    pub fn status_from(slos: &[SloOutcome]) -> SpecStatus {
        if slos.iter().any(|s| s.status == Status::Fail) {
            SpecStatus::Fail
        } else if slos.iter().any(|s| s.status == Status::Warn) {
            SpecStatus::Warn
        } else {
            SpecStatus::Pass
        }
    }
}

/// Mode of the files perfspec writes: readable by others, like files other tools write
/// (a temp file alone would be 0600).
#[cfg(unix)]
const FILE_MODE: u32 = 0o644;
/// Mode of the folders perfspec creates.
#[cfg(unix)]
const DIR_MODE: u32 = 0o755;

/// `create_dir_all`, with the folders it creates set to 0755 whatever the umask.
pub fn create_dir_public(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    for d in missing {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Write a file atomically: a temp file in the same folder, then rename. The file is 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir_public(dir)?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(FILE_MODE));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    // the mode given at creation is masked by the umask: set it as meant
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Results {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(path, &json)
    }

    /// Read a results file, refusing unknown schema versions.
    pub fn read(path: &Path) -> Result<Results, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?;
        match v.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "`{}` has schema_version {n}; this perfspec reads {SCHEMA_VERSION}",
                    path.display()
                ));
            }
            None => {
                return Err(format!(
                    "`{}` is not a perfspec results file (no schema_version)",
                    path.display()
                ));
            }
        }
        serde_json::from_value(v)
            .map_err(|e| format!("`{}` is not a valid results file: {e}", path.display()))
    }

    pub fn spec(&self, name: &str) -> Option<&SpecResult> {
        self.specs.iter().find(|s| s.name == name)
    }
}

/// Facts about this machine.
pub fn host() -> Host {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    Host {
        hostname,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
    }
}

/// The git commit of the repository holding `dir`, if any.
pub fn git_info(dir: &Path) -> Option<GitInfo> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(GitInfo { commit, dirty })
}

/// Now as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Secrets shorter than this are not redacted (they would mangle every message).
pub const MIN_SECRET_LEN: usize = 3;

/// Replace every secret (values from `${env:…}`) in a string, longest first so that a
/// secret inside a longer one is covered by the longer one.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

/// [`redact`] on every string and object key of a JSON value.
pub fn redact_json(value: &mut serde_json::Value, secrets: &[String]) {
    use serde_json::Value as J;
    match value {
        J::String(s) => *s = redact(s, secrets),
        J::Array(items) => items.iter_mut().for_each(|v| redact_json(v, secrets)),
        J::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v, secrets);
                map.insert(redact(&k, secrets), v);
            }
        }
        _ => {}
    }
}

impl SpecResult {
    /// The result with every secret value replaced by `[redacted]`, wherever a backend put
    /// it (labels, notes, error samples, monitor messages): the last line of defence behind
    /// backends that keep `${env:…}` references in what they name.
    pub fn redacted(self, secrets: &[String]) -> SpecResult {
        let live: Vec<String> = secrets
            .iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .cloned()
            .collect();
        let Ok(text) = serde_json::to_string(&self) else {
            return self;
        };
        if !live.iter().any(|s| text.contains(s.as_str())) {
            return self;
        }
        let redact_all = |r: &SpecResult| -> Option<SpecResult> {
            let mut value: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(r).ok()?).ok()?;
            redact_json(&mut value, &live);
            serde_json::from_value(value).ok()
        };
        if let Some(r) = redact_all(&self) {
            return r;
        }
        // a value that does not survive the JSON round trip: keep the verdicts, drop the
        // measurements rather than let the secret through
        let mut bare = self;
        bare.measurements = None;
        bare.error = Some("measurements dropped: they held a secret value".into());
        redact_all(&bare).unwrap_or_else(|| {
            bare.slos.clear();
            bare.description = None;
            bare.name = redact(&bare.name, &live);
            bare
        })
    }
}

/// The JSON Schema of `results.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Results);
    serde_json::to_value(schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_json_replaces_secrets_in_strings_and_keys_longest_first() {
        let secrets = vec!["abc".to_string(), "xxabcxx".to_string(), "no".to_string()];
        let mut v = serde_json::json!({
            "step=GET /p?t=xxabcxx": ["abc", 3, {"k": "say no to abc"}],
        });
        redact_json(&mut v, &secrets);
        assert_eq!(
            v,
            serde_json::json!({
                "step=GET /p?t=[redacted]": ["[redacted]", 3, {"k": "say no to [redacted]"}],
            })
        );
    }
}

//! `perfspec init`: a commented starter spec that validates and runs, for a URL of the
//! user's service or perfspec's embedded demo shop. It never overwrites a file unless
//! `--force` is given.

use std::io::Write;
use std::path::Path;

use crate::exit;

/// The starter load spec; `{TARGET}` and `{REQUEST}` are filled in.
const LOAD_TEMPLATE: &str = r#"# A first perfspec load test. Check it with `perfspec validate {FILE}`, run it with
# `perfspec run {FILE}` (add `--smoke` for a 1-second-per-stage check), then open
# perfspec-out/report.html. Reference: `perfspec schema`, README.md.
kind = "load"
name = "first-test"
description = "Starter load test written by perfspec init"
# The whole run is stopped (with what was measured) after this long.
max_duration = "2m"
# SLOs gate the run: any failing one makes `perfspec run` exit 1. Thresholds carry their
# units (ms, s, %, /s). Restrict an SLO with labels: `p95(latency{step=home}) < 300ms`,
# `p99(latency{journey=browse}) < 1s`; or to a stage: `{ expr = "…", phase = "steady" }`.
slo = [
  "p95(latency) < 500ms",
  "error_rate < 1%",
  { expr = "p99(latency) < 1s", severity = "warn", phase = "steady" },
]

[target]
# A running service (loopback or your own test host). Alternatives:
#   embedded = "shop"                                    perfspec's demo shop
#   command = ["./my-app", "--port", "{port}"]           perfspec starts and stops it
{TARGET}

[load]
# closed model: a fixed number of virtual users, each waits for its answer. Use
# `model = "open"` with rates such as `ramp_to = "20/s"` to hold an arrival rate instead.
model = "closed"
stages = [
  { ramp_to = 2, over = "3s" },
  { hold = 2, for = "5s", label = "steady" },
]

# A journey is a sequence of requests a user makes; several journeys are picked by `weight`.
# Templates: `{{ random(1, 50) }}`, `{{ uuid() }}`, `{{ iteration }}`, CSV data with
# `[data.users] csv = "users.csv"` and `{{ users.name }}`, captured values `{{ token }}`.
[[journey]]
name = "browse"
think_time = "100ms..300ms"
steps = [
  { name = "home", request = "{REQUEST}", expect = { status = 200 } },
]
"#;

/// Arguments of `perfspec init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The service to test, e.g. `http://127.0.0.1:8080/health` (its path is the first request).
    #[arg(long, conflicts_with = "kind")]
    pub url: Option<String>,
    /// Kind of spec. Only `load` has a starter; the other kinds start from an example in `specs/`.
    #[arg(long, default_value = "load")]
    pub kind: String,
    /// Where to write the spec.
    #[arg(long, default_value = "perfspec.toml")]
    pub out: std::path::PathBuf,
    /// Overwrite `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Write the starter spec; the exit code.
pub fn main(args: &InitArgs) -> i32 {
    let text = match starter(args) {
        Ok(t) => t,
        Err(message) => {
            eprintln!("perfspec: {message}");
            return exit::INVALID;
        }
    };
    match write(&args.out, &text, args.force) {
        Ok(()) => {
            let f = args.out.display();
            eprintln!("perfspec: wrote {f}; next: `perfspec validate {f}` and `perfspec run {f}`");
            exit::SUCCESS
        }
        Err(message) => {
            eprintln!("perfspec: {message}");
            exit::INVALID
        }
    }
}

/// The spec's text for `args`, or why there is none.
fn starter(args: &InitArgs) -> Result<String, String> {
    let example = match args.kind.as_str() {
        "load" => None,
        "cache" => Some("specs/catalog-cache.yaml"),
        "scaling" => Some("specs/web-tier-threads.toml"),
        "quantize" => Some("specs/digits-int8.toml"),
        other => {
            return Err(format!(
                "unknown kind `{other}`: kinds are load, cache, scaling and quantize"
            ));
        }
    };
    if let Some(example) = example {
        return Err(format!(
            "`init` writes load specs only (unsupported for `{}`): copy {example} from the perfspec repository as a start",
            args.kind
        ));
    }
    let (target, request) = match &args.url {
        None => (
            "embedded = \"shop\"".to_string(),
            "GET /products".to_string(),
        ),
        Some(url) => {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| format!("`--url {url}` is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "`--url {url}`: write an http(s) URL such as http://127.0.0.1:8080"
                ));
            }
            let mut base = parsed.clone();
            base.set_path("");
            base.set_query(None);
            let mut path = parsed.path().to_string();
            if let Some(q) = parsed.query() {
                path = format!("{path}?{q}");
            }
            let base = base.as_str().trim_end_matches('/').to_string();
            (format!("url = \"{base}\""), format!("GET {path}"))
        }
    };
    let file = args.out.display().to_string();
    Ok(LOAD_TEMPLATE
        .replace("{TARGET}", &target)
        .replace("{REQUEST}", &request)
        .replace("{FILE}", &file))
}

/// Write `text` to a new file at `path` (mode 0644); an existing file only with `force`.
fn write(path: &Path, text: &str, force: bool) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "`{}` exists: not overwritten (pass `--force` to replace it, or `--out` another file)",
                path.display()
            )
        } else {
            format!("cannot write `{}`: {e}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

//! Finding spec files, reading them, applying `--set` overrides and decoding them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;

use super::diagnostic::Diagnostic;
use super::model::{Body, Spec, decode_spec};
use super::node::{Key, Node, Value};
use super::source::{Format, SourceFile, Span};
use crate::spec::objective::{Slo, SloOrigin};

/// Spec files larger than this are rejected before parsing.
pub const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;

/// `--set path=value`, applied to every selected spec that has the path's first key.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
        let path = path.trim();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!(
                "`{path}` is not a dotted key path such as `load.max_in_flight`"
            ));
        }
        Ok(Override {
            path: path.to_string(),
            value: value.to_string(),
        })
    }
}

/// Expand paths into spec files: files as given; directories to their `*.toml`, `*.yaml`
/// and `*.yml` files (not recursive: `specs/services/` is a folder of its own), sorted.
#[expect(
    clippy::result_large_err,
    reason = "one usage diagnostic per command, never on a hot path"
)]
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            Diagnostic::error("usage::path", format!("cannot read `{}`: {e}", p.display()))
                .hint("pass spec files or folders that hold them (default `specs/`)")
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|e| {
                Diagnostic::error("usage::path", format!("cannot list `{}`: {e}", p.display()))
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && Format::from_path(f).is_some())
                .collect();
            files.sort();
            out.extend(files);
        } else if Format::from_path(p).is_some() {
            out.push(p.clone());
        } else {
            return Err(Diagnostic::error(
                "usage::path",
                format!("`{}` is not a spec file", p.display()),
            )
            .hint("spec files end in .toml, .yaml or .yml"));
        }
    }
    out.dedup();
    Ok(out)
}

/// Read a file as UTF-8, with a located diagnostic for bad bytes.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(
            "spec::io",
            format!("cannot read `{}`: {e}", path.display()),
        )]
    })?;
    if bytes.len() > MAX_SPEC_BYTES {
        let src = SourceFile::new(path, String::new());
        return Err(vec![
            Diagnostic::error(
                "spec::too-large",
                format!("the file is {} bytes; specs are at most 4 MiB", bytes.len()),
            )
            .in_file(&src),
        ]);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(path, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // the lossy text has the same bytes up to the first invalid one
            let src = SourceFile::new(path, text);
            let end = src.text[at..]
                .chars()
                .next()
                .map_or(at, |c| at + c.len_utf8());
            Err(vec![
                Diagnostic::error("spec::utf8", "the file is not valid UTF-8")
                    .at(&src, Span::new(at, end))
                    .label("invalid byte")
                    .hint("save the spec as UTF-8"),
            ])
        }
    }
}

/// Parse a source file into its document tree.
pub fn parse_source(src: &Arc<SourceFile>) -> Result<Node, Vec<Diagnostic>> {
    match parse_recovering(src) {
        (Some(node), diags) if diags.is_empty() => Ok(node),
        (_, diags) => Err(diags),
    }
}

/// [`parse_source`], keeping the tree when its only problems are values out of range, so
/// that decoding reports every other problem of the file too.
pub fn parse_recovering(src: &Arc<SourceFile>) -> (Option<Node>, Vec<Diagnostic>) {
    match Format::from_path(&src.path) {
        Some(Format::Toml) => super::toml_front::parse_recovering(src),
        Some(Format::Yaml) => super::yaml_front::parse_recovering(src),
        None => (
            None,
            vec![Diagnostic::error("spec::format", "unknown spec format").in_file(src)],
        ),
    }
}

/// Why a `--set` did not apply to a file.
#[derive(Debug, Clone, PartialEq)]
pub enum SetMiss {
    /// The file has no such top-level key: the override is for other specs.
    NotHere,
    /// The path starts in this file but cannot be followed: what went wrong.
    Bad(String),
}

/// Apply one `--set`; the span of the value it replaced (where diagnostics about the new
/// value point). Numeric parts index arrays (`load.stages.1.for`); a missing table key is
/// added, a missing array element is not.
fn apply_override(root: &mut Node, ov: &Override) -> Result<Span, SetMiss> {
    let parts: Vec<&str> = ov.path.split('.').collect();
    if root.get(parts[0]).is_none() {
        return Err(SetMiss::NotHere);
    }
    let mut cur = root;
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..i].join(".");
        let span = cur.span;
        let type_name = cur.type_name();
        let node = match &mut cur.value {
            Value::Table(entries) => {
                let pos = match entries.iter().position(|(k, _)| k.name == *part) {
                    Some(p) => p,
                    None => {
                        let empty = Node::new(Value::Table(Vec::new()), Span::point(span.start));
                        let key = Key {
                            name: part.to_string(),
                            span: Span::point(span.start),
                        };
                        entries.push((key, empty));
                        entries.len() - 1
                    }
                };
                &mut entries[pos].1
            }
            Value::Array(items) => {
                let len = items.len();
                let Ok(index) = part.parse::<usize>() else {
                    return Err(SetMiss::Bad(format!(
                        "`{here}` is an array: index it with a number from 0 to {}, e.g. `{here}.0`",
                        len.saturating_sub(1)
                    )));
                };
                match items.get_mut(index) {
                    Some(n) => n,
                    None => {
                        return Err(SetMiss::Bad(format!(
                            "`{here}` has {len} element(s): `{here}.{index}` is out of range (indices count from 0)"
                        )));
                    }
                }
            }
            _ => {
                return Err(SetMiss::Bad(format!(
                    "`{here}` is {}, not a table or an array: it has no `{part}`",
                    type_name
                )));
            }
        };
        if i + 1 == parts.len() {
            node.value = override_value(&ov.value);
            return Ok(node.span);
        }
        cur = node;
    }
    Err(SetMiss::NotHere)
}

/// `--set` values: integers, floats and booleans as such, anything else a string.
fn override_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = text.parse::<f64>() {
        Value::Float(f)
    } else if text == "true" || text == "false" {
        Value::Bool(text == "true")
    } else {
        Value::Str {
            value: text.to_string(),
            raw_offset: None,
        }
    }
}

/// The outcome of loading one file.
pub struct Loaded {
    pub source: Option<Arc<SourceFile>>,
    pub spec: Option<Spec>,
    pub diagnostics: Vec<Diagnostic>,
    /// Which overrides applied to this file.
    pub applied: Vec<bool>,
    /// For each override that did not apply, why (when the file has its first key).
    pub set_problems: Vec<Option<String>>,
}

/// Read, parse, override and decode one spec file. Backend capability checks are added by
/// the engine (`engine::registry::check`).
pub fn load_file(
    path: &Path,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
) -> Loaded {
    load_file_with(path, overrides, env, false)
}

/// [`load_file`]; with `smoke`, every stage is shortened first ([`super::smoke`]).
pub fn load_file_with(
    path: &Path,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
    smoke: bool,
) -> Loaded {
    let src = match read_source(path) {
        Ok(s) => s,
        Err(diagnostics) => {
            return Loaded {
                source: None,
                spec: None,
                diagnostics,
                applied: vec![false; overrides.len()],
                set_problems: vec![None; overrides.len()],
            };
        }
    };
    let (mut root, parse_diags) = match parse_recovering(&src) {
        (Some(r), diags) => (r, diags),
        (None, diagnostics) => {
            return Loaded {
                source: Some(src),
                spec: None,
                diagnostics,
                applied: vec![false; overrides.len()],
                set_problems: vec![None; overrides.len()],
            };
        }
    };
    if smoke {
        super::smoke::shorten(&mut root);
    }
    let outcomes: Vec<Result<Span, SetMiss>> = overrides
        .iter()
        .map(|o| apply_override(&mut root, o))
        .collect();
    let set_problems: Vec<Option<String>> = outcomes
        .iter()
        .map(|r| match r {
            Err(SetMiss::Bad(why)) => Some(why.clone()),
            _ => None,
        })
        .collect();
    let replaced: Vec<Option<Span>> = outcomes.into_iter().map(Result::ok).collect();
    let applied: Vec<bool> = replaced.iter().map(Option::is_some).collect();
    let mut cx = super::decode::Ctx::new(src.clone(), env);
    cx.diags = parse_diags;
    let decoded = decode_spec(&root, &mut cx);
    // decoders and cross-field checks report in their own order; the reader wants file order
    cx.diags.sort_by_key(|d| d.span.map(|s| s.start));
    // a problem with a `--set` value points where the file had the value it replaced
    for d in &mut cx.diags {
        let Some(span) = d.span else { continue };
        // the last `--set` of a path is the one in effect
        let from_set = overrides.iter().zip(&replaced).rfind(|(_, r)| {
            r.is_some_and(|r| span.start >= r.start && span.end <= r.end.max(r.start + 1))
        });
        if let Some((o, r)) = from_set {
            let added = r.is_some_and(|r| r.is_empty());
            d.label = Some(format!(
                "{} by --set {}={}",
                if added { "added" } else { "replaced" },
                o.path,
                o.value
            ));
            let note = if added {
                format!(
                    "the key `{}` and its value `{}` come from `--set`; the file does not have them",
                    o.path, o.value
                )
            } else {
                format!(
                    "the value `{}` comes from `--set {}`; the file's own value is shown",
                    o.value, o.path
                )
            };
            d.hint = Some(match d.hint.take() {
                Some(h) => format!("{h}; {note}"),
                None => note,
            });
        }
    }
    let has_errors = cx.diags.iter().any(Diagnostic::is_error);
    let spec = match decoded {
        Some((kind, body)) if !has_errors => {
            let (name, description, backend, mut slos, max_duration) = body.common();
            let (repeat, reseed) = body.repeats();
            if let Body::Load(doc) = &body {
                if !slos.iter().any(|s| s.expr.metric == "late_ratio") {
                    slos.push(default_slo("late_ratio < 1%", kind));
                }
                // soak: the leak verdict is an SLO like any other, so it is judged, reported and
                // gated the same way
                if let Some(limit) = doc.monitor.as_ref().and_then(|m| m.rss_growth_limit)
                    && !slos.iter().any(|s| s.expr.metric == "target.rss_growth")
                {
                    slos.push(default_slo(
                        &format!("target.rss_growth <= {}B", limit.0.round()),
                        kind,
                    ));
                }
            }
            Some(Spec {
                kind,
                name,
                description,
                backend: backend.as_ref().map_or_else(
                    || match body {
                        Body::Import(_) => "import".to_string(),
                        Body::Exec(_) => "exec".to_string(),
                        _ => kind.default_backend().to_string(),
                    },
                    |b| b.value.clone(),
                ),
                backend_span: backend.map(|b| b.span),
                slos,
                max_duration,
                repeat,
                reseed,
                body,
                hash: hex(&sha2::Sha256::digest(src.text.as_bytes())),
                resolved: redact_headers(root.to_json()),
                secrets: cx.secrets.clone(),
                file: src.clone(),
            })
        }
        _ => None,
    };
    let mut diagnostics = cx.diags;
    for d in &mut diagnostics {
        d.redact(&cx.secrets);
    }
    Loaded {
        source: Some(src),
        spec,
        diagnostics,
        applied,
        set_problems,
    }
}

/// An SLO perfspec adds by itself (e.g. the load backend's `late_ratio < 1%`).
fn default_slo(text: &str, kind: super::catalog::Kind) -> Slo {
    let mut slo = Slo::compile(text, kind).expect("built-in SLOs parse and check");
    slo.origin = SloOrigin::Default;
    slo
}

/// Header names whose values never appear in results: literal credentials written in a spec
/// are replaced (values from `${env:…}` are kept as the reference, never the value).
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Replace the values of sensitive headers (and of headers the spec lists in `redact`) in
/// the resolved spec, unless the value is only an `${env:…}` reference.
pub fn redact_headers(mut doc: serde_json::Value) -> serde_json::Value {
    let extra: Vec<String> = doc
        .get("redact")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    fn walk(v: &mut serde_json::Value, extra: &[String]) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "headers"
                        && let serde_json::Value::Object(headers) = child
                    {
                        for (name, value) in headers.iter_mut() {
                            let lower = name.to_ascii_lowercase();
                            let sensitive = SENSITIVE_HEADERS.contains(&lower.as_str())
                                || extra.contains(&lower);
                            let only_env = value.as_str().is_some_and(|s| {
                                let rest =
                                    s.trim_start_matches("Bearer ").trim_start_matches("Basic ");
                                rest.starts_with("${env:")
                                    && rest.ends_with('}')
                                    && rest.matches("${").count() == 1
                            });
                            if sensitive
                                && !only_env
                                && !value.as_str().is_some_and(|s| s.contains("{{"))
                            {
                                *value = serde_json::Value::String("[redacted]".into());
                            }
                        }
                    } else {
                        walk(child, extra);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, extra)),
            _ => {}
        }
    }
    walk(&mut doc, &extra);
    doc
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_credentials_are_redacted_from_the_resolved_spec() {
        let doc = serde_json::json!({
            "redact": ["X-Tenant"],
            "journey": [{"steps": [{"headers": {
                "Authorization": "Bearer hunter2",
                "cookie": "session=abc",
                "x-tenant": "acme",
                "accept": "application/json",
                "authorization2": "kept",
            }}, {"headers": {"authorization": "Bearer ${env:TOKEN}"}},
                {"headers": {"authorization": "Bearer {{ token }}"}}]}],
        });
        let out = redact_headers(doc);
        let h = &out["journey"][0]["steps"][0]["headers"];
        assert_eq!(h["Authorization"], "[redacted]");
        assert_eq!(h["cookie"], "[redacted]");
        assert_eq!(h["x-tenant"], "[redacted]");
        assert_eq!(h["accept"], "application/json");
        assert_eq!(h["authorization2"], "kept");
        assert_eq!(
            out["journey"][0]["steps"][1]["headers"]["authorization"],
            "Bearer ${env:TOKEN}"
        );
        assert_eq!(
            out["journey"][0]["steps"][2]["headers"]["authorization"],
            "Bearer {{ token }}"
        );
    }
}

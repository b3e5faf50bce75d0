//! Journeys compiled from the spec: every string of a step becomes a minijinja template
//! (compiled once), CSV feeders hand out rows, captures pull values out of responses for
//! later steps, expectations decide what counts as an error. Nothing here knows goose: the
//! runner sends what [`Plan::render`] produces and hands the response to [`Plan::check`].
//!
//! Template context of a step: one row of every data source the journey uses (`users.name`),
//! the values captured by earlier steps (`token`), `journey` (its name) and `iteration` (the
//! arrival or loop number); functions `random(a, b)` (an integer in `a..=b`), `uuid()` and
//! the minijinja builtins. An undefined name is an error, found at validation where possible.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use minijinja::value::Value;
use rand::Rng;
use serde_json::Value as Json;

use crate::spec::decode::{Duration as SpecDuration, Range};
use crate::spec::load::{FeedMode, LoadDoc};
use crate::spec::source::Span;

/// Default per-step timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Captured or secret values shorter than this are not redacted (they would mangle messages).
const MIN_SECRET_LEN: usize = 4;
/// Header names whose values never appear in results.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];
/// Longest response body excerpt kept in an error message.
const BODY_EXCERPT: usize = 200;

/// A problem found while compiling the journeys: a validation diagnostic.
#[derive(Debug, Clone)]
pub struct PlanError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

/// A string of the spec: literal, or the name of a compiled template.
#[derive(Debug, Clone)]
enum Text {
    Literal(String),
    Template(String),
}

/// A JSON body with templated strings; a string that is one `{{ expression }}` keeps the
/// expression's type (a number stays a number).
#[derive(Debug, Clone)]
enum JsonT {
    Literal(Json),
    Text(Text),
    Typed(String),
    Array(Vec<JsonT>),
    Object(Vec<(String, JsonT)>),
}

#[derive(Debug, Clone)]
enum BodyT {
    None,
    Json(JsonT),
    Form(Vec<(String, Text)>),
    Raw(Text),
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
enum Source {
    /// A JSON pointer into the body (JSON paths are converted).
    Pointer(String),
    Header(String),
    /// First capture group (or the whole match) of a regex on the body.
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
struct Capture {
    name: String,
    written: String,
    source: Source,
}

#[derive(Debug, Clone, Default)]
struct ExpectT {
    status: Option<u16>,
    body_contains: Option<String>,
    json: Vec<(String, String, Json)>,
}

/// One compiled step.
#[derive(Debug, Clone)]
pub struct StepPlan {
    /// The `step` label: the step's `name`, or its request line as written.
    pub label: String,
    pub method: reqwest::Method,
    path: Text,
    query: Vec<(String, Text)>,
    headers: Vec<(String, Text)>,
    body: BodyT,
    captures: Vec<Capture>,
    expect: ExpectT,
    pub think: Option<Range<SpecDuration>>,
    pub timeout: Duration,
}

/// One compiled journey.
#[derive(Debug, Clone)]
pub struct JourneyPlan {
    pub name: String,
    pub steps: Vec<StepPlan>,
    /// Data sources (indices into the plan's feeders) this journey's templates use.
    feeders: Vec<usize>,
}

/// A CSV data source.
struct Feeder {
    name: String,
    /// The CSV header's column names, in file order.
    columns: Vec<String>,
    rows: Vec<Value>,
    mode: FeedMode,
    next: AtomicUsize,
}

/// Every journey of a spec, ready to run.
pub struct Plan {
    env: minijinja::Environment<'static>,
    pub journeys: Vec<JourneyPlan>,
    /// Cumulative probabilities of the journeys.
    cumulative: Vec<f64>,
    feeders: Vec<Feeder>,
    secret_headers: Vec<String>,
    /// Values the spec took from the environment: redacted from every message of an iteration.
    secrets: Vec<String>,
}

/// A rendered request.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: RenderedBody,
}

impl Rendered {
    /// The request for this step to `url` (the rendered path already joined to a base URL):
    /// method, query, headers, body and the step's timeout.
    pub fn request(
        self,
        client: &reqwest::Client,
        step: &StepPlan,
        mut url: reqwest::Url,
    ) -> reqwest::RequestBuilder {
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let mut rb = client
            .request(step.method.clone(), url)
            .timeout(step.timeout);
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        match self.body {
            RenderedBody::None => rb,
            RenderedBody::Json(j) => rb.json(&j),
            RenderedBody::Form(f) => rb.form(&f),
            RenderedBody::Raw(s) => rb.body(s),
        }
    }
}

#[derive(Debug, Clone)]
pub enum RenderedBody {
    None,
    Json(Json),
    Form(Vec<(String, String)>),
    Raw(String),
}

/// The state of one journey run: template context, cookies and the values to redact.
pub struct Iteration {
    pub journey: usize,
    ctx: BTreeMap<String, Value>,
    secrets: BTreeSet<String>,
    /// The journey's cookie jar: `Set-Cookie` answers are sent back (as `Cookie`) by the
    /// journey's later steps, like a browser session that lasts one journey.
    cookies: Vec<(String, String)>,
}

/// A `unique` data source ran out of rows.
#[derive(Debug)]
pub struct Exhausted(pub String);

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_function("random", |a: i64, b: i64| -> i64 {
        if b <= a {
            a
        } else {
            rand::rng().random_range(a..=b)
        }
    });
    env.add_function("uuid", || -> String {
        let b: [u8; 16] = rand::rng().random();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-4{}-{}{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            ["8", "9", "a", "b"][usize::from(b[8] & 3)],
            &h[17..20],
            &h[20..32]
        )
    });
    env
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// `$.a.b[0]`, `$['a']` → `/a/b/0`, `/a`; a JSON pointer is returned as is.
pub fn json_pointer(path: &str) -> Result<String, String> {
    if path.starts_with('/') || path.is_empty() {
        return Ok(path.to_string());
    }
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err(format!(
            "`{path}` is neither a JSON path (`$.a.b`) nor a JSON pointer (`/a/b`)"
        ));
    };
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    let mut out = String::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("empty key in `{path}`"));
            }
            out.push('/');
            out.push_str(&esc(&r[..end]));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in `{path}`"))?;
            let inner = r[..end].trim();
            let key = inner.trim_matches(|c| c == '\'' || c == '"');
            if key.is_empty() {
                return Err(format!("empty index in `{path}`"));
            }
            out.push('/');
            out.push_str(&esc(key));
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "unexpected `{rest}` in `{path}`: write `$.key` or `$[0]`"
            ));
        }
    }
    Ok(out)
}

/// Compiles one journey's strings, remembering the variables they use.
struct Compiler<'a> {
    env: &'a mut minijinja::Environment<'static>,
    /// Variables the templates use, with attribute chains (`users.name`), and the field
    /// (`json`, `headers`…) of each.
    used: BTreeSet<(String, String)>,
    errors: &'a mut Vec<PlanError>,
    span: Span,
    prefix: String,
    n: usize,
}

impl Compiler<'_> {
    fn add(&mut self, field: &str, source: String) -> Option<String> {
        self.n += 1;
        let name = format!("{}.{}.{field}", self.prefix, self.n);
        match self.env.add_template_owned(name.clone(), source) {
            Ok(()) => {
                let vars = self
                    .env
                    .get_template(&name)
                    .map(|t| t.undeclared_variables(true))
                    .unwrap_or_default();
                self.used
                    .extend(vars.into_iter().map(|v| (v, field.to_string())));
                Some(name)
            }
            Err(e) => {
                self.errors.push(PlanError {
                    span: self.span,
                    message: format!(
                        "invalid template in `{field}`: {}",
                        e.detail().unwrap_or(&e.to_string())
                    ),
                    hint: Some(
                        "templates use minijinja syntax: `{{ users.name }}`, `{{ random(1, 50) }}`"
                            .into(),
                    ),
                });
                None
            }
        }
    }

    /// The values of a `query` or `headers` table (`field`) as texts.
    fn pairs(
        &mut self,
        field: &str,
        map: Option<&BTreeMap<String, String>>,
    ) -> Vec<(String, Text)> {
        map.into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), self.text(field, v)))
            .collect()
    }

    /// The body of step `s`: `json`, else `form`, else `body`, else none.
    fn body(&mut self, s: &crate::spec::load::Step) -> BodyT {
        if let Some(v) = &s.json {
            BodyT::Json(self.json("json", v))
        } else if let Some(f) = &s.form {
            BodyT::Form(
                f.iter()
                    .map(|(k, v)| (k.clone(), self.text("form", v)))
                    .collect(),
            )
        } else if let Some(b) = &s.body {
            BodyT::Raw(self.text("body", b))
        } else {
            BodyT::None
        }
    }

    fn text(&mut self, field: &str, s: &str) -> Text {
        if !is_template(s) {
            return Text::Literal(s.to_string());
        }
        self.add(field, s.to_string())
            .map_or_else(|| Text::Literal(s.to_string()), Text::Template)
    }

    fn json(&mut self, field: &str, v: &Json) -> JsonT {
        match v {
            Json::String(s) if is_template(s) => {
                let t = s.trim();
                if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                    let expr = &t[2..t.len() - 2];
                    match self.add(field, format!("{{{{ ({expr}) | tojson }}}}")) {
                        Some(name) => JsonT::Typed(name),
                        None => JsonT::Literal(v.clone()),
                    }
                } else {
                    JsonT::Text(self.text(field, s))
                }
            }
            Json::Array(a) => JsonT::Array(a.iter().map(|x| self.json(field, x)).collect()),
            Json::Object(o) => JsonT::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.json(field, x)))
                    .collect(),
            ),
            other => JsonT::Literal(other.clone()),
        }
    }
}

/// The names a step's templates may use: data sources (and their columns), values captured
/// by earlier steps, globals, `journey` and `iteration`.
struct Names<'a> {
    feeders: &'a [Feeder],
    /// Every data source the spec declares, also those whose file could not be read.
    declared: &'a BTreeSet<String>,
    captured: &'a BTreeSet<String>,
    globals: &'a BTreeSet<String>,
}

impl Names<'_> {
    /// Check every variable in `used` (with the field using it) of step `si` of `journey`:
    /// the data sources they read; one error per unknown name, however many fields use it.
    fn check_all(
        &self,
        used: &BTreeSet<(String, String)>,
        journey: &crate::spec::load::Journey,
        si: usize,
        errors: &mut Vec<PlanError>,
    ) -> BTreeSet<String> {
        let span = journey.steps[si].request.span;
        let mut feeders = BTreeSet::new();
        let mut reported = BTreeSet::new();
        for (var, field) in used {
            match self.check(var, field, journey, si) {
                Ok(Some(feeder)) => {
                    feeders.insert(feeder);
                }
                Ok(None) => {}
                Err((message, _)) if !reported.insert(message.clone()) => {}
                Err((message, hint)) => errors.push(PlanError {
                    span,
                    message,
                    hint,
                }),
            }
        }
        feeders
    }

    /// Check one variable `var` (maybe an attribute chain `users.name`) used in `field` of
    /// step `si` of `journey`: the data source it reads, or the message and hint of an error.
    fn check(
        &self,
        var: &str,
        field: &str,
        journey: &crate::spec::load::Journey,
        si: usize,
    ) -> Result<Option<String>, (String, Option<String>)> {
        let (top, attr) = match var.split_once('.') {
            Some((t, rest)) => (t, Some(rest.split('.').next().unwrap_or(rest))),
            None => (var, None),
        };
        if let Some(f) = self.feeders.iter().find(|f| f.name == top) {
            return match attr {
                Some(col) if !f.columns.iter().any(|c| c == col) => {
                    let list = f.columns.join(", ");
                    let hint = match crate::spec::diagnostic::did_you_mean(
                        col,
                        f.columns.iter().map(String::as_str),
                    ) {
                        Some(s) => format!("did you mean `{top}.{s}`? columns of `{top}`: {list}"),
                        None => format!("columns of `{top}` (its CSV header): {list}"),
                    };
                    Err((
                        format!("`{top}` has no column `{col}` (in `{field}`)"),
                        Some(hint),
                    ))
                }
                _ => Ok(Some(top.to_string())),
            };
        }
        if self.declared.contains(top)
            || self.captured.contains(top)
            || self.globals.contains(top)
            || top == "journey"
            || top == "iteration"
        {
            return Ok(None);
        }
        let later = journey
            .steps
            .iter()
            .skip(si)
            .any(|x| x.capture.iter().flatten().any(|(n, _)| n == top));
        let known: Vec<&str> = self
            .declared
            .iter()
            .map(String::as_str)
            .chain(self.captured.iter().map(String::as_str))
            .chain(["journey", "iteration"])
            .collect();
        let hint = if later {
            Some(format!(
                "`{top}` is captured by this or a later step; a step can use values captured by earlier steps"
            ))
        } else {
            crate::spec::diagnostic::did_you_mean(top, known.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| Some(format!("known here: {}", known.join(", "))))
        };
        Err((format!("unknown template variable `{top}`"), hint))
    }
}

/// The data sources of `doc` read from their CSV files (relative to `spec_dir`); a file that
/// cannot be read or has no rows is an error in `errors` and no feeder.
fn load_feeders(doc: &LoadDoc, spec_dir: &Path, errors: &mut Vec<PlanError>) -> Vec<Feeder> {
    let mut feeders = Vec::new();
    for (name, src) in doc.data.iter().flatten() {
        let path = spec_dir.join(&src.csv.value);
        match read_csv(&path) {
            Ok((_, rows)) if rows.is_empty() => errors.push(PlanError {
                span: src.csv.span,
                message: format!("the data file `{}` has no rows", src.csv.value),
                hint: Some("a CSV data source needs a header line and at least one row".into()),
            }),
            Ok((columns, rows)) => feeders.push(Feeder {
                name: name.clone(),
                columns,
                rows,
                mode: src.mode.unwrap_or(FeedMode::Sequence),
                next: AtomicUsize::new(0),
            }),
            Err(e) => errors.push(PlanError {
                span: src.csv.span,
                message: format!("cannot read the data file `{}`: {e}", src.csv.value),
                hint: Some(format!(
                    "paths are relative to the spec's folder ({})",
                    spec_dir.display()
                )),
            }),
        }
    }
    feeders
}

/// Running sums of the journeys' weights (default 1) over their total: the upper bound of
/// each journey's slice of [0, 1) for [`Plan::pick`].
fn cumulative_weights(journeys: &[crate::spec::load::Journey]) -> Vec<f64> {
    let weights: Vec<f64> = journeys
        .iter()
        .map(|j| j.weight.as_ref().map_or(1.0, |w| w.value))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// Compiles the journeys of one spec into one template environment, collecting errors.
struct JourneyCompiler<'a> {
    env: &'a mut minijinja::Environment<'static>,
    errors: &'a mut Vec<PlanError>,
    feeders: &'a [Feeder],
    /// Every data source the spec declares, also those whose file could not be read.
    declared: &'a BTreeSet<String>,
    globals: &'a BTreeSet<String>,
}

impl JourneyCompiler<'_> {
    /// Journey `ji`, its steps in order (each may use what earlier steps captured), and the
    /// data sources its templates read.
    fn journey(&mut self, ji: usize, j: &crate::spec::load::Journey) -> JourneyPlan {
        let mut steps = Vec::new();
        let mut captured: BTreeSet<String> = BTreeSet::new();
        let mut used_feeders = BTreeSet::new();
        for si in 0..j.steps.len() {
            let prefix = format!("j{ji}s{si}");
            steps.push(self.step(prefix, j, si, &mut captured, &mut used_feeders));
        }
        let feeders = self
            .feeders
            .iter()
            .enumerate()
            .filter(|(_, f)| used_feeders.contains(&f.name))
            .map(|(i, _)| i)
            .collect();
        JourneyPlan {
            name: j.name.clone(),
            steps,
            feeders,
        }
    }

    /// Step `si` of `j`, its templates named after `prefix`: the request's templates, the
    /// names they use (data sources read go to `used_feeders`), its captures (added to
    /// `captured`) and expectations.
    fn step(
        &mut self,
        prefix: String,
        j: &crate::spec::load::Journey,
        si: usize,
        captured: &mut BTreeSet<String>,
        used_feeders: &mut BTreeSet<String>,
    ) -> StepPlan {
        let s = &j.steps[si];
        let mut c = Compiler {
            env: &mut *self.env,
            used: BTreeSet::new(),
            errors: &mut *self.errors,
            span: s.request.span,
            prefix,
            n: 0,
        };
        let (method, path) = s.request.value.split_once(' ').unwrap_or(("GET", "/"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let path = c.text("request", path.trim());
        let query = c.pairs("query", s.query.as_ref());
        let headers = c.pairs("headers", s.headers.as_ref());
        let body = c.body(s);
        let used = std::mem::take(&mut c.used);
        let names = Names {
            feeders: self.feeders,
            declared: self.declared,
            captured,
            globals: self.globals,
        };
        used_feeders.extend(names.check_all(&used, j, si, self.errors));
        let captures = compile_captures(s, captured, self.errors);
        let expect = compile_expect(s, self.errors);
        StepPlan {
            label: s
                .name
                .as_ref()
                .map_or_else(|| s.request.written.clone(), |n| n.written.clone()),
            method,
            path,
            query,
            headers,
            body,
            captures,
            expect,
            think: s.think_time.or(j.think_time),
            timeout: s.timeout.map_or(DEFAULT_TIMEOUT, |d| d.as_std()),
        }
    }
}

/// The `capture` sources of step `s` (`header:…`, `regex:…` or a JSON path), each name added
/// to `captured` whether or not its source is valid.
fn compile_captures(
    s: &crate::spec::load::Step,
    captured: &mut BTreeSet<String>,
    errors: &mut Vec<PlanError>,
) -> Vec<Capture> {
    let mut captures = Vec::new();
    for (name, src) in s.capture.iter().flatten() {
        let source = if let Some(h) = src.value.strip_prefix("header:") {
            Ok(Source::Header(h.trim().to_ascii_lowercase()))
        } else if let Some(re) = src.value.strip_prefix("regex:") {
            regex::Regex::new(re)
                .map(Source::Regex)
                .map_err(|e| format!("invalid regex: {e}"))
        } else {
            json_pointer(&src.value).map(Source::Pointer)
        };
        match source {
            Ok(source) => captures.push(Capture {
                name: name.clone(),
                written: src.value.clone(),
                source,
            }),
            Err(message) => errors.push(PlanError {
                span: src.span,
                message,
                hint: None,
            }),
        }
        captured.insert(name.clone());
    }
    captures
}

/// The `expect` table of step `s`, its JSON paths as pointers.
fn compile_expect(s: &crate::spec::load::Step, errors: &mut Vec<PlanError>) -> ExpectT {
    let mut expect = ExpectT::default();
    let Some(e) = &s.expect else { return expect };
    expect.status = e.status.as_ref().map(|s| s.value);
    expect.body_contains = e.body_contains.clone();
    for (path, want) in e.json.iter().flatten() {
        match json_pointer(path) {
            Ok(p) => expect.json.push((path.clone(), p, want.clone())),
            Err(message) => errors.push(PlanError {
                span: s.request.span,
                message,
                hint: None,
            }),
        }
    }
    expect
}

impl Plan {
    /// [`Plan::compile`] for `spec` (relative paths against `spec_dir`), with the spec's
    /// secrets to redact and every problem a located diagnostic in `spec`'s file.
    pub fn compile_spec(
        spec: &crate::spec::Spec,
        doc: &LoadDoc,
        spec_dir: &Path,
    ) -> Result<Plan, Vec<crate::spec::diagnostic::Diagnostic>> {
        Plan::compile(doc, spec_dir)
            .map(|p| p.with_secrets(&spec.secrets))
            .map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| {
                        crate::spec::diagnostic::Diagnostic::error("load::journey", e.message)
                            .at(&spec.file, e.span)
                            .maybe_hint(e.hint)
                    })
                    .collect()
            })
    }

    /// Compile every journey of `doc`; data files resolve against `spec_dir`. All problems
    /// are returned together.
    pub fn compile(doc: &LoadDoc, spec_dir: &Path) -> Result<Plan, Vec<PlanError>> {
        let mut errors = Vec::new();
        let mut env = environment();
        let feeders = load_feeders(doc, spec_dir, &mut errors);
        let declared: BTreeSet<String> =
            doc.data.iter().flatten().map(|(n, _)| n.clone()).collect();
        let globals: BTreeSet<String> = env.globals().map(|(n, _)| n.to_string()).collect();
        let mut secret_headers: Vec<String> =
            SECRET_HEADERS.iter().map(|s| s.to_string()).collect();
        secret_headers.extend(doc.redact.iter().flatten().map(|h| h.to_ascii_lowercase()));
        let mut compiler = JourneyCompiler {
            env: &mut env,
            errors: &mut errors,
            feeders: &feeders,
            declared: &declared,
            globals: &globals,
        };
        let journeys: Vec<JourneyPlan> = doc
            .journey
            .iter()
            .enumerate()
            .map(|(ji, j)| compiler.journey(ji, j))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Plan {
            env,
            journeys,
            cumulative: cumulative_weights(&doc.journey),
            feeders,
            secret_headers,
            secrets: Vec::new(),
        })
    }

    /// The plan with `secrets` (the spec's `${env:…}` values) redacted from every message.
    pub fn with_secrets(mut self, secrets: &[String]) -> Plan {
        self.secrets = secrets
            .iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .cloned()
            .collect();
        self
    }

    /// Pick a journey with probability proportional to its weight.
    pub fn pick(&self) -> usize {
        let u: f64 = rand::rng().random();
        self.cumulative
            .iter()
            .position(|c| u < *c)
            .unwrap_or(self.journeys.len() - 1)
    }

    /// Every data source: its name and how many rows it has.
    pub fn data_rows(&self) -> Vec<(String, usize)> {
        self.feeders
            .iter()
            .map(|f| (f.name.clone(), f.rows.len()))
            .collect()
    }

    /// The probability of each journey (for the report).
    pub fn probabilities(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.cumulative
            .iter()
            .map(|c| {
                let p = c - prev;
                prev = *c;
                p
            })
            .collect()
    }

    /// Start journey `j`: draw a row from each data source it uses.
    pub fn start(&self, journey: usize, iteration: u64) -> Result<Iteration, Exhausted> {
        let j = &self.journeys[journey];
        let mut ctx = BTreeMap::new();
        ctx.insert("journey".to_string(), Value::from(j.name.clone()));
        ctx.insert("iteration".to_string(), Value::from(iteration));
        for &f in &j.feeders {
            let feeder = &self.feeders[f];
            let n = feeder.rows.len();
            let row = match feeder.mode {
                FeedMode::Sequence => feeder.next.fetch_add(1, Ordering::Relaxed) % n,
                FeedMode::Random => rand::rng().random_range(0..n),
                FeedMode::Unique => {
                    let i = feeder.next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Err(Exhausted(feeder.name.clone()));
                    }
                    i
                }
            };
            ctx.insert(feeder.name.clone(), feeder.rows[row].clone());
        }
        Ok(Iteration {
            journey,
            ctx,
            secrets: self.secrets.iter().cloned().collect(),
            cookies: Vec::new(),
        })
    }

    fn render_text(&self, t: &Text, ctx: &Value) -> Result<String, String> {
        match t {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => self
                .env
                .get_template(name)
                .and_then(|tmpl| tmpl.render(ctx))
                .map_err(|e| format!("template error: {}", e.detail().unwrap_or(&e.to_string()))),
        }
    }

    fn render_json(&self, t: &JsonT, ctx: &Value) -> Result<Json, String> {
        Ok(match t {
            JsonT::Literal(v) => v.clone(),
            JsonT::Text(t) => Json::String(self.render_text(t, ctx)?),
            JsonT::Typed(name) => {
                let s = self.render_text(&Text::Template(name.clone()), ctx)?;
                serde_json::from_str(&s).map_err(|e| format!("template error: not JSON: {e}"))?
            }
            JsonT::Array(a) => Json::Array(
                a.iter()
                    .map(|x| self.render_json(x, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            JsonT::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render_json(x, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    /// Render step `step` of the iteration's journey; secret header values are remembered for
    /// redaction.
    pub fn render(&self, it: &mut Iteration, step: usize) -> Result<Rendered, String> {
        let s = &self.journeys[it.journey].steps[step];
        let ctx = Value::from(it.ctx.clone());
        let path = self.render_text(&s.path, &ctx)?;
        let query = s
            .query
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.render_text(v, &ctx)?)))
            .collect::<Result<_, String>>()?;
        let mut headers = Vec::new();
        for (k, v) in &s.headers {
            let value = self.render_text(v, &ctx)?;
            if self.secret_headers.contains(&k.to_ascii_lowercase()) {
                it.remember_secret(&value);
                if let Some((_, token)) = value.split_once(' ') {
                    it.remember_secret(token);
                }
            }
            headers.push((k.clone(), value));
        }
        // the jar's cookies, unless the step sets its own `cookie` header
        if !it.cookies.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        {
            let jar: Vec<String> = it.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            headers.push(("cookie".to_string(), jar.join("; ")));
        }
        let body = match &s.body {
            BodyT::None => RenderedBody::None,
            BodyT::Json(j) => RenderedBody::Json(self.render_json(j, &ctx)?),
            BodyT::Form(f) => RenderedBody::Form(
                f.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_text(v, &ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
            BodyT::Raw(t) => RenderedBody::Raw(self.render_text(t, &ctx)?),
        };
        Ok(Rendered {
            path,
            query,
            headers,
            body,
        })
    }

    /// Judge a response against the step's expectations and run its captures. `Err` is the
    /// error message (already redacted).
    pub fn check(
        &self,
        it: &mut Iteration,
        step: usize,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let s = &self.journeys[it.journey].steps[step];
        for v in headers.get_all(reqwest::header::SET_COOKIE) {
            if let Ok(v) = v.to_str() {
                it.set_cookie(v);
            }
        }
        let text = || String::from_utf8_lossy(body);
        let excerpt = |it: &Iteration| {
            let t = text();
            let mut e: String = t.chars().take(BODY_EXCERPT).collect();
            if e.len() < t.len() {
                e.push('…');
            }
            if e.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", it.redact(&e))
            }
        };
        match s.expect.status {
            Some(want) if want != status => {
                return Err(format!(
                    "expected status {want}, got {status}{}",
                    excerpt(it)
                ));
            }
            None if status >= 400 => return Err(format!("status {status}{}", excerpt(it))),
            _ => {}
        }
        if let Some(needle) = &s.expect.body_contains
            && !text().contains(needle.as_str())
        {
            return Err(format!(
                "the body does not contain `{}`{}",
                it.redact(needle),
                excerpt(it)
            ));
        }
        let needs_json = !s.expect.json.is_empty()
            || s.captures
                .iter()
                .any(|c| matches!(c.source, Source::Pointer(_)));
        let json: Option<Json> = if needs_json {
            serde_json::from_slice(body).ok()
        } else {
            None
        };
        for (written, pointer, want) in &s.expect.json {
            let got = json.as_ref().and_then(|j| j.pointer(pointer));
            if got != Some(want) {
                let got = got.map_or_else(|| "nothing".to_string(), |g| it.redact(&g.to_string()));
                return Err(format!("expected {written} = {want}, got {got}"));
            }
        }
        for c in &s.captures {
            let value: Option<Value> = match &c.source {
                Source::Pointer(p) => json.as_ref().and_then(|j| j.pointer(p)).map(|v| match v {
                    Json::String(s) => Value::from(s.clone()),
                    other => Value::from(minijinja::value::Serde(other)),
                }),
                Source::Header(h) => headers
                    .get(h.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(|v| Value::from(v.to_string())),
                Source::Regex(re) => {
                    let t = text();
                    re.captures(&t)
                        .and_then(|caps| caps.get(1).or_else(|| caps.get(0)))
                        .map(|m| Value::from(m.as_str().to_string()))
                }
            };
            match value {
                Some(v) => {
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    it.remember_secret(&shown);
                    it.ctx.insert(c.name.clone(), v);
                }
                None => {
                    return Err(format!(
                        "capture `{}`: nothing matched `{}` in the response",
                        c.name, c.written
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Iteration {
    /// Keep (or, with `Max-Age=0` or an empty value, drop) the cookie of one `Set-Cookie`
    /// header. Domain, path, expiry dates and `Secure` are not checked: a journey talks to
    /// one service.
    fn set_cookie(&mut self, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() {
            return;
        }
        let expired = parts.any(|a| {
            a.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("max-age") && v.trim().starts_with(['0', '-'])
            })
        });
        self.cookies.retain(|(k, _)| k != name);
        if !expired && !value.is_empty() {
            self.remember_secret(value);
            self.cookies.push((name.to_string(), value.to_string()));
        }
    }

    fn remember_secret(&mut self, v: &str) {
        let v = v.trim();
        if v.len() >= MIN_SECRET_LEN {
            self.secrets.insert(v.to_string());
        }
    }

    /// `msg` with every captured value and secret header value replaced by `[redacted]`.
    pub fn redact(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        // longest first, so that a token inside a longer header value is covered by the longer one
        let mut secrets: Vec<&String> = self.secrets.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// The header's column names and the rows of a CSV file.
fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Value>), String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| csv_error(&e))?;
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| csv_error(&e))?;
        let row: BTreeMap<String, Value> = headers
            .iter()
            .cloned()
            .zip(rec.iter().map(|v| Value::from(v.to_string())))
            .collect();
        rows.push(Value::from(row));
    }
    Ok((headers, rows))
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str, dir: &Path) -> LoadDoc {
        let path = dir.join("spec.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = crate::spec::loader::load_file(&path, &[], &|_| None);
        assert!(
            loaded.diagnostics.iter().all(|d| !d.is_error()),
            "{:?}",
            loaded.diagnostics
        );
        match loaded.spec.unwrap().body {
            crate::spec::Body::Load(d) => *d,
            _ => unreachable!(),
        }
    }

    const HEAD: &str = "kind = \"load\"\nname = \"t\"\n[target]\nurl = \"http://127.0.0.1:1\"\n[load]\nstages = [{ hold = \"1/s\", for = \"1s\" }]\n";

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_pointer("$.a.b[0]").unwrap(), "/a/b/0");
        assert_eq!(json_pointer("$['x/y'].z").unwrap(), "/x~1y/z");
        assert_eq!(json_pointer("$").unwrap(), "");
        assert_eq!(json_pointer("/a/1").unwrap(), "/a/1");
        assert!(json_pointer("$.").is_err());
    }

    #[test]
    fn renders_feeds_captures_and_redacts() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("users.csv"),
            "name,password\nalice,wonderland\nbob,builder\n",
        )
        .unwrap();
        let spec = format!(
            "{HEAD}[data.users]\ncsv = \"users.csv\"\n[[journey]]\nname = \"buy\"\nsteps = [\n  \
             {{ request = \"POST /login\", json = {{ user = \"{{{{ users.name }}}}\", n = \"{{{{ random(3, 3) }}}}\", tags = [\"x-{{{{ iteration }}}}\"] }}, capture = {{ token = \"$.token\", id = \"header:x-id\" }} }},\n  \
             {{ request = \"GET /orders/{{{{ id }}}}\", headers = {{ authorization = \"Bearer {{{{ token }}}}\" }}, query = {{ q = \"{{{{ users.password }}}}\" }}, expect = {{ status = 200, json = {{ \"$.ok\" = true }} }} }},\n]\n"
        );
        let plan = Plan::compile(&doc(&spec, d.path()), d.path()).unwrap();
        let mut it = plan.start(0, 7).unwrap();
        let r = plan.render(&mut it, 0).unwrap();
        let RenderedBody::Json(j) = r.body else {
            panic!()
        };
        assert_eq!(
            j,
            serde_json::json!({"user": "alice", "n": 3, "tags": ["x-7"]})
        );
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-id", "order-1234".parse().unwrap());
        plan.check(&mut it, 0, 200, &headers, br#"{"token":"s3cret-token"}"#)
            .unwrap();
        let r = plan.render(&mut it, 1).unwrap();
        assert_eq!(r.path, "/orders/order-1234");
        assert_eq!(
            r.headers,
            vec![(
                "authorization".to_string(),
                "Bearer s3cret-token".to_string()
            )]
        );
        assert_eq!(r.query, vec![("q".to_string(), "wonderland".to_string())]);
        let err = plan
            .check(&mut it, 1, 500, &headers, b"denied for s3cret-token")
            .unwrap_err();
        assert_eq!(err, "expected status 200, got 500: denied for [redacted]");
        let err = plan
            .check(&mut it, 1, 200, &headers, br#"{"ok":false}"#)
            .unwrap_err();
        assert!(err.contains("expected $.ok = true, got false"), "{err}");
        // the sequence feeder moves on
        let mut it2 = plan.start(0, 8).unwrap();
        let RenderedBody::Json(j) = plan.render(&mut it2, 0).unwrap().body else {
            panic!()
        };
        assert_eq!(j["user"], "bob");
        // a missing capture is an error
        let err = plan.check(&mut it2, 0, 200, &headers, b"{}").unwrap_err();
        assert!(err.contains("capture `token`"), "{err}");
    }

    #[test]
    fn set_cookie_answers_are_sent_back_by_later_steps_of_the_journey_only() {
        let d = tempfile::tempdir().unwrap();
        let spec = format!(
            "{HEAD}[[journey]]\nname = \"j\"\nsteps = [\n  \
             {{ request = \"POST /login\" }},\n  {{ request = \"GET /cart\" }},\n  \
             {{ request = \"GET /own\", headers = {{ cookie = \"mine=1\" }} }},\n  {{ request = \"POST /logout\" }},\n  {{ request = \"GET /after\" }},\n]\n"
        );
        let plan = Plan::compile(&doc(&spec, d.path()), d.path()).unwrap();
        let mut it = plan.start(0, 0).unwrap();
        assert!(plan.render(&mut it, 0).unwrap().headers.is_empty());
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            "set-cookie",
            "session=abc123456789; Path=/; HttpOnly".parse().unwrap(),
        );
        h.append("set-cookie", "theme=\"dark\"".parse().unwrap());
        plan.check(&mut it, 0, 200, &h, b"").unwrap();
        assert_eq!(
            plan.render(&mut it, 1).unwrap().headers,
            vec![(
                "cookie".to_string(),
                "session=abc123456789; theme=dark".to_string()
            )]
        );
        // a step's own cookie header wins over the jar
        assert_eq!(
            plan.render(&mut it, 2).unwrap().headers,
            vec![("cookie".to_string(), "mine=1".to_string())]
        );
        // cookie values are secrets in error messages
        let err = plan
            .check(
                &mut it,
                1,
                500,
                &Default::default(),
                b"bad session abc123456789",
            )
            .unwrap_err();
        assert!(err.ends_with("bad session [redacted]"), "{err}");
        let mut h = reqwest::header::HeaderMap::new();
        h.append("set-cookie", "session=; Max-Age=0".parse().unwrap());
        plan.check(&mut it, 3, 200, &h, b"").unwrap();
        assert_eq!(
            plan.render(&mut it, 4).unwrap().headers,
            vec![("cookie".to_string(), "theme=dark".to_string())]
        );
        // the next journey starts with an empty jar
        let mut next = plan.start(0, 1).unwrap();
        assert!(plan.render(&mut next, 1).unwrap().headers.is_empty());
    }

    #[test]
    fn compile_errors_name_unknown_variables_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let spec = format!(
            "{HEAD}[data.users]\ncsv = \"missing.csv\"\n[[journey]]\nname = \"j\"\nsteps = [\n  \
             {{ request = \"GET /a/{{{{ user.name }}}}\" }},\n  {{ request = \"GET /b/{{{{ tok }}}}\", capture = {{ tok = \"regex:(\" }} }},\n]\n"
        );
        let Err(errs) = Plan::compile(&doc(&spec, d.path()), d.path()) else {
            panic!("the plan compiled")
        };
        let msgs: Vec<String> = errs
            .iter()
            .map(|e| format!("{} {:?}", e.message, e.hint))
            .collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("cannot read the data file `missing.csv`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("unknown template variable `user`")
                    && m.contains("did you mean `users`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("unknown template variable `tok`") && m.contains("later step")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.contains("invalid regex")), "{msgs:?}");
    }

    #[test]
    fn weights_are_probabilities_and_unique_feeders_run_out() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ids.csv"), "id\n1\n2\n").unwrap();
        let spec = format!(
            "{HEAD}[data.ids]\ncsv = \"ids.csv\"\nmode = \"unique\"\n[[journey]]\nname = \"a\"\nweight = 3\nsteps = [{{ request = \"GET /{{{{ ids.id }}}}\" }}]\n\
             [[journey]]\nname = \"b\"\nsteps = [{{ request = \"GET /\" }}]\n"
        );
        let plan = Plan::compile(&doc(&spec, d.path()), d.path()).unwrap();
        let p = plan.probabilities();
        assert!((p[0] - 0.75).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12);
        let n = 20_000;
        let a = (0..n).filter(|_| plan.pick() == 0).count() as f64 / n as f64;
        assert!((a - 0.75).abs() < 0.02, "{a}");
        assert!(plan.start(0, 0).is_ok() && plan.start(0, 1).is_ok());
        assert!(plan.start(0, 2).is_err());
        // a journey that uses no data source never runs out
        assert!(plan.start(1, 3).is_ok());
    }
}

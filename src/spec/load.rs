//! `kind = "load"`: a load profile against a web service (goose backend).

use std::collections::BTreeMap;

use super::decode::{
    Ctx, Decode, Duration, Interpolated, Rate, Ratio, Table, and_list, spec_table, word_enum,
};
use super::model::{RepeatCount, SloList, SpecName};
use super::node::{Node, Value};
use super::source::Spanned;

spec_table! {
    /// A load spec file.
    pub struct LoadDoc {
        /// Always `"load"`.
        kind: req String,
        /// Unique name of the spec (reports, baselines and `--filter` use it).
        name: req SpecName,
        description: opt String,
        /// Backend that runs the spec (default `goose`).
        backend: opt Spanned<String>,
        /// Bound on this spec's run time; exceeding it is an error with a verdict on what was measured.
        max_duration: opt Duration,
        /// Run the spec this many times (1 to 100, default 1): a fresh backend run each time; SLOs are judged on the pooled data and the report shows the spread.
        repeat: opt RepeatCount,
        /// With `repeat`: a different seed in every repeat (the spec's seed + k − 1) instead of the same one.
        reseed: opt bool,
        /// SLOs: expressions, or tables with `expr`, `severity`, `phase`, `no_data`, `on_missing_baseline`.
        slo: opt SloList,
        /// The service under test.
        target: req Target,
        /// Arrival model and stages.
        load: req LoadSection,
        /// CSV data feeders, by name (`{{ users.name }}` in templates).
        data: opt BTreeMap<String, DataSource>,
        /// Weighted user journeys.
        journey: req Vec<Journey>,
        /// Monitors sampled during the run.
        monitor: opt Monitor,
        /// Extra header names to redact in results and reports (authorization and cookies always are).
        redact: opt Vec<String>,
    }
}

spec_table! {
    /// Exactly one of `url`, `command` or `embedded`.
    pub struct Target {
        /// A running service, e.g. `http://127.0.0.1:8080`.
        url: opt Spanned<String>,
        /// Start the app under test: argv with a `{port}` placeholder.
        command: opt Spanned<Vec<String>>,
        /// Readiness path polled after start (default `/health`).
        ready: opt String,
        /// How long to wait for readiness (default `30s`).
        ready_timeout: opt Duration,
        /// perfspec's own demo service: `"shop"`.
        embedded: opt Spanned<EmbeddedService>,
        /// Environment variables for `command`.
        env: opt BTreeMap<String, String>,
    }
}

word_enum! {
    /// Embedded demo services.
    pub enum EmbeddedService { Shop = "shop" }
}

word_enum! {
    /// `open` = arrival rate (the default, coordinated-omission free); `closed` = virtual users.
    pub enum ModelKind { Open = "open", Closed = "closed" }
}

spec_table! {
    /// The `[load]` table.
    pub struct LoadSection {
        model: opt ModelKind,
        /// Ramps and holds, in order.
        stages: req Spanned<Vec<Stage>>,
        /// Open model: bound on concurrent requests; arrivals beyond it queue (and turn late).
        max_in_flight: opt Spanned<u32>,
        /// Open model: an arrival that starts later than this is `late` (default `10ms`).
        late_tolerance: opt Duration,
        /// Stress test: step the rate up until an SLO breaks.
        stress: opt Stress,
    }
}

/// A stage's level: an arrival rate (`"50/s"`, open model) or a number of users (closed model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    Rate(f64),
    Users(u64),
}

impl Decode for Level {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Int(_) => u64::decode(node, cx).map(Level::Users),
            Value::Str { .. } => Rate::decode(node, cx).map(|r| Level::Rate(r.0)),
            _ => {
                cx.type_error::<()>(node, "a rate such as \"50/s\" or a number of users");
                None
            }
        }
    }
}

impl schemars::JsonSchema for Level {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Level".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"description": "an arrival rate (`\"50/s\"`, open model) or a number of virtual users (closed model)", "type": ["string", "integer"]})
    }
}

/// `{ ramp_to = "50/s", over = "10s" }` or `{ hold = "50/s", for = "30s" }`, each with an
/// optional `label` that becomes the `phase` of measurements.
#[derive(Debug, Clone, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Stage {
    Ramp {
        ramp_to: Spanned<Level>,
        over: Duration,
        label: Option<String>,
    },
    Hold {
        hold: Spanned<Level>,
        #[serde(rename = "for")]
        for_: Duration,
        label: Option<String>,
    },
}

impl Stage {
    pub fn level(&self) -> &Spanned<Level> {
        match self {
            Stage::Ramp { ramp_to, .. } => ramp_to,
            Stage::Hold { hold, .. } => hold,
        }
    }

    pub fn duration(&self) -> f64 {
        match self {
            Stage::Ramp { over, .. } => over.0,
            Stage::Hold { for_, .. } => for_.0,
        }
    }

    pub fn label(&self) -> Option<&str> {
        match self {
            Stage::Ramp { label, .. } | Stage::Hold { label, .. } => label.as_deref(),
        }
    }
}

impl Decode for Stage {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let mut t = Table::new(node, cx)?;
        let stage = if t.has("ramp_to") {
            let ramp_to = t.req(cx, "ramp_to");
            let over = t.req(cx, "over");
            let label = t.opt(cx, "label");
            Some(Stage::Ramp {
                ramp_to: ramp_to?,
                over: over?,
                label,
            })
        } else if t.has("hold") {
            let hold = t.req(cx, "hold");
            let for_ = t.req(cx, "for");
            let label = t.opt(cx, "label");
            Some(Stage::Hold {
                hold: hold?,
                for_: for_?,
                label,
            })
        } else if t.has("duration") || t.has("target") {
            k6_stage(&mut t, cx);
            None
        } else {
            let span = t.head_span(cx);
            cx.error::<()>(
                span,
                "spec::stage",
                "a stage needs `ramp_to` + `over` or `hold` + `for`",
            );
            cx.hint(cx.in_syntax("e.g. `{ ramp_to = \"50/s\", over = \"10s\" }` or `{ hold = \"50/s\", for = \"30s\" }`"));
            // mark every key known so that no extra "unknown key" noise is added
            for k in ["ramp_to", "over", "hold", "for", "label"] {
                t.get(k);
            }
            None
        };
        t.finish(cx);
        stage
    }
}

/// A k6-style stage `{ duration, target }`: one error that says how perfspec writes it.
fn k6_stage(t: &mut Table, cx: &mut Ctx) {
    let span = t.head_span(cx);
    let text = |n: Option<&Node>, default: &str| {
        n.map_or(default.to_string(), |n| match &n.value {
            Value::Str { value, .. } => value.clone(),
            Value::Int(i) => i.to_string(),
            _ => default.to_string(),
        })
    };
    let over = text(t.get("duration"), "30s");
    let target = text(t.get("target"), "10");
    for k in ["ramp_to", "over", "hold", "for", "label"] {
        t.get(k);
    }
    cx.error::<()>(
        span,
        "spec::stage",
        "`duration` and `target` are k6's stage keys: perfspec stages ramp or hold",
    );
    cx.label("a k6-style stage");
    let users = target.parse::<u64>().is_ok();
    let example = if users {
        format!("{{ ramp_to = {target}, over = \"{over}\" }}")
    } else {
        format!("{{ ramp_to = \"{target}\", over = \"{over}\" }}")
    };
    let model = if users {
        "; a number is virtual users, which needs `model = \"closed\"` under `load` (or write a rate such as \"20/s\")"
    } else {
        ""
    };
    let hint = format!(
        "k6's `{{ duration, target }}` is `{example}` here (or `hold` + `for` for a flat stage){model}"
    );
    cx.hint(cx.in_syntax(&hint));
}

spec_table! {
    /// Stress test: raise the rate from `from` by `step` every `every` until an SLO breaks or `until`.
    pub struct Stress {
        from: req Spanned<Rate>,
        step: req Spanned<Rate>,
        every: req Spanned<Duration>,
        until: req Spanned<Rate>,
    }
}

word_enum! {
    /// How a feeder hands out rows.
    pub enum FeedMode { Sequence = "sequence", Random = "random", Unique = "unique" }
}

spec_table! {
    /// A CSV data feeder.
    pub struct DataSource {
        /// Path relative to the spec file.
        csv: req Spanned<String>,
        /// `sequence` (default), `random`, or `unique` (each row once; the run stops when they run out).
        mode: opt FeedMode,
    }
}

spec_table! {
    /// A weighted journey: its steps run in order for each arrival (open) or loop (closed).
    pub struct Journey {
        name: req String,
        /// Relative probability of this journey (default 1).
        weight: opt Spanned<f64>,
        steps: req Spanned<Vec<Step>>,
        /// Pause between steps (a duration or a range `1s..3s`).
        think_time: opt super::decode::Range<Duration>,
    }
}

spec_table! {
    /// One HTTP request.
    pub struct Step {
        /// The `step` label (default: the request line as written, `${env:…}` references kept).
        name: opt Interpolated,
        /// `"METHOD /path"`, e.g. `"POST /login"`; templated with minijinja.
        request: req Spanned<Interpolated>,
        query: opt BTreeMap<String, String>,
        headers: opt BTreeMap<String, String>,
        /// JSON body (any value).
        json: opt serde_json::Value,
        /// Form body.
        form: opt BTreeMap<String, String>,
        /// Raw body.
        body: opt String,
        /// Values to capture from the response: `"$.token"` (JSON path), `"header:x-id"`, `"regex:id=(\\d+)"`.
        capture: opt BTreeMap<String, Spanned<String>>,
        expect: opt Expect,
        think_time: opt super::decode::Range<Duration>,
        timeout: opt Duration,
    }
}

spec_table! {
    /// Expectations on a response; a miss counts as an error.
    pub struct Expect {
        status: opt Spanned<u16>,
        body_contains: opt String,
        /// JSON path → expected value.
        json: opt BTreeMap<String, serde_json::Value>,
    }
}

spec_table! {
    /// Monitors sampled during the run.
    pub struct Monitor {
        /// A Prometheus `/metrics` URL or path on the target; samples become `prom.<name>` metrics.
        prometheus: opt String,
        /// Sampling interval (default `1s`).
        interval: opt Duration,
        /// Soak: the largest RSS growth that is not a leak.
        rss_growth_limit: opt super::decode::Size,
    }
}

pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl LoadDoc {
    /// Cross-field checks the table decoders cannot express.
    pub fn validate(&self, cx: &mut Ctx) {
        super::load_names::check(self, cx);
        self.validate_target(cx);
        self.validate_load(cx);
        self.validate_journeys(cx);
    }

    /// Exactly one kind of target, a well-formed url or command; monitors it allows.
    fn validate_target(&self, cx: &mut Ctx) {
        let t = &self.target;
        let set = [t.url.is_some(), t.command.is_some(), t.embedded.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 && !t.broken.any_of(&["url", "command", "embedded"]) {
            let span = t
                .url
                .as_ref()
                .map(|u| u.span)
                .or(t.command.as_ref().map(|c| c.span))
                .unwrap_or_default();
            let span = if set == 0 { self.name.span } else { span };
            let given: Vec<&str> = [
                (t.url.is_some(), "`url`"),
                (t.command.is_some(), "`command`"),
                (t.embedded.is_some(), "`embedded`"),
            ]
            .into_iter()
            .filter_map(|(s, k)| s.then_some(k))
            .collect();
            cx.error::<()>(
                span,
                "spec::target",
                "the target needs exactly one of `url`, `command` or `embedded`",
            );
            if set > 1 {
                cx.label(format!("{} are set", and_list(&given)));
            }
            cx.hint(cx.in_syntax("e.g. `embedded = \"shop\"`, `url = \"http://127.0.0.1:8080\"` or `command = [\"./app\", \"--port\", \"{port}\"]`"));
        }
        if let Some(url) = &t.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            cx.error::<()>(
                url.span,
                "spec::url",
                "the target url must start with http:// or https://",
            );
        }
        if let Some(cmd) = &t.command {
            if cmd.is_empty() {
                cx.error::<()>(cmd.span, "spec::command", "the command is empty");
            } else if !cmd.iter().any(|a| a.contains("{port}")) {
                cx.error::<()>(
                    cmd.span,
                    "spec::command",
                    "the command has no `{port}` placeholder",
                );
                cx.hint("perfspec picks a free loopback port and passes it where `{port}` appears");
            }
        }
        if let Some(m) = &self.monitor
            && m.rss_growth_limit.is_some()
            && t.url.is_some()
        {
            cx.error::<()>(
                self.name.span,
                "spec::monitor",
                "`rss_growth_limit` needs a target perfspec starts (`command` or `embedded`): a `url` target's memory cannot be sampled",
            );
        }
    }

    /// Stages that fit the model, the bounds, `max_in_flight`.
    fn validate_load(&self, cx: &mut Ctx) {
        let closed = self.load.model == Some(ModelKind::Closed);
        let stages = &self.load.stages;
        if stages.is_empty() {
            cx.error::<()>(stages.span, "spec::stages", "at least one stage is needed");
        }
        for stage in stages.iter() {
            let level = stage.level();
            match (level.value, closed) {
                (Level::Rate(_), true) => {
                    cx.error::<()>(
                        level.span,
                        "spec::stage",
                        "a closed-model stage takes a number of users, not a rate",
                    );
                    cx.label("a rate");
                    cx.hint(cx.in_syntax("write e.g. `ramp_to = 20`, or set `model = \"open\"`"));
                }
                (Level::Users(_), false) => {
                    cx.error::<()>(
                        level.span,
                        "spec::stage",
                        "an open-model stage takes an arrival rate",
                    );
                    cx.label("a number of users");
                    cx.hint(cx.in_syntax("write e.g. `ramp_to = \"50/s\"`, or set `model = \"closed\"` for virtual users"));
                }
                (Level::Rate(r), false) if r < 0.0 => {
                    cx.error::<()>(level.span, "spec::range", "a rate must not be negative");
                }
                _ => {}
            }
            if stage.duration() <= 0.0 {
                cx.error::<()>(
                    level.span,
                    "spec::range",
                    "a stage must last longer than 0s",
                );
            }
        }
        self.check_bounds(cx);
        if let Some(m) = &self.load.max_in_flight {
            if closed {
                cx.error::<()>(
                    m.span,
                    "spec::model",
                    "`max_in_flight` applies to the open model only",
                );
            } else if m.value == 0 {
                cx.error::<()>(m.span, "spec::range", "`max_in_flight` must be at least 1");
                cx.label("no request could ever start");
            }
        }
    }

    /// Unique, weighted journeys with steps; each step checked by [`check_step`].
    fn validate_journeys(&self, cx: &mut Ctx) {
        if self.journey.is_empty() {
            cx.error::<()>(
                self.name.span,
                "spec::journey",
                "at least one `[[journey]]` is needed",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for j in &self.journey {
            if !names.insert(j.name.as_str()) {
                cx.error::<()>(
                    j.steps.span,
                    "spec::journey",
                    format!("duplicate journey name `{}`", j.name),
                );
            }
            if let Some(w) = &j.weight
                && w.value <= 0.0
            {
                cx.error::<()>(
                    w.span,
                    "spec::range",
                    "a journey weight must be greater than 0",
                );
            }
            if j.steps.is_empty() {
                cx.error::<()>(
                    j.steps.span,
                    "spec::journey",
                    "a journey needs at least one step",
                );
            }
            for step in j.steps.iter() {
                check_step(step, cx);
            }
        }
    }
}

/// One step: its request line, at most one body, a valid status, known capture sources.
fn check_step(step: &Step, cx: &mut Ctx) {
    check_request(&step.request, cx);
    let bodies: Vec<&str> = [
        (step.json.is_some(), "`json`"),
        (step.form.is_some(), "`form`"),
        (step.body.is_some(), "`body`"),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect();
    if bodies.len() > 1 {
        cx.error::<()>(
            step.request.span,
            "spec::body",
            "a step takes at most one of `json`, `form` and `body`",
        );
        cx.label(format!("this request has {}", and_list(&bodies)));
        cx.hint("send one body per request; keep the one the endpoint reads");
    }
    if let Some(e) = &step.expect
        && let Some(s) = &e.status
        && !(100..=599).contains(&s.value)
    {
        cx.error::<()>(
            s.span,
            "spec::range",
            "an HTTP status is between 100 and 599",
        );
    }
    for c in step.capture.iter().flat_map(|c| c.values()) {
        let ok = c.starts_with('$')
            || c.starts_with('/')
            || c.starts_with("header:")
            || c.starts_with("regex:");
        if !ok {
            cx.error::<()>(
                c.span,
                "spec::capture",
                format!("unknown capture source `{}`", c.value),
            );
            cx.label("unknown source");
            cx.hint("use a JSON path `$.token`, a JSON pointer `/token`, `header:NAME` or `regex:PATTERN`");
        }
    }
}

/// The highest arrival rate a spec may plan: beyond what one perfspec process can issue (the
/// goose backend measured about 20 000 requests/s on a 2-core machine; the bound leaves 50×).
pub const MAX_RATE: f64 = 1_000_000.0;
/// The most virtual users (closed model) or concurrent workers a spec may ask for.
pub const MAX_USERS: u64 = 100_000;
/// The longest run a spec may plan: 31 days. Longer stages are accepted only when
/// `max_duration` (at most 31 days) stops the run earlier.
pub const MAX_PLANNED_SECONDS: f64 = 31.0 * 86_400.0;
/// The longest think time between two steps.
pub const MAX_THINK_SECONDS: f64 = 3_600.0;

/// Arrivals the open-model stages plan, counted with checked arithmetic: `Err(i)` names the
/// stage at which the count leaves a 64-bit integer.
pub fn planned_requests(stages: &[Stage]) -> Result<u64, usize> {
    let (mut total, mut level) = (0u64, 0.0f64);
    for (i, s) in stages.iter().enumerate() {
        let rate = match s.level().value {
            Level::Rate(r) => r,
            Level::Users(_) => 0.0,
        };
        let mean = match s {
            Stage::Ramp { .. } => (level + rate) / 2.0,
            Stage::Hold { .. } => rate,
        };
        level = rate;
        let n = (mean * s.duration()).max(0.0).ceil();
        // u64::MAX as f64 rounds up to 2^64, so `<` keeps the conversion exact-or-below
        if !n.is_finite() || n >= u64::MAX as f64 {
            return Err(i);
        }
        total = total.checked_add(n as u64).ok_or(i)?;
    }
    Ok(total)
}

impl LoadDoc {
    /// Rates, user counts, durations and think times that cannot be meant: a located error
    /// each, instead of a run that goes flat out for years.
    fn check_bounds(&self, cx: &mut Ctx) {
        let closed = self.load.model == Some(ModelKind::Closed);
        let cut = self
            .max_duration
            .is_some_and(|d| d.0 <= MAX_PLANNED_SECONDS);
        let mut total = 0.0;
        let mut too_long = false;
        for stage in self.load.stages.iter() {
            let level = stage.level();
            match level.value {
                Level::Rate(r) if r > MAX_RATE => {
                    cx.error::<()>(
                        level.span,
                        "spec::range",
                        format!(
                            "a rate of {}/s is beyond what one process can issue (at most {}/s)",
                            super::units::trim_float(r),
                            MAX_RATE
                        ),
                    );
                    cx.label("too high");
                    cx.hint("spread a higher load over several perfspec processes");
                }
                Level::Users(u) if closed && u > MAX_USERS => {
                    cx.error::<()>(
                        level.span,
                        "spec::range",
                        format!("{u} virtual users are more than one process can run (at most {MAX_USERS})"),
                    );
                    cx.label("too many users");
                }
                _ => {}
            }
            total += stage.duration();
            if total > MAX_PLANNED_SECONDS && !cut && !too_long {
                too_long = true;
                cx.error::<()>(
                    level.span,
                    "spec::range",
                    format!(
                        "the stages last {} by the end of this one: longer than 31 days",
                        Duration(total)
                    ),
                );
                cx.label("ends after 31 days");
                cx.hint("shorten the stages, or set `max_duration` (at most 744h, 31 days) to stop the run there");
            }
        }
        if !closed
            && !self
                .load
                .stages
                .iter()
                .any(|s| matches!(s.level().value, Level::Rate(r) if r > MAX_RATE))
            && let Err(i) = planned_requests(&self.load.stages)
        {
            cx.error::<()>(
                self.load.stages[i].level().span,
                "spec::range",
                "the planned number of requests does not fit in a 64-bit count",
            );
            cx.label("the count overflows here");
            cx.hint("lower the rate or shorten the stage");
        }
        if let Some(st) = &self.load.stress {
            for (r, key) in [(&st.from, "from"), (&st.step, "step"), (&st.until, "until")] {
                if r.value.0 > MAX_RATE {
                    cx.error::<()>(
                        r.span,
                        "spec::range",
                        format!("`stress.{key}` is beyond what one process can issue (at most {MAX_RATE}/s)"),
                    );
                }
            }
            let rungs = crate::engine::search::staircase(st.from.0, st.step.0, st.until.0).len();
            if total + rungs as f64 * st.every.value.0 > MAX_PLANNED_SECONDS && !cut && !too_long {
                cx.error::<()>(
                    st.every.span,
                    "spec::range",
                    format!(
                        "the stress steps last {} ({rungs} steps): longer than 31 days",
                        Duration(rungs as f64 * st.every.value.0)
                    ),
                );
                cx.hint("shorten `every`, or set `max_duration` (at most 744h, 31 days) to stop the run there");
            }
        }
        for j in &self.journey {
            let own = j.think_time.map(|t| (t, j.steps.span));
            let steps = j
                .steps
                .iter()
                .filter_map(|s| s.think_time.map(|t| (t, s.request.span)));
            for (t, span) in own.into_iter().chain(steps) {
                if t.max.0 > MAX_THINK_SECONDS {
                    cx.error::<()>(
                        span,
                        "spec::range",
                        format!("a think time of {} is longer than 1 hour", t.max),
                    );
                    cx.label("its think time");
                    cx.hint("think times model the pause of a user between two requests: seconds, not hours");
                }
            }
        }
    }
}

fn check_request(req: &Spanned<Interpolated>, cx: &mut Ctx) {
    let mut parts = req.splitn(2, ' ');
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").trim();
    if !HTTP_METHODS.contains(&method) {
        cx.error::<()>(
            req.span,
            "spec::request",
            format!("unknown HTTP method `{method}`"),
        );
        cx.label("unknown method");
        cx.hint(format!(
            "write `\"METHOD /path\"` with METHOD one of {}",
            HTTP_METHODS.join(", ")
        ));
    } else if !(path.starts_with('/') || path.starts_with("{{")) {
        cx.error::<()>(
            req.span,
            "spec::request",
            "the request path must start with `/`",
        );
        cx.hint("write e.g. `\"GET /products\"`");
    }
}

/// Ratio used by the load backend's default SLO.
pub const DEFAULT_LATE_RATIO: Ratio = Ratio(0.01);

//! `kind = "scaling"`: horizontal (replicas) or vertical (threads) sweeps behind a balancer,
//! failover faults, and a Universal Scalability Law fit — or a fit of measurements from a CSV.

use std::collections::BTreeMap;

use super::decode::{Ctx, Duration, Rate, and_list, spec_table, word_enum};
use super::model::{RepeatCount, SloList, SpecName, push_slo_error, slo_span_in};
use super::source::Spanned;

spec_table! {
    /// A scaling spec file.
    pub struct ScalingDoc {
        kind: req String,
        name: req SpecName,
        description: opt String,
        /// Backend that runs the spec (default `native`).
        backend: opt Spanned<String>,
        max_duration: opt Duration,
        /// Run the spec this many times (1 to 100, default 1): a fresh backend run each time; SLOs are judged on the pooled data and the report shows the spread.
        repeat: opt RepeatCount,
        /// With `repeat`: a different seed in every repeat (the spec's seed + k − 1) instead of the same one.
        reseed: opt bool,
        slo: opt SloList,
        /// The service to replicate; omit with `measurements` (fit-only).
        service: opt Service,
        balancer: opt Balancer,
        sweep: opt Sweep,
        load: opt ScalingLoad,
        fault: opt Vec<Fault>,
        /// Fit-only: a CSV with a load column (`concurrency`, `load`, `N`, `clients`, `users`, `threads` or `replicas`) and a throughput column (`throughput`, `X`, `tput`, `rps`, `qps` or `ops`); path relative to the spec.
        measurements: opt Spanned<String>,
        /// Fit-only: the CSV's column names when they are not among the usual ones.
        columns: opt Spanned<MeasurementColumns>,
    }
}

spec_table! {
    /// The columns of a `measurements` CSV: `{ load = "vus", throughput = "req_s" }`.
    pub struct MeasurementColumns {
        /// The load level column (concurrency, clients, …).
        load: opt Spanned<String>,
        /// The throughput column (operations per second).
        throughput: opt Spanned<String>,
    }
}

spec_table! {
    /// The service under test: exactly one of `embedded` or `command`.
    pub struct Service {
        embedded: opt Spanned<super::load::EmbeddedService>,
        /// argv with `{port}` (and `{threads}`, the sweep's thread count or `threads`).
        command: opt Spanned<Vec<String>>,
        /// Readiness path of a `command` replica: `GET` must answer 2xx (default `/health`).
        ready: opt String,
        ready_timeout: opt Duration,
        env: opt BTreeMap<String, String>,
        /// Threads of each replica in a replica sweep: `{threads}` in the command, the
        /// shop's runtime workers (default 2).
        threads: opt Spanned<u32>,
    }
}

word_enum! {
    /// Who spreads requests over replicas.
    pub enum BalancerKind { Nginx = "nginx", Client = "client" }
}

word_enum! {
    /// Balancing method.
    pub enum Method { RoundRobin = "round_robin", LeastConn = "least_conn" }
}

spec_table! {
    /// The load balancer.
    pub struct Balancer {
        kind: req BalancerKind,
        method: opt Method,
        /// nginx: retry the next upstream on errors and timeouts (default true).
        retries: opt bool,
        /// nginx passive health check: failures before a replica is marked down.
        max_fails: opt u32,
        fail_timeout: opt Duration,
    }
}

spec_table! {
    /// Exactly one of `replicas` (horizontal) or `threads` (vertical).
    pub struct Sweep {
        replicas: opt Spanned<Vec<u32>>,
        threads: opt Spanned<Vec<u32>>,
        /// Vertical: pin each replica to this many CPUs.
        cpus: opt Spanned<Vec<u32>>,
    }
}

word_enum! {
    /// `max_rate`: search the highest rate meeting the step SLOs; `concurrency`: fixed closed load.
    pub enum LoadMode { MaxRate = "max_rate", Concurrency = "concurrency" }
}

spec_table! {
    /// Load at each sweep step.
    pub struct ScalingLoad {
        /// A load spec whose journeys are reused (path relative to this spec).
        profile: opt Spanned<String>,
        /// Without `profile`: each iteration is one `GET path` (default `/products` for the
        /// shop, `/` for a command).
        path: opt Spanned<String>,
        mode: opt LoadMode,
        /// For `mode = "concurrency"`.
        concurrency: opt Spanned<u32>,
        /// One step SLO (an alias of a one-element `step_slo`), e.g. `p95(latency) < 200ms`.
        latency_slo: opt Spanned<String>,
        /// The load SLOs a rung of the rate search (and each second of a failover) must
        /// hold, e.g. `["p99(latency) < 200ms", "error_rate < 5%"]`; without an `error_rate`
        /// one, `error_rate < 1%` is added ([`DEFAULT_STEP_ERROR_SLO`]).
        step_slo: opt Vec<Spanned<String>>,
        /// Time spent at each sweep step (default `20s`, from 1s to 120s).
        step_duration: opt Spanned<Duration>,
        /// Upper bound of the rate search.
        max_rate: opt Rate,
    }
}

word_enum! {
    /// `kill` = SIGKILL (crash), `hang` = SIGSTOP.
    pub enum FaultAction { Kill = "kill", Hang = "hang" }
}

spec_table! {
    /// A fault injected at one sweep step.
    pub struct Fault {
        /// The sweep value (replica or thread count) of the step that runs the fault.
        step: req Spanned<u32>,
        /// Time from the start of that step.
        at: req Spanned<Duration>,
        action: req FaultAction,
        /// Which replica (counting from 1).
        replica: req Spanned<u32>,
        /// Bring the replica back after this long (SIGCONT or restart).
        restore_after: opt Duration,
    }
}

/// Default `step_duration`, in seconds.
pub const DEFAULT_STEP_SECS: f64 = 20.0;
/// Shortest and longest `step_duration`, in seconds.
pub const STEP_SECS_RANGE: (f64, f64) = (1.0, 120.0);
/// The error limit of a step when no step SLO names `error_rate`.
pub const DEFAULT_STEP_ERROR_SLO: &str = "error_rate < 1%";
/// The load metrics a scaling step measures (what a step SLO may name).
pub const STEP_METRICS: &[&str] = &[
    "latency",
    "service_time",
    "requests",
    "errors",
    "error_rate",
    "throughput",
    "late",
    "arrivals",
    "late_ratio",
    "generator.slippage",
];

impl ScalingLoad {
    /// The step SLOs as written: `latency_slo` (if any), then `step_slo`.
    pub fn step_slos(&self) -> Vec<&Spanned<String>> {
        self.latency_slo
            .iter()
            .chain(self.step_slo.iter().flatten())
            .collect()
    }

    /// `step_duration` in seconds (the default when not set).
    pub fn step_secs(&self) -> f64 {
        self.step_duration
            .as_ref()
            .map_or(DEFAULT_STEP_SECS, |d| d.value.0)
    }

    /// Step SLOs parse, check against the load catalog and name a metric a step measures;
    /// `step_duration` is within [`STEP_SECS_RANGE`].
    fn validate_step(&self, cx: &mut Ctx) {
        for slo in self.latency_slo.iter() {
            check_step_slo(cx, slo, "latency_slo");
        }
        for slo in self.step_slo.iter().flatten() {
            check_step_slo(cx, slo, "step_slo");
        }
        if let Some(d) = &self.step_duration {
            let (lo, hi) = STEP_SECS_RANGE;
            if !(lo..=hi).contains(&d.value.0) {
                cx.error::<()>(
                    d.span,
                    "spec::range",
                    format!(
                        "`step_duration` is {}: a step lasts from {} to {}",
                        d.value,
                        Duration(lo),
                        Duration(hi)
                    ),
                );
                cx.label("out of range");
                cx.hint(
                    "sweep more steps rather than longer ones, or use a load spec for a long soak",
                );
            }
        }
    }
}

/// One step SLO: its syntax, its units against the load catalog, and a metric a step measures.
fn check_step_slo(cx: &mut Ctx, slo: &Spanned<String>, key: &str) {
    let expr = match super::slo::parse(slo) {
        Err(e) => {
            let span = slo_span_in(cx, slo, e.span);
            let mut e = e;
            e.message = format!("{key}: {}", e.message);
            return push_slo_error(cx, "slo::syntax", span, e);
        }
        Ok(expr) => expr,
    };
    if let Err(errors) = super::slo::check(&expr, super::catalog::Kind::Load) {
        for mut e in errors {
            let span = slo_span_in(cx, slo, e.span);
            e.message = format!("{key}: {}", e.message);
            push_slo_error(cx, "slo::check", span, e);
        }
        return;
    }
    let problem = if !STEP_METRICS.contains(&expr.metric.as_str()) {
        Some(format!(
            "{key}: `{}` is not measured in a scaling step (step metrics: {})",
            expr.metric,
            STEP_METRICS.join(", ")
        ))
    } else if expr.uses_baseline() {
        Some(format!(
            "{key}: a step SLO cannot use `baseline`: each rung is judged on its own"
        ))
    } else if expr.labels().contains_key("phase") {
        Some(format!(
            "{key}: a step has no phases: remove the `phase` selector"
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        cx.error::<()>(slo.span, "slo::check", message);
        cx.hint("step SLOs judge the load of one step, e.g. \"p99(latency) < 200ms\" or \"error_rate < 5%\"");
    }
}

impl ScalingDoc {
    /// Cross-field checks the table decoders cannot express: a fit-only spec, or a service,
    /// a sweep, the load and the faults, in the order their diagnostics are reported. A
    /// missing service or a sweep without one clear axis stops the checks there.
    pub fn validate(&self, cx: &mut Ctx) {
        if let Some(m) = &self.measurements {
            self.validate_fit_only(m, cx);
            return;
        }
        if let Some(c) = &self.columns {
            cx.error::<()>(
                c.span,
                "spec::scaling",
                "`columns` names the columns of a `measurements` CSV (fit-only)",
            );
            cx.hint("remove `columns`, or fit a CSV with `measurements`");
        }
        let Some(service) = self.validate_service(cx) else {
            return;
        };
        let Some((sweep, values)) = self.validate_sweep(service, cx) else {
            return;
        };
        self.validate_load(cx);
        self.validate_faults(sweep, values, cx);
    }

    /// A fit-only spec (`measurements`): a .csv and nothing to run.
    fn validate_fit_only(&self, m: &Spanned<String>, cx: &mut Ctx) {
        let conflicts: Vec<&str> = [
            (self.service.is_some(), "`service`"),
            (self.sweep.is_some(), "`sweep`"),
            (self.fault.is_some(), "`fault`"),
        ]
        .into_iter()
        .filter_map(|(set, key)| set.then_some(key))
        .collect();
        if !conflicts.is_empty() {
            cx.error::<()>(
                m.span,
                "spec::scaling",
                format!(
                    "`measurements` (fit-only) cannot be combined with {}",
                    and_list(&conflicts)
                ),
            );
            cx.label("fit-only");
            cx.hint("a fit-only spec fits the USL to a CSV and runs nothing: remove `measurements`, or remove the service, sweep and faults");
        }
        if !m.ends_with(".csv") {
            cx.error::<()>(
                m.span,
                "spec::scaling",
                "`measurements` must be a .csv file",
            );
        }
    }

    /// `[service]`: present, exactly one of `embedded` or `command`, a command with a program
    /// and a `{port}`, positive `threads`. `None` when there is no service.
    fn validate_service(&self, cx: &mut Ctx) -> Option<&Service> {
        let Some(service) = &self.service else {
            cx.error::<()>(
                self.name.span,
                "spec::scaling",
                "a scaling spec needs a `[service]` (or `measurements` for a fit-only spec)",
            );
            return None;
        };
        if service.embedded.is_some() == service.command.is_some() {
            cx.error::<()>(
                self.name.span,
                "spec::scaling",
                "the service needs exactly one of `embedded` or `command`",
            );
        }
        if let Some(cmd) = &service.command {
            if cmd.is_empty() || cmd[0].trim().is_empty() {
                cx.error::<()>(
                    cmd.span,
                    "spec::scaling",
                    "the command needs a program, e.g. [\"./app\", \"--port\", \"{port}\"]",
                );
            } else if !cmd.iter().any(|a| a.contains("{port}")) {
                cx.error::<()>(
                    cmd.span,
                    "spec::scaling",
                    "the command needs a `{port}` placeholder: each replica listens on a port perfspec picks",
                );
                cx.hint("e.g. command = [\"./app\", \"--port\", \"{port}\"]");
            }
        }
        if let Some(t) = &service.threads
            && t.value == 0
        {
            cx.error::<()>(t.span, "spec::range", "`threads` must be at least 1");
        }
        Some(service)
    }

    /// `[sweep]`: present, exactly one of `replicas` or `threads` (a thread sweep of a command
    /// needs `{threads}`), distinct positive values, one `cpus` value per step. The sweep and
    /// its values, or `None` when there is no sweep or no single axis.
    fn validate_sweep(
        &self,
        service: &Service,
        cx: &mut Ctx,
    ) -> Option<(&Sweep, &Spanned<Vec<u32>>)> {
        let Some(sweep) = &self.sweep else {
            cx.error::<()>(
                self.name.span,
                "spec::scaling",
                "a scaling spec needs a `[sweep]` with `replicas` or `threads`",
            );
            return None;
        };
        let values = match (&sweep.replicas, &sweep.threads) {
            (Some(r), None) => r,
            (None, Some(t)) => {
                if let Some(cmd) = &service.command
                    && !cmd.iter().any(|a| a.contains("{threads}"))
                {
                    cx.error::<()>(
                        cmd.span,
                        "spec::scaling",
                        "a thread sweep needs a `{threads}` placeholder in the command",
                    );
                }
                t
            }
            _ => {
                cx.error::<()>(
                    self.name.span,
                    "spec::scaling",
                    "the sweep needs exactly one of `replicas` or `threads`",
                );
                return None;
            }
        };
        if values.is_empty() || values.contains(&0) {
            cx.error::<()>(
                values.span,
                "spec::sweep",
                "sweep values are positive integers",
            );
        }
        if let Some(v) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| values[..i].contains(v).then_some(*v))
        {
            cx.error::<()>(
                values.span,
                "spec::sweep",
                format!("sweep values must be distinct: {v} appears twice"),
            );
            cx.label("duplicate value");
            cx.hint("each value is one sweep step; list each once");
        }
        if let Some(cpus) = &sweep.cpus
            && cpus.len() != values.len()
        {
            cx.error::<()>(
                cpus.span,
                "spec::sweep",
                "`cpus` needs one value per sweep step",
            );
        }
        Some((sweep, values))
    }

    /// `[load]`: present; `path` or `profile` (well-formed), what the mode needs
    /// (`concurrency` or step SLOs), the step duration and step SLOs.
    fn validate_load(&self, cx: &mut Ctx) {
        let Some(load) = &self.load else {
            cx.error::<()>(
                self.name.span,
                "spec::load",
                "a scaling spec needs a `[load]` table",
            );
            return;
        };
        let mode = load.mode.unwrap_or(LoadMode::MaxRate);
        if let (Some(_), Some(path)) = (&load.profile, &load.path) {
            cx.error::<()>(
                path.span,
                "spec::load",
                "`path` and `profile` exclude each other: the profile's journeys say what to request",
            );
        }
        if let Some(path) = &load.path
            && !path.starts_with('/')
        {
            cx.error::<()>(
                path.span,
                "spec::load",
                "`path` is a path on the replicas, starting with `/`",
            );
        }
        if let Some(p) = &load.profile
            && ![".toml", ".yaml", ".yml"].iter().any(|e| p.ends_with(e))
        {
            cx.error::<()>(
                p.span,
                "spec::load",
                "`profile` is a load spec file (.toml, .yaml or .yml)",
            );
        }
        if mode == LoadMode::Concurrency && load.concurrency.is_none() {
            let message = cx.in_syntax("`mode = \"concurrency\"` needs `concurrency`");
            cx.error::<()>(self.name.span, "spec::load", message);
        }
        if let Some(c) = &load.concurrency
            && c.value == 0
        {
            cx.error::<()>(c.span, "spec::range", "`concurrency` must be at least 1");
        }
        load.validate_step(cx);
        if mode == LoadMode::MaxRate && load.step_slos().is_empty() {
            let message = cx.in_syntax(
                "`mode = \"max_rate\"` needs `step_slo` (or `latency_slo`), e.g. [\"p95(latency) < 200ms\"]",
            );
            cx.error::<()>(self.name.span, "spec::load", message);
        }
    }

    /// `[[fault]]`: one per step, due before the step ends, at a step of the sweep `values`
    /// and, in a replica sweep, at a replica that step runs.
    fn validate_faults(&self, sweep: &Sweep, values: &Spanned<Vec<u32>>, cx: &mut Ctx) {
        let step_secs = self
            .load
            .as_ref()
            .map_or(DEFAULT_STEP_SECS, ScalingLoad::step_secs);
        let mut faulted = std::collections::BTreeSet::new();
        for f in self.fault.iter().flatten() {
            if !faulted.insert(f.step.value) {
                cx.error::<()>(
                    f.step.span,
                    "spec::fault",
                    format!("step {} already has a fault", f.step.value),
                );
                cx.label("second fault for this step");
                cx.hint("one fault per sweep step: put the other fault on another step");
            }
            if f.at.value.0 >= step_secs {
                cx.error::<()>(
                    f.at.span,
                    "spec::fault",
                    format!(
                        "the fault is due {} into a step that lasts {}",
                        f.at.value,
                        super::decode::Duration(step_secs)
                    ),
                );
                cx.label("after the step ends");
                cx.hint("make `at` shorter than `load.step_duration` (default 20s)");
            }
            if !values.contains(&f.step.value) {
                cx.error::<()>(
                    f.step.span,
                    "spec::fault",
                    format!("no sweep step {} (steps: {:?})", f.step.value, values.value),
                );
                cx.label("not a sweep value");
                cx.hint("a fault's `step` is the sweep value (replica or thread count) of the step that runs it");
            } else if sweep.replicas.is_some()
                && (f.replica.value == 0 || f.replica.value > f.step.value)
            {
                cx.error::<()>(
                    f.replica.span,
                    "spec::range",
                    format!(
                        "there is no replica {} at step {} (replicas count from 1)",
                        f.replica.value, f.step.value
                    ),
                );
            }
        }
    }
}

//! `kind = "scaling"`: horizontal (replicas) or vertical (threads) sweeps behind a balancer,
//! failover faults, and a Universal Scalability Law fit — or a fit of measurements from a CSV.

use std::collections::BTreeMap;

use super::decode::{Ctx, Duration, Rate, and_list, spec_table, word_enum};
use super::model::{SloList, SpecName, push_slo_error, slo_span_in};
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
    /// `max_rate`: search the highest rate meeting `latency_slo`; `concurrency`: fixed closed load.
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
        /// The SLO a rate must meet in `max_rate` mode, e.g. `p95(latency) < 200ms`.
        latency_slo: opt Spanned<String>,
        /// Time spent at each sweep step (default `20s`).
        step_duration: opt Duration,
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

impl ScalingDoc {
    pub fn validate(&self, cx: &mut Ctx) {
        if let Some(m) = &self.measurements {
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
        let Some(service) = &self.service else {
            cx.error::<()>(
                self.name.span,
                "spec::scaling",
                "a scaling spec needs a `[service]` (or `measurements` for a fit-only spec)",
            );
            return;
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
        let Some(sweep) = &self.sweep else {
            cx.error::<()>(
                self.name.span,
                "spec::scaling",
                "a scaling spec needs a `[sweep]` with `replicas` or `threads`",
            );
            return;
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
                return;
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
        if let Some(load) = &self.load {
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
            if let Some(slo) = &load.latency_slo {
                let errors = match super::slo::parse(slo) {
                    Err(e) => vec![("slo::syntax", e)],
                    Ok(expr) => super::slo::check(&expr, super::catalog::Kind::Load)
                        .err()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| ("slo::check", e))
                        .collect(),
                };
                for (code, mut e) in errors {
                    let span = slo_span_in(cx, slo, e.span);
                    e.message = format!("latency_slo: {}", e.message);
                    push_slo_error(cx, code, span, e);
                }
            } else if mode == LoadMode::MaxRate {
                let message = cx.in_syntax(
                    "`mode = \"max_rate\"` needs `latency_slo`, e.g. \"p95(latency) < 200ms\"",
                );
                cx.error::<()>(self.name.span, "spec::load", message);
            }
        } else {
            cx.error::<()>(
                self.name.span,
                "spec::load",
                "a scaling spec needs a `[load]` table",
            );
        }
        let step_secs = self
            .load
            .as_ref()
            .and_then(|l| l.step_duration)
            .map_or(20.0, |d| d.0);
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

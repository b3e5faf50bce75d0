//! The plan of a scaling spec: a fit of a CSV, or a sweep of replicas or threads — never a
//! bag of options. A sweep without a service, a `[sweep]` or a `[load]` is not a plan (the
//! spec's validation reports it, and planning refuses it), so the sweep runner never meets one.

use std::fmt;
use std::sync::Arc;

use crate::backends::http::journey;
use crate::engine::plan::secs;
use crate::spec::Spec;
use crate::spec::diagnostic::Diagnostic;
use crate::spec::scaling::{
    BalancerKind, FaultAction, LoadMode, Method, ScalingDoc, ScalingLoad, Service,
};
use crate::spec::units::trim_float;

/// `step_duration` when the spec gives none, seconds.
/// `concurrency` (users per replica) when the spec gives none.
pub const DEFAULT_CONCURRENCY: u32 = 4;
/// The highest rate a `max_rate` search tries when the spec gives no `max_rate`.
pub const DEFAULT_MAX_RATE: f64 = 2000.0;
/// Threads of each embedded shop replica in a replica sweep.
pub const DEFAULT_THREADS: u32 = 2;

#[derive(serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ScalingPlan {
    /// Fit the USL to measurements in a CSV; nothing runs.
    FitOnly { csv: String },
    /// Run the service at every step of the sweep, then fit.
    Sweep(Box<SweepPlan>),
}

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Horizontal: replicas behind the balancer.
    Replicas,
    /// Vertical: threads of one replica.
    Threads,
}

impl Axis {
    pub fn label(self) -> &'static str {
        match self {
            Axis::Replicas => "replicas",
            Axis::Threads => "threads",
        }
    }
}

#[derive(serde::Serialize)]
pub struct SweepPlan {
    pub axis: Axis,
    pub steps: Vec<StepPlan>,
    pub step_duration_s: f64,
    pub load: LoadPlan,
    /// `embedded shop` or the command.
    pub service: String,
    /// How requests reach the replicas.
    pub balancer: String,
    /// The spec's tables, for the runner.
    #[serde(skip)]
    pub service_spec: Service,
    #[serde(skip)]
    pub balancer_spec: Option<crate::spec::scaling::Balancer>,
    #[serde(skip)]
    pub load_spec: ScalingLoad,
    /// The `profile`'s journeys, compiled once.
    #[serde(skip)]
    pub profile: Option<Arc<journey::Plan>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepPlan {
    /// The sweep value (the `replicas=` or `threads=` label).
    pub value: u32,
    pub replicas: u32,
    pub threads: u32,
    /// CPUs each replica is pinned to (`sweep.cpus`).
    pub cpus: Option<u32>,
    /// `mode = "concurrency"`: users of this step.
    pub users: Option<u32>,
    pub fault: Option<FaultPlan>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultPlan {
    /// `kill` or `hang`.
    pub action: &'static str,
    /// The signal, for the runner.
    #[serde(skip)]
    pub kind: FaultAction,
    /// 1-based replica index.
    pub replica: u32,
    /// Seconds into the step.
    pub at_s: f64,
    pub restore_after_s: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadPlan {
    /// `max_rate` (a rate search per step) or `concurrency` (fixed users per replica).
    pub mode: &'static str,
    /// Users per replica (concurrency mode).
    pub concurrency: u32,
    /// The SLO every rung of a rate search must hold.
    pub latency_slo: Option<String>,
    /// The highest rate a search tries, per second.
    pub max_rate: f64,
    /// `GET /path`, or `profile FILE` (its journeys).
    pub requests: String,
}

/// Plan a scaling spec whose checks passed.
pub fn plan(
    spec: &Spec,
    doc: &ScalingDoc,
    profile: Option<journey::Plan>,
) -> Result<ScalingPlan, Vec<Diagnostic>> {
    if let Some(m) = &doc.measurements {
        return Ok(ScalingPlan::FitOnly {
            csv: m.value.clone(),
        });
    }
    // the spec's validation reports each of these with its place; planning refuses them too
    let missing = |what: &str| {
        vec![
            Diagnostic::error("spec::scaling", format!("a scaling sweep needs {what}"))
                .at(&spec.file, doc.name.span),
        ]
    };
    let service = doc
        .service
        .as_ref()
        .ok_or_else(|| missing("a `[service]`"))?;
    let sweep = doc.sweep.as_ref().ok_or_else(|| missing("a `[sweep]`"))?;
    let load = doc
        .load
        .as_ref()
        .ok_or_else(|| missing("a `[load]` table"))?;
    let (axis, values) = match (&sweep.replicas, &sweep.threads) {
        (Some(r), None) => (Axis::Replicas, &r.value),
        (None, Some(t)) => (Axis::Threads, &t.value),
        _ => return Err(missing("exactly one of `replicas` or `threads`")),
    };
    let mode = load.mode.unwrap_or(LoadMode::MaxRate);
    let per_unit = load
        .concurrency
        .as_ref()
        .map_or(DEFAULT_CONCURRENCY, |c| c.value);
    let base_threads = service
        .threads
        .as_ref()
        .map_or(DEFAULT_THREADS, |t| t.value);
    let steps = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (replicas, threads) = match axis {
                Axis::Replicas => (v, base_threads),
                Axis::Threads => (1, v),
            };
            StepPlan {
                value: v,
                replicas,
                threads,
                cpus: sweep.cpus.as_ref().and_then(|c| c.get(i).copied()),
                users: (mode == LoadMode::Concurrency).then(|| {
                    per_unit
                        .saturating_mul(replicas)
                        .min(super::driver::MAX_USERS)
                }),
                fault: doc
                    .fault
                    .iter()
                    .flatten()
                    .find(|f| f.step.value == v)
                    .map(|f| FaultPlan {
                        action: match f.action {
                            FaultAction::Kill => "kill",
                            FaultAction::Hang => "hang",
                        },
                        kind: f.action,
                        replica: f.replica.value,
                        at_s: f.at.value.0,
                        restore_after_s: f.restore_after.map(|d| d.0),
                    }),
            }
        })
        .collect();
    Ok(ScalingPlan::Sweep(Box::new(SweepPlan {
        axis,
        steps,
        // validation keeps it within 1 s–2 min
        step_duration_s: load.step_secs(),
        load: LoadPlan {
            mode: match mode {
                LoadMode::MaxRate => "max_rate",
                LoadMode::Concurrency => "concurrency",
            },
            concurrency: per_unit,
            latency_slo: load.latency_slo.as_ref().map(|s| s.value.clone()),
            max_rate: load.max_rate.map_or(DEFAULT_MAX_RATE, |r| r.0),
            requests: match (&load.profile, &load.path, &service.command) {
                (Some(p), _, _) => format!("profile {}", p.value),
                (None, Some(p), _) => format!("GET {}", p.value),
                (None, None, Some(_)) => "GET /".into(),
                (None, None, None) => "GET /products".into(),
            },
        },
        service: match (&service.embedded, &service.command) {
            (Some(e), _) => format!("embedded {}", e.value),
            (None, Some(c)) => c.value.join(" "),
            (None, None) => String::new(),
        },
        balancer: balancer(doc, axis),
        service_spec: service.clone(),
        balancer_spec: doc.balancer.clone(),
        load_spec: load.clone(),
        profile: profile.map(Arc::new),
    })))
}

fn balancer(doc: &ScalingDoc, axis: Axis) -> String {
    if axis == Axis::Threads {
        return "none (one replica)".into();
    }
    let Some(b) = &doc.balancer else {
        return "client round_robin".into();
    };
    let kind = match b.kind {
        BalancerKind::Nginx => "nginx",
        BalancerKind::Client => "client",
    };
    let method = match b.method {
        Some(Method::LeastConn) => "least_conn",
        _ => "round_robin",
    };
    format!("{kind} {method}")
}

impl fmt::Display for ScalingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self {
            ScalingPlan::FitOnly { csv } => {
                return write!(f, "fit only: the USL fitted to {csv} (nothing runs)");
            }
            ScalingPlan::Sweep(p) => p,
        };
        writeln!(
            f,
            "sweep of {} over {}, {} per step, balancer {}",
            p.axis.label(),
            p.service,
            secs(p.step_duration_s),
            p.balancer
        )?;
        let l = &p.load;
        match l.mode {
            "max_rate" => writeln!(
                f,
                "load: {}, rate search up to {}/s holding `{}`",
                l.requests,
                trim_float(l.max_rate),
                l.latency_slo.as_deref().unwrap_or("-")
            )?,
            _ => writeln!(
                f,
                "load: {}, {} users per replica",
                l.requests, l.concurrency
            )?,
        }
        for (i, s) in p.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "  step {}={}: {} replica(s) × {} thread(s)",
                p.axis.label(),
                s.value,
                s.replicas,
                s.threads
            )?;
            if let Some(c) = s.cpus {
                write!(f, ", {c} cpu(s) each")?;
            }
            if let Some(u) = s.users {
                write!(f, ", {u} users")?;
            }
            if let Some(fault) = &s.fault {
                write!(
                    f,
                    ", fault: {} replica {} at {}",
                    fault.action,
                    fault.replica,
                    secs(fault.at_s)
                )?;
                if let Some(r) = fault.restore_after_s {
                    write!(f, ", restored after {}", secs(r))?;
                }
            }
        }
        Ok(())
    }
}

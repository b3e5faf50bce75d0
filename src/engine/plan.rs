//! The Plan stage: what a backend will do with a validated spec, with every default resolved
//! and every check done. `validate` passes exactly when planning does, `run` executes the
//! plan, and `run --dry-run [--format json]` prints it.
//!
//! A plan is typed per kind (the backend's own struct or enum); the engine sees it through
//! [`PlanDetail`]: a human rendering (`Display`) and a JSON one (`serde::Serialize`). The
//! backend that made a plan gets its type back with [`Plan::get`].

use std::any::Any;
use std::fmt;

use crate::spec::Spec;
use crate::spec::diagnostic::Diagnostic;

/// What a kind's plan offers the engine: a few human lines and a JSON object.
pub trait PlanDetail: fmt::Display + Any + Send + Sync {
    fn to_json(&self) -> serde_json::Value;
}

impl<T: serde::Serialize + fmt::Display + Send + Sync + 'static> PlanDetail for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("cannot serialize the plan: {e}") }),
        )
    }
}

/// A backend's plan for one spec.
pub struct Plan {
    detail: Box<dyn PlanDetail>,
    /// Warnings found while planning (e.g. a capability caveat): printed, not fatal.
    pub warnings: Vec<Diagnostic>,
}

impl Plan {
    pub fn new(detail: impl PlanDetail) -> Plan {
        Plan {
            detail: Box::new(detail),
            warnings: Vec::new(),
        }
    }

    /// Plan after checks: errors among `checks` fail planning; warnings travel with the plan.
    pub fn after_checks(
        checks: Vec<Diagnostic>,
        build: impl FnOnce() -> Result<Plan, Vec<Diagnostic>>,
    ) -> Result<Plan, Vec<Diagnostic>> {
        if checks.iter().any(Diagnostic::is_error) {
            return Err(checks);
        }
        let mut plan = build()?;
        plan.warnings.splice(0..0, checks);
        Ok(plan)
    }

    /// The backend's own plan type, when this plan is one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let any: &dyn Any = self.detail.as_ref();
        any.downcast_ref::<T>()
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.detail.to_json()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.detail.fmt(f)
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plan({})", self.to_json())
    }
}

/// A validated spec and its plan: what `run` executes.
#[derive(Debug)]
pub struct Planned {
    pub spec: Spec,
    pub plan: Plan,
}

/// The error a backend returns when it is handed a plan of another kind (a library user's
/// mistake; the CLI always plans with the same backend).
pub fn wrong_plan(backend: &str) -> super::BackendError {
    super::BackendError::Unavailable(format!(
        "the `{backend}` backend was handed a plan it did not make"
    ))
}

/// `12.5` → `"12.5s"`, `20` → `"20s"`: seconds for plan lines.
pub fn secs(s: f64) -> String {
    format!("{}s", crate::spec::units::trim_float(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Demo {
        n: u32,
    }

    impl fmt::Display for Demo {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "demo {}", self.n)
        }
    }

    #[test]
    fn a_plan_gives_back_its_type_and_renders_both_ways() {
        let p = Plan::new(Demo { n: 3 });
        assert_eq!(p.get::<Demo>().map(|d| d.n), Some(3));
        assert!(p.get::<String>().is_none());
        assert_eq!(p.to_string(), "demo 3");
        assert_eq!(p.to_json(), serde_json::json!({"n": 3}));
    }

    #[test]
    fn checks_with_an_error_fail_planning_and_warnings_travel() {
        let warn = Diagnostic::warning("t::w", "careful");
        let p = Plan::after_checks(vec![warn.clone()], || Ok(Plan::new(Demo { n: 1 }))).unwrap();
        assert_eq!(p.warnings.len(), 1);
        let err = Plan::after_checks(vec![warn, Diagnostic::error("t::e", "no")], || {
            panic!("planning must not run after a failed check")
        })
        .unwrap_err();
        assert_eq!(err.len(), 2);
    }
}

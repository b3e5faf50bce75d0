//! Events of a cache run: an instance restarting with an empty L1, the Redis perfspec
//! started being killed (and restored), a memcached node killed (and restored) or added. They fire at a fraction of the operations or at a time.

use std::sync::Arc;
use std::time::Duration;

use super::plan::{Action, Plan, PlannedEvent};
use super::run_state::{Run, lock};
use crate::spec::cache::At;

/// Events due at an operation count, sorted by it.
pub type CountedEvents = Vec<(u64, PlannedEvent)>;
/// Events due after a time.
pub type TimedEvents = Vec<(Duration, PlannedEvent)>;

/// The events of a plan split into those due at an operation count (sorted) and those due
/// after a time.
pub fn schedule(plan: &Plan) -> (CountedEvents, TimedEvents) {
    let mut due = Vec::new();
    let mut timed = Vec::new();
    for e in &plan.events {
        match (e.at, plan.ops, plan.duration) {
            (At::Fraction(f), Some(ops), _) => due.push(((f * ops as f64).round() as u64, *e)),
            (At::Fraction(f), None, Some(d)) => timed.push((d.mul_f64(f), *e)),
            (At::Time(s), _, _) => timed.push((Duration::from_secs_f64(s), *e)),
            (At::Fraction(_), None, None) => {}
        }
    }
    due.sort_by_key(|(n, _)| *n);
    (due, timed)
}

/// The instances an event restarts (their L1s start empty).
pub fn restarted(plan: &Plan) -> Vec<usize> {
    plan.events
        .iter()
        .filter_map(|e| match e.action {
            Action::Restart(i) => Some(i),
            Action::KillRedis { .. } | Action::KillNode { .. } | Action::AddNode => None,
        })
        .collect()
}

/// Fire the timed events on their own tasks; they are dropped when the run ends first.
pub fn spawn_timed(run: &Arc<Run>, timed: Vec<(Duration, PlannedEvent)>) {
    for (after, e) in timed {
        let run = run.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => fire(&run, e).await,
                () = run.done.cancelled() => {}
            }
        });
    }
}

/// Carry out one event now.
pub async fn fire(run: &Arc<Run>, e: PlannedEvent) {
    let t = run.now();
    match e.action {
        Action::Restart(i) => {
            if let Some(inst) = run.instances.get(i) {
                let what = match inst.restart(&run.shared) {
                    Ok(()) => format!("instance {} restarted with an empty l1", i + 1),
                    Err(e) => format!("instance {} could not restart: {e}", i + 1),
                };
                run.record(t, what);
            }
        }
        Action::KillNode {
            node,
            restore_after,
        } => {
            let Some(mc) = &run.memcached else { return };
            lock(&mc.events).push((t, "node kill"));
            run.record(t, mc.cluster.kill(node).await);
            if let Some(d) = restore_after {
                let (run, cluster) = (run.clone(), mc.cluster.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = run.done.cancelled() => return,
                    }
                    let t = run.now();
                    run.record(t, cluster.restore(node).await);
                });
            }
        }
        Action::AddNode => {
            let Some(mc) = &run.memcached else { return };
            lock(&mc.events).push((t, "node addition"));
            let what = mc.cluster.add(&mc.tier).await;
            run.record(t, what);
        }
        Action::KillRedis { restore_after } => {
            let Some(server) = &run.server else { return };
            server.lock().await.kill();
            run.record(t, "redis-server killed (SIGKILL)".into());
            if let Some(d) = restore_after {
                let run = run.clone();
                let server = server.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = run.done.cancelled() => return,
                    }
                    let t = run.now();
                    let msg = match server.lock().await.restart().await {
                        Ok(()) => "redis-server restarted, empty".to_string(),
                        Err(e) => format!("redis-server did not restart: {e}"),
                    };
                    run.record(t, msg);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Body, Spec};

    fn plan_of(yaml: &str) -> Plan {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        let l = crate::spec::loader::load_file(&p, &[], &|_| None);
        let msgs: Vec<String> = l.diagnostics.iter().map(|d| d.message.clone()).collect();
        let spec: Spec = l.spec.unwrap_or_else(|| panic!("{msgs:?}"));
        match &spec.body {
            Body::Cache(doc) => super::super::plan::plan(doc),
            _ => unreachable!(),
        }
    }

    #[test]
    fn fractions_of_ops_become_operation_counts_and_times_stay_times() {
        let p = plan_of(
            "kind: cache\nname: e\ntopology: { instances: 3, l1: { backend: moka, capacity: 10 } }\nworkload: { keys: 100, ops: 1000 }\nevents: [ { at: 75%, restart: 3 }, { at: 2s, restart: 1 }, { at: 25%, restart: 2 } ]\n",
        );
        let (due, timed) = schedule(&p);
        let counts: Vec<(u64, Action)> = due.iter().map(|(n, e)| (*n, e.action)).collect();
        assert_eq!(
            counts,
            vec![(250, Action::Restart(1)), (750, Action::Restart(2))]
        );
        assert_eq!(timed.len(), 1);
        assert_eq!(timed[0].0, Duration::from_secs(2));
        assert_eq!(timed[0].1.action, Action::Restart(0));
        let mut r = restarted(&p);
        r.sort_unstable();
        assert_eq!(r, vec![0, 1, 2]);
    }

    #[test]
    fn fractions_of_a_duration_become_times() {
        let p = plan_of(
            "kind: cache\nname: e\ntopology: { instances: 2, l1: { backend: moka, capacity: 10 } }\nworkload: { keys: 100, duration: 10s }\nevents: [ { at: 50%, restart: 2 } ]\n",
        );
        let (due, timed) = schedule(&p);
        assert!(due.is_empty());
        assert_eq!(timed.len(), 1);
        assert_eq!(timed[0].0, Duration::from_secs(5));
    }
}

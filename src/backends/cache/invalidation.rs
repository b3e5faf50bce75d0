//! Invalidation between instances through Redis: pub/sub messages a writer publishes, and
//! client-side caching (`CLIENT TRACKING … BCAST`) where the server pushes invalidations.
//! One listener task per instance turns the pushes into L1 evictions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::run_state::Run;
use super::tiers::timed;

/// Start one listener per `(instance, pushes)` until the run ends. `prefix` is the run's
/// Redis key prefix; `tracking` says whether a lost connection must turn tracking on again.
pub fn listen(
    run: &Arc<Run>,
    receivers: Vec<(usize, UnboundedReceiver<redis::PushInfo>)>,
    prefix: &str,
    tracking: bool,
) {
    for (i, rx) in receivers {
        let (run, prefix) = (run.clone(), prefix.to_string());
        tokio::spawn(async move { listener(run, i, rx, prefix, tracking).await });
    }
}

async fn listener(
    run: Arc<Run>,
    i: usize,
    mut rx: UnboundedReceiver<redis::PushInfo>,
    prefix: String,
    tracking: bool,
) {
    let done = run.done.clone();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            () = done.cancelled() => None,
        };
        let Some(msg) = msg else { break };
        let inst = &run.instances[i];
        match msg.kind {
            redis::PushKind::Message => {
                if let Some(redis::Value::BulkString(payload)) = msg.data.get(1) {
                    inst.on_invalidation(&String::from_utf8_lossy(payload))
                        .await;
                }
            }
            redis::PushKind::Invalidate => {
                let keys = match msg.data.first() {
                    Some(redis::Value::Array(keys)) => Some(
                        keys.iter()
                            .filter_map(|k| match k {
                                redis::Value::BulkString(b) => tracked_key(&prefix, b),
                                _ => None,
                            })
                            .collect(),
                    ),
                    _ => None,
                };
                let _ = inst.on_tracking_invalidation(keys).await;
            }
            redis::PushKind::Disconnection if tracking => {
                // invalidations were lost with the connection: drop the L1, track again
                let _ = inst.flush_l1();
                let t = run.now();
                let again = match inst.l2_connection() {
                    Some(conn) => retrack(&conn, &prefix, &done).await,
                    None => false,
                };
                let after = run.now() - t;
                let what = if again {
                    format!("tracking on again {after:.2}s later")
                } else {
                    "tracking could not be turned on again".to_string()
                };
                run.record(
                    t,
                    format!(
                        "instance {} lost its Redis connection: l1 flushed, {what}",
                        i + 1
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Redis client-side caching in broadcast mode for this run's keys: the server pushes an
/// invalidation to this connection whenever another client changes one of them.
pub async fn enable_tracking(
    conn: &redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<(), String> {
    let mut c = conn.clone();
    timed(
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(format!("{prefix}:"))
            .arg("NOLOOP")
            .query_async::<()>(&mut c),
    )
    .await
    .map_err(|e| e.0)
}

/// Turn tracking on again after a reconnect (bounded: 10 s, or until the run ends).
async fn retrack(
    conn: &redis::aio::ConnectionManager,
    prefix: &str,
    done: &CancellationToken,
) -> bool {
    for _ in 0..200 {
        if done.is_cancelled() {
            return false;
        }
        if enable_tracking(conn, prefix).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The workload key of a tracked Redis key `<prefix>:<key>`.
fn tracked_key(prefix: &str, redis_key: &[u8]) -> Option<u64> {
    std::str::from_utf8(redis_key)
        .ok()?
        .strip_prefix(prefix)?
        .strip_prefix(':')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::tracked_key;

    #[test]
    fn tracked_keys_are_read_back_only_under_the_run_prefix() {
        assert_eq!(tracked_key("perfspec:0", b"perfspec:0:42"), Some(42));
        assert_eq!(tracked_key("perfspec:0", b"perfspec:1:42"), None);
        assert_eq!(tracked_key("perfspec:0", b"perfspec:0:x"), None);
        assert_eq!(tracked_key("perfspec:0", b"perfspec:042"), None);
    }
}

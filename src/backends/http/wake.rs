//! Waking an arrival at its intended time, to the tens of microseconds.
//!
//! tokio's timer has a resolution of 1 ms and fires up to ~1 ms after the deadline: an
//! arrival that waited on it alone would start late by up to a millisecond, and that delay
//! (the generator's, not the target's) would land in `latency`, which counts from the
//! intended time. [`until`] sleeps on tokio's timer to within [`COARSE`] of the deadline,
//! then hands the rest to one waker thread, which sleeps on a condition variable (Linux
//! hrtimers: tens of microseconds late) and wakes each arrival in deadline order. Nothing
//! spins, so precise wake-ups cost no CPU at any rate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How close to the deadline tokio's timer brings an arrival before the waker thread
/// takes over (more than the timer's resolution and lateness).
const COARSE: Duration = Duration::from_millis(3);

/// Pending wake-ups, earliest first (the sequence number keeps equal deadlines in order).
struct Waker {
    heap: Mutex<BinaryHeap<Reverse<(Instant, u64, Entry)>>>,
    changed: Condvar,
    seq: std::sync::atomic::AtomicU64,
}

/// A wake-up's channel (ordered by nothing: the deadline and sequence decide).
struct Entry(oneshot::Sender<()>);

impl PartialEq for Entry {
    fn eq(&self, _: &Entry) -> bool {
        true
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, _: &Entry) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// The waker thread, started on first use (`None` when it could not start).
fn waker() -> Option<&'static Waker> {
    static W: OnceLock<Option<&'static Waker>> = OnceLock::new();
    *W.get_or_init(|| {
        let w: &'static Waker = Box::leak(Box::new(Waker {
            heap: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
            seq: std::sync::atomic::AtomicU64::new(0),
        }));
        std::thread::Builder::new()
            .name("perfspec-arrival-waker".into())
            .spawn(move || w.run())
            .ok()
            .map(|_| w)
    })
}

impl Waker {
    fn run(&self) {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            match heap.peek().map(|Reverse((at, _, _))| *at) {
                None => {
                    heap = self.changed.wait(heap).unwrap_or_else(|e| e.into_inner());
                }
                Some(at) if at <= now => {
                    if let Some(Reverse((_, _, Entry(tx)))) = heap.pop() {
                        // the arrival may have been cancelled meanwhile
                        let _ = tx.send(());
                    }
                }
                Some(at) => {
                    heap = self
                        .changed
                        .wait_timeout(heap, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    fn register(&self, at: Instant) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = heap.peek().is_none_or(|Reverse((first, _, _))| at < *first);
        heap.push(Reverse((at, seq, Entry(tx))));
        drop(heap);
        if earliest {
            self.changed.notify_one();
        }
        rx
    }
}

/// Sleep until `at`, waking within tens of microseconds of it (see the module docs).
pub async fn until(at: Instant) {
    if let Some(coarse) = at.checked_sub(COARSE)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse.into()).await;
    }
    if Instant::now() >= at {
        return;
    }
    match waker() {
        Some(w) => {
            // the waker thread never drops a sender before it sends
            let _ = w.register(at).await;
        }
        None => tokio::time::sleep_until(at.into()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_in_deadline_order_and_never_early() {
        let t0 = Instant::now();
        let deadlines: Vec<Duration> = [7u64, 2, 5, 2, 9, 1]
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        let tasks: Vec<_> = deadlines
            .iter()
            .map(|d| {
                let at = t0 + *d;
                tokio::spawn(async move {
                    until(at).await;
                    Instant::now()
                })
            })
            .collect();
        let mut woke = Vec::new();
        for (t, d) in tasks.into_iter().zip(&deadlines) {
            let at = t.await.unwrap();
            // never early; how late is the machine's, measured by the load runs' slippage
            assert!(at >= t0 + *d, "woke {:?} before its deadline", t0 + *d - at);
            woke.push((*d, at));
        }
        woke.sort();
        assert!(
            woke.windows(2).all(|w| w[0].1 <= w[1].1),
            "in deadline order"
        );
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_returns_at_once() {
        let t = Instant::now();
        until(t - Duration::from_millis(5)).await;
        assert!(t.elapsed() < Duration::from_millis(50));
    }
}

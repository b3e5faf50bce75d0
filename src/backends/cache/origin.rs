//! The origin: the database behind the cache. A versioned key-value store whose every call
//! waits a latency drawn from the spec's distribution (fixed or uniform) on the tokio timer.
//! Keys `0..keys` exist at version 1 at the start; each committed write bumps the key's
//! version, so a cached copy can be compared with the latest committed write (stale reads).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;

use super::workload::value_size;

const SHARDS: usize = 64;

/// A value as the caches hold it: the version it was read at and its bytes.
#[derive(Debug)]
pub struct Value {
    pub version: u64,
    pub payload: Box<[u8]>,
}

impl Value {
    pub fn new(version: u64, size: u64) -> Value {
        Value {
            version,
            payload: vec![(version % 251) as u8; size as usize].into_boxed_slice(),
        }
    }

    pub fn size(&self) -> u64 {
        self.payload.len() as u64
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    version: u64,
    deleted: bool,
}

/// What a write does at the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Put,
    Delete,
}

pub struct Origin {
    initial_keys: u64,
    latency: (Duration, Duration),
    value_size: (u64, u64),
    seed: u64,
    shards: Vec<Mutex<HashMap<u64, Record>>>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Origin {
    pub fn new(
        initial_keys: u64,
        latency: (Duration, Duration),
        value_size: (u64, u64),
        seed: u64,
    ) -> Origin {
        Origin {
            initial_keys,
            latency,
            value_size,
            seed,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Record>> {
        self.shards[(key % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, key: u64) -> Option<Record> {
        match self.shard(key).get(&key) {
            Some(r) => Some(*r),
            None if key < self.initial_keys => Some(Record {
                version: 1,
                deleted: false,
            }),
            None => None,
        }
    }

    /// The latest committed version of `key` (0: never existed). Deletions are versions too.
    pub fn committed(&self, key: u64) -> u64 {
        self.record(key).map_or(0, |r| r.version)
    }

    /// The size of `key`'s value at `version`.
    pub fn size_of(&self, key: u64, version: u64) -> u64 {
        value_size(
            self.seed,
            key,
            version,
            self.value_size.0,
            self.value_size.1,
        )
    }

    async fn wait(&self) {
        let (lo, hi) = self.latency;
        let d = if hi > lo {
            rand::rng().random_range(lo..=hi)
        } else {
            lo
        };
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Read `key` after the origin's latency: its value, or `None` when it does not exist.
    pub async fn read(&self, key: u64) -> Option<Value> {
        self.wait().await;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let r = self.record(key)?;
        if r.deleted {
            return None;
        }
        Some(Value::new(r.version, self.size_of(key, r.version)))
    }

    /// Commit a write of `key` after the origin's latency; returns the new version.
    pub async fn write(&self, key: u64, w: Write) -> u64 {
        self.wait().await;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let initial = key < self.initial_keys;
        let mut shard = self.shard(key);
        let r = shard.entry(key).or_insert(Record {
            version: u64::from(initial),
            deleted: !initial,
        });
        r.version += 1;
        r.deleted = w == Write::Delete;
        r.version
    }

    /// `(reads, writes)` served so far.
    #[cfg(test)]
    pub fn calls(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_advance_on_writes_and_deletes() {
        let o = Origin::new(10, (Duration::ZERO, Duration::ZERO), (100, 100), 1);
        assert_eq!(o.committed(3), 1);
        assert_eq!(o.committed(10), 0);
        assert_eq!(o.read(3).await.unwrap().version, 1);
        assert_eq!(o.write(3, Write::Put).await, 2);
        assert_eq!(o.read(3).await.unwrap().size(), 100);
        assert_eq!(o.write(3, Write::Delete).await, 3);
        assert!(o.read(3).await.is_none());
        assert_eq!(o.committed(3), 3);
        // an insert of a new key
        assert_eq!(o.write(10, Write::Put).await, 1);
        assert_eq!(o.read(10).await.unwrap().version, 1);
        assert_eq!(o.calls(), (4, 3));
    }

    #[tokio::test]
    async fn calls_wait_the_configured_latency() {
        let o = Origin::new(
            1,
            (Duration::from_millis(20), Duration::from_millis(30)),
            (1, 1),
            1,
        );
        let t = std::time::Instant::now();
        o.read(0).await;
        let e = t.elapsed();
        assert!(
            e >= Duration::from_millis(20) && e < Duration::from_millis(500),
            "{e:?}"
        );
    }
}

//! `--shard K/N`: one of N generators running its stripe of a spec's *total* load.
//!
//! Open model: the global arrival schedule is computed once by every shard, and shard K
//! keeps the arrivals whose global index `k` has `k mod N = K − 1` — each shard keeps the
//! global cadence, so the merged stream is the unsharded one, never bursts of N at once
//! (k6's execution segments follow the same idea). Closed model: virtual users are striped
//! (user `u` of a stage belongs to shard `(u − 1) mod N + 1`). Iteration indices stay
//! global (`k`, or `j·N + K − 1` for a closed user's j-th iteration), so `unique` data rows
//! stay unique across shards. `perfspec merge` joins the shards' results.

use std::time::SystemTime;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most shards one spec may be split into.
pub const MAX_SHARDS: u32 = 1000;

impl Shard {
    /// The whole load (no sharding).
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// `K/N` (1 ≤ K ≤ N ≤ 1000).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad =
            || format!("`{text}` is not a shard: write K/N, e.g. `--shard 2/3` (shard 2 of 3)");
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "a run splits into 1 to {MAX_SHARDS} shards, not {count}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards count from 1 to {count}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// `--shard auto --shards N`: the Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`
    /// (0-based) as shard index + 1.
    pub fn from_job_index(value: Option<&str>, count: Option<u32>) -> Result<Shard, String> {
        let count = count.ok_or("`--shard auto` needs `--shards N` (the Job's completions)")?;
        let v = value.ok_or(
            "`--shard auto` reads JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), which is not set",
        )?;
        let i: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("JOB_COMPLETION_INDEX is `{v}`, not a number"))?;
        Shard::new(i.saturating_add(1), count)
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// Open model: how many of `total` global arrivals are this shard's.
    pub fn local_count(&self, total: u64) -> u64 {
        let (k, n) = (u64::from(self.index - 1), u64::from(self.count));
        if total <= k {
            0
        } else {
            (total - k).div_ceil(n)
        }
    }

    /// The global index of this shard's `j`-th arrival (or iteration).
    pub fn global(&self, j: u64) -> u64 {
        j.saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index - 1))
    }

    /// Closed model: this shard's share of `users` virtual users (users striped).
    pub fn users(&self, users: f64) -> f64 {
        let u = users.round().max(0.0) as u64;
        self.local_count(u) as f64
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What results.json records of a sharded run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// `--start-at` as RFC 3339 UTC, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_start: Option<String>,
    /// When the load actually started (RFC 3339 UTC, after any `--start-at` wait).
    pub started_at: String,
}

/// `--start-at`: RFC 3339 (`2026-12-02T10:00:00Z`) or `+10s` (from now).
pub fn parse_start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = text.trim();
    if let Some(rel) = t.strip_prefix('+') {
        let secs = crate::spec::units::Quantity::parse_as(rel, crate::spec::units::Dimension::Time)
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .ok_or_else(|| {
                format!(
                    "`{text}`: write a duration of at most a day after `+`, e.g. `+10s` or `+1m30s`"
                )
            })?;
        return Ok(now + std::time::Duration::from_secs_f64(secs));
    }
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!(
                "`{text}` is not a time: write RFC 3339 (`2026-12-02T10:00:00Z`) or `+10s` ({e})"
            )
        })?;
    let secs = at.unix_timestamp_nanos();
    if secs < 0 {
        return Err(format!("`{text}` is before 1970"));
    }
    Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(secs as u64))
}

/// RFC 3339 UTC of a system time.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos() as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_cover_every_index_once() {
        for total in [0u64, 1, 2, 7, 100, 1001] {
            for n in 1..=5u32 {
                let mut seen = vec![0u32; total as usize];
                let mut sum = 0;
                for k in 1..=n {
                    let s = Shard::new(k, n).unwrap();
                    let c = s.local_count(total);
                    sum += c;
                    for j in 0..c {
                        let g = s.global(j);
                        assert!(g < total, "{s} {j} -> {g} of {total}");
                        seen[g as usize] += 1;
                    }
                }
                assert_eq!(sum, total);
                assert!(seen.iter().all(|&x| x == 1), "{total} / {n}");
            }
        }
    }

    #[test]
    fn users_are_striped() {
        let shares: Vec<f64> = (1..=3)
            .map(|k| Shard::new(k, 3).unwrap().users(10.0))
            .collect();
        assert_eq!(shares, vec![4.0, 3.0, 3.0]);
        assert_eq!(Shard::new(3, 3).unwrap().users(2.0), 0.0);
    }

    #[test]
    fn parse_and_errors() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("0/3").unwrap_err().contains("count from 1"));
        assert!(Shard::parse("4/3").unwrap_err().contains("does not exist"));
        assert!(Shard::parse("2").unwrap_err().contains("K/N"));
        assert_eq!(
            Shard::from_job_index(Some("0"), Some(4)),
            Ok(Shard { index: 1, count: 4 })
        );
        assert!(Shard::from_job_index(None, Some(4)).is_err());
        assert!(Shard::from_job_index(Some("4"), Some(4)).is_err());
    }

    #[test]
    fn start_at_reads_rfc3339_and_offsets() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        assert_eq!(
            parse_start_at("+10s", now).unwrap(),
            now + std::time::Duration::from_secs(10)
        );
        let t = parse_start_at("1970-01-01T00:20:00Z", now).unwrap();
        assert_eq!(
            t,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1200)
        );
        assert!(parse_start_at("soon", now).is_err());
        assert_eq!(rfc3339(t), "1970-01-01T00:20:00Z");
    }
}

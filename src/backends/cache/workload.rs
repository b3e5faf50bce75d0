//! The key trace: which operation, on which key, from which app instance. One seeded
//! [`StdRng`] stream produces the whole trace, so a seed reproduces it exactly (the
//! interleaving of concurrent workers does not change which operations are generated).
//!
//! Key distributions: uniform, a true bounded Zipf(θ) over the current key count (sampled by
//! rejection-inversion, Hörmann & Derflinger 1996: exact, O(1) memory and time), hotspot, and
//! YCSB's "latest" (Zipf over recency). YCSB core workloads A–F are presets.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::spec::cache::{Distribution, Preset};

/// A bounded Zipf distribution over ranks `1..=n`: `P(k) ∝ k^-θ`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// `n >= 1`, `θ > 0`.
    pub fn new(n: u64, theta: f64) -> Zipf {
        let n = n.max(1);
        let mut z = Zipf {
            n,
            theta,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n as f64 + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// A rank in `1..=n`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        // expected iterations are below 1.1 for every θ; the bound only guards against NaN
        let mut k = 1;
        for _ in 0..1000 {
            let u =
                self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            k = ((x + 0.5).floor() as u64).clamp(1, self.n);
            if k as f64 - x <= self.s || u >= self.h_integral(k as f64 + 0.5) - self.h(k as f64) {
                return k;
            }
        }
        k
    }

    fn h(&self, x: f64) -> f64 {
        (-self.theta * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.theta) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.theta)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    Uniform,
    Zipf(f64),
    /// `keys` of the key space receive `ops` of the operations.
    Hotspot {
        keys: f64,
        ops: f64,
    },
    /// The most recently inserted keys are the most popular (Zipf over recency).
    Latest(f64),
}

impl KeyDist {
    pub fn from_spec(d: &Distribution) -> KeyDist {
        match d {
            Distribution::Uniform => KeyDist::Uniform,
            Distribution::Latest => KeyDist::Latest(YCSB_ZIPF),
            Distribution::Zipf(t) => KeyDist::Zipf(*t),
            Distribution::Hotspot { keys, ops } => KeyDist::Hotspot {
                keys: keys.0,
                ops: ops.0,
            },
        }
    }
}

/// YCSB's zipfian constant.
pub const YCSB_ZIPF: f64 = 0.99;
/// YCSB's default `recordcount` in its workload files.
pub const YCSB_RECORDS: u64 = 1000;
/// YCSB's default `maxscanlength`.
pub const YCSB_MAX_SCAN: u32 = 100;

/// Operation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Get,
    Update,
    Insert,
    Delete,
    /// Read-modify-write: a read, then an update of the same key.
    Rmw,
    /// A short range scan: reads of consecutive keys.
    Scan,
}

impl OpKind {
    pub const ALL: [OpKind; 6] = [
        OpKind::Get,
        OpKind::Update,
        OpKind::Insert,
        OpKind::Delete,
        OpKind::Rmw,
        OpKind::Scan,
    ];

    /// The `op` label.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Delete => "delete",
            OpKind::Rmw => "rmw",
            OpKind::Scan => "scan",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the operation changes the origin.
    pub fn writes(self) -> bool {
        !matches!(self, OpKind::Get | OpKind::Scan)
    }
}

/// Fractions of each operation kind, indexed like [`OpKind::ALL`]; they add up to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix(pub [f64; 6]);

impl Mix {
    pub fn reads_only() -> Mix {
        Mix([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    }

    pub fn fraction(&self, op: OpKind) -> f64 {
        self.0[op.index()]
    }

    /// Whether any operation writes.
    pub fn has_writes(&self) -> bool {
        OpKind::ALL
            .iter()
            .any(|op| op.writes() && self.fraction(*op) > 0.0)
    }

    /// The kinds with a non-zero share.
    pub fn kinds(&self) -> Vec<OpKind> {
        OpKind::ALL
            .into_iter()
            .filter(|op| self.fraction(*op) > 0.0)
            .collect()
    }

    fn pick(&self, u: f64) -> OpKind {
        let mut acc = 0.0;
        let mut last = OpKind::Get;
        for op in OpKind::ALL {
            let f = self.fraction(op);
            if f <= 0.0 {
                continue;
            }
            acc += f;
            last = op;
            if u < acc {
                return op;
            }
        }
        last
    }
}

/// What a YCSB core workload sets: its mix and key distribution.
pub fn preset(p: Preset) -> (Mix, KeyDist) {
    let z = KeyDist::Zipf(YCSB_ZIPF);
    match p {
        // A: update heavy
        Preset::A => (Mix([0.5, 0.5, 0.0, 0.0, 0.0, 0.0]), z),
        // B: read mostly
        Preset::B => (Mix([0.95, 0.05, 0.0, 0.0, 0.0, 0.0]), z),
        // C: read only
        Preset::C => (Mix::reads_only(), z),
        // D: read latest
        Preset::D => (
            Mix([0.95, 0.0, 0.05, 0.0, 0.0, 0.0]),
            KeyDist::Latest(YCSB_ZIPF),
        ),
        // E: short ranges
        Preset::E => (Mix([0.0, 0.0, 0.05, 0.0, 0.0, 0.95]), z),
        // F: read-modify-write
        Preset::F => (Mix([0.5, 0.0, 0.0, 0.0, 0.5, 0.0]), z),
    }
}

/// One generated operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Position in the trace, from 0.
    pub seq: u64,
    /// The app instance that executes it, from 0.
    pub instance: usize,
    pub kind: OpKind,
    pub key: u64,
    /// Keys read by a scan (`key..key + len`, never past the last key); 1 otherwise.
    pub len: u32,
}

/// The settings of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    pub keys: u64,
    pub dist: KeyDist,
    pub mix: Mix,
    pub instances: usize,
    pub max_scan: u32,
    pub seed: u64,
}

/// A reproducible stream of operations.
pub struct Generator {
    spec: TraceSpec,
    rng: StdRng,
    /// Keys that exist or are being inserted (grows with inserts).
    key_count: u64,
    zipf: Option<Zipf>,
    seq: u64,
}

impl Generator {
    pub fn new(spec: TraceSpec) -> Generator {
        let rng = StdRng::seed_from_u64(spec.seed);
        let key_count = spec.keys.max(1);
        Generator {
            spec,
            rng,
            key_count,
            zipf: None,
            seq: 0,
        }
    }

    /// Operations generated so far.
    pub fn generated(&self) -> u64 {
        self.seq
    }

    /// The next operation. Instances take operations in turn (round robin).
    pub fn next_op(&mut self) -> Op {
        let seq = self.seq;
        self.seq += 1;
        let instance = (seq % self.spec.instances.max(1) as u64) as usize;
        let kind = self.spec.mix.pick(self.rng.random::<f64>());
        let (key, len) = match kind {
            OpKind::Insert => {
                let k = self.key_count;
                self.key_count += 1;
                (k, 1)
            }
            OpKind::Scan => {
                let k = self.pick_key();
                let len = self.rng.random_range(1..=self.spec.max_scan.max(1));
                // a scan stops at the last key
                (
                    k,
                    len.min(u32::try_from(self.key_count - k).unwrap_or(u32::MAX)),
                )
            }
            _ => (self.pick_key(), 1),
        };
        Op {
            seq,
            instance,
            kind,
            key,
            len,
        }
    }

    fn zipf_over(&mut self, n: u64, theta: f64) -> u64 {
        if self.zipf.as_ref().is_none_or(|z| z.n() != n) {
            self.zipf = Some(Zipf::new(n, theta));
        }
        let z = self.zipf.as_ref().expect("just set");
        z.sample(&mut self.rng)
    }

    fn pick_key(&mut self) -> u64 {
        let n = self.key_count;
        match self.spec.dist {
            KeyDist::Uniform => self.rng.random_range(0..n),
            // rank 1 is key 0
            KeyDist::Zipf(theta) => self.zipf_over(n, theta) - 1,
            KeyDist::Latest(theta) => n - self.zipf_over(n, theta),
            KeyDist::Hotspot { keys, ops } => {
                let hot = ((n as f64 * keys).round() as u64).clamp(1, n);
                if hot == n || self.rng.random::<f64>() < ops {
                    self.rng.random_range(0..hot)
                } else {
                    self.rng.random_range(hot..n)
                }
            }
        }
    }
}

/// SplitMix64: a fast, well-mixed hash for deterministic per-key values.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The size of `key`'s value at `version`: uniform in `lo..=hi`, a pure function of the seed.
pub fn value_size(seed: u64, key: u64, version: u64, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let h = splitmix(seed ^ splitmix(key ^ splitmix(version)));
    lo + h % (hi - lo + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_099_matches_theory_for_the_top_ranks_and_overall() {
        let n = 1000;
        let z = Zipf::new(n, 0.99);
        let mut rng = StdRng::seed_from_u64(7);
        let samples = 2_000_000u64;
        let mut counts = vec![0u64; n as usize + 1];
        for _ in 0..samples {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let norm: f64 = (1..=n).map(|i| (i as f64).powf(-0.99)).sum();
        let p = |k: u64| (k as f64).powf(-0.99) / norm;
        // rank 1..10: relative error of the observed frequency
        for k in 1..=10u64 {
            let observed = counts[k as usize] as f64 / samples as f64;
            let rel = (observed - p(k)).abs() / p(k);
            assert!(
                rel < 0.02,
                "rank {k}: observed {observed:.5}, theory {:.5}, relative error {rel:.4}",
                p(k)
            );
        }
        // chi-square over ranks 1..=99 and one tail bucket (99 degrees of freedom):
        // the 0.999 quantile of χ²(99) is about 148
        let mut chi2 = 0.0;
        let mut tail_obs = 0.0;
        let mut tail_exp = 0.0;
        for k in 1..=n {
            let e = p(k) * samples as f64;
            let o = counts[k as usize] as f64;
            if k < 100 {
                chi2 += (o - e).powi(2) / e;
            } else {
                tail_obs += o;
                tail_exp += e;
            }
        }
        chi2 += (tail_obs - tail_exp).powi(2) / tail_exp;
        assert!(
            chi2 < 148.0,
            "chi-square {chi2:.1} over 99 degrees of freedom"
        );
    }

    #[test]
    fn zipf_handles_theta_one_and_tiny_key_spaces() {
        let mut rng = StdRng::seed_from_u64(1);
        let z = Zipf::new(1, 0.99);
        assert!((0..100).all(|_| z.sample(&mut rng) == 1));
        let z = Zipf::new(3, 1.0);
        let mut c = [0u64; 4];
        for _ in 0..300_000 {
            c[z.sample(&mut rng) as usize] += 1;
        }
        // 1 : 1/2 : 1/3 of 11/6
        let expect = [6.0 / 11.0, 3.0 / 11.0, 2.0 / 11.0];
        for k in 1..=3 {
            let f = c[k] as f64 / 300_000.0;
            assert!((f - expect[k - 1]).abs() < 0.005, "rank {k}: {f}");
        }
    }

    fn trace(mix: Mix, dist: KeyDist, seed: u64) -> TraceSpec {
        TraceSpec {
            keys: 1000,
            dist,
            mix,
            instances: 3,
            max_scan: YCSB_MAX_SCAN,
            seed,
        }
    }

    #[test]
    fn ycsb_presets_have_their_published_mixes() {
        let cases = [
            (Preset::A, [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]),
            (Preset::B, [0.95, 0.05, 0.0, 0.0, 0.0, 0.0]),
            (Preset::C, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            (Preset::D, [0.95, 0.0, 0.05, 0.0, 0.0, 0.0]),
            (Preset::E, [0.0, 0.0, 0.05, 0.0, 0.0, 0.95]),
            (Preset::F, [0.5, 0.0, 0.0, 0.0, 0.5, 0.0]),
        ];
        for (p, want) in cases {
            let (mix, dist) = preset(p);
            assert_eq!(mix.0, want, "{p:?}");
            assert!((mix.0.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert_eq!(
                dist,
                if p == Preset::D {
                    KeyDist::Latest(0.99)
                } else {
                    KeyDist::Zipf(0.99)
                }
            );
            // the generator follows the mix
            let mut g = Generator::new(trace(mix, dist, 3));
            let mut counts = [0u64; 6];
            for _ in 0..100_000 {
                counts[g.next_op().kind.index()] += 1;
            }
            for op in OpKind::ALL {
                let f = counts[op.index()] as f64 / 100_000.0;
                assert!((f - mix.fraction(op)).abs() < 0.01, "{p:?} {op:?}: {f}");
            }
        }
    }

    #[test]
    fn a_seed_reproduces_the_trace_and_instances_take_turns() {
        let t = trace(preset(Preset::D).0, KeyDist::Latest(0.99), 42);
        let a: Vec<Op> = {
            let mut g = Generator::new(t.clone());
            (0..5000).map(|_| g.next_op()).collect()
        };
        let mut g = Generator::new(t.clone());
        let b: Vec<Op> = (0..5000).map(|_| g.next_op()).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|o| o.instance == (o.seq % 3) as usize));
        // inserts append new keys; "latest" reads favour them
        let inserts: Vec<u64> = a
            .iter()
            .filter(|o| o.kind == OpKind::Insert)
            .map(|o| o.key)
            .collect();
        assert!(inserts.windows(2).all(|w| w[1] == w[0] + 1) && inserts[0] == 1000);
        // P(one of the 10 newest) = H(10, 0.99) / H(n, 0.99), about 0.38 for n near 1100
        let mut count = 1000;
        let (mut gets, mut recent) = (0, 0);
        for o in &a {
            match o.kind {
                OpKind::Insert => count += 1,
                OpKind::Get => {
                    gets += 1;
                    recent += usize::from(o.key + 10 >= count);
                }
                _ => {}
            }
        }
        let share = recent as f64 / gets as f64;
        assert!((share - 0.38).abs() < 0.03, "{share}");
        let mut other = Generator::new(TraceSpec { seed: 43, ..t });
        assert_ne!(a, (0..5000).map(|_| other.next_op()).collect::<Vec<_>>());
    }

    #[test]
    fn hotspot_sends_its_share_to_the_hot_keys() {
        let mut g = Generator::new(trace(
            Mix::reads_only(),
            KeyDist::Hotspot {
                keys: 0.2,
                ops: 0.8,
            },
            5,
        ));
        let hot = (0..100_000).filter(|_| g.next_op().key < 200).count();
        assert!((hot as f64 / 100_000.0 - 0.8).abs() < 0.01, "{hot}");
    }

    #[test]
    fn value_sizes_are_stable_and_in_range() {
        for k in 0..1000 {
            let s = value_size(9, k, 1, 512, 4096);
            assert!((512..=4096).contains(&s));
            assert_eq!(s, value_size(9, k, 1, 512, 4096));
        }
        assert_eq!(value_size(9, 1, 1, 1024, 1024), 1024);
    }
}

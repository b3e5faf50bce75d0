//! Which memcached node holds a key: ketama (consistent hashing exactly as twemproxy's
//! `nc_ketama.c` builds it, so perfspec's client and nutcracker place keys identically),
//! rendezvous (highest random weight) and modula (`hash % live nodes`, twemproxy's
//! `modula`, over the nodes in twemproxy's order: sorted by name). Dead (ejected) nodes are left out; the ring of the live nodes is rebuilt.

use super::md5::digest;

/// Points per server on a ketama continuum (twemproxy's `KETAMA_POINTS_PER_SERVER`).
pub const KETAMA_POINTS: u32 = 160;
/// Points taken from one MD5 digest (`KETAMA_POINTS_PER_HASH`).
const POINTS_PER_HASH: u32 = 4;
/// The port libmemcached and twemproxy leave out of a server's ketama name.
const DEFAULT_PORT: u16 = 11211;

/// How keys are spread over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    Ketama,
    Rendezvous,
    Modula,
}

impl Hashing {
    pub fn as_str(self) -> &'static str {
        match self {
            Hashing::Ketama => "ketama",
            Hashing::Rendezvous => "rendezvous",
            Hashing::Modula => "modula",
        }
    }
}

/// One server on the ring: its `host:port` and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingNode {
    pub host: String,
    pub port: u16,
    pub weight: u32,
}

impl RingNode {
    pub fn new(host: &str, port: u16) -> RingNode {
        RingNode {
            host: host.to_string(),
            port,
            weight: 1,
        }
    }

    /// The name ketama hashes: `host:port`, or `host` alone on port 11211 (libmemcached's
    /// convention, which twemproxy keeps for compatibility).
    pub fn ketama_name(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The 32-bit hash twemproxy's `hash: md5` gives a key (the digest's first 4 bytes, little
/// endian), also a ketama point at `alignment` 0..4.
pub fn md5_hash(key: &[u8], alignment: usize) -> u32 {
    let d = digest(key);
    let a = alignment * 4;
    u32::from_le_bytes([d[a], d[a + 1], d[a + 2], d[a + 3]])
}

/// The nodes (by index, dead ones included) and how keys are placed on the live ones.
#[derive(Debug, Clone)]
pub struct Ring {
    hashing: Hashing,
    nodes: Vec<RingNode>,
    live: Vec<bool>,
    /// Ketama: `(point, node index)` sorted by point.
    continuum: Vec<(u32, usize)>,
    /// Modula and rendezvous: the live node indices in order.
    order: Vec<usize>,
}

impl Ring {
    pub fn new(hashing: Hashing, nodes: Vec<RingNode>) -> Ring {
        let live = vec![true; nodes.len()];
        let mut r = Ring {
            hashing,
            nodes,
            live,
            continuum: Vec::new(),
            order: Vec::new(),
        };
        r.rebuild();
        r
    }

    pub fn hashing(&self) -> Hashing {
        self.hashing
    }

    #[cfg(test)]
    pub fn nodes(&self) -> &[RingNode] {
        &self.nodes
    }

    /// Mark `node` dead or live again and rebuild; false when nothing changed.
    pub fn set_live(&mut self, node: usize, live: bool) -> bool {
        match self.live.get_mut(node) {
            Some(l) if *l != live => {
                *l = live;
                self.rebuild();
                true
            }
            _ => false,
        }
    }

    /// Add a node (live); returns its index.
    pub fn add(&mut self, node: RingNode) -> usize {
        self.nodes.push(node);
        self.live.push(true);
        self.rebuild();
        self.nodes.len() - 1
    }

    fn rebuild(&mut self) {
        self.order = (0..self.nodes.len()).filter(|i| self.live[*i]).collect();
        // twemproxy sorts a pool's servers by name (shorter first, then bytewise) when it
        // checks them for duplicates, and modula counts in that order
        let names: Vec<String> = self.nodes.iter().map(RingNode::ketama_name).collect();
        self.order
            .sort_by(|a, b| (names[*a].len(), &names[*a]).cmp(&(names[*b].len(), &names[*b])));
        self.continuum.clear();
        if self.hashing != Hashing::Ketama {
            return;
        }
        let total: u32 = self.order.iter().map(|i| self.nodes[*i].weight).sum();
        let nlive = self.order.len() as f32;
        for &i in &self.order {
            let n = &self.nodes[i];
            // nc_ketama.c, float arithmetic included
            let pct = n.weight as f32 / total as f32;
            let per_server =
                ((pct * KETAMA_POINTS as f32 / 4.0 * nlive + 0.000_000_000_1).floor() as u32) * 4;
            let name = n.ketama_name();
            for p in 0..per_server / POINTS_PER_HASH {
                let host = format!("{name}-{p}");
                for x in 0..POINTS_PER_HASH as usize {
                    self.continuum.push((md5_hash(host.as_bytes(), x), i));
                }
            }
        }
        self.continuum.sort_by_key(|(v, _)| *v);
    }

    /// The live node that holds `key`; `None` when every node is dead.
    pub fn node_of(&self, key: &[u8]) -> Option<usize> {
        if self.order.is_empty() {
            return None;
        }
        match self.hashing {
            Hashing::Ketama => {
                let h = md5_hash(key, 0);
                // the first point at or after the hash, wrapping around (ketama_dispatch)
                let at = self.continuum.partition_point(|(v, _)| *v < h);
                Some(self.continuum[at % self.continuum.len()].1)
            }
            Hashing::Modula => {
                let h = md5_hash(key, 0) as usize;
                Some(self.order[h % self.order.len()])
            }
            Hashing::Rendezvous => self.order.iter().copied().max_by_key(|&i| {
                let mut input = self.nodes[i].ketama_name().into_bytes();
                input.push(0);
                input.extend_from_slice(key);
                let d = digest(&input);
                (u64::from_le_bytes(d[..8].try_into().expect("8 bytes")), i)
            }),
        }
    }
}

/// The fraction of `keys` that `before` and `after` place on different nodes.
pub fn remap_ratio<'a>(before: &Ring, after: &Ring, keys: impl Iterator<Item = &'a [u8]>) -> f64 {
    let (mut n, mut moved) = (0u64, 0u64);
    for k in keys {
        n += 1;
        if before.node_of(k) != after.node_of(k) {
            moved += 1;
        }
    }
    if n == 0 { 0.0 } else { moved as f64 / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(h: Hashing, n: u16) -> Ring {
        Ring::new(
            h,
            (0..n)
                .map(|i| RingNode::new("127.0.0.1", 20000 + i))
                .collect(),
        )
    }

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("perfspec:0:{i}").into_bytes())
            .collect()
    }

    fn shares(r: &Ring, keys: &[Vec<u8>]) -> Vec<f64> {
        let mut c = vec![0u64; r.nodes().len()];
        for k in keys {
            c[r.node_of(k).unwrap()] += 1;
        }
        c.iter().map(|n| *n as f64 / keys.len() as f64).collect()
    }

    #[test]
    fn ketama_has_160_points_per_equal_server_and_names_like_libmemcached() {
        let r = ring(Hashing::Ketama, 3);
        assert_eq!(r.continuum.len(), 3 * 160);
        assert_eq!(RingNode::new("10.0.0.1", 11211).ketama_name(), "10.0.0.1");
        assert_eq!(
            RingNode::new("10.0.0.1", 11212).ketama_name(),
            "10.0.0.1:11212"
        );
        // a point is 4 little-endian bytes of the MD5 of `name-i`
        let d = digest(b"127.0.0.1:20000-0");
        assert_eq!(
            md5_hash(b"127.0.0.1:20000-0", 1),
            u32::from_le_bytes([d[4], d[5], d[6], d[7]])
        );
        assert!(r.continuum.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn known_keys_land_on_known_servers() {
        // the continuum's first point at or after md5(key) owns the key: check by hand
        let r = ring(Hashing::Ketama, 3);
        for k in keys(50) {
            let h = md5_hash(&k, 0);
            let owner = r
                .continuum
                .iter()
                .find(|(v, _)| *v >= h)
                .unwrap_or(&r.continuum[0])
                .1;
            assert_eq!(r.node_of(&k), Some(owner));
        }
        let m = ring(Hashing::Modula, 3);
        let k = b"perfspec:0:7";
        assert_eq!(m.node_of(k), Some(md5_hash(k, 0) as usize % 3));
    }

    #[test]
    fn every_distribution_balances_three_nodes() {
        let ks = keys(30_000);
        for h in [Hashing::Ketama, Hashing::Rendezvous, Hashing::Modula] {
            for s in shares(&ring(h, 3), &ks) {
                assert!((s - 1.0 / 3.0).abs() < 0.07, "{h:?}: share {s}");
            }
        }
    }

    #[test]
    fn consistent_hashing_moves_about_one_nth_and_modula_most() {
        let ks = keys(20_000);
        let refs = || ks.iter().map(Vec::as_slice);
        for h in [Hashing::Ketama, Hashing::Rendezvous, Hashing::Modula] {
            let before = ring(h, 3);
            let mut dead = before.clone();
            assert!(dead.set_live(1, false));
            assert!(!dead.set_live(1, false));
            let removed = remap_ratio(&before, &dead, refs());
            let mut grown = before.clone();
            grown.add(RingNode::new("127.0.0.1", 20003));
            let added = remap_ratio(&before, &grown, refs());
            if h == Hashing::Modula {
                assert!(removed > 0.6 && added > 0.7, "{h:?}: {removed} {added}");
            } else {
                // the dead node's own keys (≈1/3) move, and only those; adding one takes ≈1/4
                assert!((removed - 1.0 / 3.0).abs() < 0.06, "{h:?}: {removed}");
                assert!((added - 0.25).abs() < 0.06, "{h:?}: {added}");
                for k in refs() {
                    if before.node_of(k) != Some(1) {
                        assert_eq!(before.node_of(k), dead.node_of(k));
                    }
                }
            }
            let mut none = before.clone();
            for i in 0..3 {
                none.set_live(i, false);
            }
            assert_eq!(none.node_of(b"k"), None);
        }
    }
}

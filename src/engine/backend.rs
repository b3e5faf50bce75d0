//! The Backend trait and the context a run gets.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::metrics::Measurements;
use super::plan::Plan;
use super::progress::Progress;
use crate::spec::Spec;
use crate::spec::catalog::Kind;
use crate::spec::diagnostic::Diagnostic;

/// Why a backend produced no (or only partial) measurements.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Could not start: no verdict (exit 3). E.g. a target that never became ready, a
    /// missing `redis-server`, a backend not built yet.
    #[error("{0}")]
    Unavailable(String),
    /// Failed after start; whatever was measured is kept and judged.
    #[error("{message}")]
    Failed {
        message: String,
        partial: Option<Box<Measurements>>,
    },
}

/// What a backend gets for one run.
#[derive(Clone)]
pub struct RunContext {
    /// This spec's own artifacts folder (e.g. quantized model files): `--out/<spec name>/`,
    /// file-safe and unique per run; created by the backend when it writes something.
    pub out_dir: PathBuf,
    /// The folder of the spec file (relative paths in specs resolve against it).
    pub spec_dir: PathBuf,
    /// Cancelled on Ctrl-C, `--timeout` or the spec's `max_duration`: stop promptly and return
    /// what was measured so far.
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
    /// When this spec's run started (this repeat's, with `repeat`).
    pub started: Instant,
    /// Which repeat of the spec this run is.
    pub repeat: Repeat,
    /// `--shard K/N`: the stripe of the load this process runs ([`super::shard::Shard::WHOLE`]
    /// without sharding).
    pub shard: super::shard::Shard,
}

/// The repeat a backend run belongs to: `index` of `count` (1-based). Every repeat is a
/// fresh [`Backend::run`]: fresh target, caches and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub index: u32,
    pub count: u32,
    /// `reseed = true`: every repeat draws from another seed.
    pub reseed: bool,
}

impl Repeat {
    /// A spec run once.
    pub const ONCE: Repeat = Repeat {
        index: 1,
        count: 1,
        reseed: false,
    };

    /// The seed this repeat uses for a spec's `seed`: the same one, or with `reseed`,
    /// `seed + index − 1` (repeat 1 always reproduces a run without repeats).
    pub fn seed(&self, seed: u64) -> u64 {
        if self.reseed {
            seed.wrapping_add(u64::from(self.index) - 1)
        } else {
            seed
        }
    }
}

impl RunContext {
    /// Seconds since the run of this spec started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Resolve a path written in the spec relative to the spec's folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        crate::spec::source::resolve_in(&self.spec_dir, path)
    }
}

/// A backend runs one kind of spec. Backends never evaluate SLOs and never render.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    fn kind(&self) -> Kind;
    /// The name specs use in `backend = "…"`.
    fn name(&self) -> &'static str;
    /// One line for `perfspec list` and the docs.
    fn describe(&self) -> &'static str;
    /// Turn a validated spec into this backend's typed plan: every default resolved, every
    /// capability check done (a scheme or topology this backend cannot run, a data file that
    /// does not fit, is a located validation error here, not a run-time surprise). `validate`
    /// passes exactly when this does.
    fn plan(&self, spec: &Spec) -> Result<Plan, Vec<Diagnostic>>;
    /// Execute the plan this backend made for `spec`. On cancellation, return `Ok` with what
    /// was measured so far.
    async fn run(
        &self,
        spec: &Spec,
        plan: &Plan,
        cx: &RunContext,
    ) -> Result<Measurements, BackendError>;
}

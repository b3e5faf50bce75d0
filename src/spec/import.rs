//! `kind = "load"` with an `[import]` table: measurements another tool took (k6, JMeter),
//! judged by the spec's SLOs (`backend = "import"`).

use super::decode::{Ctx, Duration, spec_table, word_enum};
use super::model::{SloList, SpecName};
use super::source::Spanned;

spec_table! {
    /// A load spec that gates another tool's results.
    pub struct ImportDoc {
        /// Always `"load"`.
        kind: req String,
        /// Unique name of the spec (reports, baselines and `--filter` use it).
        name: req SpecName,
        description: opt String,
        /// Always `import` (the default for a spec with `[import]`).
        backend: opt Spanned<String>,
        /// Bound on this spec's run time (reading the files).
        max_duration: opt Duration,
        /// SLOs on the imported measurements, as for a load run.
        slo: opt SloList,
        /// What to read.
        import: req ImportSection,
    }
}

spec_table! {
    /// The `[import]` table.
    pub struct ImportSection {
        /// `k6-json` (`k6 run --out json=FILE`), `jmeter-jtl` (JMeter's CSV results with a
        /// header), `k6-summary` (`--summary-export`), `locust-csv` (`--csv` `_stats.csv`),
        /// `locust-json` (`--json`), `oha-json` (`--output-format json`) or `memtier-json`
        /// (`--json-out-file`).
        format: req Spanned<ImportFormat>,
        /// The file, relative to the spec; a glob (`results/*.jtl`) reads several (one per
        /// generator) as one run (formats with every sample only).
        file: req Spanned<String>,
    }
}

word_enum! {
    /// The formats perfspec imports.
    pub enum ImportFormat {
        K6Json = "k6-json",
        JmeterJtl = "jmeter-jtl",
        K6Summary = "k6-summary",
        LocustCsv = "locust-csv",
        LocustJson = "locust-json",
        OhaJson = "oha-json",
        MemtierJson = "memtier-json",
    }
}

impl ImportFormat {
    /// Whether the format carries every sample (several files are one run).
    pub fn has_samples(self) -> bool {
        matches!(self, ImportFormat::K6Json | ImportFormat::JmeterJtl)
    }
}

impl ImportDoc {
    /// Cross-field checks: the backend, a file pattern that is not empty.
    pub fn validate(&self, cx: &mut Ctx) {
        if let Some(b) = &self.backend
            && b.value != "import"
        {
            cx.error::<()>(
                b.span,
                "spec::backend",
                format!(
                    "a load spec with `[import]` runs on the `import` backend, not `{}`",
                    b.value
                ),
            );
            cx.hint("remove `backend` (or write `backend = \"import\"`); to run the load yourself, drop `[import]` and describe `[target]`, `[load]` and `[[journey]]`");
        }
        let f = &self.import.file;
        if f.value.trim().is_empty() {
            cx.error::<()>(f.span, "spec::import", "the import file is empty");
            cx.hint("e.g. `file = \"results/k6.json\"` (relative to the spec)");
        }
    }
}

//! `perfspec run --smoke`: every stage of a spec runs briefly, to check quickly that the spec
//! works end to end (target reachable, journeys valid, reports written) before the real run.
//! The document tree is changed before decoding, so the plan, the dry run and the results
//! show the shortened durations; measurements of a smoke run are not a performance result.
//!
//! What is shortened: load stages (`over`, `for`) and the stress staircase's `every`, a cache
//! phase's `duration`; each to at most [`SMOKE_SECS`]. Other kinds run as written.

use super::node::{Node, Value};
use super::units::{Dimension, Quantity};

/// The longest a stage lasts in a smoke run, in seconds.
pub const SMOKE_SECS: f64 = 1.0;

/// Shorten every stage of the document `root` to at most [`SMOKE_SECS`].
pub fn shorten(root: &mut Node) {
    let kind = root.get("kind").and_then(Node::as_str).map(str::to_string);
    match kind.as_deref() {
        Some("load") => {
            if let Some(stages) = table_mut(root, "load").and_then(|l| table_mut(l, "stages"))
                && let Value::Array(items) = &mut stages.value
            {
                for stage in items {
                    for key in ["over", "for"] {
                        cap(table_mut(stage, key));
                    }
                }
            }
            if let Some(stress) = table_mut(root, "load").and_then(|l| table_mut(l, "stress")) {
                cap(table_mut(stress, "every"));
            }
        }
        Some("cache") => walk_durations(root),
        _ => {}
    }
}

/// Every `duration` key anywhere below `node` (cache phases and workloads).
fn walk_durations(node: &mut Node) {
    match &mut node.value {
        Value::Table(entries) => {
            for (k, v) in entries {
                if k.name == "duration" {
                    cap(Some(v));
                } else {
                    walk_durations(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk_durations),
        _ => {}
    }
}

fn table_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Table(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A duration string longer than [`SMOKE_SECS`] becomes `"1s"`; anything else (shorter, or
/// not a duration, which decoding reports) is left as written.
fn cap(node: Option<&mut Node>) {
    let Some(node) = node else { return };
    let Value::Str { value, raw_offset } = &mut node.value else {
        return;
    };
    if Quantity::parse_as(value, Dimension::Time).is_ok_and(|s| s > SMOKE_SECS) {
        *value = format!("{SMOKE_SECS}s");
        *raw_offset = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::SourceFile;

    #[test]
    fn load_stages_are_capped_at_one_second_and_short_ones_kept() {
        let src = SourceFile::new(
            std::path::Path::new("a.toml"),
            "kind = \"load\"\n[load]\nstages = [{ ramp_to = \"5/s\", over = \"30s\" }, { hold = \"5/s\", for = \"500ms\" }]\n".into(),
        );
        let mut root = crate::spec::loader::parse_source(&src).unwrap();
        shorten(&mut root);
        let json = root.to_json();
        assert_eq!(json["load"]["stages"][0]["over"], "1s");
        assert_eq!(json["load"]["stages"][1]["for"], "500ms");
    }
}

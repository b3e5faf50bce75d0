//! The JSON Schema of spec files (`perfspec schema`), for editors.

use super::cache::CacheDoc;
use super::exec::ExecDoc;
use super::import::ImportDoc;
use super::load::LoadDoc;
use super::quantize::QuantizeDoc;
use super::scaling::ScalingDoc;

/// One schema for all four kinds: `oneOf` the kind documents, told apart by `kind` (and
/// `[import]` / `[exec]`, whose documents take any kind's name or `load`).
pub fn spec_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut generator = generator;
    let mut variants = Vec::new();
    for (kind, schema) in [
        ("load", generator.subschema_for::<LoadDoc>()),
        ("load", generator.subschema_for::<ImportDoc>()),
        ("cache", generator.subschema_for::<CacheDoc>()),
        ("scaling", generator.subschema_for::<ScalingDoc>()),
        ("quantize", generator.subschema_for::<QuantizeDoc>()),
        ("*", generator.subschema_for::<ExecDoc>()),
    ] {
        let mut v = serde_json::to_value(schema).unwrap_or_default();
        // `kind` is decoded as a plain string; the schema pins each document's value
        let r = v.get("$ref").and_then(|r| r.as_str()).map(str::to_string);
        let pin = if kind == "*" {
            serde_json::json!({"enum": ["load", "cache", "scaling", "quantize"]})
        } else {
            serde_json::json!({"const": kind})
        };
        variants.push(serde_json::json!({
            "allOf": [v.take(), {"properties": {"kind": pin}}],
            "$comment": r,
        }));
    }
    let defs = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://perfspec.dev/schemas/spec.schema.json",
        "title": "perfspec spec file",
        "description": "One experiment (load, cache, scaling or quantize) and its SLOs. TOML and YAML share this model.",
        "oneOf": variants,
        "$defs": defs,
    })
}

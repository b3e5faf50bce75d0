//! Typed decoding of a [`Node`] tree, collecting every problem with its span.
//!
//! Decoders never stop at the first error: each failed value pushes a diagnostic and yields
//! `None`, and decoding goes on with the next key, so `validate` reports everything at once.
//! Table readers remember which keys were asked for and report the rest as unknown, with a
//! "did you mean" hint.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::node::{Key, Node, Value};
use super::source::{SourceFile, Span, Spanned};
use super::units::{Dimension, Quantity};

/// Decoding state for one file: where diagnostics go and how `${env:NAME}` resolves.
pub struct Ctx<'a> {
    pub src: Arc<SourceFile>,
    pub diags: Vec<Diagnostic>,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Values substituted from the environment, to redact from results and reports.
    pub secrets: Vec<String>,
    /// The spec's kind once known (SLOs are checked against its metric catalog).
    pub kind: Option<super::catalog::Kind>,
    /// The top-level keys of the spec's kind once known, to explain a top-level key that a
    /// TOML file wrote below a `[table]` header.
    pub top_level_keys: &'static [&'static str],
    /// The span of the document's root table, once decoding starts.
    pub root_span: Option<Span>,
    /// Metrics an `[exec]` spec declares beyond its kind's catalog (its SLOs may use them).
    pub declared: Vec<super::catalog::MetricDef>,
}

impl<'a> Ctx<'a> {
    pub fn new(src: Arc<SourceFile>, env: &'a dyn Fn(&str) -> Option<String>) -> Ctx<'a> {
        Ctx {
            src,
            diags: Vec::new(),
            env,
            secrets: Vec::new(),
            kind: None,
            top_level_keys: &[],
            root_span: None,
            declared: Vec::new(),
        }
    }

    pub fn is_yaml(&self) -> bool {
        super::source::Format::from_path(&self.src.path) == Some(super::source::Format::Yaml)
    }

    /// An example written in TOML (`{ zipf = 0.99 }`), in the file's own format: YAML files get
    /// `{ zipf: 0.99 }`. Examples keep their strings double-quoted, which both formats read.
    pub fn in_syntax(&self, toml_example: &str) -> String {
        if self.is_yaml() {
            toml_example.replace(" = ", ": ")
        } else {
            toml_example.to_string()
        }
    }

    /// Push an error at `span` and return `None` (for `return cx.error(..)`).
    pub fn error<T>(
        &mut self,
        span: Span,
        code: &'static str,
        message: impl Into<String>,
    ) -> Option<T> {
        let d = Diagnostic::error(code, message).at(&self.src, span);
        self.diags.push(d);
        None
    }

    /// Push a fully built diagnostic located in this file.
    pub fn push(&mut self, d: Diagnostic) {
        let d = if d.source.is_none() {
            d.in_file(&self.src)
        } else {
            d
        };
        self.diags.push(d);
    }

    /// Amend the last diagnostic with a hint.
    pub fn hint(&mut self, hint: impl Into<String>) {
        if let Some(d) = self.diags.last_mut() {
            d.hint = Some(hint.into());
        }
    }

    /// Amend the last diagnostic with a label.
    pub fn label(&mut self, label: impl Into<String>) {
        if let Some(d) = self.diags.last_mut() {
            d.label = Some(label.into());
        }
    }

    pub fn type_error<T>(&mut self, node: &Node, expected: &str) -> Option<T> {
        // a value the parser already rejected (an integer beyond 64 bits) is reported once
        if matches!(node.value, Value::Other(_))
            && self
                .diags
                .iter()
                .any(|d| d.is_error() && d.span == Some(node.span))
        {
            return None;
        }
        self.error::<T>(
            node.span,
            "spec::type",
            format!("expected {expected}, found {}", node.type_name()),
        );
        self.label(format!("expected {expected}"));
        None
    }

    /// Interpolate `${env:NAME}` in a string value. Unset variables are errors.
    pub fn interpolate(&mut self, node: &Node, s: &str) -> Option<String> {
        if !s.contains("${") {
            return Some(s.to_string());
        }
        let mut out = String::new();
        let mut rest = s;
        let mut offset = 0;
        let mut ok = true;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                self.error::<()>(
                    node.inner_span(offset + start, offset + rest.len()),
                    "spec::env",
                    "unterminated `${`",
                );
                self.label("no closing `}`");
                self.hint("write `${env:NAME}`, or `$${` for a literal `${`");
                return None;
            };
            let inner = &after[..end];
            let span = node.inner_span(offset + start, offset + start + end + 3);
            match inner.strip_prefix("env:") {
                Some(name) if !name.is_empty() => match (self.env)(name) {
                    Some(v) => {
                        if !v.is_empty() {
                            self.secrets.push(v.clone());
                        }
                        out.push_str(&v);
                    }
                    None => {
                        ok = false;
                        self.error::<()>(
                            span,
                            "spec::env",
                            format!("environment variable `{name}` is not set"),
                        );
                        self.label("not set");
                        self.hint(format!("export {name}=… before running perfspec"));
                    }
                },
                _ => {
                    ok = false;
                    self.error::<()>(
                        span,
                        "spec::env",
                        format!("unknown interpolation `${{{inner}}}`"),
                    );
                    self.label("unknown interpolation");
                    self.hint("the only interpolation is `${env:NAME}`");
                }
            }
            let consumed = start + 2 + end + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        out.push_str(rest);
        ok.then_some(out)
    }
}

/// A value that can be decoded from a node.
pub trait Decode: Sized {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self>;
}

/// Reads a table's keys, tracking which were known.
pub struct Table<'n> {
    pub node: &'n Node,
    entries: &'n [(Key, Node)],
    known: Vec<&'static str>,
    used: Vec<bool>,
}

impl<'n> Table<'n> {
    pub fn new(node: &'n Node, cx: &mut Ctx) -> Option<Table<'n>> {
        match &node.value {
            Value::Table(entries) => Some(Table {
                node,
                entries,
                known: Vec::new(),
                used: vec![false; entries.len()],
            }),
            _ => cx.type_error(node, "a table"),
        }
    }

    /// The node under `key`, marking the key as known and used.
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.known.push(key);
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// The span of a key (for "x conflicts with y" errors).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k.span)
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.name == key)
    }

    pub fn opt<T: Decode>(&mut self, cx: &mut Ctx, key: &'static str) -> Option<T> {
        self.get(key).and_then(|n| T::decode(n, cx))
    }

    /// A required key; reports "missing key" at the table when absent.
    pub fn req<T: Decode>(&mut self, cx: &mut Ctx, key: &'static str) -> Option<T> {
        match self.get(key) {
            Some(n) => T::decode(n, cx),
            None => {
                let span = self.head_span(cx);
                cx.error::<()>(span, "spec::missing-key", format!("missing key `{key}`"));
                let what = if self.is_root(cx) { "spec" } else { "table" };
                cx.label(format!("this {what} needs `{key}`"));
                None
            }
        }
    }

    /// Whether this is the document's top level.
    pub fn is_root(&self, cx: &Ctx) -> bool {
        cx.root_span == Some(self.node.span)
    }

    /// Where to point for problems with the table as a whole: its first line.
    pub fn head_span(&self, cx: &Ctx) -> Span {
        first_content_line(&cx.src, self.node.span)
    }

    /// Report keys that no decoder asked for.
    pub fn finish(self, cx: &mut Ctx) {
        // in TOML every key after a `[table]` header belongs to that table
        let toml_subtable = !cx.is_yaml() && !self.is_root(cx);
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let suggestion = did_you_mean(&key.name, self.known.iter().copied());
            cx.error::<()>(
                key.span,
                "spec::unknown-key",
                format!("unknown key `{}`", key.name),
            );
            cx.label("unknown key");
            let mut known = self.known.clone();
            known.sort_unstable();
            known.dedup();
            let hint = match suggestion {
                _ if toml_subtable && cx.top_level_keys.contains(&key.name.as_str()) => format!(
                    "`{}` is a top-level key, but in TOML a key below a `[table]` header belongs to that table: move it above the first header",
                    key.name
                ),
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known keys here: {}", known.join(", ")),
            };
            cx.hint(hint);
        }
    }
}

/// The first line of `span` that is not blank or a comment, at most 80 bytes of it (the
/// root table of a TOML file spans the whole file, leading comments included).
pub fn first_content_line(src: &SourceFile, span: Span) -> Span {
    let text = src.slice(span);
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with('#')) {
            let indent = line.len() - line.trim_start().len();
            let len = line.trim_end().len() - indent;
            let mut end = (start + indent + len.min(80)).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return Span::new(span.start + start + indent, span.start + end);
        }
        start += line.len();
    }
    let first_line = text.find('\n').unwrap_or(text.len()).min(80);
    let mut end = first_line;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Span::new(span.start, span.start + end)
}

/// `a`, `a and b`, `a, b and c`: a list for a message.
pub fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Decode a string value with `${env:…}` interpolation.
impl Decode for String {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str { value, .. } => cx.interpolate(node, value),
            _ => cx.type_error(node, "a string"),
        }
    }
}

/// The optional keys of a table that were present but did not decode (their problems are
/// already reported). Cross-field checks skip what depends on them, instead of reporting a
/// key as missing that is only broken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Broken(pub Vec<&'static str>);

impl Broken {
    /// Whether `key` was present but broken.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains(&key)
    }

    /// Whether any of `keys` was present but broken.
    pub fn any_of(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.has(k))
    }
}

/// A string with its `${env:…}` references substituted (`value`, what is sent) that keeps the
/// text as written (`written`, with the references): labels and messages show `written`, so an
/// environment value never becomes a name in results or reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    pub written: String,
}

impl Decode for Interpolated {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str { value, .. } => cx.interpolate(node, value).map(|v| Interpolated {
                value: v,
                written: value.clone(),
            }),
            _ => cx.type_error(node, "a string"),
        }
    }
}

impl std::ops::Deref for Interpolated {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

impl schemars::JsonSchema for Interpolated {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
    fn inline_schema() -> bool {
        true
    }
}

impl Decode for bool {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => cx.type_error(node, "`true` or `false`"),
        }
    }
}

fn decode_int(node: &Node, cx: &mut Ctx) -> Option<i64> {
    match node.value {
        Value::Int(i) => Some(i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(f as i64),
        Value::Str { .. } => {
            cx.type_error::<()>(node, "an integer");
            cx.hint("write the number without quotes");
            None
        }
        _ => cx.type_error(node, "an integer"),
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
                let i = decode_int(node, cx)?;
                if i < 0 {
                    cx.error::<()>(node.span, "spec::range", format!("must not be negative (found {i})"));
                    cx.label("negative");
                    return None;
                }
                match <$t>::try_from(i) {
                    Ok(v) => Some(v),
                    Err(_) => cx.error(node.span, "spec::range", format!("{i} is too large (at most {})", <$t>::MAX)),
                }
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

impl Decode for i64 {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        decode_int(node, cx)
    }
}

impl Decode for f64 {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) if f.is_finite() => Some(f),
            Value::Float(_) => cx.error(node.span, "spec::range", "must be a finite number"),
            _ => cx.type_error(node, "a number"),
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let Value::Array(items) = &node.value else {
            return cx.type_error(node, "an array");
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match T::decode(item, cx) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        let Value::Table(entries) = &node.value else {
            return cx.type_error(node, "a table");
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in entries {
            match T::decode(v, cx) {
                Some(v) => {
                    out.insert(k.name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl<T: Decode> Decode for Spanned<T> {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        T::decode(node, cx).map(|v| Spanned::new(v, node.span))
    }
}

impl<T: Decode> Decode for Box<T> {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        T::decode(node, cx).map(Box::new)
    }
}

/// Any value, kept as JSON (request bodies, sweep values).
impl Decode for serde_json::Value {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        // interpolate env in nested strings too
        fn walk(node: &Node, cx: &mut Ctx) -> Option<serde_json::Value> {
            use serde_json::Value as J;
            Some(match &node.value {
                Value::Str { value, .. } => J::String(cx.interpolate(node, value)?),
                Value::Array(items) => J::Array(
                    items
                        .iter()
                        .map(|i| walk(i, cx))
                        .collect::<Option<Vec<_>>>()?,
                ),
                Value::Table(entries) => J::Object(
                    entries
                        .iter()
                        .map(|(k, v)| Some((k.name.clone(), walk(v, cx)?)))
                        .collect::<Option<serde_json::Map<_, _>>>()?,
                ),
                _ => node.to_json(),
            })
        }
        walk(node, cx)
    }
}

/// Decode a unit-bearing quantity of a given dimension from a string (or a bare number
/// where the dimension allows it).
pub fn quantity(node: &Node, cx: &mut Ctx, dim: Dimension) -> Option<f64> {
    let text = match &node.value {
        Value::Str { value, .. } => value.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if !f.is_finite() => {
            return not_finite(node, cx, dim);
        }
        Value::Float(f) => f.to_string(),
        _ => return cx.type_error(node, dim.name()),
    };
    match Quantity::parse_as(&text, dim) {
        Ok(v) if !v.is_finite() => not_finite(node, cx, dim),
        Ok(v) => Some(v),
        Err(msg) => {
            let bare = matches!(node.value, Value::Int(_) | Value::Float(_));
            cx.error::<()>(node.span, "spec::unit", msg);
            cx.label(format!("expected {}", dim.name()));
            let mut hint = format!("write {}", dim.units_hint());
            if bare && !dim.accepts_bare() {
                hint = format!("a bare number is ambiguous here: {hint}, quoted");
            }
            cx.hint(hint);
            None
        }
    }
}

/// `NaN`, `.inf` or a number too large for a float where a quantity belongs.
fn not_finite(node: &Node, cx: &mut Ctx, dim: Dimension) -> Option<f64> {
    cx.error::<()>(
        node.span,
        "spec::range",
        format!("{} must be a finite number", dim.name()),
    );
    cx.label("not a finite number");
    cx.hint(format!("write {}", dim.units_hint()));
    None
}

macro_rules! unit_type {
    ($(#[$m:meta])* $name:ident, $dim:expr, $schema_desc:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(pub f64);

        impl Decode for $name {
            fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
                quantity(node, cx, $dim).map($name)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                if $dim.accepts_bare() {
                    schemars::json_schema!({ "type": ["string", "number"], "description": $schema_desc })
                } else {
                    schemars::json_schema!({ "type": "string", "description": $schema_desc })
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$dim.format(self.0))
            }
        }
    };
}

unit_type!(
    /// A duration in seconds, written `250ms`, `1.5s`, `1m30s`.
    Duration, Dimension::Time, "a duration: `250ms`, `1.5s`, `2m`, `1m30s`"
);
unit_type!(
    /// A size in bytes, written `512B`, `64KiB`, `1.5MiB`.
    Size, Dimension::Bytes, "a size: `512B`, `64KiB`, `1.5MiB`, `2GB`"
);
unit_type!(
    /// A rate per second, written `200/s`, `3000/min`.
    Rate, Dimension::Rate, "a rate: `200/s`, `3000/min`"
);
unit_type!(
    /// A fraction, written `0.25`, `25%` or `0.25x`.
    Ratio, Dimension::Ratio, "a ratio: `0.25`, `25%`, `1.1x`"
);
unit_type!(
    /// Percentage points, written `1pp`.
    Points, Dimension::Points, "percentage points: `1pp`"
);

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.0.max(0.0))
    }
}

/// A range `5ms..15ms` (uniform) or a single value (fixed), of one dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

impl<T: Decode + Copy + PartialOrd> Decode for Range<T> {
    fn decode(node: &Node, cx: &mut Ctx) -> Option<Self> {
        if let Value::Str { value, .. } = &node.value
            && let Some(i) = value.find("..")
        {
            let lo = Node::new(
                Value::Str {
                    value: value[..i].trim().to_string(),
                    raw_offset: None,
                },
                node.inner_span(0, i),
            );
            let hi_text = value[i + 2..].trim_start_matches('=').trim();
            let hi = Node::new(
                Value::Str {
                    value: hi_text.to_string(),
                    raw_offset: None,
                },
                node.inner_span(i + 2, value.len()),
            );
            let (lo, hi) = (T::decode(&lo, cx)?, T::decode(&hi, cx)?);
            if hi < lo {
                cx.error::<()>(
                    node.span,
                    "spec::range",
                    "the range's upper bound is below its lower bound",
                );
                cx.hint("write `low..high`");
                return None;
            }
            return Some(Range { min: lo, max: hi });
        }
        let v = T::decode(node, cx)?;
        Some(Range { min: v, max: v })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Range<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("RangeOf{}", T::schema_name()).into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number"], "description": "a value, or a uniform range `low..high`" })
    }
}

/// Decode a string that must be one of a fixed set of words.
pub fn one_of(node: &Node, cx: &mut Ctx, allowed: &[&'static str]) -> Option<&'static str> {
    let s = match &node.value {
        Value::Str { value, .. } => value.as_str(),
        _ => return cx.type_error(node, "a string"),
    };
    if let Some(a) = allowed.iter().find(|a| **a == s) {
        return Some(a);
    }
    cx.error::<()>(node.span, "spec::enum", format!("unknown value `{s}`"));
    cx.label(format!("expected one of: {}", allowed.join(", ")));
    // without a close match the label already lists every word
    if let Some(m) = did_you_mean(s, allowed.iter().copied()) {
        cx.hint(format!("did you mean `{m}`?"));
    }
    None
}

/// Declare a string enum with its words, a [`Decode`] impl and a JSON schema.
macro_rules! word_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $word)] $variant),+ }

        impl $name {
            pub const WORDS: &'static [&'static str] = &[$($word),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl $crate::spec::decode::Decode for $name {
            fn decode(node: &$crate::spec::node::Node, cx: &mut $crate::spec::decode::Ctx) -> Option<Self> {
                let w = $crate::spec::decode::one_of(node, cx, Self::WORDS)?;
                match w { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use word_enum;

/// Declare a table type: the struct (with a JSON schema) and a [`Decode`] impl that reads
/// `req` and `opt` keys and reports unknown ones. Field `r#for` reads the key `for`.
macro_rules! spec_table {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $field:ident : $mode:ident $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, schemars::JsonSchema)]
        #[schemars(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $field: $crate::spec::decode::spec_table!(@ty $mode $ty),)*
            /// Optional keys that were present but did not decode (already reported): the
            /// table is kept, with those fields `None`, so that checks that do not depend on
            /// them still run.
            #[schemars(skip)]
            pub broken: $crate::spec::decode::Broken,
        }

        impl $name {
            /// The keys of this table, in declaration order (only the documents' are read,
            /// hence `allow` rather than `expect`).
            #[allow(dead_code)]
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl $crate::spec::decode::Decode for $name {
            fn decode(node: &$crate::spec::node::Node, cx: &mut $crate::spec::decode::Ctx) -> Option<Self> {
                let mut t = $crate::spec::decode::Table::new(node, cx)?;
                // a table of optional keys only never fails; one of required keys never breaks
                #[allow(unused_mut)]
                let mut ok = true;
                #[allow(unused_mut)]
                let mut broken = $crate::spec::decode::Broken::default();
                $(
                    let key = stringify!($field).trim_start_matches("r#");
                    #[allow(unused_mut)]
                    let mut present = t.has(key);
                    let $field = $crate::spec::decode::spec_table!(@read $mode t cx key $ty);
                    $crate::spec::decode::spec_table!(@ok $mode ok broken key present $field);
                )*
                t.finish(cx);
                if !ok { return None; }
                Some($name { $($field: $crate::spec::decode::spec_table!(@unwrap $mode $field),)* broken })
            }
        }
    };
    (@ty req $ty:ty) => { $ty };
    (@ty opt $ty:ty) => { Option<$ty> };
    (@read req $t:ident $cx:ident $key:ident $ty:ty) => { $t.req::<$ty>($cx, $key) };
    (@read opt $t:ident $cx:ident $key:ident $ty:ty) => { $t.opt::<$ty>($cx, $key) };
    (@ok req $ok:ident $broken:ident $key:ident $present:ident $field:ident) => { if $field.is_none() { $ok = false; } let _ = $present; };
    (@ok opt $ok:ident $broken:ident $key:ident $present:ident $field:ident) => { if $present && $field.is_none() { $broken.0.push($key); } };
    (@unwrap req $field:ident) => { $field.expect("checked above") };
    (@unwrap opt $field:ident) => { $field };
}
pub(crate) use spec_table;

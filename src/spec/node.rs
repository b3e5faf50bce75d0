//! The format-independent document tree. Both front ends (TOML, YAML) produce a [`Node`]
//! with a [`Span`] on every value and every key, so that later checks — a bad unit inside an
//! SLO string, a capacity out of range — point at the exact place in either format.

use super::source::Span;

/// A key of a table with its span.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string. `raw_offset` is `Some(n)` when the characters of the value appear verbatim in
    /// the source starting `n` bytes after `span.start` (no escapes, no folding), so that
    /// positions inside the string can be mapped back to the file exactly.
    Str {
        value: String,
        raw_offset: Option<usize>,
    },
    /// TOML datetimes and other scalars that perfspec does not interpret, kept as text.
    Other(String),
    Array(Vec<Node>),
    Table(Vec<(Key, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Node {
        Node { value, span }
    }

    /// Human name of the node's type, for "expected a table, found a string".
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str { .. } => "a string",
            Value::Other(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The span of a byte range inside a string value, if it maps to the source exactly;
    /// otherwise the whole value's span.
    pub fn inner_span(&self, start: usize, end: usize) -> Span {
        match &self.value {
            Value::Str {
                raw_offset: Some(off),
                ..
            } => self.span.sub(off + start, off + end),
            _ => self.span,
        }
    }

    /// Look up a key of a table node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Table(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follow a dotted path of table keys and array indices (`topology.l1.capacity`, `slo.2`).
    pub fn get_path(&self, path: &str) -> Option<&Node> {
        let mut cur = self;
        for part in path.split('.') {
            cur = match &cur.value {
                Value::Table(_) => cur.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Convert to JSON (spans dropped); used for hashing and for the resolved spec.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str { value, .. } => J::String(value.clone()),
            Value::Other(s) => J::String(s.clone()),
            Value::Array(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Table(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Find where `value` sits verbatim inside the raw source text of a string token, e.g. after
/// the opening quote. Returns `None` when escapes or folding make the mapping inexact.
pub fn raw_offset_of(raw: &str, value: &str) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    for prefix in ["\"\"\"", "'''", "\"", "'", ""] {
        if let Some(rest) = raw.strip_prefix(prefix)
            && rest.starts_with(value)
        {
            let after = &rest[value.len()..];
            let closed = prefix.is_empty() || after.starts_with(prefix);
            if closed {
                return Some(prefix.len());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_offsets() {
        assert_eq!(raw_offset_of("\"p95(x) < 1ms\"", "p95(x) < 1ms"), Some(1));
        assert_eq!(raw_offset_of("p95(x) < 1ms", "p95(x) < 1ms"), Some(0));
        assert_eq!(raw_offset_of("'''a'''", "a"), Some(3));
        assert_eq!(raw_offset_of("\"a\\tb\"", "a\tb"), None);
    }
}

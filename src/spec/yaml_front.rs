//! YAML front end: text → [`Node`] tree with exact byte spans on every key and value.
//!
//! Built on `yaml-rust2`'s low-level event parser, driven one event at a time
//! ([`Parser::next_token`]) so that nothing recurses: the parser keeps its own state stack and
//! the tree is built here with an explicit stack of open collections. Values follow the
//! YAML 1.2 core schema for plain scalars; quoted and block scalars are always strings.
//!
//! Facts about `yaml-rust2` 0.13 that shape this module (measured, see the tests):
//! - `Marker::line` is 1-based and `Marker::col` is 0-based, counted in *characters*;
//!   `Marker::index` is documented as bytes but counts characters — except inside block scalars,
//!   where a line's content is added in bytes — so it is unusable for non-ASCII text. Positions
//!   are therefore computed from `(line, col)` with our own line table (CR, LF and CRLF all
//!   break lines, as in the scanner);
//! - a scalar's marker is its first character (the quote for quoted scalars, the first content
//!   character for block scalars, *not* the `|`/`>` indicator); an alias's marker is the `*`;
//! - a flow collection's start/end markers are its brackets; a block sequence's start marker is
//!   its first `-` (an indentless sequence's is its first item); a block mapping's start marker is one character *after* its first key's
//!   start, and its end marker is wherever the next token is (after comments and blank lines);
//! - an empty value's marker is the next token;
//! - tags come back on the event (`!foo` → `Some(Tag)`), the marker is the tagged node's;
//! - a byte-order mark is not skipped (it becomes part of the first key) and `\0` ends the
//!   input silently, so both are handled before parsing;
//! - the scanner caps flow nesting at 255 ("recursion limit exceeded"); block nesting is only
//!   bounded by memory, but neither recurses on the call stack. `Parser::load` and
//!   `YamlLoader` *do* recurse (one frame chain per level) and overflow a 2 MiB stack on
//!   20 000 nested `- `, which is why this module reads events itself.

use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::diagnostic::Diagnostic;
use super::node::{Key, Node, Value};
use super::source::{SourceFile, Span};

/// The deepest nesting of mappings and sequences a spec may have (the root mapping is level 1).
pub const MAX_DEPTH: usize = 64;
/// The most nodes a document may have once aliases are expanded.
pub const MAX_NODES: usize = 100_000;
/// The most nodes kept as copies for anchors (each anchored node is copied once).
const MAX_ANCHOR_COPIES: usize = 1_000_000;

/// Parse a YAML spec file into a [`Node`] tree whose root is a mapping.
///
/// Problems: `spec::syntax` (scanner errors, with hints for common mistakes), `spec::empty`,
/// `spec::not-a-table`, `spec::duplicate-key`, `spec::complex-key` (a mapping or sequence used
/// as a key), `spec::tag`, `spec::alias` (unknown or self-referencing alias),
/// `spec::multiple-documents`, `spec::too-deep` (more than [`MAX_DEPTH`] levels),
/// `spec::too-large` (more than [`MAX_NODES`] nodes after alias expansion) and `spec::range`
/// (an integer outside `i64`).
pub fn parse(src: &Arc<SourceFile>) -> Result<Node, Vec<Diagnostic>> {
    match parse_recovering(src) {
        (Some(node), diags) if diags.is_empty() => Ok(node),
        (_, diags) => Err(diags),
    }
}

/// [`parse`], keeping the tree when the only problems are values out of range (an integer
/// beyond 64 bits, kept as an opaque value): decoding then reports every other problem too.
pub fn parse_recovering(src: &Arc<SourceFile>) -> (Option<Node>, Vec<Diagnostic>) {
    let text = src.text.as_str();
    if let Some(pos) = text.find('\0') {
        return (
            None,
            vec![
                Diagnostic::error("spec::syntax", "the file contains a NUL character")
                    .at(src, Span::new(pos, pos + 1))
                    .label("here")
                    .hint("YAML files are text; remove the NUL byte"),
            ],
        );
    }
    let base = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let mut builder = Builder::new(src, base);
    let root = builder.run(&text[base..]);
    let mut diags = builder.diags;
    match root {
        Some(root) if diags.iter().all(|d| d.code == "spec::range") => (Some(root), diags),
        Some(_) => (None, diags),
        None => {
            if diags.is_empty() {
                diags.push(
                    Diagnostic::error("spec::empty", "the spec file is empty")
                        .at(src, Span::point(0))
                        .label("no keys in this file")
                        .hint("a spec needs at least `kind`, `name` and `slo`"),
                );
            }
            (None, diags)
        }
    }
}

/// A finished value on its way into its parent.
struct Done {
    node: Node,
    /// Nesting levels inside the node: 0 for a scalar, 1 for a flat collection.
    height: usize,
    /// The text of a scalar, used when the node is a mapping key.
    key_text: Option<String>,
}

/// A node kept for its anchor.
struct Anchored {
    node: Node,
    size: usize,
    height: usize,
    key_text: Option<String>,
}

enum Pending {
    /// The next value is a key.
    Key,
    /// The key of the next value.
    Value(Key),
    /// The key was rejected; drop the next value.
    Skip,
}

enum Items {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Key, Node)>,
        /// Key name → start of its first occurrence.
        seen: HashMap<String, usize>,
        pending: Pending,
    },
}

/// An open collection.
struct Frame {
    items: Items,
    start: usize,
    /// Opened by `[` or `{` (its end marker is the closing bracket).
    flow: bool,
    /// Inside some flow collection (plain scalars end at `,`, `]`, `}`).
    in_flow: bool,
    anchor: usize,
    /// `Builder::nodes` when the frame was opened (to size anchored collections).
    nodes_before: usize,
    /// Max height of the children.
    height: usize,
    /// End of the last child.
    last_end: Option<usize>,
}

struct Builder<'a> {
    src: &'a Arc<SourceFile>,
    text: &'a str,
    /// Byte offsets of line starts in the full text (line 1 starts after a BOM).
    lines: Vec<usize>,
    frames: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    anchor_copies: usize,
    /// End of the last thing read (a scalar, a key, a bracket): where the text between two
    /// events starts (indicators, anchors, tags, comments).
    cursor: usize,
    root: Option<Node>,
    diags: Vec<Diagnostic>,
    /// The last `(line, col, offset)` computed by [`Builder::pos`]: markers mostly move
    /// forward, so walking on from there keeps long lines linear.
    last_pos: std::cell::Cell<(usize, usize, usize)>,
}

/// A problem that stops the build.
struct Fatal;

impl<'a> Builder<'a> {
    fn new(src: &'a Arc<SourceFile>, base: usize) -> Builder<'a> {
        let text = src.text.as_str();
        let b = text.as_bytes();
        let mut lines = vec![base];
        let mut i = base;
        while i < b.len() {
            match b[i] {
                b'\r' if b.get(i + 1) == Some(&b'\n') => {
                    lines.push(i + 2);
                    i += 2;
                }
                b'\r' | b'\n' => {
                    lines.push(i + 1);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        Builder {
            src,
            text,
            lines,
            frames: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            anchor_copies: 0,
            cursor: base,
            root: None,
            diags: Vec::new(),
            last_pos: std::cell::Cell::new((0, 0, 0)),
        }
    }

    /// Read all events of `input` (the text after a BOM); returns the root node.
    fn run(&mut self, input: &str) -> Option<Node> {
        let mut parser = Parser::new_from_str(input);
        let mut documents = 0usize;
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(x) => x,
                Err(err) => {
                    self.scan_error(&err);
                    return None;
                }
            };
            let step = match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        self.second_document(mark);
                        return None;
                    }
                    Ok(())
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.scalar(value, style, anchor, tag.is_some(), mark)
                }
                Event::Alias(id) => self.alias(id, mark),
                Event::SequenceStart(anchor, tag) => self.open(false, anchor, tag.is_some(), mark),
                Event::MappingStart(anchor, tag) => self.open(true, anchor, tag.is_some(), mark),
                Event::SequenceEnd | Event::MappingEnd => self.close(mark),
                _ => Ok(()),
            };
            if step.is_err() {
                return None;
            }
        }
        let root = self.root.take()?;
        if let Value::Table(_) = root.value {
            return Some(root);
        }
        if matches!(root.value, Value::Null) && root.span.is_empty() {
            return None; // `---` alone, or an empty document
        }
        self.diags.push(
            Diagnostic::error(
                "spec::not-a-table",
                format!(
                    "the top level of a spec must be a mapping, found {}",
                    root.type_name()
                ),
            )
            .at(self.src, root.span)
            .label("expected a mapping")
            .hint("write the spec as `key: value` lines, starting with `kind:` and `name:`"),
        );
        None
    }

    // ----- events -------------------------------------------------------------------------

    fn scalar(
        &mut self,
        value: String,
        style: TScalarStyle,
        anchor: usize,
        tagged: bool,
        mark: Marker,
    ) -> Result<(), Fatal> {
        let pos = self.pos(mark);
        if tagged {
            self.tag_error(pos);
        }
        if !self.at_key() {
            self.count(1, None)?;
        }
        let in_flow = self.frames.last().is_some_and(|f| f.in_flow);
        let (span, raw_offset) = self.scalar_span(pos, &value, style, in_flow);
        let node_value = if style == TScalarStyle::Plain {
            match core_schema(&value) {
                Ok(Value::Str { value, .. }) => Value::Str { value, raw_offset },
                Ok(v) => v,
                Err(()) => {
                    self.diags.push(
                        Diagnostic::error(
                            "spec::range",
                            format!("integer `{value}` does not fit in a 64-bit signed integer"),
                        )
                        .at(self.src, span)
                        .label("out of range")
                        .hint("quote it to make it a string"),
                    );
                    Value::Other(value.clone())
                }
            }
        } else {
            Value::Str {
                value: value.clone(),
                raw_offset,
            }
        };
        let node = Node::new(node_value, span);
        if anchor != 0 {
            self.keep_anchor(anchor, &node, 1, 0, Some(value.clone()))?;
        }
        self.cursor = span.end;
        self.attach(Done {
            node,
            height: 0,
            key_text: Some(value),
        });
        Ok(())
    }

    fn alias(&mut self, id: usize, mark: Marker) -> Result<(), Fatal> {
        let pos = self.pos(mark);
        let span = self.alias_span(pos);
        self.cursor = span.end;
        let Some((size, height)) = self.anchors.get(&id).map(|a| (a.size, a.height)) else {
            let name = self.text[span.start..span.end]
                .trim_start_matches('*')
                .to_string();
            self.diags.push(
                Diagnostic::error(
                    "spec::alias",
                    format!("alias `*{name}` refers to the node that contains it"),
                )
                .at(self.src, span)
                .label("recursive alias")
                .hint("an alias can only repeat a node that is complete before it"),
            );
            return Err(Fatal);
        };
        if !(height == 0 && self.at_key()) {
            self.count(size, Some(span))?;
        }
        if self.frames.len() + height > MAX_DEPTH {
            self.too_deep(span);
            return Err(Fatal);
        }
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(Fatal);
        };
        let mut node = anchored.node.clone();
        let key_text = anchored.key_text.clone();
        node.span = span;
        if let Value::Str { raw_offset, .. } = &mut node.value {
            *raw_offset = None;
        }
        self.attach(Done {
            node,
            height,
            key_text,
        });
        Ok(())
    }

    fn open(&mut self, map: bool, anchor: usize, tagged: bool, mark: Marker) -> Result<(), Fatal> {
        let pos = self.pos(mark);
        if tagged {
            self.tag_error(pos);
        }
        let bracket = if map { b'{' } else { b'[' };
        let flow = self.text.as_bytes().get(pos) == Some(&bracket);
        let mut pos = pos;
        if !map && !flow && self.text.as_bytes().get(pos) != Some(&b'-') {
            // An indentless sequence (`key:` then `- a` in the same column) is marked at its
            // first item, not at its `-`.
            let line_start = self.lines[self.line_index(pos)];
            let indent = self.text[line_start..pos].trim_start_matches([' ', '\t']);
            if indent.starts_with('-') {
                pos -= indent.len();
            }
        }
        if self.frames.len() >= MAX_DEPTH {
            let span = Span::new(pos, self.char_end(pos));
            self.too_deep(span);
            return Err(Fatal);
        }
        self.count(1, None)?;
        let in_flow = flow || self.frames.last().is_some_and(|f| f.in_flow);
        let items = if map {
            Items::Map {
                entries: Vec::new(),
                seen: HashMap::new(),
                pending: Pending::Key,
            }
        } else {
            Items::Seq(Vec::new())
        };
        if flow {
            self.cursor = pos + 1;
        } else if !map {
            self.cursor = pos.max(self.cursor);
        }
        self.frames.push(Frame {
            items,
            start: pos,
            flow,
            in_flow,
            anchor,
            nodes_before: self.nodes - 1,
            height: 0,
            last_end: None,
        });
        Ok(())
    }

    fn close(&mut self, mark: Marker) -> Result<(), Fatal> {
        let Some(frame) = self.frames.pop() else {
            return Ok(());
        };
        let pos = self.pos(mark);
        let b = self.text.as_bytes();
        let end = if frame.flow && matches!(b.get(pos), Some(b']' | b'}')) {
            pos + 1
        } else {
            frame.last_end.unwrap_or(frame.start).max(frame.start)
        };
        let value = match frame.items {
            Items::Seq(items) => Value::Array(items),
            Items::Map { entries, .. } => Value::Table(entries),
        };
        let node = Node::new(value, Span::new(frame.start, end));
        let height = frame.height + 1;
        if frame.anchor != 0 {
            let size = self.nodes - frame.nodes_before;
            self.keep_anchor(frame.anchor, &node, size, height, None)?;
        }
        self.cursor = end;
        self.attach(Done {
            node,
            height,
            key_text: None,
        });
        Ok(())
    }

    /// Put a finished value into the innermost open collection (or make it the root).
    fn attach(&mut self, done: Done) {
        let Some(frame) = self.frames.last_mut() else {
            self.root = Some(done.node);
            return;
        };
        let span = done.node.span;
        frame.height = frame.height.max(done.height);
        frame.last_end = Some(span.end.max(frame.last_end.unwrap_or(0)));
        match &mut frame.items {
            Items::Seq(items) => items.push(done.node),
            Items::Map {
                entries,
                seen,
                pending,
            } => {
                match std::mem::replace(pending, Pending::Key) {
                    Pending::Key => {
                        if entries.is_empty() && seen.is_empty() && !frame.flow {
                            // A block mapping starts at its first key (its marker is off by one).
                            frame.start = span.start.min(frame.start);
                        }
                        *pending = match done.key_text {
                            Some(name) if done.height == 0 => {
                                if let Some(&first) = seen.get(&name) {
                                    let line = self.src.line_col(first).0;
                                    self.diags.push(
                                        Diagnostic::error("spec::duplicate-key", format!("duplicate key `{name}`"))
                                            .at(self.src, span)
                                            .label("defined again here")
                                            .hint(format!("`{name}` is first defined on line {line}; keep only one of them")),
                                    );
                                    Pending::Skip
                                } else {
                                    seen.insert(name.clone(), span.start);
                                    Pending::Value(Key { name, span })
                                }
                            }
                            _ => {
                                self.diags.push(
                                    Diagnostic::error(
                                        "spec::complex-key",
                                        format!("a key must be a plain value, not {}", done.node.type_name()),
                                    )
                                    .at(self.src, span)
                                    .label("used as a key")
                                    .hint("keys are names such as `capacity`; quote dotted paths: \"topology.l1.capacity\""),
                                );
                                Pending::Skip
                            }
                        };
                    }
                    Pending::Value(key) => entries.push((key, done.node)),
                    Pending::Skip => {}
                }
            }
        }
    }

    // ----- limits -------------------------------------------------------------------------

    /// Whether the next value is a mapping key (keys are not counted as nodes).
    fn at_key(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame {
                items: Items::Map {
                    pending: Pending::Key,
                    ..
                },
                ..
            })
        )
    }

    fn count(&mut self, n: usize, alias: Option<Span>) -> Result<(), Fatal> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes <= MAX_NODES {
            return Ok(());
        }
        let diag = match alias {
            Some(span) => Diagnostic::error(
                "spec::too-large",
                format!("document expands to more than {MAX_NODES} nodes (alias expansion)"),
            )
            .at(self.src, span)
            .label("this alias crosses the limit")
            .hint("each alias is a full copy of its anchor; nested aliases multiply"),
            None => {
                let at = self.cursor.min(self.text.len());
                Diagnostic::error(
                    "spec::too-large",
                    format!("document has more than {MAX_NODES} nodes"),
                )
                .at(self.src, Span::point(at))
                .label("the limit is crossed here")
                .hint("split the spec into several files")
            }
        };
        self.diags.push(diag);
        Err(Fatal)
    }

    fn keep_anchor(
        &mut self,
        id: usize,
        node: &Node,
        size: usize,
        height: usize,
        key_text: Option<String>,
    ) -> Result<(), Fatal> {
        self.anchor_copies = self.anchor_copies.saturating_add(size);
        if self.anchor_copies > MAX_ANCHOR_COPIES {
            self.diags.push(
                Diagnostic::error("spec::too-large", "too many nodes under anchors")
                    .at(self.src, node.span)
                    .label("this anchor")
                    .hint("anchor smaller parts of the document"),
            );
            return Err(Fatal);
        }
        self.anchors.insert(
            id,
            Anchored {
                node: node.clone(),
                size,
                height,
                key_text,
            },
        );
        Ok(())
    }

    fn too_deep(&mut self, span: Span) {
        self.diags.push(
            Diagnostic::error(
                "spec::too-deep",
                format!("nesting deeper than {MAX_DEPTH} levels"),
            )
            .at(self.src, span)
            .label("too deep")
            .hint("specs never need this much nesting; flatten the structure"),
        );
    }

    // ----- errors -------------------------------------------------------------------------

    fn scan_error(&mut self, err: &ScanError) {
        let pos = self.pos(*err.marker());
        let info = err.info();
        let span = Span::new(pos, self.char_end(pos));
        if info.contains("recursion limit") {
            // The scanner stops at 255 open flow collections, usually before we see level 65.
            let at = self.deep_flow_position().unwrap_or(pos);
            self.too_deep(Span::new(at, self.char_end(at)));
            return;
        }
        if info.contains("unknown anchor") {
            let span = self.alias_span(pos);
            let name = self.text[span.start..span.end]
                .trim_start_matches('*')
                .to_string();
            self.diags.push(
                Diagnostic::error("spec::alias", format!("unknown alias `*{name}`"))
                    .at(self.src, span)
                    .label("no anchor with this name before here")
                    .hint(format!(
                        "define the anchor first, e.g. `key: &{name} value`"
                    )),
            );
            return;
        }
        let mut span = span;
        let line_start = self.lines[self.line_index(pos)];
        let tab_before = self.text[line_start..pos.max(line_start)].contains('\t');
        let hint = if info.contains("tab") || (tab_before && info.contains("whitespace")) {
            // Point at the offending tab when the line's indentation has one.
            if let Some(t) = self.text[line_start..pos.max(line_start)].find('\t') {
                span = Span::new(line_start + t, line_start + t + 1);
            }
            Some(if info.contains("tab") {
                "YAML does not allow tabs for indentation; indent with spaces".to_string()
            } else {
                "YAML does not allow tabs here; use spaces".to_string()
            })
        } else if info.contains("mapping values are not allowed") {
            Some(
                "a value containing `: ` must be quoted; otherwise check this line's indentation"
                    .into(),
            )
        } else if info.contains("block sequence entries are not allowed") {
            Some(
                "a `- ` item starts its own line, indented under its key: `slo:` then `  - p95(latency) < 250ms`"
                    .into(),
            )
        } else if info.contains("expect ':'") || info.contains("expected ':'") {
            Some(
                "a key needs `: ` after it; if this line continues the previous value, indent it more than its key"
                    .into(),
            )
        } else if info.contains("expected '-'") {
            Some(
                "the items of one list start with `- ` in the same column: check the indentation"
                    .into(),
            )
        } else if info.contains("did not find expected key") || info.contains("invalid indentation")
        {
            Some("check the indentation: keys of one mapping must start in the same column".into())
        } else if info.contains("unexpected character") || info.contains("cannot start any token") {
            Some("values starting with `@` or a backtick must be quoted".into())
        } else if info.contains("end of stream") && info.contains("quoted") {
            Some("a quoted string is not closed".into())
        } else if info.contains("placement of ':'") {
            Some("check that every `[` and `{` is closed; quote values that contain `: `".into())
        } else if info.contains("flow sequence") {
            Some("separate items with `,` and close the list with `]`".into())
        } else if info.contains("flow mapping") {
            Some("separate entries with `,` and close the mapping with `}`".into())
        } else {
            None
        };
        self.diags.push(
            Diagnostic::error("spec::syntax", lowercase_first(info))
                .at(self.src, span)
                .label("here")
                .maybe_hint(hint),
        );
    }

    /// The first `[` / `{` that opens the [`MAX_DEPTH`]-th nested flow collection (quoted
    /// scalars and comments skipped; a rough scan used only to place a depth error).
    fn deep_flow_position(&self) -> Option<usize> {
        let b = self.text.as_bytes();
        let mut depth = 0usize;
        let mut prev = b' ';
        let mut i = self.lines[0];
        while i < b.len() {
            let c = b[i];
            match c {
                b'#' if matches!(prev, b' ' | b'\t' | b'\n' | b'\r') => {
                    i = skip_line(b, i);
                    prev = b'\n';
                    continue;
                }
                b'"' | b'\''
                    if matches!(
                        prev,
                        b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b',' | b':'
                    ) =>
                {
                    i = quoted_end(b, i);
                    prev = c;
                    continue;
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth >= MAX_DEPTH {
                        return Some(i);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
            i += 1;
        }
        None
    }

    fn second_document(&mut self, mark: Marker) {
        let pos = self.pos(mark);
        let end = if self.text[pos..].starts_with("---") {
            pos + 3
        } else {
            self.char_end(pos)
        };
        self.diags.push(
            Diagnostic::error("spec::multiple-documents", "one spec per file")
                .at(self.src, Span::new(pos, end))
                .label("a second document starts here")
                .hint("move each document after `---` into a file of its own"),
        );
    }

    fn tag_error(&mut self, pos: usize) {
        let from = self.cursor.min(pos);
        let span = self
            .scan_prefix(from, pos)
            .tag
            .unwrap_or(Span::new(pos, self.char_end(pos)));
        self.diags.push(
            Diagnostic::error("spec::tag", "tags are not supported")
                .at(self.src, span)
                .label("tag")
                .hint("remove the tag; quote a value to make it a string"),
        );
    }

    // ----- positions ----------------------------------------------------------------------

    /// Byte offset of a marker: line is 1-based, column 0-based in characters.
    fn pos(&self, mark: Marker) -> usize {
        let Some(idx) = mark.line().checked_sub(1) else {
            return self.lines[0];
        };
        let Some(&start) = self.lines.get(idx) else {
            return self.text.len();
        };
        let end = self.line_end(idx);
        let (last_line, last_col, last_offset) = self.last_pos.get();
        let (from, skip) = if last_line == mark.line() && last_col <= mark.col() {
            (last_offset, mark.col() - last_col)
        } else {
            (start, mark.col())
        };
        let rest = &self.text[from..end];
        let offset = from + rest.char_indices().nth(skip).map_or(rest.len(), |(i, _)| i);
        // A column past the line's end clamps to it, as would any later column.
        self.last_pos.set((mark.line(), mark.col(), offset));
        offset
    }

    /// End of line `idx`'s content (before its line break).
    fn line_end(&self, idx: usize) -> usize {
        let next = self.lines.get(idx + 1).copied().unwrap_or(self.text.len());
        let b = self.text.as_bytes();
        let mut end = next;
        if end > self.lines[idx] && b.get(end - 1) == Some(&b'\n') {
            end -= 1;
        }
        if end > self.lines[idx] && b.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        end
    }

    fn line_index(&self, pos: usize) -> usize {
        match self.lines.binary_search(&pos) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// The end of the character at `pos` (or `pos` at a line break or the end).
    fn char_end(&self, pos: usize) -> usize {
        match self.text[pos..].chars().next() {
            Some('\n' | '\r') | None => pos,
            Some(c) => pos + c.len_utf8(),
        }
    }

    fn alias_span(&self, pos: usize) -> Span {
        let b = self.text.as_bytes();
        let mut end = pos;
        if b.get(end) == Some(&b'*') {
            end += 1;
            while end < b.len()
                && !matches!(
                    b[end],
                    b' ' | b'\t' | b'\r' | b'\n' | b',' | b'[' | b']' | b'{' | b'}'
                )
            {
                end += 1;
            }
        }
        Span::new(pos, self.text.ceil_char_boundary(end))
    }

    fn scalar_span(
        &self,
        pos: usize,
        value: &str,
        style: TScalarStyle,
        in_flow: bool,
    ) -> (Span, Option<usize>) {
        let text = self.text;
        let b = text.as_bytes();
        match style {
            TScalarStyle::Plain if value.is_empty() => (Span::point(self.empty_point()), None),
            TScalarStyle::Plain if text[pos..].starts_with(value) => {
                (Span::new(pos, pos + value.len()), Some(0))
            }
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                if b.get(pos)
                    == Some(if style == TScalarStyle::SingleQuoted {
                        &b'\''
                    } else {
                        &b'"'
                    }) =>
            {
                let end = quoted_end(b, pos);
                let verbatim = !value.is_empty()
                    && end >= pos + 2
                    && text.get(pos + 1..end - 1) == Some(value);
                (Span::new(pos, end), verbatim.then_some(1))
            }
            TScalarStyle::Literal | TScalarStyle::Folded => (self.block_span(pos, value), None),
            _ => (Span::new(pos, self.plain_line_end(pos, in_flow)), None),
        }
    }

    /// Where an empty value sits: just after the `:` / `-` / `?` that introduced it.
    fn empty_point(&self) -> usize {
        let b = self.text.as_bytes();
        let from = self.cursor;
        let mut i = from;
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => i = skip_line(b, i),
                b':' | b'-' | b'?' => return i + 1,
                b'&' | b'!' => i = skip_token(b, i),
                _ => break,
            }
        }
        from
    }

    /// The first line of a (multi-line) plain scalar, trailing blanks trimmed.
    fn plain_line_end(&self, pos: usize, in_flow: bool) -> usize {
        let b = self.text.as_bytes();
        let mut i = pos;
        while i < b.len() {
            match b[i] {
                b'\r' | b'\n' => break,
                b'#' if i > pos && matches!(b[i - 1], b' ' | b'\t') => break,
                b',' | b'[' | b']' | b'{' | b'}' if in_flow => break,
                _ => i += 1,
            }
        }
        while i > pos && matches!(b[i - 1], b' ' | b'\t') {
            i -= 1;
        }
        self.text.ceil_char_boundary(i)
    }

    /// A block scalar spans its `|` / `>` header through its last non-empty content line.
    fn block_span(&self, pos: usize, value: &str) -> Span {
        let b = self.text.as_bytes();
        let from = self.cursor.min(pos);
        let Some(header) = self.scan_prefix(from, pos).indicator else {
            return Span::new(pos, self.line_end(self.line_index(pos)));
        };
        let mut header_end = header + 1;
        while header_end < b.len() && matches!(b[header_end], b'0'..=b'9' | b'+' | b'-') {
            header_end += 1;
        }
        if value.is_empty() || pos <= header_end {
            return Span::new(header, header_end);
        }
        let first = self.line_index(pos);
        let indent = self.text[self.lines[first]..pos].chars().count();
        let mut end = self.line_end(first);
        for idx in first + 1..self.lines.len() {
            let line = &self.text[self.lines[idx]..self.line_end(idx)];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if line.trim().is_empty() {
                continue;
            }
            if spaces < indent {
                break;
            }
            end = self.line_end(idx);
        }
        Span::new(header, end)
    }

    /// Read the text between two events: indicators, anchors, tags, comments.
    fn scan_prefix(&self, from: usize, limit: usize) -> Prefix {
        let b = self.text.as_bytes();
        let mut out = Prefix {
            tag: None,
            indicator: None,
        };
        let mut i = from;
        while i < limit.min(b.len()) {
            match b[i] {
                b' ' | b'\t' | b'\r' | b'\n' | b':' | b'-' | b'?' | b',' => i += 1,
                b'#' => i = skip_line(b, i),
                b'&' => i = skip_token(b, i),
                b'!' => {
                    let end = skip_token(b, i);
                    out.tag
                        .get_or_insert(Span::new(i, self.text.ceil_char_boundary(end)));
                    i = end;
                }
                b'|' | b'>' => {
                    out.indicator = Some(i);
                    break;
                }
                _ => break,
            }
        }
        out
    }
}

struct Prefix {
    tag: Option<Span>,
    indicator: Option<usize>,
}

/// The index after the closing quote of a quoted scalar starting at `pos` (or the end).
fn quoted_end(b: &[u8], pos: usize) -> usize {
    let q = b[pos];
    let mut i = pos + 1;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn skip_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !matches!(b[i], b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Skip an anchor or tag token (up to whitespace or a flow indicator).
fn skip_token(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len()
        && !matches!(
            b[i],
            b' ' | b'\t' | b'\r' | b'\n' | b',' | b'[' | b']' | b'{' | b'}'
        )
    {
        i += 1;
    }
    i
}

fn lowercase_first(s: &str) -> String {
    let s = s.trim_end();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(s[c.len_utf8()..].chars()).collect()
        }
        _ => s.to_string(),
    }
}

/// The YAML 1.2 core schema for plain scalars. `Err` for an integer outside `i64`.
fn core_schema(s: &str) -> Result<Value, ()> {
    Ok(match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => {
            let digits =
                |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c.is_digit(radix));
            let prefixed = match s.get(..2) {
                Some("0x") => Some((&s[2..], 16)),
                Some("0o") => Some((&s[2..], 8)),
                _ => None,
            };
            if let Some((body, radix)) = prefixed
                && digits(body, radix)
            {
                return i64::from_str_radix(body, radix)
                    .map(Value::Int)
                    .map_err(|_| ());
            }
            let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits(unsigned, 10) {
                return s
                    .trim_start_matches('+')
                    .parse::<i64>()
                    .map(Value::Int)
                    .map_err(|_| ());
            }
            if is_core_float(unsigned)
                && let Ok(f) = s.parse::<f64>()
            {
                return Ok(Value::Float(f));
            }
            Value::Str {
                value: s.to_string(),
                raw_offset: Some(0),
            }
        }
    })
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (the sign already stripped).
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Arc<SourceFile> {
        SourceFile::new("spec.yaml", text.to_string())
    }

    fn ok(text: &str) -> (Arc<SourceFile>, Node) {
        let s = src(text);
        let node = parse(&s).unwrap_or_else(|d| panic!("unexpected errors: {d:#?}"));
        (s, node)
    }

    fn errs(text: &str) -> (Arc<SourceFile>, Vec<Diagnostic>) {
        let s = src(text);
        match parse(&s) {
            Ok(n) => panic!("expected an error, got {n:?}"),
            Err(d) => (s, d),
        }
    }

    fn line_col(d: &Diagnostic) -> (usize, usize) {
        d.line_col().expect("diagnostic has a location")
    }

    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// Every node and key span of a tree is in range and on character boundaries.
    fn assert_spans_valid(s: &SourceFile, root: &Node) {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            assert!(
                n.span.start <= n.span.end && n.span.end <= s.text.len(),
                "{n:?}"
            );
            assert!(s.text.is_char_boundary(n.span.start) && s.text.is_char_boundary(n.span.end));
            match &n.value {
                Value::Array(items) => stack.extend(items),
                Value::Table(entries) => {
                    for (k, v) in entries {
                        if !s.slice(k.span).starts_with('*') {
                            assert_eq!(s.slice(k.span).trim_matches(['"', '\'']), k.name, "{k:?}");
                        }
                        stack.push(v);
                    }
                }
                _ => {}
            }
        }
    }

    const DOC: &str = r#"# Catalogue — «spécification» 🚀 non-ASCII first
kind: cache
name: catalog-two-tier
description: 'naïve café: two tiers'
topology:
  instances: 4                       # simulated app instances
  l1: { backend: moka, capacity: 2000, ttl: 30s }
  l2: {backend: redis, spawn: true}
  invalidation: pubsub
origin: { latency: 5ms..15ms }
workload:
  keys: 100000
  distribution: { zipf: 0.99 }
  mix: { read: 0.95, update: 0.05 }
  seed: 0x2A
sweep: { "topology.l1.capacity": [500, 1000, 2000, 4000] }
events: [ { at: 50%, restart: 2 } ]
tags: [fast, "ünïcode", 'it''s']
slo:
  - hit_ratio >= 0.85
  - "p99(latency{op=get}) < 2ms"
  - expr: origin_load_reduction >= 80%   # trailing comment
    severity: warn
  - stale_ratio < 0.1%
notes: |
  first line
  é second line

folded: >-
  one
  two
escaped: "tab\there"
empty:
nothing: ~
"#;

    #[test]
    fn realistic_document_has_exact_spans() {
        let (s, root) = ok(DOC);
        assert_spans_valid(&s, &root);
        assert_eq!(s.slice(root.span).lines().next(), Some("kind: cache"));

        let Value::Table(entries) = &root.value else {
            panic!()
        };
        let (k, v) = &entries[0];
        assert_eq!((k.name.as_str(), s.slice(k.span)), ("kind", "kind"));
        assert_eq!(s.line_col(k.span.start), (2, 1));
        assert_eq!(s.slice(v.span), "cache");

        let desc = root.get("description").unwrap();
        assert_eq!(s.slice(desc.span), "'naïve café: two tiers'");
        assert_eq!(desc.as_str(), Some("naïve café: two tiers"));

        let instances = root.get_path("topology.instances").unwrap();
        assert!(matches!(instances.value, Value::Int(4)));
        assert_eq!(s.slice(instances.span), "4");
        let l1 = root.get_path("topology.l1").unwrap();
        assert_eq!(
            s.slice(l1.span),
            "{ backend: moka, capacity: 2000, ttl: 30s }"
        );
        assert_eq!(
            s.slice(root.get_path("topology.l1.ttl").unwrap().span),
            "30s"
        );
        assert_eq!(
            s.slice(root.get_path("topology.l2").unwrap().span),
            "{backend: redis, spawn: true}"
        );
        assert!(matches!(
            root.get_path("topology.l2.spawn").unwrap().value,
            Value::Bool(true)
        ));
        let topology = root.get("topology").unwrap();
        assert!(s.slice(topology.span).starts_with("instances: 4"));
        assert!(s.slice(topology.span).ends_with("invalidation: pubsub"));
        assert_eq!(
            s.slice(root.get_path("origin.latency").unwrap().span),
            "5ms..15ms"
        );
        assert!(
            matches!(root.get_path("workload.distribution.zipf").unwrap().value, Value::Float(f) if f == 0.99)
        );
        assert!(matches!(
            root.get_path("workload.seed").unwrap().value,
            Value::Int(42)
        ));

        let sweep = root.get("sweep").unwrap();
        let Value::Table(sweep_entries) = &sweep.value else {
            panic!()
        };
        assert_eq!(sweep_entries[0].0.name, "topology.l1.capacity");
        assert_eq!(s.slice(sweep_entries[0].0.span), "\"topology.l1.capacity\"");
        assert_eq!(s.slice(sweep_entries[0].1.span), "[500, 1000, 2000, 4000]");
        assert_eq!(
            s.slice(root.get_path("events.0").unwrap().span),
            "{ at: 50%, restart: 2 }"
        );
        assert_eq!(s.slice(root.get_path("events.0.at").unwrap().span), "50%");

        assert_eq!(s.slice(root.get_path("tags.0").unwrap().span), "fast");
        let uni = root.get_path("tags.1").unwrap();
        assert_eq!(s.slice(uni.span), "\"ünïcode\"");
        assert!(matches!(
            uni.value,
            Value::Str {
                raw_offset: Some(1),
                ..
            }
        ));
        let its = root.get_path("tags.2").unwrap();
        assert_eq!(s.slice(its.span), "'it''s'");
        assert!(matches!(
            its.value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));

        let slo0 = root.get_path("slo.0").unwrap();
        assert_eq!(s.slice(slo0.span), "hit_ratio >= 0.85");
        assert_eq!(s.line_col(slo0.span.start), (20, 5));
        let slo1 = root.get_path("slo.1").unwrap();
        assert_eq!(s.slice(slo1.span), "\"p99(latency{op=get}) < 2ms\"");
        let expr = root.get_path("slo.2.expr").unwrap();
        assert_eq!(s.slice(expr.span), "origin_load_reduction >= 80%");
        assert_eq!(
            s.slice(root.get_path("slo.2").unwrap().span),
            "expr: origin_load_reduction >= 80%   # trailing comment\n    severity: warn"
        );
        let slo = root.get("slo").unwrap();
        assert!(s.slice(slo.span).starts_with("- hit_ratio"));
        assert!(s.slice(slo.span).ends_with("- stale_ratio < 0.1%"));

        let notes = root.get("notes").unwrap();
        assert_eq!(notes.as_str(), Some("first line\né second line\n"));
        assert_eq!(s.slice(notes.span), "|\n  first line\n  é second line");
        assert!(matches!(
            notes.value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));
        let folded = root.get("folded").unwrap();
        assert_eq!(folded.as_str(), Some("one two"));
        assert_eq!(s.slice(folded.span), ">-\n  one\n  two");
        assert!(matches!(
            root.get("escaped").unwrap().value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));
        assert_eq!(s.slice(root.get("escaped").unwrap().span), "\"tab\\there\"");
        let empty = root.get("empty").unwrap();
        assert!(matches!(empty.value, Value::Null));
        assert_eq!(
            s.slice(Span::new(empty.span.start - 6, empty.span.start)),
            "empty:"
        );
        assert!(matches!(root.get("nothing").unwrap().value, Value::Null));
    }

    #[test]
    fn inner_span_maps_into_strings() {
        let (s, root) = ok("# é\nslo:\n  - p95(latency) < 250ms\n  - \"x < 1ms\"\n  - 'y < 2ms'\n");
        let plain = root.get_path("slo.0").unwrap();
        assert_eq!(s.slice(plain.inner_span(4, 11)), "latency");
        assert_eq!(s.slice(plain.inner_span(15, 20)), "250ms");
        assert_eq!(
            s.slice(root.get_path("slo.1").unwrap().inner_span(4, 7)),
            "1ms"
        );
        assert_eq!(
            s.slice(root.get_path("slo.2").unwrap().inner_span(4, 7)),
            "2ms"
        );
        let (s, root) = ok("a: \"x\\ty < 1ms\"\n");
        let a = root.get("a").unwrap();
        assert_eq!(s.slice(a.inner_span(5, 8)), "\"x\\ty < 1ms\"");
    }

    #[test]
    fn sequence_and_empty_value_spans() {
        // An indentless sequence is marked at its first item; its span starts at the `-`.
        let (s, root) = ok("key:\n- a\n-\n- b\nk2:\n  - x\n  -\n");
        assert_eq!(s.slice(root.get("key").unwrap().span), "- a\n-\n- b");
        let empty = root.get_path("key.1").unwrap();
        assert!(matches!(empty.value, Value::Null));
        assert_eq!(s.line_col(empty.span.start), (3, 2));
        assert_eq!(s.slice(root.get("k2").unwrap().span), "- x\n  -");
        // Explicit keys and an implicit mapping inside a flow sequence.
        let (s, root) = ok("? m\n? n\n: 1\nx: [a: 1, b]\n");
        assert!(matches!(root.get("m").unwrap().value, Value::Null));
        assert_eq!(s.slice(root.get("n").unwrap().span), "1");
        assert_eq!(s.slice(root.get_path("x.0").unwrap().span), "a: 1");
        assert_eq!(s.slice(root.get_path("x.1").unwrap().span), "b");
        // Block scalars in a sequence, with chomping indicators and blank lines.
        let (s, root) = ok("a:\n  - |\n    x\n  - >+\n\n    y\n\n  - z\n");
        assert_eq!(s.slice(root.get_path("a.0").unwrap().span), "|\n    x");
        assert_eq!(s.slice(root.get_path("a.1").unwrap().span), ">+\n\n    y");
        assert_eq!(root.get_path("a.1").unwrap().as_str(), Some("\ny\n\n"));
        assert_eq!(s.slice(root.get_path("a.2").unwrap().span), "z");
        // Multi-line quoted scalars span to their closing quote.
        let (s, root) = ok("a: 'multi\n  line'\nb: \"x\\\n  y\"\n");
        assert_eq!(s.slice(root.get("a").unwrap().span), "'multi\n  line'");
        assert_eq!(s.slice(root.get("b").unwrap().span), "\"x\\\n  y\"");
    }

    #[test]
    fn multi_line_plain_scalar_spans_its_first_line() {
        let (s, root) = ok("a: first\n  second # c\nb: [x y,\n  z]\n");
        let a = root.get("a").unwrap();
        assert_eq!(a.as_str(), Some("first second"));
        assert_eq!(s.slice(a.span), "first");
        assert!(matches!(
            a.value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));
        assert_eq!(s.slice(root.get_path("b.0").unwrap().span), "x y");
    }

    #[test]
    fn crlf_bom_and_non_ascii_positions() {
        let (s, root) = ok("\u{feff}kind: load\r\nname: «x»\r\nslo:\r\n  - \"é < 1ms\"\r\n");
        assert_eq!(root.get("kind").unwrap().as_str(), Some("load"));
        let Value::Table(entries) = &root.value else {
            panic!()
        };
        assert_eq!(s.slice(entries[0].0.span), "kind");
        assert_eq!(s.slice(root.get("name").unwrap().span), "«x»");
        let slo = root.get_path("slo.0").unwrap();
        assert_eq!(s.slice(slo.span), "\"é < 1ms\"");
        assert_eq!(s.slice(slo.inner_span(5, 8)), "1ms");
        // A lone CR is a line break for YAML too.
        let (s, root) = ok("a: 1\rb: é\rc: x\n");
        assert_eq!(s.slice(root.get("c").unwrap().span), "x");
        // Non-ASCII inside a block scalar does not shift later positions.
        let (s, root) = ok("a: |\n  ééé 🚀\n  é\nb: 'x'\nc: [y]\n");
        assert_eq!(s.slice(root.get("b").unwrap().span), "'x'");
        assert_eq!(s.slice(root.get_path("c.0").unwrap().span), "y");
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let (s, d) = errs("# é\nkind: load\nslo: [a, b\nname: x\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::syntax");
        assert!(d[0].hint.is_some());
        let span = d[0].span.unwrap();
        assert!(s.text.is_char_boundary(span.start));
        assert_eq!(line_col(&d[0]).0, 4);

        let (_, d) = errs("kind: load\n  name: x\n");
        assert_eq!(d[0].code, "spec::syntax");
        assert_eq!(line_col(&d[0]), (2, 7));
        assert_eq!(
            d[0].message,
            "mapping values are not allowed in this context"
        );

        let (_, d) = errs("é: \"unterminated\n");
        assert_eq!(d[0].code, "spec::syntax");
        assert!(d[0].hint.as_deref().unwrap().contains("not closed"));
    }

    #[test]
    fn tabs_get_a_hint() {
        let (s, d) = errs("kind: load\ntopology:\n\tl1: x\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::syntax");
        assert_eq!(
            d[0].hint.as_deref(),
            Some("YAML does not allow tabs for indentation; indent with spaces")
        );
        assert_eq!(line_col(&d[0]), (3, 1));
        assert_eq!(s.slice(d[0].span.unwrap()), "\t");
        // A tab after `:` is not allowed by yaml-rust2 either.
        let (s, d) = errs("a:\t1\n");
        assert_eq!(d[0].code, "spec::syntax");
        assert_eq!(s.slice(d[0].span.unwrap()), "\t");
        assert!(d[0].hint.as_deref().unwrap().contains("tabs"));
    }

    #[test]
    fn empty_and_comment_only_files() {
        for text in [
            "",
            "\n",
            "# only a comment\n# another\n",
            "---\n",
            "---\n...\n",
            "\u{feff}",
            "~\n",
        ] {
            let (_, d) = errs(text);
            assert_eq!(d.len(), 1, "{text:?}");
            let code = if text == "~\n" {
                "spec::not-a-table"
            } else {
                "spec::empty"
            };
            assert_eq!(d[0].code, code, "{text:?}");
        }
    }

    #[test]
    fn root_must_be_a_mapping() {
        let (s, d) = errs("# é\n- a\n- b\n");
        assert_eq!(d[0].code, "spec::not-a-table");
        assert_eq!(s.slice(d[0].span.unwrap()), "- a\n- b");
        let (s, d) = errs("just text\n");
        assert_eq!(d[0].code, "spec::not-a-table");
        assert_eq!(s.slice(d[0].span.unwrap()), "just text");
        assert!(d[0].message.contains("a string"));
    }

    #[test]
    fn duplicate_keys() {
        let (s, d) = errs("kind: load\n# é\nname: a\ntopology:\n  l1: x\nname: b\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::duplicate-key");
        assert_eq!(d[0].message, "duplicate key `name`");
        assert_eq!(line_col(&d[0]), (6, 1));
        assert_eq!(s.slice(d[0].span.unwrap()), "name");
        assert!(d[0].label.is_some());
        assert!(
            d[0].hint.as_deref().unwrap().contains("line 3"),
            "{:?}",
            d[0].hint
        );
        // Same key in different mappings is fine; in a flow mapping it is not.
        ok("a: {x: 1}\nb: {x: 2}\n");
        let (_, d) = errs("a: {x: 1, \"x\": 2}\n");
        assert_eq!(d[0].code, "spec::duplicate-key");
        assert_eq!(line_col(&d[0]), (1, 11));
    }

    #[test]
    fn keys_are_text() {
        let (s, root) = ok("1: one\ntrue: yes\n0x10: hex\n\"q\": x\n");
        let Value::Table(entries) = &root.value else {
            panic!()
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["1", "true", "0x10", "q"]);
        assert_eq!(s.slice(entries[3].0.span), "\"q\"");
        let (s, d) = errs("? {a: 1}\n: 2\nb: 3\n");
        assert_eq!(d[0].code, "spec::complex-key");
        assert_eq!(s.slice(d[0].span.unwrap()), "{a: 1}");
        let (_, d) = errs("? [a]\n: 2\n");
        assert_eq!(d[0].code, "spec::complex-key");
    }

    #[test]
    fn scalar_typing_follows_the_core_schema() {
        let (_, root) = ok(concat!(
            "n1: null\nn2: ~\nn3:\nn4: NULL\n",
            "b1: true\nb2: False\nb3: TRUE\nb4: yes\n",
            "i1: 42\ni2: -7\ni3: +3\ni4: 0x1F\ni5: 0o17\ni6: 1_000\n",
            "f1: 1.5\nf2: 1e3\nf3: -.inf\nf4: .nan\nf5: .5\nf6: 2.\nf7: +1.0E-2\n",
            "s1: '42'\ns2: \"true\"\ns3: 1.2.3\ns4: |\n  7\n",
        ));
        let v = |k: &str| root.get(k).unwrap().value.clone();
        for k in ["n1", "n2", "n3", "n4"] {
            assert!(matches!(v(k), Value::Null), "{k}");
        }
        assert!(matches!(v("b1"), Value::Bool(true)));
        assert!(matches!(v("b2"), Value::Bool(false)));
        assert!(matches!(v("b3"), Value::Bool(true)));
        assert!(matches!(v("b4"), Value::Str { .. }));
        assert!(matches!(v("i1"), Value::Int(42)));
        assert!(matches!(v("i2"), Value::Int(-7)));
        assert!(matches!(v("i3"), Value::Int(3)));
        assert!(matches!(v("i4"), Value::Int(31)));
        assert!(matches!(v("i5"), Value::Int(15)));
        assert!(matches!(v("i6"), Value::Str { .. }));
        assert!(matches!(v("f1"), Value::Float(f) if f == 1.5));
        assert!(matches!(v("f2"), Value::Float(f) if f == 1000.0));
        assert!(matches!(v("f3"), Value::Float(f) if f == f64::NEG_INFINITY));
        assert!(matches!(v("f4"), Value::Float(f) if f.is_nan()));
        assert!(matches!(v("f5"), Value::Float(f) if f == 0.5));
        assert!(matches!(v("f6"), Value::Float(f) if f == 2.0));
        assert!(matches!(v("f7"), Value::Float(f) if f == 0.01));
        for k in ["s1", "s2", "s3", "s4"] {
            assert!(matches!(v(k), Value::Str { .. }), "{k}");
        }
        let (s, d) = errs("a: 99999999999999999999\n");
        assert_eq!(d[0].code, "spec::range");
        assert_eq!(s.slice(d[0].span.unwrap()), "99999999999999999999");
    }

    #[test]
    fn tags_are_rejected() {
        let (s, d) = errs("kind: !load x\nname: !!str 12\n");
        assert_eq!(d.len(), 2);
        assert!(
            d.iter()
                .all(|d| d.code == "spec::tag" && d.message == "tags are not supported")
        );
        assert_eq!(s.slice(d[0].span.unwrap()), "!load");
        assert_eq!(s.slice(d[1].span.unwrap()), "!!str");
        let (s, d) = errs("a: !t\n  b: 1\nc: !u [1]\n");
        assert_eq!(s.slice(d[0].span.unwrap()), "!t");
        assert_eq!(s.slice(d[1].span.unwrap()), "!u");
    }

    #[test]
    fn one_document_per_file() {
        let (s, d) = errs("kind: load\n---\nkind: cache\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::multiple-documents");
        assert_eq!(d[0].message, "one spec per file");
        assert_eq!(line_col(&d[0]), (2, 1));
        assert_eq!(s.slice(d[0].span.unwrap()), "---");
        let (_, d) = errs("---\nkind: load\n---\nkind: cache\n");
        assert_eq!(line_col(&d[0]), (3, 1));
        // A single explicit document is fine.
        ok("---\nkind: load\n...\n");
    }

    #[test]
    fn anchors_and_aliases() {
        let (s, root) = ok(
            "base: &b { ttl: 30s, capacity: 10 }\nl1: *b\nname: &n x\ncopy: *n\nlist: [*n, *b]\n*n : key-from-alias\n",
        );
        let l1 = root.get("l1").unwrap();
        assert_eq!(s.slice(l1.span), "*b");
        assert_eq!(s.slice(root.get_path("l1.ttl").unwrap().span), "30s");
        let copy = root.get("copy").unwrap();
        assert_eq!(copy.as_str(), Some("x"));
        assert_eq!(s.slice(copy.span), "*n");
        assert!(matches!(
            copy.value,
            Value::Str {
                raw_offset: None,
                ..
            }
        ));
        assert_eq!(s.slice(root.get_path("list.1").unwrap().span), "*b");
        assert_eq!(root.get("x").unwrap().as_str(), Some("key-from-alias"));

        let (s, d) = errs("a: 1\nb: *nope\n");
        assert_eq!(d[0].code, "spec::alias");
        assert_eq!(d[0].message, "unknown alias `*nope`");
        assert_eq!(s.slice(d[0].span.unwrap()), "*nope");
    }

    #[test]
    fn alias_bomb_is_rejected_quickly() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            text.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
        }
        let start = std::time::Instant::now();
        let (s, d) = errs(&text);
        assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::too-large");
        assert_eq!(
            d[0].message,
            "document expands to more than 100000 nodes (alias expansion)"
        );
        assert!(s.slice(d[0].span.unwrap()).starts_with('*'));
    }

    #[test]
    fn aliases_cannot_exceed_the_depth_limit() {
        // Each anchor nests the previous one 40 levels deeper.
        let a = format!("a: &a {}1{}\n", "[".repeat(40), "]".repeat(40));
        let b = format!("b: &b {}*a{}\n", "[".repeat(40), "]".repeat(40));
        let (_, d) = errs(&(a + &b));
        assert_eq!(d[0].code, "spec::too-deep");
    }

    #[test]
    fn depth_limit_is_exact() {
        // Level 1 is the root mapping; `a: [` is level 2.
        ok(&format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        ));
        let (s, d) = errs(&format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        ));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "spec::too-deep");
        assert_eq!(d[0].message, "nesting deeper than 64 levels");
        assert_eq!(s.line_col(d[0].span.unwrap().start), (1, 4 + MAX_DEPTH - 1));
        // Block mappings.
        let mut text = String::new();
        for i in 0..MAX_DEPTH {
            text.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        text.push_str(&format!("{}v: 1\n", " ".repeat(MAX_DEPTH)));
        let (s, d) = errs(&text);
        assert_eq!(d[0].code, "spec::too-deep");
        assert_eq!(s.line_col(d[0].span.unwrap().start).0, MAX_DEPTH + 1);
    }

    #[test]
    fn very_deep_nesting_never_overflows() {
        const N: usize = 20_000;
        let mut block_map = String::new();
        for i in 0..2_000 {
            block_map.push_str(&" ".repeat(i));
            block_map.push_str("a:\n");
        }
        let inputs = vec![
            format!("a: {}1{}\n", "[".repeat(N), "]".repeat(N)),
            format!("a: {}\n", "[".repeat(N)),
            format!("a: {}1{}\n", "{a: ".repeat(N), "}".repeat(N)),
            format!("{}1\n", "- ".repeat(N)),
            format!("a:\n  {}1\n", "- ".repeat(N)),
            format!("{}\n", "[".repeat(N)),
            block_map,
        ];
        for input in inputs {
            let head: String = input.chars().take(12).collect();
            let diags = on_small_stack(move || {
                let s = src(&input);
                let start = std::time::Instant::now();
                let result = parse(&s);
                assert!(start.elapsed().as_secs() < 5);
                result.expect_err("deep input must be rejected")
            });
            assert!(
                diags.iter().any(|d| d.code == "spec::too-deep"),
                "{head}: {diags:?}"
            );
        }
    }

    #[test]
    fn large_documents_are_capped() {
        let text: String = (0..MAX_NODES).map(|i| format!("k{i}: {i}\n")).collect();
        let (_, d) = errs(&text);
        assert_eq!(d[0].code, "spec::too-large");
    }

    #[test]
    fn never_panics_on_tricky_input() {
        let inputs = [
            "\u{feff}",
            "\u{feff}\u{feff}a: 1",
            "a: [\"\\",
            "\"\"\"\"",
            "*",
            "&a [*a]",
            "&a {x: *a}",
            "a: &a [*a]",
            "key: \u{0}",
            "a: 99999999999999999999",
            "a: -99999999999999999999",
            "a: 0x",
            "a: 0xFFFFFFFFFFFFFFFFFF",
            "a: \"é",
            "é",
            "[",
            "{",
            "]",
            "? ",
            ": ",
            "- ",
            "-",
            "---",
            "...",
            "--- |",
            "a: |",
            "a: >\n",
            "a: |9\n x",
            "a: |\n\t x",
            "&",
            "!",
            "!<>",
            "%YAML 1.2\n---\na: 1",
            "%TAG ! tag:x,2000:\n--- !a\nb: 1",
            "a: b: c",
            "a:\n- b\n-",
            "a: 'x\n\ny'",
            "\r\n\r",
            "a: 1\n...\nb: 2",
            "a: [x, ]",
            "{a: 1, a: 2}",
            "a: *b",
            "a: &x 1\nb: &x 2\nc: *x",
            "? - a\n  - b\n: c",
            "\t",
            "a:\t1",
            "@",
            "`",
            "a: \u{85}\u{2028}",
        ];
        for input in inputs {
            let s = src(input);
            match parse(&s) {
                Ok(root) => assert_spans_valid(&s, &root),
                Err(diags) => {
                    assert!(!diags.is_empty());
                    for d in diags {
                        let span = d.span.unwrap_or_else(|| panic!("{input:?}: {d:?}"));
                        assert!(
                            span.start <= span.end && span.end <= s.text.len(),
                            "{input:?}: {d:?}"
                        );
                        assert!(
                            s.text.is_char_boundary(span.start)
                                && s.text.is_char_boundary(span.end),
                            "{input:?}: {d:?}"
                        );
                    }
                }
            }
        }
    }
}

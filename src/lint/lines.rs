//! Where each field of a YAML file is: one pass of the YAML event parser
//! records, per document, the line of every mapping key and sequence item
//! under its dotted path (`spec.analysis.metrics[0].interval`).

use std::collections::HashMap;

use granit_parser::{Event, Parser};

/// Field path → 1-based line, for one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// The line of `path`, or of its nearest ancestor that exists (the
    /// `spec:` line for a missing `spec.targetRef`); `""` is the document.
    pub fn line_of(&self, path: &str) -> usize {
        let mut at = path;
        loop {
            if let Some(line) = self.lines.get(at) {
                return *line;
            }
            if at.is_empty() {
                return 1;
            }
            at = parent(at);
        }
    }
}

/// `a.b[2]` → `a.b` → `a` → `""`.
pub fn parent(path: &str) -> &str {
    if path.ends_with(']')
        && let Some(open) = path.rfind('[')
    {
        return &path[..open];
    }
    path.rfind('.').map_or("", |dot| &path[..dot])
}

/// `parent.key`, or `key` at the top.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// One document as the parser saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedDoc {
    /// Line of the document's start (its `---`, or its first node).
    pub start_line: usize,
    pub index: LineIndex,
}

/// The parser's first error: the documents before it are still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Every complete document of `text`, and the syntax error that ended the
/// scan early, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub docs: Vec<ScannedDoc>,
    /// Start lines of every document begun, complete or not.
    pub starts: Vec<usize>,
    pub error: Option<SyntaxError>,
}

enum Frame {
    /// `key` is the path of the value expected next; `None` while a key is.
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    index: LineIndex,
}

impl Builder {
    /// Places a node starting at `line`; returns its path when it is a
    /// value (a collection's path is needed for its children), or `None`
    /// when it is a mapping key.
    fn place(&mut self, line: usize, key_text: Option<&str>) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                item
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(value) => value,
                None => {
                    // A complex (non-scalar) key gets a path no field can have.
                    let child = join(path, key_text.unwrap_or("?"));
                    self.index.lines.entry(child.clone()).or_insert(line);
                    *key = Some(child);
                    return None;
                }
            },
        };
        self.index.lines.entry(path.clone()).or_insert(line);
        Some(path)
    }

    fn node(&mut self, line: usize, key_text: Option<&str>) {
        self.place(line, key_text);
    }

    fn open(&mut self, line: usize, map: bool) {
        // A collection used as a key: give its children an unreachable path.
        let path = self.place(line, None).unwrap_or_else(|| "?".to_string());
        self.stack.push(if map {
            Frame::Map { path, key: None }
        } else {
            Frame::Seq { path, next: 0 }
        });
    }
}

/// Scans `text`, a whole (possibly multi-document) YAML file.
pub fn scan(text: &str) -> Scan {
    let mut scan = Scan::default();
    let mut current: Option<(usize, Builder)> = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(err) => {
                scan.error = Some(SyntaxError {
                    line: err.marker().line().max(1),
                    message: err.info(),
                });
                break;
            }
        };
        let line = span.start.line().max(1);
        match event {
            Event::DocumentStart(..) => {
                scan.starts.push(line);
                current = Some((line, Builder::default()));
            }
            Event::DocumentEnd => {
                if let Some((start_line, builder)) = current.take() {
                    scan.docs.push(ScannedDoc {
                        start_line,
                        index: builder.index,
                    });
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some((_, b)) = current.as_mut() {
                    b.open(line, matches!(event, Event::MappingStart(..)));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((_, b)) = current.as_mut() {
                    b.stack.pop();
                }
            }
            Event::Scalar(value, ..) => {
                if let Some((_, b)) = current.as_mut() {
                    b.node(line, Some(&value));
                }
            }
            Event::Alias(..) | Event::UnresolvedAlias(..) => {
                if let Some((_, b)) = current.as_mut() {
                    b.node(line, None);
                }
            }
            _ => {}
        }
    }
    scan
}

//! Reading what to lint (files, directories, stdin) and cutting each file
//! into its YAML documents, each with the line it starts at.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::lines::{self, LineIndex, SyntaxError};

/// The name `-` is shown as.
pub const STDIN_NAME: &str = "<stdin>";

/// One file's text and the name findings use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub text: String,
}

impl Input {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Input {
        Input {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Why the inputs could not be read (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `paths`: files as they are, directories recursively for `*.yaml`
/// and `*.yml` (sorted, hidden entries skipped), `-` from `stdin`.
pub fn read(paths: &[String], stdin: &mut dyn Read) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(|source| InputError::Io {
                    path: STDIN_NAME.to_string(),
                    source,
                })?;
            inputs.push(Input::new(STDIN_NAME, text));
        } else if Path::new(path).is_dir() {
            for file in yaml_files(Path::new(path))? {
                inputs.push(read_file(&file, file.display().to_string())?);
            }
        } else {
            inputs.push(read_file(Path::new(path), path.clone())?);
        }
    }
    Ok(inputs)
}

fn read_file(path: &Path, name: String) -> Result<Input, InputError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Input::new(name, text)),
        Err(source) => Err(InputError::Io { path: name, source }),
    }
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            files.extend(yaml_files(&entry)?);
        } else if entry
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(entry);
        }
    }
    Ok(files)
}

/// One YAML document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based position among the file's documents.
    pub position: usize,
    /// Its content, as the API server would store it (`Null` when empty).
    pub value: Value,
    pub lines: LineIndex,
}

/// A file cut into documents: those that parse, then the first syntax
/// error (documents after it cannot be read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub documents: Vec<Document>,
    pub errors: Vec<SyntaxError>,
}

/// Cuts `text` into documents. Each document's lines are parsed on their
/// own, so the value is exactly what `api::from_yaml_str` would read.
pub fn split(text: &str) -> Split {
    let scan = lines::scan(text);
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    let mut split = Split::default();
    let error_line = scan.error.as_ref().map(|e| e.line);
    for (position, doc) in scan.docs.into_iter().enumerate() {
        // From the document's start (the file's start for the first one) to
        // the line before the next document, or before the syntax error.
        let first = if position == 0 { 1 } else { doc.start_line };
        let next = scan.starts.get(position + 1).copied();
        let end = [next, error_line]
            .into_iter()
            .flatten()
            .min()
            .map_or(all.len(), |line| line.saturating_sub(1));
        let slice: String = all
            .get(first.saturating_sub(1)..end.max(first.saturating_sub(1)))
            .unwrap_or_default()
            .concat();
        match serde_saphyr::from_str::<Value>(&slice) {
            Ok(value) => split.documents.push(Document {
                position,
                value,
                lines: doc.index,
            }),
            Err(err) => split.errors.push(SyntaxError {
                line: err.location().map_or(first, |l| {
                    first + usize::try_from(l.line()).unwrap_or(1) - 1
                }),
                message: message(&err),
            }),
        }
    }
    split.errors.extend(scan.error);
    split
}

/// serde-saphyr's message without its position (the document's, where the
/// finding has the file's) or its hint about its own options.
fn message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.rfind(" at line ").map_or(first, |i| &first[..i]);
    first
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(first)
        .to_string()
}

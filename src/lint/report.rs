//! Findings and how they are printed: `file:line: field: message`, with
//! `warning: ` before the message of a warning, and a closing summary.

use std::fmt;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file as given (`<stdin>` for `-`).
    pub file: String,
    /// 1-based line of the field in the file, or of its nearest existing ancestor.
    pub line: usize,
    /// Dotted field path (`spec.analysis.metrics[0].interval`), `<document>`
    /// for YAML syntax errors, `(root)` for the object as a whole.
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.file, self.line, self.field)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything found in a set of inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In input order, then by line.
    pub findings: Vec<Finding>,
    /// Non-empty YAML documents read.
    pub documents: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// 0 without errors, 1 with; warnings do not count.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.errors() > 0)
    }

    /// `3 documents, 0 errors, 1 warning`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {}, {}",
            plural(self.documents, "document"),
            plural(self.errors(), "error"),
            plural(self.warnings(), "warning")
        )
    }

    /// One line per finding, then the summary.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        for finding in &self.findings {
            writeln!(out, "{finding}")?;
        }
        writeln!(out, "{}", self.summary())
    }

    /// Orders findings by input (as `order` ranks file names), then line;
    /// the sort is stable, so one line's findings keep the order found.
    pub(crate) fn sort(&mut self, order: impl Fn(&str) -> usize) {
        self.findings.sort_by_key(|f| (order(&f.file), f.line));
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

//! Go `text/template` rendering of MetricTemplate queries.
//!
//! Flagger executes queries with `missingkey=error`, nil data and the canary
//! model exposed as zero-argument functions (`{{ namespace }}`). This renders
//! the subset queries use: those functions, `variables.<key>`, `printf`/`print`,
//! `$x := ...` variables, parentheses, pipes and trim markers. Anything else is
//! a render error naming the construct, never a silent misrender.

mod exec;
mod lexer;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use exec::Exec;
use parse::{Node, parse};

/// What a query can refer to (Flagger's `MetricTemplateModel`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub namespace: String,
    pub target: String,
    pub service: String,
    pub ingress: String,
    pub route: String,
    pub interval: String,
    pub variables: BTreeMap<String, String>,
}

/// Flagger wraps Go's template errors; the `excution` typo is Flagger's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template parsing failed: template: tmpl:{line}: {message}")]
    Parse { line: usize, message: String },
    #[error(
        "template excution failed: template: tmpl:{line}:{col}: executing \"tmpl\" at <{node}>: {message}"
    )]
    Exec {
        line: usize,
        col: usize,
        node: String,
        message: String,
    },
}

/// Renders `template` against `model`.
pub fn render(template: &str, model: &Model) -> Result<String, RenderError> {
    let nodes = parse(template)?;
    let mut out = String::with_capacity(template.len());
    let mut vars: BTreeMap<String, Value> = BTreeMap::from([("$".to_owned(), Value::Nil)]);
    let exec = Exec { model, template };
    for node in &nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(pipe) => out.push_str(&exec.pipeline(pipe, &vars)?.to_string()),
            Node::Declare(var, pipe) => {
                let value = exec.pipeline(pipe, &vars)?;
                vars.insert(var.clone(), value);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- values

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(BTreeMap<String, String>),
    Nil,
}

impl Value {
    pub(super) fn go_type(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Map(_) => "map[string]string",
            Value::Nil => "<nil>",
        }
    }
}

impl std::fmt::Display for Value {
    /// Go's `%v`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Nil => f.write_str("<no value>"),
        }
    }
}

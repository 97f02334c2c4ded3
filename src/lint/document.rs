//! One YAML document: which object it is, the API server's schema check,
//! the typed parse, then the checks of its kind.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::input::Document;
use super::lines::LineIndex;
use super::report::{Finding, Severity};
use super::schema::Schemas;
use super::{canary, objects};
use crate::api::{self, AlertProvider, Canary, MetricTemplate};

const GROUP: &str = "flagger.app";

/// A document of one file, able to turn a field path into a finding.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub file: String,
    pub value: Value,
    pub lines: LineIndex,
}

impl Doc {
    pub fn new(file: &str, document: Document) -> Doc {
        Doc {
            file: file.to_string(),
            value: document.value,
            lines: document.lines,
        }
    }

    pub fn finding(&self, severity: Severity, field: &str, message: impl Into<String>) -> Finding {
        Finding {
            file: self.file.clone(),
            line: self.lines.line_of(field),
            field: if field.is_empty() { "(root)" } else { field }.to_string(),
            severity,
            message: message.into(),
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Error, field, message)
    }

    pub fn warning(&self, field: &str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Warning, field, message)
    }

    /// `file:line` of a field, to point from one object to another.
    pub fn place(&self, field: &str) -> String {
        format!("{}:{}", self.file, self.lines.line_of(field))
    }
}

/// A Flagger object as read: typed when it passed the schema and the parse.
#[derive(Debug, Clone)]
pub(crate) enum Resource {
    Canary(Box<Canary>),
    Template(Box<MetricTemplate>),
    Provider(Box<AlertProvider>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Canary,
    MetricTemplate,
    AlertProvider,
}

/// A Flagger object of the inputs, for the checks across objects.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub doc: Doc,
    pub kind: Kind,
    pub name: String,
    /// `metadata.namespace`, `default` when unset (as `kubectl apply` would).
    pub namespace: String,
    pub resource: Option<Resource>,
}

/// Checks one document; returns it when it is a Flagger object.
pub(crate) fn check(
    doc: Doc,
    schemas: &Schemas,
    mesh_provider: &str,
    out: &mut Vec<Finding>,
) -> Option<Object> {
    let text = |key: &str| doc.value.get(key).and_then(Value::as_str);
    let (Some(api_version), Some(kind_name)) = (text("apiVersion"), text("kind")) else {
        // Not a Kubernetes object (a Helm values file, say): nothing to apply.
        out.push(doc.warning(
            "",
            "not a Kubernetes object (no apiVersion and kind); skipped",
        ));
        return None;
    };
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    if group != GROUP {
        return None;
    }
    let kind = match kind_name {
        "Canary" => Kind::Canary,
        "MetricTemplate" => Kind::MetricTemplate,
        "AlertProvider" => Kind::AlertProvider,
        other if !schemas.knows(GROUP, other) => {
            out.push(doc.warning(
                "kind",
                format!(
                    "{GROUP} kind {other:?} is not one Serin reads (Canary, MetricTemplate, AlertProvider); skipped"
                ),
            ));
            return None;
        }
        _ => return None,
    };
    let meta = |key: &str| doc.value["metadata"][key].as_str().map(str::to_string);
    let name = meta("name").unwrap_or_default();
    let namespace = meta("namespace")
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let violations = schemas.validate(&doc.value);
    out.extend(violations.iter().map(|v| doc.error(&v.field, &v.message)));
    let resource = if violations.is_empty() {
        typed(&doc, kind, mesh_provider, out)
    } else {
        None
    };
    Some(Object {
        doc,
        kind,
        name,
        namespace,
        resource,
    })
}

/// The typed parse the operator does, then the checks of the kind.
fn typed(doc: &Doc, kind: Kind, mesh_provider: &str, out: &mut Vec<Finding>) -> Option<Resource> {
    let resource = match kind {
        Kind::Canary => Resource::Canary(Box::new(parse(doc, out)?)),
        Kind::MetricTemplate => Resource::Template(Box::new(parse(doc, out)?)),
        Kind::AlertProvider => Resource::Provider(Box::new(parse(doc, out)?)),
    };
    match &resource {
        Resource::Canary(c) => canary::check(doc, c, mesh_provider, out),
        Resource::Template(t) => objects::check_template(doc, t, out),
        Resource::Provider(p) => objects::check_provider(doc, p, out),
    }
    Some(resource)
}

fn parse<T: DeserializeOwned>(doc: &Doc, out: &mut Vec<Finding>) -> Option<T> {
    let mut value = doc.value.clone();
    if let Some(map) = value.as_object_mut() {
        // As in the schema check: a create ignores the status.
        map.remove("status");
    }
    match api::from_value::<T>(value) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let (field, message) = match &err {
                api::ParseError::Field { path, source } => (path.as_str(), source.to_string()),
                api::ParseError::Yaml(e) => ("", e.to_string()),
            };
            let field = if field == "(root)" { "" } else { field };
            out.push(doc.error(field, message));
            None
        }
    }
}

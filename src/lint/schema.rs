//! Validating an object against a CRD's `openAPIV3Schema` the way the API
//! server does on create: `status` dropped, nulls of non-nullable fields
//! pruned, unknown fields rejected (`--validate=strict`), int-or-string
//! checked. CEL rules (`x-kubernetes-validations`) are not evaluated here;
//! the Canary CRD's only one is checked by hand in `canary.rs`.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::lines::join;
use super::structural::{metadata, prune_nulls, strict};

/// One reason the API server would refuse the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path (`spec.targetRef`), `(root)` for the object itself.
    pub field: String,
    pub message: String,
}

/// Why a CRD's schema could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaLoadError {
    #[error("CRD {crd}: {message}")]
    Invalid { crd: String, message: String },
    #[error(transparent)]
    Generate(#[from] crate::api::SchemaError),
    #[error("CRD does not serialize: {0}")]
    Json(#[from] serde_json::Error),
}

struct Served {
    group: String,
    kind: String,
    version: String,
    /// The schema as validated (made strict).
    schema: Value,
    validator: Validator,
}

/// The served versions of a set of CRDs.
pub struct Schemas {
    served: Vec<Served>,
}

impl Schemas {
    /// Serin's own CRDs, as `crate::api::crds()` generates them.
    pub fn serin() -> Result<Schemas, SchemaLoadError> {
        let crds = crate::api::crds()?
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        Schemas::from_crds(&crds)
    }

    /// CRDs given as JSON (e.g. Flagger's `crd.yaml`).
    pub fn from_crds(crds: &[Value]) -> Result<Schemas, SchemaLoadError> {
        let mut served = Vec::new();
        for crd in crds {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let name = text(&crd["metadata"]["name"]);
            let invalid = |message: String| SchemaLoadError::Invalid {
                crd: name.clone(),
                message,
            };
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                if version["served"] != Value::Bool(true) {
                    continue;
                }
                let mut schema = version["schema"]["openAPIV3Schema"].clone();
                if !schema.is_object() {
                    return Err(invalid("a served version has no openAPIV3Schema".into()));
                }
                strict(&mut schema, true);
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft4)
                    .should_validate_formats(false)
                    .build(&schema)
                    .map_err(|e| invalid(e.to_string()))?;
                served.push(Served {
                    group: text(&crd["spec"]["group"]),
                    kind: text(&crd["spec"]["names"]["kind"]),
                    version: text(&version["name"]),
                    schema,
                    validator,
                });
            }
        }
        Ok(Schemas { served })
    }

    /// Whether some CRD here is for `group`'s `kind`, in any served version.
    pub fn knows(&self, group: &str, kind: &str) -> bool {
        self.served
            .iter()
            .any(|s| s.group == group && s.kind == kind)
    }

    /// What the API server would refuse in `object`; empty when it would
    /// store it.
    pub fn validate(&self, object: &Value) -> Vec<Violation> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap_or_default();
        let kinds: Vec<&Served> = self
            .served
            .iter()
            .filter(|s| s.group == group && s.kind == kind)
            .collect();
        let Some(served) = kinds.iter().find(|s| s.version == version) else {
            let versions: Vec<String> = kinds
                .iter()
                .map(|s| format!("{}/{}", s.group, s.version))
                .collect();
            let message = if versions.is_empty() {
                format!("no CRD here serves kind {kind:?} in {api_version:?}")
            } else {
                format!(
                    "{api_version} is not served for {kind} (served: {})",
                    versions.join(", ")
                )
            };
            return vec![Violation {
                field: if versions.is_empty() {
                    "kind"
                } else {
                    "apiVersion"
                }
                .to_string(),
                message,
            }];
        };
        let mut instance = object.clone();
        if let Some(map) = instance.as_object_mut() {
            // The status subresource: a create ignores what is sent.
            map.remove("status");
        }
        prune_nulls(&mut instance, &served.schema);
        let mut out = metadata(&instance);
        for error in served.validator.iter_errors(&instance) {
            let at = dotted(&instance, error.instance_path().as_str());
            match error.kind() {
                ValidationErrorKind::Required { property } => out.push(Violation {
                    field: join(&at, property.as_str().unwrap_or_default()),
                    message: "Required value".into(),
                }),
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    out.extend(unexpected.iter().map(|key| Violation {
                        field: join(&at, key),
                        message: "unknown field (not in the schema)".into(),
                    }));
                }
                ValidationErrorKind::OneOfMultipleValid { .. }
                | ValidationErrorKind::OneOfNotValid { .. } => {
                    let multiple =
                        matches!(error.kind(), ValidationErrorKind::OneOfMultipleValid { .. });
                    let branches = served.schema.pointer(error.schema_path().as_str());
                    out.push(Violation {
                        field: root_name(at),
                        message: one_of(branches, multiple),
                    });
                }
                _ => out.push(Violation {
                    field: root_name(at),
                    message: shortened(&error.to_string()),
                }),
            }
        }
        out
    }
}

fn root_name(path: String) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        path
    }
}

/// Messages quote the offending value; a whole object is too much.
fn shortened(message: &str) -> String {
    const MAX: usize = 200;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

fn one_of(branches: Option<&Value>, multiple: bool) -> String {
    let alternatives: Vec<String> = branches
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(describe)
        .collect();
    let how = if multiple {
        "it matches more than one"
    } else {
        "it matches none"
    };
    format!(
        "must match exactly one of: {} ({how})",
        alternatives.join(" | ")
    )
}

/// A oneOf branch in words: `{type, address}` for its required fields.
fn describe(branch: &Value) -> String {
    if let Some(required) = branch.get("required").and_then(Value::as_array) {
        let names: Vec<&str> = required.iter().filter_map(Value::as_str).collect();
        return format!("{{{}}}", names.join(", "));
    }
    if let Some(not) = branch.get("not") {
        return format!("none of {}", describe(not));
    }
    if let Some(any) = branch.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any.iter().map(describe).collect();
        return parts.join(", ");
    }
    "another shape".into()
}

/// A JSON pointer into `instance` as a dotted path with `[i]` for items.
fn dotted(instance: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut at = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        at = match at {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{segment}]"));
                segment.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            other => {
                out = join(&out, &segment);
                other.and_then(|v| v.get(&segment))
            }
        };
    }
    out
}

//! Schema helpers for field types whose schemars output the API server would
//! not accept as-is, and the post-processing that adds Flagger's
//! validations which cannot be expressed with schemars attributes.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

/// `targetPort`: k8s-openapi's IntOrString has no schema without its
/// `schemars` feature, and the API server wants this marker instead.
pub(crate) fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-int-or-string": true })
}

/// metav1.Time is an RFC 3339 string on the wire.
pub(crate) fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// Why the generated CRD could not be adjusted.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema of {crd} has no node at {path}")]
    MissingNode { crd: String, path: String },
    #[error("generated CRD {crd} is not valid JSON for a CustomResourceDefinition: {source}")]
    Json {
        crd: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Returns the schema node at a dotted path below `openAPIV3Schema`;
/// `[]` steps into array items, `{}` into map values.
pub(crate) fn node_mut<'a>(
    root: &'a mut Value,
    crd: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, SchemaError> {
    let missing = || SchemaError::MissingNode {
        crd: crd.to_string(),
        path: path.to_string(),
    };
    let mut node = root;
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let (name, suffixes) = match step.find(['[', '{']) {
            Some(i) => step.split_at(i),
            None => (step, ""),
        };
        if !name.is_empty() {
            node = node
                .get_mut("properties")
                .and_then(|p| p.get_mut(name))
                .ok_or_else(missing)?;
        }
        let mut rest = suffixes;
        while !rest.is_empty() {
            let (key, tail) = if let Some(tail) = rest.strip_prefix("[]") {
                ("items", tail)
            } else if let Some(tail) = rest.strip_prefix("{}") {
                ("additionalProperties", tail)
            } else {
                return Err(missing());
            };
            node = node.get_mut(key).ok_or_else(missing)?;
            rest = tail;
        }
    }
    node.as_object_mut().ok_or_else(missing)
}

/// Exactly one of the listed property sets must be present.
pub(crate) fn one_of_required(sets: &[&[&str]]) -> Value {
    Value::Array(sets.iter().map(|set| json!({ "required": set })).collect())
}

/// Istio StringMatch: at most one of exact/prefix/regex.
pub(crate) fn istio_string_match_one_of() -> Value {
    json!([
        { "not": { "anyOf": [
            { "required": ["exact"] },
            { "required": ["prefix"] },
            { "required": ["regex"] }
        ] } },
        { "required": ["exact"] },
        { "required": ["prefix"] },
        { "required": ["regex"] }
    ])
}

/// Drops `nullable` and the `null` that schemars lists among an optional
/// enum's values: Flagger's schema has neither, and without them the API
/// server prunes explicit nulls exactly as it does for Flagger.
pub(crate) fn strip_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(strip_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

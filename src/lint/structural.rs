//! What the API server does around a CRD's schema: makes it strict
//! (`--validate=strict`, int-or-string), prunes the nulls of non-nullable
//! fields, and checks `metadata` itself.

use serde_json::{Map, Value, json};

use super::lines::join;
use super::schema::Violation;

/// The API server's own checks of `metadata` (the schema only says `object`).
pub(super) fn metadata(object: &Value) -> Vec<Violation> {
    let violation = |field: &str, message: &str| Violation {
        field: field.into(),
        message: message.into(),
    };
    let meta = match object.get("metadata") {
        None => &Value::Object(Map::new()),
        Some(m @ Value::Object(_)) => m,
        Some(_) => return vec![violation("metadata", "must be of type object")],
    };
    let mut out = Vec::new();
    let named = |key: &str| meta[key].as_str().is_some_and(|s| !s.is_empty());
    if !named("name") && !named("generateName") {
        out.push(violation(
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    for key in ["name", "generateName", "namespace"] {
        if meta.get(key).is_some_and(|v| !v.is_string()) {
            out.push(violation(&join("metadata", key), "must be of type string"));
        }
    }
    for key in ["labels", "annotations"] {
        let strings = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
        };
        if meta.get(key).is_some_and(|v| !strings(v)) {
            out.push(violation(
                &join("metadata", key),
                "must be a map of strings",
            ));
        }
    }
    out
}

/// Makes a structural schema strict: objects with declared properties take
/// no others, and int-or-string fields take only those two types.
pub(super) fn strict(node: &mut Value, root: bool) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let flag = |map: &Map<String, Value>, key: &str| map.get(key) == Some(&Value::Bool(true));
    if flag(map, "x-kubernetes-int-or-string") && !map.contains_key("type") {
        map.insert("type".into(), json!(["integer", "string"]));
    }
    let object = map.get("type") == Some(&json!("object")) || map.contains_key("properties");
    if object
        && !flag(map, "x-kubernetes-preserve-unknown-fields")
        && !map.contains_key("additionalProperties")
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, child) in props.iter_mut() {
            // ObjectMeta is the API server's own; see `metadata`.
            if !(root && name == "metadata") {
                strict(child, false);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key).filter(|c| c.is_object()) {
            strict(child, false);
        }
    }
}

/// The API server prunes nulls of fields that are not `nullable`.
pub(super) fn prune_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            let child_schema = |key: &str| {
                schema
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()))
            };
            map.retain(|key, v| {
                let nullable = |s: &Value| s.get("nullable") == Some(&Value::Bool(true));
                !(v.is_null() && child_schema(key).is_some_and(|s| !nullable(s)))
            });
            for (key, child) in map.iter_mut() {
                if let Some(s) = child_schema(key) {
                    prune_nulls(child, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|item| prune_nulls(item, s));
            }
        }
        _ => {}
    }
}

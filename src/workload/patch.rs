//! JSON merge patches (RFC 7386) computed from the cached object, so a write
//! happens only when a managed field differs and removed keys are nulled.

use serde_json::{Map, Value};

/// Drops nulls, empty objects and empty arrays: the API server omits them,
/// so `{}` in the desired object and a missing field in the cache are equal.
pub fn prune(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let pruned: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v)))
                .collect();
            (!pruned.is_empty()).then_some(Value::Object(pruned))
        }
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|v| prune(v).unwrap_or(Value::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// The merge patch that turns `old` into `new`, `None` when they are equal.
/// Both are views holding only the fields Serin manages.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    let old = prune(old).unwrap_or(Value::Null);
    let new = prune(new).unwrap_or(Value::Null);
    diff(&old, &new)
}

fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (Value::Null, Value::Null) => None,
        (_, Value::Null) => Some(Value::Null),
        _ => (old != new).then(|| new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_views_need_no_patch() {
        let v = json!({"spec": {"replicas": 2, "selector": {"app": "x"}}});
        assert_eq!(merge_diff(&v, &v.clone()), None);
        // Empty maps and missing fields are the same to the API server.
        assert_eq!(
            merge_diff(
                &json!({"metadata": {}}),
                &json!({"metadata": {"labels": {}}})
            ),
            None
        );
    }

    #[test]
    fn changed_and_removed_keys() {
        let old = json!({"spec": {"selector": {"app": "a", "old": "x"}, "ports": [1, 2]}});
        let new = json!({"spec": {"selector": {"app": "b"}, "ports": [1, 2]}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"spec": {"selector": {"app": "b", "old": null}}}))
        );
        // Arrays are replaced whole.
        let new = json!({"spec": {"selector": {"app": "a", "old": "x"}, "ports": [1]}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"spec": {"ports": [1]}}))
        );
    }
}

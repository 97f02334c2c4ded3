//! Revision hash of a pod template, shaped like Flagger's `ComputeHash`.
//!
//! Flagger hashes a go-spew dump, which can't be reproduced; Serin hashes
//! canonical JSON (object keys sorted) with the same FNV-32a and encodes the
//! decimal digest with `rand.SafeEncodeString`'s alphabet.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// `k8s.io/apimachinery/pkg/util/rand` alphabet (no vowels, no 0/1/3).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Node selector that parks a DaemonSet on no node.
pub const SCALE_TO_ZERO_KEY: &str = "flagger.app/scale-to-zero";

/// `rand.SafeEncodeString`: each byte mapped into the safe alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// FNV-32a of the bytes, encoded like Flagger's hashes (the `fnv` crate only
/// has the 64-bit variant).
pub fn encode_fnv(bytes: &[u8]) -> String {
    safe_encode(&fnv32a(bytes).to_string())
}

fn fnv32a(bytes: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u32::from(*b)).wrapping_mul(PRIME))
}

/// JSON with every object's keys sorted, whatever serde_json's map order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Hash of a Deployment's pod template.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    encode_fnv(canonical_json(&value).as_bytes())
}

/// A DaemonSet's template as Flagger hashes it: without the scale-to-zero
/// node selector, and a missing node selector counted as empty.
pub fn normalise_daemonset_template(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    let spec = template.spec.get_or_insert_with(Default::default);
    let selector = spec.node_selector.get_or_insert_with(Default::default);
    selector.remove(SCALE_TO_ZERO_KEY);
    template
}

/// Hash of a DaemonSet's pod template, ignoring Serin's own scale-to-zero.
pub fn daemonset_template_hash(template: &PodTemplateSpec) -> String {
    template_hash(&normalise_daemonset_template(template))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "podinfo".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv32a_matches_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encode_maps_digits_like_go() {
        // '0' is byte 48, 48 % 27 = 21 -> '4'; '6' is 54 -> 0 -> 'b'.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_is_stable_and_in_the_alphabet() {
        let a = template_hash(&template("podinfo:6.0.0"));
        assert_eq!(a, template_hash(&template("podinfo:6.0.0")));
        assert_ne!(a, template_hash(&template("podinfo:6.0.1")));
        assert!(!a.is_empty());
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":1,"y":2}],"c":"x"}}"#)
            .unwrap_or(Value::Null);
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn daemonset_hash_ignores_scale_to_zero_and_missing_selector() {
        let plain = template("ds:1");
        let mut parked = plain.clone();
        if let Some(spec) = parked.spec.as_mut() {
            spec.node_selector = Some(
                [(SCALE_TO_ZERO_KEY.to_string(), "true".to_string())]
                    .into_iter()
                    .collect(),
            );
        }
        let mut empty = plain.clone();
        if let Some(spec) = empty.spec.as_mut() {
            spec.node_selector = Some(Default::default());
        }
        let h = daemonset_template_hash(&plain);
        assert_eq!(h, daemonset_template_hash(&parked));
        assert_eq!(h, daemonset_template_hash(&empty));
        let normal = normalise_daemonset_template(&parked);
        assert_eq!(
            normal.spec.and_then(|s| s.node_selector),
            Some(Default::default())
        );
    }
}

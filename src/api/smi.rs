//! SMI's `TrafficSplit` (`split.smi-spec.io/v1alpha2`), written by the
//! `linkerd` router (Linkerd's SMI extension serves it).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "split.smi-spec.io",
    version = "v1alpha2",
    kind = "TrafficSplit",
    plural = "trafficsplits",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitSpec {
    /// The apex service clients address (the root service).
    pub service: String,
    #[serde(default)]
    pub backends: Vec<TrafficSplitBackend>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficSplitBackend {
    pub service: String,
    /// An integer in `v1alpha2`; read also as `v1alpha1`'s Quantity string
    /// (`"100"`, `"500m"`), which a split written by Flagger's `linkerd`
    /// router carries when the CRD does not convert between versions.
    #[serde(deserialize_with = "weight")]
    pub weight: i32,
}

fn weight<'de, D: serde::Deserializer<'de>>(de: D) -> Result<i32, D::Error> {
    use serde::de::Error;
    let value = serde_json::Value::deserialize(de)?;
    let number = match &value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => quantity(s),
        _ => None,
    };
    number
        .filter(|n| n.is_finite())
        .map(|n| n.round() as i32)
        .ok_or_else(|| D::Error::custom(format!("weight {value} is not a number")))
}

/// A decimal Quantity: a number, optionally with the `m` (milli) suffix.
fn quantity(text: &str) -> Option<f64> {
    match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_read_as_numbers_or_quantities() {
        let backends: Vec<TrafficSplitBackend> = serde_json::from_str(
            r#"[{"service": "a", "weight": 90}, {"service": "b", "weight": "10"},
                {"service": "c", "weight": "500m"}, {"service": "d", "weight": 20.0}]"#,
        )
        .unwrap();
        let weights: Vec<i32> = backends.iter().map(|b| b.weight).collect();
        assert_eq!(weights, [90, 10, 1, 20]);
        assert!(
            serde_json::from_str::<TrafficSplitBackend>(r#"{"service": "a", "weight": "x"}"#)
                .is_err()
        );
    }
}

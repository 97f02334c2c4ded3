//! Flagger-compatible API types (`flagger.app/v1beta1`): Canary,
//! MetricTemplate and AlertProvider, their defaults, and their CRDs; and the
//! routing objects Serin writes for other projects (`gateway`, `smi`).
//!
//! Every optional field is an `Option` skipped when `None`, so a manifest
//! re-serializes to exactly what was read; Flagger's defaults are methods.

pub mod alert_provider;
pub mod canary;
pub mod condition;
pub mod duration;
pub mod gateway;
pub mod istio;
pub mod metric_template;
mod schema;
pub mod smi;

pub use alert_provider::{AlertProvider, AlertProviderSpec, AlertProviderType};
pub use canary::{Canary, CanaryPhase, CanarySpec, CanaryStatus};
pub use condition::{TemplateCondition, TemplateStatus};
pub use duration::{DurationError, parse_duration};
pub use metric_template::{MetricProvider, MetricProviderType, MetricTemplate, MetricTemplateSpec};
pub use schema::SchemaError;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why a manifest could not be read as a typed resource.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    /// `path` is the dotted JSON path of the offending field, e.g. `spec.analysis.interval`.
    #[error("{path}: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ParseError {
    /// The JSON path of the offending field, if the YAML itself was valid.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Field { path, .. } => Some(path),
            Self::Yaml(_) => None,
        }
    }
}

/// Deserializes a JSON value, reporting the path of the first bad field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        ParseError::Field {
            path: if path == "." {
                "(root)".to_string()
            } else {
                path
            },
            source: err.into_inner(),
        }
    })
}

/// Parses one YAML document (e.g. `api::from_yaml_str::<Canary>(..)`).
/// The YAML goes through a JSON value first so the result is what the API
/// server would store, and errors name the field path.
pub fn from_yaml_str<T: DeserializeOwned>(yaml: &str) -> Result<T, ParseError> {
    let value: Value = serde_saphyr::from_str(yaml)?;
    from_value(value)
}

/// The three CRDs as Serin installs them: generated from the types, then
/// given the validations of Flagger's CRD that schemars cannot express.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, SchemaError> {
    Ok(vec![
        adjust(Canary::crd(), canary_validations)?,
        adjust(MetricTemplate::crd(), |_| Ok(()))?,
        adjust(AlertProvider::crd(), alert_provider_validations)?,
    ])
}

fn adjust(
    crd: CustomResourceDefinition,
    validations: impl FnOnce(&mut Value) -> Result<(), SchemaError>,
) -> Result<CustomResourceDefinition, SchemaError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let json_err = |source| SchemaError::Json {
        crd: name.clone(),
        source,
    };
    let mut value = serde_json::to_value(&crd).map_err(json_err)?;
    // kube-derive leaves these to API server defaults; Flagger spells them out.
    if let Some(names) = value
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let list_kind = format!("{kind}List");
        names.insert("listKind".to_string(), Value::String(list_kind));
    }
    let Some(root) = value.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") else {
        return Err(SchemaError::MissingNode {
            crd: name,
            path: "openAPIV3Schema".to_string(),
        });
    };
    if let Some(obj) = root.as_object_mut() {
        obj.remove("title");
    }
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".to_string(), json!({ "type": "string" }));
        props.insert("kind".to_string(), json!({ "type": "string" }));
        props.insert("metadata".to_string(), json!({ "type": "object" }));
    }
    validations(root)?;
    schema::strip_nullable(root);
    serde_json::from_value(value).map_err(json_err)
}

fn set(
    root: &mut Value,
    crd: &str,
    path: &str,
    key: &str,
    value: Value,
) -> Result<(), SchemaError> {
    schema::node_mut(root, crd, path)?.insert(key.to_string(), value);
    Ok(())
}

fn canary_validations(root: &mut Value) -> Result<(), SchemaError> {
    const CRD: &str = "canaries.flagger.app";
    set(
        root,
        CRD,
        "spec.analysis",
        "oneOf",
        schema::one_of_required(&[
            &["interval", "threshold", "iterations"],
            &["interval", "threshold", "stepWeight"],
            &["interval", "threshold", "stepWeights"],
        ]),
    )?;
    for path in [
        "spec.service.match[].authority",
        "spec.service.match[].method",
        "spec.service.match[].scheme",
        "spec.service.match[].uri",
        "spec.service.match[].headers{}",
        "spec.service.match[].queryParams{}",
        "spec.service.match[].withoutHeaders{}",
        "spec.analysis.match[].queryParams{}",
    ] {
        set(
            root,
            CRD,
            path,
            "oneOf",
            schema::istio_string_match_one_of(),
        )?;
    }
    set(
        root,
        CRD,
        "spec.service.corsPolicy.allowOrigins[]",
        "oneOf",
        schema::one_of_required(&[&["exact"], &["prefix"], &["regex"]]),
    )?;
    set(
        root,
        CRD,
        "spec.analysis.match[].headers{}",
        "oneOf",
        schema::one_of_required(&[&["exact"], &["prefix"], &["suffix"], &["regex"]]),
    )?;
    set(
        root,
        CRD,
        "spec.service.trafficPolicy.loadBalancer",
        "oneOf",
        json!([
            { "required": ["simple"] },
            {
                "properties": {
                    "consistentHash": {
                        "oneOf": schema::one_of_required(&[
                            &["httpHeaderName"],
                            &["httpCookie"],
                            &["useSourceIp"],
                            &["httpQueryParameterName"],
                        ])
                    }
                },
                "required": ["consistentHash"]
            }
        ]),
    )
}

fn alert_provider_validations(root: &mut Value) -> Result<(), SchemaError> {
    set(
        root,
        "alertproviders.flagger.app",
        "spec",
        "oneOf",
        schema::one_of_required(&[&["type", "address"], &["type", "secretRef"]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_generate_with_flagger_names() {
        let crds = crds().unwrap();
        let names: Vec<_> = crds
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "canaries.flagger.app",
                "metrictemplates.flagger.app",
                "alertproviders.flagger.app"
            ]
        );
    }

    #[test]
    fn error_names_field_path() {
        let err = from_yaml_str::<MetricTemplate>(
            "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {name: x}\nspec:\n  provider: {type: foo}\n  query: q\n",
        )
        .unwrap_err();
        assert_eq!(err.path(), Some("spec.provider.type"));
        assert!(err.to_string().starts_with("spec.provider.type: "), "{err}");
    }
}

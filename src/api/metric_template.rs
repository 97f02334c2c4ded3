//! `MetricTemplate` (`metrictemplates.flagger.app/v1beta1`): a query against
//! a metrics provider, rendered per canary.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::TemplateStatus;

/// MetricTemplateSpec defines the desired state of a MetricTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "MetricTemplate",
    plural = "metrictemplates",
    singular = "metrictemplate",
    namespaced,
    category = "all",
    status = "TemplateStatus",
    derive = "PartialEq",
    doc = "MetricTemplate is the Schema for the MetricTemplates API.",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider.type")
)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateSpec {
    /// Provider of this metric template
    pub provider: MetricProvider,
    /// Query of this metric template (a Go text/template)
    pub query: String,
}

/// Metrics backends Flagger can query.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricProviderType {
    Prometheus,
    Influxdb,
    Datadog,
    Externalmetrics,
    Stackdriver,
    Cloudwatch,
    Newrelic,
    Graphite,
    Dynatrace,
    Keptn,
    Splunk,
}

/// Provider of a metric template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// Type of this provider
    #[serde(rename = "type")]
    pub type_: MetricProviderType,
    /// API address of this provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Headers to add to HTTP(S) requests
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// Kubernetes secret reference containing the provider credentials
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Region of the provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Disable SSL certificate validation for the provider address
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

impl MetricProvider {
    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify.unwrap_or(false)
    }
}

/// A Secret in the same namespace as the referring object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Kubernetes secret
    pub name: String,
}

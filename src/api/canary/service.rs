//! `spec.service`: the generated Services and the routing options that
//! providers copy into their route objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::istio::{HttpMatchRequest, StringMatch, TrafficPolicy};
use crate::api::schema;

/// Flagger's default port name for the generated Services.
pub const DEFAULT_PORT_NAME: &str = "http";

/// Kubernetes Service spec
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryService {
    /// Kubernetes service name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Container port number
    pub port: i32,
    /// Container port name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Application protocol of the port
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Traffic distribution of the service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<TrafficDistribution>,
    /// Container target port name
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::int_or_string")]
    pub target_port: Option<IntOrString>,
    /// Enable port discovery
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_discovery: Option<bool>,
    /// Headless if set to true, generates headless Kubernetes services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headless: Option<bool>,
    /// HTTP or gRPC request timeout
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Backend request timeout (Gateway API only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_timeout: Option<String>,
    /// AppMesh mesh name
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_name: Option<String>,
    /// AppMesh backend array
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    /// The list of host names for this service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// enable behaving as a delegate VirtualService
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation: Option<bool>,
    /// URI match conditions
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<HttpMatchRequest>>,
    /// Retry policy for HTTP requests
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Rewrite HTTP URIs
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// Mirror defines a schema for a filter that mirrors requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Vec<HttpRequestMirror>>,
    /// Headers operations
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// The list of Istio gateway for this virtual service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    /// The list of parent Gateways for a HTTPRoute
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub gateway_refs: Option<Vec<GatewayRef>>,
    /// Istio Cross-Origin Resource Sharing policy (CORS)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<CorsPolicy>,
    /// Istio traffic policy
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Metadata to add to the apex service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apex: Option<CustomMetadata>,
    /// Metadata to add to the primary service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<CustomMetadata>,
    /// Metadata to add to the canary service
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CustomMetadata>,
    /// UnmanagedMetadata is a list of metadata keys that should be ignored by Flagger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmanaged_metadata: Option<UnmanagedMetadata>,
}

impl CanaryService {
    /// `portName`, "http" when unset or empty.
    pub fn port_name(&self) -> &str {
        match self.port_name.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => DEFAULT_PORT_NAME,
        }
    }

    /// `targetPort`, defaulting to `port` (an empty string counts as unset).
    pub fn target_port(&self) -> IntOrString {
        match &self.target_port {
            Some(IntOrString::String(s)) if s.is_empty() => IntOrString::Int(self.port),
            Some(IntOrString::Int(0)) | None => IntOrString::Int(self.port),
            Some(port) => port.clone(),
        }
    }

    pub fn port_discovery(&self) -> bool {
        self.port_discovery.unwrap_or(false)
    }

    pub fn headless(&self) -> bool {
        self.headless.unwrap_or(false)
    }

    pub fn delegation(&self) -> bool {
        self.delegation.unwrap_or(false)
    }

    /// Istio gateways, `["mesh"]` when none are listed.
    pub fn gateways(&self) -> Vec<String> {
        match &self.gateways {
            Some(gateways) if !gateways.is_empty() => gateways.clone(),
            _ => vec!["mesh".to_string()],
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TrafficDistribution {
    PreferClose,
    PreferSameZone,
    PreferSameNode,
}

/// Retry policy for HTTP requests
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    /// Number of retries for a given request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Timeout per retry attempt for a given request
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// Specifies the conditions under which retry takes place
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// Rewrite HTTP URIs
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRewrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Gateway API rewrite type; a free string in Flagger's CRD.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

impl HttpRewrite {
    /// Gateway API: anything but `ReplacePrefixMatch` means a full-path rewrite.
    pub fn is_prefix_match(&self) -> bool {
        self.type_.as_deref() == Some("ReplacePrefixMatch")
    }
}

/// Gateway API HTTPRequestMirrorFilter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequestMirror {
    #[schemars(extend("x-kubernetes-validations" = [{
        "message": "Must have port for Service reference",
        "rule": "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true"
    }]))]
    pub backend_ref: BackendObjectReference,
}

/// Gateway API BackendObjectReference.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendObjectReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        extend("default" = "")
    )]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"),
        extend("default" = "Service")
    )]
    pub kind: Option<String>,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Gateway API ParentReference of the generated HTTPRoute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        extend("default" = "gateway.networking.k8s.io")
    )]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"),
        extend("default" = "Gateway")
    )]
    pub kind: Option<String>,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

impl GatewayRef {
    /// The API server defaults these, but objects built in code may lack them.
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or("gateway.networking.k8s.io")
    }

    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Gateway")
    }
}

/// Header operations for requests and responses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOperations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<BTreeMap<String, String>>,
}

/// Istio Cross-Origin Resource Sharing policy (CORS)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorsPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    /// List of HTTP methods allowed to access the resource
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    /// The list of origins that are allowed to perform CORS requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origin: Option<Vec<String>>,
    /// String patterns that match allowed origins
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<StringMatch>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

/// Labels and annotations for a generated object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Metadata keys whose live values Flagger keeps on the generated Services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnmanagedMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

//! `Canary` (`canaries.flagger.app/v1beta1`): the spec's top level and the
//! object references. Service, analysis and status live in submodules.

mod analysis;
mod istio;
mod request;
mod service;
mod status;
mod webhook;

pub use analysis::*;
pub use istio::*;
pub use request::*;
pub use service::*;
pub use status::*;
pub use webhook::*;

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The core's key of a Canary object (`<name>.<namespace>` in logs).
pub fn key_of(canary: &Canary) -> serin_actors::ports::CanaryKey {
    use kube::ResourceExt;
    serin_actors::ports::CanaryKey::new(canary.namespace().unwrap_or_default(), canary.name_any())
}

/// Flagger's `GetProgressDeadlineSeconds` default.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// CanarySpec defines the desired state of a Canary.
// The printer columns repeat `type_`/`priority` values, which clippy reads as
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "Canary",
    plural = "canaries",
    singular = "canary",
    namespaced,
    category = "all",
    status = "CanaryStatus",
    derive = "PartialEq",
    doc = "Canary is the Schema for the Canary API.",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Weight", type_ = "string", json_path = ".status.canaryWeight"),
    printcolumn(
        name = "Suspended",
        type_ = "boolean",
        json_path = ".spec.suspend",
        priority = "1"
    ),
    printcolumn(
        name = "FailedChecks",
        type_ = "string",
        json_path = ".status.failedChecks",
        priority = "1"
    ),
    printcolumn(
        name = "Interval",
        type_ = "string",
        json_path = ".spec.analysis.interval",
        priority = "1"
    ),
    printcolumn(
        name = "Mirror",
        type_ = "boolean",
        json_path = ".spec.analysis.mirror",
        priority = "1"
    ),
    printcolumn(
        name = "StepWeight",
        type_ = "string",
        json_path = ".spec.analysis.stepWeight",
        priority = "1"
    ),
    printcolumn(
        name = "StepWeights",
        type_ = "string",
        json_path = ".spec.analysis.stepWeights",
        priority = "1"
    ),
    printcolumn(
        name = "MaxWeight",
        type_ = "string",
        json_path = ".spec.analysis.maxWeight",
        priority = "1"
    ),
    printcolumn(
        name = "LastTransitionTime",
        type_ = "string",
        json_path = ".status.lastTransitionTime"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Traffic management provider; overrides the operator's mesh provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Prometheus URL
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,
    /// Deployment progress deadline
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Target selector
    pub target_ref: TargetRef,
    /// Scaler selector
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<AutoscalerRef>,
    /// Ingress selector
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<IngressRef>,
    /// APISIX route selector
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_ref: Option<RouteRef>,
    /// Gloo Upstream selector
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ref: Option<UpstreamRef>,
    /// Kubernetes Service spec
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<CanaryService>,
    /// Skip analysis and promote canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_analysis: Option<bool>,
    /// Revert mutated resources to original spec on deletion
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert_on_deletion: Option<bool>,
    /// Suspend Canary disabling/pausing all canary runs
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Canary analysis for this canary
    pub analysis: CanaryAnalysis,
}

impl CanarySpec {
    pub fn progress_deadline_seconds(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    pub fn skip_analysis(&self) -> bool {
        self.skip_analysis.unwrap_or(false)
    }

    pub fn revert_on_deletion(&self) -> bool {
        self.revert_on_deletion.unwrap_or(false)
    }

    pub fn suspend(&self) -> bool {
        self.suspend.unwrap_or(false)
    }

    /// The apex service name: `service.name`, else the target's name.
    pub fn service_name(&self) -> &str {
        self.service
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .unwrap_or(&self.target_ref.name)
    }

    /// The service port, if a service is declared.
    pub fn service_port(&self) -> Option<i32> {
        self.service.as_ref().map(|s| s.port)
    }

    /// Strategy detection in Flagger's order: A/B needs both match and
    /// iterations, Blue/Green iterations only, otherwise progressive canary.
    pub fn deployment_strategy(&self) -> DeploymentStrategy {
        let iterations = self.analysis.iterations.unwrap_or(0);
        let has_match = self
            .analysis
            .r#match
            .as_ref()
            .is_some_and(|m| !m.is_empty());
        if has_match && iterations > 0 {
            DeploymentStrategy::AbTesting
        } else if iterations > 0 {
            DeploymentStrategy::BlueGreen
        } else {
            DeploymentStrategy::Canary
        }
    }
}

/// How a run shifts traffic; the strings are Flagger's metric label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentStrategy {
    Canary,
    BlueGreen,
    AbTesting,
}

impl DeploymentStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::BlueGreen => "blue-green",
            Self::AbTesting => "ab-testing",
        }
    }
}

/// Traffic management providers accepted by Flagger's CRD.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Provider {
    #[serde(rename = "apisix")]
    Apisix,
    #[serde(rename = "appmesh")]
    AppMesh,
    #[serde(rename = "appmesh:v1beta2")]
    AppMeshV1beta2,
    #[serde(rename = "contour")]
    Contour,
    #[serde(rename = "gatewayapi:v1")]
    GatewayApiV1,
    #[serde(rename = "gatewayapi:v1beta1")]
    GatewayApiV1beta1,
    #[serde(rename = "gloo")]
    Gloo,
    #[serde(rename = "istio")]
    Istio,
    #[serde(rename = "knative")]
    Knative,
    #[serde(rename = "kubernetes")]
    Kubernetes,
    #[serde(rename = "kuma")]
    Kuma,
    #[serde(rename = "linkerd")]
    Linkerd,
    #[serde(rename = "nginx")]
    Nginx,
    #[serde(rename = "osm")]
    Osm,
    #[serde(rename = "skipper")]
    Skipper,
    #[serde(rename = "smi:v1alpha1")]
    SmiV1alpha1,
    #[serde(rename = "smi:v1alpha2")]
    SmiV1alpha2,
    #[serde(rename = "smi:v1alpha3")]
    SmiV1alpha3,
    #[serde(rename = "traefik")]
    Traefik,
}

/// Workload kinds a canary can target; a Knative Service is `Service` with
/// `serving.knative.dev/v1`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TargetKind {
    DaemonSet,
    Deployment,
    Service,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DaemonSet => "DaemonSet",
            Self::Deployment => "Deployment",
            Self::Service => "Service",
        }
    }
}

/// Target selector
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub api_version: String,
    pub kind: TargetKind,
    pub name: String,
}

impl TargetRef {
    /// Knative services share the `Service` kind; only the group differs.
    pub fn is_knative_service(&self) -> bool {
        self.kind == TargetKind::Service && self.api_version.starts_with("serving.knative.dev/")
    }
}

/// Autoscaler kinds Flagger can clone for the primary.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AutoscalerKind {
    HorizontalPodAutoscaler,
    ScaledObject,
}

/// Scaler selector
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerRef {
    pub api_version: String,
    pub kind: AutoscalerKind,
    pub name: String,
    /// KEDA trigger name to the query used for the primary's ScaledObject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_scaler_queries: Option<BTreeMap<String, String>>,
    /// Overrides the min/max replicas of the primary's scaler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_scaler_replicas: Option<ScalerReplicas>,
}

/// Replica bounds for the primary's autoscaler.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerReplicas {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
}

/// The only kind `ingressRef` accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum IngressKind {
    Ingress,
}

/// Ingress selector (nginx, skipper)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressRef {
    pub api_version: String,
    pub kind: IngressKind,
    pub name: String,
}

/// The only kind `routeRef` accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RouteKind {
    ApisixRoute,
}

/// APISIX route selector
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    pub api_version: String,
    pub kind: RouteKind,
    pub name: String,
}

/// The only kind `upstreamRef` accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum UpstreamKind {
    Upstream,
}

/// Gloo Upstream selector
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamRef {
    pub api_version: String,
    pub kind: UpstreamKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[cfg(test)]
mod tests;

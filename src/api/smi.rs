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
    pub weight: i32,
}

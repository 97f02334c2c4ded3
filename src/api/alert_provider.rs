//! `AlertProvider` (`alertproviders.flagger.app/v1beta1`): where a canary's
//! alerts are sent.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::TemplateStatus;
use super::metric_template::SecretRef;

pub const DEFAULT_ALERT_CHANNEL: &str = "general";
pub const DEFAULT_ALERT_USERNAME: &str = "flagger";

/// AlertProviderSpec defines the desired state of a AlertProvider. The CRD
/// requires `address` or `secretRef`, but not both.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "AlertProvider",
    plural = "alertproviders",
    singular = "alertprovider",
    namespaced,
    category = "all",
    status = "TemplateStatus",
    derive = "PartialEq",
    doc = "AlertProvider is the Schema for the AlertProvider API.",
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type")
)]
#[serde(rename_all = "camelCase")]
pub struct AlertProviderSpec {
    /// Type of this provider
    #[serde(rename = "type")]
    pub type_: AlertProviderType,
    /// Alert channel for this provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Bot username for this provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Hook URL address of this provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Http/s proxy of this provider
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Kubernetes secret reference containing the provider address
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

impl AlertProviderSpec {
    pub fn channel(&self) -> &str {
        match self.channel.as_deref() {
            Some(c) if !c.is_empty() => c,
            _ => DEFAULT_ALERT_CHANNEL,
        }
    }

    pub fn username(&self) -> &str {
        match self.username.as_deref() {
            Some(u) if !u.is_empty() => u,
            _ => DEFAULT_ALERT_USERNAME,
        }
    }
}

/// Chat services Flagger can notify.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertProviderType {
    Slack,
    Msteams,
    Discord,
    Rocket,
    Gchat,
}

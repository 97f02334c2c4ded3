//! `spec.analysis.webhooks[]` and `spec.analysis.alerts[]`.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::analysis::CrossNamespaceRef;
use crate::api::duration::{DurationError, parse_duration};

pub const DEFAULT_WEBHOOK_TIMEOUT: &str = "10s";

/// When a webhook is called; the empty string means `rollout`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum WebhookType {
    #[default]
    #[serde(rename = "")]
    Unset,
    #[serde(rename = "confirm-rollout")]
    ConfirmRollout,
    #[serde(rename = "pre-rollout")]
    PreRollout,
    #[serde(rename = "rollout")]
    Rollout,
    #[serde(rename = "confirm-promotion")]
    ConfirmPromotion,
    #[serde(rename = "post-rollout")]
    PostRollout,
    #[serde(rename = "event")]
    Event,
    #[serde(rename = "rollback")]
    Rollback,
    #[serde(rename = "confirm-traffic-increase")]
    ConfirmTrafficIncrease,
}

/// An HTTP hook called at a point of the run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryWebhook {
    /// Name of the webhook
    pub name: String,
    /// Type of the webhook pre, post or during rollout
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<WebhookType>,
    /// Mute all alerts for the webhook
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mute_alert: Option<bool>,
    /// URL address of this webhook
    #[schemars(extend("format" = "url"))]
    pub url: String,
    /// Request timeout for this webhook
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]+(m|s)"))]
    pub timeout: Option<String>,
    /// Number of retries for this webhook
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Disable TLS verification for this webhook
    #[serde(rename = "disableTLS", skip_serializing_if = "Option::is_none")]
    pub disable_tls: Option<bool>,
    /// Metadata (key-value pairs) for this webhook
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl CanaryWebhook {
    /// `""` and unset both mean `rollout`.
    pub fn webhook_type(&self) -> WebhookType {
        match self.type_ {
            None | Some(WebhookType::Unset) => WebhookType::Rollout,
            Some(t) => t,
        }
    }

    /// Request timeout; strings shorter than two characters mean "10s" as in Flagger.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        match self.timeout.as_deref() {
            Some(t) if t.len() >= 2 => parse_duration(t),
            _ => parse_duration(DEFAULT_WEBHOOK_TIMEOUT),
        }
    }

    pub fn mute_alert(&self) -> bool {
        self.mute_alert.unwrap_or(false)
    }

    pub fn retries(&self) -> i32 {
        self.retries.unwrap_or(0)
    }

    pub fn disable_tls(&self) -> bool {
        self.disable_tls.unwrap_or(false)
    }
}

/// Alert severities; an empty severity matches no event in Flagger (a quirk).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AlertSeverity {
    #[default]
    #[serde(rename = "")]
    Unset,
    #[serde(rename = "info")]
    Info,
    #[serde(rename = "warn")]
    Warn,
    #[serde(rename = "error")]
    Error,
}

/// Routes the run's events to an AlertProvider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAlert {
    /// Name of the this alert
    pub name: String,
    /// Severity level can be info, warn, error (default info)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<AlertSeverity>,
    /// Alert provider reference
    pub provider_ref: CrossNamespaceRef,
}

impl CanaryAlert {
    pub fn severity(&self) -> AlertSeverity {
        self.severity.unwrap_or_default()
    }
}

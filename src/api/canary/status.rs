//! `status` of a Canary: the state Flagger (and Serin) rebuilds a run from.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::schema;

/// Analysis phase of a canary. The empty string is what a new object has
/// before Flagger first writes its status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum CanaryPhase {
    #[default]
    #[serde(rename = "")]
    Unset,
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
    Terminating,
    Terminated,
}

impl CanaryPhase {
    /// The wire string, also used as the `Promoted` condition's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "",
            Self::Initializing => "Initializing",
            Self::Initialized => "Initialized",
            Self::Waiting => "Waiting",
            Self::Progressing => "Progressing",
            Self::WaitingPromotion => "WaitingPromotion",
            Self::Promoting => "Promoting",
            Self::Finalising => "Finalising",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Terminating => "Terminating",
            Self::Terminated => "Terminated",
        }
    }

    /// Phases in which a run is under way (a new revision is not picked up).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Self::Progressing | Self::WaitingPromotion | Self::Promoting | Self::Finalising
        )
    }
}

impl std::fmt::Display for CanaryPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CanaryStatus defines the observed state of a canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Analysis phase of this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<CanaryPhase>,
    /// Failed check count of the current canary analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<i32>,
    /// Traffic weight routed to canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i32>,
    /// Iteration count of the current canary analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// TrackedConfig of this canary: `configmap/<name>` or `secret/<name>` to checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked_configs: Option<BTreeMap<String, String>>,
    /// LastAppliedSpec of this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    /// LastPromotedSpec of this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    /// LastTransitionTime of this canary
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_transition_time: Option<Time>,
    /// Session affinity cookie of the current canary run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity_cookie: Option<String>,
    /// Primary session affinity cookie of the current canary run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_session_affinity_cookie: Option<String>,
    /// Session affinity cookie of the previous canary run
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_session_affinity_cookie: Option<String>,
    /// Status conditions of this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<CanaryCondition>>,
    /// Serin only: the result of each check of the last analysis step
    /// (metrics and webhooks, gates included), in the order they ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckStatus>>,
    /// Serin only: the last request (`serin promote`, `abort`, `retry`)
    /// the operator handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_request: Option<RequestStatus>,
}

/// Serin only: one check of the last analysis step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// The metric's or webhook's name
    pub name: String,
    /// `metric`, or the webhook's type (`pre-rollout`, `confirm-promotion`, ...)
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the check passed (a gate: whether it is open)
    pub passed: bool,
    /// The metric's value, when the provider answered one
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The metric's accepted range
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<super::ThresholdRange>,
    /// Why the check failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the check ran
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_check_time: Option<Time>,
}

/// Serin only: what became of the last request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatus {
    /// The request's id, as in the `serin.dev/request` annotation
    pub id: String,
    /// `promote`, `abort` or `retry`
    pub action: String,
    /// Who asked, when the command line could tell
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// `Accepted`, `Repeated` (already under way) or `Refused`
    pub result: String,
    /// What the operator did, or why it refused
    pub message: String,
    /// When the operator handled it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub time: Option<Time>,
}

impl CanaryStatus {
    pub fn phase(&self) -> CanaryPhase {
        self.phase.unwrap_or_default()
    }

    pub fn failed_checks(&self) -> i32 {
        self.failed_checks.unwrap_or(0)
    }

    pub fn canary_weight(&self) -> i32 {
        self.canary_weight.unwrap_or(0)
    }

    pub fn iterations(&self) -> i32 {
        self.iterations.unwrap_or(0)
    }

    /// The `Promoted` condition, if present.
    pub fn promoted_condition(&self) -> Option<&CanaryCondition> {
        self.conditions
            .as_deref()?
            .iter()
            .find(|c| c.type_ == CanaryConditionType::Promoted)
    }
}

/// Flagger writes `Promoted`; the others are Serin's.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum CanaryConditionType {
    Promoted,
    /// Serin only: `False` while the spec can not be driven, with the reason.
    Valid,
    /// Serin only: `True` while the canary's actor backs off after repeated
    /// panics, with the last one; removed once a step succeeds.
    Stalled,
}

/// Kubernetes condition status values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// A status condition of a canary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryCondition {
    /// Type of this condition
    #[serde(rename = "type")]
    pub type_: CanaryConditionType,
    /// Status of this condition
    pub status: ConditionStatus,
    /// Reason for the current status of this condition (the phase)
    pub reason: String,
    /// Message associated with this condition
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// LastUpdateTime of this condition
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_update_time: Option<Time>,
    /// LastTransitionTime of this condition
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub last_transition_time: Option<Time>,
}

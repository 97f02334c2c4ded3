//! What lives in `Canary.status`: the only state a tick carries over.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::request::{CheckResult, HandledRequest};

/// Seconds since the Unix epoch. Passed in by the caller, never read from a clock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }
}

/// `status.phase`. Flagger's empty phase is treated as `Initializing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Phase {
    #[default]
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

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Terminating => "Terminating",
            Phase::Terminated => "Terminated",
        }
    }

    /// Parses the CRD string; `""` is `Initializing`.
    pub fn parse(value: &str) -> Option<Phase> {
        if value.is_empty() {
            return Some(Phase::Initializing);
        }
        [
            Phase::Initializing,
            Phase::Initialized,
            Phase::Waiting,
            Phase::Progressing,
            Phase::WaitingPromotion,
            Phase::Promoting,
            Phase::Finalising,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Terminating,
            Phase::Terminated,
        ]
        .into_iter()
        .find(|p| p.as_str() == value)
    }

    /// Phases in which a run is in flight (Flagger's `shouldAdvance` shortcut).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Phase::Progressing
                | Phase::Waiting
                | Phase::WaitingPromotion
                | Phase::Promoting
                | Phase::Finalising
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Canary.status`. Integer fields are signed like Flagger's
/// (`iterations` can be `-1` after entering `WaitingPromotion` with no iterations).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    pub phase: Phase,
    pub canary_weight: i32,
    pub failed_checks: i32,
    pub iterations: i32,
    /// Hash of the target's pod template at the last status sync.
    pub last_applied_spec: String,
    /// Hash of the spec running on the primary.
    pub last_promoted_spec: String,
    /// `configmap/<name>` or `secret/<name>` → checksum.
    pub tracked_configs: BTreeMap<String, String>,
    pub last_transition_time: Option<Timestamp>,
    /// Serin only: why the canary's actor is backing off after repeated
    /// panics (a `Stalled=True` condition); `None` once a step succeeds.
    pub stalled: Option<String>,
    /// Session affinity cookies, decided with the routes (Istio, Gateway API).
    pub session: SessionCookies,
    /// Serin only: each check's last result in this run (`status.checks`).
    pub checks: Vec<CheckResult>,
    /// Serin only: the last command-line request handled (`status.lastRequest`).
    pub last_request: Option<HandledRequest>,
}

/// Session affinity cookies as `name=value`, in Flagger's status fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCookies {
    /// The current run's canary cookie (`sessionAffinityCookie`).
    pub canary: Option<String>,
    /// The primary's cookie (`primarySessionAffinityCookie`).
    pub primary: Option<String>,
    /// The last run's canary cookie, which the router expires
    /// (`previousSessionAffinityCookie`).
    pub previous: Option<String>,
}

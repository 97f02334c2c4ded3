//! What the user asked for: Serin's own view of a Canary's spec.
//!
//! Fields keep Flagger's raw values (strings for durations, zero for "unset")
//! so the mapping from the CRD is a plain copy; the accessors apply Flagger's
//! defaults in one place.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::source::Source;
use crate::duration::parse_go_duration;

/// Flagger's `totalWeight`: weights always add up to this.
pub const TOTAL_WEIGHT: i32 = 100;

/// The Canary being driven, with what the decision needs to know about it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Canary object name (`podinfo`).
    pub name: String,
    pub namespace: String,
    pub target: TargetRef,
    /// Resolved router provider (`spec.provider` or the global mesh provider).
    pub provider: String,
    /// Provider name used in `no values found for <provider> metric` events.
    pub metrics_provider: String,
    pub analysis: AnalysisSpec,
    pub progress_deadline_seconds: Option<i32>,
    pub skip_analysis: bool,
    pub suspend: bool,
    /// Serin only: the latest command-line request on the object.
    pub request: Option<super::request::Request>,
    /// The object this spec was read from, for the adapters.
    #[serde(skip)]
    pub source: Source,
}

/// `spec.targetRef`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `Deployment`, `DaemonSet` or `Service`.
    pub kind: String,
    pub name: String,
}

/// The deployment strategy Flagger derives from the analysis fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Canary,
    AbTesting,
    BlueGreen,
}

/// The cookie names of `analysis.sessionAffinity`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinity {
    pub cookie_name: String,
    pub primary_cookie_name: Option<String>,
}

/// `spec.analysis`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSpec {
    /// Go duration string (`1m`, `30s`); see [`AnalysisSpec::interval`].
    pub interval: String,
    pub threshold: i32,
    pub max_weight: i32,
    pub step_weight: i32,
    pub step_weights: Vec<i32>,
    pub step_weight_promotion: i32,
    pub iterations: i32,
    pub mirror: bool,
    pub mirror_weight: i32,
    /// A/B routing conditions; only meaningful with `iterations > 0`.
    #[serde(rename = "match")]
    pub match_conditions: Vec<RequestMatch>,
    /// `analysis.sessionAffinity`: the cookie names; the routers build the
    /// cookies' attributes from the Canary.
    pub session_affinity: Option<SessionAffinity>,
    pub metrics: Vec<MetricSpec>,
    pub webhooks: Vec<WebhookSpec>,
    pub alerts: Vec<AlertRef>,
}

impl CanarySpec {
    /// Flagger's `GetProgressDeadlineSeconds`: 600 when unset.
    pub fn progress_deadline_seconds(&self) -> i64 {
        i64::from(self.progress_deadline_seconds.unwrap_or(600))
    }

    /// `<name>.<namespace>` of the Canary object.
    pub fn canary_id(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }

    /// `<target>.<namespace>`.
    pub fn target_id(&self) -> String {
        format!("{}.{}", self.target.name, self.namespace)
    }

    /// `<target>-primary.<namespace>`.
    pub fn primary_id(&self) -> String {
        format!("{}-primary.{}", self.target.name, self.namespace)
    }

    /// The `kubernetes` provider has no traffic router: Blue/Green only.
    pub fn is_kubernetes_provider(&self) -> bool {
        self.provider == "kubernetes"
    }
}

impl AnalysisSpec {
    /// Tick period: 60s when empty or unparsable, never below 10s.
    pub fn interval(&self) -> Duration {
        let parsed = parse_go_duration(&self.interval).unwrap_or(Duration::from_secs(60));
        parsed.max(Duration::from_secs(10))
    }

    /// Failed checks tolerated before rollback: 1 when `<= 0`.
    pub fn threshold(&self) -> i32 {
        if self.threshold > 0 {
            self.threshold
        } else {
            1
        }
    }

    /// `stepWeights` wins (its last element, capped at 100), then `maxWeight`, then 100.
    pub fn max_weight(&self) -> i32 {
        if let Some(last) = self.step_weights.last() {
            return (*last).min(TOTAL_WEIGHT);
        }
        if self.max_weight > 0 {
            self.max_weight
        } else {
            TOTAL_WEIGHT
        }
    }

    /// Flagger's `DeploymentStrategy()`.
    pub fn strategy(&self) -> Strategy {
        if !self.match_conditions.is_empty() && self.iterations > 0 {
            Strategy::AbTesting
        } else if self.iterations > 0 {
            Strategy::BlueGreen
        } else {
            Strategy::Canary
        }
    }

    /// Indices of the webhooks of one type, in declaration order.
    pub fn hooks_of(&self, kind: HookType) -> impl Iterator<Item = (usize, &WebhookSpec)> {
        self.webhooks
            .iter()
            .enumerate()
            .filter(move |(_, w)| w.hook_type == kind)
    }
}

/// One A/B match block (headers, query parameters, source labels).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMatch {
    pub headers: BTreeMap<String, StringMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub source_labels: BTreeMap<String, String>,
}

/// How a header or query parameter value is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(String),
}

/// `analysis.metrics[]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    pub name: String,
    /// Go duration string, default `1m`.
    pub interval: String,
    pub threshold_range: Option<ThresholdRange>,
    /// Deprecated single threshold, used only without `thresholdRange`.
    pub threshold: f64,
    /// Deprecated inline PromQL.
    pub query: String,
    pub template_ref: Option<TemplateRef>,
    pub template_variables: BTreeMap<String, String>,
}

/// Inclusive bounds; either may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ThresholdRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Reference to a MetricTemplate; namespace defaults to the Canary's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    pub namespace: Option<String>,
}

/// The two metrics Flagger knows without a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Builtin {
    /// `request-success-rate`, a percentage.
    SuccessRate,
    /// `request-duration`, milliseconds.
    Duration,
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    Builtin(Builtin),
    Inline,
    Template,
    /// Neither builtin, query nor template: always fails.
    Unusable,
}

impl MetricSpec {
    /// Interval as written, `1m` when empty (this is what `{{ interval }}` renders).
    pub fn interval_or_default(&self) -> &str {
        if self.interval.is_empty() {
            "1m"
        } else {
            &self.interval
        }
    }

    pub fn source(&self) -> MetricSource {
        if self.template_ref.is_some() {
            MetricSource::Template
        } else if self.name == "request-success-rate" {
            MetricSource::Builtin(Builtin::SuccessRate)
        } else if self.name == "request-duration" {
            MetricSource::Builtin(Builtin::Duration)
        } else if !self.query.is_empty() {
            MetricSource::Inline
        } else {
            MetricSource::Unusable
        }
    }
}

/// The eight webhook types (an empty type in the CRD means `rollout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

impl HookType {
    /// The CRD value.
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::ConfirmRollout => "confirm-rollout",
            HookType::PreRollout => "pre-rollout",
            HookType::Rollout => "rollout",
            HookType::ConfirmTrafficIncrease => "confirm-traffic-increase",
            HookType::ConfirmPromotion => "confirm-promotion",
            HookType::PostRollout => "post-rollout",
            HookType::Rollback => "rollback",
            HookType::Event => "event",
        }
    }

    /// Parses the CRD value; `""` is `rollout`.
    pub fn parse(value: &str) -> Option<HookType> {
        Some(match value {
            "" | "rollout" => HookType::Rollout,
            "confirm-rollout" => HookType::ConfirmRollout,
            "pre-rollout" => HookType::PreRollout,
            "confirm-traffic-increase" => HookType::ConfirmTrafficIncrease,
            "confirm-promotion" => HookType::ConfirmPromotion,
            "post-rollout" => HookType::PostRollout,
            "rollback" => HookType::Rollback,
            "event" => HookType::Event,
            _ => return None,
        })
    }
}

/// `analysis.webhooks[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub hook_type: HookType,
    pub url: String,
    /// Go duration string; see [`WebhookSpec::timeout`].
    pub timeout: String,
    pub retries: i32,
    pub mute_alert: bool,
    pub disable_tls: bool,
    pub metadata: BTreeMap<String, String>,
}

impl WebhookSpec {
    /// A webhook of `hook_type` with Flagger's defaults.
    pub fn new(name: &str, hook_type: HookType, url: &str) -> WebhookSpec {
        WebhookSpec {
            name: name.to_owned(),
            hook_type,
            url: url.to_owned(),
            timeout: String::new(),
            retries: 0,
            mute_alert: false,
            disable_tls: false,
            metadata: BTreeMap::new(),
        }
    }

    /// Per-attempt timeout: 10s when shorter than 2 characters or unparsable.
    pub fn timeout(&self) -> Duration {
        if self.timeout.len() < 2 {
            return Duration::from_secs(10);
        }
        parse_go_duration(&self.timeout).unwrap_or(Duration::from_secs(10))
    }
}

/// `analysis.alerts[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRef {
    pub name: String,
    /// `""`, `info`, `warn` or `error`; empty matches nothing (Flagger quirk).
    pub severity: String,
    pub provider_name: String,
    pub provider_namespace: Option<String>,
}

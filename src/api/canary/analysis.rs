//! `spec.analysis`: schedule, traffic steps, metrics, webhooks and alerts.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::istio::StringMatch;
use super::webhook::{CanaryAlert, CanaryWebhook};
use crate::api::duration::{DurationError, parse_duration};

pub const DEFAULT_ANALYSIS_INTERVAL: Duration = Duration::from_secs(60);
/// Flagger clamps shorter intervals to this.
pub const MIN_ANALYSIS_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_METRIC_INTERVAL: &str = "1m";
pub const DEFAULT_SESSION_COOKIE_MAX_AGE: i64 = 86400;

/// Canary analysis for this canary
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// Schedule interval for this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]+(m|s)"))]
    pub interval: Option<String>,
    /// Number of checks to run for A/B Testing and Blue/Green
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// Max number of failed checks before rollback
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// Max traffic weight routed to canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<i32>,
    /// Incremental traffic step weight for the analysis phase
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<i32>,
    /// Incremental traffic step weights for the analysis phase
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_weights: Option<Vec<i32>>,
    /// Incremental traffic step weight for the promotion phase
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<i32>,
    /// Mirror traffic to canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<bool>,
    /// Weight of traffic to be mirrored
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_weight: Option<i32>,
    /// Percentage of pods that need to be available to consider primary as ready
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_ready_threshold: Option<i32>,
    /// Percentage of pods that need to be available to consider canary as ready
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_ready_threshold: Option<i32>,
    /// A/B testing match conditions
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<AbMatch>>,
    /// Metric check list for this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<CanaryMetric>>,
    /// Webhook list for this canary
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<CanaryWebhook>>,
    /// Alert list for this canary analysis
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<CanaryAlert>>,
    /// SessionAffinity represents the session affinity settings for a canary run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinity>,
}

impl CanaryAnalysis {
    /// The tick interval: 60s when unset or unparsable, never below 10s.
    pub fn interval(&self) -> Duration {
        let parsed = self
            .interval
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(DEFAULT_ANALYSIS_INTERVAL);
        parsed.max(MIN_ANALYSIS_INTERVAL)
    }

    /// Failed checks allowed before rollback: 1 when unset or <= 0.
    pub fn threshold(&self) -> i32 {
        match self.threshold {
            Some(t) if t > 0 => t,
            _ => 1,
        }
    }

    pub fn iterations(&self) -> i32 {
        self.iterations.unwrap_or(0)
    }

    pub fn step_weight(&self) -> i32 {
        self.step_weight.unwrap_or(0)
    }

    pub fn step_weights(&self) -> &[i32] {
        self.step_weights.as_deref().unwrap_or(&[])
    }

    /// With stepWeights the last step (capped at 100) wins; else maxWeight
    /// when positive; else 100.
    pub fn max_weight(&self) -> i32 {
        if let Some(last) = self.step_weights().last() {
            return (*last).min(100);
        }
        match self.max_weight {
            Some(w) if w > 0 => w,
            _ => 100,
        }
    }

    pub fn step_weight_promotion(&self) -> i32 {
        self.step_weight_promotion.unwrap_or(0)
    }

    pub fn mirror(&self) -> bool {
        self.mirror.unwrap_or(false)
    }

    pub fn mirror_weight(&self) -> i32 {
        self.mirror_weight.unwrap_or(0)
    }

    pub fn primary_ready_threshold(&self) -> i32 {
        self.primary_ready_threshold.unwrap_or(100)
    }

    pub fn canary_ready_threshold(&self) -> i32 {
        self.canary_ready_threshold.unwrap_or(100)
    }

    pub fn metrics(&self) -> &[CanaryMetric] {
        self.metrics.as_deref().unwrap_or(&[])
    }

    pub fn webhooks(&self) -> &[CanaryWebhook] {
        self.webhooks.as_deref().unwrap_or(&[])
    }

    pub fn alerts(&self) -> &[CanaryAlert] {
        self.alerts.as_deref().unwrap_or(&[])
    }
}

/// A/B testing match: exactly one of exact, prefix, suffix or regex per header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, HeaderMatch>>,
    /// Query parameters for matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_params: Option<BTreeMap<String, StringMatch>>,
    /// Applicable only when the 'mesh' gateway is included in the service.gateways list
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<BTreeMap<String, String>>,
}

/// Header match of an A/B rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A metric check: builtin by name, inline query, or a MetricTemplate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    /// Name of the metric
    pub name: String,
    /// Interval of the query
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]+(m|s)"))]
    pub interval: Option<String>,
    /// Max value accepted for this metric (deprecated, use thresholdRange)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Range accepted for this metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Prometheus query (deprecated, use templateRef)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Metric template reference
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<CrossNamespaceRef>,
    /// Additional variables to be used in the metrics query (key-value pairs)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<BTreeMap<String, String>>,
}

impl CanaryMetric {
    /// The query window as written (`{{ interval }}` renders it verbatim), "1m" by default.
    pub fn interval(&self) -> &str {
        match self.interval.as_deref() {
            Some(i) if !i.is_empty() => i,
            _ => DEFAULT_METRIC_INTERVAL,
        }
    }

    pub fn interval_duration(&self) -> Result<Duration, DurationError> {
        parse_duration(self.interval())
    }

    /// Names Flagger evaluates without a template.
    pub fn is_builtin(&self) -> bool {
        matches!(
            self.name.as_str(),
            "request-success-rate" | "request-duration"
        )
    }
}

/// Inclusive bounds; each one optional.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRange {
    /// Min value accepted for this metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Max value accepted for this metric
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Reference to a MetricTemplate or AlertProvider, possibly in another namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl CrossNamespaceRef {
    /// The referenced namespace, defaulting to the canary's.
    pub fn namespace_or<'a>(&'a self, canary_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => canary_namespace,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    /// The cookie attribute's value.
    pub fn as_str(&self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// SessionAffinity represents the session affinity settings for a canary run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinity {
    /// CookieName is the key that will be used for the session affinity cookie.
    pub cookie_name: String,
    /// CookieName is the key that will be used for the session affinity cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_cookie_name: Option<String>,
    /// Domain defines the host to which the cookie will be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// HttpOnly forbids JavaScript from accessing the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// MaxAge indicates the number of seconds until the session affinity cookie will expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 86400))]
    pub max_age: Option<i64>,
    /// Partitioned indicates that the cookie should be stored using partitioned storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<bool>,
    /// Path indicates the path that must exist in the requested URL for the browser to send the Cookie header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SameSite controls whether or not a cookie is sent with cross-site requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_site: Option<SameSite>,
    /// Secure indicates that the cookie is sent to the server only when a request is made with the https: scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
}

impl SessionAffinity {
    /// Cookie lifetime in seconds, 86400 when unset or not positive.
    pub fn max_age(&self) -> i64 {
        match self.max_age {
            Some(age) if age > 0 => age,
            _ => DEFAULT_SESSION_COOKIE_MAX_AGE,
        }
    }

    /// Flagger's `BuildCookie`: `name=value; Max-Age=N` and the attributes set.
    pub fn build_cookie(&self, cookie: &str, max_age: i64) -> String {
        let mut out = format!("{cookie}; Max-Age={max_age}");
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            out.push_str(&format!("; Domain={domain}"));
        }
        if self.http_only == Some(true) {
            out.push_str("; HttpOnly");
        }
        if self.partitioned == Some(true) {
            out.push_str("; Partitioned");
        }
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            out.push_str(&format!("; Path={path}"));
        }
        if let Some(same_site) = &self.same_site {
            out.push_str(&format!("; SameSite={}", same_site.as_str()));
        }
        if self.secure == Some(true) {
            out.push_str("; Secure");
        }
        out
    }

    /// The primary cookie's lifetime: one analysis interval, in seconds.
    pub fn primary_max_age(interval: Option<&str>) -> Result<i64, DurationError> {
        parse_duration(interval.unwrap_or(""))
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

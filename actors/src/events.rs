//! Kubernetes events and alerts, with Flagger's exact texts.
//!
//! Every event uses reason `Synced`. Where Flagger names the Canary object it is
//! `<canary>.<ns>`; where it names the workload it is `<target>.<ns>`: the
//! functions below take the spec and pick the right one.

use serde::{Deserialize, Serialize};

use crate::gofmt::{go_fixed2, go_float};
use crate::model::spec::CanarySpec;

/// The only reason Flagger puts on its events.
pub const REASON: &str = "Synced";

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// One Kubernetes event on the Canary (also forwarded to event webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event_type: EventType,
    pub message: String,
}

impl Event {
    pub fn normal(message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Normal,
            message: message.into(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Warning,
            message: message.into(),
        }
    }

    pub fn reason(&self) -> &'static str {
        REASON
    }
}

/// Alert severities of `analysis.alerts[].severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

/// A notification for the alert providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub message: String,
    pub severity: Severity,
    /// Add the Target / threshold / deadline / routing fields ([`alert_fields`]).
    pub with_metadata: bool,
}

impl Alert {
    pub fn new(message: impl Into<String>, severity: Severity, with_metadata: bool) -> Alert {
        Alert {
            message: message.into(),
            severity,
            with_metadata,
        }
    }
}

/// The metadata fields Flagger attaches to "with metadata" alerts
/// (the `Cluster` field, when configured, is the notifier's business).
pub fn alert_fields(spec: &CanarySpec) -> Vec<(String, String)> {
    let analysis = &spec.analysis;
    let routing = if !analysis.match_conditions.is_empty() && analysis.iterations > 0 {
        "A/B Testing".to_owned()
    } else if analysis.iterations > 0 {
        "Blue/Green".to_owned()
    } else if !analysis.step_weights.is_empty() {
        let steps: Vec<String> = analysis.step_weights.iter().map(i32::to_string).collect();
        format!(
            "Weight steps: {} max: {}",
            steps.join(","),
            analysis.max_weight()
        )
    } else {
        format!(
            "Weight step: {} max: {}",
            analysis.step_weight,
            analysis.max_weight()
        )
    };
    vec![
        (
            "Target".to_owned(),
            format!("{}/{}", spec.target.kind, spec.target_id()),
        ),
        (
            "Failed checks threshold".to_owned(),
            analysis.threshold().to_string(),
        ),
        (
            "Progress deadline".to_owned(),
            format!("{}s", spec.progress_deadline_seconds()),
        ),
        ("Traffic routing".to_owned(), routing),
    ]
}

/// Event texts. Arguments that Flagger prints with `%v` on an error are plain strings.
pub mod text {
    use super::*;

    pub fn suspended() -> String {
        "skipping canary run as object is suspended".to_owned()
    }
    pub fn providers_available() -> String {
        "all the metrics providers are available!".to_owned()
    }
    pub fn providers_error(err: &str) -> String {
        format!("Error checking metric providers: {err}")
    }
    pub fn initialization_done(s: &CanarySpec) -> String {
        format!("Initialization done! {}", s.canary_id())
    }
    pub fn scaling_up(s: &CanarySpec) -> String {
        format!("New revision detected! Scaling up {}", s.target_id())
    }
    pub fn restarting(s: &CanarySpec) -> String {
        format!(
            "New revision detected! Restarting analysis for {}",
            s.target_id()
        )
    }
    pub fn starting_analysis(s: &CanarySpec) -> String {
        format!("Starting canary analysis for {}", s.target_id())
    }
    pub fn advance_weight(s: &CanarySpec, weight: i32) -> String {
        format!("Advance {} canary weight {weight}", s.canary_id())
    }
    pub fn advance_iteration(s: &CanarySpec, current: i32, total: i32) -> String {
        format!(
            "Advance {} canary iteration {current}/{total}",
            s.canary_id()
        )
    }
    pub fn advance_primary_weight(s: &CanarySpec, weight: i32) -> String {
        format!("Advance {} primary weight {weight}", s.canary_id())
    }
    pub fn copying(s: &CanarySpec) -> String {
        format!(
            "Copying {} template spec to {}",
            s.target_id(),
            s.primary_id()
        )
    }
    pub fn routing_to_primary() -> String {
        "Routing all traffic to primary".to_owned()
    }
    pub fn routing_to_canary() -> String {
        "Routing all traffic to canary".to_owned()
    }
    pub fn stop_mirroring() -> String {
        "Stop traffic mirroring and route all traffic to canary".to_owned()
    }
    pub fn promotion_completed(s: &CanarySpec) -> String {
        format!("Promotion completed! Scaling down {}", s.target_id())
    }
    pub fn promotion_skipped(s: &CanarySpec) -> String {
        format!(
            "Promotion completed! Canary analysis was skipped for {}",
            s.target_id()
        )
    }
    pub fn waiting_approval(s: &CanarySpec, hook: &str) -> String {
        format!(
            "Halt {} advancement waiting for approval {hook}",
            s.canary_id()
        )
    }
    pub fn waiting_promotion_approval(s: &CanarySpec, hook: &str) -> String {
        format!(
            "Halt {} advancement waiting for promotion approval {hook}",
            s.canary_id()
        )
    }
    pub fn waiting_traffic_approval(s: &CanarySpec, hook: &str) -> String {
        format!(
            "Halt {} advancement waiting for traffic increase approval {hook}",
            s.canary_id()
        )
    }
    pub fn confirm_rollout_passed(hook: &str) -> String {
        format!("Confirm-rollout check {hook} passed")
    }
    pub fn confirm_traffic_passed(hook: &str) -> String {
        format!("Confirm-traffic-increase check {hook} passed")
    }
    pub fn confirm_promotion_passed(hook: &str) -> String {
        format!("Confirm-promotion check {hook} passed")
    }
    pub fn pre_rollout_passed(hook: &str) -> String {
        format!("Pre-rollout check {hook} passed")
    }
    pub fn pre_rollout_failed(s: &CanarySpec, hook: &str, err: &str) -> String {
        format!(
            "Halt {} advancement pre-rollout check {hook} failed {err}",
            s.canary_id()
        )
    }
    pub fn external_check_failed(s: &CanarySpec, hook: &str, err: &str) -> String {
        format!(
            "Halt {} advancement external check {hook} failed {err}",
            s.canary_id()
        )
    }
    pub fn post_rollout_passed(hook: &str) -> String {
        format!("Post-rollout check {hook} passed")
    }
    pub fn post_rollout_failed(hook: &str, err: &str) -> String {
        format!("Post-rollout hook {hook} failed {err}")
    }
    pub fn rollback_check_passed(hook: &str) -> String {
        format!("Rollback check {hook} passed")
    }
    pub fn rollback_not_signaling(hook: &str) -> String {
        format!("Rollback hook {hook} not signaling a rollback")
    }
    pub fn rolling_back_webhook(s: &CanarySpec) -> String {
        format!("Rolling back {} manual webhook invoked", s.canary_id())
    }
    pub fn rolling_back_threshold(s: &CanarySpec, failed: i32) -> String {
        format!(
            "Rolling back {} failed checks threshold reached {failed}",
            s.canary_id()
        )
    }
    /// Flagger prints the (nil) readiness error here, hence `<nil>` by default.
    pub fn rolling_back_deadline(s: &CanarySpec, err: &str) -> String {
        format!(
            "Rolling back {} progress deadline exceeded {err}",
            s.canary_id()
        )
    }
    pub fn canary_failed(s: &CanarySpec) -> String {
        format!("Canary failed! Scaling down {}", s.canary_id())
    }
    pub fn promotion_failed(s: &CanarySpec, err: &str) -> String {
        format!(
            "Promotion of {} failed, primary not ready: {err}",
            s.target_id()
        )
    }
    pub fn success_rate_below(s: &CanarySpec, value: f64, min: f64) -> String {
        format!(
            "Halt {} advancement success rate {}% < {}%",
            s.canary_id(),
            go_fixed2(value),
            go_float(min)
        )
    }
    pub fn success_rate_above(s: &CanarySpec, value: f64, max: f64) -> String {
        format!(
            "Halt {} advancement success rate {}% > {}%",
            s.canary_id(),
            go_fixed2(value),
            go_float(max)
        )
    }
    /// Durations are Go `Duration` strings (`1.2s`, `500ms`).
    pub fn duration_above(s: &CanarySpec, value: &str, max: &str) -> String {
        format!(
            "Halt {} advancement request duration {value} > {max}",
            s.canary_id()
        )
    }
    pub fn duration_below(s: &CanarySpec, value: &str, min: &str) -> String {
        format!(
            "Halt {} advancement request duration {value} < {min}",
            s.canary_id()
        )
    }
    pub fn custom_above(s: &CanarySpec, metric: &str, value: f64, max: f64) -> String {
        format!(
            "Halt {} advancement {metric} {} > {}",
            s.canary_id(),
            go_fixed2(value),
            go_float(max)
        )
    }
    pub fn custom_below(s: &CanarySpec, metric: &str, value: f64, min: f64) -> String {
        format!(
            "Halt {} advancement {metric} {} < {}",
            s.canary_id(),
            go_fixed2(value),
            go_float(min)
        )
    }
    pub fn no_values_success_rate(s: &CanarySpec, metric: &str, err: &str) -> String {
        format!(
            "Halt advancement no values found for {} metric {metric} probably {} is not receiving traffic: {err}",
            s.metrics_provider,
            s.target_id()
        )
    }
    pub fn no_values_duration(s: &CanarySpec, metric: &str) -> String {
        format!(
            "Halt advancement no values found for {} metric {metric} probably {} is not receiving traffic",
            s.metrics_provider,
            s.target_id()
        )
    }
    pub fn no_values_inline(metric: &str) -> String {
        format!("Halt advancement no values found for metric: {metric}")
    }
    pub fn no_values_custom(metric: &str, err: &str) -> String {
        format!("Halt advancement no values found for custom metric: {metric}: {err}")
    }
    pub fn prometheus_failed(err: &str) -> String {
        format!("Prometheus query failed: {err}")
    }
    pub fn prometheus_failed_for(metric: &str, err: &str) -> String {
        format!("Prometheus query failed for {metric}: {err}")
    }
    pub fn metric_query_failed(metric: &str, err: &str) -> String {
        format!("Metric query failed for {metric}: {err}")
    }
    pub fn no_usable_metric() -> String {
        "Metric query failed for no usable metrics template and query were configured".to_owned()
    }
    pub fn kubernetes_no_ab() -> String {
        "A/B testing is not supported when using the kubernetes provider".to_owned()
    }
    pub fn kubernetes_no_progressive() -> String {
        "Progressive traffic is not supported when using the kubernetes provider".to_owned()
    }
    pub fn kubernetes_set_iterations(n: i32) -> String {
        format!("Setting canaryAnalysis.iterations: {n}")
    }
    /// Serin only: a step given up because of Serin's own congestion.
    pub fn step_deferred(s: &CanarySpec, reason: &str) -> String {
        format!(
            "Analysis of {} delayed by Serin ({reason}): no check failed, the step runs again at the next interval",
            s.canary_id()
        )
    }
    /// Serin only: the canary's actor keeps panicking and backs off.
    pub fn stalled(s: &CanarySpec, panics: u32, retry: std::time::Duration, panic: &str) -> String {
        format!(
            "Analysis of {} stalled: its step panicked {panics} times in a row (last: {panic}); next attempt in {}",
            s.canary_id(),
            crate::duration::go_duration_string(
                i64::try_from(retry.as_nanos()).unwrap_or(i64::MAX)
            )
        )
    }
}

/// Alert texts.
pub mod alert_text {
    pub fn initialized(kind: &str) -> String {
        format!("New {kind} detected, initialization completed.")
    }
    pub const NEW_REVISION: &str = "New revision detected, progressing canary analysis.";
    pub const WAITING_APPROVAL: &str = "Canary is waiting for approval.";
    pub const WAITING_PROMOTION: &str = "Canary promotion is waiting for approval.";
    pub const WAITING_TRAFFIC: &str = "Canary traffic increase is waiting for approval.";
    pub const MANUAL_ROLLBACK: &str = "Rolling back manual webhook invoked";
    pub fn threshold_reached(failed: i32) -> String {
        format!("Failed checks threshold reached {failed}")
    }
    pub fn deadline_exceeded(err: &str) -> String {
        format!("Progress deadline exceeded {err}")
    }
    pub fn promotion_failed(err: &str) -> String {
        format!("Promotion failed, primary not ready: {err}")
    }
    pub const SUCCEEDED: &str = "Canary analysis completed successfully, promotion finished.";
    pub const SKIPPED: &str = "Canary analysis was skipped, promotion finished.";
}

//! `serin get canary NAME`: one canary's analysis as text. A pure function
//! of the Canary, its Events, its workloads and the time.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::canary::{Canary, CheckStatus, ThresholdRange, WebhookType};

use super::events::EventLine;
use super::human::{human_duration, number};
use super::progress;
use super::table::{self, align};
use super::workloads::WorkloadView;

/// How many Events the view shows, newest last.
pub const EVENTS_SHOWN: usize = 5;

/// Everything the view shows.
pub struct ViewInput<'a> {
    pub canary: &'a Canary,
    /// Oldest first.
    pub events: &'a [EventLine],
    pub primary: Option<&'a WorkloadView>,
    pub target: Option<&'a WorkloadView>,
    pub now: Timestamp,
}

pub fn render(input: &ViewInput<'_>) -> String {
    let canary = input.canary;
    let status = canary.status.clone().unwrap_or_default();
    let mut out = String::new();
    let phase = match status.phase() {
        crate::api::canary::CanaryPhase::Unset => "(no status yet)",
        other => other.as_str(),
    };
    let paused = if canary.spec.suspend() {
        " (paused)"
    } else {
        ""
    };
    let key = format!(
        "{}.{}",
        canary.name_any(),
        canary.namespace().unwrap_or_default()
    );
    out.push_str(&format!("{key}  {phase}{paused}\n"));
    let mut fields = vec![
        field(
            "Target",
            format!(
                "{} (provider {})",
                table::target(canary),
                table::provider(canary)
            ),
        ),
        field("Weight", progress::weight_bar(status.canary_weight())),
    ];
    let mut strategy = progress::strategy(canary);
    if let Some(position) = progress::position(canary) {
        strategy.push_str(&format!(", {position}"));
    }
    fields.push(field("Strategy", strategy));
    let mut checks = progress::failed_checks(canary);
    if let Some(next) = table::next_step(canary, input.now) {
        checks.push_str(&format!(", next step in {}", human_duration(next)));
    }
    fields.push(field("Checks", checks));
    out.push_str(&align(&fields, 1));
    let checks = status.checks.as_deref().unwrap_or(&[]);
    out.push_str(&section("Metrics", metric_rows(canary, checks)));
    out.push_str(&section("Webhooks", webhook_rows(canary, checks)));
    out.push_str("Revisions:\n");
    let revisions = [
        (
            "primary",
            input.primary,
            crate::ctl::workloads::primary_name(&canary.spec.target_ref),
        ),
        ("canary", input.target, canary.spec.target_ref.name.clone()),
    ];
    let rows: Vec<Vec<String>> = revisions
        .into_iter()
        .map(|(role, workload, name)| revision_row(role, workload, name))
        .collect();
    out.push_str(&indent(&align(&rows, 3)));
    if let Some(request) = status.last_request.as_ref() {
        let by = request
            .requested_by
            .as_deref()
            .map(|who| format!(" by {who}"))
            .unwrap_or_default();
        let age = request
            .time
            .as_ref()
            .map(|t| format!(" {} ago", human_duration(age(t.0, input.now))))
            .unwrap_or_default();
        out.push_str(&format!(
            "Last request: {}{by}{age}: {}: {}\n",
            request.action, request.result, request.message
        ));
    }
    out.push_str(&events(input.events, input.now));
    out
}

fn field(name: &str, value: String) -> Vec<String> {
    vec![format!("{name}:"), value]
}

fn age(time: Timestamp, now: Timestamp) -> i64 {
    now.as_second() - time.as_second()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// A titled table, or `Title: none`.
fn section(title: &str, rows: Vec<Vec<String>>) -> String {
    if rows.len() <= 1 {
        return format!("{title}: none\n");
    }
    format!("{title}:\n{}", indent(&align(&rows, 3)))
}

/// `min 99`, `max 500`, `min 1 max 5`, `-`.
fn range(range: Option<&ThresholdRange>) -> String {
    let Some(range) = range else {
        return "-".to_string();
    };
    let parts: Vec<String> = [("min", range.min), ("max", range.max)]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name} {}", number(v))))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}

fn result(check: Option<&CheckStatus>, gate: bool) -> String {
    match (check.map(|c| c.passed), gate) {
        (None, _) => "-",
        (Some(true), true) => "open",
        (Some(false), true) => "closed",
        (Some(true), false) => "passed",
        (Some(false), false) => "failed",
    }
    .to_string()
}

fn message(check: Option<&CheckStatus>) -> String {
    check.and_then(|c| c.message.clone()).unwrap_or_default()
}

/// The spec's metrics with the last check of each, then checks of metrics
/// the spec no longer has.
fn metric_rows(canary: &Canary, checks: &[CheckStatus]) -> Vec<Vec<String>> {
    let mut rows = vec![header(&["NAME", "VALUE", "THRESHOLD", "RESULT", "MESSAGE"])];
    let metric_checks: Vec<&CheckStatus> = checks.iter().filter(|c| c.type_ == "metric").collect();
    let metrics = canary.spec.analysis.metrics();
    for metric in metrics {
        let check = metric_checks
            .iter()
            .find(|c| c.name == metric.name)
            .copied();
        let spec_range = metric
            .threshold_range
            .clone()
            .or(metric.threshold.map(|max| ThresholdRange {
                min: None,
                max: Some(max),
            }));
        let threshold = check
            .and_then(|c| c.threshold_range.as_ref())
            .or(spec_range.as_ref());
        rows.push(vec![
            metric.name.clone(),
            check
                .and_then(|c| c.value)
                .map_or_else(|| "-".to_string(), number),
            range(threshold),
            result(check, false),
            message(check),
        ]);
    }
    for check in metric_checks {
        if !metrics.iter().any(|m| m.name == check.name) {
            rows.push(vec![
                check.name.clone(),
                check.value.map_or_else(|| "-".to_string(), number),
                range(check.threshold_range.as_ref()),
                result(Some(check), false),
                message(Some(check)),
            ]);
        }
    }
    rows
}

/// The spec's webhooks (not `event` ones, which notify rather than check)
/// with the last call of each.
fn webhook_rows(canary: &Canary, checks: &[CheckStatus]) -> Vec<Vec<String>> {
    let mut rows = vec![header(&["NAME", "TYPE", "RESULT", "MESSAGE"])];
    for hook in canary.spec.analysis.webhooks() {
        let kind = hook.webhook_type();
        if kind == WebhookType::Event {
            continue;
        }
        let check = checks
            .iter()
            .find(|c| c.type_ != "metric" && c.name == hook.name);
        let gate = matches!(
            kind,
            WebhookType::ConfirmRollout
                | WebhookType::ConfirmPromotion
                | WebhookType::ConfirmTrafficIncrease
        );
        let type_name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rows.push(vec![
            hook.name.clone(),
            type_name,
            result(check, gate),
            message(check),
        ]);
    }
    rows
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn revision_row(role: &str, workload: Option<&WorkloadView>, name: String) -> Vec<String> {
    let Some(w) = workload else {
        return vec![
            role.to_string(),
            name,
            "-".to_string(),
            "not found".to_string(),
        ];
    };
    let images = match w.images.as_slice() {
        [(_, image)] => image.clone(),
        many => many
            .iter()
            .map(|(c, i)| format!("{c}={i}"))
            .collect::<Vec<_>>()
            .join(","),
    };
    vec![
        role.to_string(),
        w.name.clone(),
        images,
        format!("{}/{} ready", w.ready, w.desired),
    ]
}

/// The last [`EVENTS_SHOWN`] Events, newest last, with their age.
fn events(events: &[EventLine], now: Timestamp) -> String {
    if events.is_empty() {
        return "Events: none\n".to_string();
    }
    let shown = &events[events.len().saturating_sub(EVENTS_SHOWN)..];
    let mut rows = vec![header(&["AGE", "TYPE", "MESSAGE"])];
    for e in shown {
        let count = if e.count > 1 {
            format!(" (x{})", e.count)
        } else {
            String::new()
        };
        rows.push(vec![
            e.time
                .map_or_else(|| "-".to_string(), |t| human_duration(age(t, now))),
            e.type_.clone(),
            format!("{}{count}", e.message),
        ]);
    }
    format!("Events:\n{}", indent(&align(&rows, 3)))
}

#[cfg(test)]
mod tests;

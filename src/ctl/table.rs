//! `serin get canaries`: kubectl's columns of the Canary CRD (NAME, STATUS,
//! WEIGHT, LASTTRANSITIONTIME; NAMESPACE first with -A), then TARGET,
//! PROVIDER and NEXT (time to the next analysis step).

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::canary::{Canary, CanaryPhase};

use super::human::human_duration;

/// Columns aligned as kubectl's tab writer does: each as wide as its widest
/// cell plus three spaces, the last one unpadded.
pub fn align(rows: &[Vec<String>], gap: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + gap;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Phases in which the operator's interval timer runs.
pub fn run_is_active(phase: CanaryPhase) -> bool {
    matches!(
        phase,
        CanaryPhase::Initializing
            | CanaryPhase::Progressing
            | CanaryPhase::Waiting
            | CanaryPhase::WaitingPromotion
            | CanaryPhase::Promoting
            | CanaryPhase::Finalising
    )
}

/// Seconds to the next analysis step while a run is active: the latest
/// check (else the last transition) plus the interval, minus now.
pub fn next_step(canary: &Canary, now: Timestamp) -> Option<i64> {
    let status = canary.status.as_ref()?;
    if !run_is_active(status.phase()) {
        return None;
    }
    let last_check = status
        .checks
        .iter()
        .flatten()
        .filter_map(|c| c.last_check_time.as_ref())
        .map(|t| t.0)
        .max();
    let last = last_check.or(status.last_transition_time.as_ref().map(|t| t.0))?;
    let interval = i64::try_from(canary.spec.analysis.interval().as_secs()).unwrap_or(i64::MAX);
    let due = last.as_second().saturating_add(interval);
    Some(due.saturating_sub(now.as_second()).max(0))
}

/// The TARGET column: `Deployment/podinfo`.
pub fn target(canary: &Canary) -> String {
    let target = &canary.spec.target_ref;
    format!("{}/{}", target.kind.as_str(), target.name)
}

/// The PROVIDER column: `spec.provider`, `-` when empty.
pub fn provider(canary: &Canary) -> String {
    canary
        .spec
        .provider
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "-".to_string())
}

/// The table of `serin get canaries`.
pub fn render(canaries: &[Canary], all_namespaces: bool, now: Timestamp) -> String {
    let mut header = vec![
        "NAME",
        "STATUS",
        "WEIGHT",
        "LASTTRANSITIONTIME",
        "TARGET",
        "PROVIDER",
        "NEXT",
    ];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for canary in canaries {
        let status = canary.status.as_ref();
        let mut row = vec![
            canary.name_any(),
            status
                .and_then(|s| s.phase)
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            status
                .and_then(|s| s.canary_weight)
                .map(|w| w.to_string())
                .unwrap_or_default(),
            status
                .and_then(|s| s.last_transition_time.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            target(canary),
            provider(canary),
            next_step(canary, now).map_or_else(|| "-".to_string(), human_duration),
        ];
        if all_namespaces {
            row.insert(0, canary.namespace().unwrap_or_default());
        }
        rows.push(row);
    }
    align(&rows, 3)
}

#[cfg(test)]
mod tests;

//! Where a run stands: the weight bar, the step or iteration, and the
//! one-line summary `serin status` prints on every change.

use crate::api::canary::{Canary, CanaryPhase, DeploymentStrategy};

/// Width of the weight bar between its brackets.
const BAR_WIDTH: i32 = 16;

/// `[####------------] canary 25% / primary 75%`.
pub fn weight_bar(weight: i32) -> String {
    let weight = weight.clamp(0, 100);
    let filled = (weight * BAR_WIDTH + 50) / 100;
    format!(
        "[{}{}] canary {weight}% / primary {}%",
        "#".repeat(usize::try_from(filled).unwrap_or(0)),
        "-".repeat(usize::try_from(BAR_WIDTH - filled).unwrap_or(0)),
        100 - weight
    )
}

/// `(current, total)` steps of a progressive canary: the weight against
/// `stepWeights`, or against `stepWeight` up to `maxWeight`.
pub fn step(canary: &Canary) -> Option<(i32, i32)> {
    let analysis = &canary.spec.analysis;
    let weight = canary
        .status
        .as_ref()
        .map_or(0, |s| s.canary_weight())
        .max(0);
    let weights = analysis.step_weights();
    if !weights.is_empty() {
        let done = weights.iter().filter(|w| **w <= weight).count();
        let total = i32::try_from(weights.len()).ok()?;
        return Some((i32::try_from(done).ok()?, total));
    }
    let step = analysis.step_weight();
    if step <= 0 {
        return None;
    }
    let total = (analysis.max_weight() + step - 1) / step;
    Some((((weight + step - 1) / step).min(total), total))
}

/// How the canary shifts traffic: `canary (stepWeight 5, maxWeight 50)`,
/// `canary (stepWeights 10,50,80)`, `blue-green (10 iterations)`.
pub fn strategy(canary: &Canary) -> String {
    let analysis = &canary.spec.analysis;
    let strategy = canary.spec.deployment_strategy();
    match strategy {
        DeploymentStrategy::Canary if !analysis.step_weights().is_empty() => {
            let weights: Vec<String> = analysis.step_weights().iter().map(i32::to_string).collect();
            format!("canary (stepWeights {})", weights.join(","))
        }
        DeploymentStrategy::Canary => format!(
            "canary (stepWeight {}, maxWeight {})",
            analysis.step_weight(),
            analysis.max_weight()
        ),
        other => format!("{} ({} iterations)", other.as_str(), analysis.iterations()),
    }
}

/// Phases in which the analysis advances step by step.
fn analysing(phase: CanaryPhase) -> bool {
    matches!(
        phase,
        CanaryPhase::Progressing | CanaryPhase::Waiting | CanaryPhase::WaitingPromotion
    )
}

/// `step 5 of 10` or `iteration 3 of 10` while the analysis runs.
pub fn position(canary: &Canary) -> Option<String> {
    let status = canary.status.as_ref()?;
    if !analysing(status.phase()) {
        return None;
    }
    match canary.spec.deployment_strategy() {
        DeploymentStrategy::Canary => step(canary).map(|(n, total)| format!("step {n} of {total}")),
        _ => Some(format!(
            "iteration {} of {}",
            status.iterations(),
            canary.spec.analysis.iterations()
        )),
    }
}

/// `failed checks 1/5`.
pub fn failed_checks(canary: &Canary) -> String {
    let failed = canary.status.as_ref().map_or(0, |s| s.failed_checks());
    format!(
        "failed checks {failed}/{}",
        canary.spec.analysis.threshold()
    )
}

/// `serin status`'s line: `Progressing canary weight 10`, `Progressing
/// iteration 2 of 5`, `Succeeded`, with the failed checks when any and
/// `(paused)` when suspended.
pub fn summary(canary: &Canary) -> String {
    let status = canary.status.clone().unwrap_or_default();
    let phase = status.phase();
    let mut line = match phase {
        CanaryPhase::Unset => "(no status yet)".to_string(),
        other => other.as_str().to_string(),
    };
    if phase == CanaryPhase::Progressing {
        match canary.spec.deployment_strategy() {
            DeploymentStrategy::Canary => {
                line.push_str(&format!(" canary weight {}", status.canary_weight()));
            }
            _ => line.push_str(&format!(
                " iteration {} of {}",
                status.iterations(),
                canary.spec.analysis.iterations()
            )),
        }
    }
    if analysing(phase) && status.failed_checks() > 0 {
        line.push_str(&format!(", {}", failed_checks(canary)));
    }
    if canary.spec.suspend() {
        line.push_str(" (paused)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::fixtures::{canary_with, podinfo};

    #[test]
    fn bars() {
        assert_eq!(weight_bar(0), "[----------------] canary 0% / primary 100%");
        assert_eq!(
            weight_bar(25),
            "[####------------] canary 25% / primary 75%"
        );
        assert_eq!(
            weight_bar(50),
            "[########--------] canary 50% / primary 50%"
        );
        assert_eq!(weight_bar(5), "[#---------------] canary 5% / primary 95%");
        assert_eq!(
            weight_bar(100),
            "[################] canary 100% / primary 0%"
        );
    }

    #[test]
    fn steps_against_step_weight_and_step_weights() {
        let c = podinfo("Progressing", 25);
        assert_eq!(step(&c), Some((5, 10)));
        assert_eq!(position(&c).as_deref(), Some("step 5 of 10"));
        let c = canary_with("Progressing", 50, "stepWeights: [10, 50, 80]");
        assert_eq!(step(&c), Some((2, 3)));
        assert_eq!(strategy(&c), "canary (stepWeights 10,50,80)");
        // maxWeight not a multiple of stepWeight: the last step is capped.
        let c = canary_with("Progressing", 30, "stepWeight: 20\nmaxWeight: 50");
        assert_eq!(step(&c), Some((2, 3)));
        let c = podinfo("Succeeded", 0);
        assert_eq!(position(&c), None);
    }

    #[test]
    fn iterations_for_blue_green() {
        let mut c = canary_with("Progressing", 0, "iterations: 5");
        if let Some(s) = c.status.as_mut() {
            s.iterations = Some(2);
        }
        assert_eq!(strategy(&c), "blue-green (5 iterations)");
        assert_eq!(position(&c).as_deref(), Some("iteration 2 of 5"));
        assert_eq!(summary(&c), "Progressing iteration 2 of 5");
    }

    #[test]
    fn summaries() {
        let mut c = podinfo("Progressing", 10);
        assert_eq!(summary(&c), "Progressing canary weight 10");
        if let Some(s) = c.status.as_mut() {
            s.failed_checks = Some(2);
        }
        assert_eq!(
            summary(&c),
            "Progressing canary weight 10, failed checks 2/5"
        );
        c.spec.suspend = Some(true);
        assert_eq!(
            summary(&c),
            "Progressing canary weight 10, failed checks 2/5 (paused)"
        );
        assert_eq!(summary(&podinfo("Succeeded", 0)), "Succeeded");
        assert_eq!(summary(&podinfo("", 0)), "(no status yet)");
    }
}

//! Flagger's weight arithmetic. The canary increment is never capped at
//! `maxWeight`, so a step that does not divide it overshoots (20, 40, 60 for
//! step 20 / max 50); only the total weight (100) caps it.

use crate::model::spec::{AnalysisSpec, TOTAL_WEIGHT};

/// The next increment from `canary_weight` (Flagger's `nextStepWeight`).
/// Zero means the canary strategy never advances.
pub fn next_step_weight(analysis: &AnalysisSpec, canary_weight: i32) -> i32 {
    let steps = &analysis.step_weights;
    if analysis.step_weight > 0 || steps.is_empty() {
        return analysis.step_weight;
    }
    let max_step = TOTAL_WEIGHT - canary_weight;
    // At 100% any positive step moves on to promotion.
    if max_step == 0 {
        return 1;
    }
    if canary_weight == 0 {
        return steps.first().map_or(max_step, |first| max_step.min(*first));
    }
    for pair in steps.windows(2) {
        if let [current, next] = pair
            && *current == canary_weight
        {
            return max_step.min(next - canary_weight);
        }
    }
    max_step
}

/// Routes after one canary step: primary floors at 0, canary caps at 100.
pub fn step_forward(analysis: &AnalysisSpec, primary: i32, canary: i32) -> (i32, i32) {
    let step = next_step_weight(analysis, canary);
    let primary = (primary - step).max(0);
    let canary = (canary + step).min(TOTAL_WEIGHT);
    (primary, canary)
}

/// Routes after one `stepWeightPromotion` step back to the primary.
pub fn step_back(step: i32, primary: i32, canary: i32) -> (i32, i32) {
    ((primary + step).min(TOTAL_WEIGHT), (canary - step).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(step: i32, max: i32, steps: &[i32]) -> AnalysisSpec {
        AnalysisSpec {
            step_weight: step,
            max_weight: max,
            step_weights: steps.to_vec(),
            ..AnalysisSpec::default()
        }
    }

    /// Canary weights reached until `max_weight` is met or passed.
    fn canary_weights(a: &AnalysisSpec) -> Vec<i32> {
        let (mut primary, mut canary) = (TOTAL_WEIGHT, 0);
        let mut out = Vec::new();
        while canary < a.max_weight() {
            (primary, canary) = step_forward(a, primary, canary);
            out.push(canary);
        }
        out
    }

    #[test]
    fn step_weight_overshoots_max_weight() {
        assert_eq!(canary_weights(&analysis(20, 50, &[])), vec![20, 40, 60]);
        assert_eq!(canary_weights(&analysis(50, 100, &[])), vec![50, 100]);
        assert_eq!(canary_weights(&analysis(5, 50, &[])).len(), 10);
    }

    #[test]
    fn step_weights_follow_the_list_and_cap_at_total() {
        assert_eq!(
            canary_weights(&analysis(0, 0, &[1, 2, 10, 80])),
            vec![1, 2, 10, 80]
        );
        assert_eq!(
            canary_weights(&analysis(0, 0, &[1, 2, 10, 200])),
            vec![1, 2, 10, 100]
        );
        assert_eq!(analysis(0, 0, &[1, 2, 10, 200]).max_weight(), 100);
    }

    #[test]
    fn step_weights_off_the_list_jump_to_total() {
        let a = analysis(0, 0, &[10, 20]);
        assert_eq!(next_step_weight(&a, 15), 85);
        assert_eq!(next_step_weight(&a, 100), 1);
        assert_eq!(next_step_weight(&analysis(0, 0, &[]), 0), 0);
    }

    #[test]
    fn promotion_steps_back_to_primary() {
        assert_eq!(step_back(50, 0, 100), (50, 50));
        assert_eq!(step_back(60, 50, 50), (100, 0));
    }
}

//! The end of a tick: strategy steps, promotion, finalisation and rollback.

use crate::effects::Effect;
use crate::events::{Severity, alert_text, text};
use crate::model::spec::TOTAL_WEIGHT;
use crate::model::status::Phase;

use super::context::{Ctx, Step};
use super::weights::{next_step_weight, step_back, step_forward};

impl Ctx<'_> {
    /// Progressive traffic shifting (`runCanary`), including the mirror step.
    pub fn run_canary(&mut self) -> Step<()> {
        let analysis = &self.spec.analysis;
        let routes = self.obs.routes;
        let (primary, canary) = (routes.primary, routes.canary);
        if canary < analysis.max_weight() {
            // Mirroring: one tick of mirrored traffic before the first shift.
            let (primary, canary, mirrored) = if analysis.mirror && canary == 0 {
                if routes.mirrored {
                    let step = next_step_weight(analysis, canary);
                    (TOTAL_WEIGHT - step, step, false)
                } else {
                    (TOTAL_WEIGHT, 0, true)
                }
            } else {
                let (p, c) = step_forward(analysis, primary, canary);
                (p, c, routes.mirrored)
            };
            self.set_routes(primary, canary, mirrored);
            self.set_weight(canary);
            self.normal(text::advance_weight(self.spec, canary));
            return Ok(());
        }
        if !self.confirm_promotion()? {
            return Ok(());
        }
        self.promote();
        Ok(())
    }

    /// A/B testing: all matching traffic on the canary, one iteration per tick.
    pub fn run_ab(&mut self) -> Step<()> {
        let wanted = self.spec.analysis.iterations;
        let done = self.status.iterations;
        if wanted > done {
            self.set_routes(0, TOTAL_WEIGHT, false);
            self.set_iterations(done + 1);
            self.normal(text::advance_iteration(self.spec, done + 1, wanted));
            return Ok(());
        }
        if !self.confirm_promotion()? {
            return Ok(());
        }
        if wanted == done {
            self.promote();
        }
        Ok(())
    }

    /// Blue/Green: iterate on the idle canary, switch all traffic to it for
    /// one extra tick, then promote. `iterations` is the effective count
    /// (the kubernetes provider forces 10).
    pub fn run_blue_green(&mut self, iterations: i32) -> Step<()> {
        let kubernetes = self.spec.is_kubernetes_provider();
        let mirror = self.spec.analysis.mirror;
        let done = self.status.iterations;
        if iterations > done {
            if !kubernetes && mirror && !self.obs.routes.mirrored {
                self.set_routes(TOTAL_WEIGHT, 0, true);
            }
            self.set_iterations(done + 1);
            self.normal(text::advance_iteration(self.spec, done + 1, iterations));
            return Ok(());
        }
        if !self.confirm_promotion()? {
            return Ok(());
        }
        if iterations == done {
            if !kubernetes {
                self.normal(if mirror {
                    text::stop_mirroring()
                } else {
                    text::routing_to_canary()
                });
                self.set_routes(0, TOTAL_WEIGHT, false);
            }
            self.set_iterations(done + 1);
            return Ok(());
        }
        if iterations < done {
            self.promote();
        }
        Ok(())
    }

    /// Copy the canary's spec to the primary and enter `Promoting`.
    pub fn promote(&mut self) {
        self.normal(text::copying(self.spec));
        self.effect(Effect::PromoteSpec);
        self.set_phase(Phase::Promoting);
    }

    /// `Promoting`: shift traffic back to the (now updated) primary.
    pub fn promotion_traffic_shift(&mut self) {
        if self.spec.is_kubernetes_provider() {
            self.set_phase(Phase::Finalising);
            return;
        }
        let step = self.spec.analysis.step_weight_promotion;
        if step == 0 {
            self.normal(text::routing_to_primary());
            self.set_routes(TOTAL_WEIGHT, 0, false);
            self.set_phase(Phase::Finalising);
            return;
        }
        let routes = self.obs.routes;
        if routes.canary > 0 {
            let (primary, canary) = step_back(step, routes.primary, routes.canary);
            self.set_routes(primary, canary, false);
            self.normal(text::advance_primary_weight(self.spec, primary));
            if primary == TOTAL_WEIGHT {
                self.set_phase(Phase::Finalising);
            } else {
                self.set_weight(canary);
            }
        }
    }

    /// `Finalising`: scale the canary down and declare success.
    pub fn finalise(&mut self) {
        self.effect(Effect::ScaleCanaryToZero);
        self.set_phase(Phase::Succeeded);
        self.effect(Effect::CountSuccess { skipped: false });
        self.effect(Effect::RunPostRolloutHooks {
            phase: Phase::Succeeded,
        });
        self.normal(text::promotion_completed(self.spec));
        self.alert(alert_text::SUCCEEDED, Severity::Info, false);
    }

    /// skipAnalysis: promote as soon as the canary is ready.
    pub fn promote_without_analysis(&mut self) {
        self.set_routes(TOTAL_WEIGHT, 0, false);
        self.normal(text::copying(self.spec));
        self.effect(Effect::PromoteSpec);
        self.effect(Effect::ReconcilePrimaryScaler);
        self.effect(Effect::ScaleCanaryToZero);
        self.set_phase(Phase::Succeeded);
        self.effect(Effect::CountSuccess { skipped: true });
        self.effect(Effect::RunPostRolloutHooks {
            phase: Phase::Succeeded,
        });
        self.normal(text::promotion_skipped(self.spec));
        self.alert(alert_text::SKIPPED, Severity::Info, false);
    }

    /// Route everything to the primary, scale the canary down, mark `Failed`.
    pub fn rollback(&mut self) {
        let failed = self.status.failed_checks;
        if failed >= self.spec.analysis.threshold() {
            self.warning(text::rolling_back_threshold(self.spec, failed));
            self.alert(
                alert_text::threshold_reached(failed),
                Severity::Error,
                false,
            );
        }
        self.set_routes(TOTAL_WEIGHT, 0, false);
        self.warning(text::canary_failed(self.spec));
        self.effect(Effect::ScaleCanaryToZero);
        self.sync_status(Phase::Failed, 0, 0, 0);
        self.effect(Effect::CountFailure);
        self.effect(Effect::RunPostRolloutHooks {
            phase: Phase::Failed,
        });
    }

    /// The primary broke during promotion: keep serving from the canary.
    pub fn fail_promotion(&mut self, err: &str) {
        self.warning(text::promotion_failed(self.spec, err));
        self.alert(alert_text::promotion_failed(err), Severity::Error, false);
        self.set_routes(0, TOTAL_WEIGHT, false);
        self.sync_status(Phase::Failed, TOTAL_WEIGHT, 0, 0);
        self.effect(Effect::CountFailure);
        self.effect(Effect::RunPostRolloutHooks {
            phase: Phase::Failed,
        });
    }
}

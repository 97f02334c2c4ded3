//! Webhook gates and the analysis (rollout hooks then metrics), as Flagger
//! runs them: in declaration order, stopping at the first decisive answer.

use crate::events::{Severity, alert_text, text};
use crate::model::observe::WebhookAnswer;
use crate::model::spec::{HookType, MetricSource, WebhookSpec};
use crate::model::status::Phase;

use super::context::{Ctx, Step};
use super::metrics::{check_of, judge};

impl<'a> Ctx<'a> {
    fn record_answer(&mut self, hook: &WebhookSpec, answer: &WebhookAnswer) {
        match answer {
            WebhookAnswer::Ok => self.record_hook(hook, true, None),
            WebhookAnswer::Failed(err) => self.record_hook(hook, false, Some(err)),
        }
    }

    fn hooks(&self, kind: HookType) -> Vec<(usize, &'a WebhookSpec)> {
        let spec = self.spec;
        spec.analysis.hooks_of(kind).collect()
    }

    /// `confirm-rollout`: a refusal parks the canary in `Waiting` (once).
    pub fn confirm_rollout(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::ConfirmRollout) {
            let answer = self.webhook(index, self.status.phase)?;
            self.record_answer(hook, answer);
            match answer {
                WebhookAnswer::Ok => self.normal(text::confirm_rollout_passed(&hook.name)),
                WebhookAnswer::Failed(_) => {
                    if self.status.phase != Phase::Waiting {
                        self.set_phase(Phase::Waiting);
                        self.warning(text::waiting_approval(self.spec, &hook.name));
                        if !hook.mute_alert {
                            self.alert(alert_text::WAITING_APPROVAL, Severity::Warn, false);
                        }
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// `pre-rollout`: run on the first analysis tick.
    pub fn pre_rollout(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::PreRollout) {
            let answer = self.webhook(index, Phase::Progressing)?;
            self.record_answer(hook, answer);
            match answer {
                WebhookAnswer::Ok => self.normal(text::pre_rollout_passed(&hook.name)),
                WebhookAnswer::Failed(err) => {
                    self.warning(text::pre_rollout_failed(self.spec, &hook.name, err));
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// One analysis: `rollout` hooks, then builtin and inline metrics, then
    /// templated ones, each group in list order. The first failure decides.
    pub fn analysis(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::Rollout) {
            let answer = self.webhook(index, Phase::Progressing)?;
            self.record_answer(hook, answer);
            if let WebhookAnswer::Failed(err) = answer {
                self.warning(text::external_check_failed(self.spec, &hook.name, err));
                return Ok(false);
            }
        }
        let spec = self.spec;
        let metrics = &spec.analysis.metrics;
        let first_pass =
            |s: MetricSource| matches!(s, MetricSource::Builtin(_) | MetricSource::Inline);
        let order = metrics
            .iter()
            .enumerate()
            .filter(|(_, m)| first_pass(m.source()))
            .chain(
                metrics
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !first_pass(m.source())),
            );
        for (index, metric) in order {
            if metric.source() == MetricSource::Unusable {
                self.warning(text::no_usable_metric());
                return Ok(false);
            }
            let answer = self.metric(index)?;
            let verdict = judge(spec, metric, answer);
            self.record_check(check_of(metric, answer, &verdict, self.now));
            if let Err(event) = verdict {
                self.event(event);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `confirm-traffic-increase`: a refusal just holds the weight.
    pub fn confirm_traffic_increase(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::ConfirmTrafficIncrease) {
            let answer = self.webhook(index, Phase::Progressing)?;
            self.record_answer(hook, answer);
            match answer {
                WebhookAnswer::Ok => self.normal(text::confirm_traffic_passed(&hook.name)),
                WebhookAnswer::Failed(_) => {
                    self.warning(text::waiting_traffic_approval(self.spec, &hook.name));
                    if !hook.mute_alert {
                        self.alert(alert_text::WAITING_TRAFFIC, Severity::Warn, false);
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// `confirm-promotion`: a refusal enters `WaitingPromotion` (once); while
    /// waiting the iteration counter is wound back so the analysis keeps running.
    pub fn confirm_promotion(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::ConfirmPromotion) {
            let answer = self.webhook(index, Phase::Progressing)?;
            self.record_answer(hook, answer);
            match answer {
                WebhookAnswer::Ok => self.normal(text::confirm_promotion_passed(&hook.name)),
                WebhookAnswer::Failed(_) => {
                    if self.status.phase != Phase::WaitingPromotion {
                        self.set_phase(Phase::WaitingPromotion);
                        self.warning(text::waiting_promotion_approval(self.spec, &hook.name));
                        if !hook.mute_alert {
                            self.alert(alert_text::WAITING_PROMOTION, Severity::Warn, false);
                        }
                    } else {
                        self.set_iterations(self.spec.analysis.iterations - 1);
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// `rollback` hooks: inverted, a successful call asks for a rollback.
    pub fn rollback_requested(&mut self) -> Step<bool> {
        for (index, hook) in self.hooks(HookType::Rollback) {
            let answer = self.webhook(index, self.status.phase)?;
            // A rollback hook passes while it does not ask for a rollback.
            let asks = matches!(answer, WebhookAnswer::Ok);
            self.record_hook(hook, !asks, asks.then_some("rollback requested"));
            match answer {
                WebhookAnswer::Ok => {
                    self.warning(text::rollback_check_passed(&hook.name));
                    return Ok(true);
                }
                WebhookAnswer::Failed(_) => self.normal(text::rollback_not_signaling(&hook.name)),
            }
        }
        Ok(false)
    }
}

//! One analysis tick, Flagger's `advanceCanary` as a pure function.
//!
//! # Design: replay until answered
//!
//! `tick(spec, status, observations, now)` either finishes with
//! [`TickStep::Done`] (the next status and the effects to perform, in order)
//! or stops with [`TickStep::NeedCheck`] naming the single webhook call or
//! metric query it needs next. The caller runs that check, records the answer
//! in `observations.answers` and calls `tick` again with otherwise identical
//! inputs. Because the function is pure, the replay walks the same path and
//! gets one step further, so checks run one at a time, in Flagger's order, and
//! only when Flagger would run them (a failing rollout hook means no metric is
//! queried; a passing rollback hook means no analysis at all). Nothing from a
//! suspended attempt leaks: effects are only returned with `Done`.
//!
//! ```text
//! let mut obs = observe_ports();            // revision, readiness, routes
//! let outcome = loop {
//!     match tick(&spec, &status, &obs, now) {
//!         TickStep::NeedCheck(req) => { let a = run(req); obs.answers.record(a) }
//!         TickStep::Done(outcome) => break *outcome,
//!     }
//! };
//! perform(outcome.effects);                 // stop at the first failing port call
//! persist(outcome.next_status);             // only when every effect succeeded
//! ```
//!
//! Reads with no side effect (target revision, workload readiness, router
//! weights) are taken up front in [`Observations`]; `post-rollout` hooks never
//! influence a decision, so they are an effect ([`Effect::RunPostRolloutHooks`])
//! run in order after the rollback/finalisation commands.
//!
//! Reconciling primary, services and routes objects every tick is the
//! actor's job before calling `tick`; this function only decides.

use serde::{Deserialize, Serialize};

use crate::effects::Effect;
use crate::events::{Severity, alert_text, text};
use crate::model::observe::{CheckRequest, Observations, Readiness};
use crate::model::spec::{CanarySpec, Strategy};
use crate::model::status::{CanaryStatus, Phase, Timestamp};

use super::context::{Ctx, Pending, Step};
use super::weights::next_step_weight;

/// What a finished tick decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickOutcome {
    /// Status to persist (unchanged when nothing was written).
    pub next_status: CanaryStatus,
    /// Commands for the ports, in order.
    pub effects: Vec<Effect>,
    /// The canary ends idle with a new revision it could not start yet:
    /// look again at the next interval.
    pub revisit: bool,
}

/// Either a decision or the next check the decision depends on.
#[derive(Debug, Clone, PartialEq)]
pub enum TickStep {
    NeedCheck(CheckRequest),
    Done(Box<TickOutcome>),
}

/// Flagger's Kubernetes provider iterates 10 times when none are set.
const KUBERNETES_DEFAULT_ITERATIONS: i32 = 10;

/// Runs one tick; see the module docs for the replay protocol.
pub fn tick(
    spec: &CanarySpec,
    status: &CanaryStatus,
    observations: &Observations,
    now: Timestamp,
) -> TickStep {
    let mut ctx = Ctx::new(spec, status, observations, now);
    match ctx.advance() {
        Ok(()) => TickStep::Done(Box::new(ctx.finish())),
        Err(Pending(request)) => TickStep::NeedCheck(request),
    }
}

/// A readiness report turned into Flagger's (message, retriable) error.
struct NotReady {
    message: String,
    retriable: bool,
    /// A transient state right after a change: noted, not warned about.
    quiet: bool,
}

impl Ctx<'_> {
    fn readiness(&self, readiness: &Readiness) -> Option<NotReady> {
        match readiness {
            Readiness::Ready => None,
            Readiness::NotReady {
                message,
                stalled_since,
            } => {
                let deadline = self.spec.progress_deadline_seconds();
                // Retriable until stalled_since + deadline is in the past.
                let retriable =
                    stalled_since.is_none_or(|since| since.plus_seconds(deadline) >= self.now);
                Some(NotReady {
                    message: message.clone(),
                    retriable,
                    quiet: false,
                })
            }
            Readiness::Failed { message } => Some(NotReady {
                message: message.clone(),
                retriable: false,
                quiet: false,
            }),
            Readiness::Unobserved { message } => Some(NotReady {
                message: message.clone(),
                retriable: true,
                quiet: true,
            }),
        }
    }

    /// A retriable readiness problem: a Warning event, or a log line when it
    /// is only the controller catching up.
    fn not_ready(&mut self, err: NotReady) {
        if err.quiet {
            self.note(err.message);
        } else {
            self.warning(err.message);
        }
    }

    /// Target changed since the last sync (reverting to the promoted spec does not count).
    fn revision_changed(&self) -> bool {
        super::context::revision_changed(&self.obs.revision, self.status)
    }

    fn advance(&mut self) -> Step<()> {
        let spec = self.spec;
        let phase = self.status.phase;
        if let Some(request) = self.unanswered_request().cloned() {
            return self.handle_request(&request);
        }
        if spec.suspend {
            self.normal(text::suspended());
            return Ok(());
        }
        match phase {
            Phase::Initializing => return self.initialize(),
            Phase::Terminating | Phase::Terminated => return Ok(()),
            Phase::Failed => self.resync_revision(),
            _ => {}
        }
        if !phase.is_active() && !self.revision_changed() {
            return Ok(());
        }

        if !spec.skip_analysis
            && let Some(err) = self.readiness(&self.obs.primary)
        {
            if err.retriable {
                self.not_ready(err);
            } else if matches!(phase, Phase::Promoting | Phase::Finalising) {
                self.fail_promotion(&err.message);
            } else {
                self.rollback();
            }
            return Ok(());
        }

        // A new revision: gate on confirm-rollout, then only scale the canary up.
        if !matches!(
            phase,
            Phase::Progressing | Phase::WaitingPromotion | Phase::Promoting | Phase::Finalising
        ) {
            if self.confirm_rollout()? {
                self.normal(text::scaling_up(spec));
                self.alert(alert_text::NEW_REVISION, Severity::Info, true);
                self.effect(Effect::ScaleCanaryUp);
                self.sync_status(Phase::Progressing, 0, 0, 0);
                self.clear_checks();
            }
            return Ok(());
        }

        if matches!(phase, Phase::Progressing | Phase::WaitingPromotion) && self.revision_changed()
        {
            self.normal(text::restarting(spec));
            self.set_routes(100, 0, false);
            self.sync_status(Phase::Progressing, 0, 0, 0);
            self.clear_checks();
            return Ok(());
        }

        if let Some(err) = self.readiness(&self.obs.canary) {
            let retriable = err.retriable;
            self.not_ready(err);
            if !retriable {
                self.rollback();
            }
            return Ok(());
        }

        if spec.skip_analysis {
            if self.status.failed_checks >= spec.analysis.threshold() {
                // Flagger prints the (nil) readiness error here.
                self.warning(text::rolling_back_deadline(spec, "<nil>"));
                self.alert(
                    alert_text::deadline_exceeded("<nil>"),
                    Severity::Error,
                    false,
                );
                self.rollback();
            } else {
                self.promote_without_analysis();
            }
            return Ok(());
        }

        if matches!(
            phase,
            Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion
        ) && self.rollback_requested()?
        {
            self.warning(text::rolling_back_webhook(spec));
            self.alert(alert_text::MANUAL_ROLLBACK, Severity::Warn, false);
            self.rollback();
            return Ok(());
        }

        match phase {
            Phase::Promoting => {
                self.effect(Effect::ReconcilePrimaryScaler);
                self.promotion_traffic_shift();
                return Ok(());
            }
            Phase::Finalising => {
                self.finalise();
                return Ok(());
            }
            _ => {}
        }

        // Rollback waits for the tick after the threshold was reached.
        if self.status.failed_checks >= spec.analysis.threshold() {
            self.rollback();
            return Ok(());
        }

        self.analyse_and_step()
    }

    /// First tick of a Canary: wait for the primary, park the target at zero.
    fn initialize(&mut self) -> Step<()> {
        let spec = self.spec;
        if !spec.skip_analysis {
            match self.metric_providers()? {
                Ok(()) => self.normal(text::providers_available()),
                Err(err) => self.warning(text::providers_error(err)),
            }
            if let Some(err) = self.readiness(&self.obs.primary) {
                let retriable = err.retriable;
                self.not_ready(err);
                if !retriable {
                    self.rollback();
                }
                return Ok(());
            }
        }
        self.effect(Effect::ScaleCanaryToZero);
        self.sync_status(Phase::Initialized, 0, 0, 0);
        self.normal(text::initialization_done(spec));
        self.alert(
            alert_text::initialized(&spec.target.kind),
            Severity::Info,
            true,
        );
        Ok(())
    }

    /// Pre-rollout hooks on the first tick, the analysis on later ones, then
    /// one step of the strategy.
    fn analyse_and_step(&mut self) -> Step<()> {
        let spec = self.spec;
        let analysis = &spec.analysis;
        let routes = self.obs.routes;
        let first_tick = routes.canary == 0
            && self.status.iterations == 0
            && !(analysis.mirror && routes.mirrored);
        let passed = if first_tick {
            self.normal(text::starting_analysis(spec));
            self.pre_rollout()?
        } else {
            self.analysis()?
        };
        if !passed {
            self.set_failed_checks(self.status.failed_checks + 1);
            return Ok(());
        }

        let mut strategy = analysis.strategy();
        let mut iterations = analysis.iterations;
        if spec.is_kubernetes_provider() {
            if strategy == Strategy::AbTesting {
                self.warning(text::kubernetes_no_ab());
                strategy = Strategy::BlueGreen;
            }
            if iterations < 1 {
                self.warning(text::kubernetes_no_progressive());
                self.warning(text::kubernetes_set_iterations(
                    KUBERNETES_DEFAULT_ITERATIONS,
                ));
                iterations = KUBERNETES_DEFAULT_ITERATIONS;
                strategy = Strategy::BlueGreen;
            }
        }

        match strategy {
            Strategy::AbTesting => self.run_ab(),
            Strategy::BlueGreen => self.run_blue_green(iterations),
            Strategy::Canary => {
                if next_step_weight(analysis, routes.canary) <= 0 {
                    return Ok(());
                }
                let gated = !routes.mirrored
                    && !matches!(
                        self.status.phase,
                        Phase::Promoting | Phase::WaitingPromotion | Phase::Finalising
                    );
                if gated && !self.confirm_traffic_increase()? {
                    return Ok(());
                }
                self.run_canary()
            }
        }
    }
}

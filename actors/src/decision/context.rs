//! The working state of one tick: inputs, the status being written, the
//! effects so far, and access to check answers (missing ones suspend the tick).

use crate::effects::Effect;
use crate::events::{Alert, Event, Severity};
use crate::model::observe::{CheckRequest, MetricAnswer, Observations, Revision, WebhookAnswer};
use crate::model::request::{CheckResult, HandledRequest};
use crate::model::spec::{CanarySpec, WebhookSpec};
use crate::model::status::{CanaryStatus, Phase, Timestamp};

use super::tick::TickOutcome;

/// `revision` differs from what `status` last synced (reverting the target
/// to the promoted spec does not count).
pub(crate) fn revision_changed(revision: &Revision, status: &CanaryStatus) -> bool {
    let spec_changed = status.last_applied_spec.is_empty()
        || (revision.spec_hash != status.last_promoted_spec
            && revision.spec_hash != status.last_applied_spec);
    spec_changed || revision.tracked_configs != status.tracked_configs
}

/// The tick needs this check answered before it can go on.
#[derive(Debug)]
pub(crate) struct Pending(pub CheckRequest);

pub(crate) type Step<T> = Result<T, Pending>;

pub(crate) struct Ctx<'a> {
    pub spec: &'a CanarySpec,
    /// The status as read at the start of the tick. Like Flagger's in-memory
    /// Canary it is not updated by this tick's writes.
    pub status: &'a CanaryStatus,
    pub obs: &'a Observations,
    pub now: Timestamp,
    next: CanaryStatus,
    written: bool,
    effects: Vec<Effect>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        spec: &'a CanarySpec,
        status: &'a CanaryStatus,
        obs: &'a Observations,
        now: Timestamp,
    ) -> Ctx<'a> {
        Ctx {
            spec,
            status,
            obs,
            now,
            next: status.clone(),
            written: false,
            effects: Vec::new(),
        }
    }

    pub fn finish(mut self) -> TickOutcome {
        // Every status write stamps lastTransitionTime.
        if self.written {
            self.next.last_transition_time = Some(self.now);
        }
        // Flagger ticks idle canaries too; Serin's sleep, so say when a
        // sleeping one still has a new revision to pick up (its primary was
        // not ready, say) and must be looked at again next interval.
        let idle = !self.next.phase.is_active()
            && !matches!(
                self.next.phase,
                Phase::Initializing | Phase::Terminating | Phase::Terminated
            );
        let revisit =
            idle && !self.spec.suspend && revision_changed(&self.obs.revision, &self.next);
        TickOutcome {
            next_status: self.next,
            effects: self.effects,
            revisit,
        }
    }

    // --- answers -------------------------------------------------------

    pub fn webhook(&self, index: usize, phase: Phase) -> Step<&'a WebhookAnswer> {
        match self.obs.answers.webhooks.get(&index) {
            Some(answer) => Ok(answer),
            None => {
                let hook = self.spec.analysis.webhooks.get(index);
                Err(Pending(CheckRequest::Webhook {
                    index,
                    name: hook.map(|h| h.name.clone()).unwrap_or_default(),
                    hook_type: hook.map_or(crate::model::spec::HookType::Rollout, |h| h.hook_type),
                    phase,
                }))
            }
        }
    }

    pub fn metric(&self, index: usize) -> Step<&'a MetricAnswer> {
        match self.obs.answers.metrics.get(&index) {
            Some(answer) => Ok(answer),
            None => Err(Pending(CheckRequest::Metric {
                index,
                name: self
                    .spec
                    .analysis
                    .metrics
                    .get(index)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
            })),
        }
    }

    pub fn metric_providers(&self) -> Step<&'a Result<(), String>> {
        self.obs
            .answers
            .metric_providers
            .as_ref()
            .ok_or(Pending(CheckRequest::MetricProviders))
    }

    // --- effects -------------------------------------------------------

    pub fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    pub fn normal(&mut self, message: String) {
        self.effects.push(Effect::Event(Event::normal(message)));
    }

    pub fn warning(&mut self, message: String) {
        self.effects.push(Effect::Event(Event::warning(message)));
    }

    pub fn note(&mut self, message: String) {
        self.effects.push(Effect::Note(message));
    }

    pub fn event(&mut self, event: Event) {
        self.effects.push(Effect::Event(event));
    }

    pub fn alert(&mut self, message: impl Into<String>, severity: Severity, with_metadata: bool) {
        self.effects
            .push(Effect::Alert(Alert::new(message, severity, with_metadata)));
    }

    pub fn set_routes(&mut self, primary: i32, canary: i32, mirrored: bool) {
        self.session_cookies(canary);
        self.effects.push(Effect::SetRoutes {
            primary,
            canary,
            mirrored,
        });
    }

    /// Flagger's session affinity bookkeeping, done with the routes: a run
    /// that sends traffic to the canary gets its cookies (kept for the whole
    /// run); back at weight 0 the canary cookie becomes the previous one, for
    /// the router to expire.
    fn session_cookies(&mut self, canary: i32) {
        let Some(affinity) = &self.spec.analysis.session_affinity else {
            return;
        };
        let seed = &self.obs.cookie_seed;
        let (first, second) = seed.split_at(seed.len() / 2);
        let cookies = &mut self.next.session;
        if canary != 0 {
            if cookies.canary.is_none() {
                cookies.canary = Some(format!("{}={first}", affinity.cookie_name));
            }
            if let Some(name) = affinity.primary_cookie_name.as_deref()
                && cookies.primary.is_none()
            {
                cookies.primary = Some(format!("{name}={second}"));
            }
        } else if let Some(cookie) = cookies.canary.take() {
            cookies.previous = Some(cookie);
        }
    }

    // --- status writes (Flagger's SyncStatus / SetStatus* helpers) ------

    /// Full sync: counters from the arguments, revision from the target as observed.
    pub fn sync_status(&mut self, phase: Phase, weight: i32, failed: i32, iterations: i32) {
        let revision = &self.obs.revision;
        self.next.phase = phase;
        self.next.canary_weight = weight;
        self.next.failed_checks = failed;
        self.next.iterations = iterations;
        self.next.last_applied_spec = revision.spec_hash.clone();
        self.next.tracked_configs = revision.tracked_configs.clone();
        if phase == Phase::Initialized {
            self.next.last_promoted_spec = revision.spec_hash.clone();
        }
        self.written = true;
    }

    /// Phase change; counters reset except while a run is moving forward.
    pub fn set_phase(&mut self, phase: Phase) {
        self.next.phase = phase;
        if !matches!(
            phase,
            Phase::Progressing | Phase::Waiting | Phase::Promoting
        ) {
            self.next.canary_weight = 0;
            self.next.iterations = 0;
            if phase == Phase::WaitingPromotion {
                self.next.iterations = self.spec.analysis.iterations - 1;
            }
        }
        if matches!(phase, Phase::Initialized | Phase::Succeeded) {
            self.next.last_promoted_spec = self.next.last_applied_spec.clone();
        }
        self.written = true;
    }

    pub fn set_weight(&mut self, weight: i32) {
        self.next.canary_weight = weight;
        self.written = true;
    }

    pub fn set_iterations(&mut self, iterations: i32) {
        self.next.iterations = iterations;
        self.written = true;
    }

    pub fn set_failed_checks(&mut self, failed: i32) {
        self.next.failed_checks = failed;
        self.written = true;
    }

    /// Answers a command-line request (no transition: the phase, if the
    /// request changes it, stamps the time).
    pub fn answer(&mut self, handled: HandledRequest) {
        self.next.last_request = Some(handled);
    }

    /// Keeps a check's latest result, one entry per name and kind. Not a
    /// transition, so `lastTransitionTime` stays.
    pub fn record_check(&mut self, check: CheckResult) {
        let checks = &mut self.next.checks;
        match checks
            .iter_mut()
            .find(|c| c.name == check.name && c.kind == check.kind)
        {
            Some(slot) => *slot = check,
            None => checks.push(check),
        }
    }

    /// A webhook's answer as a check.
    pub fn record_hook(&mut self, hook: &WebhookSpec, passed: bool, message: Option<&str>) {
        self.record_check(CheckResult {
            name: hook.name.clone(),
            kind: hook.hook_type.as_str().to_owned(),
            passed,
            value: None,
            min: None,
            max: None,
            message: message.map(str::to_owned),
            at: self.now,
        });
    }

    /// A new run starts with no results.
    pub fn clear_checks(&mut self) {
        self.next.checks.clear();
    }

    /// Failed canaries re-sync their revision every tick without changing phase,
    /// so re-applying a failed spec after a revert counts as new.
    pub fn resync_revision(&mut self) {
        self.next.last_applied_spec = self.obs.revision.spec_hash.clone();
        self.next.tracked_configs = self.obs.revision.tracked_configs.clone();
        self.written = true;
    }
}

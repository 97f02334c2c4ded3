//! A tiny fake world that drives `tick` the way an actor would: it answers
//! checks from scripted tables, applies effects to fake ports, and keeps the
//! event log.

use std::collections::{BTreeMap, VecDeque};

use crate::decision::{TickOutcome, TickStep, tick};
use crate::effects::Effect;
use crate::events::{Alert, Event, EventType, text};
use crate::model::observe::{
    CheckRequest, MetricAnswer, Observations, Readiness, Revision, Routes, WebhookAnswer,
};
use crate::model::spec::{
    AnalysisSpec, CanarySpec, HookType, MetricSpec, TargetRef, TemplateRef, ThresholdRange,
    WebhookSpec,
};
use crate::model::status::{CanaryStatus, Phase, Timestamp};

/// Interval between simulated ticks, seconds.
pub const TICK_SECONDS: i64 = 60;

pub struct World {
    pub spec: CanarySpec,
    pub status: CanaryStatus,
    pub revision: Revision,
    pub routes: Routes,
    pub primary: Readiness,
    pub canary: Readiness,
    pub canary_up: bool,
    /// Spec hash running on the primary.
    pub primary_spec: String,
    /// Scripted webhook answers by hook name; the last one repeats. Default `Ok`.
    pub hook_answers: BTreeMap<String, VecDeque<WebhookAnswer>>,
    /// Scripted metric answers by metric name; the last one repeats. Default 100.
    pub metric_answers: BTreeMap<String, VecDeque<MetricAnswer>>,
    pub checks: Vec<CheckRequest>,
    pub events: Vec<Event>,
    pub alerts: Vec<Alert>,
    pub post_rollout_runs: Vec<Phase>,
    pub now: i64,
}

/// Canary `podinfo` in `test` with the nginx provider and the two builtin metrics.
pub fn podinfo(analysis: AnalysisSpec) -> CanarySpec {
    CanarySpec {
        name: "podinfo".into(),
        namespace: "test".into(),
        target: TargetRef {
            kind: "Deployment".into(),
            name: "podinfo".into(),
        },
        provider: "nginx".into(),
        metrics_provider: "nginx".into(),
        analysis,
        progress_deadline_seconds: None,
        skip_analysis: false,
        suspend: false,
        request: None,
        source: Default::default(),
    }
}

pub fn canary_analysis(step: i32, max: i32, threshold: i32) -> AnalysisSpec {
    AnalysisSpec {
        interval: "1m".into(),
        threshold,
        step_weight: step,
        max_weight: max,
        metrics: vec![
            builtin("request-success-rate", Some(99.0), None),
            builtin("request-duration", None, Some(500.0)),
        ],
        ..AnalysisSpec::default()
    }
}

pub fn builtin(name: &str, min: Option<f64>, max: Option<f64>) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        interval: "1m".into(),
        threshold_range: Some(ThresholdRange { min, max }),
        ..MetricSpec::default()
    }
}

pub fn templated(name: &str, max: f64) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        interval: "1m".into(),
        threshold_range: Some(ThresholdRange {
            min: None,
            max: Some(max),
        }),
        template_ref: Some(TemplateRef {
            name: name.into(),
            namespace: None,
        }),
        ..MetricSpec::default()
    }
}

pub fn hook(name: &str, kind: HookType) -> WebhookSpec {
    WebhookSpec::new(name, kind, "http://flagger-loadtester.test/")
}

impl World {
    pub fn new(spec: CanarySpec) -> World {
        World {
            spec,
            status: CanaryStatus::default(),
            revision: Revision {
                spec_hash: "v1".into(),
                tracked_configs: BTreeMap::new(),
            },
            routes: Routes::default(),
            primary: Readiness::Ready,
            canary: Readiness::Ready,
            canary_up: true,
            primary_spec: "v1".into(),
            hook_answers: BTreeMap::new(),
            metric_answers: BTreeMap::new(),
            checks: Vec::new(),
            events: Vec::new(),
            alerts: Vec::new(),
            post_rollout_runs: Vec::new(),
            now: 1_600_000_000,
        }
    }

    /// Initialised canary (one tick), event log cleared.
    pub fn initialized(spec: CanarySpec) -> World {
        let mut world = World::new(spec);
        world.tick();
        assert_eq!(world.status.phase, Phase::Initialized);
        world.events.clear();
        world.alerts.clear();
        world
    }

    pub fn script_hook(&mut self, name: &str, answers: Vec<WebhookAnswer>) {
        self.hook_answers.insert(name.into(), answers.into());
    }

    pub fn script_metric(&mut self, name: &str, answers: Vec<MetricAnswer>) {
        self.metric_answers.insert(name.into(), answers.into());
    }

    pub fn deploy(&mut self, hash: &str) {
        self.revision.spec_hash = hash.into();
    }

    pub fn phase(&self) -> Phase {
        self.status.phase
    }

    pub fn messages(&self) -> Vec<String> {
        self.events.iter().map(|e| e.message.clone()).collect()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.event_type == EventType::Warning)
            .map(|e| e.message.clone())
            .collect()
    }

    fn next_answer<T: Clone>(queue: Option<&mut VecDeque<T>>) -> Option<T> {
        let queue = queue?;
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    }

    fn hook_answer(&mut self, name: &str) -> WebhookAnswer {
        Self::next_answer(self.hook_answers.get_mut(name)).unwrap_or(WebhookAnswer::Ok)
    }

    /// One tick: replay until done, then apply the effects.
    pub fn tick(&mut self) -> TickOutcome {
        let mut obs = Observations {
            cookie_seed: "abcdefghijKLMNOPQRST".into(),
            revision: self.revision.clone(),
            primary: self.primary.clone(),
            canary: self.canary.clone(),
            routes: self.routes,
            answers: Default::default(),
        };
        let outcome = loop {
            match tick(&self.spec, &self.status, &obs, Timestamp(self.now)) {
                TickStep::Done(outcome) => break *outcome,
                TickStep::NeedCheck(request) => {
                    self.checks.push(request.clone());
                    match request {
                        CheckRequest::Webhook { index, name, .. } => {
                            let answer = self.hook_answer(&name);
                            obs.answers.record_webhook(index, answer);
                        }
                        CheckRequest::Metric { index, name } => {
                            let answer = Self::next_answer(self.metric_answers.get_mut(&name))
                                .unwrap_or(MetricAnswer::Value(100.0));
                            obs.answers.record_metric(index, answer);
                        }
                        CheckRequest::MetricProviders => {
                            obs.answers.metric_providers = Some(Ok(()));
                        }
                    }
                }
            }
        };
        for effect in &outcome.effects {
            self.apply(effect);
        }
        self.status = outcome.next_status.clone();
        self.now += TICK_SECONDS;
        outcome
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::ScaleCanaryUp => self.canary_up = true,
            Effect::ScaleCanaryToZero => self.canary_up = false,
            Effect::SetRoutes {
                primary,
                canary,
                mirrored,
            } => {
                self.routes = Routes {
                    primary: *primary,
                    canary: *canary,
                    mirrored: *mirrored,
                }
            }
            Effect::PromoteSpec => self.primary_spec = self.revision.spec_hash.clone(),
            Effect::ReconcilePrimaryScaler
            | Effect::CountSuccess { .. }
            | Effect::CountFailure
            | Effect::Note(_) => {}
            Effect::RunPostRolloutHooks { phase } => {
                self.post_rollout_runs.push(*phase);
                let hooks: Vec<String> = self
                    .spec
                    .analysis
                    .hooks_of(HookType::PostRollout)
                    .map(|(_, h)| h.name.clone())
                    .collect();
                for name in hooks {
                    match self.hook_answer(&name) {
                        WebhookAnswer::Ok => self
                            .events
                            .push(Event::normal(text::post_rollout_passed(&name))),
                        WebhookAnswer::Failed(err) => {
                            self.events
                                .push(Event::warning(text::post_rollout_failed(&name, &err)));
                            break;
                        }
                    }
                }
            }
            Effect::Event(event) => self.events.push(event.clone()),
            Effect::Alert(alert) => self.alerts.push(alert.clone()),
        }
    }

    /// Ticks until the phase leaves `Progressing`-like states or `limit` is hit,
    /// returning (phase, status weight) after each tick.
    pub fn run(&mut self, limit: usize) -> Vec<(Phase, i32)> {
        let mut out = Vec::new();
        for _ in 0..limit {
            self.tick();
            out.push((self.status.phase, self.status.canary_weight));
            if matches!(self.status.phase, Phase::Succeeded | Phase::Failed) {
                break;
            }
        }
        out
    }
}

//! One analysis step: observe, replay `tick` through the checks, perform the
//! effects in order, persist. Runs on a snapshot of spec and status.
//!
//! Every port call goes through the port's shared actor ([`Shared`]), in the
//! canary's namespace's line, ordered by when this step started. The step
//! may wait in those lines until `step_timeout` has passed since it started;
//! each call, once started, has its own budget. An error of Serin's own
//! (a full line, a call that could not start in time, a port actor gone, a
//! panicking adapter) ends the step without persisting anything: it decides
//! nothing, and the step runs again at the next tick.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::shared::{CallOptions, Shared};
use super::{Services, Stats};
use crate::decision::{TickOutcome, TickStep, tick};
use crate::effects::Effect;
use crate::events::{Event, alert_fields, text};
use crate::model::observe::{
    Answers, CheckRequest, MetricAnswer, Observations, Routes, WebhookAnswer,
};
use crate::model::spec::{CanarySpec, HookType, WebhookSpec};
use crate::model::status::{CanaryStatus, Phase};
use crate::ports::{
    CanaryKey, MetricQuery, Notification, PortError, PortFuture, Target, WebhookCall,
};

/// Why a step ended without persisting a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("observing the workload: {0}")]
    Observe(PortError),
    /// A metric, webhook or provider check got no answer because of Serin.
    #[error("{check}: {source}")]
    Check { check: String, source: PortError },
    #[error("{effect} failed: {source}")]
    Effect {
        effect: &'static str,
        source: PortError,
    },
    #[error("persisting status: {0}")]
    Persist(PortError),
    #[error("tick asked for more checks than the spec declares")]
    NoProgress,
    /// The step itself panicked (caught by the canary actor).
    #[error("the step panicked: {0}")]
    Panicked(String),
}

impl StepError {
    fn port_error(&self) -> Option<&PortError> {
        match self {
            StepError::Observe(e)
            | StepError::Check { source: e, .. }
            | StepError::Effect { source: e, .. }
            | StepError::Persist(e) => Some(e),
            StepError::NoProgress | StepError::Panicked(_) => None,
        }
    }

    /// The panic message, when the step or an adapter it called panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            StepError::Panicked(message) => Some(message),
            other => match other.port_error() {
                Some(PortError::Panicked(message)) => Some(message),
                _ => None,
            },
        }
    }

    /// Serin's own congestion: the step is deferred, nothing was decided.
    pub fn is_deferral(&self) -> bool {
        self.panic_message().is_none() && self.port_error().is_some_and(PortError::is_serins)
    }
}

/// Who this step is and how long it may wait in Serin's lines.
struct Step<'a> {
    services: &'a Services,
    target: Target,
    started: Instant,
    queue_deadline: Instant,
}

impl Step<'_> {
    fn options(&self, budget: Duration) -> CallOptions<'_> {
        CallOptions {
            tenant: &self.target.key.namespace,
            step_started: self.started,
            queue_deadline: self.queue_deadline,
            budget,
        }
    }

    /// A call through `port`'s line with the default call budget.
    async fn call<P, T>(
        &self,
        port: &Shared<P>,
        call: impl FnOnce(&P, Instant) -> PortFuture<T> + Send + 'static,
    ) -> Result<T, PortError>
    where
        P: ?Sized + Send + Sync + 'static,
        T: Send + 'static,
    {
        port.call(self.options(self.services.config.call_timeout), call)
            .await
    }

    /// A workload call on this step's target.
    async fn workload<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn crate::ports::WorkloadPort, &Target, Instant) -> PortFuture<T>
        + Send
        + 'static,
    ) -> Result<T, PortError> {
        let target = self.target.clone();
        self.call(&self.services.workload, move |p, d| call(p, &target, d))
            .await
    }
}

/// What a step that ended without an error leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepDone {
    /// The new status, when one was persisted.
    pub persisted: Option<CanaryStatus>,
    /// See [`TickOutcome::revisit`].
    pub revisit: bool,
}

/// Runs one step.
pub(crate) async fn run(
    services: Services,
    spec: Arc<CanarySpec>,
    status: CanaryStatus,
) -> Result<StepDone, StepError> {
    Stats::bump(&services.stats.ticks);
    let started = Instant::now();
    let step = Step {
        services: &services,
        target: Target::of(&spec, &status),
        started,
        queue_deadline: started + services.config.step_timeout,
    };
    let now = services.clock.now();

    let observations = match observe(&step).await {
        Ok(observations) => observations,
        Err(err) => {
            // Flagger reports workload and router errors as Warning events.
            if let StepError::Observe(source @ (PortError::Failed(_) | PortError::NotFound(_))) =
                &err
            {
                let event = Event::warning(source.to_string());
                record(&services, &spec, &status, &event).await;
            }
            return Err(err);
        }
    };
    let outcome = decide(&step, &spec, &status, observations, now).await?;
    perform(&step, &spec, &outcome).await?;
    // Flagger times the ticks of a run, not the idle checks.
    if status.phase.is_active()
        && let Some(observer) = &services.observer
    {
        observer.analysis_step(&step.target.key, started.elapsed());
    }

    let revisit = outcome.revisit;
    if outcome.next_status == status {
        return Ok(StepDone {
            persisted: None,
            revisit,
        });
    }
    // The write gets its own budget, whatever the lines cost the step.
    let deadline = Instant::now() + services.config.call_timeout;
    services
        .status
        .persist(&step.target.key, &outcome.next_status, deadline)
        .await
        .map_err(StepError::Persist)?;
    Ok(StepDone {
        persisted: Some(outcome.next_status),
        revisit,
    })
}

/// A step future that adds its poll time (busy) and its wall time to
/// [`Stats`] when it completes. Boxed so the wrapper stays `Unpin`.
pub(crate) struct Timed<F> {
    inner: Pin<Box<F>>,
    stats: Arc<Stats>,
    busy: Duration,
    first_poll: Option<std::time::Instant>,
}

impl<F: Future> Timed<F> {
    pub(crate) fn new(inner: F, stats: Arc<Stats>) -> Self {
        Timed {
            inner: Box::pin(inner),
            stats,
            busy: Duration::ZERO,
            first_poll: None,
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // std's clock: this measures real thread time even under paused tokio time.
        let start = std::time::Instant::now();
        let first = *this.first_poll.get_or_insert(start);
        let poll = this.inner.as_mut().poll(cx);
        let end = std::time::Instant::now();
        this.busy += end.duration_since(start);
        if poll.is_ready() {
            this.stats.add_step(this.busy, end.duration_since(first));
        }
        poll
    }
}

async fn observe(step: &Step<'_>) -> Result<Observations, StepError> {
    // Flagger reconciles primary and services on every tick before deciding.
    step.workload(|p, t, d| p.bootstrap(t, d))
        .await
        .map_err(StepError::Observe)?;
    let state = step
        .workload(|p, t, d| p.observe(t, d))
        .await
        .map_err(StepError::Observe)?;
    // Flagger reconciles the mesh objects after the primary, before routing.
    let router = &step.services.router;
    let t = step.target.clone();
    step.call(router, move |p, d| p.reconcile(&t, d))
        .await
        .map_err(StepError::Observe)?;
    let t = step.target.clone();
    let routes = step
        .call(router, move |p, d| p.get_routes(&t, d))
        .await
        .map_err(StepError::Observe)?;
    Ok(Observations {
        revision: state.revision,
        primary: state.primary,
        canary: state.canary,
        routes,
        answers: Answers::default(),
        cookie_seed: cookie_seed(),
    })
}

/// Twenty letters for new session affinity cookies, from a randomly keyed
/// hasher: a cookie value must not be guessable from the last one, it need
/// not be a secret.
fn cookie_seed() -> String {
    use std::hash::{BuildHasher, Hasher};
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let keyed = std::collections::hash_map::RandomState::new();
    let mut seed = String::with_capacity(20);
    for half in 0..2_u64 {
        let mut hasher = keyed.build_hasher();
        hasher.write_u64(half);
        let mut bits = hasher.finish();
        for _ in 0..10 {
            seed.push(char::from(LETTERS[(bits % 52) as usize]));
            bits /= 52;
        }
    }
    seed
}

/// The replay loop of `decision::tick`.
async fn decide(
    step: &Step<'_>,
    spec: &CanarySpec,
    status: &CanaryStatus,
    mut obs: Observations,
    now: crate::model::status::Timestamp,
) -> Result<TickOutcome, StepError> {
    let analysis = &spec.analysis;
    // Each check is asked at most once per tick; more means a bug, not a hang.
    let limit = analysis.webhooks.len() + analysis.metrics.len() + 2;
    for _ in 0..=limit {
        match tick(spec, status, &obs, now) {
            TickStep::Done(outcome) => return Ok(*outcome),
            TickStep::NeedCheck(request) => {
                answer(step, spec, status, request, &mut obs.answers).await?;
            }
        }
    }
    Err(StepError::NoProgress)
}

/// Asks one check. The provider's failures are answers (failed checks, as
/// in Flagger); Serin's own end the step.
async fn answer(
    step: &Step<'_>,
    spec: &CanarySpec,
    status: &CanaryStatus,
    request: CheckRequest,
    answers: &mut Answers,
) -> Result<(), StepError> {
    let key = &step.target.key;
    let serins = |check: String| {
        move |source: PortError| StepError::Check {
            check: check.clone(),
            source,
        }
    };
    match request {
        CheckRequest::Webhook { index, phase, .. } => {
            let result = match spec.analysis.webhooks.get(index) {
                Some(hook) => {
                    let name = hook.name.clone();
                    let call = webhook_call(key, hook.clone(), phase, status);
                    call_webhook(step, call)
                        .await
                        .map_err(serins(format!("webhook {name}")))?
                }
                None => WebhookAnswer::Failed(format!("no webhook at index {index}")),
            };
            answers.record_webhook(index, result);
        }
        CheckRequest::Metric { index, name } => {
            let result = match spec.analysis.metrics.get(index) {
                Some(metric) => {
                    let query = MetricQuery {
                        key: key.clone(),
                        source: spec.source.clone(),
                        target: spec.target.clone(),
                        provider: spec.metrics_provider.clone(),
                        metric: metric.clone(),
                    };
                    let metrics = &step.services.metrics;
                    match step.call(metrics, move |p, d| p.check(&query, d)).await {
                        Ok(answer) => answer,
                        Err(err) if err.is_serins() => {
                            return Err(serins(format!("metric {name}"))(err));
                        }
                        Err(err) => MetricAnswer::QueryFailed(err.to_string()),
                    }
                }
                None => MetricAnswer::QueryFailed(format!("no metric {name} at index {index}")),
            };
            answers.record_metric(index, result);
        }
        CheckRequest::MetricProviders => {
            let (key, metrics) = (key.clone(), spec.analysis.metrics.clone());
            let source = spec.source.clone();
            let port = &step.services.metrics;
            let result = match step
                .call(port, move |p, d| {
                    p.providers_available(&key, &source, &metrics, d)
                })
                .await
            {
                Ok(result) => result,
                Err(err) if err.is_serins() => {
                    return Err(serins("metric providers".to_string())(err));
                }
                Err(err) => Err(err.to_string()),
            };
            answers.metric_providers = Some(result);
        }
    }
    Ok(())
}

fn webhook_call(
    key: &CanaryKey,
    hook: WebhookSpec,
    phase: Phase,
    status: &CanaryStatus,
) -> WebhookCall {
    WebhookCall {
        key: key.clone(),
        hook,
        phase,
        checksum: checksum(status),
        event: None,
    }
}

/// The payload's `checksum`: like Flagger's, a hash of the tracked configs
/// and `lastAppliedSpec`, so it changes when either does (FNV-1a, 64 bit).
pub(crate) fn checksum(status: &CanaryStatus) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (key, value) in &status.tracked_configs {
        feed(key.as_bytes());
        feed(b"=");
        feed(value.as_bytes());
        feed(b";");
    }
    feed(b"|");
    feed(status.last_applied_spec.as_bytes());
    format!("{hash:016x}")
}

/// A webhook runs as long as its own timeout and retries allow, at least
/// the default call budget.
fn webhook_budget(services: &Services, hook: &WebhookSpec) -> Duration {
    let attempts = u32::try_from(hook.retries.max(0))
        .unwrap_or(0)
        .saturating_add(1);
    let own = hook
        .timeout()
        .saturating_mul(attempts)
        // go-retryablehttp's backoff between attempts is at most 30 s.
        .saturating_add(Duration::from_secs(30).saturating_mul(attempts - 1));
    own.max(services.config.call_timeout)
}

/// Calls a webhook: `Ok` with the hook's answer (failures included), `Err`
/// only for Serin's own trouble.
async fn call_webhook(step: &Step<'_>, call: WebhookCall) -> Result<WebhookAnswer, PortError> {
    let budget = webhook_budget(step.services, &call.hook);
    let webhooks = &step.services.webhooks;
    match webhooks
        .call(step.options(budget), move |p, d| p.call(&call, d))
        .await
    {
        Ok(answer) => Ok(answer),
        Err(err) if err.is_serins() => Err(err),
        Err(err) => Ok(WebhookAnswer::Failed(err.to_string())),
    }
}

/// Performs the effects in order; a workload or router failure stops here.
async fn perform(
    step: &Step<'_>,
    spec: &CanarySpec,
    outcome: &TickOutcome,
) -> Result<(), StepError> {
    let services = step.services;
    let key = &step.target.key;
    // A rollback's writes jump any queue in front of the API server.
    let urgent = outcome.next_status.phase == Phase::Failed && !outcome.effects.is_empty();
    let target = if urgent {
        step.target.clone().urgent()
    } else {
        step.target.clone()
    };
    for effect in &outcome.effects {
        let t = target.clone();
        let result = match effect {
            Effect::ScaleCanaryUp => {
                step.call(&services.workload, move |p, d| p.scale_canary_up(&t, d))
                    .await
            }
            Effect::ScaleCanaryToZero => {
                step.call(&services.workload, move |p, d| {
                    p.scale_canary_to_zero(&t, d)
                })
                .await
            }
            Effect::PromoteSpec => {
                step.call(&services.workload, move |p, d| p.promote(&t, d))
                    .await
            }
            Effect::ReconcilePrimaryScaler => {
                step.call(&services.workload, move |p, d| {
                    p.reconcile_primary_scaler(&t, d)
                })
                .await
            }
            Effect::SetRoutes {
                primary,
                canary,
                mirrored,
            } => {
                let routes = Routes {
                    primary: *primary,
                    canary: *canary,
                    mirrored: *mirrored,
                };
                let mut t = t;
                t.session = outcome.next_status.session.clone();
                step.call(&services.router, move |p, d| p.set_routes(&t, routes, d))
                    .await
            }
            Effect::RunPostRolloutHooks { phase } => {
                post_rollout(step, spec, outcome, *phase).await;
                Ok(())
            }
            Effect::Event(event) => {
                record(services, spec, &outcome.next_status, event).await;
                Ok(())
            }
            Effect::Note(message) => {
                tracing::info!(canary = %key, "{message}");
                Ok(())
            }
            Effect::Alert(alert) => {
                let notification = Notification {
                    key: key.clone(),
                    alert: alert.clone(),
                    providers: spec.analysis.alerts.clone(),
                    fields: if alert.with_metadata {
                        alert_fields(spec)
                    } else {
                        Vec::new()
                    },
                };
                notify(services, notification);
                Ok(())
            }
            Effect::CountSuccess { skipped } => {
                Stats::bump(&services.stats.successes);
                if let Some(observer) = &services.observer {
                    observer.run_succeeded(spec, *skipped);
                }
                Ok(())
            }
            Effect::CountFailure => {
                Stats::bump(&services.stats.failures);
                if let Some(observer) = &services.observer {
                    observer.run_failed(spec);
                }
                Ok(())
            }
        };
        result.map_err(|source| StepError::Effect {
            effect: effect_name(effect),
            source,
        })?;
    }
    Ok(())
}

/// Fire-and-forget: a slow or failing notifier costs the step nothing.
fn notify(services: &Services, notification: Notification) {
    let now = Instant::now();
    let budget = services.config.notify_timeout;
    let key = notification.key.clone();
    let options = CallOptions {
        tenant: &key.namespace,
        step_started: now,
        queue_deadline: now + budget,
        budget,
    };
    let send = services
        .notifier
        .call(options, move |p, d| p.send(&notification, d));
    let stats = services.stats.clone();
    services.io.spawn(async move {
        if let Err(err) = send.await {
            Stats::bump(&stats.notifications_dropped);
            tracing::warn!(canary = %key, error = %err, "notification not sent");
        }
    });
}

/// `post-rollout` hooks in order, stopping at the first failure.
async fn post_rollout(step: &Step<'_>, spec: &CanarySpec, outcome: &TickOutcome, phase: Phase) {
    let services = step.services;
    for (_, hook) in spec.analysis.hooks_of(HookType::PostRollout) {
        let call = webhook_call(&step.target.key, hook.clone(), phase, &outcome.next_status);
        let answer = match call_webhook(step, call).await {
            Ok(answer) => answer,
            // The outcome is decided; a hook Serin could not call is one that failed.
            Err(err) => WebhookAnswer::Failed(err.to_string()),
        };
        let event = match answer {
            WebhookAnswer::Ok => Event::normal(text::post_rollout_passed(&hook.name)),
            WebhookAnswer::Failed(err) => {
                let event = Event::warning(text::post_rollout_failed(&hook.name, &err));
                record(services, spec, &outcome.next_status, &event).await;
                return;
            }
        };
        record(services, spec, &outcome.next_status, &event).await;
    }
}

/// Events are best effort: a failed write is logged, the step goes on.
async fn record(services: &Services, spec: &CanarySpec, status: &CanaryStatus, event: &Event) {
    let key = CanaryKey::of(spec);
    let deadline = Instant::now() + services.config.call_timeout;
    if let Err(err) = services
        .events
        .record(&key, &spec.source, event, deadline)
        .await
    {
        tracing::warn!(canary = %key, error = %err, message = %event.message, "event not recorded");
    }
    // Event webhooks are fire-and-forget: their answer changes nothing.
    let own: Vec<_> = spec
        .analysis
        .hooks_of(HookType::Event)
        .map(|(_, hook)| hook)
        .collect();
    // Flagger sends to `-event-webhook` only when the Canary has no event hook.
    let hooks = if own.is_empty() {
        services.config.global_event_hook.iter().collect()
    } else {
        own
    };
    for hook in hooks {
        let mut call = webhook_call(&key, hook.clone(), status.phase, status);
        call.event = Some(event.clone());
        let now = Instant::now();
        let budget = services.config.notify_timeout;
        let options = CallOptions {
            tenant: &key.namespace,
            step_started: now,
            queue_deadline: now + budget,
            budget,
        };
        let send = services
            .webhooks
            .call(options, move |p, d| p.call(&call, d));
        let (key, name) = (key.clone(), hook.name.clone());
        services.io.spawn(async move {
            if let Err(err) = send.await {
                tracing::warn!(canary = %key, hook = %name, error = %err, "event webhook not sent");
            }
        });
    }
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::ScaleCanaryUp => "scale canary up",
        Effect::ScaleCanaryToZero => "scale canary to zero",
        Effect::SetRoutes { .. } => "set routes",
        Effect::PromoteSpec => "promote spec",
        Effect::ReconcilePrimaryScaler => "reconcile primary scaler",
        Effect::RunPostRolloutHooks { .. } => "post-rollout hooks",
        Effect::Event(_) => "record event",
        Effect::Note(_) => "log",
        Effect::Alert(_) => "send alert",
        Effect::CountSuccess { .. } => "count success",
        Effect::CountFailure => "count failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_checksum_follows_configs_and_spec() {
        let base = CanaryStatus {
            last_applied_spec: "abc".into(),
            ..CanaryStatus::default()
        };
        let mut configs = base.clone();
        configs
            .tracked_configs
            .insert("configmap/podinfo".into(), "1234".into());
        let mut spec = base.clone();
        spec.last_applied_spec = "abd".into();
        assert_eq!(checksum(&base), checksum(&base.clone()));
        assert_ne!(checksum(&base), checksum(&configs));
        assert_ne!(checksum(&base), checksum(&spec));
        assert_eq!(checksum(&base).len(), 16);
    }
}

//! One analysis step: observe, replay `tick` through the checks, perform the
//! effects in order, persist. Runs on a snapshot of spec and status.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use tokio::time::Instant;

use super::shared::{
    CallWebhook, CheckProviders, GetRoutes, Notify, ReconcileRoutes, RunMetric, SetRoutes,
};
use super::{Services, Stats};
use crate::decision::{TickOutcome, TickStep, tick};
use crate::effects::Effect;
use crate::events::{Event, alert_fields, text};
use crate::model::observe::{
    Answers, CheckRequest, MetricAnswer, Observations, Routes, WebhookAnswer,
};
use crate::model::spec::{CanarySpec, HookType};
use crate::model::status::{CanaryStatus, Phase};
use crate::ports::{
    CanaryKey, MetricQuery, Notification, PortError, PortFuture, Target, WebhookCall,
};

/// Why a step ended without persisting a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("observing the workload: {0}")]
    Observe(PortError),
    #[error("{effect} failed: {source}")]
    Effect {
        effect: &'static str,
        source: PortError,
    },
    #[error("persisting status: {0}")]
    Persist(PortError),
    #[error("tick asked for more checks than the spec declares")]
    NoProgress,
}

/// Runs one step. `Ok(Some(status))` when a new status was persisted.
pub(crate) async fn run(
    services: Services,
    spec: Arc<CanarySpec>,
    status: CanaryStatus,
) -> Result<Option<CanaryStatus>, StepError> {
    Stats::bump(&services.stats.ticks);
    let started = Instant::now();
    let deadline = started + services.config.step_timeout;
    let target = Target::of(&spec);
    let now = services.clock.now();

    let observations = match observe(&services, &target, deadline).await {
        Ok(observations) => observations,
        Err(err) => {
            // Flagger reports workload and router errors as Warning events.
            if let StepError::Observe(source @ (PortError::Failed(_) | PortError::NotFound(_))) =
                &err
            {
                let event = Event::warning(source.to_string());
                record(&services, &spec, &status, &event, deadline).await;
            }
            return Err(err);
        }
    };
    let outcome = decide(&services, &spec, &status, observations, now, deadline).await?;
    perform(&services, &spec, &target, &outcome, deadline).await?;
    // Flagger times the ticks of a run, not the idle checks.
    if status.phase.is_active()
        && let Some(observer) = &services.observer
    {
        observer.analysis_step(&target.key, started.elapsed());
    }

    if outcome.next_status == status {
        return Ok(None);
    }
    services
        .status
        .persist(&target.key, &outcome.next_status, deadline)
        .await
        .map_err(StepError::Persist)?;
    Ok(Some(outcome.next_status))
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

/// Workload calls go straight to the port, behind the shared limiter.
fn workload<T: Send + 'static>(
    services: &Services,
    deadline: Instant,
    call: impl FnOnce() -> PortFuture<T> + Send + 'static,
) -> impl Future<Output = Result<T, PortError>> + Send + 'static {
    services.workload_limit.run(deadline, call)
}

/// `send` to a shared actor, folding mailbox errors into the port error.
async fn ask<A, M, T>(addr: &Addr<A>, msg: M) -> Result<T, PortError>
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message<Result = Result<T, PortError>> + Send + 'static,
    T: Send + 'static,
{
    addr.send(msg)
        .await
        .map_err(|err| PortError::Unavailable(err.to_string()))?
}

async fn observe(
    services: &Services,
    target: &Target,
    deadline: Instant,
) -> Result<Observations, StepError> {
    // Flagger reconciles primary and services on every tick before deciding.
    let port = services.workload.clone();
    let t = target.clone();
    workload(services, deadline, move || port.bootstrap(&t, deadline))
        .await
        .map_err(StepError::Observe)?;
    let port = services.workload.clone();
    let t = target.clone();
    let state = workload(services, deadline, move || port.observe(&t, deadline))
        .await
        .map_err(StepError::Observe)?;
    // Flagger reconciles the mesh objects after the primary, before routing.
    ask(
        &services.router,
        ReconcileRoutes {
            target: target.clone(),
            deadline,
        },
    )
    .await
    .map_err(StepError::Observe)?;
    let routes = ask(
        &services.router,
        GetRoutes {
            target: target.clone(),
            deadline,
        },
    )
    .await
    .map_err(StepError::Observe)?;
    Ok(Observations {
        revision: state.revision,
        primary: state.primary,
        canary: state.canary,
        routes,
        answers: Answers::default(),
    })
}

/// The replay loop of `decision::tick`.
async fn decide(
    services: &Services,
    spec: &CanarySpec,
    status: &CanaryStatus,
    mut obs: Observations,
    now: crate::model::status::Timestamp,
    deadline: Instant,
) -> Result<TickOutcome, StepError> {
    let analysis = &spec.analysis;
    // Each check is asked at most once per tick; more means a bug, not a hang.
    let limit = analysis.webhooks.len() + analysis.metrics.len() + 2;
    for _ in 0..=limit {
        match tick(spec, status, &obs, now) {
            TickStep::Done(outcome) => return Ok(outcome),
            TickStep::NeedCheck(request) => {
                answer(services, spec, status, request, &mut obs.answers, deadline).await;
            }
        }
    }
    Err(StepError::NoProgress)
}

async fn answer(
    services: &Services,
    spec: &CanarySpec,
    status: &CanaryStatus,
    request: CheckRequest,
    answers: &mut Answers,
    deadline: Instant,
) {
    let key = CanaryKey::of(spec);
    match request {
        CheckRequest::Webhook { index, phase, .. } => {
            let result = match spec.analysis.webhooks.get(index) {
                Some(hook) => {
                    let call = webhook_call(&key, hook.clone(), phase, status);
                    call_webhook(services, call, deadline).await
                }
                None => WebhookAnswer::Failed(format!("no webhook at index {index}")),
            };
            answers.record_webhook(index, result);
        }
        CheckRequest::Metric { index, name } => {
            let result = match spec.analysis.metrics.get(index) {
                Some(metric) => {
                    let query = MetricQuery {
                        key,
                        target: spec.target.clone(),
                        provider: spec.metrics_provider.clone(),
                        metric: metric.clone(),
                    };
                    ask(&services.metrics, RunMetric { query, deadline })
                        .await
                        .unwrap_or_else(|err| MetricAnswer::QueryFailed(err.to_string()))
                }
                None => MetricAnswer::QueryFailed(format!("no metric {name} at index {index}")),
            };
            answers.record_metric(index, result);
        }
        CheckRequest::MetricProviders => {
            let msg = CheckProviders {
                key,
                metrics: spec.analysis.metrics.clone(),
                deadline,
            };
            let result = ask(&services.metrics, msg)
                .await
                .unwrap_or_else(|err| Err(err.to_string()));
            answers.metric_providers = Some(result);
        }
    }
}

fn webhook_call(
    key: &CanaryKey,
    hook: crate::model::spec::WebhookSpec,
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

async fn call_webhook(services: &Services, call: WebhookCall, deadline: Instant) -> WebhookAnswer {
    ask(&services.webhooks, CallWebhook { call, deadline })
        .await
        .unwrap_or_else(|err| WebhookAnswer::Failed(err.to_string()))
}

/// Performs the effects in order; a workload or router failure stops here.
async fn perform(
    services: &Services,
    spec: &CanarySpec,
    target: &Target,
    outcome: &TickOutcome,
    deadline: Instant,
) -> Result<(), StepError> {
    let key = &target.key;
    // A rollback's writes jump any queue in front of the API server.
    let urgent = outcome.next_status.phase == Phase::Failed && !outcome.effects.is_empty();
    let target = &if urgent {
        target.clone().urgent()
    } else {
        target.clone()
    };
    for effect in &outcome.effects {
        let port = services.workload.clone();
        let t = target.clone();
        let result = match effect {
            Effect::ScaleCanaryUp => {
                workload(services, deadline, move || {
                    port.scale_canary_up(&t, deadline)
                })
                .await
            }
            Effect::ScaleCanaryToZero => {
                workload(services, deadline, move || {
                    port.scale_canary_to_zero(&t, deadline)
                })
                .await
            }
            Effect::PromoteSpec => {
                workload(services, deadline, move || port.promote(&t, deadline)).await
            }
            Effect::ReconcilePrimaryScaler => {
                workload(services, deadline, move || {
                    port.reconcile_primary_scaler(&t, deadline)
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
                ask(
                    &services.router,
                    SetRoutes {
                        target: t,
                        routes,
                        deadline,
                    },
                )
                .await
            }
            Effect::RunPostRolloutHooks { phase } => {
                post_rollout(services, spec, outcome, *phase, deadline).await;
                Ok(())
            }
            Effect::Event(event) => {
                record(services, spec, &outcome.next_status, event, deadline).await;
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
                // Fire-and-forget: a full notifier drops the alert, never the step.
                if services.notifier.try_send(Notify(notification)).is_err() {
                    Stats::bump(&services.stats.notifications_dropped);
                }
                Ok(())
            }
            Effect::CountSuccess { .. } => {
                Stats::bump(&services.stats.successes);
                Ok(())
            }
            Effect::CountFailure => {
                Stats::bump(&services.stats.failures);
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

/// `post-rollout` hooks in order, stopping at the first failure.
async fn post_rollout(
    services: &Services,
    spec: &CanarySpec,
    outcome: &TickOutcome,
    phase: Phase,
    deadline: Instant,
) {
    let key = CanaryKey::of(spec);
    for (_, hook) in spec.analysis.hooks_of(HookType::PostRollout) {
        let call = webhook_call(&key, hook.clone(), phase, &outcome.next_status);
        let event = match call_webhook(services, call, deadline).await {
            WebhookAnswer::Ok => Event::normal(text::post_rollout_passed(&hook.name)),
            WebhookAnswer::Failed(err) => {
                record(
                    services,
                    spec,
                    &outcome.next_status,
                    &Event::warning(text::post_rollout_failed(&hook.name, &err)),
                    deadline,
                )
                .await;
                return;
            }
        };
        record(services, spec, &outcome.next_status, &event, deadline).await;
    }
}

/// Events are best effort: a failed write is logged, the step goes on.
async fn record(
    services: &Services,
    spec: &CanarySpec,
    status: &CanaryStatus,
    event: &Event,
    deadline: Instant,
) {
    let key = CanaryKey::of(spec);
    if let Err(err) = services.events.record(&key, event, deadline).await {
        tracing::warn!(canary = %key, error = %err, message = %event.message, "event not recorded");
    }
    // Event webhooks are fire-and-forget: their answer changes nothing.
    let hook_deadline = Instant::now() + services.config.notify_timeout;
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
        let msg = CallWebhook {
            call,
            deadline: hook_deadline,
        };
        if services.webhooks.try_send(msg).is_err() {
            tracing::warn!(canary = %key, hook = %hook.name, "event webhook dropped");
        }
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

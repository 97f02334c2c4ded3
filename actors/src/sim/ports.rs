//! The port implementations of [`SimCluster`]. Work happens when the future
//! is polled (not when it is built), so limiter queueing is realistic.

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::time::{Instant, sleep};

use super::{SimCanary, SimCluster, State, lock};
use crate::events::Event;
use crate::model::observe::{MetricAnswer, Readiness, Revision, Routes, WebhookAnswer};
use crate::model::source::Source;
use crate::model::spec::{Builtin, MetricSource, MetricSpec};
use crate::model::status::CanaryStatus;
use crate::ports::{
    CanaryKey, EventSink, MetricQuery, MetricsPort, Notification, NotifierPort, PortError,
    PortFuture, RouterPort, StatusStore, Target, WebhookCall, WebhookPort, WorkloadPort,
    WorkloadState,
};

/// Runs `f` on one canary under the lock, or fails with `NotFound`.
fn on_canary<T>(
    state: &Mutex<State>,
    key: &CanaryKey,
    f: impl FnOnce(&mut SimCanary) -> T,
) -> Result<T, PortError> {
    lock(state)
        .canaries
        .get_mut(key)
        .map(f)
        .ok_or_else(|| PortError::NotFound(format!("canary {key}")))
}

impl SimCluster {
    /// A workload call that mutates the canary's state when polled.
    fn workload_op(
        &self,
        target: &Target,
        f: impl FnOnce(&mut SimCanary, Instant, &super::SimConfig) + Send + 'static,
    ) -> PortFuture<()> {
        let (state, key, config) = (self.state.clone(), target.key.clone(), self.config.clone());
        async move { on_canary(&state, &key, |c| f(c, Instant::now(), &config)) }.boxed()
    }
}

#[allow(
    clippy::panic,
    reason = "deliberate fault injection: supervision tests need a port that panics"
)]
fn injected_panic(key: &CanaryKey, call: usize) -> ! {
    panic!("sim: injected panic in observe #{call} of {key}")
}

impl WorkloadPort for SimCluster {
    fn bootstrap(&self, target: &Target, _deadline: Instant) -> PortFuture<()> {
        self.workload_op(target, |c, now, _| {
            if !c.bootstrapped {
                // Flagger's first sync copies the target into a ready primary.
                c.bootstrapped = true;
                c.primary_hash = c.target_hash.clone();
                c.primary_ready_at = now;
            }
        })
    }

    fn observe(&self, target: &Target, _deadline: Instant) -> PortFuture<WorkloadState> {
        let (state, target, config) = (self.state.clone(), target.clone(), self.config.clone());
        async move {
            let now = Instant::now();
            let (observed, panic_call) = on_canary(&state, &target.key, |c| {
                c.observe_calls += 1;
                let every = c.panic_every.is_some_and(|n| c.observe_calls % n == 0);
                let panic_call = (every || c.panic_on_observe.contains(&c.observe_calls))
                    .then_some(c.observe_calls);
                let ns = &target.key.namespace;
                let name = &target.target.name;
                let primary = if c.primary_ready_at <= now {
                    Readiness::Ready
                } else {
                    Readiness::NotReady {
                        message: format!(
                            "Waiting for {name}-primary.{ns} rollout to finish: {} of {} updated replicas are available",
                            config.primary_replicas - 1,
                            config.primary_replicas
                        ),
                        stalled_since: None,
                    }
                };
                let canary = match c.canary_ready_at {
                    Some(at) if c.canary_scaled_up && at <= now => Readiness::Ready,
                    _ => Readiness::NotReady {
                        message: format!(
                            "Waiting for {name}.{ns} rollout to finish: 0 of {} updated replicas are available",
                            config.canary_replicas
                        ),
                        stalled_since: None,
                    },
                };
                let revision = Revision {
                    spec_hash: c.target_hash.clone(),
                    tracked_configs: Default::default(),
                };
                (
                    WorkloadState {
                        revision,
                        primary,
                        canary,
                    },
                    panic_call,
                )
            })?;
            // The lock is released above, so the panic poisons nothing.
            if let Some(call) = panic_call {
                injected_panic(&target.key, call);
            }
            Ok(observed)
        }
        .boxed()
    }

    fn scale_canary_up(&self, target: &Target, _deadline: Instant) -> PortFuture<()> {
        self.workload_op(target, |c, now, config| {
            if !c.canary_scaled_up {
                c.canary_scaled_up = true;
                c.canary_ready_at = Some(now + config.ready_delay);
            }
            c.hpa_paused = false;
        })
    }

    fn scale_canary_to_zero(&self, target: &Target, _deadline: Instant) -> PortFuture<()> {
        self.workload_op(target, |c, _, _| {
            c.canary_scaled_up = false;
            c.canary_ready_at = None;
            c.hpa_paused = c.hpa;
        })
    }

    fn promote(&self, target: &Target, _deadline: Instant) -> PortFuture<()> {
        self.workload_op(target, |c, now, config| {
            c.primary_hash = c.target_hash.clone();
            c.primary_ready_at = now + config.ready_delay;
        })
    }

    fn reconcile_primary_scaler(&self, target: &Target, _deadline: Instant) -> PortFuture<()> {
        self.workload_op(target, |c, _, _| {
            if c.hpa {
                c.primary_hpa_synced += 1;
            }
        })
    }
}

/// Which port's calls an [`InFlight`] counts.
#[derive(Clone, Copy)]
enum Port {
    Router,
    Metrics,
}

/// Counts a call in flight until dropped (also on cancellation).
struct InFlight(Arc<Mutex<State>>, Port);

impl InFlight {
    fn enter(state: &Arc<Mutex<State>>, port: Port) -> InFlight {
        let mut guard = lock(state);
        let s = &mut *guard;
        let (now, max) = match port {
            Port::Router => (&mut s.router_in_flight, &mut s.router_max_in_flight),
            Port::Metrics => (&mut s.metrics_in_flight, &mut s.metrics_max_in_flight),
        };
        *now += 1;
        *max = (*max).max(*now);
        InFlight(state.clone(), port)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        let now = match self.1 {
            Port::Router => &mut s.router_in_flight,
            Port::Metrics => &mut s.metrics_in_flight,
        };
        *now = now.saturating_sub(1);
    }
}

impl RouterPort for SimCluster {
    fn set_routes(&self, target: &Target, routes: Routes, _deadline: Instant) -> PortFuture<()> {
        let (state, key) = (self.state.clone(), target.key.clone());
        let (latency, origin) = (self.config.router_latency, self.origin);
        async move {
            let _in_flight = InFlight::enter(&state, Port::Router);
            sleep(latency).await;
            on_canary(&state, &key, |c| {
                if c.failing_set_routes > 0 {
                    c.failing_set_routes -= 1;
                    return Err(PortError::Failed("sim: ingress update rejected".into()));
                }
                c.routes = routes;
                c.route_log.push((origin.elapsed(), routes));
                Ok(())
            })?
        }
        .boxed()
    }

    fn get_routes(&self, target: &Target, _deadline: Instant) -> PortFuture<Routes> {
        let (state, key, latency) = (
            self.state.clone(),
            target.key.clone(),
            self.config.router_latency,
        );
        async move {
            let _in_flight = InFlight::enter(&state, Port::Router);
            sleep(latency).await;
            on_canary(&state, &key, |c| c.routes)
        }
        .boxed()
    }
}

impl MetricsPort for SimCluster {
    fn check(&self, query: &MetricQuery, _deadline: Instant) -> PortFuture<MetricAnswer> {
        let (state, query) = (self.state.clone(), query.clone());
        let latency = self.config.metrics_latency;
        async move {
            let in_flight = InFlight::enter(&state, Port::Metrics);
            // Even a zero sleep costs a millisecond of paused time.
            if !latency.is_zero() {
                sleep(latency).await;
            }
            drop(in_flight);
            lock(&state).metric_queries += 1;
            on_canary(&state, &query.key, |c| {
                let fault = c
                    .traffic
                    .faults
                    .get(&c.target_hash)
                    .copied()
                    .unwrap_or_default();
                let builtin = |value: f64| {
                    if c.traffic.request_rate > 0.0 {
                        MetricAnswer::Value(value)
                    } else {
                        MetricAnswer::NoValues("no values found".to_owned())
                    }
                };
                match query.metric.source() {
                    MetricSource::Builtin(Builtin::SuccessRate) => {
                        builtin(100.0 - fault.error_rate)
                    }
                    MetricSource::Builtin(Builtin::Duration) => builtin(fault.latency_ms),
                    _ => match c.custom_metrics.get(&query.metric.name) {
                        Some(value) => MetricAnswer::Value(*value),
                        None => MetricAnswer::NoValues(format!(
                            "no values found for metric {}",
                            query.metric.name
                        )),
                    },
                }
            })
        }
        .boxed()
    }

    fn providers_available(
        &self,
        _key: &CanaryKey,
        _source: &Source,
        _metrics: &[MetricSpec],
        _deadline: Instant,
    ) -> PortFuture<Result<(), String>> {
        async { Ok(Ok(())) }.boxed()
    }
}

impl WebhookPort for SimCluster {
    fn call(&self, call: &WebhookCall, _deadline: Instant) -> PortFuture<WebhookAnswer> {
        let (state, call) = (self.state.clone(), call.clone());
        async move {
            on_canary(&state, &call.key, |c| {
                c.hook_log.push((call.hook.name.clone(), call.phase));
                match c.hook_scripts.get_mut(&call.hook.name) {
                    Some(queue) if queue.len() > 1 => queue.pop_front(),
                    Some(queue) => queue.front().cloned(),
                    None => None,
                }
                .unwrap_or(WebhookAnswer::Ok)
            })
        }
        .boxed()
    }
}

impl NotifierPort for SimCluster {
    fn send(&self, notification: &Notification, _deadline: Instant) -> PortFuture<()> {
        let (state, n, delay) = (
            self.state.clone(),
            notification.clone(),
            self.config.notifier_delay,
        );
        async move {
            lock(&state).notifications_started += 1;
            sleep(delay).await;
            on_canary(&state, &n.key, |c| c.alerts.push(n.alert))
        }
        .boxed()
    }
}

impl StatusStore for SimCluster {
    fn persist(
        &self,
        key: &CanaryKey,
        status: &CanaryStatus,
        _deadline: Instant,
    ) -> PortFuture<()> {
        let (state, key, status) = (self.state.clone(), key.clone(), status.clone());
        async move {
            on_canary(&state, &key, |c| {
                c.status = Some(status.clone());
                c.status_log.push(status);
            })
        }
        .boxed()
    }

    fn load(&self, key: &CanaryKey, _deadline: Instant) -> PortFuture<Option<CanaryStatus>> {
        let (state, key) = (self.state.clone(), key.clone());
        async move {
            Ok(lock(&state)
                .canaries
                .get(&key)
                .and_then(|c| c.status.clone()))
        }
        .boxed()
    }
}

impl EventSink for SimCluster {
    fn record(
        &self,
        key: &CanaryKey,
        _source: &Source,
        event: &Event,
        _deadline: Instant,
    ) -> PortFuture<()> {
        let (state, key, event) = (self.state.clone(), key.clone(), event.clone());
        async move { on_canary(&state, &key, |c| c.events.push(event)) }.boxed()
    }
}

//! The actor runtime: one [`CanaryActor`] per Canary, plus shared actors that
//! put bounded concurrency in front of the router, metrics, webhook and
//! notifier ports.
//!
//! Topology: canary actors run under `actix::Supervisor` on an [`ArbiterPool`]
//! (picked by a hash of the key); the shared actors run on one arbiter of
//! their own choosing. Canary actors hold strong `Addr`s to the shared actors,
//! never the other way round, so deleting a canary only needs the registry's
//! `Addr` dropped.

mod canary;
mod histogram;
mod limiter;
mod shared;
mod step;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use tokio::time::Instant;

use crate::model::status::Timestamp;
use crate::ports::{CanaryKey, EventSink, Ports, StatusStore, WorkloadPort};

pub use canary::{CanaryActor, CanaryState, GetState, Shutdown, SpecChanged, TargetChanged};
pub use histogram::Histogram;
pub use limiter::Limiter;
pub use shared::{
    CallWebhook, CheckProviders, GetRoutes, MetricsActor, NotifierActor, Notify, ReconcileRoutes,
    RouterActor, RunMetric, SetRoutes, WebhookActor,
};
pub use step::StepError;

/// Wall-clock seconds derived from tokio's clock, so paused time drives `now`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_seconds: i64,
    origin: Instant,
}

impl Clock {
    /// `epoch_seconds` is the Unix time that corresponds to "now".
    pub fn starting_at(epoch_seconds: i64) -> Clock {
        Clock {
            epoch_seconds,
            origin: Instant::now(),
        }
    }

    /// The real Unix time as "now".
    pub fn system() -> Clock {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Clock::starting_at(i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX))
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.origin.elapsed().as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.epoch_seconds.saturating_add(elapsed))
    }
}

/// Limits and timeouts of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Budget for one whole tick (observe, checks, effects, persist).
    pub step_timeout: Duration,
    /// Notifications are fire-and-forget, cut off after this.
    pub notify_timeout: Duration,
    /// In-flight calls per shared port.
    pub port_concurrency: usize,
    /// Calls allowed to wait for a slot before new ones are refused.
    pub port_queue: usize,
    /// Mailbox capacity of the shared actors (`send` waits when full).
    pub shared_mailbox: usize,
    /// `-event-webhook`: receives the events of Canaries that declare no
    /// `event` hook of their own.
    pub global_event_hook: Option<crate::model::spec::WebhookSpec>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            step_timeout: Duration::from_secs(50),
            notify_timeout: Duration::from_secs(10),
            port_concurrency: 16,
            port_queue: 10_000,
            shared_mailbox: 1024,
            global_event_hook: None,
        }
    }
}

/// Counters the operator can export.
#[derive(Debug, Default)]
pub struct Stats {
    pub ticks: AtomicU64,
    /// Timer ticks dropped because the previous tick was still running.
    pub skipped_ticks: AtomicU64,
    pub failed_ticks: AtomicU64,
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    pub notifications_dropped: AtomicU64,
    /// Actors started again after their task died.
    pub rebuilds: AtomicU64,
    /// How late each timer tick started against its interval grid (the
    /// arbiter thread was busy, or the runtime starved): the actor layer's
    /// own contribution to schedule drift.
    pub tick_lateness: Histogram,
    /// Analysis steps that ran to completion (or error).
    pub steps: AtomicU64,
    /// Time spent polling step futures on the arbiter threads: CPU-ish work
    /// of the canary actors, excluding waits on ports and shared actors.
    pub step_busy_nanos: AtomicU64,
    /// Wall time of each step, first poll to completion, waits included.
    pub step_duration: Histogram,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Mean busy time per completed step.
    pub fn mean_step_busy(&self) -> Duration {
        let steps = Stats::get(&self.steps);
        if steps == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(Stats::get(&self.step_busy_nanos) / steps)
    }

    pub(crate) fn add_step(&self, busy: Duration, wall: Duration) {
        let nanos = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
        self.step_busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.steps.fetch_add(1, Ordering::Relaxed);
        self.step_duration.record(wall);
    }
}

/// What every canary actor needs: direct ports and the shared actors.
#[derive(Clone)]
pub struct Services {
    pub workload: Arc<dyn WorkloadPort>,
    /// Bounds concurrent workload calls across all canaries.
    pub workload_limit: Limiter,
    pub status: Arc<dyn StatusStore>,
    pub events: Arc<dyn EventSink>,
    pub router: Addr<RouterActor>,
    pub metrics: Addr<MetricsActor>,
    pub webhooks: Addr<WebhookActor>,
    pub notifier: Addr<NotifierActor>,
    pub clock: Clock,
    pub config: RuntimeConfig,
    pub stats: Arc<Stats>,
    /// Optional telemetry sink; `None` in the simulator.
    pub observer: Option<Arc<dyn crate::ports::StepObserver>>,
}

impl Services {
    /// Starts the shared actors on `arbiter` and bundles them with the ports.
    pub fn start(
        ports: Ports,
        config: RuntimeConfig,
        clock: Clock,
        arbiter: &ArbiterHandle,
    ) -> Self {
        let stats = Arc::new(Stats::default());
        let limiter = |name| Limiter::new(name, config.port_concurrency, config.port_queue);
        let mailbox = config.shared_mailbox;
        let (router_port, router_limit) = (ports.router.clone(), limiter("router"));
        let router = RouterActor::start_in_arbiter(arbiter, move |_| {
            RouterActor::new(router_port, router_limit, mailbox)
        });
        let (metrics_port, metrics_limit) = (ports.metrics.clone(), limiter("metrics"));
        let metrics = MetricsActor::start_in_arbiter(arbiter, move |_| {
            MetricsActor::new(metrics_port, metrics_limit, mailbox)
        });
        let (hooks_port, hooks_limit) = (ports.webhooks.clone(), limiter("webhooks"));
        let webhooks = WebhookActor::start_in_arbiter(arbiter, move |_| {
            WebhookActor::new(hooks_port, hooks_limit, mailbox)
        });
        let (notify_port, notify_limit) = (ports.notifier.clone(), limiter("notifier"));
        let (timeout, notify_stats) = (config.notify_timeout, stats.clone());
        let notifier = NotifierActor::start_in_arbiter(arbiter, move |_| {
            NotifierActor::new(notify_port, notify_limit, timeout, notify_stats, mailbox)
        });
        Services {
            workload: ports.workload,
            workload_limit: limiter("workload"),
            status: ports.status,
            events: ports.events,
            router,
            metrics,
            webhooks,
            notifier,
            clock,
            config,
            stats,
            observer: None,
        }
    }

    /// The same services, reporting step timings to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn crate::ports::StepObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
}

/// Arbiters the canary actors are spread over.
pub struct ArbiterPool {
    handles: Vec<ArbiterHandle>,
    owned: Vec<Arbiter>,
}

impl ArbiterPool {
    /// Only the calling thread's arbiter (tests under paused time need this:
    /// tokio's paused clock is per runtime). Call it inside an actix System.
    pub fn current() -> ArbiterPool {
        ArbiterPool {
            handles: vec![Arbiter::current()],
            owned: Vec::new(),
        }
    }

    /// `count` new arbiters, one OS thread each.
    pub fn spawn(count: usize) -> ArbiterPool {
        let owned: Vec<Arbiter> = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        ArbiterPool {
            handles: owned.iter().map(Arbiter::handle).collect(),
            owned,
        }
    }

    /// The arbiter a canary lives on: stable for a key, spread across keys.
    pub fn pick(&self, key: &CanaryKey) -> ArbiterHandle {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let len = u64::try_from(self.handles.len()).unwrap_or(1).max(1);
        let index = usize::try_from(hasher.finish() % len).unwrap_or(0);
        self.handles
            .get(index)
            .cloned()
            .unwrap_or_else(Arbiter::current)
    }

    /// Stops the arbiters this pool created.
    pub fn stop(&self) {
        for arbiter in &self.owned {
            arbiter.stop();
        }
    }
}

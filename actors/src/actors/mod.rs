//! The actor runtime: one [`CanaryActor`] per Canary, plus one shared
//! [`PortActor`] per port (workload, router, metrics, webhooks, notifier)
//! that queues every canary's calls fairly per namespace and runs them, a
//! bounded number at once, on the I/O runtime.
//!
//! Topology: canary actors run under `actix::Supervisor` on an [`ArbiterPool`]
//! (picked by a hash of the key); the port actors run on one arbiter of
//! their own, and the calls they start run on the tokio runtime that built
//! the [`Services`] (the operator's multi-thread runtime). Canary actors hold
//! strong `Addr`s to the port actors, never the other way round, so deleting
//! a canary only needs the registry's `Addr` dropped.

mod canary;
mod fair;
mod histogram;
mod shared;
mod step;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::model::status::Timestamp;
use crate::ports::{
    CanaryKey, EventSink, MetricsPort, NotifierPort, Ports, RouterPort, StatusStore, WebhookPort,
    WorkloadPort,
};

pub use canary::{
    CanaryActor, CanaryState, GetState, Shutdown, SpecChanged, TargetChanged, Terminate,
};
pub use fair::FairQueue;
pub use histogram::Histogram;
pub use shared::{CallOptions, PortActor, PortLimits, Shared};
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
    /// How long a step may wait in Serin's own lines, in total. A call that
    /// has not started by then is `Congested` and the step is retried at the
    /// next tick; it never counts as a failed check.
    pub step_timeout: Duration,
    /// How long one call may run once started (a webhook gets at least its
    /// own timeout and retries). Past it the provider did not answer.
    pub call_timeout: Duration,
    /// Notifications are fire-and-forget, cut off after this.
    pub notify_timeout: Duration,
    /// Calls in flight at once, per shared port.
    pub port_concurrency: usize,
    /// Calls one namespace may have waiting per port before more are refused.
    pub port_queue: usize,
    /// Mailbox capacity of the port actors (`send` waits when full).
    pub shared_mailbox: usize,
    /// `-event-webhook`: receives the events of Canaries that declare no
    /// `event` hook of their own.
    pub global_event_hook: Option<crate::model::spec::WebhookSpec>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            step_timeout: Duration::from_secs(50),
            call_timeout: Duration::from_secs(30),
            notify_timeout: Duration::from_secs(10),
            port_concurrency: 64,
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
    /// Steps given up because of Serin's own congestion, retried next tick.
    pub deferred_steps: AtomicU64,
    /// Calls refused because their namespace's line was full.
    pub overloaded_calls: AtomicU64,
    /// Calls dropped unstarted because their step's deadline passed.
    pub congested_calls: AtomicU64,
    /// Canary actors restarted after a panic in their step.
    pub restarts: AtomicU64,
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

/// What every canary actor needs: the shared ports and the direct ones.
#[derive(Clone)]
pub struct Services {
    pub workload: Shared<dyn WorkloadPort>,
    pub router: Shared<dyn RouterPort>,
    pub metrics: Shared<dyn MetricsPort>,
    pub webhooks: Shared<dyn WebhookPort>,
    pub notifier: Shared<dyn NotifierPort>,
    /// Status and events are written by each canary for itself, directly:
    /// one write per step at most, bounded by the API client's own limiter.
    pub status: Arc<dyn StatusStore>,
    pub events: Arc<dyn EventSink>,
    /// Where fire-and-forget work (alerts, event webhooks) is spawned.
    pub io: Handle,
    pub clock: Clock,
    pub config: RuntimeConfig,
    pub stats: Arc<Stats>,
    /// Optional telemetry sink; `None` in the simulator.
    pub observer: Option<Arc<dyn crate::ports::StepObserver>>,
}

impl Services {
    /// Starts the port actors on `arbiter`; their calls run on the tokio
    /// runtime this is called from.
    pub fn start(
        ports: Ports,
        config: RuntimeConfig,
        clock: Clock,
        arbiter: &ArbiterHandle,
    ) -> Self {
        let stats = Arc::new(Stats::default());
        let io = Handle::current();
        let limits = PortLimits {
            concurrency: config.port_concurrency,
            line: config.port_queue,
            mailbox: config.shared_mailbox,
        };
        let at = PortSite {
            limits,
            arbiter,
            io: &io,
            stats: &stats,
        };
        Services {
            workload: at.start("workload", ports.workload),
            router: at.start("router", ports.router),
            metrics: at.start("metrics", ports.metrics),
            webhooks: at.start("webhooks", ports.webhooks),
            notifier: at.start("notifier", ports.notifier),
            status: ports.status,
            events: ports.events,
            io,
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

/// Where the port actors run, and with what limits.
struct PortSite<'a> {
    limits: PortLimits,
    arbiter: &'a ArbiterHandle,
    io: &'a Handle,
    stats: &'a Arc<Stats>,
}

impl PortSite<'_> {
    fn start<P: ?Sized + Send + Sync + 'static>(
        &self,
        name: &'static str,
        port: Arc<P>,
    ) -> Shared<P> {
        let (io, stats) = (self.io.clone(), self.stats.clone());
        Shared::start(name, port, self.limits, self.arbiter, io, stats)
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

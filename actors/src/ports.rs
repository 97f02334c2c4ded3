//! The I/O edges the actors drive, as small object-safe traits.
//!
//! Every call takes a deadline (a `tokio::time::Instant`, so paused test time
//! applies) and only the inputs it needs, never the whole Canary. Futures are
//! `'static` boxed futures so an implementation can clone what it needs and a
//! caller can move the future across tasks.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::events::{Alert, Event};
use crate::model::observe::{MetricAnswer, Readiness, Revision, Routes, WebhookAnswer};
use crate::model::source::Source;
use crate::model::spec::{AlertRef, CanarySpec, MetricSpec, TargetRef, WebhookSpec};
use crate::model::status::{CanaryStatus, Phase, SessionCookies};

/// What every port call returns.
pub type PortFuture<T> = BoxFuture<'static, Result<T, PortError>>;

/// Why a port call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The provider did not answer within the call's budget.
    #[error("deadline exceeded")]
    Timeout,
    #[error("{0} not found")]
    NotFound(String),
    /// Too many calls of one namespace wait in front of this port.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// The step's deadline passed while the call waited in Serin's line:
    /// the provider was never asked.
    #[error("congested: {0}")]
    Congested(&'static str),
    /// The actor fronting the port is gone.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The adapter panicked while serving the call: a bug in Serin.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The provider asked to be asked later (HTTP 429) for longer than the
    /// call could wait: it said nothing about the canary.
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("{0}")]
    Failed(String),
}

impl PortError {
    /// Not an answer about the canary (Serin's own trouble, or a provider
    /// that throttles the fleet's queries): it never decides a canary. The
    /// step is retried at the next tick instead.
    pub fn is_serins(&self) -> bool {
        matches!(
            self,
            PortError::Overloaded(_)
                | PortError::Congested(_)
                | PortError::Unavailable(_)
                | PortError::Panicked(_)
                | PortError::Throttled(_)
        )
    }
}

/// Identity of one Canary object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CanaryKey {
    pub namespace: String,
    pub name: String,
}

impl CanaryKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> CanaryKey {
        CanaryKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(spec: &CanarySpec) -> CanaryKey {
        CanaryKey::new(spec.namespace.clone(), spec.name.clone())
    }
}

impl fmt::Display for CanaryKey {
    /// Flagger's `<name>.<namespace>` log key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.namespace)
    }
}

/// How urgently an adapter should get a call through a shared rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    #[default]
    Routine,
    /// A rollback's writes: never queued behind routine calls.
    Urgent,
}

/// The workload and router view of a Canary: which object, behind which
/// router, as the actor decided on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: CanaryKey,
    pub target: TargetRef,
    /// Resolved router provider.
    pub provider: String,
    pub priority: Priority,
    /// The Canary object the actor's spec came from.
    pub source: Source,
    /// `status.iterations` as the step started (Flagger's NopRouter reports
    /// its routes from it).
    pub iterations: i32,
    /// The session affinity cookies routes carry: the status' as the step
    /// started, and for `set_routes` those decided with the routes.
    pub session: SessionCookies,
}

impl Target {
    pub fn of(spec: &CanarySpec, status: &CanaryStatus) -> Target {
        Target {
            key: CanaryKey::of(spec),
            target: spec.target.clone(),
            provider: spec.provider.clone(),
            priority: Priority::Routine,
            source: spec.source.clone(),
            iterations: status.iterations,
            session: status.session.clone(),
        }
    }

    /// The same target, with the calls marked urgent.
    pub fn urgent(mut self) -> Target {
        self.priority = Priority::Urgent;
        self
    }
}

/// What the workload port reports for one tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadState {
    pub revision: Revision,
    pub primary: Readiness,
    pub canary: Readiness,
}

/// Deployments/DaemonSets/Services behind a Canary.
pub trait WorkloadPort: Send + Sync + 'static {
    /// Create or reconcile the primary workload and the ClusterIP services.
    fn bootstrap(&self, target: &Target, deadline: Instant) -> PortFuture<()>;
    /// Current target revision and the readiness of primary and canary.
    fn observe(&self, target: &Target, deadline: Instant) -> PortFuture<WorkloadState>;
    /// Resume the target autoscaler and scale the canary up from zero.
    fn scale_canary_up(&self, target: &Target, deadline: Instant) -> PortFuture<()>;
    /// Pause the target autoscaler and scale the canary to zero.
    fn scale_canary_to_zero(&self, target: &Target, deadline: Instant) -> PortFuture<()>;
    /// Copy the target's template (and tracked configs) to the primary.
    fn promote(&self, target: &Target, deadline: Instant) -> PortFuture<()>;
    /// Sync the target autoscaler's spec to the primary autoscaler.
    fn reconcile_primary_scaler(&self, target: &Target, deadline: Instant) -> PortFuture<()>;
}

/// The mesh or ingress that splits traffic.
pub trait RouterPort: Send + Sync + 'static {
    /// Create or reconcile the routing objects (canary Ingress, virtual
    /// service...), leaving the weights as they are. Runs every tick after
    /// the workload bootstrap, as Flagger's mesh router `Reconcile` does.
    fn reconcile(&self, _target: &Target, _deadline: Instant) -> PortFuture<()> {
        Box::pin(async { Ok(()) })
    }
    fn set_routes(&self, target: &Target, routes: Routes, deadline: Instant) -> PortFuture<()>;
    fn get_routes(&self, target: &Target, deadline: Instant) -> PortFuture<Routes>;
}

/// One metric check, with what a provider needs to render the query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub key: CanaryKey,
    /// The Canary object the actor's spec came from.
    pub source: Source,
    pub target: TargetRef,
    /// `spec.metricsServer` provider name (`nginx`, `istio`, ...).
    pub provider: String,
    pub metric: MetricSpec,
}

/// Prometheus and the MetricTemplate providers.
pub trait MetricsPort: Send + Sync + 'static {
    fn check(&self, query: &MetricQuery, deadline: Instant) -> PortFuture<MetricAnswer>;
    /// `Err(text)` when a provider is offline; a transport failure is a `PortError`.
    fn providers_available(
        &self,
        key: &CanaryKey,
        source: &Source,
        metrics: &[MetricSpec],
        deadline: Instant,
    ) -> PortFuture<Result<(), String>>;
}

/// One webhook call with Flagger's payload fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    pub key: CanaryKey,
    pub hook: WebhookSpec,
    pub phase: Phase,
    /// `status.lastAppliedSpec`, sent as `checksum`.
    pub checksum: String,
    /// For `event` hooks: the event being forwarded (`eventMessage`/`eventType`).
    pub event: Option<Event>,
}

pub trait WebhookPort: Send + Sync + 'static {
    fn call(&self, call: &WebhookCall, deadline: Instant) -> PortFuture<WebhookAnswer>;
}

/// An alert addressed to the Canary's alert providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub key: CanaryKey,
    pub alert: Alert,
    pub providers: Vec<AlertRef>,
    /// `events::alert_fields` when the alert asks for metadata, else empty.
    pub fields: Vec<(String, String)>,
}

pub trait NotifierPort: Send + Sync + 'static {
    fn send(&self, notification: &Notification, deadline: Instant) -> PortFuture<()>;
}

/// Where `Canary.status` lives (the status subresource in a cluster).
pub trait StatusStore: Send + Sync + 'static {
    fn persist(&self, key: &CanaryKey, status: &CanaryStatus, deadline: Instant) -> PortFuture<()>;
    /// The last persisted status; used to rebuild an actor after a crash.
    fn load(&self, key: &CanaryKey, deadline: Instant) -> PortFuture<Option<CanaryStatus>>;
}

/// Kubernetes events on the Canary (`source`: the object they are about).
pub trait EventSink: Send + Sync + 'static {
    fn record(
        &self,
        key: &CanaryKey,
        source: &Source,
        event: &Event,
        deadline: Instant,
    ) -> PortFuture<()>;
}

/// Told about step timings, for the operator's Prometheus series
/// (Flagger's `flagger_canary_duration_seconds`, Serin's tick lateness).
pub trait StepObserver: Send + Sync + 'static {
    /// A step of a run in progress finished after `elapsed`.
    fn analysis_step(&self, key: &CanaryKey, elapsed: std::time::Duration);
    /// A timer tick fired `late` after its slot.
    fn tick_lateness(&self, late: std::time::Duration);
    /// A step was given up because of Serin's own congestion.
    fn step_deferred(&self, _key: &CanaryKey) {}
    /// A canary's actor restarted after a panic.
    fn actor_restarted(&self, _key: &CanaryKey) {}
    /// A run ended promoted (the core's `CountSuccess`).
    fn run_succeeded(&self, _spec: &CanarySpec, _skipped: bool) {}
    /// A run ended rolled back (the core's `CountFailure`).
    fn run_failed(&self, _spec: &CanarySpec) {}
}

/// One implementation of every port.
#[derive(Clone)]
pub struct Ports {
    pub workload: Arc<dyn WorkloadPort>,
    pub router: Arc<dyn RouterPort>,
    pub metrics: Arc<dyn MetricsPort>,
    pub webhooks: Arc<dyn WebhookPort>,
    pub notifier: Arc<dyn NotifierPort>,
    pub status: Arc<dyn StatusStore>,
    pub events: Arc<dyn EventSink>,
}

impl Ports {
    /// Every port served by one object (the simulator, or a test double).
    pub fn all<P>(port: Arc<P>) -> Ports
    where
        P: WorkloadPort
            + RouterPort
            + MetricsPort
            + WebhookPort
            + NotifierPort
            + StatusStore
            + EventSink,
    {
        Ports {
            workload: port.clone(),
            router: port.clone(),
            metrics: port.clone(),
            webhooks: port.clone(),
            notifier: port.clone(),
            status: port.clone(),
            events: port,
        }
    }
}

//! An in-memory cluster implementing every port, for tests and demos.
//!
//! Time is tokio's clock, so everything runs under `tokio::time::pause()`:
//! workloads become ready `ready_delay` after a rollout, the router and the
//! notifier can be made slow, and the traffic model answers the builtin
//! metrics from a per-revision fault profile.

mod ports;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::events::{Alert, Event};
use crate::model::observe::{Routes, WebhookAnswer};
use crate::model::status::{CanaryStatus, Phase};
use crate::ports::{CanaryKey, Ports};

/// Knobs of the simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// A rollout (canary scale-up, new revision, promotion) is ready after this.
    pub ready_delay: Duration,
    pub canary_replicas: i32,
    pub primary_replicas: i32,
    /// Latency of every router call.
    pub router_latency: Duration,
    /// How long the notifier takes (a hung Slack webhook, say).
    pub notifier_delay: Duration,
    /// How long every metric query takes (a slow Prometheus).
    pub metrics_latency: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            ready_delay: Duration::from_secs(30),
            canary_replicas: 1,
            primary_replicas: 2,
            router_latency: Duration::ZERO,
            notifier_delay: Duration::ZERO,
            metrics_latency: Duration::ZERO,
        }
    }
}

/// Error rate (percent) and latency (ms) of one revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub error_rate: f64,
    pub latency_ms: f64,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            error_rate: 0.0,
            latency_ms: 50.0,
        }
    }
}

/// Requests per second reaching the canary, and faults by revision hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub request_rate: f64,
    pub faults: BTreeMap<String, Fault>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            request_rate: 10.0,
            faults: BTreeMap::new(),
        }
    }
}

/// One Canary's corner of the cluster.
#[derive(Debug, Clone)]
pub struct SimCanary {
    /// Pod-template hash of the target deployment.
    pub target_hash: String,
    pub primary_hash: String,
    pub primary_ready_at: Instant,
    pub canary_scaled_up: bool,
    pub canary_ready_at: Option<Instant>,
    pub bootstrapped: bool,
    /// The target has an HPA; `hpa_paused` mirrors Flagger pausing it.
    pub hpa: bool,
    pub hpa_paused: bool,
    pub primary_hpa_synced: u32,
    pub routes: Routes,
    /// Every `SetRoutes`, with the time since the sim started.
    pub route_log: Vec<(Duration, Routes)>,
    pub traffic: Traffic,
    pub custom_metrics: BTreeMap<String, f64>,
    /// Scripted answers by hook name; the last one repeats. Default `Ok`.
    pub hook_scripts: BTreeMap<String, VecDeque<WebhookAnswer>>,
    pub hook_log: Vec<(String, Phase)>,
    pub status: Option<CanaryStatus>,
    pub status_log: Vec<CanaryStatus>,
    pub events: Vec<Event>,
    /// Alerts delivered (after the notifier delay).
    pub alerts: Vec<Alert>,
    pub observe_calls: usize,
    /// Observe calls (1-based) that panic, to exercise supervision.
    pub panic_on_observe: Vec<usize>,
    /// Every n-th observe call panics.
    pub panic_every: Option<usize>,
    /// The next this many `SetRoutes` calls fail.
    pub failing_set_routes: usize,
}

impl SimCanary {
    fn new(hash: &str, now: Instant) -> SimCanary {
        SimCanary {
            target_hash: hash.to_owned(),
            primary_hash: String::new(),
            primary_ready_at: now,
            canary_scaled_up: true,
            canary_ready_at: Some(now),
            bootstrapped: false,
            hpa: false,
            hpa_paused: false,
            primary_hpa_synced: 0,
            routes: Routes::default(),
            route_log: Vec::new(),
            traffic: Traffic::default(),
            custom_metrics: BTreeMap::new(),
            hook_scripts: BTreeMap::new(),
            hook_log: Vec::new(),
            status: None,
            status_log: Vec::new(),
            events: Vec::new(),
            alerts: Vec::new(),
            observe_calls: 0,
            panic_on_observe: Vec::new(),
            panic_every: None,
            failing_set_routes: 0,
        }
    }

    /// Canary weights in the order the router was told them.
    pub fn weights(&self) -> Vec<i32> {
        self.route_log.iter().map(|(_, r)| r.canary).collect()
    }

    pub fn messages(&self) -> Vec<String> {
        self.events.iter().map(|e| e.message.clone()).collect()
    }
}

#[derive(Debug, Default)]
struct State {
    canaries: BTreeMap<CanaryKey, SimCanary>,
    router_in_flight: usize,
    router_max_in_flight: usize,
    metrics_in_flight: usize,
    metrics_max_in_flight: usize,
    metric_queries: usize,
    notifications_started: usize,
}

// A panic elsewhere must not wedge the sim: take the data regardless.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The simulated cluster; clone the `Arc` to share it.
#[derive(Debug)]
pub struct SimCluster {
    config: SimConfig,
    origin: Instant,
    state: Arc<Mutex<State>>,
}

impl SimCluster {
    pub fn new(config: SimConfig) -> Arc<SimCluster> {
        Arc::new(SimCluster {
            config,
            origin: Instant::now(),
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// Every port, served by this cluster.
    pub fn ports(self: &Arc<Self>) -> Ports {
        Ports::all(self.clone())
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs `f` on the canary's state, if it exists.
    fn with<T>(&self, key: &CanaryKey, f: impl FnOnce(&mut SimCanary) -> T) -> Option<T> {
        self.lock().canaries.get_mut(key).map(f)
    }

    /// Creates the target deployment, or rolls out a new revision of it.
    pub fn deploy(&self, key: &CanaryKey, hash: &str) {
        let now = Instant::now();
        let ready_at = now + self.config.ready_delay;
        let mut state = self.lock();
        match state.canaries.get_mut(key) {
            Some(canary) => {
                canary.target_hash = hash.to_owned();
                if canary.canary_scaled_up {
                    canary.canary_ready_at = Some(ready_at);
                }
            }
            None => {
                state
                    .canaries
                    .insert(key.clone(), SimCanary::new(hash, now));
            }
        }
    }

    /// The primary rolls out again (an autoscaler adding replicas, say):
    /// not ready for `ready_delay`.
    pub fn roll_primary(&self, key: &CanaryKey) {
        let at = Instant::now() + self.config.ready_delay;
        self.with(key, |c| c.primary_ready_at = at);
    }

    pub fn set_hpa(&self, key: &CanaryKey, hpa: bool) {
        self.with(key, |c| c.hpa = hpa);
    }

    pub fn set_traffic(&self, key: &CanaryKey, request_rate: f64) {
        self.with(key, |c| c.traffic.request_rate = request_rate);
    }

    /// Fault profile of one revision (by pod-template hash).
    pub fn set_fault(&self, key: &CanaryKey, revision: &str, fault: Fault) {
        self.with(key, |c| c.traffic.faults.insert(revision.to_owned(), fault));
    }

    pub fn set_custom_metric(&self, key: &CanaryKey, name: &str, value: f64) {
        self.with(key, |c| c.custom_metrics.insert(name.to_owned(), value));
    }

    pub fn script_hook(&self, key: &CanaryKey, hook: &str, answers: Vec<WebhookAnswer>) {
        self.with(key, |c| {
            c.hook_scripts.insert(hook.to_owned(), answers.into())
        });
    }

    /// Makes the `nth` (1-based) observe call of this canary panic.
    pub fn panic_on_observe(&self, key: &CanaryKey, nth: usize) {
        self.with(key, |c| c.panic_on_observe.push(nth));
    }

    /// Makes every `n`-th observe call of this canary panic.
    pub fn panic_every_observe(&self, key: &CanaryKey, n: usize) {
        self.with(key, |c| c.panic_every = Some(n.max(1)));
    }

    /// No more injected panics for this canary.
    pub fn stop_panics(&self, key: &CanaryKey) {
        self.with(key, |c| {
            c.panic_every = None;
            c.panic_on_observe.clear();
        });
    }

    /// Makes the next `count` `SetRoutes` calls of this canary fail.
    pub fn fail_set_routes(&self, key: &CanaryKey, count: usize) {
        self.with(key, |c| c.failing_set_routes = count);
    }

    /// A copy of the canary's simulated state.
    pub fn canary(&self, key: &CanaryKey) -> Option<SimCanary> {
        self.with(key, |c| c.clone())
    }

    /// Most router calls that were ever in flight at once.
    pub fn router_max_in_flight(&self) -> usize {
        self.lock().router_max_in_flight
    }

    pub fn metrics_max_in_flight(&self) -> usize {
        self.lock().metrics_max_in_flight
    }

    /// Metric queries answered.
    pub fn metric_queries(&self) -> usize {
        self.lock().metric_queries
    }

    pub fn notifications_started(&self) -> usize {
        self.lock().notifications_started
    }
}

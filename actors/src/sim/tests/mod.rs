//! Actor tests on the simulated cluster, under paused tokio time.

mod arbiters;
mod backpressure;
mod behaviour;
mod fairness;
mod fleet;
mod single;
mod supervision;

use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;

use super::{SimCluster, SimConfig};
use crate::actors::{ArbiterPool, CanaryState, Clock, GetState, RuntimeConfig, Services};
use crate::model::spec::{
    AnalysisSpec, CanarySpec, HookType, MetricSpec, TargetRef, ThresholdRange, WebhookSpec,
};
use crate::ports::{CanaryKey, Ports};
use crate::registry::Registry;

pub struct Harness {
    pub sim: Arc<SimCluster>,
    pub registry: Registry,
}

/// Pauses time, builds a sim and a registry on the current arbiter.
pub fn harness(sim: SimConfig, runtime: RuntimeConfig) -> Harness {
    let sim = SimCluster::new(sim);
    let ports = sim.ports();
    harness_on(sim, ports, runtime)
}

/// [`harness`] with `ports` (some of them the sim's) in front of `sim`.
pub fn harness_on(sim: Arc<SimCluster>, ports: Ports, runtime: RuntimeConfig) -> Harness {
    tokio::time::pause();
    let services = Services::start(
        ports,
        runtime,
        Clock::starting_at(1_600_000_000),
        &Arbiter::current(),
    );
    Harness {
        sim,
        registry: Registry::new(services, ArbiterPool::current()),
    }
}

impl Harness {
    pub async fn state(&self, key: &CanaryKey) -> CanaryState {
        let addr = self.registry.addr(key).expect("registered");
        addr.send(GetState).await.expect("actor alive")
    }
}

/// Canary `name` in `namespace` targeting a Deployment of the same name.
pub fn spec(namespace: &str, name: &str, analysis: AnalysisSpec) -> CanarySpec {
    CanarySpec {
        name: name.into(),
        namespace: namespace.into(),
        target: TargetRef {
            kind: "Deployment".into(),
            name: name.into(),
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

pub fn analysis(step: i32, max: i32, threshold: i32) -> AnalysisSpec {
    let builtin = |name: &str, min, max| MetricSpec {
        name: name.into(),
        interval: "1m".into(),
        threshold_range: Some(ThresholdRange { min, max }),
        ..MetricSpec::default()
    };
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

pub fn hook(name: &str, kind: HookType) -> WebhookSpec {
    WebhookSpec::new(name, kind, "http://flagger-loadtester.test/")
}

pub const MINUTE: Duration = Duration::from_secs(60);

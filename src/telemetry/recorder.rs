//! Flagger's metric series, names and labels as `pkg/metrics/recorder.go`
//! exposes them, and Serin's own series beside them.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Prometheus' Go client `DefBuckets`, which Flagger's histogram uses.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    version: String,
    mesh_provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CanaryLabels {
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    workload: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    name: String,
    namespace: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    name: String,
    namespace: String,
    deployment_strategy: String,
    analysis_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    verb: String,
    resource: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Flagger's `flagger_canary_status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusValue {
    Progressing = 0,
    Other = 1,
    Failed = 2,
}

/// All series, registered once; cheap to clone and share.
#[derive(Clone)]
pub struct Recorder {
    info: Family<InfoLabels, Gauge>,
    total: Family<NamespaceLabels, Gauge>,
    status: Family<CanaryLabels, Gauge>,
    weight: Family<WorkloadLabels, Gauge>,
    duration: Family<CanaryLabels, Histogram>,
    metric_analysis: Family<MetricLabels, FloatGauge>,
    successes: Family<OutcomeLabels, Counter>,
    failures: Family<OutcomeLabels, Counter>,
    actor_restarts: Counter,
    steps_deferred: Counter,
    tick_lateness: Histogram,
    api_requests: Family<ApiLabels, Counter>,
}

impl Recorder {
    /// Creates the series and registers them in `registry`.
    pub fn new(registry: &mut Registry, version: &str, mesh_provider: &str) -> Recorder {
        let recorder = Recorder {
            info: Family::default(),
            total: Family::default(),
            status: Family::default(),
            weight: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(DEFAULT_BUCKETS)),
            metric_analysis: Family::default(),
            successes: Family::default(),
            failures: Family::default(),
            actor_restarts: Counter::default(),
            steps_deferred: Counter::default(),
            tick_lateness: Histogram::new(DEFAULT_BUCKETS),
            api_requests: Family::default(),
        };
        let r = &recorder;
        registry.register(
            "flagger_info",
            "Flagger version and mesh provider information",
            r.info.clone(),
        );
        registry.register(
            "flagger_canary_total",
            "Total number of canary object",
            r.total.clone(),
        );
        registry.register(
            "flagger_canary_status",
            "Last canary analysis result (0 = progressing, 1 = other, 2 = failed)",
            r.status.clone(),
        );
        registry.register(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            r.weight.clone(),
        );
        registry.register(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis",
            r.duration.clone(),
        );
        registry.register(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            r.metric_analysis.clone(),
        );
        registry.register(
            "flagger_canary_successes",
            "Total number of canary successes",
            r.successes.clone(),
        );
        registry.register(
            "flagger_canary_failures",
            "Total number of canary failures",
            r.failures.clone(),
        );
        registry.register(
            "serin_actor_restarts",
            "Canary actors restarted after a panic, reloaded from their status",
            r.actor_restarts.clone(),
        );
        registry.register(
            "serin_steps_deferred",
            "Analysis steps given up because of Serin's own congestion and retried at the next tick",
            r.steps_deferred.clone(),
        );
        registry.register(
            "serin_tick_lateness_seconds",
            "How late analysis ticks start against their schedule",
            r.tick_lateness.clone(),
        );
        registry.register(
            "serin_api_requests",
            "Kubernetes API requests by verb and resource",
            r.api_requests.clone(),
        );
        recorder
            .info
            .get_or_create(&InfoLabels {
                version: version.to_string(),
                mesh_provider: mesh_provider.to_string(),
            })
            .set(1);
        recorder
    }

    pub fn set_total(&self, namespace: &str, count: i64) {
        self.total
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_string(),
            })
            .set(count);
    }

    /// `name` is the target's name, as Flagger labels it.
    pub fn set_status(&self, name: &str, namespace: &str, value: StatusValue) {
        self.status
            .get_or_create(&canary(name, namespace))
            .set(value as i64);
    }

    /// Flagger sets two series: `<target>-primary` and `<target>`.
    pub fn set_weight(&self, target: &str, namespace: &str, primary: i64, canary_weight: i64) {
        let labels = |workload: String| WorkloadLabels {
            workload,
            namespace: namespace.to_string(),
        };
        self.weight
            .get_or_create(&labels(format!("{target}-primary")))
            .set(primary);
        self.weight
            .get_or_create(&labels(target.to_string()))
            .set(canary_weight);
    }

    pub fn observe_duration(&self, name: &str, namespace: &str, seconds: f64) {
        self.duration
            .get_or_create(&canary(name, namespace))
            .observe(seconds);
    }

    pub fn set_metric_analysis(&self, name: &str, namespace: &str, metric: &str, value: f64) {
        let labels = MetricLabels {
            name: name.to_string(),
            namespace: namespace.to_string(),
            metric: metric.to_string(),
        };
        self.metric_analysis.get_or_create(&labels).set(value);
    }

    /// `strategy` is `canary`, `blue-green` or `ab-testing`; `skipped` gives
    /// `analysis_status="skipped"`, else `completed`.
    pub fn count_success(&self, name: &str, namespace: &str, strategy: &str, skipped: bool) {
        self.successes
            .get_or_create(&outcome(name, namespace, strategy, skipped))
            .inc();
    }

    pub fn count_failure(&self, name: &str, namespace: &str, strategy: &str) {
        self.failures
            .get_or_create(&outcome(name, namespace, strategy, false))
            .inc();
    }

    pub fn count_actor_restart(&self) {
        self.actor_restarts.inc();
    }

    pub fn observe_tick_lateness(&self, seconds: f64) {
        self.tick_lateness.observe(seconds);
    }

    pub fn count_api_request(&self, verb: &str, resource: &str) {
        self.api_requests
            .get_or_create(&ApiLabels {
                verb: verb.to_string(),
                resource: resource.to_string(),
            })
            .inc();
    }
}

fn canary(name: &str, namespace: &str) -> CanaryLabels {
    CanaryLabels {
        name: name.to_string(),
        namespace: namespace.to_string(),
    }
}

fn outcome(name: &str, namespace: &str, strategy: &str, skipped: bool) -> OutcomeLabels {
    OutcomeLabels {
        name: name.to_string(),
        namespace: namespace.to_string(),
        deployment_strategy: strategy.to_string(),
        analysis_status: if skipped { "skipped" } else { "completed" }.to_string(),
    }
}

/// Step timings from the canary actors.
impl serin_actors::ports::StepObserver for Recorder {
    fn analysis_step(&self, key: &serin_actors::ports::CanaryKey, elapsed: std::time::Duration) {
        self.observe_duration(&key.name, &key.namespace, elapsed.as_secs_f64());
    }

    fn tick_lateness(&self, late: std::time::Duration) {
        self.observe_tick_lateness(late.as_secs_f64());
    }

    fn step_deferred(&self, _key: &serin_actors::ports::CanaryKey) {
        self.steps_deferred.inc();
    }

    fn actor_restarted(&self, _key: &serin_actors::ports::CanaryKey) {
        self.count_actor_restart();
    }

    fn run_succeeded(&self, spec: &serin_actors::model::spec::CanarySpec, skipped: bool) {
        let strategy = strategy_label(spec.analysis.strategy());
        self.count_success(&spec.name, &spec.namespace, strategy, skipped);
    }

    fn run_failed(&self, spec: &serin_actors::model::spec::CanarySpec) {
        let strategy = strategy_label(spec.analysis.strategy());
        self.count_failure(&spec.name, &spec.namespace, strategy);
    }
}

/// Flagger's `deployment_strategy` label.
fn strategy_label(strategy: serin_actors::model::spec::Strategy) -> &'static str {
    use serin_actors::model::spec::Strategy;
    match strategy {
        Strategy::Canary => "canary",
        Strategy::BlueGreen => "blue-green",
        Strategy::AbTesting => "ab-testing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn exposition(f: impl FnOnce(&Recorder)) -> String {
        let mut registry = Registry::default();
        let recorder = Recorder::new(&mut registry, "0.1.0", "nginx");
        f(&recorder);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn flagger_series_have_flaggers_names_and_labels() {
        let text = exposition(|r| {
            r.set_total("test", 1);
            r.set_status("podinfo", "test", StatusValue::Progressing);
            r.set_weight("podinfo", "test", 95, 5);
            r.observe_duration("podinfo", "test", 0.2);
            r.set_metric_analysis("podinfo", "test", "request-success-rate", 99.5);
            r.count_success("podinfo", "test", "canary", false);
            r.count_failure("podinfo", "test", "blue-green");
        });
        for line in [
            r#"flagger_info{version="0.1.0",mesh_provider="nginx"} 1"#,
            r#"flagger_canary_total{namespace="test"} 1"#,
            r#"flagger_canary_status{name="podinfo",namespace="test"} 0"#,
            r#"flagger_canary_weight{workload="podinfo-primary",namespace="test"} 95"#,
            r#"flagger_canary_weight{workload="podinfo",namespace="test"} 5"#,
            r#"flagger_canary_duration_seconds_count{name="podinfo",namespace="test"} 1"#,
            r#"flagger_canary_metric_analysis{name="podinfo",namespace="test",metric="request-success-rate"} 99.5"#,
            r#"flagger_canary_successes_total{name="podinfo",namespace="test",deployment_strategy="canary",analysis_status="completed"} 1"#,
            r#"flagger_canary_failures_total{name="podinfo",namespace="test",deployment_strategy="blue-green",analysis_status="completed"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn serin_series_are_exposed() {
        let text = exposition(|r| {
            r.count_actor_restart();
            r.observe_tick_lateness(0.01);
            r.count_api_request("patch", "canaries");
        });
        assert!(text.contains("serin_actor_restarts_total 1"), "{text}");
        assert!(
            text.contains("serin_tick_lateness_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"serin_api_requests_total{verb="patch",resource="canaries"} 1"#),
            "{text}"
        );
    }
}

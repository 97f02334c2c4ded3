//! Serin's own congestion never decides a canary: a step that gets no answer
//! because of Serin (a full line, a call that could not start in time, a
//! port actor gone) is deferred to the next tick; the provider's failures
//! stay failed checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::*;
use crate::events::text;
use crate::model::observe::MetricAnswer;
use crate::model::spec::MetricSpec;
use crate::model::status::Phase;
use crate::ports::{CanaryKey, MetricQuery, MetricsPort, PortError, PortFuture};

/// The sim's metrics, but the next `armed` queries fail with `error`.
struct Faulty {
    sim: Arc<SimCluster>,
    error: PortError,
    armed: AtomicUsize,
}

impl Faulty {
    fn arm(&self, calls: usize) {
        self.armed.store(calls, Ordering::SeqCst);
    }
}

impl MetricsPort for Faulty {
    fn check(&self, query: &MetricQuery, deadline: Instant) -> PortFuture<MetricAnswer> {
        let fail = self
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            let error = self.error.clone();
            return Box::pin(async move { Err(error) });
        }
        self.sim.check(query, deadline)
    }

    fn providers_available(
        &self,
        key: &CanaryKey,
        source: &crate::model::source::Source,
        metrics: &[MetricSpec],
        deadline: Instant,
    ) -> PortFuture<Result<(), String>> {
        self.sim.providers_available(key, source, metrics, deadline)
    }
}

/// Runs a rollout with `armed` metric queries failing with `error`, from
/// the first step of the analysis on; returns the harness after 20 minutes.
async fn rollout_with_failing_metrics(error: PortError, armed: usize) -> (Harness, CanaryKey) {
    let sim = SimCluster::new(SimConfig::default());
    let faulty = Arc::new(Faulty {
        sim: sim.clone(),
        error,
        armed: AtomicUsize::new(0),
    });
    let ports = Ports {
        metrics: faulty.clone(),
        ..sim.ports()
    };
    let h = harness_on(sim, ports, RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    h.registry
        .upsert(spec("test", "podinfo", analysis(10, 50, 2)))
        .await
        .unwrap();
    sleep(MINUTE).await;
    assert_eq!(h.state(&key).await.status.phase, Phase::Initialized);
    faulty.arm(armed);
    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();
    for _ in 0..20 {
        sleep(MINUTE).await;
    }
    (h, key)
}

fn deferral_events(h: &Harness, key: &CanaryKey) -> Vec<String> {
    h.sim
        .canary(key)
        .unwrap()
        .events
        .iter()
        .filter(|e| e.message.contains("delayed by Serin"))
        .map(|e| e.message.clone())
        .collect()
}

async fn assert_deferred_not_decided(error: PortError) {
    let (h, key) = rollout_with_failing_metrics(error.clone(), 3).await;
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(
        h.state(&key).await.status.phase,
        Phase::Succeeded,
        "{error}: {:#?}",
        canary.events
    );
    assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0], "{error}");
    assert!(
        canary.status_log.iter().all(|s| s.failed_checks == 0),
        "{error}: no check failed"
    );
    assert!(
        !canary.messages().iter().any(|m| m.starts_with("Halt")),
        "{error}: {:?}",
        canary.messages()
    );
    let stats = &h.registry.services().stats;
    assert_eq!(stats.deferred_steps.load(Ordering::Relaxed), 3, "{error}");
    // Reported once for the run, as a Warning.
    let spec = spec("test", "podinfo", analysis(10, 50, 2));
    let want = text::step_deferred(&spec, &format!("metric request-success-rate: {error}"));
    assert_eq!(deferral_events(&h, &key), vec![want], "{error}");
    let event = canary
        .events
        .iter()
        .find(|e| e.message.contains("delayed by Serin"))
        .unwrap();
    assert_eq!(event.event_type, crate::events::EventType::Warning);
}

#[actix::test]
async fn a_full_line_defers_the_step() {
    assert_deferred_not_decided(PortError::Overloaded("metrics")).await;
}

#[actix::test]
async fn a_call_that_could_not_start_in_time_defers_the_step() {
    assert_deferred_not_decided(PortError::Congested(
        "the step's deadline passed in the line",
    ))
    .await;
}

#[actix::test]
async fn a_port_actor_gone_defers_the_step() {
    assert_deferred_not_decided(PortError::Unavailable("mailbox closed".into())).await;
}

#[actix::test]
async fn the_providers_own_timeout_is_still_a_failed_check() {
    let (h, key) = rollout_with_failing_metrics(PortError::Timeout, 1).await;
    let canary = h.sim.canary(&key).unwrap();
    assert!(
        canary.status_log.iter().any(|s| s.failed_checks == 1),
        "the timeout counted: {:?}",
        canary.status_log
    );
    assert!(
        canary
            .messages()
            .iter()
            .any(|m| m.contains("deadline exceeded")),
        "{:?}",
        canary.messages()
    );
    // One failure is under the threshold of 2: the run still promotes.
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    assert_eq!(
        h.registry
            .services()
            .stats
            .deferred_steps
            .load(Ordering::Relaxed),
        0
    );
    assert!(deferral_events(&h, &key).is_empty());
}

/// Many canaries, a slow Prometheus and few query slots: demand far above
/// what the port can serve, so steps wait and many are deferred, but no
/// canary is rolled back and all are promoted.
#[actix::test]
async fn congestion_delays_a_fleet_but_rolls_nothing_back() {
    let sim = SimConfig {
        metrics_latency: Duration::from_millis(200),
        ..SimConfig::default()
    };
    let runtime = RuntimeConfig {
        port_concurrency: 2,
        ..RuntimeConfig::default()
    };
    let h = harness(sim, runtime);
    let keys: Vec<CanaryKey> = (0..300)
        .map(|i| CanaryKey::new(format!("ns-{}", i % 3), format!("app-{i}")))
        .collect();
    let mut fast = analysis(10, 50, 1);
    fast.interval = "10s".into();
    for k in &keys {
        h.sim.deploy(k, "v1");
        let spec = spec(&k.namespace, &k.name, fast.clone());
        h.registry.upsert(spec).await.unwrap();
    }
    sleep(MINUTE).await;
    for k in &keys {
        h.sim.deploy(k, "v2");
        h.registry.target_changed(k).unwrap();
    }
    // 300 canaries × 2 queries per 10 s step = 60 queries/s asked; two
    // slots of 200 ms serve 10/s.
    let mut done = 0;
    for _ in 0..300 {
        sleep(MINUTE).await;
        done = 0;
        for k in &keys {
            if h.state(k).await.status.phase == Phase::Succeeded {
                done += 1;
            }
        }
        if done == keys.len() {
            break;
        }
    }
    let stats = &h.registry.services().stats;
    assert_eq!(stats.failures.load(Ordering::Relaxed), 0, "no rollback");
    assert_eq!(done, keys.len(), "every canary promoted");
    assert!(
        stats.deferred_steps.load(Ordering::Relaxed) > 0,
        "congested"
    );
    assert!(h.sim.metrics_max_in_flight() <= 2);
    for k in &keys {
        let canary = h.sim.canary(k).unwrap();
        assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0], "{k}");
        assert!(
            canary.status_log.iter().all(|s| s.failed_checks == 0),
            "{k}"
        );
    }
}

/// The fleet the issue measured: 10,000 healthy canaries revised at once,
/// a Prometheus answering in 200 ms and the default port concurrency.
/// Before deferral existed, Serin's own queue rolled back 5,945 of them.
#[actix::test]
async fn ten_thousand_canaries_behind_a_slow_prometheus_are_all_promoted() {
    let sim = SimConfig {
        metrics_latency: Duration::from_millis(200),
        ..SimConfig::default()
    };
    let h = harness(sim, RuntimeConfig::default());
    let keys: Vec<CanaryKey> = (0..10_000)
        .map(|i| CanaryKey::new(format!("ns-{}", i % 50), format!("app-{i}")))
        .collect();
    let mut fast = analysis(10, 50, 1);
    fast.interval = "10s".into();
    for k in &keys {
        h.sim.deploy(k, "v1");
        h.registry
            .upsert(spec(&k.namespace, &k.name, fast.clone()))
            .await
            .unwrap();
    }
    sleep(MINUTE).await;
    for k in &keys {
        h.sim.deploy(k, "v2");
        h.registry.target_changed(k).unwrap();
    }
    let stats = &h.registry.services().stats;
    let started = tokio::time::Instant::now();
    for _ in 0..60 {
        sleep(MINUTE).await;
        let ended =
            stats.successes.load(Ordering::Relaxed) + stats.failures.load(Ordering::Relaxed);
        if ended == keys.len() as u64 {
            break;
        }
    }
    println!(
        "10,000 canaries, metrics 200 ms, {} query slots: all ended after {:?} (virtual); {} steps deferred, {} queries",
        RuntimeConfig::default().port_concurrency,
        started.elapsed(),
        stats.deferred_steps.load(Ordering::Relaxed),
        h.sim.metric_queries(),
    );
    assert_eq!(stats.failures.load(Ordering::Relaxed), 0, "no rollback");
    assert_eq!(stats.successes.load(Ordering::Relaxed), 10_000);
    assert!(
        stats.deferred_steps.load(Ordering::Relaxed) > 0,
        "it was congested"
    );
}

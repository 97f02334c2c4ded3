//! Scheduling rules of the canary actor: no overlap, interval changes,
//! failed effects.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::model::status::Phase;
use crate::ports::CanaryKey;
use crate::registry::Upsert;

async fn start_rollout(h: &Harness, key: &CanaryKey, spec: CanarySpec) {
    h.sim.deploy(key, "v1");
    h.registry.upsert(spec).await.unwrap();
    sleep(MINUTE).await;
    assert_eq!(h.state(key).await.status.phase, Phase::Initialized);
    h.sim.deploy(key, "v2");
    h.registry.target_changed(key).unwrap();
}

async fn wait_for(h: &Harness, key: &CanaryKey, pred: impl Fn(&crate::sim::SimCanary) -> bool) {
    for _ in 0..600 {
        if pred(&h.sim.canary(key).unwrap()) {
            return;
        }
        sleep(Duration::from_secs(1)).await;
    }
    panic!("condition not reached for {key}");
}

fn gaps(h: &Harness, key: &CanaryKey) -> Vec<Duration> {
    let canary = h.sim.canary(key).unwrap();
    let times: Vec<Duration> = canary.route_log.iter().map(|(t, _)| *t).collect();
    times.windows(2).map(|p| p[1] - p[0]).collect()
}

#[actix::test]
async fn slow_steps_never_overlap() {
    // Each step makes two 45s router calls: longer than the 1m interval.
    let sim = SimConfig {
        router_latency: Duration::from_secs(45),
        ..SimConfig::default()
    };
    let runtime = RuntimeConfig {
        step_timeout: Duration::from_secs(300),
        call_timeout: Duration::from_secs(60),
        ..RuntimeConfig::default()
    };
    let h = harness(sim, runtime);
    let key = CanaryKey::new("test", "podinfo");
    start_rollout(&h, &key, spec("test", "podinfo", analysis(10, 50, 2))).await;
    for _ in 0..30 {
        sleep(MINUTE).await;
    }
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0]);
    let stats = &h.registry.services().stats;
    assert!(stats.skipped_ticks.load(Ordering::Relaxed) > 0);
    // One step at a time: consecutive weight changes are two router calls apart at least.
    assert!(gaps(&h, &key).iter().all(|g| *g >= Duration::from_secs(90)));
}

#[actix::test]
async fn a_new_interval_rearms_the_timer_without_an_extra_step() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    let mut spec = spec("test", "podinfo", analysis(10, 50, 2));
    start_rollout(&h, &key, spec.clone()).await;
    wait_for(&h, &key, |c| c.routes.canary == 20).await;
    let steps_before = h.sim.canary(&key).unwrap().route_log.len();

    spec.analysis.interval = "2m".into();
    assert_eq!(h.registry.upsert(spec).await, Ok(Upsert::Updated));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(h.sim.canary(&key).unwrap().route_log.len(), steps_before);
    for _ in 0..20 {
        sleep(MINUTE).await;
    }
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0]);
    let gaps = gaps(&h, &key);
    assert_eq!(gaps[0], MINUTE);
    assert!(gaps[2..4].iter().all(|g| *g == 2 * MINUTE), "{gaps:?}");
}

#[actix::test]
async fn a_failed_route_change_is_not_persisted_and_retried() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    start_rollout(&h, &key, spec("test", "podinfo", analysis(10, 50, 2))).await;
    wait_for(&h, &key, |c| c.routes.canary == 20).await;
    let persisted = h.sim.canary(&key).unwrap().status_log.len();
    h.sim.fail_set_routes(&key, 1);

    sleep(MINUTE).await;
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.routes.canary, 20, "the router refused 30");
    assert_eq!(canary.status_log.len(), persisted, "nothing persisted");
    assert_eq!(h.state(&key).await.status.canary_weight, 20);
    let stats = &h.registry.services().stats;
    assert_eq!(stats.failed_ticks.load(Ordering::Relaxed), 1);

    for _ in 0..10 {
        sleep(MINUTE).await;
    }
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0]);
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    // The event follows SetRoutes, so the refused step left no "weight 30" line.
    let spec = spec("test", "podinfo", analysis(10, 50, 2));
    let advance = crate::events::text::advance_weight(&spec, 30);
    assert_eq!(
        canary.messages().iter().filter(|m| **m == advance).count(),
        1
    );
    let mut weights: Vec<i32> = canary.status_log.iter().map(|s| s.canary_weight).collect();
    weights.dedup();
    assert!(weights.ends_with(&[10, 20, 30, 40, 50, 0]), "{weights:?}");
}

/// A new revision that arrives while the step that ends a run is in flight:
/// the timer is about to go, so no tick would see it; the actor steps once
/// more by itself.
#[actix::test]
async fn a_change_during_the_last_step_of_a_run_is_not_lost() {
    let sim = SimConfig {
        router_latency: Duration::from_secs(5),
        ..SimConfig::default()
    };
    let h = harness(sim, RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    start_rollout(&h, &key, spec("test", "podinfo", analysis(10, 50, 2))).await;
    // Each step spends 10 s in router calls after it observed the target:
    // catch the one that finishes the run (Finalising -> Succeeded).
    let mut caught = false;
    for _ in 0..1200 {
        sleep(Duration::from_secs(1)).await;
        let state = h.state(&key).await;
        if state.in_flight && state.status.phase == Phase::Finalising {
            caught = true;
            break;
        }
    }
    assert!(caught, "the last step of the run, in flight");
    h.sim.deploy(&key, "v3");
    h.registry.target_changed(&key).unwrap();
    for _ in 0..20 {
        sleep(MINUTE).await;
    }
    let canary = h.sim.canary(&key).unwrap();
    let detected = canary
        .messages()
        .iter()
        .filter(|m| m.starts_with("New revision detected"))
        .count();
    assert_eq!(detected, 2, "{:?}", canary.messages());
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    assert_eq!(canary.primary_hash, "v3");
}

/// A new revision that finds the primary not ready (an autoscaler is adding
/// replicas) starts nothing yet; the idle canary, which has no timer, looks
/// again one interval later instead of waiting for another watch event.
#[actix::test]
async fn a_new_revision_behind_an_unready_primary_is_picked_up_later() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    h.registry
        .upsert(spec("test", "podinfo", analysis(10, 50, 2)))
        .await
        .unwrap();
    sleep(MINUTE).await;
    assert_eq!(h.state(&key).await.status.phase, Phase::Initialized);
    h.sim.roll_primary(&key);
    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();
    sleep(Duration::from_secs(5)).await;
    let state = h.state(&key).await;
    assert_eq!(
        state.status.phase,
        Phase::Initialized,
        "primary not ready yet"
    );
    assert!(!state.ticking);
    for _ in 0..15 {
        sleep(MINUTE).await;
    }
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    assert_eq!(h.sim.canary(&key).unwrap().primary_hash, "v2");
    // Once settled it sleeps: no timer, no pending retry.
    let steps = h.sim.canary(&key).unwrap().observe_calls;
    for _ in 0..5 {
        sleep(MINUTE).await;
    }
    assert_eq!(
        h.sim.canary(&key).unwrap().observe_calls,
        steps,
        "idle costs nothing"
    );
}

/// A new Canary's first persisted status is `Initializing`, written by its
/// actor (the status' one writer) before the first step decides anything.
#[actix::test]
async fn a_new_canary_is_written_initializing_first() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    h.registry
        .upsert(spec("test", "podinfo", analysis(10, 50, 2)))
        .await
        .unwrap();
    sleep(MINUTE).await;
    let phases: Vec<Phase> = h
        .sim
        .canary(&key)
        .unwrap()
        .status_log
        .iter()
        .map(|s| s.phase)
        .collect();
    assert_eq!(phases, [Phase::Initializing, Phase::Initialized]);
}

/// Deleting a Canary mid-run: its actor stops stepping and writes
/// `Terminating` (weight and iterations 0) after the step in flight.
#[actix::test]
async fn terminate_stops_the_run_and_writes_terminating() {
    let sim = SimConfig {
        router_latency: Duration::from_secs(5),
        ..SimConfig::default()
    };
    let h = harness(sim, RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    start_rollout(&h, &key, spec("test", "podinfo", analysis(10, 50, 2))).await;
    wait_for(&h, &key, |c| c.routes.canary == 20).await;
    // Catch a step in flight, so Terminate has to wait for it.
    for _ in 0..120 {
        if h.state(&key).await.in_flight {
            break;
        }
        sleep(Duration::from_secs(1)).await;
    }
    assert!(h.state(&key).await.in_flight);
    h.registry.terminate(&key).await.unwrap();
    let canary = h.sim.canary(&key).unwrap();
    let last = canary.status_log.last().unwrap().clone();
    assert_eq!(last.phase, Phase::Terminating);
    assert_eq!((last.canary_weight, last.iterations), (0, 0));
    assert!(
        canary
            .messages()
            .contains(&"Terminating canary podinfo.test".to_string())
    );
    let writes = canary.status_log.len();
    let routes = canary.route_log.len();
    for _ in 0..5 {
        sleep(MINUTE).await;
    }
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.status_log.len(), writes, "no status written after");
    assert_eq!(canary.route_log.len(), routes, "no step after");
    assert!(!h.state(&key).await.ticking);
    // Asked again (another watch event): answered, nothing rewritten.
    h.registry.terminate(&key).await.unwrap();
    assert_eq!(h.sim.canary(&key).unwrap().status_log.len(), writes);
}

//! A panic in a canary's step restarts that canary's actor at once, from its
//! last persisted status; the others never notice. Repeated panics back off
//! and say so.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::events::EventType;
use crate::model::status::Phase;
use crate::ports::CanaryKey;

const FLEET: usize = 200;
const INTERVAL: Duration = Duration::from_secs(10);

fn key(i: usize) -> CanaryKey {
    CanaryKey::new(format!("ns-{}", i % 4), format!("app-{i}"))
}

/// Times of the weight changes of `key`.
fn route_times(h: &Harness, key: &CanaryKey) -> Vec<Duration> {
    let canary = h.sim.canary(key).unwrap();
    canary.route_log.iter().map(|(t, _)| *t).collect()
}

fn assert_on_schedule(h: &Harness, key: &CanaryKey) {
    let times = route_times(h, key);
    // Weights 10..50 one interval apart (the last write, weight 0, comes
    // with the promotion's own steps).
    for pair in times[..5].windows(2) {
        let gap = pair[1].abs_diff(pair[0]);
        assert!(
            gap.abs_diff(INTERVAL) < Duration::from_millis(100),
            "{key}: gap {gap:?} in {times:?}"
        );
    }
}

#[actix::test]
async fn five_percent_panicking_every_third_step_resume_in_place() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let keys: Vec<CanaryKey> = (0..FLEET).map(key).collect();
    let crashing: Vec<CanaryKey> = keys.iter().step_by(20).cloned().collect();
    assert_eq!(crashing.len(), FLEET / 20);
    let mut fast = analysis(10, 50, 2);
    fast.interval = "10s".into();
    for k in &keys {
        h.sim.deploy(k, "v1");
        h.registry
            .upsert(spec(&k.namespace, &k.name, fast.clone()))
            .await
            .unwrap();
    }
    sleep(MINUTE).await;
    for k in &crashing {
        h.sim.panic_every_observe(k, 3);
    }
    for k in &keys {
        h.sim.deploy(k, "v2");
        h.registry.target_changed(k).unwrap();
    }
    for _ in 0..10 {
        sleep(MINUTE).await;
    }

    for k in &keys {
        let canary = h.sim.canary(k).unwrap();
        assert_eq!(h.state(k).await.status.phase, Phase::Succeeded, "{k}");
        assert_eq!(
            canary.weights(),
            vec![10, 20, 30, 40, 50, 0],
            "{k}: no step repeated or skipped"
        );
        let mut persisted: Vec<i32> = canary.status_log.iter().map(|s| s.canary_weight).collect();
        persisted.dedup();
        assert!(
            persisted.ends_with(&[10, 20, 30, 40, 50, 0]),
            "{k}: persisted weights {persisted:?}"
        );
        let advances = canary
            .messages()
            .iter()
            .filter(|m| m.starts_with("Advance"))
            .count();
        assert_eq!(advances, 5, "{k}: one event per step");
        assert_on_schedule(&h, k);
    }
    let stats = &h.registry.services().stats;
    let restarts = stats.restarts.load(Ordering::Relaxed);
    let panics: usize = crashing
        .iter()
        .map(|k| h.sim.canary(k).unwrap().observe_calls / 3)
        .sum();
    assert!(restarts > 0);
    assert_eq!(restarts, panics as u64, "one restart per panic");
    // Restarted by their supervisors, not by the registry's safety net.
    assert_eq!(stats.rebuilds.load(Ordering::Relaxed), 0);
    for k in &crashing {
        assert!(h.registry.addr(k).unwrap().connected(), "{k}");
        assert!(h.state(k).await.status.stalled.is_none(), "{k}");
    }
}

#[actix::test]
async fn a_canary_that_keeps_panicking_backs_off_and_says_so() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    let mut fast = analysis(10, 50, 2);
    fast.interval = "10s".into();
    h.sim.deploy(&key, "v1");
    h.registry
        .upsert(spec("test", "podinfo", fast))
        .await
        .unwrap();
    sleep(MINUTE).await;
    h.sim.panic_every_observe(&key, 1);
    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();

    // Three panics restart at once; then 10 s, 20 s, 40 s, 80 s...
    sleep(Duration::from_secs(75)).await;
    let calls = h.sim.canary(&key).unwrap().observe_calls;
    assert!(
        (5..=7).contains(&calls),
        "backed off after 3: {calls} observe calls"
    );
    let canary = h.sim.canary(&key).unwrap();
    let stalled: Vec<_> = canary
        .events
        .iter()
        .filter(|e| e.message.contains("stalled"))
        .collect();
    assert!(!stalled.is_empty(), "{:?}", canary.messages());
    assert!(stalled.iter().all(|e| e.event_type == EventType::Warning));
    assert!(
        stalled[0].message.contains("panicked 3 times in a row"),
        "{}",
        stalled[0].message
    );
    let persisted = canary.status.clone().unwrap();
    assert!(
        persisted
            .stalled
            .as_deref()
            .is_some_and(|m| m.contains("injected panic")),
        "{persisted:?}"
    );

    // Fixed: the next attempt runs the analysis and clears the condition.
    h.sim.stop_panics(&key);
    for _ in 0..10 {
        sleep(MINUTE).await;
    }
    assert_eq!(h.state(&key).await.status.phase, Phase::Succeeded);
    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.weights(), vec![10, 20, 30, 40, 50, 0]);
    assert_eq!(canary.status.unwrap().stalled, None);
}

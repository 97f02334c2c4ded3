//! Many canaries at once: schedule and bounded I/O beside a slow router and
//! a hung notifier. (Panics: supervision.rs; congestion: backpressure.rs.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::model::status::Phase;
use crate::ports::CanaryKey;

const FLEET: usize = 100;
const CONCURRENCY: usize = 8;

fn key(i: usize) -> CanaryKey {
    CanaryKey::new(format!("ns-{}", i % 4), format!("app-{i}"))
}

#[actix::test]
async fn a_slow_router_and_a_hung_notifier_leave_the_fleet_on_schedule() {
    let sim_config = SimConfig {
        router_latency: Duration::from_millis(100),
        // A notifier that hangs for two minutes on every alert.
        notifier_delay: Duration::from_secs(120),
        ..SimConfig::default()
    };
    let runtime = RuntimeConfig {
        port_concurrency: CONCURRENCY,
        ..RuntimeConfig::default()
    };
    let h = harness(sim_config, runtime);
    let keys: Vec<CanaryKey> = (0..FLEET).map(key).collect();

    for k in &keys {
        h.sim.deploy(k, "v1");
        let spec = spec(&k.namespace, &k.name, analysis(10, 50, 2));
        h.registry.upsert(spec).await.unwrap();
    }
    sleep(Duration::from_secs(5)).await;
    for k in &keys {
        assert_eq!(h.state(k).await.status.phase, Phase::Initialized);
    }

    for k in &keys {
        h.sim.deploy(k, "v2");
        h.registry.target_changed(k).unwrap();
    }
    for _ in 0..90 {
        sleep(Duration::from_secs(10)).await;
    }

    let steps = vec![10, 20, 30, 40, 50, 0];
    for k in &keys {
        let canary = h.sim.canary(k).unwrap();
        assert_eq!(
            canary.weights(),
            steps,
            "{k}: no weight repeated or skipped"
        );
        assert_eq!(h.state(k).await.status.phase, Phase::Succeeded, "{k}");
        assert_eq!(canary.primary_hash, "v2");
        // Persisted weights never go back mid-run, and never repeat a step.
        let mut persisted: Vec<i32> = canary.status_log.iter().map(|s| s.canary_weight).collect();
        persisted.dedup();
        assert!(
            persisted.ends_with(&[10, 20, 30, 40, 50, 0]),
            "{k}: persisted weights {persisted:?}"
        );
    }

    // Every canary stepped exactly one interval apart, router queueing aside.
    let mut first_step = Vec::new();
    for k in &keys {
        let canary = h.sim.canary(k).unwrap();
        let times: Vec<Duration> = canary.route_log.iter().map(|(t, _)| *t).collect();
        for pair in times[..5].windows(2) {
            let gap = pair[1].abs_diff(pair[0]);
            assert!(
                gap.abs_diff(MINUTE) < Duration::from_secs(3),
                "{k}: gap {gap:?}"
            );
        }
        first_step.push(times[0]);
    }
    let spread = first_step
        .iter()
        .max()
        .unwrap()
        .abs_diff(*first_step.iter().min().unwrap());
    assert!(
        spread < Duration::from_secs(3),
        "first steps spread over {spread:?}"
    );

    // Shared ports stayed bounded, and the hung notifier cost no step.
    assert!(h.sim.router_max_in_flight() <= CONCURRENCY);
    assert!(h.sim.router_max_in_flight() > 1, "calls did overlap");
    let stats = &h.registry.services().stats;
    assert!(h.sim.notifications_started() > 0);
    assert!(
        stats.notifications_dropped.load(Ordering::Relaxed) > 0,
        "timeouts recorded"
    );
    assert_eq!(stats.skipped_ticks.load(Ordering::Relaxed), 0);
    // Paused time jumps straight to each deadline: lateness is only the
    // timer wheel's millisecond rounding, and every step was measured.
    assert!(stats.tick_lateness.count() > 0);
    assert!(
        stats.tick_lateness.max() <= Duration::from_millis(1),
        "{:?}",
        stats.tick_lateness
    );
    assert!(stats.steps.load(Ordering::Relaxed) > 0);
    assert!(stats.mean_step_busy() > Duration::ZERO);
    for k in &keys {
        assert!(!h.state(k).await.ticking, "{k}: idle after the run");
    }
}

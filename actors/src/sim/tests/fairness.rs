//! Per-namespace fair queueing: a namespace with thousands of progressing
//! canaries saturates the metrics port, and another namespace's few canaries
//! still step on schedule.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::actors::Histogram;
use crate::model::status::Phase;
use crate::ports::CanaryKey;

const INTERVAL: Duration = Duration::from_secs(10);

/// How late each weight change of `key` came against the first one's grid.
fn lateness(h: &Harness, key: &CanaryKey) -> Vec<Duration> {
    let canary = h.sim.canary(key).unwrap();
    let times: Vec<Duration> = canary.route_log.iter().map(|(t, _)| *t).collect();
    let Some(first) = times.first() else {
        return Vec::new();
    };
    // Weights 10..50: the steps of the analysis, one interval apart.
    times
        .iter()
        .take(5)
        .enumerate()
        .map(|(k, t)| t.saturating_sub(*first + INTERVAL * k as u32))
        .collect()
}

#[actix::test]
async fn a_small_namespace_keeps_its_schedule_beside_a_huge_one() {
    let sim = SimConfig {
        metrics_latency: Duration::from_millis(200),
        ..SimConfig::default()
    };
    let runtime = RuntimeConfig {
        port_concurrency: 16,
        ..RuntimeConfig::default()
    };
    let h = harness(sim, runtime);
    let big: Vec<CanaryKey> = (0..2000)
        .map(|i| CanaryKey::new("tenant-a", format!("app-{i}")))
        .collect();
    let small: Vec<CanaryKey> = (0..5)
        .map(|i| CanaryKey::new("tenant-b", format!("app-{i}")))
        .collect();
    let mut fast = analysis(10, 50, 1);
    fast.interval = "10s".into();
    for k in big.iter().chain(&small) {
        h.sim.deploy(k, "v1");
        h.registry
            .upsert(spec(&k.namespace, &k.name, fast.clone()))
            .await
            .unwrap();
    }
    sleep(MINUTE).await;
    // Namespace A first: its 4,000 queries are in line before B asks.
    for k in big.iter().chain(&small) {
        h.sim.deploy(k, "v2");
        h.registry.target_changed(k).unwrap();
    }
    for _ in 0..3 {
        sleep(MINUTE).await;
    }

    // 2,000 canaries ask 400 queries/s; 16 slots of 200 ms serve 80/s.
    let b = Histogram::default();
    for k in &small {
        assert_eq!(h.state(k).await.status.phase, Phase::Succeeded, "{k}");
        assert_eq!(
            h.sim.canary(k).unwrap().weights(),
            vec![10, 20, 30, 40, 50, 0]
        );
        for late in lateness(&h, k) {
            b.record(late);
        }
    }
    let a = Histogram::default();
    let mut a_done = 0;
    for k in &big {
        if h.state(k).await.status.phase == Phase::Succeeded {
            a_done += 1;
        }
        for late in lateness(&h, k) {
            a.record(late);
        }
    }
    println!(
        "fair queueing, 3 minutes into the run: namespace B (5 canaries): step lateness p50 {:?} p99 {:?} max {:?}; \
         namespace A (2,000): {a_done} promoted, step lateness p50 {:?} p99 {:?} max {:?}",
        b.percentile(50.0),
        b.percentile(99.0),
        b.max(),
        a.percentile(50.0),
        a.percentile(99.0),
        a.max(),
    );
    // B waits at most a turn per query (a slot frees within 200 ms) and its
    // two queries take 400 ms: far under one interval.
    assert!(
        b.percentile(99.0) < Duration::from_secs(2),
        "B's p99 lateness {:?}",
        b.percentile(99.0)
    );
    assert!(a_done < big.len(), "A really was throttled");
    let stats = &h.registry.services().stats;
    assert_eq!(stats.failures.load(Ordering::Relaxed), 0, "no rollback");
    assert!(h.sim.metrics_max_in_flight() <= 16);
}

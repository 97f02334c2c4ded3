//! `serin demo --canaries N`: many canaries at once in real time, a mix of
//! good and faulty revisions across namespaces, to show the actor layer
//! under load.

use std::time::{Duration, Instant};

use serin_actors::Phase;
use serin_actors::actors::{ArbiterPool, Clock, GetState, RuntimeConfig, Services};
use serin_actors::model::spec::{CanarySpec, MetricSpec, ThresholdRange};
use serin_actors::ports::CanaryKey;
use serin_actors::registry::Registry;
use serin_actors::sim::{Fault, SimCluster, SimConfig};

use super::DemoError;
use super::scenarios::demo_spec;

/// What a canary's revision does to its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Good,
    Errors,
    Slow,
}

impl Profile {
    /// Eight in ten revisions are good, one throws errors, one is slow.
    fn of(index: usize) -> Profile {
        match index % 10 {
            8 => Profile::Errors,
            9 => Profile::Slow,
            _ => Profile::Good,
        }
    }

    fn expected(self) -> Phase {
        match self {
            Profile::Good => Phase::Succeeded,
            _ => Phase::Failed,
        }
    }

    fn fault(self) -> Fault {
        match self {
            Profile::Good => Fault {
                error_rate: 0.0,
                latency_ms: 80.0,
            },
            Profile::Errors => Fault {
                error_rate: 25.0,
                latency_ms: 80.0,
            },
            Profile::Slow => Fault {
                error_rate: 0.0,
                latency_ms: 900.0,
            },
        }
    }
}

/// The fleet's spec: the demo canary with bigger steps and both builtin checks.
fn fleet_spec(index: usize) -> Result<CanarySpec, DemoError> {
    let mut spec = demo_spec()?;
    spec.name = format!("app-{index}");
    spec.namespace = format!("team-{}", index % 10);
    spec.target.name = spec.name.clone();
    spec.analysis.step_weight = 10;
    spec.analysis.threshold = 2;
    spec.analysis.webhooks.clear();
    spec.analysis.metrics.push(MetricSpec {
        name: "request-duration".into(),
        interval: "1m".into(),
        threshold_range: Some(ThresholdRange {
            min: None,
            max: Some(500.0),
        }),
        ..MetricSpec::default()
    });
    Ok(spec)
}

/// Runs `count` canaries to completion and prints a summary.
pub async fn run(count: usize, arbiters: usize) -> Result<(), DemoError> {
    let started = Instant::now();
    let sim = SimCluster::new(SimConfig {
        ready_delay: Duration::from_secs(2),
        ..SimConfig::default()
    });
    let pool = ArbiterPool::spawn(arbiters.max(1));
    let services = Services::start(
        sim.ports(),
        RuntimeConfig::default(),
        Clock::system(),
        &actix::Arbiter::current(),
    );
    let stats = services.stats.clone();
    let registry = Registry::new(services, pool);

    let mut keys = Vec::with_capacity(count);
    for index in 0..count {
        let spec = fleet_spec(index)?;
        let key = CanaryKey::of(&spec);
        sim.deploy(&key, "v1");
        sim.set_fault(&key, "v2", Profile::of(index).fault());
        registry
            .upsert(spec)
            .await
            .map_err(|e| DemoError::Actor(e.to_string()))?;
        keys.push(key);
    }
    wait_all(
        &registry,
        &keys,
        |p| p == Phase::Initialized,
        Duration::from_secs(120),
    )
    .await?;
    println!(
        "{count} canaries initialised in {:.1}s; rolling out a new revision of every one",
        started.elapsed().as_secs_f64()
    );
    for key in &keys {
        sim.deploy(key, "v2");
        registry
            .target_changed(key)
            .map_err(|e| DemoError::Actor(e.to_string()))?;
    }
    let phases = wait_all(
        &registry,
        &keys,
        |p| matches!(p, Phase::Succeeded | Phase::Failed),
        Duration::from_secs(600),
    )
    .await?;
    registry.shutdown();

    let promoted = phases.iter().filter(|p| **p == Phase::Succeeded).count();
    let failed = phases.iter().filter(|p| **p == Phase::Failed).count();
    let mismatches = phases
        .iter()
        .enumerate()
        .filter(|(i, p)| Profile::of(*i).expected() != **p)
        .count();
    println!("canaries:           {count} in 10 namespaces on {arbiters} arbiters");
    println!("promoted:           {promoted}");
    println!("rolled back:        {failed}");
    println!("unexpected phase:   {mismatches}");
    println!(
        "analysis ticks:     {}",
        serin_actors::actors::Stats::get(&stats.ticks)
    );
    println!(
        "skipped ticks:      {}",
        serin_actors::actors::Stats::get(&stats.skipped_ticks)
    );
    let lateness = &stats.tick_lateness;
    println!(
        "tick lateness:      p50 {:.1} ms, p99 {:.1} ms over {} ticks",
        lateness.percentile(50.0).as_secs_f64() * 1000.0,
        lateness.percentile(99.0).as_secs_f64() * 1000.0,
        lateness.count()
    );
    println!(
        "peak memory (RSS):  {}",
        peak_rss().map_or("unknown".to_string(), |kb| format!(
            "{:.1} MiB",
            kb as f64 / 1024.0
        ))
    );
    println!(
        "wall time:          {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if mismatches > 0 {
        return Err(DemoError::Mismatches(mismatches));
    }
    Ok(())
}

/// Polls every canary until `done` holds for all, returning their phases.
async fn wait_all(
    registry: &Registry,
    keys: &[CanaryKey],
    done: impl Fn(Phase) -> bool,
    limit: Duration,
) -> Result<Vec<Phase>, DemoError> {
    let deadline = Instant::now() + limit;
    loop {
        let mut phases = Vec::with_capacity(keys.len());
        for key in keys {
            let addr = registry
                .addr(key)
                .ok_or_else(|| DemoError::Actor(format!("no actor for {key}")))?;
            let state = addr
                .send(GetState)
                .await
                .map_err(|e| DemoError::Actor(e.to_string()))?;
            phases.push(state.status.phase);
        }
        if phases.iter().all(|p| done(*p)) {
            return Ok(phases);
        }
        if Instant::now() > deadline {
            let stuck = phases
                .iter()
                .find(|p| !done(**p))
                .copied()
                .unwrap_or_default();
            return Err(DemoError::Stuck {
                scenario: "fleet",
                phase: stuck,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `VmHWM` from /proc/self/status, in KiB.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

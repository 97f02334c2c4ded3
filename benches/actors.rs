//! Actor-layer benchmark: N canaries all progressing at once on the simulated
//! cluster, in real time, canary actors on two arbiter threads.
//!
//! `cargo bench --bench actors`; `SERIN_BENCH_CANARIES=1000` for a quick run.
//! Each size runs in a child process so RSS deltas don't share a heap.
//! Exits non-zero if any canary does not end `Succeeded`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use actix::Arbiter;
use futures::future::join_all;
use serin_actors::actors::{
    ArbiterPool, CanaryState, Clock, GetState, RuntimeConfig, Services, Stats,
};
use serin_actors::model::spec::{AnalysisSpec, CanarySpec, MetricSpec, TargetRef, ThresholdRange};
use serin_actors::model::status::Phase;
use serin_actors::ports::CanaryKey;
use serin_actors::registry::Registry;
use serin_actors::sim::{SimCluster, SimConfig};

const SIZES_VAR: &str = "SERIN_BENCH_CANARIES";
const DEFAULT_SIZES: &str = "1000,10000";
const INTERVAL: Duration = Duration::from_secs(10);
const ARBITERS: usize = 2;
/// Initialisation and "every actor ticking" must happen within this.
const SETUP_LIMIT: Duration = Duration::from_secs(120);
/// 5 weight steps + promotion + finalising is ~8 intervals; allow 30.
const ROLLOUT_LIMIT: Duration = Duration::from_secs(300);
/// Concurrent `GetState` requests when polling the fleet.
const POLL_CHUNK: usize = 1000;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and
    // then a small fleet only checks the benchmark still runs.
    let benching = std::env::args().any(|a| a == "--bench");
    let default_sizes = if benching { DEFAULT_SIZES } else { "100" };
    let sizes =
        match parse_sizes(&std::env::var(SIZES_VAR).unwrap_or_else(|_| default_sizes.into())) {
            Ok(sizes) => sizes,
            Err(bad) => {
                eprintln!("{SIZES_VAR}: not a list of counts: {bad:?}");
                return ExitCode::from(2);
            }
        };
    match sizes.as_slice() {
        [n] => run_one(*n),
        _ => run_children(&sizes),
    }
}

fn parse_sizes(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace('_', "")
                .parse::<usize>()
                .map_err(|_| s.to_owned())
        })
        .filter(|r| r != &Ok(0))
        .collect()
}

/// One child process per size: a fresh heap for each RSS measurement.
fn run_children(sizes: &[usize]) -> ExitCode {
    let exe = std::env::current_exe().expect("own executable");
    let mut ok = true;
    for n in sizes {
        let status = Command::new(&exe)
            .env(SIZES_VAR, n.to_string())
            .status()
            .expect("spawn the benchmark child");
        ok &= status.success();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_one(n: usize) -> ExitCode {
    let system = actix::System::new();
    let report = system.block_on(run(n));
    report.print();
    if report.succeeded == n {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "FAIL: {} of {n} canaries did not end Succeeded",
            n - report.succeeded
        );
        ExitCode::FAILURE
    }
}

/// Resident set size in bytes (statm counts 4 KiB pages on x86_64 Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn key(i: usize) -> CanaryKey {
    CanaryKey::new(format!("ns-{}", i % 50), format!("app-{i}"))
}

fn spec(key: &CanaryKey) -> CanarySpec {
    CanarySpec {
        name: key.name.clone(),
        namespace: key.namespace.clone(),
        target: TargetRef {
            kind: "Deployment".into(),
            name: key.name.clone(),
        },
        provider: "nginx".into(),
        metrics_provider: "nginx".into(),
        analysis: AnalysisSpec {
            interval: "10s".into(),
            threshold: 2,
            step_weight: 10,
            max_weight: 50,
            metrics: vec![MetricSpec {
                name: "request-success-rate".into(),
                interval: "1m".into(),
                threshold_range: Some(ThresholdRange {
                    min: Some(99.0),
                    max: None,
                }),
                ..MetricSpec::default()
            }],
            ..AnalysisSpec::default()
        },
        progress_deadline_seconds: None,
        skip_analysis: false,
        suspend: false,
        request: None,
        source: Default::default(),
    }
}

async fn states(registry: &Registry, keys: &[CanaryKey]) -> Vec<Option<CanaryState>> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(POLL_CHUNK) {
        let asks = chunk.iter().map(|k| async move {
            let addr = registry.addr(k)?;
            addr.send(GetState).await.ok()
        });
        out.extend(join_all(asks).await);
    }
    out
}

/// Polls until every canary satisfies `done`; false on timeout.
async fn wait_all(
    registry: &Registry,
    keys: &[CanaryKey],
    limit: Duration,
    done: impl Fn(&CanaryState) -> bool,
) -> bool {
    let start = Instant::now();
    loop {
        let states = states(registry, keys).await;
        if states.iter().all(|s| s.as_ref().is_some_and(&done)) {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Report {
    canaries: usize,
    succeeded: usize,
    failed: usize,
    other: usize,
    stats: Arc<Stats>,
    rss_start: u64,
    rss_sim: u64,
    rss_ticking: u64,
    rss_end: u64,
    setup: Duration,
    rollout: Duration,
    total: Duration,
    timed_out: Option<&'static str>,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn per_canary_kb(from: u64, to: u64, n: usize) -> f64 {
    (to as f64 - from as f64) / 1024.0 / n as f64
}

impl Report {
    fn print(&self) {
        let n = self.canaries;
        let s = &self.stats;
        let get = |c: &AtomicU64| Stats::get(c);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "== serin actor layer: {n} canaries, interval {INTERVAL:?}, {ARBITERS} canary arbiters + system arbiter (shared actors), real time"
        );
        if let Some(what) = self.timed_out {
            println!("   TIMED OUT waiting for: {what}");
        }
        println!(
            "   outcome         : {} promoted (Succeeded), {} failed, {} other; counters successes={} failures={}",
            self.succeeded,
            self.failed,
            self.other,
            get(&s.successes),
            get(&s.failures)
        );
        println!(
            "   memory (RSS)    : start {:.1} MiB, +sim workloads {:.1} MiB, all ticking {:.1} MiB, end {:.1} MiB",
            mb(self.rss_start),
            mb(self.rss_sim),
            mb(self.rss_ticking),
            mb(self.rss_end)
        );
        println!(
            "   per canary      : actor layer {:.2} KB (sim records included, see BENCHMARKS.md); sim workload alone {:.2} KB",
            per_canary_kb(self.rss_sim, self.rss_ticking, n),
            per_canary_kb(self.rss_start, self.rss_sim, n)
        );
        let late = &s.tick_lateness;
        println!(
            "   tick lateness   : {} ticks, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (mean {:.2} ms)",
            late.count(),
            ms(late.percentile(50.0)),
            ms(late.percentile(99.0)),
            ms(late.max()),
            ms(late.mean())
        );
        let steps = &s.step_duration;
        println!(
            "   analysis steps  : {} steps, mean busy {:.1} µs/step (total {:.2} s of arbiter time); step wall p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            get(&s.steps),
            s.mean_step_busy().as_secs_f64() * 1e6,
            get(&s.step_busy_nanos) as f64 / 1e9,
            ms(steps.percentile(50.0)),
            ms(steps.percentile(99.0)),
            ms(steps.max())
        );
        println!(
            "   ticks           : {} skipped (step still running), {} failed steps, {} notifications dropped",
            get(&s.skipped_ticks),
            get(&s.failed_ticks),
            get(&s.notifications_dropped)
        );
        println!(
            "   wall time       : setup (upsert + init) {:.2} s, rollout {:.1} s, total {:.1} s",
            self.setup.as_secs_f64(),
            self.rollout.as_secs_f64(),
            self.total.as_secs_f64()
        );
        println!(
            "   targets         : p99 lateness < 100 ms: {}; < 20 KB/canary: {}",
            if late.percentile(99.0) < Duration::from_millis(100) {
                "met"
            } else {
                "MISSED"
            },
            if per_canary_kb(self.rss_sim, self.rss_ticking, n) < 20.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

async fn run(n: usize) -> Report {
    let started = Instant::now();
    let rss_start = rss();
    let sim = SimCluster::new(SimConfig {
        // Ready within one interval, so every tick does analysis work.
        ready_delay: Duration::from_secs(1),
        ..SimConfig::default()
    });
    let services = Services::start(
        sim.ports(),
        RuntimeConfig::default(),
        Clock::system(),
        &Arbiter::current(),
    );
    let stats = services.stats.clone();
    let registry = Registry::new(services, ArbiterPool::spawn(ARBITERS));
    let keys: Vec<CanaryKey> = (0..n).map(key).collect();
    for k in &keys {
        sim.deploy(k, "v1");
    }
    let rss_sim = rss();
    let mut timed_out = None;

    for k in &keys {
        registry.upsert(spec(k)).await.expect("upsert");
    }
    if !wait_all(&registry, &keys, SETUP_LIMIT, |s| {
        s.status.phase == Phase::Initialized
    })
    .await
    {
        timed_out = Some("Initialized");
    }
    let setup = started.elapsed();

    let rollout_start = Instant::now();
    for k in &keys {
        sim.deploy(k, "v2");
        registry.target_changed(k).expect("target_changed");
    }
    // Every actor has stepped once (Progressing) and armed its timer.
    if !wait_all(&registry, &keys, SETUP_LIMIT, |s| s.ticking).await {
        timed_out.get_or_insert("ticking");
    }
    let rss_ticking = rss();

    // The promotion counters are cheap to watch; GetState only at the end.
    let n64 = n as u64;
    loop {
        let done = Stats::get(&stats.successes) + Stats::get(&stats.failures);
        if done >= n64 {
            break;
        }
        if rollout_start.elapsed() > ROLLOUT_LIMIT {
            timed_out.get_or_insert("Succeeded/Failed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rollout = rollout_start.elapsed();
    let rss_end = rss();

    let finals = states(&registry, &keys).await;
    let phase_count = |p: Phase| {
        finals
            .iter()
            .filter(|s| s.as_ref().is_some_and(|s| s.status.phase == p))
            .count()
    };
    let (succeeded, failed) = (phase_count(Phase::Succeeded), phase_count(Phase::Failed));
    registry.shutdown();
    Report {
        canaries: n,
        succeeded,
        failed,
        other: n - succeeded - failed,
        stats,
        rss_start,
        rss_sim,
        rss_ticking,
        rss_end,
        setup,
        rollout,
        total: started.elapsed(),
        timed_out,
    }
}

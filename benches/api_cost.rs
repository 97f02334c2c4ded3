//! API cost of the operator, measured on the local control plane: requests
//! by verb while canaries sit idle, and for one canary across a full
//! Blue/Green analysis. Counts come from the operator's own
//! `serin_api_requests_total{verb,resource}`.
//!
//! `cargo bench --bench api_cost` (testbed running, `source
//! target/testbed/env`): 100 idle canaries for 5 minutes. Under `cargo test`
//! a small version (10 canaries, 30 s) checks the benchmark still runs.
//! Either way the process fails if an idle canary made any request besides
//! the shared watch streams: that is Serin's target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::OperatorTest;

const INTERVAL_SECS: u64 = 10;
const ITERATIONS: i64 = 3;

struct Plan {
    canaries: usize,
    idle: Duration,
}

fn main() -> ExitCode {
    let benching = std::env::args().any(|a| a == "--bench");
    let plan = if benching {
        Plan {
            canaries: 100,
            idle: Duration::from_secs(300),
        }
    } else {
        Plan {
            canaries: 10,
            idle: Duration::from_secs(30),
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(plan))
}

async fn run(plan: Plan) -> ExitCode {
    let t = OperatorTest::start("api-cost").await;
    let names: Vec<String> = (0..plan.canaries).map(|i| format!("app{i}")).collect();
    for name in &names {
        t.apply(&deployment(name, "6.0.0")).await;
        t.apply(&canary(name)).await;
    }
    let started = Instant::now();
    for name in &names {
        t.wait_phase(name, "Initialized", Duration::from_secs(300))
            .await;
    }
    let init_time = started.elapsed();
    // Let the wake-ups caused by parking the targets at zero settle.
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS)).await;

    let before = requests(t.op.port).await;
    tokio::time::sleep(plan.idle).await;
    let idle = diff(&requests(t.op.port).await, &before);

    let before = requests(t.op.port).await;
    let run_started = Instant::now();
    t.apply(&deployment(&names[0], "6.0.1")).await;
    t.wait_phase(&names[0], "Succeeded", Duration::from_secs(300))
        .await;
    let run_time = run_started.elapsed();
    let analysis = diff(&requests(t.op.port).await, &before);
    // Ticks from detection to Succeeded: the run's wall time over the interval.
    let ticks = (run_time.as_secs_f64() / INTERVAL_SECS as f64)
        .round()
        .max(1.0);

    println!("API cost (local control plane, provider kubernetes, interval {INTERVAL_SECS}s)");
    println!(
        "{} canaries initialised in {:.1}s",
        plan.canaries,
        init_time.as_secs_f64()
    );
    println!(
        "\nidle: {} canaries for {}s ({} intervals)",
        plan.canaries,
        plan.idle.as_secs(),
        plan.idle.as_secs() / INTERVAL_SECS
    );
    report(&idle, plan.canaries as f64);
    println!(
        "\none Blue/Green run ({ITERATIONS} iterations): {:.0}s, about {ticks} ticks",
        run_time.as_secs_f64()
    );
    report(&analysis, 1.0);
    let per_tick: u64 = analysis
        .iter()
        .filter(|((verb, _), _)| verb != "watch")
        .map(|(_, n)| *n)
        .sum();
    println!(
        "  requests per tick (excluding watches): {:.1}",
        per_tick as f64 / ticks
    );

    let idle_non_watch: u64 = idle
        .iter()
        .filter(|((verb, _), _)| verb != "watch")
        .map(|(_, n)| *n)
        .sum();
    if idle_non_watch > 0 {
        eprintln!("FAIL: idle canaries made {idle_non_watch} requests besides watches");
        return ExitCode::FAILURE;
    }
    println!("\nidle target met: 0 requests per canary beyond the watch streams");
    ExitCode::SUCCESS
}

type Counts = BTreeMap<(String, String), u64>;

fn report(counts: &Counts, per: f64) {
    if counts.is_empty() {
        println!("  no requests");
    }
    for ((verb, resource), n) in counts {
        println!(
            "  {verb:<8} {resource:<28} {n:>6}  ({:.2} per canary)",
            *n as f64 / per
        );
    }
}

fn diff(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// `serin_api_requests_total` from the operator's `/metrics`.
async fn requests(port: u16) -> Counts {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    parse_requests(&body)
}

fn parse_requests(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("serin_api_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        counts.insert((label("verb"), label("resource")), n);
    }
    counts
}

fn deployment(name: &str, tag: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "podinfod",
                    "image": format!("ghcr.io/stefanprodan/podinfo:{tag}"),
                    "ports": [{"name": "http", "containerPort": 9898}]
                }]}
            }
        }
    })
}

fn canary(name: &str) -> Value {
    json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {
                "interval": format!("{INTERVAL_SECS}s"),
                "threshold": 2,
                "iterations": ITERATIONS
            }
        }
    })
}

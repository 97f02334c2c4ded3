//! The API cost of the operator on the local control plane: requests by verb
//! while canaries sit idle, and for one canary across a full Blue/Green
//! analysis, from the operator's own `serin_api_requests_total{verb,resource}`.
//! `cargo bench --bench api_cost` runs it at size; the end-to-end suite runs
//! a small version (`tests/e2e/api_cost.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::operator::OperatorTest;

pub const INTERVAL_SECS: u64 = 10;
const ITERATIONS: i64 = 3;

pub struct Plan {
    pub canaries: usize,
    pub idle: Duration,
}

/// Requests counted by `(verb, resource)`.
pub type Counts = BTreeMap<(String, String), u64>;

/// What one measurement found.
pub struct ApiCost {
    pub canaries: usize,
    pub idle_for: Duration,
    pub init_time: Duration,
    pub idle: Counts,
    pub run_time: Duration,
    pub analysis: Counts,
}

impl ApiCost {
    /// Requests made while idle, besides the shared watch streams: Serin's
    /// target is none.
    pub fn idle_non_watch(&self) -> u64 {
        non_watch(&self.idle)
    }

    /// Ticks from detection to Succeeded: the run's wall time over the interval.
    pub fn ticks(&self) -> f64 {
        (self.run_time.as_secs_f64() / INTERVAL_SECS as f64)
            .round()
            .max(1.0)
    }

    pub fn print(&self) {
        println!("API cost (local control plane, provider kubernetes, interval {INTERVAL_SECS}s)");
        println!(
            "{} canaries initialised in {:.1}s",
            self.canaries,
            self.init_time.as_secs_f64()
        );
        println!(
            "\nidle: {} canaries for {}s ({} intervals)",
            self.canaries,
            self.idle_for.as_secs(),
            self.idle_for.as_secs() / INTERVAL_SECS
        );
        report(&self.idle, self.canaries as f64);
        println!(
            "\none Blue/Green run ({ITERATIONS} iterations): {:.0}s, about {} ticks",
            self.run_time.as_secs_f64(),
            self.ticks()
        );
        report(&self.analysis, 1.0);
        println!(
            "  requests per tick (excluding watches): {:.1}",
            non_watch(&self.analysis) as f64 / self.ticks()
        );
    }
}

/// Starts an operator on a fresh namespace with `plan.canaries` canaries,
/// waits until all are initialised, counts the requests of `plan.idle`, then
/// of one full run of the first canary.
pub async fn measure(plan: Plan) -> ApiCost {
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
    ApiCost {
        canaries: plan.canaries,
        idle_for: plan.idle,
        init_time,
        idle,
        run_time,
        analysis,
    }
}

fn non_watch(counts: &Counts) -> u64 {
    counts
        .iter()
        .filter(|((verb, _), _)| verb != "watch")
        .map(|(_, n)| *n)
        .sum()
}

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

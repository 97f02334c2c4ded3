//! The fleet benchmark on the real API server (tests/cluster/): N podinfo
//! Deployments with NGINX Canaries, first idle, then all revised at once,
//! with Prometheus metrics from a fleet traffic simulator; Flagger v1.44.0
//! and Serin run the same fleet one after the other, with the same flags,
//! each as its own API user, and the API server's audit log counts their
//! requests.
//!
//! `make cluster-up && source target/testbed/env && cargo bench --bench fleet`
//! (`FLEET_SIZES=1000,2000`, `FLEET_OPERATORS=flagger,serin` to choose; the
//! Flagger binary comes from tests/cluster/build-flagger.sh, or `FLAGGER_BIN`).
//! Under `cargo test` this binary does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/e2e/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::TestEnv;
use support::audit::{self, Mark, Requests};
use support::fleet::{self, FleetTraffic, ProcStats, proc_stats};

/// How long the fleet sits idle while its requests are counted.
const IDLE: Duration = Duration::from_secs(120);
/// Flagger's default client limits, given to both operators.
const QPS: &str = "100";
const BURST: &str = "250";

struct Operator {
    name: &'static str,
    binary: PathBuf,
    kubeconfig: PathBuf,
}

#[derive(Default)]
struct Run {
    size: usize,
    init: Duration,
    init_requests: Requests,
    idle_requests: Requests,
    rollout: Duration,
    rollout_requests: Requests,
    promoted: usize,
    failed: usize,
    lateness: Vec<Duration>,
    baseline: ProcStats,
    after_init: ProcStats,
    before_rollout: ProcStats,
    end: ProcStats,
}

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet: run with `cargo bench --bench fleet` on the local control plane");
        return ExitCode::SUCCESS;
    }
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let names = std::env::var("FLEET_OPERATORS").unwrap_or_else(|_| "flagger,serin".into());
    let env = TestEnv::from_env();
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: start the testbed with `make cluster-up` and `source target/testbed/env`")
        })
    };
    let audit_log = PathBuf::from(var("AUDIT_LOG"));
    let mut operators = Vec::new();
    for name in names.split(',').map(str::trim) {
        match name {
            "serin" => operators.push(Operator {
                name: "serin",
                binary: PathBuf::from(env!("CARGO_BIN_EXE_serin")),
                kubeconfig: PathBuf::from(var("SERIN_KUBECONFIG")),
            }),
            "flagger" => operators.push(Operator {
                name: "flagger",
                binary: flagger_binary(),
                kubeconfig: PathBuf::from(var("FLAGGER_KUBECONFIG")),
            }),
            other => panic!("FLEET_OPERATORS: unknown operator {other:?}"),
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut results: BTreeMap<(usize, &'static str), Run> = BTreeMap::new();
    for &size in &sizes {
        for op in &operators {
            let run = runtime.block_on(run(&env, &audit_log, op, size));
            report(op.name, &run);
            results.insert((size, op.name), run);
        }
    }
    compare(&results, &sizes);
    let false_rollbacks: usize = results
        .iter()
        .filter(|((_, op), _)| *op == "serin")
        .map(|(_, r)| r.failed)
        .sum();
    if false_rollbacks > 0 {
        eprintln!("FAIL: Serin rolled back {false_rollbacks} healthy canaries");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn flagger_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("FLAGGER_BIN") {
        return bin.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/cluster/build-flagger.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/cluster/build-flagger.sh");
    assert!(out.status.success(), "building Flagger failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

async fn run(env: &TestEnv, audit_log: &std::path::Path, op: &Operator, size: usize) -> Run {
    let client = env.client().await;
    support::operator::install_crds(&client).await;
    let ns = format!("fleet-{}-{size}", op.name);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await;
    eprintln!(
        "[fleet] {}: {size} Deployments and Ingresses in {ns}",
        op.name
    );
    let mut workloads = Vec::new();
    for i in 0..size {
        workloads.push(fleet::deployment(i, "6.0.0"));
        workloads.push(fleet::ingress(i));
    }
    fleet::apply_all(&client, &ns, workloads).await;
    let traffic = FleetTraffic::start(env, client.clone(), &ns).await;

    let log_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fleet");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = std::fs::File::create(log_dir.join(format!("{}-{size}.log", op.name))).unwrap();
    let port = free_port();
    let mut child = Command::new(&op.binary)
        .arg(format!("-kubeconfig={}", op.kubeconfig.display()))
        .arg(format!("-namespace={ns}"))
        .arg("-mesh-provider=nginx")
        .arg(format!("-metrics-server={}", env.prometheus_url))
        .arg("-log-level=info")
        .arg(format!("-kubeconfig-qps={QPS}"))
        .arg(format!("-kubeconfig-burst={BURST}"))
        .arg(format!("-port={port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", op.binary.display()));
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let mut run = Run {
        size,
        baseline: proc_stats(pid),
        ..Run::default()
    };

    eprintln!("[fleet] {}: {size} Canaries", op.name);
    let mark = Mark::now(audit_log);
    let canaries = (0..size).map(fleet::canary).collect();
    fleet::apply_all(&client, &ns, canaries).await;
    let (init, phases) = fleet::wait_phases(&client, &ns, Duration::from_secs(1800), |p| {
        p.get("Initialized").copied().unwrap_or(0) == size
    })
    .await;
    assert_eq!(
        phases.get("Initialized").copied().unwrap_or(0),
        size,
        "{}: not all initialised: {phases:?}",
        op.name
    );
    run.init = init;
    run.init_requests = mark.requests_since(op.name);
    run.after_init = proc_stats(pid);
    eprintln!(
        "[fleet] {}: initialised in {:.0}s",
        op.name,
        init.as_secs_f64()
    );

    // Let the wake-ups of the initialisation settle, then count idle.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mark = Mark::now(audit_log);
    tokio::time::sleep(IDLE).await;
    run.idle_requests = mark.requests_since(op.name);

    eprintln!("[fleet] {}: revising all {size}", op.name);
    traffic.clear_log();
    run.before_rollout = proc_stats(pid);
    let mark = Mark::now(audit_log);
    let started = Instant::now();
    fleet::revise_all(&client, &ns, size, "6.0.1").await;
    // Wait for the runs to start, then for them all to end.
    tokio::time::sleep(fleet::INTERVAL * 2).await;
    let (_, phases) = fleet::wait_phases(&client, &ns, Duration::from_secs(3600), |p| {
        p.get("Succeeded").copied().unwrap_or(0) + p.get("Failed").copied().unwrap_or(0) == size
    })
    .await;
    run.rollout = started.elapsed();
    run.rollout_requests = mark.requests_since(op.name);
    run.promoted = phases.get("Succeeded").copied().unwrap_or(0);
    run.failed = phases.get("Failed").copied().unwrap_or(0);
    run.lateness = traffic.step_lateness();
    run.end = proc_stats(pid);
    eprintln!(
        "[fleet] {}: {} promoted, {} failed after {:.0}s",
        op.name,
        run.promoted,
        run.failed,
        run.rollout.as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(traffic);
    let _ = namespaces.delete(&ns, &DeleteParams::background()).await;
    run
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Steps of one run per canary: scale-up, five weights, promotion, finalising.
const STEPS_PER_RUN: f64 = 8.0;

fn report(name: &str, r: &Run) {
    let n = r.size as f64;
    println!(
        "\n== {name}, {} canaries (NGINX, interval {}s) ==",
        r.size,
        fleet::INTERVAL.as_secs()
    );
    println!(
        "  initialised all in {:.0}s, {} requests ({:.1} per canary)",
        r.init.as_secs_f64(),
        audit::total(&r.init_requests),
        audit::total(&r.init_requests) as f64 / n
    );
    let intervals = IDLE.as_secs_f64() / fleet::INTERVAL.as_secs_f64();
    println!(
        "  idle {}s: {} requests ({:.3} per canary per interval) {:?}",
        IDLE.as_secs(),
        audit::total(&r.idle_requests),
        audit::total(&r.idle_requests) as f64 / n / intervals,
        audit::by_verb(&r.idle_requests)
    );
    println!(
        "  rollout: all ended in {:.0}s: {} promoted, {} rolled back (false rollbacks)",
        r.rollout.as_secs_f64(),
        r.promoted,
        r.failed
    );
    println!(
        "  rollout requests: {} ({:.1} per canary, {:.2} per canary per step)",
        audit::total(&r.rollout_requests),
        audit::total(&r.rollout_requests) as f64 / n,
        audit::total(&r.rollout_requests) as f64 / n / STEPS_PER_RUN
    );
    for (verb, count) in audit::by_verb(&r.rollout_requests) {
        println!(
            "    {verb:<8} {count:>8}  ({:.2} per canary per step)",
            count as f64 / n / STEPS_PER_RUN
        );
    }
    println!(
        "  route writes against the grid of each canary's first: p50 {:?}, p99 {:?}, max {:?} ({} writes)",
        fleet::percentile(&r.lateness, 50.0),
        fleet::percentile(&r.lateness, 99.0),
        fleet::percentile(&r.lateness, 100.0),
        r.lateness.len()
    );
    println!(
        "  CPU: {:.1}s to initialise, {:.1}s idle, {:.1}s rollout ({:.1} ms per canary per run)",
        r.after_init.cpu_seconds - r.baseline.cpu_seconds,
        r.before_rollout.cpu_seconds - r.after_init.cpu_seconds,
        r.end.cpu_seconds - r.before_rollout.cpu_seconds,
        (r.end.cpu_seconds - r.before_rollout.cpu_seconds) * 1000.0 / n
    );
    println!(
        "  RSS: {:.1} MiB before the canaries, {:.1} MiB initialised ({:.1} KB per canary), peak {:.1} MiB",
        mib(r.baseline.rss_bytes),
        mib(r.after_init.rss_bytes),
        (r.after_init.rss_bytes.saturating_sub(r.baseline.rss_bytes)) as f64 / 1000.0 / n,
        mib(r.end.peak_rss_bytes)
    );
}

fn compare(results: &BTreeMap<(usize, &'static str), Run>, sizes: &[usize]) {
    for &size in sizes {
        let (Some(f), Some(s)) = (
            results.get(&(size, "flagger")),
            results.get(&(size, "serin")),
        ) else {
            continue;
        };
        println!("\n== Flagger v1.44.0 / Serin, {size} canaries (ratio > 1: Serin uses less) ==");
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
        let rows = [
            (
                "API requests, idle",
                audit::total(&f.idle_requests) as f64,
                audit::total(&s.idle_requests) as f64,
            ),
            (
                "API requests, rollout",
                audit::total(&f.rollout_requests) as f64,
                audit::total(&s.rollout_requests) as f64,
            ),
            (
                "CPU seconds, rollout",
                f.end.cpu_seconds - f.before_rollout.cpu_seconds,
                s.end.cpu_seconds - s.before_rollout.cpu_seconds,
            ),
            (
                "CPU seconds, whole run",
                f.end.cpu_seconds,
                s.end.cpu_seconds,
            ),
            (
                "peak RSS MiB",
                mib(f.end.peak_rss_bytes),
                mib(s.end.peak_rss_bytes),
            ),
            (
                "promotion wall time s",
                f.rollout.as_secs_f64(),
                s.rollout.as_secs_f64(),
            ),
        ];
        println!(
            "  {:<24} {:>12} {:>12} {:>8}",
            "", "Flagger", "Serin", "ratio"
        );
        for (what, a, b) in rows {
            println!("  {what:<24} {a:>12.1} {b:>12.1} {:>8.2}", ratio(a, b));
        }
    }
}

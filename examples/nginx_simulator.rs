//! A traffic SIMULATOR for trying Flagger's NGINX walkthrough on the local
//! control plane (`make walkthrough-up`), where no ingress controller and no
//! real pods run. It stands in for ingress-nginx and the podinfo pods: it
//! sends no requests; it publishes the series Prometheus would have scraped
//! from them.
//!
//! It is the end-to-end tests' simulator (`tests/e2e/support/traffic.rs`) as a
//! process: every second it reads the canary Ingress `<ingress>-canary` (its
//! `canary-weight` and header annotations) and the target and primary
//! Deployments, "serves" `--rps` requests for the elapsed second and exposes
//! the cumulative `nginx_ingress_controller_*` and podinfo
//! `http_request_duration_seconds` series on a scrape target registered in
//! the testbed's Prometheus `file_sd` file (`PROMETHEUS_TARGETS_FILE`).
//!
//! A revision's behaviour comes from its pod template annotation
//! `test.serin.dev/fault` (e.g. `errors=50`, `latency=1500ms`, or both,
//! comma-separated); without it a revision is healthy (no errors, 50 ms).
//!
//! ```sh
//! source target/testbed/env
//! cargo run --example nginx_simulator -- --namespace test --ingress podinfo --target podinfo
//! ```
//!
//! `KUBECONFIG` and `PROMETHEUS_TARGETS_FILE` come from the environment, or
//! from `target/testbed/env` when unset. It runs until SIGINT or SIGTERM, then
//! removes its scrape target from the `file_sd` file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

/// The test harness' simulator and scrape target, compiled from
/// `tests/e2e/support/`. `traffic.rs` refers to `super::TestEnv` and
/// `super::scrape`; the rest of the harness needs integration-test-only
/// variables (`CARGO_BIN_EXE_*`), so only these two files are included.
#[path = "../tests/e2e/support"]
#[allow(dead_code)]
mod support {
    pub mod scrape;
    pub mod traffic;

    /// The one field of the harness' `TestEnv` that the simulator reads.
    pub struct TestEnv {
        pub prometheus_targets_file: std::path::PathBuf,
    }
}

use support::traffic::{FAULT_ANNOTATION, Observed, SimulatorConfig, TrafficSimulator};

/// Simulated ingress-nginx + podinfo traffic for the walkthrough (a simulator:
/// no real requests are made).
#[derive(Parser, Debug)]
#[command(name = "nginx_simulator")]
struct Args {
    /// Namespace of the Ingress and the Deployments.
    #[arg(long, default_value = "test")]
    namespace: String,
    /// The user's Ingress (the Canary's ingressRef); the canary one is `<ingress>-canary`.
    #[arg(long, default_value = "podinfo")]
    ingress: String,
    /// The target Deployment; the primary is `<target>-primary`.
    #[arg(long, default_value = "podinfo")]
    target: String,
    /// Simulated requests per second through the Ingress.
    #[arg(long, default_value_t = 10.0)]
    rps: f64,
    /// Share (0..1) of the requests carrying the insider header `x-user: insider` (A/B testing).
    #[arg(long, default_value_t = 0.2)]
    insider_share: f64,
    /// Prometheus `file_sd` file (default: `$PROMETHEUS_TARGETS_FILE`, else from target/testbed/env).
    #[arg(long)]
    targets_file: Option<PathBuf>,
}

/// `KEY=value` pairs of `target/testbed/env` (`export KEY=value` lines).
fn testbed_env() -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/testbed/env");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// A variable from the environment, else from target/testbed/env.
fn var(name: &str, file: &BTreeMap<String, String>) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| file.get(name).cloned())
        .unwrap_or_else(|| {
            eprintln!(
                "nginx_simulator: {name} is not set and target/testbed/env does not define it: \
                 start the local control plane with `make cluster-up` (or `make walkthrough-up`)"
            );
            std::process::exit(2)
        })
}

async fn client(kubeconfig: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap_or_else(|e| {
        eprintln!("nginx_simulator: cannot read kubeconfig {kubeconfig}: {e}");
        std::process::exit(2)
    });
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}

/// One line describing what the simulator sees, printed when it changes.
fn describe(seen: &Observed, ingress: &str) -> String {
    let fault = |f: Option<support::traffic::Fault>| match f {
        None => "absent".to_string(),
        Some(f) => format!(
            "{:.0}% errors, {} ms",
            f.error_percent,
            f.latency.as_millis()
        ),
    };
    let weight = match seen.annotations.is_empty() {
        true => format!("no {ingress}-canary Ingress yet"),
        false => format!("{:.0}% of traffic to the canary", seen.canary_share * 100.0),
    };
    format!(
        "{weight}; canary: {} ({}); primary: {}",
        fault(seen.canary_fault),
        match seen.canary_available {
            true => "available",
            false => "no available replica, 503s",
        },
        fault(seen.primary_fault),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = testbed_env();
    let kubeconfig = var("KUBECONFIG", &file);
    let targets_file = args
        .targets_file
        .clone()
        .unwrap_or_else(|| var("PROMETHEUS_TARGETS_FILE", &file).into());
    let env = support::TestEnv {
        prometheus_targets_file: targets_file.clone(),
    };
    let config = SimulatorConfig {
        namespace: args.namespace.clone(),
        ingress: args.ingress.clone(),
        target: args.target.clone(),
        requests_per_second: args.rps,
        insider_share: args.insider_share,
        ..SimulatorConfig::walkthrough(&args.namespace)
    };
    let sim = TrafficSimulator::start(&env, client(&kubeconfig).await, config).await;
    println!(
        "nginx_simulator: SIMULATED ingress-nginx and podinfo traffic ({} rps) for Ingress {}/{}, \
         target Deployment {}; no real requests are made.\n\
         nginx_simulator: scrape target testbed_target={} registered in {}\n\
         nginx_simulator: a revision misbehaves with the pod template annotation {FAULT_ANNOTATION}, \
         e.g. errors=50 or latency=1500ms",
        args.rps,
        args.namespace,
        args.ingress,
        args.target,
        sim.label(),
        targets_file.display()
    );

    // tokio's `signal` feature is enabled in this build by actix-rt.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last = String::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = describe(&sim.observed(), &args.ingress);
                if now != last {
                    println!("nginx_simulator: {now}");
                    last = now;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    // Dropping the simulator (and its aborted task) removes its target from
    // the file_sd file.
    drop(sim);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    println!("nginx_simulator: stopped; scrape target removed");
}

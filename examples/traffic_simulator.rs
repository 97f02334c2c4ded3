//! A traffic SIMULATOR for trying Flagger's walkthroughs on the local control
//! plane (`make walkthrough-up`), where no ingress or gateway controller and
//! no real pods run. It stands in for the router (ingress-nginx, a Gateway
//! API implementation, Linkerd with an SMI TrafficSplit, or Istio) and the podinfo
//! pods: it sends no requests; it publishes the series Prometheus would have
//! scraped from them.
//!
//! It is the end-to-end tests' simulator (`tests/e2e/support/traffic.rs`) as a
//! process: every second it reads the routing object (by default the canary
//! Ingress `<ingress>-canary`, its `canary-weight` and header annotations;
//! with `--httproute` a Gateway API HTTPRoute, with `--trafficsplit` an SMI
//! TrafficSplit, with `--virtualservice` an Istio VirtualService) and the target and primary Deployments, "serves" `--rps`
//! requests for the elapsed second and exposes the cumulative series
//! (`nginx_ingress_controller_*` for an Ingress; podinfo's
//! `http_request_duration_seconds`, Linkerd's `response_total` and Istio's
//! `istio_requests_total` with their latency histograms) on a scrape target
//! registered in the testbed's Prometheus `file_sd` file
//! (`PROMETHEUS_TARGETS_FILE`). With `--httproute` it also plays the gateway
//! controller and writes the route's `status.parents` (`--parents`).
//!
//! A revision's behaviour comes from its pod template annotation
//! `test.serin.dev/fault` (e.g. `errors=50`, `latency=1500ms`, or both,
//! comma-separated); without it a revision is healthy (no errors, 50 ms).
//!
//! ```sh
//! source target/testbed/env
//! cargo run --example traffic_simulator -- --namespace test --ingress podinfo --target podinfo
//! cargo run --example traffic_simulator -- --namespace test --httproute podinfo --parents accept
//! cargo run --example traffic_simulator -- --namespace test --trafficsplit podinfo
//! cargo run --example traffic_simulator -- --namespace test --virtualservice podinfo
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

use support::traffic::{
    ClientClass, FAULT_ANNOTATION, Observed, ParentMode, Route, SimulatorConfig, TrafficSimulator,
};

/// How the simulator plays the gateway controller for `--httproute`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Parents {
    /// Writes status.parents[] with Accepted=True.
    Accept,
    /// Writes status.parents[] with Accepted=False (NotAllowedByListeners).
    Refuse,
    /// Writes no status.
    Ignore,
}

/// Simulated router + podinfo traffic for the walkthroughs (a simulator: no
/// real requests are made). The route is the canary Ingress of `--ingress`
/// (default `podinfo`), or `--httproute`, `--trafficsplit` or `--virtualservice`.
#[derive(Parser, Debug)]
#[command(name = "traffic_simulator")]
#[command(group = clap::ArgGroup::new("route").multiple(false))]
struct Args {
    /// Namespace of the routing object and the Deployments.
    #[arg(long, default_value = "test")]
    namespace: String,
    /// The user's Ingress (the Canary's ingressRef); the canary one is
    /// `<ingress>-canary` (ingress-nginx). The default route: `podinfo`.
    #[arg(long, group = "route")]
    ingress: Option<String>,
    /// A Gateway API HTTPRoute to route by.
    #[arg(long, group = "route")]
    httproute: Option<String>,
    /// With --httproute: what the simulated gateway controller writes in the
    /// route's status.
    #[arg(long, value_enum, default_value = "accept", requires = "httproute")]
    parents: Parents,
    /// An SMI TrafficSplit to route by (read as split.smi-spec.io/v1alpha2).
    #[arg(long, group = "route")]
    trafficsplit: Option<String>,
    /// An Istio VirtualService to route by (networking.istio.io/v1, its
    /// http routes).
    #[arg(long, group = "route")]
    virtualservice: Option<String>,
    /// The target Deployment; the primary is `<target>-primary`.
    #[arg(long, default_value = "podinfo")]
    target: String,
    /// Simulated requests per second through the router.
    #[arg(long, default_value_t = 10.0)]
    rps: f64,
    /// Share (0..1) of the requests carrying the insider header (A/B testing).
    #[arg(long, default_value_t = 0.2)]
    insider_share: f64,
    /// The insider header, `name:value` (default `x-user:insider` for an
    /// Ingress, `x-canary:insider` otherwise).
    #[arg(long)]
    insider_header: Option<String>,
    /// Share (0..1) of the requests sent by sticky clients, which keep the
    /// cookies responses set (session affinity).
    #[arg(long, default_value_t = 0.0)]
    sticky_share: f64,
    /// How many sticky clients share those requests.
    #[arg(long, default_value_t = 100)]
    sticky_clients: usize,
    /// Prometheus `file_sd` file (default: `$PROMETHEUS_TARGETS_FILE`, else from target/testbed/env).
    #[arg(long)]
    targets_file: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> SimulatorConfig {
        let ns = &self.namespace;
        let mut config = match (&self.httproute, &self.trafficsplit, &self.virtualservice) {
            (Some(name), _, _) => {
                let parents = match self.parents {
                    Parents::Accept => ParentMode::Accept,
                    Parents::Refuse => ParentMode::Refuse,
                    Parents::Ignore => ParentMode::Ignore,
                };
                SimulatorConfig::httproute(ns, name, parents)
            }
            (None, Some(name), _) => SimulatorConfig::trafficsplit(ns, name),
            (None, None, Some(name)) => SimulatorConfig::virtualservice(ns, name),
            (None, None, None) => SimulatorConfig {
                route: Route::NginxIngress {
                    ingress: self.ingress.clone().unwrap_or_else(|| "podinfo".into()),
                },
                ..SimulatorConfig::walkthrough(ns)
            },
        }
        .target(&self.target)
        .rps(self.rps);
        let (header, value) = match (&self.insider_header, &config.route) {
            (Some(h), _) => h
                .split_once(':')
                .map(|(h, v)| (h.trim().to_string(), v.trim().to_string()))
                .unwrap_or_else(|| (h.trim().to_string(), "insider".to_string())),
            (None, Route::NginxIngress { .. }) => ("x-user".into(), "insider".into()),
            (None, _) => ("x-canary".into(), "insider".into()),
        };
        let insiders = self.insider_share.clamp(0.0, 1.0);
        config = config.classes(vec![
            ClientClass::plain(1.0 - insiders),
            ClientClass::header("insider", insiders, &header, &value),
        ]);
        if self.sticky_share > 0.0 {
            config = config.sticky(self.sticky_share, self.sticky_clients.max(1));
        }
        config
    }
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
                "traffic_simulator: {name} is not set and target/testbed/env does not define it: \
                 start the local control plane with `make cluster-up` (or `make walkthrough-up`)"
            );
            std::process::exit(2)
        })
}

async fn client(kubeconfig: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap_or_else(|e| {
        eprintln!("traffic_simulator: cannot read kubeconfig {kubeconfig}: {e}");
        std::process::exit(2)
    });
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}

/// One line describing what the simulator sees, printed when it changes.
fn describe(seen: &Observed, route: &Route) -> String {
    let fault = |f: Option<support::traffic::Fault>| match f {
        None => "absent".to_string(),
        Some(f) => format!(
            "{:.0}% errors, {} ms",
            f.error_percent,
            f.latency.as_millis()
        ),
    };
    let mut routing = match seen.route_found {
        false => format!("no {} yet", route.describe()),
        true => format!("{:.0}% of traffic to the canary", seen.canary_share * 100.0),
    };
    if seen.mirror_share > 0.0 {
        routing += &format!(", {:.0}% mirrored to it", seen.mirror_share * 100.0);
    }
    if seen.unrouted_share > 0.0 {
        routing += &format!(", {:.0}% unrouted", seen.unrouted_share * 100.0);
    }
    if seen.sticky.clients > 0 {
        routing += &format!(
            ", {}/{} sticky clients with a canary cookie",
            seen.sticky.with_canary_cookie, seen.sticky.clients
        );
    }
    if let Some(generation) = seen.status_generation {
        routing += &format!(", status written for generation {generation}");
    }
    if let Some(error) = &seen.error {
        routing += &format!(", error: {error}");
    }
    format!(
        "{routing}; canary: {} ({}); primary: {}",
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
    let config = args.config();
    let route = config.route.clone();
    let sim = TrafficSimulator::start(&env, client(&kubeconfig).await, config).await;
    println!(
        "traffic_simulator: SIMULATED router and podinfo traffic ({} rps) for {}/{}, \
         target Deployment {}; no real requests are made.\n\
         traffic_simulator: scrape target testbed_target={} registered in {}\n\
         traffic_simulator: a revision misbehaves with the pod template annotation {FAULT_ANNOTATION}, \
         e.g. errors=50 or latency=1500ms",
        args.rps,
        args.namespace,
        route.describe(),
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
                let now = describe(&sim.observed(), &route);
                if now != last {
                    println!("traffic_simulator: {now}");
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
    println!("traffic_simulator: stopped; scrape target removed");
}

//! A traffic simulator standing in for ingress-nginx and the podinfo pods
//! behind it, since no real pods or ingress controller run on the testbed.
//!
//! Every second it reads from the API server the canary Ingress
//! `<ingress>-canary` (annotations `canary`, `canary-weight`,
//! `canary-by-header[-value|-pattern]`, and the backend Service and port) and
//! the target and primary Deployments (their fault profile, the pod template
//! annotation [`FAULT_ANNOTATION`], e.g. `errors=50,latency=1500ms`, and
//! whether the target has available replicas). It then "serves" a steady
//! request rate for the elapsed time and publishes, through a
//! [`ScrapeTarget`], the cumulative series Prometheus would scrape:
//!
//! - ingress-nginx: `nginx_ingress_controller_requests{namespace,ingress,canary,status}`
//!   and `nginx_ingress_controller_response_duration_seconds_{sum,count}{namespace,ingress,canary}`,
//!   where `canary` is `""` for the primary and the canary upstream
//!   `<ns>-<svc>-canary-<port>` for canary traffic (Flagger's queries filter
//!   `canary!=""`);
//! - podinfo: `http_request_duration_seconds_{bucket,sum,count}{kubernetes_namespace,kubernetes_pod_name}`,
//!   the histogram the walkthrough's `latency` MetricTemplate queries, with
//!   pod names `<target>-<rev>-sim` (canary) and `<target>-primary-<rev>-sim`.
//!
//! Routing follows ingress-nginx: requests carrying the simulated insider
//! header go to the canary when `canary-by-header` (and its value or pattern)
//! match; all others are split by `canary-weight`. Canary requests answer 503
//! while the target has no available replica, otherwise 500 for the fault's
//! share of errors, with the fault's latency.

mod series;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::{Api, Client};

use super::TestEnv;
use super::scrape::ScrapeTarget;
use series::{Series, render, serve};

/// The pod template annotation holding a revision's fault profile.
pub const FAULT_ANNOTATION: &str = "test.serin.dev/fault";
/// ingress-nginx's annotation prefix (Flagger's `-ingress-annotations-prefix`).
pub const PREFIX: &str = "nginx.ingress.kubernetes.io";
/// How a revision misbehaves: a share of HTTP 500s and a response latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fault {
    pub error_percent: f64,
    pub latency: Duration,
}

impl Fault {
    /// A healthy podinfo: no errors, 50 ms.
    pub const HEALTHY: Fault = Fault {
        error_percent: 0.0,
        latency: Duration::from_millis(50),
    };

    pub fn errors(percent: f64) -> Fault {
        Fault {
            error_percent: percent,
            ..Fault::HEALTHY
        }
    }

    pub fn latency(latency: Duration) -> Fault {
        Fault {
            latency,
            ..Fault::HEALTHY
        }
    }

    /// The annotation value, `errors=<pct>,latency=<ms>ms`.
    pub fn annotation(&self) -> String {
        format!(
            "errors={},latency={}ms",
            self.error_percent,
            self.latency.as_millis()
        )
    }

    /// Parses the annotation; missing or unknown parts keep the healthy values.
    pub fn parse(text: &str) -> Fault {
        let mut fault = Fault::HEALTHY;
        for part in text.split(',') {
            match part.trim().split_once('=') {
                Some(("errors", v)) => fault.error_percent = v.trim().parse().unwrap_or(0.0),
                Some(("latency", v)) => {
                    let ms = v.trim().trim_end_matches("ms").parse().unwrap_or(50);
                    fault.latency = Duration::from_millis(ms);
                }
                _ => {}
            }
        }
        fault
    }
}

/// What the simulator stands in for and how much traffic it makes.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    pub namespace: String,
    /// The user's Ingress (`ingressRef`); the canary one is `<ingress>-canary`.
    pub ingress: String,
    /// The target Deployment; the primary is `<target>-primary`.
    pub target: String,
    pub requests_per_second: f64,
    /// The share of requests carrying the insider header (A/B testing).
    pub insider_share: f64,
    pub insider_header: (String, String),
}

impl SimulatorConfig {
    /// The walkthrough: Ingress `podinfo`, Deployment `podinfo`, 10 rps, 20%
    /// of the requests with `x-user: insider`.
    pub fn walkthrough(namespace: &str) -> SimulatorConfig {
        SimulatorConfig {
            namespace: namespace.to_string(),
            ingress: "podinfo".into(),
            target: "podinfo".into(),
            requests_per_second: 10.0,
            insider_share: 0.2,
            insider_header: ("x-user".into(), "insider".into()),
        }
    }
}

/// What the simulator read on its last tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The canary Ingress' annotations (empty when it does not exist).
    pub annotations: BTreeMap<String, String>,
    /// The canary upstream label, `<ns>-<svc>-<port>` of the canary Ingress' backend.
    pub upstream: String,
    /// The share of requests routed to the canary.
    pub canary_share: f64,
    pub canary_fault: Option<Fault>,
    pub primary_fault: Option<Fault>,
    pub canary_available: bool,
    pub ticks: u64,
}

pub struct TrafficSimulator {
    /// Shared with the task, so the target leaves the `file_sd` file when
    /// both are gone.
    scrape: Arc<ScrapeTarget>,
    observed: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

impl TrafficSimulator {
    /// Registers a scrape target and starts simulating, one tick a second.
    pub async fn start(env: &TestEnv, client: Client, config: SimulatorConfig) -> TrafficSimulator {
        let label = format!("traffic-simulator-{}", config.namespace);
        let scrape = Arc::new(ScrapeTarget::start(&env.prometheus_targets_file, &label).await);
        let publish = scrape.clone();
        let observed: Arc<Mutex<Observed>> = Arc::default();
        let shared = observed.clone();
        let task = tokio::spawn(async move {
            let mut series = Series::default();
            let mut last = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let mut seen = observe(&client, &config).await;
                let elapsed = last.elapsed().as_secs_f64();
                last = Instant::now();
                serve(&config, &seen, elapsed, &mut series);
                publish.set(&render(&config, &series));
                let mut slot = shared.lock().unwrap_or_else(|e| e.into_inner());
                seen.ticks = slot.ticks + 1;
                *slot = seen;
            }
        });
        TrafficSimulator {
            scrape,
            observed,
            task,
        }
    }

    /// The last tick's reading.
    pub fn observed(&self) -> Observed {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The `testbed_target` label Prometheus puts on the simulator's series.
    pub fn label(&self) -> &str {
        &self.scrape.label
    }
}

impl Drop for TrafficSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the canary Ingress and both Deployments.
async fn observe(client: &Client, config: &SimulatorConfig) -> Observed {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &config.namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &config.namespace);
    let mut seen = Observed::default();
    if let Ok(Some(ing)) = ingresses
        .get_opt(&format!("{}-canary", config.ingress))
        .await
    {
        seen.annotations = ing.metadata.annotations.clone().unwrap_or_default();
        let backend = ing
            .spec
            .as_ref()
            .and_then(|s| s.rules.as_ref())
            .and_then(|r| r.first())
            .and_then(|r| r.http.as_ref())
            .and_then(|h| h.paths.first())
            .and_then(|p| p.backend.service.as_ref());
        if let Some(svc) = backend {
            let port = svc
                .port
                .as_ref()
                .and_then(|p| p.number.map(|n| n.to_string()).or(p.name.clone()))
                .unwrap_or_default();
            seen.upstream = format!("{}-{}-{port}", config.namespace, svc.name);
        }
    }
    let target = deployments.get_opt(&config.target).await.ok().flatten();
    let primary = deployments
        .get_opt(&format!("{}-primary", config.target))
        .await
        .ok()
        .flatten();
    seen.canary_fault = target.as_ref().map(fault_of);
    seen.primary_fault = primary.as_ref().map(fault_of);
    seen.canary_available = target
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
        > 0;
    seen.canary_share = canary_share(config, &seen.annotations);
    seen
}

fn fault_of(d: &Deployment) -> Fault {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(FAULT_ANNOTATION))
        .map(|v| Fault::parse(v))
        .unwrap_or(Fault::HEALTHY)
}

/// ingress-nginx's canary rules: a matching header wins, the rest by weight.
fn canary_share(config: &SimulatorConfig, annotations: &BTreeMap<String, String>) -> f64 {
    let get = |name: &str| annotations.get(&format!("{PREFIX}/{name}"));
    if get("canary").map(String::as_str) != Some("true") {
        return 0.0;
    }
    let weight: f64 = get("canary-weight")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0.0);
    let weighted = (weight / 100.0).clamp(0.0, 1.0);
    let (header, value) = &config.insider_header;
    let header_matches = get("canary-by-header").is_some_and(|h| h.eq_ignore_ascii_case(header))
        && match (
            get("canary-by-header-value"),
            get("canary-by-header-pattern"),
        ) {
            (Some(v), _) => v == value,
            (None, Some(pattern)) => pattern.contains(value.as_str()),
            (None, None) => false,
        };
    if header_matches {
        config.insider_share + (1.0 - config.insider_share) * weighted
    } else {
        weighted
    }
}
